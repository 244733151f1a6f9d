// GPTQ over one decoder layer, true-sequential (AutoGPTQ's order for Llama: [q, k, v], [o],
// [gate, up], [down]): the Linears that read the same value form a sub-group; the layer runs up
// to a sub-group, the Hessian of its input is accumulated over every calibration sequence, its
// Linears are quantized and replaced in the runtime by their dequantized weights, and the layer
// runs on from there. So each sub-group sees the outputs of the already-quantized ones, and the
// layer's output (the next layer's input) is that of the quantized layer.
#include <algorithm>

#include "formats/gptq_awq/driver.h"
#include "quant/blas_threads.h"

namespace mc::gptq_awq {

Status gptq_layer(LayerContext& c, ValueStore& store) {
  std::vector<std::vector<size_t>> groups;
  for (size_t op : c.layer.matmuls) {
    if (!groups.empty() && c.g.ops[groups.back().front()].inputs[0] == c.g.ops[op].inputs[0])
      groups.back().push_back(op);
    else
      groups.push_back({op});
  }
  quant::GptqParams p;
  p.bits = c.spec.bits;
  p.group_size = c.spec.group_size;
  p.sym = c.spec.sym;
  p.desc_act = c.spec.desc_act;
  p.static_groups = c.spec.static_groups;
  p.damp_percent = c.spec.damp_percent;
  size_t cursor = c.layer.first;
  for (const auto& grp : groups) {
    const size_t b = grp.front();
    if (b > cursor) MC_CHECK(run_segment(c.rt, c.cal, cursor, b, store, crossing(c.plan, c.layer, b)));
    cursor = b;
    const ValueId x = c.g.ops[b].inputs[0];
    const int64_t in = c.g.values[static_cast<size_t>(x)].width;
    // The inverse Hessian factor depends on the input alone: one for the whole sub-group (the
    // Hessian itself is freed before the Linears are quantized).
    Result<quant::GptqFactor> factor = quant::GptqFactor{};
    {
      const auto& xs = store.at(x);
      quant::Hessian h(in);
      {
        quant::BlasThreads blas(c.threads);
        for (const auto& seq : xs) h.add_sequence(seq.data(), static_cast<int64_t>(seq.size()) / in);
      }
      factor = quant::gptq_factor(h, p, c.threads);
    }
    if (!factor) return std::move(factor).error().with_tensor(c.g.ops[b].weight);
    for (size_t op : grp) {
      const graph::Op& o = c.g.ops[op];
      int64_t out_f = 0, in_f = 0;
      auto w = MC_TRY(linear_weight(c.model, o, &out_f, &in_f));
      auto q = quant::gptq_quantize(std::move(w), out_f, in_f, *factor, p, c.threads);
      if (!q) return std::move(q).error().with_tensor(o.weight);
      c.info.max_damp_percent = std::max(c.info.max_damp_percent, q->damp_percent);
      MC_CHECK(c.rt.set_weight(o.weight, q->dequantize()));
      MC_CHECK(c.sink.put(o.weight, *q));
    }
  }
  return run_segment(c.rt, c.cal, cursor, c.layer.last, store, {c.layer.output});
}

}  // namespace mc::gptq_awq
