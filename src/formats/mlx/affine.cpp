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

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// The group functions below are the hot loop of an MLX export: with AVX2 (checked at run time)
// they run 8 values at a time. Every step is element-wise or a min/max that a NaN never wins (in
// any order), and x86's max/min instructions keep the first operand only when it compares
// greater/less, which is std::max/std::min's rule, so the results are those of the plain loops.
namespace {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MC_MLX_AVX2 1
bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

template <int G>
__attribute__((target("avx2"))) void min_max_avx2(const float* w, float& w_min, float& w_max) {
  __m256 lo = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 hi = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int j = 0; j < G; j += 8) {
    const __m256 x = _mm256_loadu_ps(w + j);
    hi = _mm256_max_ps(x, hi);  // x > hi ? x : hi, as std::max(hi, x)
    lo = _mm256_min_ps(x, lo);  // x < lo ? x : lo, as std::min(lo, x)
  }
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  w_min = l[0];
  w_max = h[0];
  for (int i = 1; i < 8; ++i) {
    w_max = std::max(w_max, h[i]);
    w_min = std::min(w_min, l[i]);
  }
}

template <int G>
__attribute__((target("avx2"))) void quantize_group_avx2(const float* w, int bits, GroupParams p, uint8_t* q) {
  const __m256 bias = _mm256_set1_ps(p.bias), scale = _mm256_set1_ps(p.scale);
  const __m256 magic = _mm256_set1_ps(12582912.0f), zero = _mm256_setzero_ps();
  const __m256 n_bins = _mm256_set1_ps(float((1 << bits) - 1));
  for (int j = 0; j < G; j += 8) {
    __m256 v = _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(w + j), bias), scale);
    v = _mm256_sub_ps(_mm256_add_ps(v, magic), magic);  // round_even
    v = _mm256_min_ps(_mm256_max_ps(v, zero), n_bins);   // a NaN lane becomes 0, as below
    const __m256i i32 = _mm256_cvttps_epi32(v);
    const __m128i i16 = _mm_packus_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + j), _mm_packus_epi16(i16, i16));
  }
}
#endif

template <int G>
inline void min_max(const float* w, float& w_min, float& w_max) {
#ifdef MC_MLX_AVX2
  if (have_avx2()) return min_max_avx2<G>(w, w_min, w_max);
#endif
  w_min = std::numeric_limits<float>::infinity();
  w_max = -w_min;
  for (int j = 0; j < G; ++j) {
    w_max = std::max(w_max, w[j]);
    w_min = std::min(w_min, w[j]);
  }
}

// MLX's scale and bias from a group's range: the largest-magnitude end is represented exactly.
GroupParams params_from_range(float w_min, float w_max, int bits) {
  const float n_bins = float((1 << bits) - 1);
  const bool mask = std::abs(w_min) > std::abs(w_max);
  float scale = std::max((w_max - w_min) / n_bins, 1e-7f);
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

template <int G>
inline GroupParams group_params_n(const float* w, int bits) {
  float w_min, w_max;
  min_max<G>(w, w_min, w_max);
  return params_from_range(w_min, w_max, bits);
}

template <int G>
inline void quantize_group_n(const float* w, int bits, GroupParams p, uint8_t* q) {
#ifdef MC_MLX_AVX2
  if (have_avx2()) return quantize_group_avx2<G>(w, bits, p, q);
#endif
  const float n_bins = float((1 << bits) - 1);
  for (int j = 0; j < G; ++j) {
    float v = round_even((w[j] - p.bias) / p.scale);
    v = std::min(std::max(v, 0.0f), n_bins);
    // NaN survives the clamp above; converting it to an integer would be undefined.
    q[j] = v == v ? uint8_t(v) : uint8_t(0);
  }
}

// Any other group size (check_params refuses them; kept for direct callers).
GroupParams group_params_any(const float* w, int group_size, int bits) {
  float w_min = std::numeric_limits<float>::infinity();
  float w_max = -w_min;
  for (int j = 0; j < group_size; ++j) {
    w_max = std::max(w_max, w[j]);
    w_min = std::min(w_min, w[j]);
  }
  return params_from_range(w_min, w_max, bits);
}

}  // namespace

