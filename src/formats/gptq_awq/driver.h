// Internal to the GPTQ/AWQ engines: the layer-by-layer calibration driver over the reference
// runtime. The graph's ops are split per decoder layer ("layers.N." ops); the calibration
// sequences go through the embedding once, then through one layer at a time. Values that cross
// from one step of a layer to the next are kept for every sequence (ValueStore), everything else
// is freed, so memory is one layer's weights plus the activations of the calibration set at a
// few points of that layer.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "formats/gptq_awq/gptq_awq.h"
#include "graph/runtime.h"
#include "quant/gptq.h"

namespace mc::gptq_awq {

using graph::ValueId;

struct LayerOps {
  size_t first = 0, last = 0;   // op range
  ValueId input = -1;           // the residual stream into the layer
  ValueId output = -1;          // and out of it
  std::vector<size_t> matmuls;  // the Linear ops, in execution order
};

struct GraphPlan {
  size_t embed_end = 0;                       // ops [0, embed_end) make layer 0's input
  std::vector<LayerOps> layers;
  std::vector<int64_t> def;                   // per value: defining op (-1: graph input)
  std::vector<std::vector<size_t>> readers;   // per value: ops reading it
};
Result<GraphPlan> plan_graph(const graph::Graph& g);

// Values of a layer that ops [b, last) (or later layers) read but ops before b define.
std::vector<ValueId> crossing(const GraphPlan& plan, const LayerOps& layer, size_t b);

// Per value, per calibration sequence: [tokens * width] floats.
using ValueStore = std::map<ValueId, std::vector<std::vector<float>>>;

// Runs ops [first, last) on every sequence, reading values from `store` and putting the `keep`
// values into it; store entries that are not in `keep` are dropped afterwards.
Status run_segment(graph::Runtime& rt, const Calibration& cal, size_t first, size_t last, ValueStore& store,
                   const std::vector<ValueId>& keep);

// Where the quantized Linears and changed dense tensors go.
struct QuantSink {
  // A quantized Linear, by its weight name ("model.layers.0.self_attn.q_proj.weight").
  std::function<Status(const std::string& weight, const quant::GroupQuant& q)> put;
  // Dense tensors the quantizer changed (AWQ's scaled norms and biases), f32.
  std::map<std::string, std::vector<float>> replaced;
};

struct DriverInfo {
  std::vector<double> layer_seconds;
  double embed_seconds = 0;
  double max_damp_percent = 0;  // GPTQ: the largest damping a layer needed
};

// GPTQ (true sequential) and AWQ over every decoder layer of `model`.
Result<DriverInfo> quantize_model(const Model& model, const QuantSpec& spec, const Calibration& cal,
                                  size_t threads, const ProgressFn& events, QuantSink& sink);

// One decoder layer (gptq_layer.cpp / awq_layer.cpp). `store` holds the layer input for every
// sequence on entry and the layer output on return.
struct LayerContext {
  graph::Runtime& rt;
  const graph::Graph& g;
  const GraphPlan& plan;
  const LayerOps& layer;
  const Model& model;
  const QuantSpec& spec;
  const Calibration& cal;
  int threads;
  QuantSink& sink;
  DriverInfo& info;
};
Status gptq_layer(LayerContext& c, ValueStore& store);
Status awq_layer(LayerContext& c, ValueStore& store);

// The weight of a Linear op as f32 [out][in].
Result<std::vector<float>> linear_weight(const Model& m, const graph::Op& op, int64_t* out, int64_t* in);

}  // namespace mc::gptq_awq
