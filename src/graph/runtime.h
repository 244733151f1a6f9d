// The reference runtime: a CPU interpreter of graph.h's IR in f32. Weights stay in the Model's
// lazy TensorStore in their stored dtype (f32, f16, bf16, ggml block types) and are converted
// tile by tile as each MatMul runs, so memory stays at the model's own size plus a few tiles.
// Results do not depend on the thread count: work is split in fixed, shape-derived tiles.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "arch/config.h"
#include "core/error.h"
#include "core/model.h"
#include "core/thread_pool.h"
#include "graph/graph.h"

namespace mc::graph {

struct RuntimeState;  // weights, caches and scratch (runtime.cpp)

class Runtime {
 public:
  // Builds the graph of `model`, checks every weight's shape, and keeps references to the
  // tensor sources (the Model itself may go away). threads = 0: hardware concurrency.
  static Result<Runtime> load(const Model& model, size_t threads = 0);
  // Same with a graph built elsewhere (tests, emitters' round trips).
  static Result<Runtime> load(Graph graph, const TensorStore& tensors, size_t threads = 0);

  Runtime(Runtime&&) noexcept;
  Runtime& operator=(Runtime&&) noexcept;
  ~Runtime();

  // Logits of every position of `ids` ([ids.size()][vocab]), from an empty cache.
  Result<std::vector<std::vector<float>>> forward_all(std::span<const int32_t> ids);
  // Greedy decoding with the KV cache: the prompt once, then one token per step. Returns the
  // n_new generated ids (ties pick the lowest id, as torch.argmax).
  Result<std::vector<int32_t>> greedy(std::span<const int32_t> ids, int64_t n_new);

  // Incremental use: append `ids` at the current position and return their logits.
  Result<std::vector<std::vector<float>>> step(std::span<const int32_t> ids);
  void reset();                  // forget the KV cache
  int64_t position() const;      // tokens in the cache

  const Graph& graph() const;
  size_t threads() const;

  // ---- Calibration (GPTQ/AWQ): run part of the graph on one sequence, replace weights ----
  // Called before each MatMul of run_span with the op's index and its input x ([S][K]).
  using MatMulHook = std::function<Status(size_t op, const float* x, int64_t S, int64_t K)>;
  // Runs ops [first, last) on one sequence of S = ids.size() tokens at positions 0..S-1 (the KV
  // caches of the range's attention ops start empty and are emptied again after). `inputs` gives
  // the values those ops read that are defined before `first` ([S * width] floats each); the
  // values listed in `outputs` are returned ([S * width] floats each), in that order.
  Result<std::vector<std::vector<float>>> run_span(size_t first, size_t last, std::span<const int32_t> ids,
                                                   std::span<const std::pair<ValueId, const float*>> inputs,
                                                   std::span<const ValueId> outputs, const MatMulHook& hook = {});
  // Replaces a weight the graph reads (a MatMul weight, a norm or a bias) by f32 values the
  // runtime owns from now on (same element count); restore_weight goes back to the stored tensor.
  Status set_weight(const std::string& name, std::vector<float> values);
  void restore_weight(const std::string& name);

 private:
  Runtime() = default;
  std::unique_ptr<RuntimeState> s_;
};

}  // namespace mc::graph
