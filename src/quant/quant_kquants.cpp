// K-quant quantizers Q2_K..Q6_K (formats.md §2.3 layouts, §2.5 algorithms): ggml's reference
// (no importance matrix) path, which is what llama-quantize runs without --imatrix. Super-blocks
// of 256 values. Layouts (bytes): Q2_K = scales[16], qs[64], d:f16, dmin:f16;
// Q3_K = hmask[32], qs[64], scales[12], d:f16; Q4_K = d, dmin, scales[12], qs[128];
// Q5_K = d, dmin, scales[12], qh[32], qs[128]; Q6_K = ql[128], qh[64], scales[16] int8, d:f16.
// Bit-exactness depends on the float32 evaluation order, so expressions keep the reference's
// association ((a*b)*c, left-to-right sums) and are not rearranged.
// Each type runs in two steps over batches of super-blocks: the sub-block fits (kquant_fit.h:
// these scalar ones or the SIMD ones, same bytes), then the scalar finish per super-block
// (scales packed, values re-quantized against the rounded scales, bits packed).
#include <algorithm>
#include <cmath>

#include "quant/kernels.h"
#include "quant/kquant_fit.h"

namespace mc::quant::detail {
namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Affine fit of x ~ scale*L + min with L in [0, nmax], trying nstep+1 inverse scales around
// nmax/(max-min) and keeping the weighted least-squares solution with the smallest error.
// Returns scale; *the_min receives -min (>= 0).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
  float mn = x[0], mx = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < mn) mn = x[i];
    if (x[i] > mx) mx = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    std::fill(L, L + n, uint8_t(0));
    *the_min = -mn;
    return 0.0f;
  }
  float iscale = float(nmax) / (mx - mn);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - mn));
    L[i] = uint8_t(std::max(0, std::min(nmax, l)));
    float diff = scale * float(L[i]) + mn - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - mn));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = uint8_t(l);
      const float w = weights[i];
      sum_l += w * float(l);
      sum_l2 += w * float(l) * float(l);
      sum_xl += w * float(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * float(Laux[i]) + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        mn = this_min;
      }
    }
  }
  *the_min = -mn;
  return scale;
}

