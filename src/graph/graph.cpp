// Graph utilities: names, printing, weight listing and the weight-shape check run before a
// graph is interpreted or emitted.
#include "graph/graph.h"

#include <unordered_set>

namespace mc::graph {

std::string_view op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::Embedding: return "Embedding";
    case OpKind::PositionEmbedding: return "PositionEmbedding";
    case OpKind::RMSNorm: return "RMSNorm";
    case OpKind::LayerNorm: return "LayerNorm";
    case OpKind::MatMul: return "MatMul";
    case OpKind::Add: return "Add";
    case OpKind::Mul: return "Mul";
    case OpKind::Scale: return "Scale";
    case OpKind::Slice: return "Slice";
    case OpKind::RoPE: return "RoPE";
    case OpKind::Attention: return "Attention";
    case OpKind::SiLU: return "SiLU";
    case OpKind::GELUTanh: return "GELUTanh";
    case OpKind::GELU: return "GELU";
    case OpKind::SwiGLU: return "SwiGLU";
  }
  return "?";
}

std::vector<std::string> Graph::weight_names() const {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (const auto& op : ops)
    for (const std::string* n : {&op.weight, &op.bias})
      if (!n->empty() && seen.insert(*n).second) out.push_back(*n);
  return out;
}

std::string Graph::to_string() const {
  std::string s;
  for (const auto& op : ops) {
    s += fmt::format("{} = {}(", values[op.output].name, op_kind_name(op.kind));
    for (size_t i = 0; i < op.inputs.size(); ++i)
      s += (i ? ", " : "") + values[op.inputs[i]].name;
    s += ")";
    if (!op.weight.empty()) s += fmt::format(" W={}{}", op.weight, op.weight_in_out ? " [in,out]" : "");
    if (!op.bias.empty()) s += fmt::format(" b={}", op.bias);
    switch (op.kind) {
      case OpKind::RMSNorm:
      case OpKind::LayerNorm:
        s += fmt::format(" eps={}", op.eps);
        if (op.norm_group > 0) s += fmt::format(" group={}", op.norm_group);
        if (op.weight_offset != 0.0f) s += fmt::format(" offset={}", op.weight_offset);
        break;
      case OpKind::Scale: s += fmt::format(" scale={}", op.scale); break;
      case OpKind::Slice: s += fmt::format(" cols=[{}, {})", op.begin, op.end); break;
      case OpKind::RoPE:
        s += fmt::format(" heads={} head_dim={} theta={} scaling={}", op.rope.n_heads,
                         op.rope.head_dim, op.rope.theta, op.rope.scaling);
        break;
      case OpKind::Attention:
        s += fmt::format(" heads={} kv_heads={} head_dim={} scale={}", op.attn.n_heads,
                         op.attn.n_kv_heads, op.attn.head_dim, op.attn.scale);
        if (op.attn.window) s += fmt::format(" window={}", *op.attn.window);
        break;
      default: break;
    }
    s += fmt::format(" -> [{}]\n", values[op.output].width);
  }
  return s;
}

namespace {
Error shape_error(const TensorEntry& t, const Shape& want, const Op& op) {
  return make_error(ErrorCode::Mismatch, "op '{}' ({}) needs shape {}, the tensor has {}", op.name,
                    op_kind_name(op.kind), shape_str(want), shape_str(t.shape))
      .with_tensor(t.name)
      .with_hint("the weights do not match config.json (hidden_size, heads, vocab_size?)");
}

Status expect(const TensorStore& ts, const std::string& name, const Shape& want, const Op& op) {
  const TensorEntry* t = ts.find(name);
  if (!t) {
    return make_error(ErrorCode::NotFound, "op '{}' ({}) needs tensor '{}', which is absent", op.name,
                      op_kind_name(op.kind), name)
        .with_tensor(name)
        .with_hint("the checkpoint is incomplete or its tensor names are not the HF ones");
  }
  if (t->shape != want) return shape_error(*t, want, op);
  return {};
}
}  // namespace

Status check_weights(const Graph& g, const TensorStore& ts) {
  for (const auto& op : g.ops) {
    const int64_t out_w = g.values[op.output].width;
    const int64_t in_w = op.inputs.empty() ? 0 : g.values[op.inputs[0]].width;
    switch (op.kind) {
      case OpKind::Embedding:
        MC_CHECK(expect(ts, op.weight, {g.vocab_size, out_w}, op));
        break;
      case OpKind::PositionEmbedding:
        MC_CHECK(expect(ts, op.weight, {g.max_positions, out_w}, op));
        break;
      case OpKind::RMSNorm:
      case OpKind::LayerNorm:
        MC_CHECK(expect(ts, op.weight, {op.norm_group > 0 ? op.norm_group : out_w}, op));
        if (!op.bias.empty()) MC_CHECK(expect(ts, op.bias, {out_w}, op));
        break;
      case OpKind::MatMul:
        MC_CHECK(expect(ts, op.weight, op.weight_in_out ? Shape{in_w, out_w} : Shape{out_w, in_w}, op));
        if (!op.bias.empty()) MC_CHECK(expect(ts, op.bias, {out_w}, op));
        break;
      default: break;
    }
  }
  return {};
}

}  // namespace mc::graph
