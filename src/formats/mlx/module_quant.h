// Internal to the MLX writer: the three output tensors of one quantized module (packed `weight`,
// `scales`, `biases`) made from one pass over the source rows. The writer pulls the three
// tensors separately and in any order (in safetensors order every packed weight comes before the
// float scales and biases); each source row is read and each group quantized once, by whichever
// tensor asks first, and the scales and biases computed on the way are kept for the other two
// until both were written. What is kept is capped per write (ParamBudget): past the cap, scales
// and biases are computed again from the source rows, so memory stays bounded for any model.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

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

}  // namespace mc::mlx