inline float signed_absmax(const float* x, int n, float& amax) {
  float max = 0;
  amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

// Symmetric fit x ~ scale*(L - nmax), L in [0, 2*nmax), weights x^2 (rmse_type 1), searching 18
// inverse scales around -nmax/max.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float amax;
  const float max = signed_absmax(x, n, amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.0f;
  }
  float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = int8_t(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q3_K's per-16 fit: start from -nmax/max, then up to 5 greedy passes moving single L values
// when that improves the weighted fit (do_rmse = true in the reference).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float amax;
  const float max = signed_absmax(x, n, amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.0f;
  }
  const float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = int8_t(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * float(L[i]) * float(L[i]);
        int new_l = nearest_int(x[i] * sl2 / slx);
        new_l = std::max(-nmax, std::min(nmax - 1, new_l));
        if (new_l != L[i]) {
          slx += w * x[i] * float(new_l);
          sl2 += w * float(new_l) * float(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = int8_t(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// 6-bit scale j and min j of Q4_K/Q5_K's packed scales[12] (formats.md §2.3).
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Q4_K/Q5_K after the fit of their 8 sub-blocks of 32: packs the 6-bit scales/mins into sc12,
// writes d/dmin, and gives the scale d[j] and offset dm[j] each sub-block is re-quantized with
// (d[j] == 0: the sub-block keeps the fit's L).
void k4_scales(const float* scales, const float* mins, uint8_t* sc12, uint16_t& d_out,
               uint16_t& dmin_out, float* d, float* dm) {
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::fill(sc12, sc12 + 12, uint8_t(0));
  for (int j = 0; j < 8; ++j) {
    // The reference stores nearest_int's result in a uint8_t before clamping to 63.
    const uint8_t ls = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      sc12[j] = ls;
      sc12[j + 4] = lm;
    } else {
      sc12[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
      sc12[j - 4] |= uint8_t((ls >> 4) << 6);
      sc12[j] |= uint8_t((lm >> 4) << 6);
    }
  }
  d_out = fp32_to_fp16(max_scale / 63.f);
  dmin_out = fp32_to_fp16(max_min / 63.f);
  const float df = fp16_to_fp32(d_out), dminf = fp16_to_fp32(dmin_out);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, sc12, sc, m);
    d[j] = df * float(sc);
    dm[j] = dminf * float(m);
  }
}

// 2-bit packing shared by Q2_K and Q3_K: byte l of each 32-byte group holds elements
// l, l+32, l+64, l+96 of the 128-element half at bit offsets 0, 2, 4, 6.
template <typename T>
void pack_2bit(const T* L, uint8_t* qs) {
  for (int j = 0; j < kQKK; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                              (L[j + l + 96] << 6));
}

// ---- the scalar kernels (kquant_fit.h) -----------------------------------------------------

void fit_qkx2_scalar(Qkx2Kind kind, const float* x, int64_t n_sub, float* scales, float* mins,
                     uint8_t* L) {
  uint8_t Laux[32];
  float weights[32];
  for (int64_t s = 0; s < n_sub; ++s) {
    if (kind == Qkx2Kind::Q2K) {
      const float* xb = x + 16 * s;
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(xb[l]);
      scales[s] = make_qkx2_quants(16, 3, xb, weights, L + 16 * s, &mins[s], Laux, -0.5f, 0.1f,
                                   15, true);
      continue;
    }
    const float* xb = x + 32 * s;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xb[l] * xb[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xb[l]);
    if (kind == Qkx2Kind::Q4K)
      scales[s] = make_qkx2_quants(32, 15, xb, weights, L + 32 * s, &mins[s], Laux, -1.f, 0.1f,
                                   20, false);
    else
      scales[s] = make_qkx2_quants(32, 31, xb, weights, L + 32 * s, &mins[s], Laux, -0.5f, 0.1f,
                                   15, false);
  }
}

void fit_qx6_scalar(const float* x, int64_t n_sub, float* scales, int8_t* L) {
  for (int64_t s = 0; s < n_sub; ++s) scales[s] = make_qx_quants(16, 32, x + 16 * s, L + 16 * s);
}

void fit_q3_scalar(const float* x, int64_t n_sub, float* scales, int8_t* L) {
  for (int64_t s = 0; s < n_sub; ++s) scales[s] = make_q3_quants(16, 4, x + 16 * s, L + 16 * s);
}

void requant_affine_scalar(const float* x, int64_t n_sub, int len, const float* d,
                           const float* dm, int nmax, uint8_t* L) {
  for (int64_t s = 0; s < n_sub; ++s) {
    if (d[s] == 0.0f) continue;
    for (int i = 0; i < len; ++i) {
      const int l = nearest_int((x[s * len + i] + dm[s]) / d[s]);
      L[s * len + i] = uint8_t(std::max(0, std::min(nmax, l)));
    }
  }
}

void requant_sym_scalar(const float* x, int64_t n_sub, const float* d, int nmax, int8_t* L) {
  for (int64_t s = 0; s < n_sub; ++s) {
    if (d[s] == 0.0f) continue;
    for (int i = 0; i < 16; ++i) {
      const int l = nearest_int(x[s * 16 + i] / d[s]);
      L[s * 16 + i] = int8_t(std::max(-nmax, std::min(nmax - 1, l)) + nmax);
    }
  }
}

// Super-blocks handled per call of the kernels (a few KiB of scratch on the stack).
constexpr int64_t kBatch = 8;

}  // namespace

const FitKernels& fit_kernels_scalar() {
  static const FitKernels k{"scalar",       fit_qkx2_scalar,       fit_qx6_scalar,    fit_q3_scalar,
                            requant_affine_scalar, requant_sym_scalar, q8_0_blocks_scalar};
  return k;
}

// Each type: fit the sub-blocks of a batch, then per super-block the scales (scalar), then
// re-quantize the batch against the rounded scales, then pack the bits per super-block.

void quantize_q2_k(const float* x, uint8_t* y, int64_t n) {
  const FitKernels& k = fit_kernels();
  uint8_t Lb[kBatch * kQKK];
  float mins_b[kBatch * 16], scales_b[kBatch * 16], d_b[kBatch * 16], dm_b[kBatch * 16];
  const float q4scale = 15.f;
  const int64_t nb = n / kQKK;
  for (int64_t b0 = 0; b0 < nb; b0 += kBatch, x += kBatch * kQKK, y += kBatch * 84) {
    const int64_t cnt = std::min(kBatch, nb - b0);
    k.qkx2(Qkx2Kind::Q2K, x, cnt * 16, scales_b, mins_b, Lb);
    for (int64_t b = 0; b < cnt; ++b) {
      const float* scales = scales_b + 16 * b;
      const float* mins = mins_b + 16 * b;
      uint8_t* yb = y + 84 * b;
      uint8_t* sc = yb;
      float max_scale = 0, max_min = 0;
      for (int j = 0; j < 16; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
      }
      uint16_t d16 = 0, dmin16 = 0;
      if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < 16; ++j) sc[j] = uint8_t(nearest_int(iscale * scales[j]));
        d16 = fp32_to_fp16(max_scale / q4scale);
      } else {
        std::fill(sc, sc + 16, uint8_t(0));
        d16 = fp32_to_fp16(0.f);
      }
      if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < 16; ++j) sc[j] |= uint8_t(uint32_t(nearest_int(iscale * mins[j])) << 4);
        dmin16 = fp32_to_fp16(max_min / q4scale);
      } else {
        dmin16 = fp32_to_fp16(0.f);
      }
      store_u16(yb + 80, d16);
      store_u16(yb + 82, dmin16);
      const float df = fp16_to_fp32(d16), dminf = fp16_to_fp32(dmin16);
      for (int j = 0; j < 16; ++j) {
        d_b[16 * b + j] = df * float(sc[j] & 0xF);
        dm_b[16 * b + j] = dminf * float(sc[j] >> 4);
      }
    }
    k.requant_affine(x, cnt * 16, 16, d_b, dm_b, 3, Lb);
    for (int64_t b = 0; b < cnt; ++b) pack_2bit(Lb + b * kQKK, y + 84 * b + 16);
  }
}