GroupParams group_params(const float* w, int group_size, int bits) {
  switch (group_size) {
    case 32: return group_params_n<32>(w, bits);
    case 64: return group_params_n<64>(w, bits);
    case 128: return group_params_n<128>(w, bits);
    default: return group_params_any(w, group_size, bits);
  }
}

void quantize_group(const float* w, int group_size, int bits, GroupParams p, uint8_t* q) {
  switch (group_size) {
    case 32: return quantize_group_n<32>(w, bits, p, q);
    case 64: return quantize_group_n<64>(w, bits, p, q);
    case 128: return quantize_group_n<128>(w, bits, p, q);
    default: break;
  }
  const float n_bins = float((1 << bits) - 1);
  for (int j = 0; j < group_size; ++j) {
    float v = round_even((w[j] - p.bias) / p.scale);
    v = std::min(std::max(v, 0.0f), n_bins);
    q[j] = v == v ? uint8_t(v) : uint8_t(0);
  }
}

void pack(const uint8_t* q, int64_t n, int bits, uint32_t* out) {
  if (bits == 2 || bits == 4 || bits == 8) {  // whole values per word: one word at a time
    const int per = 32 / bits;
    for (int64_t k = 0; k < n / per; ++k) {
      uint32_t word = 0;
      for (int i = 0; i < per; ++i) word |= uint32_t(q[k * per + i]) << (i * bits);
      out[k] = word;
    }
    if (n % per != 0) {
      uint32_t word = 0;
      for (int64_t i = n / per * per; i < n; ++i) word |= uint32_t(q[i]) << ((i % per) * bits);
      out[n / per] = word;
    }
    return;
  }
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

namespace {
#ifdef MC_MLX_AVX2
// 2-, 4- and 8-bit rows in one pass: per group its range, parameters and q values (the same
// operations as group_params / quantize_group_avx2), packed 32 values at a time straight into the
// output words with integer shuffles (exact), so no q byte goes through memory.
// Lane k of the result: the max (min) over the lanes of v[k]. The lanes hold no NaN (min_max
// never lets one in), so the order of the comparisons does not change the value; only the sign
// of a zero could, and a zero end of the range reaches no output (params_from_range: the
// range, the mask and q0 are the same for +0 and -0, and a zero edge gives bias 0).
template <bool Max>
__attribute__((target("avx2"))) inline __m256 op(__m256 a, __m256 b) {
  return Max ? _mm256_max_ps(a, b) : _mm256_min_ps(a, b);
}
template <bool Max>
__attribute__((target("avx2"))) inline __m256 reduce8(const __m256* v) {
  __m256 t[4];
  for (int i = 0; i < 4; ++i)
    t[i] = op<Max>(_mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  const __m256 u0 = op<Max>(_mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 u1 = op<Max>(_mm256_shuffle_ps(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm256_shuffle_ps(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return op<Max>(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// params_from_range for 8 groups side by side: the same fp32 operations, element-wise.
__attribute__((target("avx2"))) inline void params8(__m256 w_min, __m256 w_max, int bits, float* scales,
                                                     float* biases) {
  const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
  const __m256 mask = _mm256_cmp_ps(_mm256_andnot_ps(sign, w_min), _mm256_andnot_ps(sign, w_max), _CMP_GT_OQ);
  __m256 scale = _mm256_div_ps(_mm256_sub_ps(w_max, w_min), _mm256_set1_ps(float((1 << bits) - 1)));
  scale = _mm256_max_ps(_mm256_set1_ps(1e-7f), scale);  // std::max(scale, 1e-7f), NaN kept
  scale = _mm256_blendv_ps(_mm256_xor_ps(scale, sign), scale, mask);
  const __m256 edge = _mm256_blendv_ps(w_max, w_min, mask);
  const __m256 q0 = _mm256_round_ps(_mm256_div_ps(edge, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 nz = _mm256_cmp_ps(q0, zero, _CMP_NEQ_UQ);  // C's q0 != 0
  _mm256_storeu_ps(scales, _mm256_blendv_ps(scale, _mm256_div_ps(edge, q0), nz));
  _mm256_storeu_ps(biases, _mm256_and_ps(edge, nz));
}

// 2-, 4- and 8-bit rows in one pass: per 8 groups their ranges and parameters side by side, then
// the q values (the operations of quantize_group_avx2) packed 32 at a time straight into the
// output words with integer shuffles (exact), so no q byte goes through memory. Groups past the
// last whole 8 take the one-group functions.
template <int G>
__attribute__((target("avx2"))) void quantize_row_avx2(const float* w, int64_t cols, int bits, uint8_t* out,
                                                       float* scales, float* biases) {
  const __m256 magic = _mm256_set1_ps(12582912.0f), zero = _mm256_setzero_ps();
  const __m256 n_bins = _mm256_set1_ps(float((1 << bits) - 1));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const int64_t groups = cols / G;
  for (int64_t g0 = 0; g0 < groups; g0 += 8) {
    if (g0 + 8 <= groups) {
      __m256 hi[8], lo[8];
      for (int k = 0; k < 8; ++k) {
        const float* wg = w + (g0 + k) * G;
        lo[k] = _mm256_set1_ps(std::numeric_limits<float>::infinity());
        hi[k] = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
        for (int j = 0; j < G; j += 8) {
          const __m256 x = _mm256_loadu_ps(wg + j);
          hi[k] = _mm256_max_ps(x, hi[k]);
          lo[k] = _mm256_min_ps(x, lo[k]);
        }
      }
      params8(reduce8<false>(lo), reduce8<true>(hi), bits, scales + g0, biases + g0);
    } else {
      for (int64_t g = g0; g < groups; ++g) {
        float w_min, w_max;
        min_max_avx2<G>(w + g * G, w_min, w_max);
        const GroupParams p = params_from_range(w_min, w_max, bits);
        scales[g] = p.scale;
        biases[g] = p.bias;
      }
    }
    for (int64_t g = g0; g < std::min(groups, g0 + 8); ++g) {
      const float* wg = w + g * G;
      const __m256 bias = _mm256_set1_ps(biases[g]), scale = _mm256_set1_ps(scales[g]);
      for (int j = 0; j < G; j += 32) {
        __m256i q[4];
        for (int k = 0; k < 4; ++k) {
          __m256 v = _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(wg + j + 8 * k), bias), scale);
          v = _mm256_sub_ps(_mm256_add_ps(v, magic), magic);  // round_even
          v = _mm256_min_ps(_mm256_max_ps(v, zero), n_bins);   // a NaN lane becomes 0
          q[k] = _mm256_cvttps_epi32(v);
        }
        // 32 q values as bytes, in order.
        const __m256i bytes = _mm256_permutevar8x32_epi32(
            _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]), _mm256_packus_epi32(q[2], q[3])), order);
        const int64_t at = (g * G + j) * bits / 8;
        if (bits == 8) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + at), bytes);
        } else if (bits == 4) {  // byte pairs -> b0 | b1 << 4
          const __m256i m = _mm256_maddubs_epi16(bytes, _mm256_set1_epi16(0x1001));
          const __m256i b = _mm256_permute4x64_epi64(_mm256_packus_epi16(m, m), 0xD8);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + at), _mm256_castsi256_si128(b));
        } else {  // bits == 2: byte pairs -> b0 | b1 << 2, then pairs of those -> m0 | m1 << 4
          const __m256i m = _mm256_maddubs_epi16(bytes, _mm256_set1_epi16(0x0401));
          const __m256i d = _mm256_madd_epi16(m, _mm256_set1_epi32(0x00100001));
          const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(d, d), _mm256_packus_epi32(d, d));
          const __m256i lo4 = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
          _mm_storel_epi64(reinterpret_cast<__m128i*>(out + at), _mm256_castsi256_si128(lo4));
        }
      }
    }
  }
}
#endif
}  // namespace

void quantize_row(const float* w, int64_t cols, int bits, int group_size, uint32_t* packed,
                  float* scales, float* biases, uint8_t* scratch) {
#ifdef MC_MLX_AVX2
  if ((bits == 2 || bits == 4 || bits == 8) && have_avx2()) {
    auto* out = reinterpret_cast<uint8_t*>(packed);
    switch (group_size) {
      case 32: return quantize_row_avx2<32>(w, cols, bits, out, scales, biases);
      case 64: return quantize_row_avx2<64>(w, cols, bits, out, scales, biases);
      case 128: return quantize_row_avx2<128>(w, cols, bits, out, scales, biases);
      default: break;
    }
  }
#endif
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
