// The 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (formats.md §2.3 layouts, §2.5 rules).
// Layouts (bytes): Q4_0 = d:f16, qs[16]; Q4_1 = d:f16, m:f16, qs[16]; Q5_0 = d:f16, qh[4], qs[16];
// Q5_1 = d:f16, m:f16, qh[4], qs[16]; Q8_0 = d:f16, qs[32] (int8). Nibble j holds element j (low)
// and element j+16 (high); qh bit j is bit 4 of element j. Q8_0's blocks run on the kernel set
// chosen at run time (kquant_fit.h), the others are scalar.
#include <algorithm>
#include <cmath>

#include "quant/kernels.h"
#include "quant/kquant_fit.h"

namespace mc::quant::detail {
namespace {

// C's float -> integer conversion truncates toward zero; values outside the target range are
// undefined there, so clamp first (only reachable with inf/NaN inputs).
inline int trunc_to_int(float v) {
  if (!(v > -1024.0f)) return -1024;
  if (!(v < 1024.0f)) return 1024;
  return int(v);
}

// The signed value with the largest magnitude; the first one wins on ties.
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

inline void min_max(const float* x, int n, float& mn, float& mx) {
  mn = 3.402823466e+38f;
  mx = -3.402823466e+38f;
  for (int j = 0; j < n; ++j) {
    if (x[j] < mn) mn = x[j];
    if (x[j] > mx) mx = x[j];
  }
}

}  // namespace

void quantize_q4_0(const float* x, uint8_t* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, y += 18) {
    const float d = signed_absmax(x, kQK) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    for (int j = 0; j < kQK / 2; ++j) {
      // (int8_t) cast of x*id + 8.5 truncates: this is round-half-up of x*id + 8.
      const int lo = std::min(15, trunc_to_int(x[j] * id + 8.5f));
      const int hi = std::min(15, trunc_to_int(x[j + 16] * id + 8.5f));
      y[2 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void quantize_q4_1(const float* x, uint8_t* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, y += 20) {
    float mn, mx;
    min_max(x, kQK, mn, mx);
    const float d = (mx - mn) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    store_u16(y + 2, fp32_to_fp16(mn));
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = std::min(15, trunc_to_int((x[j] - mn) * id + 0.5f));
      const int hi = std::min(15, trunc_to_int((x[j + 16] - mn) * id + 0.5f));
      y[4 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void quantize_q5_0(const float* x, uint8_t* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, y += 22) {
    const float d = signed_absmax(x, kQK) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = std::min(31, trunc_to_int(x[j] * id + 16.5f));
      const int hi = std::min(31, trunc_to_int(x[j + 16] * id + 16.5f));
      y[6 + j] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= uint32_t((lo >> 4) & 1) << j;
      qh |= uint32_t((hi >> 4) & 1) << (j + 16);
    }
    std::memcpy(y + 2, &qh, 4);
  }
}

void quantize_q5_1(const float* x, uint8_t* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, y += 24) {
    float mn, mx;
    min_max(x, kQK, mn, mx);
    const float d = (mx - mn) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(y, fp32_to_fp16(d));
    store_u16(y + 2, fp32_to_fp16(mn));
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      // No upper clamp here (as in the reference): the value is already in [0, 31.5).
      const int lo = trunc_to_int((x[j] - mn) * id + 0.5f) & 0xFF;
      const int hi = trunc_to_int((x[j + 16] - mn) * id + 0.5f) & 0xFF;
      y[8 + j] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= uint32_t((lo >> 4) & 1) << j;
      qh |= uint32_t((hi >> 4) & 1) << (j + 16);
    }
    std::memcpy(y + 4, &qh, 4);
  }
}

void q8_0_blocks_scalar(const float* x, int64_t nb, float* dout, int8_t* q) {
  for (int64_t b = 0; b < nb; ++b, x += kQK, q += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    dout[b] = d;
    for (int j = 0; j < kQK; ++j) {
      // roundf: half away from zero (not nearest_int's half to even).
      const int v = trunc_to_int(std::round(x[j] * id));
      q[j] = int8_t(std::clamp(v, -128, 127));
    }
  }
}

// The blocks are made by the kernel set in use (kquant_fit.h: scalar above, or SIMD with the
// same bytes), 64 at a time, then laid out as d:f16, qs[32].
void quantize_q8_0(const float* x, uint8_t* y, int64_t n) {
  constexpr int64_t kBatch = 64;
  const FitKernels& k = fit_kernels();
  float d[kBatch];
  int8_t q[kBatch * kQK];
  const int64_t nb = n / kQK;
  for (int64_t b0 = 0; b0 < nb; b0 += kBatch, x += kBatch * kQK) {
    const int64_t cnt = std::min(kBatch, nb - b0);
    k.q8_0(x, cnt, d, q);
    for (int64_t b = 0; b < cnt; ++b, y += 34) {
      store_u16(y, fp32_to_fp16(d[b]));
      std::memcpy(y + 2, q + b * kQK, kQK);
    }
  }
}

void dequantize_q4_0(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += 18, y += kQK) {
    const float d = fp16_to_fp32(load_u16(x));
    for (int j = 0; j < 16; ++j) {
      y[j] = float((x[2 + j] & 0xF) - 8) * d;
      y[j + 16] = float((x[2 + j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += 20, y += kQK) {
    const float d = fp16_to_fp32(load_u16(x)), m = fp16_to_fp32(load_u16(x + 2));
    for (int j = 0; j < 16; ++j) {
      y[j] = float(x[4 + j] & 0xF) * d + m;
      y[j + 16] = float(x[4 + j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_0(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += 22, y += kQK) {
    const float d = fp16_to_fp32(load_u16(x));
    uint32_t qh;
    std::memcpy(&qh, x + 2, 4);
    for (int j = 0; j < 16; ++j) {
      const int lo = (x[6 + j] & 0xF) | int(((qh >> j) & 1u) << 4);
      const int hi = (x[6 + j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
      y[j] = float(lo - 16) * d;
      y[j + 16] = float(hi - 16) * d;
    }
  }
}

void dequantize_q5_1(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += 24, y += kQK) {
    const float d = fp16_to_fp32(load_u16(x)), m = fp16_to_fp32(load_u16(x + 2));
    uint32_t qh;
    std::memcpy(&qh, x + 4, 4);
    for (int j = 0; j < 16; ++j) {
      const int lo = (x[8 + j] & 0xF) | int(((qh >> j) & 1u) << 4);
      const int hi = (x[8 + j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
      y[j] = float(lo) * d + m;
      y[j + 16] = float(hi) * d + m;
    }
  }
}

void dequantize_q8_0(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += 34, y += kQK) {
    const float d = fp16_to_fp32(load_u16(x));
    for (int j = 0; j < kQK; ++j) y[j] = float(int8_t(x[2 + j])) * d;
  }
}

}  // namespace mc::quant::detail
