// IR op -> ONNX nodes (the contract is in emit.h). Each IR op becomes a few opset-17 nodes:
//   Embedding / PositionEmbedding  Gather(W, ids) on the flattened [N] ids / positions
//   RMSNorm     x / Sqrt(ReduceMean(x·x, axes=[-1]) + eps) · w
//   LayerNorm   LayerNormalization(x, w, b, axis=-1)
//   MatMul      Gemm(x, W, b, transB = 1 unless the weight is [in, out])
//   Add / Mul / Scale / Slice / SiLU / SwiGLU / GELUTanh   elementwise ops (tanh-form GELU)
//   RoPE        x·cos + rotate_half(x)·sin on [N, heads, head_dim], cos/sin shared per spec
//   Attention   Reshape/Transpose to [B, H, S, D], Concat with the past, GQA Expand, MatMul,
//               scale, Where(mask), Softmax, MatMul, back to [N, H·D]
#include "formats/onnx/emit.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <map>

namespace mc::onnx {

std::string past_name(size_t i, bool key) { return fmt::format("past_key_values.{}.{}", i, key ? "key" : "value"); }
std::string present_name(size_t i, bool key) { return fmt::format("present.{}.{}", i, key ? "key" : "value"); }

namespace {

using graph::Op;
using graph::OpKind;

Attr attr_i(std::string n, int64_t v) { return {.name = std::move(n), .kind = Attr::Int, .i = v}; }
Attr attr_f(std::string n, float v) { return {.name = std::move(n), .kind = Attr::Float, .f = v}; }
Attr attr_ints(std::string n, std::vector<int64_t> v) {
  return {.name = std::move(n), .kind = Attr::Ints, .ints = std::move(v)};
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

class Emitter {
 public:
  Emitter(const graph::Graph& g, const TensorStore& ts) : g_(g), ts_(ts) {}

  Result<GraphOut> run() {
    MC_CHECK(graph::check_weights(g_, ts_));
    declare_io();
    names_.assign(g_.values.size(), "");
    ids_shape_ = node("Shape", {"input_ids"}, {}, "/ids_shape");
    names_[static_cast<size_t>(g_.input_ids)] = node("Reshape", {"input_ids", i64({-1})}, {}, "/input_ids_flat");
    names_[static_cast<size_t>(g_.position_ids)] =
        node("Reshape", {"position_ids", i64({-1})}, {}, "/position_ids_flat");
    for (const Op& op : g_.ops) MC_CHECK(emit(op));
    // [N, V] -> [B, S, V]
    const std::string shape = node("Concat", {ids_shape_, i64({g_.vocab_size})}, {attr_i("axis", 0)}, "/logits_shape");
    node("Reshape", {val(g_.logits), shape}, {}, "/logits", "logits");
    if (layer_ != n_layers_)
      return make_error(ErrorCode::Internal, "emitted {} attention layers, declared {}", layer_, n_layers_);
    return std::move(out_);
  }

 private:
  const graph::Graph& g_;
  const TensorStore& ts_;
  GraphOut out_;
  std::vector<std::string> names_;  // ONNX name of each IR value
  std::map<std::string, std::string> consts_, weights_f32_, rope_cache_, mask_cache_;
  std::map<std::string, int> used_;
  std::string ids_shape_, pos_col_;
  size_t layer_ = 0, n_layers_ = 0;

  const std::string& val(graph::ValueId v) const { return names_[static_cast<size_t>(v)]; }

  std::string unique(const std::string& base) {
    const int n = used_[base]++;
    return n == 0 ? base : fmt::format("{}_{}", base, n);
  }
  // Adds a node; its (single) output is `out` or a fresh name derived from `name`.
  std::string node(std::string op, std::vector<std::string> in, std::vector<Attr> attrs, const std::string& name,
                   std::string out = "") {
    Node n;
    n.name = unique(name + "/" + op);
    n.op_type = std::move(op);
    n.inputs = std::move(in);
    n.attrs = std::move(attrs);
    n.outputs.push_back(out.empty() ? unique(name) : std::move(out));
    out_.nodes.push_back(std::move(n));
    return out_.nodes.back().outputs[0];
  }
  std::string constant(int32_t type, Shape dims, std::string bytes, const std::string& label) {
    const std::string key = fmt::format("{}|{}|", type, shape_str(dims)) + bytes;
    auto it = consts_.find(key);
    if (it != consts_.end()) return it->second;
    InitOut c;
    c.name = unique("const/" + label);
    c.data_type = type;
    c.dims = std::move(dims);
    c.inline_bytes = std::move(bytes);
    out_.inits.push_back(std::move(c));
    return consts_[key] = out_.inits.back().name;
  }
  std::string i64(std::vector<int64_t> v) {
    std::string label = "i64";
    for (int64_t x : v) label += fmt::format("_{}", x);
    const Shape dims{static_cast<int64_t>(v.size())};
    return constant(kInt64, dims, bytes_of(v), label);
  }
  std::string i64_scalar(int64_t v) { return constant(kInt64, {}, bytes_of(std::vector<int64_t>{v}), fmt::format("i64s_{}", v)); }
  std::string f32_scalar(float v, const std::string& label) {
    return constant(kFloat, {}, bytes_of(std::vector<float>{v}), label);
  }

  // An f32 view of a weight: the initializer itself, or a Cast of an f16 one.
  std::string weight(const std::string& name) {
    auto it = weights_f32_.find(name);
    if (it != weights_f32_.end()) return it->second;
    const TensorEntry* e = ts_.find(name);
    InitOut w;
    w.name = name;
    w.data_type = *onnx_from_dtype(e->dtype);
    w.dims = e->shape;
    w.source = e;
    out_.inits.push_back(std::move(w));
    std::string ref = name;
    if (e->dtype != DType::F32) ref = node("Cast", {name}, {attr_i("to", kFloat)}, "/" + name + "/f32");
    return weights_f32_[name] = ref;
  }

  void declare_io() {
    auto dyn = [](std::initializer_list<Dim> d) { return std::vector<Dim>(d); };
    out_.inputs.push_back({"input_ids", kInt64, dyn({"batch_size", "sequence_length"})});
    out_.inputs.push_back({"attention_mask", kInt64, dyn({"batch_size", "total_sequence_length"})});
    out_.inputs.push_back({"position_ids", kInt64, dyn({"batch_size", "sequence_length"})});
    std::vector<const Op*> attn;
    for (const Op& op : g_.ops)
      if (op.kind == OpKind::Attention) attn.push_back(&op);
    n_layers_ = attn.size();
    for (size_t i = 0; i < attn.size(); ++i)
      for (bool key : {true, false})
        out_.inputs.push_back({past_name(i, key), kFloat,
                               dyn({"batch_size", attn[i]->attn.n_kv_heads, "past_sequence_length",
                                    attn[i]->attn.head_dim})});
    out_.outputs.push_back({"logits", kFloat, dyn({"batch_size", "sequence_length", g_.vocab_size})});
    for (size_t i = 0; i < attn.size(); ++i)
      for (bool key : {true, false})
        out_.outputs.push_back({present_name(i, key), kFloat,
                                dyn({"batch_size", attn[i]->attn.n_kv_heads, "total_sequence_length",
                                     attn[i]->attn.head_dim})});
  }

  // cos and sin [N, 1, head_dim] of a RoPE spec, built once per distinct spec.
  std::pair<std::string, std::string> rope_tables(const graph::RopeSpec& r) {
    const std::string key = fmt::format("{}|{}|", r.attention_factor, r.head_dim) + bytes_of(r.inv_freq);
    auto it = rope_cache_.find(key);
    if (it != rope_cache_.end()) return {it->second, rope_cache_[key + "sin"]};
    if (pos_col_.empty()) {
      const std::string pf = node("Cast", {val(g_.position_ids)}, {attr_i("to", kFloat)}, "/rope/positions_f32");
      pos_col_ = node("Unsqueeze", {pf, i64({1})}, {}, "/rope/positions_col");
    }
    const int64_t half = static_cast<int64_t>(r.inv_freq.size());
    const std::string inv = constant(kFloat, {1, half}, bytes_of(r.inv_freq), "rope_inv_freq");
    const std::string ang = node("Mul", {pos_col_, inv}, {}, "/rope/angles");
    const std::string emb = node("Concat", {ang, ang}, {attr_i("axis", 1)}, "/rope/angles2");
    std::string c = node("Cos", {emb}, {}, "/rope/cos"), s = node("Sin", {emb}, {}, "/rope/sin");
    if (r.attention_factor != 1.0f) {
      const std::string f = f32_scalar(r.attention_factor, "rope_attention_factor");
      c = node("Mul", {c, f}, {}, "/rope/cos_scaled");
      s = node("Mul", {s, f}, {}, "/rope/sin_scaled");
    }
    c = node("Unsqueeze", {c, i64({1})}, {}, "/rope/cos3");
    s = node("Unsqueeze", {s, i64({1})}, {}, "/rope/sin3");
    rope_cache_[key + "sin"] = s;
    return {rope_cache_[key] = c, s};
  }

  // bool [B, 1, S, T]: which keys each query of the chunk may see (see emit.h).
  std::string mask(std::optional<int64_t> window) {
    const std::string key = window ? std::to_string(*window) : "none";
    auto it = mask_cache_.find(key);
    if (it != mask_cache_.end()) return it->second;
    std::string causal = mask_cache_["causal"];
    std::string q_col = mask_cache_["q_col"], k_row = mask_cache_["k_row"];
    if (causal.empty()) {
      const std::string am_shape = node("Shape", {"attention_mask"}, {}, "/mask/mask_shape");
      const std::string one = i64_scalar(1);
      const std::string T = node("Gather", {am_shape, one}, {attr_i("axis", 0)}, "/mask/total_len");
      const std::string S = node("Gather", {ids_shape_, one}, {attr_i("axis", 0)}, "/mask/seq_len");
      const std::string past = node("Sub", {T, S}, {}, "/mask/past_len");
      const std::string q_idx = node("Range", {past, T, one}, {}, "/mask/query_index");
      const std::string k_idx = node("Range", {i64_scalar(0), T, one}, {}, "/mask/key_index");
      q_col = node("Unsqueeze", {q_idx, i64({1})}, {}, "/mask/query_col");
      k_row = node("Unsqueeze", {k_idx, i64({0})}, {}, "/mask/key_row");
      const std::string c = node("LessOrEqual", {k_row, q_col}, {}, "/mask/causal");
      const std::string pad = node("Cast", {"attention_mask"}, {attr_i("to", kBool)}, "/mask/keep");
      const std::string pad4 = node("Unsqueeze", {pad, i64({1, 2})}, {}, "/mask/keep4");
      causal = node("And", {pad4, c}, {}, "/mask/allowed");
      mask_cache_["causal"] = causal;
      mask_cache_["q_col"] = q_col;
      mask_cache_["k_row"] = k_row;
      mask_cache_["none"] = causal;
    }
    if (!window) return causal;
    const std::string dist = node("Sub", {q_col, k_row}, {}, "/mask/distance");
    const std::string in = node("Less", {dist, i64_scalar(*window)}, {}, fmt::format("/mask/window_{}", *window));
    return mask_cache_[key] = node("And", {causal, in}, {}, fmt::format("/mask/allowed_window_{}", *window));
  }

  std::string attention(const Op& op, const std::string& q, const std::string& k, const std::string& v) {
    const graph::AttentionSpec& a = op.attn;
    const std::string n = "/" + op.name;
    const size_t l = layer_++;
    auto heads = [&](const std::string& x, int64_t h, const char* what) {
      const std::string shape = node("Concat", {ids_shape_, i64({h, a.head_dim})}, {attr_i("axis", 0)},
                                     fmt::format("{}/{}_shape", n, what));
      const std::string r = node("Reshape", {x, shape}, {}, fmt::format("{}/{}_bshd", n, what));
      return node("Transpose", {r}, {attr_ints("perm", {0, 2, 1, 3})}, fmt::format("{}/{}_bhsd", n, what));
    };
    const std::string qh = heads(q, a.n_heads, "q");
    std::string kh = node("Concat", {past_name(l, true), heads(k, a.n_kv_heads, "k")}, {attr_i("axis", 2)},
                          n + "/k_cache", present_name(l, true));
    std::string vh = node("Concat", {past_name(l, false), heads(v, a.n_kv_heads, "v")}, {attr_i("axis", 2)},
                          n + "/v_cache", present_name(l, false));
    const int64_t group = a.n_heads / a.n_kv_heads;
    if (group > 1) {
      auto repeat = [&](const std::string& x, const char* what) {
        const std::string u = node("Unsqueeze", {x, i64({2})}, {}, fmt::format("{}/{}_5d", n, what));
        const std::string e = node("Expand", {u, i64({1, 1, group, 1, 1})}, {}, fmt::format("{}/{}_repeat", n, what));
        return node("Reshape", {e, i64({0, a.n_heads, -1, a.head_dim})}, {}, fmt::format("{}/{}_heads", n, what));
      };
      kh = repeat(kh, "k");
      vh = repeat(vh, "v");
    }
    const std::string kt = node("Transpose", {kh}, {attr_ints("perm", {0, 1, 3, 2})}, n + "/k_t");
    std::string sc = node("MatMul", {qh, kt}, {}, n + "/scores");
    sc = node("Mul", {sc, f32_scalar(static_cast<float>(a.scale), "attn_scale")}, {}, n + "/scores_scaled");
    const std::string lowest = f32_scalar(std::numeric_limits<float>::lowest(), "mask_lowest");
    sc = node("Where", {mask(a.window), sc, lowest}, {}, n + "/scores_masked");
    const std::string p = node("Softmax", {sc}, {attr_i("axis", -1)}, n + "/probs");
    const std::string o = node("MatMul", {p, vh}, {}, n + "/context");
    const std::string ot = node("Transpose", {o}, {attr_ints("perm", {0, 2, 1, 3})}, n + "/context_bshd");
    return node("Reshape", {ot, i64({-1, a.n_heads * a.head_dim})}, {}, n);
  }

  Status emit(const Op& op) {
    const std::string n = "/" + op.name;
    auto in = [&](size_t i) -> const std::string& { return val(op.inputs[i]); };
    std::string y;
    switch (op.kind) {
      case OpKind::Embedding:
      case OpKind::PositionEmbedding:
        y = node("Gather", {weight(op.weight), in(0)}, {attr_i("axis", 0)}, n);
        break;
      case OpKind::RMSNorm: {
        // One norm per group of norm_group columns (a head: qwen3's q/k norms) when set.
        const int64_t width = g_.values[static_cast<size_t>(op.output)].width;
        const std::string x = op.norm_group > 0
                                  ? node("Reshape", {in(0), i64({-1, op.norm_group})}, {}, n + "/groups")
                                  : in(0);
        const std::string sq = node("Mul", {x, x}, {}, n + "/square");
        const std::string ms = node("ReduceMean", {sq}, {attr_ints("axes", {-1}), attr_i("keepdims", 1)}, n + "/mean");
        const std::string ve = node("Add", {ms, f32_scalar(static_cast<float>(op.eps), "norm_eps")}, {}, n + "/mean_eps");
        const std::string rt = node("Sqrt", {ve}, {}, n + "/rms");
        const std::string nx = node("Div", {x, rt}, {}, n + "/normed");
        std::string w = weight(op.weight);
        if (op.weight_offset != 0.0f)  // Gemma: x * (1 + w)
          w = node("Add", {w, f32_scalar(op.weight_offset, "norm_weight_offset")}, {}, n + "/weight_plus_offset");
        y = node("Mul", {nx, w}, {}, op.norm_group > 0 ? n + "/scaled" : n);
        if (op.norm_group > 0) y = node("Reshape", {y, i64({-1, width})}, {}, n);
        break;
      }
      case OpKind::LayerNorm:
        y = node("LayerNormalization", {in(0), weight(op.weight), weight(op.bias)},
                 {attr_i("axis", -1), attr_f("epsilon", static_cast<float>(op.eps))}, n);
        break;
      case OpKind::MatMul: {
        std::vector<std::string> ins{in(0), weight(op.weight)};
        if (!op.bias.empty()) ins.push_back(weight(op.bias));
        y = node("Gemm", std::move(ins), {attr_i("transB", op.weight_in_out ? 0 : 1)}, n);
        break;
      }
      case OpKind::Add: y = node("Add", {in(0), in(1)}, {}, n); break;
      case OpKind::Mul: y = node("Mul", {in(0), in(1)}, {}, n); break;
      case OpKind::Scale:
        y = node("Mul", {in(0), f32_scalar(static_cast<float>(op.scale), "scale")}, {}, n);
        break;
      case OpKind::Slice:
        y = node("Slice", {in(0), i64({op.begin}), i64({op.end}), i64({1})}, {}, n);
        break;
      case OpKind::SiLU:
        y = node("Mul", {in(0), node("Sigmoid", {in(0)}, {}, n + "/sigmoid")}, {}, n);
        break;
      case OpKind::SwiGLU: {
        const std::string s = node("Mul", {in(0), node("Sigmoid", {in(0)}, {}, n + "/sigmoid")}, {}, n + "/silu");
        y = node("Mul", {s, in(1)}, {}, n);
        break;
      }
      case OpKind::GELUTanh: {
        const std::string x = in(0);
        const std::string x3 = node("Mul", {node("Mul", {x, x}, {}, n + "/x2"), x}, {}, n + "/x3");
        const std::string inner = node("Add", {x, node("Mul", {x3, f32_scalar(0.044715f, "gelu_c")}, {}, n + "/cx3")}, {}, n + "/inner");
        const std::string t = node("Tanh", {node("Mul", {inner, f32_scalar(0.7978845608028654f, "gelu_sqrt_2_pi")}, {}, n + "/arg")}, {}, n + "/tanh");
        const std::string hx = node("Mul", {x, f32_scalar(0.5f, "half")}, {}, n + "/half_x");
        y = node("Mul", {hx, node("Add", {t, f32_scalar(1.0f, "one")}, {}, n + "/one_plus")}, {}, n);
        break;
      }
      case OpKind::GELU: {  // 0.5 x (1 + erf(x / sqrt(2)))
        const std::string x = in(0);
        const std::string e = node("Erf", {node("Mul", {x, f32_scalar(0.70710678118654752f, "gelu_inv_sqrt2")}, {}, n + "/arg")},
                                   {}, n + "/erf");
        const std::string hx = node("Mul", {x, f32_scalar(0.5f, "half")}, {}, n + "/half_x");
        y = node("Mul", {hx, node("Add", {e, f32_scalar(1.0f, "one")}, {}, n + "/one_plus")}, {}, n);
        break;
      }
      case OpKind::RoPE: {
        const graph::RopeSpec& r = op.rope;
        const int64_t half = r.head_dim / 2;
        const auto [c, s] = rope_tables(r);
        const std::string x3 = node("Reshape", {in(0), i64({-1, r.n_heads, r.head_dim})}, {}, n + "/heads");
        const std::string x1 = node("Slice", {x3, i64({0}), i64({half}), i64({2})}, {}, n + "/first_half");
        const std::string x2 = node("Slice", {x3, i64({half}), i64({r.head_dim}), i64({2})}, {}, n + "/second_half");
        const std::string rot = node("Concat", {node("Neg", {x2}, {}, n + "/neg"), x1}, {attr_i("axis", 2)}, n + "/rotated");
        const std::string sum = node("Add", {node("Mul", {x3, c}, {}, n + "/x_cos"), node("Mul", {rot, s}, {}, n + "/rot_sin")},
                                     {}, n + "/sum");
        y = node("Reshape", {sum, i64({-1, r.n_heads * r.head_dim})}, {}, n);
        break;
      }
      case OpKind::Attention:
        y = attention(op, in(0), in(1), in(2));
        break;
    }
    names_[static_cast<size_t>(op.output)] = y;
    return {};
  }
};

}  // namespace

Result<GraphOut> emit_decoder(const graph::Graph& g, const TensorStore& ts) {
  for (const auto& name : g.weight_names()) {
    const TensorEntry* e = ts.find(name);
    if (e && e->dtype != DType::F32 && e->dtype != DType::F16) {
      Error err = make_error(ErrorCode::Unsupported, "ONNX export takes f32 or f16 weights, this one is {}",
                             dtype_name(e->dtype));
      err.tensor = name;
      err.hint = "pass --dtype fp32 or --dtype fp16";
      return err;
    }
  }
  return Emitter(g, ts).run();
}

}  // namespace mc::onnx