void quantize_q3_k(const float* x, uint8_t* y, int64_t n) {
  const FitKernels& k = fit_kernels();
  int8_t Lb[kBatch * kQKK];
  float scales_b[kBatch * 16], d_b[kBatch * 16];
  const int64_t nb = n / kQKK;
  for (int64_t b0 = 0; b0 < nb; b0 += kBatch, x += kBatch * kQKK, y += kBatch * 110) {
    const int64_t cnt = std::min(kBatch, nb - b0);
    k.q3(x, cnt * 16, scales_b, Lb);
    for (int64_t b = 0; b < cnt; ++b) {
      const float* scales = scales_b + 16 * b;
      uint8_t* yb = y + 110 * b;
      uint8_t* sc = yb + 96;
      float max_scale = 0, amax = 0;
      for (int j = 0; j < 16; ++j) {
        const float s = std::fabs(scales[j]);
        if (s > amax) {
          amax = s;
          max_scale = scales[j];
        }
      }
      std::fill(sc, sc + 12, uint8_t(0));
      uint16_t d16;
      if (max_scale != 0.0f) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; ++j) {
          int l = int8_t(nearest_int(iscale * scales[j]));  // the reference keeps it in an int8_t
          l = std::max(-32, std::min(31, l)) + 32;
          if (j < 8)
            sc[j] = uint8_t(l & 0xF);
          else
            sc[j - 8] |= uint8_t((l & 0xF) << 4);
          l >>= 4;
          sc[j % 4 + 8] |= uint8_t(l << (2 * (j / 4)));
        }
        d16 = fp32_to_fp16(1 / iscale);
      } else {
        d16 = fp32_to_fp16(0.f);
      }
      store_u16(yb + 108, d16);
      const float df = fp16_to_fp32(d16);
      for (int j = 0; j < 16; ++j) {
        int s = j < 8 ? (sc[j] & 0xF) : (sc[j - 8] >> 4);
        s = (s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
        d_b[16 * b + j] = df * float(s);
      }
    }
    k.requant_sym(x, cnt * 16, d_b, 4, Lb);
    for (int64_t b = 0; b < cnt; ++b) {
      int8_t* L = Lb + b * kQKK;
      uint8_t* hmask = y + 110 * b;
      // High bit of element e (L in [0, 8)) goes to bit e/32 of hmask[e%32]; the low 2 bits
      // stay in L.
      std::fill(hmask, hmask + 32, uint8_t(0));
      for (int j = 0; j < kQKK; j += 32) {
        for (int l = 0; l < 32; ++l) {
          hmask[l] = uint8_t(hmask[l] | ((L[j + l] >> 2) << (j / 32)));
          L[j + l] = int8_t(L[j + l] & 3);
        }
      }
      pack_2bit(L, y + 110 * b + 32);
    }
  }
}

