// Internal row kernels of the ggml quantizers (formats.md §2.3-2.5). One function pair per type:
// quantize `n` f32 values (a multiple of the block size) into blocks, and back. Block layouts and
// the arithmetic follow ggml-quants.c of the llama.cpp version named in quantize.cpp.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

// The reference quantizers are plain float32 code built without FMA contraction; a fused
// multiply-add changes rounding in rare ties (formats.md §2.5). GCC contracts by default in C++
// whenever the target has FMA (-std=c++20 does not change that), so the area is compiled with
// -ffp-contract=off (cmake/areas.cmake); Clang is also told here.
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace mc::quant::detail {

inline constexpr int kQK = 32;    // elements per block of the 32-element types
inline constexpr int kQKK = 256;  // elements per K-quant super-block

// ggml_compute_fp32_to_fp16: round to nearest even, NaN becomes a quiet NaN without payload.
inline uint16_t fp32_to_fp16(float f) {
  const uint32_t w = std::bit_cast<uint32_t>(f);
  if ((w & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t(((w >> 16) & 0x8000u) | 0x7E00u);
  return f32_to_f16(f);
}
inline float fp16_to_fp32(uint16_t h) { return f16_to_f32(h); }

// ggml_compute_fp32_to_bf16: NaN keeps its top bits and is forced quiet; else round to nearest even.
inline uint16_t fp32_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x40u);
  return uint16_t((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
}
inline float bf16_to_fp32(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

// Round to nearest, ties to even, by letting the FPU round the addition of 1.5*2^23 (valid for
// |f| <= 4194303, as in ggml). Out-of-range and NaN inputs give a defined, clamped-later value.
inline int nearest_int(float f) {
  const float v = f + 12582912.0f;
  const uint32_t i = std::bit_cast<uint32_t>(v);
  return int(i & 0x007FFFFFu) - 0x00400000;
}

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// Each function handles n elements: n is a multiple of the type's block size.
void quantize_q4_0(const float* x, uint8_t* y, int64_t n);
void quantize_q4_1(const float* x, uint8_t* y, int64_t n);
void quantize_q5_0(const float* x, uint8_t* y, int64_t n);
void quantize_q5_1(const float* x, uint8_t* y, int64_t n);
void quantize_q8_0(const float* x, uint8_t* y, int64_t n);
void quantize_q2_k(const float* x, uint8_t* y, int64_t n);
void quantize_q3_k(const float* x, uint8_t* y, int64_t n);
void quantize_q4_k(const float* x, uint8_t* y, int64_t n);
void quantize_q5_k(const float* x, uint8_t* y, int64_t n);
void quantize_q6_k(const float* x, uint8_t* y, int64_t n);

void dequantize_q4_0(const uint8_t* x, float* y, int64_t n);
void dequantize_q4_1(const uint8_t* x, float* y, int64_t n);
void dequantize_q5_0(const uint8_t* x, float* y, int64_t n);
void dequantize_q5_1(const uint8_t* x, float* y, int64_t n);
void dequantize_q8_0(const uint8_t* x, float* y, int64_t n);
void dequantize_q2_k(const uint8_t* x, float* y, int64_t n);
void dequantize_q3_k(const uint8_t* x, float* y, int64_t n);
void dequantize_q4_k(const uint8_t* x, float* y, int64_t n);
void dequantize_q5_k(const uint8_t* x, float* y, int64_t n);
void dequantize_q6_k(const uint8_t* x, float* y, int64_t n);

}  // namespace mc::quant::detail
