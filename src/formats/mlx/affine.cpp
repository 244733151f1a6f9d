// MLX affine quantizer (formats.md §8), equal to MLX's CPU kernel (mlx/backend/cpu/quantized.cpp,
// `quantize`): same fp32 operations in the same order, std::rint semantics (half to even).
//
// Where MLX's Metal kernel (affine_quantize in kernels/quantized.h) differs, an Apple GPU can
// give other bytes than this code and than MLX on CPU: it rounds with `round` (half away from
// zero) instead of rint, and starts the running w_max at 0 instead of -inf, so a group whose
// values are all negative gets wmax = 0 and a different edge/scale. mlx-lm's `convert` runs on
// the default device, i.e. the GPU on a Mac, so such groups may differ there by one step of q.
#include "formats/mlx/affine.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mc::mlx {

namespace {

bool contains(std::span<const int> set, int v) { return std::find(set.begin(), set.end(), v) != set.end(); }

// Round half to even for the per-element step. Exact for |x| < 2^22; beyond that the result
// stays on the same side of [0, 2^bits - 1], so the clamp that follows gives what rint would.
inline float round_even(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (x + kMagic) - kMagic;
}

}  // namespace

Status check_params(int bits, int group_size) {
  if (!contains(kSupportedBits, bits)) {
    return make_error(ErrorCode::InvalidArgument, "MLX affine quantization does not support {} bits", bits)
        .with_hint("use bits 2, 3, 4, 5, 6 or 8 (e.g. --quant 4bit or --quant-config '{\"bits\": 4}')");
  }
  if (!contains(kSupportedGroups, group_size)) {
    return make_error(ErrorCode::InvalidArgument, "MLX affine quantization does not support group size {}",
                      group_size)
        .with_hint("use group_size 32, 64 or 128 (e.g. --quant-config '{\"group_size\": 64}')");
  }
  return {};
}

GroupParams group_params(const float* w, int group_size, int bits) {
  const float n_bins = float((1 << bits) - 1);
  const float eps = 1e-7f;
  float w_min = std::numeric_limits<float>::infinity();
  float w_max = -w_min;
  for (int j = 0; j < group_size; ++j) {
    w_max = std::max(w_max, w[j]);
    w_min = std::min(w_min, w[j]);
  }
  const bool mask = std::abs(w_min) > std::abs(w_max);
  float scale = std::max((w_max - w_min) / n_bins, eps);
  scale = mask ? scale : -scale;
  const float edge = mask ? w_min : w_max;
  const float q0 = std::rint(edge / scale);
  float bias = 0;
  if (q0 != 0) {
    scale = edge / q0;
    bias = edge;
  }
  return {scale, bias};
}

void quantize_group(const float* w, int group_size, int bits, GroupParams p, uint8_t* q) {
  const float n_bins = float((1 << bits) - 1);
  for (int j = 0; j < group_size; ++j) {
    float v = round_even((w[j] - p.bias) / p.scale);
    v = std::min(std::max(v, 0.0f), n_bins);
    // NaN survives the clamp above; converting it to an integer would be undefined.
    q[j] = v == v ? uint8_t(v) : uint8_t(0);
  }
}

void pack(const uint8_t* q, int64_t n, int bits, uint32_t* out) {
  uint64_t acc = 0;
  int have = 0;
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    acc |= uint64_t(q[i]) << have;
    have += bits;
    if (have >= 32) {
      out[k++] = uint32_t(acc);
      acc >>= 32;
      have -= 32;
    }
  }
  if (have > 0) out[k] = uint32_t(acc);  // only when n*bits is not a multiple of 32
}

void unpack(const uint32_t* words, int64_t n, int bits, uint8_t* q) {
  const uint64_t mask = (uint64_t(1) << bits) - 1;
  uint64_t acc = 0;
  int have = 0;
  int64_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (have < bits) {
      acc |= uint64_t(words[k++]) << have;
      have += 32;
    }
    q[i] = uint8_t(acc & mask);
    acc >>= bits;
    have -= bits;
  }
}

void quantize_row(const float* w, int64_t cols, int bits, int group_size, uint32_t* packed,
                  float* scales, float* biases, uint8_t* scratch) {
  const int64_t groups = cols / group_size;
  for (int64_t g = 0; g < groups; ++g) {
    const float* wg = w + g * group_size;
    const GroupParams p = group_params(wg, group_size, bits);
    scales[g] = p.scale;
    biases[g] = p.bias;
    quantize_group(wg, group_size, bits, p, scratch + g * group_size);
  }
  pack(scratch, cols, bits, packed);
}

void dequantize_row(const uint32_t* packed, const float* scales, const float* biases, int64_t cols,
                    int bits, int group_size, float* out, uint8_t* scratch) {
  unpack(packed, cols, bits, scratch);
  for (int64_t i = 0; i < cols; ++i) {
    const int64_t g = i / group_size;
    const float prod = scales[g] * float(scratch[i]);
    out[i] = prod + biases[g];
  }
}

}  // namespace mc::mlx
