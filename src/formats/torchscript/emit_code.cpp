// The statements of each graph op and of each leaf module's forward (emit_code.h). Statement
// forms are the ones torch's own printer writes and its importer parses (formats.md §4.3, §4.5):
// builtins as torch.<aten op>(...), attribute chains self.a.b, list items through
// getattr(list, "N"), `-inf`, dtypes as ScalarType numbers (6 = float32, 11 = bool).
#include "formats/torchscript/emit_code.h"

#include "arch/families.h"

namespace mc::torchscript::detail {

std::string module_expr(const std::string& from, const std::string& target, Method& m) {
  std::string rel = target.substr(from.size());
  if (!rel.empty() && rel[0] == '.') rel.erase(0, 1);
  std::string expr = "self";
  if (rel.empty()) return expr;
  bool bound = false;
  for (const auto& c : split_dots(rel)) {
    if (is_number(c)) {
      expr = fmt::format("getattr({}, \"{}\")", expr, c);
      bound = true;
    } else {
      expr += "." + c;
    }
  }
  if (bound) expr = m.let("layer_" + split_dots(rel).back(), expr);
  return expr;
}

std::string param_expr(const std::string& from, const std::string& tensor, Method& m) {
  const size_t dot = tensor.rfind('.');
  const std::string mod = dot == std::string::npos ? std::string() : tensor.substr(0, dot);
  const std::string attr = dot == std::string::npos ? tensor : tensor.substr(dot + 1);
  return module_expr(from, mod, m) + "." + attr;
}

// ---- code of one op -----------------------------------------------------------------------

Status Emitter::op(size_t i, const std::string& self_path, Method& m, std::unordered_map<ValueId, std::string>& names,
                 const Derived& d) {
  const Op& o = g.ops[i];
  auto in = [&](size_t k) -> Result<std::string> {
    auto it = names.find(o.inputs[k]);
    if (it == names.end())
      return make_error(ErrorCode::Internal, "op '{}' reads value '{}' before it is defined", o.name,
                        g.values[size_t(o.inputs[k])].name);
    return it->second;
  };
  const std::string base = split_dots(o.name).back();
  std::string out;
  if (owner[i] >= 0) {  // the forward of a leaf module
    const std::string arg = o.kind == OpKind::PositionEmbedding ? d.positions : MC_TRY(in(0));
    out = m.let(base, module_expr(self_path, tree.nodes[size_t(owner[i])].path, m) + ".forward(" + arg + ")");
    names[o.output] = out;
    return {};
  }
  switch (o.kind) {
    case OpKind::Embedding:
    case OpKind::PositionEmbedding: {
      const std::string ids = o.kind == OpKind::Embedding ? MC_TRY(in(0)) : d.positions;
      out = m.let(base, fmt::format("torch.embedding({}, {})", param_expr(self_path, o.weight, m), ids));
      break;
    }
    case OpKind::MatMul: {
      const std::string x = MC_TRY(in(0)), w = param_expr(self_path, o.weight, m);
      std::string e = o.weight_in_out ? fmt::format("torch.matmul({}, {})", x, w)
                                      : fmt::format("torch.linear({}, {})", x, w);
      if (!o.bias.empty()) e = fmt::format("torch.add({}, {})", e, param_expr(self_path, o.bias, m));
      out = m.let(base, e);
      break;
    }
    case OpKind::RMSNorm:
    case OpKind::LayerNorm:
      return make_error(ErrorCode::Internal, "norm op '{}' has no module of its own", o.name);
    case OpKind::Add: out = m.let(base, fmt::format("torch.add({}, {})", MC_TRY(in(0)), MC_TRY(in(1)))); break;
    case OpKind::Mul: out = m.let(base, fmt::format("torch.mul({}, {})", MC_TRY(in(0)), MC_TRY(in(1)))); break;
    case OpKind::Scale: out = m.let(base, fmt::format("torch.mul({}, {})", MC_TRY(in(0)), num(o.scale))); break;
    case OpKind::Slice:
      out = m.let(base, fmt::format("torch.slice({}, -1, {}, {})", MC_TRY(in(0)), o.begin, o.end));
      break;
    case OpKind::SiLU: out = m.let(base, fmt::format("torch.silu({})", MC_TRY(in(0)))); break;
    case OpKind::SwiGLU:
      out = m.let(base, fmt::format("torch.mul(torch.silu({}), {})", MC_TRY(in(0)), MC_TRY(in(1))));
      break;
    case OpKind::GELUTanh: {  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as HF's gelu_new
      const std::string x = MC_TRY(in(0));
      const std::string inner = m.let(base + "_inner", fmt::format(
          "torch.mul(torch.add({0}, torch.mul(torch.pow({0}, 3), 0.044715)), 0.79788456080286541)", x));
      out = m.let(base, fmt::format("torch.mul(torch.mul({}, 0.5), torch.add(torch.tanh({}), 1.))", x, inner));
      break;
    }
    case OpKind::GELU: {  // 0.5 x (1 + erf(x / sqrt(2))), spelled out: torch.gelu would need version 10
      const std::string x = MC_TRY(in(0));
      out = m.let(base, fmt::format("torch.mul(torch.mul({0}, 0.5), torch.add(torch.erf(torch.mul({0}, "
                                    "0.70710678118654757)), 1.))",
                                    x));
      break;
    }
    case OpKind::RoPE: {
      const auto& r = o.rope;
      const int ri = rope_index(r);
      if (ri < 0) return make_error(ErrorCode::Internal, "RoPE op '{}' has no table", o.name);
      const int64_t half = r.head_dim / 2;
      const std::string x = m.let(base + "_x", fmt::format("torch.reshape({}, [{}, {}, {}, {}])", MC_TRY(in(0)),
                                                           d.batch, d.seq, r.n_heads, r.head_dim));
      const std::string rot = m.let(base + "_rot", fmt::format(
          "torch.cat([torch.neg(torch.slice({0}, -1, {1}, {2})), torch.slice({0}, -1, 0, {1})], -1)", x, half,
          r.head_dim));
      const auto& [cos, sin] = d.cos_sin[size_t(ri)];
      const std::string y = m.let(base + "_y", fmt::format(
          "torch.add(torch.mul({0}, torch.type_as({2}, {0})), torch.mul({1}, torch.type_as({3}, {0})))", x, rot,
          cos, sin));
      out = m.let(base, fmt::format("torch.flatten({}, 2)", y));
      break;
    }
    case OpKind::Attention: {
      const auto& a = o.attn;
      const int wi = window_index(a.window);
      if (wi < 0) return make_error(ErrorCode::Internal, "attention op '{}' has no mask", o.name);
      auto heads = [&](const std::string& v, int64_t n, const char* nm) {
        return m.let(base + "_" + nm, fmt::format("torch.transpose(torch.reshape({}, [{}, {}, {}, {}]), 1, 2)", v,
                                                  d.batch, d.seq, n, a.head_dim));
      };
      const std::string q = heads(MC_TRY(in(0)), a.n_heads, "q");
      std::string k = heads(MC_TRY(in(1)), a.n_kv_heads, "k");
      std::string v = heads(MC_TRY(in(2)), a.n_kv_heads, "v");
      if (a.n_heads != a.n_kv_heads) {  // query head h reads kv head h / group
        const int64_t group = a.n_heads / a.n_kv_heads;
        k = m.let(base + "_k", fmt::format("torch.repeat_interleave({}, {}, 1)", k, group));
        v = m.let(base + "_v", fmt::format("torch.repeat_interleave({}, {}, 1)", v, group));
      }
      std::string s = fmt::format("torch.matmul({}, torch.transpose({}, -2, -1))", q, k);
      if (a.scale != 1.0) s = fmt::format("torch.mul({}, {})", s, num(a.scale));
      const std::string scores = m.let(base + "_scores", s);
      const std::string masked =
          m.let(base + "_scores", fmt::format("torch.masked_fill({}, {}, -inf)", scores, d.masks[size_t(wi)]));
      const std::string p =
          m.let(base + "_probs", fmt::format("torch.type_as(torch.softmax({}, -1, 6), {})", masked, v));
      out = m.let(base, fmt::format("torch.flatten(torch.transpose(torch.matmul({}, {}), 1, 2), 2)", p, v));
      break;
    }
  }
  names[o.output] = out;
  return {};
}

Result<std::pair<std::string, std::string>> leaf_method(const Op& o, const std::string& prefix) {
  const std::string w = "self." + attr_of(o.weight);
  const std::string b = o.bias.empty() ? "" : "self." + attr_of(o.bias);
  std::string cls, body;
  switch (o.kind) {
    case OpKind::Embedding:
    case OpKind::PositionEmbedding:
      cls = "Embedding";
      body = fmt::format("    return torch.embedding({}, input)\n", w);
      break;
    case OpKind::MatMul:
      cls = o.weight_in_out ? "Conv1D" : "Linear";
      if (o.weight_in_out)
        body = b.empty() ? fmt::format("    return torch.matmul(input, {})\n", w)
                         : fmt::format("    return torch.add(torch.matmul(input, {}), {})\n", w, b);
      else
        body = fmt::format("    return torch.linear(input, {}{})\n", w, b.empty() ? "" : ", " + b);
      break;
    case OpKind::RMSNorm:
      if (!o.bias.empty())
        return make_error(ErrorCode::Unsupported, "RMSNorm with a bias ('{}') is not supported", o.bias);
      cls = prefix + "RMSNorm";
      if (o.norm_group > 0) {  // one norm per head: [B, T, H*G] -> [B, T, H, G] and back
        body = fmt::format(
            "    hidden_states = torch.to(torch.reshape(input, [torch.size(input, 0), torch.size(input, 1), -1, {}]), 6)\n"
            "    variance = torch.mean(torch.pow(hidden_states, 2), [-1], True)\n"
            "    hidden_states0 = torch.mul(hidden_states, torch.rsqrt(torch.add(variance, {})))\n"
            "    return torch.flatten(torch.mul({}, torch.type_as(hidden_states0, input)), 2)\n",
            o.norm_group, num(o.eps), w);
      } else if (o.weight_offset != 0.0f) {  // Gemma: x * (offset + w), in f32, then the input's dtype
        body = fmt::format(
            "    hidden_states = torch.to(input, 6)\n"
            "    variance = torch.mean(torch.pow(hidden_states, 2), [-1], True)\n"
            "    hidden_states0 = torch.mul(hidden_states, torch.rsqrt(torch.add(variance, {})))\n"
            "    return torch.type_as(torch.mul(hidden_states0, torch.add(torch.to({}, 6), {})), input)\n",
            num(o.eps), w, num(o.weight_offset));
        cls = prefix + "RMSNormOffset";
      } else {
        body = fmt::format(
            "    hidden_states = torch.to(input, 6)\n"
            "    variance = torch.mean(torch.pow(hidden_states, 2), [-1], True)\n"
            "    hidden_states0 = torch.mul(hidden_states, torch.rsqrt(torch.add(variance, {})))\n"
            "    return torch.mul({}, torch.type_as(hidden_states0, input))\n",
            num(o.eps), w);
      }
      if (o.norm_group > 0 && o.weight_offset != 0.0f)
        return make_error(ErrorCode::Unsupported, "a per-head RMSNorm with a weight offset ('{}') is not supported", o.name);
      if (o.norm_group > 0) cls = prefix + "HeadRMSNorm";
      break;
    case OpKind::LayerNorm:
      cls = "LayerNorm";
      body = fmt::format("    return torch.layer_norm(input, [torch.size(input, -1)], {}, {}, {})\n", w,
                         b.empty() ? "None" : b, num(o.eps));
      break;
    default: return make_error(ErrorCode::Internal, "op '{}' cannot be a module's forward", o.name);
  }
  return std::pair{cls, "  def forward(self: @SELF@,\n    input: Tensor) -> Tensor:\n" + body};
}

std::string class_prefix(arch::Family f) {
  const arch::FamilyInfo* row = arch::find_family(f);
  if (!row) return "";
  std::string a(row->hf_architecture);
  for (std::string_view suffix : {"ForCausalLM", "LMHeadModel"})
    if (a.ends_with(suffix)) return a.substr(0, a.size() - suffix.size());
  return a;
}

std::string container_class(const ModuleNode& n, const std::string& prefix, bool layer) {
  if (n.is_list) return "ModuleList";
  if (layer) return prefix + "DecoderLayer";
  static const std::map<std::string, std::string> kNames = {
      {"model", "Model"},         {"transformer", "Model"}, {"self_attn", "Attention"},
      {"attn", "Attention"},      {"mlp", "MLP"},           {"rotary_emb", "RotaryEmbedding"}};
  if (auto it = kNames.find(n.attr); it != kNames.end()) return prefix + it->second;
  std::string s = prefix;
  bool up = true;
  for (char c : n.attr) {
    if (c == '_') {
      up = true;
      continue;
    }
    s.push_back(up ? char(std::toupper(static_cast<unsigned char>(c))) : c);
    up = false;
  }
  return s;
}

}  // namespace mc::torchscript::detail
