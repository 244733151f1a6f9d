// The forward graph of each supported architecture, written once. The math follows the HF
// modelling code (formats.md §11.1 for the config fields, §10 for MiniCPM's muP factors, which
// stay explicit Scale ops here so that a converted plain-Llama model can be checked against the
// original).
#include <cmath>
#include <numbers>

#include "graph/graph.h"

namespace mc::graph {

namespace {

class Builder {
 public:
  explicit Builder(Graph& g) : g_(g) {}

  ValueId value(std::string name, int64_t width) {
    g_.values.push_back({std::move(name), width});
    return static_cast<ValueId>(g_.values.size() - 1);
  }
  // Adds an op writing a new value named after the op.
  Op& op(OpKind kind, std::string name, std::vector<ValueId> inputs, int64_t width) {
    const ValueId out = value(name, width);
    Op o;
    o.kind = kind;
    o.name = std::move(name);
    o.inputs = std::move(inputs);
    o.output = out;
    g_.ops.push_back(std::move(o));
    return g_.ops.back();
  }
  ValueId matmul(std::string name, ValueId x, int64_t out, std::string w, std::string b = "",
                 bool in_out = false) {
    Op& o = op(OpKind::MatMul, std::move(name), {x}, out);
    o.weight = std::move(w);
    o.bias = std::move(b);
    o.weight_in_out = in_out;
    return o.output;
  }
  ValueId norm(OpKind kind, std::string name, ValueId x, std::string w, std::string b, double eps) {
    Op& o = op(kind, std::move(name), {x}, g_.values[x].width);
    o.weight = std::move(w);
    o.bias = std::move(b);
    o.eps = eps;
    return o.output;
  }
  ValueId binary(OpKind kind, std::string name, ValueId a, ValueId b) {
    return op(kind, std::move(name), {a, b}, g_.values[a].width).output;
  }
  ValueId scale(std::string name, ValueId x, double s) {
    Op& o = op(OpKind::Scale, std::move(name), {x}, g_.values[x].width);
    o.scale = s;
    return o.output;
  }
  ValueId slice(std::string name, ValueId x, int64_t begin, int64_t end) {
    Op& o = op(OpKind::Slice, std::move(name), {x}, end - begin);
    o.begin = begin;
    o.end = end;
    return o.output;
  }