// Q4_K and Q5_K share the fit and the scales; they differ in nmax and the bit packing.
template <int kNmax, int kBytes>
void quantize_k4_family(const float* x, uint8_t* y, int64_t n) {
  const FitKernels& k = fit_kernels();
  uint8_t Lb[kBatch * kQKK];
  float mins_b[kBatch * 8], scales_b[kBatch * 8], d_b[kBatch * 8], dm_b[kBatch * 8];
  const int64_t nb = n / kQKK;
  for (int64_t b0 = 0; b0 < nb; b0 += kBatch, x += kBatch * kQKK, y += kBatch * kBytes) {
    const int64_t cnt = std::min(kBatch, nb - b0);
    k.qkx2(kNmax == 15 ? Qkx2Kind::Q4K : Qkx2Kind::Q5K, x, cnt * 8, scales_b, mins_b, Lb);
    for (int64_t b = 0; b < cnt; ++b) {
      uint8_t* yb = y + kBytes * b;
      uint16_t d16, dmin16;
      k4_scales(scales_b + 8 * b, mins_b + 8 * b, yb + 4, d16, dmin16, d_b + 8 * b, dm_b + 8 * b);
      store_u16(yb, d16);
      store_u16(yb + 2, dmin16);
    }
    k.requant_affine(x, cnt * 8, 32, d_b, dm_b, kNmax, Lb);
    for (int64_t b = 0; b < cnt; ++b) {
      const uint8_t* L = Lb + b * kQKK;
      uint8_t* yb = y + kBytes * b;
      if constexpr (kNmax == 15) {
        uint8_t* q = yb + 16;
        for (int j = 0; j < kQKK; j += 64, q += 32)
          for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
      } else {
        // Bit 4 of element c*64 + j goes to bit 2c of qh[j], of c*64 + 32 + j to bit 2c+1.
        uint8_t* qh = yb + 16;
        uint8_t* ql = yb + 48;
        std::fill(qh, qh + 32, uint8_t(0));
        for (int c = 0; c < kQKK; c += 64, ql += 32) {
          const int shift = c / 32;
          for (int j = 0; j < 32; ++j) {
            const int l1 = L[c + j], l2 = L[c + j + 32];
            qh[j] = uint8_t(qh[j] | ((l1 >> 4) << shift) | ((l2 >> 4) << (shift + 1)));
            ql[j] = uint8_t((l1 & 0xF) | ((l2 & 0xF) << 4));
          }
        }
      }
    }
  }
}

void quantize_q4_k(const float* x, uint8_t* y, int64_t n) { quantize_k4_family<15, 144>(x, y, n); }
void quantize_q5_k(const float* x, uint8_t* y, int64_t n) { quantize_k4_family<31, 176>(x, y, n); }

void quantize_q6_k(const float* x, uint8_t* y, int64_t n) {
  const FitKernels& k = fit_kernels();
  int8_t Lb[kBatch * kQKK];
  float scales_b[kBatch * 16], d_b[kBatch * 16];
  bool zero_b[kBatch];
  const int64_t nb = n / kQKK;
  for (int64_t b0 = 0; b0 < nb; b0 += kBatch, x += kBatch * kQKK, y += kBatch * 210) {
    const int64_t cnt = std::min(kBatch, nb - b0);
    k.qx6(x, cnt * 16, scales_b, Lb);
    for (int64_t b = 0; b < cnt; ++b) {
      const float* scales = scales_b + 16 * b;
      uint8_t* yb = y + 210 * b;
      float max_scale = 0, max_abs_scale = 0;
      for (int ib = 0; ib < 16; ++ib) {
        const float a = std::fabs(scales[ib]);
        if (a > max_abs_scale) {
          max_abs_scale = a;
          max_scale = scales[ib];
        }
      }
      zero_b[b] = max_abs_scale < kGroupMaxEps;
      if (zero_b[b]) {
        std::fill(yb, yb + 210, uint8_t(0));
        store_u16(yb + 208, fp32_to_fp16(0.f));
        std::fill(d_b + 16 * b, d_b + 16 * b + 16, 0.0f);  // nothing to re-quantize
        continue;
      }
      uint8_t* sc = yb + 192;
      const float iscale = -128.f / max_scale;
      const uint16_t d16 = fp32_to_fp16(1 / iscale);
      store_u16(yb + 208, d16);
      for (int ib = 0; ib < 16; ++ib)
        sc[ib] = uint8_t(int8_t(std::min(127, nearest_int(iscale * scales[ib]))));
      const float df = fp16_to_fp32(d16);
      for (int j = 0; j < 16; ++j) d_b[16 * b + j] = df * float(int8_t(sc[j]));
    }
    k.requant_sym(x, cnt * 16, d_b, 32, Lb);
    for (int64_t b = 0; b < cnt; ++b) {
      if (zero_b[b]) continue;
      const int8_t* L = Lb + b * kQKK;
      uint8_t* ql = y + 210 * b;
      uint8_t* qh = ql + 128;
      for (int j = 0; j < kQKK; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; ++l) {
          const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
          ql[l] = uint8_t((q1 & 0xF) | ((q3 & 0xF) << 4));
          ql[l + 32] = uint8_t((q2 & 0xF) | ((q4 & 0xF) << 4));
          qh[l] = uint8_t((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
      }
    }
  }
}

}  // namespace mc::quant::detail
