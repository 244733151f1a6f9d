// K-quant dequantizers (formats.md §2.3 bit layouts). Products are evaluated in the same order
// as ggml's dequantize_row_* so the f32 results match it exactly.
#include "quant/kernels.h"

namespace mc::quant::detail {
namespace {

inline void scale_min_k4(int j, const uint8_t* q, int& d, int& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

void dequantize_q2_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b, x += 84) {
    const uint8_t* sc = x;
    const uint8_t* q = x + 16;
    const float d = fp16_to_fp32(load_u16(x + 80)), mn = fp16_to_fp32(load_u16(x + 82));
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const uint8_t s = sc[is++];
          const float dl = d * float(s & 0xF), ml = mn * float(s >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequantize_q3_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b, x += 110) {
    const uint8_t* hm = x;
    const uint8_t* q = x + 32;
    const uint8_t* sc = x + 96;
    const float d_all = fp16_to_fp32(load_u16(x + 108));
    int scales[16];
    for (int j = 0; j < 16; ++j) {
      const int lo = j < 8 ? (sc[j] & 0xF) : (sc[j - 8] >> 4);
      scales[j] = (lo | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    }
    int is = 0;
    unsigned m = 1;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * float(scales[is++]);
          for (int l = 0; l < 16; ++l) {
            const int k = l + 16 * part;
            const int v = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
            *y++ = dl * float(v);
          }
        }
      }
    }
  }
}

void dequantize_q4_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b, x += 144) {
    const float d = fp16_to_fp32(load_u16(x)), mn = fp16_to_fp32(load_u16(x + 2));
    const uint8_t* sc = x + 4;
    const uint8_t* q = x + 16;
    for (int c = 0; c < 4; ++c, q += 32) {
      int s, m;
      scale_min_k4(2 * c, sc, s, m);
      const float d1 = d * float(s), m1 = mn * float(m);
      scale_min_k4(2 * c + 1, sc, s, m);
      const float d2 = d * float(s), m2 = mn * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b, x += 176) {
    const float d = fp16_to_fp32(load_u16(x)), mn = fp16_to_fp32(load_u16(x + 2));
    const uint8_t* sc = x + 4;
    const uint8_t* qh = x + 16;
    const uint8_t* ql = x + 48;
    for (int c = 0; c < 4; ++c, ql += 32) {
      int s, m;
      scale_min_k4(2 * c, sc, s, m);
      const float d1 = d * float(s), m1 = mn * float(m);
      scale_min_k4(2 * c + 1, sc, s, m);
      const float d2 = d * float(s), m2 = mn * float(m);
      const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void dequantize_q6_k(const uint8_t* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQKK; ++b, x += 210) {
    const float d = fp16_to_fp32(load_u16(x + 208));
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

}  // namespace mc::quant::detail