 private:
  Graph& g_;
};

Error unsupported(std::string what, std::string hint) {
  return make_error(ErrorCode::Unsupported, "{}", what).with_hint(std::move(hint));
}

double num_or(const ojson& j, const char* key, double dflt) {
  auto it = j.find(key);
  return (it != j.end() && it->is_number()) ? it->get<double>() : dflt;
}

// HF's inv_freq for the default / linear / llama3 / longrope rules
// (transformers modeling_rope_utils; MiniCPM's own LongRoPE class for longrope).
Result<RopeSpec> make_rope(const arch::ArchConfig& c, int64_t n_heads) {
  RopeSpec r;
  r.n_heads = n_heads;
  r.head_dim = c.head_dim;
  r.theta = c.rope_theta;
  const int64_t half = c.head_dim / 2;
  if (c.head_dim % 2 != 0)
    return unsupported(fmt::format("RoPE needs an even head_dim, config gives {}", c.head_dim),
                       "check head_dim / hidden_size / num_attention_heads in config.json");
  r.inv_freq.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    r.inv_freq[static_cast<size_t>(i)] = static_cast<float>(1.0 / std::pow(c.rope_theta, static_cast<double>(e)));
  }
  const ojson& rs = c.rope_scaling;
  if (!rs.is_object()) return r;
  std::string type = "default";
  if (auto t = rs.find("rope_type"); t != rs.end() && t->is_string()) type = t->get<std::string>();
  else if (auto t2 = rs.find("type"); t2 != rs.end() && t2->is_string()) type = t2->get<std::string>();
  r.scaling = type;
  if (type == "default") return r;
  if (type == "linear") {
    const double f = num_or(rs, "factor", 1.0);
    if (!(f > 0)) return unsupported("rope_scaling.factor must be positive", "fix config.json");
    for (auto& v : r.inv_freq) v = static_cast<float>(v / f);
    return r;
  }
  if (type == "llama3") {
    const double factor = num_or(rs, "factor", 8.0);
    const double lo = num_or(rs, "low_freq_factor", 1.0);
    const double hi = num_or(rs, "high_freq_factor", 4.0);
    const double old_ctx = num_or(rs, "original_max_position_embeddings", 8192.0);
    if (!(factor > 0) || !(hi > lo))
      return unsupported("rope_scaling (llama3) needs factor > 0 and high_freq_factor > low_freq_factor",
                         "fix config.json");
    const double lo_wl = old_ctx / lo, hi_wl = old_ctx / hi;
    for (auto& v : r.inv_freq) {
      const double f = v, wl = 2.0 * std::numbers::pi / f;
      double out = f;
      if (wl > lo_wl) out = f / factor;
      else if (wl >= hi_wl) {
        const double smooth = (old_ctx / wl - lo) / (hi - lo);
        out = (1.0 - smooth) * f / factor + smooth * f;
      }
      v = static_cast<float>(out);
    }
    return r;
  }
  if (type == "longrope" || type == "su") {  // "su": Phi-3's first name for it
    auto sf = rs.find("short_factor");
    if (sf == rs.end() || !sf->is_array() || static_cast<int64_t>(sf->size()) != half)
      return unsupported(fmt::format("rope_scaling (longrope) needs short_factor with {} entries", half),
                         "fix config.json");
    const double orig = num_or(rs, "original_max_position_embeddings",
                               static_cast<double>(c.max_position));
    for (int64_t i = 0; i < half; ++i) {
      const auto& f = (*sf)[static_cast<size_t>(i)];
      if (!f.is_number()) return unsupported("longrope short_factor holds a non-number", "fix config.json");
      const float e = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
      r.inv_freq[static_cast<size_t>(i)] = static_cast<float>(
          1.0 / (f.get<double>() * std::pow(c.rope_theta, static_cast<double>(e))));
    }
    const double factor = static_cast<double>(c.max_position) / orig;
    r.attention_factor = static_cast<float>(num_or(
        rs, "attention_factor", factor <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(factor) / std::log(orig))));
    // Past the original context the long factors apply; the reference runtime stops there.
    r.max_position = static_cast<int64_t>(orig);
    return r;
  }
  return unsupported(fmt::format("rope_scaling type '{}' is not supported by the reference runtime", type),
                     "supported: default, linear, llama3, longrope");
}

const char* gelu_or_silu(const std::string& act) {
  if (act == "silu" || act == "swish") return "silu";
  if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast") return "gelu_tanh";
  if (act == "gelu") return "gelu";
  return nullptr;
}

// A float constant as a tensor of the model's dtype holds it (HF computes Gemma's embedding
// normalizer as torch.tensor(sqrt(hidden), dtype=the model dtype)).
double in_model_dtype(double v, const std::string& torch_dtype) {
  if (torch_dtype == "bfloat16") return bf16_to_f32(f32_to_bf16(static_cast<float>(v)));
  if (torch_dtype == "float16") return f16_to_f32(f32_to_f16(static_cast<float>(v)));
  return static_cast<float>(v);
}

