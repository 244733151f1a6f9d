// The layer-by-layer calibration driver (driver.h): plans the graph per decoder layer, runs the
// calibration sequences through the embedding, then quantizes one layer at a time.
#include "formats/gptq_awq/driver.h"

#include <algorithm>
#include <chrono>
#include <set>

namespace mc::gptq_awq {

namespace {

// "layers.12.attn.q_proj" -> 12; -1 for ops outside the decoder layers.
int64_t layer_of(const std::string& op_name) {
  if (!op_name.starts_with("layers.")) return -1;
  int64_t n = 0;
  size_t i = 7;
  if (i >= op_name.size() || op_name[i] < '0' || op_name[i] > '9') return -1;
  for (; i < op_name.size() && op_name[i] >= '0' && op_name[i] <= '9'; ++i) n = n * 10 + (op_name[i] - '0');
  return i < op_name.size() && op_name[i] == '.' ? n : -1;
}

}  // namespace

Result<GraphPlan> plan_graph(const graph::Graph& g) {
  GraphPlan p;
  p.def.assign(g.values.size(), -1);
  p.readers.resize(g.values.size());
  for (size_t i = 0; i < g.ops.size(); ++i) {
    p.def[static_cast<size_t>(g.ops[i].output)] = static_cast<int64_t>(i);
    for (ValueId v : g.ops[i].inputs) p.readers[static_cast<size_t>(v)].push_back(i);
  }
  for (size_t i = 0; i < g.ops.size(); ++i) {
    const int64_t l = layer_of(g.ops[i].name);
    if (l < 0) continue;
    if (l == static_cast<int64_t>(p.layers.size())) {
      LayerOps lo;
      lo.first = i;
      p.layers.push_back(lo);
    } else if (l != static_cast<int64_t>(p.layers.size()) - 1 || p.layers.back().last != 0) {
      return make_error(ErrorCode::Unsupported, "the graph's decoder layers are not contiguous (op '{}')", g.ops[i].name);
    }
    if (g.ops[i].kind == graph::OpKind::MatMul) p.layers.back().matmuls.push_back(i);
    if (i + 1 == g.ops.size() || layer_of(g.ops[i + 1].name) != l) p.layers.back().last = i + 1;
  }
  if (p.layers.empty()) return make_error(ErrorCode::Unsupported, "the model's graph has no decoder layers");
  p.embed_end = p.layers.front().first;
  for (auto& lo : p.layers) {
    std::set<ValueId> ins, outs;
    for (size_t i = lo.first; i < lo.last; ++i) {
      for (ValueId v : g.ops[i].inputs)
        if (v > g.position_ids && p.def[static_cast<size_t>(v)] < static_cast<int64_t>(lo.first)) ins.insert(v);
      const ValueId o = g.ops[i].output;
      for (size_t r : p.readers[static_cast<size_t>(o)])
        if (r >= lo.last) outs.insert(o);
    }
    if (ins.size() != 1 || outs.size() != 1)
      return make_error(ErrorCode::Unsupported, "decoder layer at op {} has {} inputs and {} outputs (expected one residual stream)",
                        lo.first, ins.size(), outs.size());
    lo.input = *ins.begin();
    lo.output = *outs.begin();
  }
  return p;
}

std::vector<ValueId> crossing(const GraphPlan& plan, const LayerOps& layer, size_t b) {
  std::vector<ValueId> out;
  for (size_t v = 0; v < plan.def.size(); ++v) {
    const int64_t d = plan.def[v];
    if (d < 0 || d >= static_cast<int64_t>(b)) continue;  // graph inputs, or made at/after b
    if (static_cast<ValueId>(v) != layer.input && d < static_cast<int64_t>(layer.first)) continue;
    bool needed = static_cast<ValueId>(v) == layer.output;
    for (size_t r : plan.readers[v])
      if (r >= b && r < layer.last) needed = true;
    if (needed) out.push_back(static_cast<ValueId>(v));
  }
  return out;
}

Status run_segment(graph::Runtime& rt, const Calibration& cal, size_t first, size_t last, ValueStore& store,
                   const std::vector<ValueId>& keep) {
  const graph::Graph& g = rt.graph();
  // Inputs: every stored value an op of the range reads.
  std::vector<ValueId> ins;
  for (size_t i = first; i < last; ++i)
    for (ValueId v : g.ops[i].inputs)
      if (store.count(v) && std::find(ins.begin(), ins.end(), v) == ins.end()) ins.push_back(v);
  // Outputs: the kept values made here (kept values already stored stay as they are).
  std::vector<ValueId> made;
  for (ValueId v : keep)
    if (!store.count(v)) made.push_back(v);
  ValueStore fresh;
  for (ValueId v : made) fresh[v].resize(cal.seqs.size());
  std::vector<std::pair<ValueId, const float*>> inputs(ins.size());
  for (size_t s = 0; s < cal.seqs.size(); ++s) {
    for (size_t k = 0; k < ins.size(); ++k) inputs[k] = {ins[k], store.at(ins[k])[s].data()};
    auto outs = MC_TRY(rt.run_span(first, last, cal.seqs[s], inputs, made));
    for (size_t k = 0; k < made.size(); ++k) fresh[made[k]][s] = std::move(outs[k]);
  }
  for (auto it = store.begin(); it != store.end();)
    it = std::find(keep.begin(), keep.end(), it->first) == keep.end() ? store.erase(it) : std::next(it);
  for (auto& [v, seqs] : fresh) store[v] = std::move(seqs);
  return {};
}

Result<std::vector<float>> linear_weight(const Model& m, const graph::Op& op, int64_t* out, int64_t* in) {
  const TensorEntry* e = MC_TRY(m.tensors.require(op.weight));
  if (e->shape.size() != 2 || op.weight_in_out)
    return make_error(ErrorCode::Unsupported, "Linear weight of shape {} (stored [in, out]: {})", shape_str(e->shape),
                      op.weight_in_out)
        .with_tensor(op.weight);
  *out = e->shape[0];
  *in = e->shape[1];
  return read_f32(*e);
}

Result<DriverInfo> quantize_model(const Model& model, const QuantSpec& spec, const Calibration& cal, size_t threads,
                                  const ProgressFn& events, QuantSink& sink) {
  using Clock = std::chrono::steady_clock;
  DriverInfo info;
  auto rt = MC_TRY(graph::Runtime::load(model, threads));
  const graph::Graph& g = rt.graph();
  const GraphPlan plan = MC_TRY(plan_graph(g));
  int64_t tokens = 0;
  for (const auto& s : cal.seqs) tokens += static_cast<int64_t>(s.size());
  Progress progress(std::string(method_name(spec.method)) + " calibrating layer by layer", false, events);
  progress.add_total(static_cast<uint64_t>(tokens) * plan.layers.size());
  auto t0 = Clock::now();
  ValueStore store;
  MC_CHECK(run_segment(rt, cal, 0, plan.embed_end, store, {plan.layers.front().input}));
  info.embed_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    t0 = Clock::now();
    const LayerOps& layer = plan.layers[l];
    LayerContext c{rt, g, plan, layer, model, spec, cal, static_cast<int>(rt.threads()), sink, info};
    Status st = spec.method == Method::Gptq ? gptq_layer(c, store) : awq_layer(c, store);
    if (!st) return std::move(st).error();
    for (size_t op : layer.matmuls) rt.restore_weight(g.ops[op].weight);
    // The next layer reads this layer's output in its own input's place.
    if (l + 1 < plan.layers.size() && plan.layers[l + 1].input != layer.output) {
      auto node = store.extract(layer.output);
      node.key() = plan.layers[l + 1].input;
      store.insert(std::move(node));
    }
    info.layer_seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    progress.add_done(static_cast<uint64_t>(tokens));
  }
  return info;
}

}  // namespace mc::gptq_awq
