// Internal to the MLX writer: the three output tensors of one quantized module (packed `weight`,
// `scales`, `biases`) made from one pass over the source rows. The three tensors may be pulled
// separately and in any order; each source row is read and each group quantized once, by
// whichever tensor asks first, and the scales and biases computed on the way are kept for the
// other two until all three were written (the writer pulls a module's scales and biases a few
// modules after its weight, so only those few modules keep rows). What is kept is capped per
// write (ParamBudget, taken when a module keeps its first row): past the cap, scales and biases
// are computed again from the source rows, so memory stays bounded for any order.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace mc::mlx {

// Bytes of scales/biases one write may keep between the tensors of a module.
class ParamBudget {
 public:
  explicit ParamBudget(int64_t bytes) : left_(bytes) {}
  bool take(int64_t n) {
    int64_t cur = left_.load();
    while (cur >= n)
      if (left_.compare_exchange_weak(cur, cur - n)) return true;
    return false;
  }
  void give(int64_t n) { left_.fetch_add(n); }

 private:
  std::atomic<int64_t> left_;
};

inline constexpr int64_t kDefaultParamBudget = int64_t(256) << 20;

// weight (U32, packed), scales and biases (`float_dtype`) of the module whose float weight is
// `e` (shape [..., cols]), with MLX's affine quantizer at `bits`/`group_size`. Values are rounded
// to `float_dtype` before quantizing, as mlx-lm casts the model first.
std::array<TensorEntry, 3> quantized_module(const TensorEntry& e, DType float_dtype, int bits, int group_size,
                                            std::shared_ptr<ParamBudget> budget);

// The order for a stream writer to make `store`'s tensors in (store indices, each once): store
// order, except that the scales and biases following a packed weight (a module as
// quantized_module made it: `P.weight` U32, `P.scales`, `P.biases`, in that order) come after
// the weight of the module `lag` modules later, or at the end. With `lag` above the number of
// threads writing, they are the rows the weight pull kept, and about `lag` modules keep rows at
// a time (in file order every packed weight comes first: all of them were kept until the end).
std::vector<size_t> module_pull_order(const TensorStore& store, size_t lag);

}  // namespace mc::mlx