// The Llama-like decoder of llama, mistral, qwen2, minicpm, qwen3, phi3 and gemma; they differ in
// biases, the sliding window, MiniCPM's three muP scales, Qwen3's per-head q/k norms, Phi-3's fused
// projections and Gemma's (1 + w) norms and scaled embeddings (the family row's flags).
Result<Graph> build_llama_like(const arch::ArchConfig& c, const TensorStore& ts, const ojson* raw) {
  Graph g;
  g.family = c.family;
  g.vocab_size = c.vocab_size;
  Builder b(g);
  b.value("input_ids", 1);
  b.value("position_ids", 1);
  const arch::FamilyInfo& row = *c.info();
  const int64_t H = c.hidden_size, hd = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
  const char* act = gelu_or_silu(c.hidden_act);
  if (!act)
    return unsupported(fmt::format("hidden_act '{}' is not supported by the reference runtime", c.hidden_act),
                       "supported: silu, gelu_pytorch_tanh, gelu_new, gelu");
  const float norm_offset = row.norm_plus_one ? 1.0f : 0.0f;
  auto rms = [&](std::string name, ValueId x, std::string w) {
    const ValueId y = b.norm(OpKind::RMSNorm, std::move(name), x, std::move(w), "", c.norm_eps);
    g.ops.back().weight_offset = norm_offset;
    return y;
  };
  const RopeSpec q_rope = MC_TRY(make_rope(c, nh));
  RopeSpec k_rope = q_rope;
  k_rope.n_heads = nkv;
  const bool mup = c.is_mup();
  const double resid = mup ? c.scale_depth / std::sqrt(static_cast<double>(c.num_layers)) : 1.0;
  int64_t max_window_layers = 0;
  const bool flagged_window = row.sliding == arch::SlidingWindow::Flagged;
  if (flagged_window && raw) max_window_layers = static_cast<int64_t>(num_or(*raw, "max_window_layers", 0));

  Op& emb = b.op(OpKind::Embedding, "embed_tokens", {g.input_ids}, H);
  emb.weight = "model.embed_tokens.weight";
  ValueId h = emb.output;
  if (mup) h = b.scale("embed_scale", h, c.scale_emb);
  if (row.embed_scale_sqrt)
    h = b.scale("embed_scale", h, in_model_dtype(std::sqrt(static_cast<double>(H)), c.torch_dtype));

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l), n = fmt::format("layers.{}.", l);
    const ValueId x = rms(n + "input_layernorm", h, p + "input_layernorm.weight");
    const auto bias = [&](const char* proj, bool on) { return on ? p + "self_attn." + proj + ".bias" : std::string(); };
    ValueId q, k, v;
    if (row.fused_qkv) {
      const ValueId qkv = b.matmul(n + "attn.qkv_proj", x, (nh + 2 * nkv) * hd, p + "self_attn.qkv_proj.weight",
                                   bias("qkv_proj", c.qkv_bias));
      q = b.slice(n + "attn.q", qkv, 0, nh * hd);
      k = b.slice(n + "attn.k", qkv, nh * hd, (nh + nkv) * hd);
      v = b.slice(n + "attn.v", qkv, (nh + nkv) * hd, (nh + 2 * nkv) * hd);
    } else {
      q = b.matmul(n + "attn.q_proj", x, nh * hd, p + "self_attn.q_proj.weight", bias("q_proj", c.qkv_bias));
      k = b.matmul(n + "attn.k_proj", x, nkv * hd, p + "self_attn.k_proj.weight", bias("k_proj", c.qkv_bias));
      v = b.matmul(n + "attn.v_proj", x, nkv * hd, p + "self_attn.v_proj.weight", bias("v_proj", c.qkv_bias));
    }
    if (row.qk_norm) {  // per head, before RoPE
      q = b.norm(OpKind::RMSNorm, n + "attn.q_norm", q, p + "self_attn.q_norm.weight", "", c.norm_eps);
      g.ops.back().norm_group = hd;
      k = b.norm(OpKind::RMSNorm, n + "attn.k_norm", k, p + "self_attn.k_norm.weight", "", c.norm_eps);
      g.ops.back().norm_group = hd;
    }
    Op& rq = b.op(OpKind::RoPE, n + "attn.q_rope", {q, g.position_ids}, nh * hd);
    rq.rope = q_rope;
    q = rq.output;
    Op& rk = b.op(OpKind::RoPE, n + "attn.k_rope", {k, g.position_ids}, nkv * hd);
    rk.rope = k_rope;
    k = rk.output;
    Op& at = b.op(OpKind::Attention, n + "attn.attention", {q, k, v}, nh * hd);
    at.attn = {nh, nkv, hd, 1.0 / std::sqrt(static_cast<double>(hd)), std::nullopt};
    if (c.sliding_window && (!flagged_window || l >= max_window_layers))
      at.attn.window = *c.sliding_window;
    ValueId o = b.matmul(n + "attn.o_proj", at.output, H, p + "self_attn.o_proj.weight", bias("o_proj", c.o_bias));
    if (mup) o = b.scale(n + "attn.residual_scale", o, resid);
    h = b.binary(OpKind::Add, n + "attn.residual", h, o);

    const ValueId y = rms(n + "post_attention_layernorm", h, p + "post_attention_layernorm.weight");
    const auto mb = [&](const char* proj) { return c.mlp_bias ? p + "mlp." + proj + ".bias" : std::string(); };
    const int64_t I = c.intermediate_size;
    ValueId gate, up;
    if (row.fused_gate_up) {
      const ValueId gu = b.matmul(n + "mlp.gate_up_proj", y, 2 * I, p + "mlp.gate_up_proj.weight", mb("gate_up_proj"));
      gate = b.slice(n + "mlp.gate", gu, 0, I);
      up = b.slice(n + "mlp.up", gu, I, 2 * I);
    } else {
      gate = b.matmul(n + "mlp.gate_proj", y, I, p + "mlp.gate_proj.weight", mb("gate_proj"));
      up = b.matmul(n + "mlp.up_proj", y, I, p + "mlp.up_proj.weight", mb("up_proj"));
    }
    ValueId m;
    if (std::string_view(act) == "silu") {
      m = b.binary(OpKind::SwiGLU, n + "mlp.swiglu", gate, up);
    } else {
      const OpKind kind = std::string_view(act) == "gelu" ? OpKind::GELU : OpKind::GELUTanh;
      const ValueId ga = b.op(kind, n + "mlp.act", {gate}, I).output;
      m = b.binary(OpKind::Mul, n + "mlp.gated", ga, up);
    }
    ValueId d = b.matmul(n + "mlp.down_proj", m, H, p + "mlp.down_proj.weight", mb("down_proj"));
    if (mup) d = b.scale(n + "mlp.residual_scale", d, resid);
    h = b.binary(OpKind::Add, n + "mlp.residual", h, d);
  }
  ValueId x = rms("norm", h, "model.norm.weight");
  if (mup) x = b.scale("logit_scale", x, c.dim_model_base / static_cast<double>(H));
  const bool has_head = ts.contains("lm_head.weight");
  g.logits = b.matmul("lm_head", x, c.vocab_size, has_head ? "lm_head.weight" : "model.embed_tokens.weight");
  return g;
}

// GPT-2: learned positions, pre-LayerNorm, fused qkv Conv1D ([in, out] weights), gelu_new MLP.
Result<Graph> build_gpt2(const arch::ArchConfig& c, const TensorStore& ts, const ojson* raw) {
  Graph g;
  g.family = c.family;
  g.vocab_size = c.vocab_size;
  g.max_positions = c.max_position;
  Builder b(g);
  b.value("input_ids", 1);
  b.value("position_ids", 1);
  const std::string pre = ts.contains("transformer.wte.weight") ? "transformer." : "";
  const int64_t H = c.hidden_size, nh = c.num_heads, hd = c.head_dim;
  if (!gelu_or_silu(c.hidden_act) || std::string_view(gelu_or_silu(c.hidden_act)) != "gelu_tanh")
    return unsupported(fmt::format("GPT-2 activation_function '{}' is not supported", c.hidden_act),
                       "supported: gelu_new, gelu_pytorch_tanh");
  bool scale_attn = true;
  if (raw) {
    if (auto it = raw->find("scale_attn_weights"); it != raw->end() && it->is_boolean()) scale_attn = it->get<bool>();
    if (auto it = raw->find("scale_attn_by_inverse_layer_idx"); it != raw->end() && it->is_boolean() && it->get<bool>())
      return unsupported("GPT-2 scale_attn_by_inverse_layer_idx is not supported", "");
  }

  Op& wte = b.op(OpKind::Embedding, "wte", {g.input_ids}, H);
  wte.weight = pre + "wte.weight";
  Op& wpe = b.op(OpKind::PositionEmbedding, "wpe", {g.position_ids}, H);
  wpe.weight = pre + "wpe.weight";
  ValueId h = b.binary(OpKind::Add, "embed", g.ops[0].output, g.ops[1].output);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("{}h.{}.", pre, l), n = fmt::format("h.{}.", l);
    const ValueId x = b.norm(OpKind::LayerNorm, n + "ln_1", h, p + "ln_1.weight", p + "ln_1.bias", c.norm_eps);
    const ValueId qkv = b.matmul(n + "attn.c_attn", x, 3 * H, p + "attn.c_attn.weight", p + "attn.c_attn.bias", true);
    const ValueId q = b.slice(n + "attn.q", qkv, 0, H);
    const ValueId k = b.slice(n + "attn.k", qkv, H, 2 * H);
    const ValueId v = b.slice(n + "attn.v", qkv, 2 * H, 3 * H);
    Op& at = b.op(OpKind::Attention, n + "attn.attention", {q, k, v}, H);
    at.attn = {nh, nh, hd, scale_attn ? 1.0 / std::sqrt(static_cast<double>(hd)) : 1.0, std::nullopt};
    const ValueId o = b.matmul(n + "attn.c_proj", at.output, H, p + "attn.c_proj.weight", p + "attn.c_proj.bias", true);
    h = b.binary(OpKind::Add, n + "attn.residual", h, o);
    const ValueId y = b.norm(OpKind::LayerNorm, n + "ln_2", h, p + "ln_2.weight", p + "ln_2.bias", c.norm_eps);
    const ValueId f = b.matmul(n + "mlp.c_fc", y, c.intermediate_size, p + "mlp.c_fc.weight", p + "mlp.c_fc.bias", true);
    const ValueId a = b.op(OpKind::GELUTanh, n + "mlp.act", {f}, c.intermediate_size).output;
    const ValueId d = b.matmul(n + "mlp.c_proj", a, H, p + "mlp.c_proj.weight", p + "mlp.c_proj.bias", true);
    h = b.binary(OpKind::Add, n + "mlp.residual", h, d);
  }
  const ValueId x = b.norm(OpKind::LayerNorm, "ln_f", h, pre + "ln_f.weight", pre + "ln_f.bias", c.norm_eps);
  const bool has_head = ts.contains("lm_head.weight");
  g.logits = b.matmul("lm_head", x, c.vocab_size, has_head ? "lm_head.weight" : pre + "wte.weight");
  return g;
}

}  // namespace

Result<Graph> build_graph(const arch::ArchConfig& cfg, const TensorStore& tensors, const ojson* raw) {
  if (cfg.num_heads <= 0 || cfg.num_kv_heads <= 0 || cfg.head_dim <= 0 || cfg.num_heads % cfg.num_kv_heads != 0)
    return unsupported(fmt::format("attention shape heads={} kv_heads={} head_dim={} is invalid",
                                   cfg.num_heads, cfg.num_kv_heads, cfg.head_dim),
                       "fix config.json");
  if (const arch::FamilyInfo* row = cfg.info()) {
    switch (row->decoder) {
      case arch::Decoder::LlamaLike: return build_llama_like(cfg, tensors, raw);
      case arch::Decoder::GPT2: return build_gpt2(cfg, tensors, raw);
    }
  }
  return unsupported(fmt::format("model_type '{}' has no forward graph", cfg.model_type),
                     "run `modelconvert list architectures` for the families the runtime knows");
}

Result<Graph> build_graph(const Model& model) {
  const arch::ArchConfig cfg = MC_TRY(arch::from_hf_config(model.config));
  return build_graph(cfg, model.tensors, &model.config);
}

}  // namespace mc::graph
