// AWQ's group quantizer, scale statistics, grid candidates and clipping search (awq.h).
#include "quant/awq.h"


#include <algorithm>
#include <cmath>
#include <limits>

#include "quant/blas_threads.h"

namespace mc::quant {

namespace {

constexpr float kMaxQ = 15.0f;
constexpr int64_t kClipTokens = 512;  // tokens the clipping search samples (strided)
constexpr int kClipGrid = 20;          // max_val = org_max * (1 - k / 20)
constexpr int kClipSteps = 10;         // k < 0.5 * 20

struct GroupParams {
  float scale, zero;
};

GroupParams group_params(const float* w, int64_t n) {
  float lo = w[0], hi = w[0];
  for (int64_t j = 1; j < n; ++j) {
    lo = std::min(lo, w[j]);
    hi = std::max(hi, w[j]);
  }
  const float s = fp16_scale(std::max(hi - lo, 1e-5f) / kMaxQ);
  const float z = std::clamp(-std::nearbyint(lo / s), 0.0f, kMaxQ);
  return {s, z};
}

inline float code_of(float w, const GroupParams& p) {
  return std::clamp(std::nearbyint(w / p.scale) + p.zero, 0.0f, kMaxQ);
}

}  // namespace

GroupQuant awq_quantize(const float* w, int64_t out, int64_t in, int64_t g) {
  GroupQuant r;
  r.out = out;
  r.in = in;
  r.bits = kAwqBits;
  r.groups = in / g;
  const size_t O = static_cast<size_t>(out), I = static_cast<size_t>(in);
  r.q.resize(O * I);
  r.scales.resize(static_cast<size_t>(r.groups) * O);
  r.zeros.resize(static_cast<size_t>(r.groups) * O);
  r.g_idx.resize(I);
  for (size_t i = 0; i < I; ++i) r.g_idx[i] = static_cast<int32_t>(int64_t(i) / g);
  for (size_t o = 0; o < O; ++o)
    for (int64_t k = 0; k < r.groups; ++k) {
      const float* wg = w + o * I + static_cast<size_t>(k * g);
      const GroupParams p = group_params(wg, g);
      r.scales[static_cast<size_t>(k) * O + o] = p.scale;
      r.zeros[static_cast<size_t>(k) * O + o] = static_cast<uint8_t>(p.zero);
      uint8_t* q = r.q.data() + o * I + static_cast<size_t>(k * g);
      for (int64_t j = 0; j < g; ++j) q[j] = static_cast<uint8_t>(code_of(wg[j], p));
    }
  return r;
}

void awq_pseudo_quantize(float* w, int64_t out, int64_t in, int64_t g) {
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in / g; ++k) {
      float* wg = w + o * in + k * g;
      const GroupParams p = group_params(wg, g);
      for (int64_t j = 0; j < g; ++j) wg[j] = (code_of(wg[j], p) - p.zero) * p.scale;
    }
}

void awq_add_w_scale(const float* w, int64_t rows, int64_t in, int64_t g, std::vector<double>& acc) {
  acc.resize(static_cast<size_t>(in), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < in / g; ++k) {
      const float* wg = w + r * in + k * g;
      float mx = 0;
      for (int64_t j = 0; j < g; ++j) mx = std::max(mx, std::fabs(wg[j]));
      const double inv = 1.0 / (double(mx) + 1e-6);
      for (int64_t j = 0; j < g; ++j) acc[static_cast<size_t>(k * g + j)] += std::fabs(double(wg[j])) * inv;
    }
}

std::vector<float> awq_candidate_scales(const std::vector<float>& x_mean, const std::vector<float>& w_mean,
                                        double ratio, bool duo_scaling) {
  const size_t n = x_mean.size();
  std::vector<float> s(n);
  for (size_t c = 0; c < n; ++c) {
    double v = std::pow(double(x_mean[c]), ratio);
    if (duo_scaling) v /= std::pow(double(w_mean[c]), 1.0 - ratio) + 1e-4;
    s[c] = static_cast<float>(std::max(v, 1e-4));
  }
  const auto [mn, mx] = std::minmax_element(s.begin(), s.end());
  const float norm = static_cast<float>(std::sqrt(double(*mx) * double(*mn)));
  for (auto& v : s) {
    v /= norm;
    if (!std::isfinite(v)) v = 1.0f;
  }
  return s;
}

std::vector<float> awq_clip(float* w, int64_t out, int64_t in, int64_t g, const float* x, int64_t tokens,
                            int threads) {
  BlasThreads blas(threads);
  const int64_t step = std::max<int64_t>(1, tokens / kClipTokens);
  const int64_t T = (tokens + step - 1) / step;
  const int64_t n_groups = in / g;
  std::vector<float> best(static_cast<size_t>(out * n_groups));
  std::vector<float> xg(static_cast<size_t>(T * g)), gram(static_cast<size_t>(g * g));
  std::vector<float> d(static_cast<size_t>(out * g)), e(static_cast<size_t>(out * g));
  std::vector<float> org_max(static_cast<size_t>(out)), min_err(static_cast<size_t>(out));
  std::vector<float> cur(static_cast<size_t>(g));
  for (int64_t k = 0; k < n_groups; ++k) {
    // The error of a group's partial output over the sampled tokens is d^T G d / T with
    // d = Q(clamp(w)) - w and G = sum x x^T over the group's inputs.
    for (int64_t t = 0; t < T; ++t)
      std::copy(x + t * step * in + k * g, x + t * step * in + (k + 1) * g, xg.begin() + t * g);
    blas::api().ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(g), static_cast<int>(T), 1.0f, xg.data(),
                static_cast<int>(g), 0.0f, gram.data(), static_cast<int>(g));
    for (int64_t r = 0; r < g; ++r)
      for (int64_t c = 0; c < r; ++c) gram[static_cast<size_t>(r * g + c)] = gram[static_cast<size_t>(c * g + r)];
    for (int64_t o = 0; o < out; ++o) {
      const float* wg = w + o * in + k * g;
      float mx = 0;
      for (int64_t j = 0; j < g; ++j) mx = std::max(mx, std::fabs(wg[j]));
      org_max[static_cast<size_t>(o)] = mx;
      min_err[static_cast<size_t>(o)] = std::numeric_limits<float>::max();
      best[static_cast<size_t>(o * n_groups + k)] = mx;
    }
    for (int s = 0; s < kClipSteps; ++s) {
      for (int64_t o = 0; o < out; ++o) {
        const float* wg = w + o * in + k * g;
        const float mv = org_max[static_cast<size_t>(o)] * (1.0f - float(s) / float(kClipGrid));
        for (int64_t j = 0; j < g; ++j) cur[static_cast<size_t>(j)] = std::clamp(wg[j], -mv, mv);
        awq_pseudo_quantize(cur.data(), 1, g, g);
        for (int64_t j = 0; j < g; ++j) d[static_cast<size_t>(o * g + j)] = cur[static_cast<size_t>(j)] - wg[j];
      }
      blas::api().ssymm(CblasRowMajor, CblasRight, CblasUpper, static_cast<int>(out), static_cast<int>(g), 1.0f,
                  gram.data(), static_cast<int>(g), d.data(), static_cast<int>(g), 0.0f, e.data(), static_cast<int>(g));
      for (int64_t o = 0; o < out; ++o) {
        double err = 0;
        for (int64_t j = 0; j < g; ++j) err += double(d[static_cast<size_t>(o * g + j)]) * e[static_cast<size_t>(o * g + j)];
        const float ferr = static_cast<float>(err / double(T));
        if (ferr < min_err[static_cast<size_t>(o)]) {
          min_err[static_cast<size_t>(o)] = ferr;
          best[static_cast<size_t>(o * n_groups + k)] = org_max[static_cast<size_t>(o)] * (1.0f - float(s) / float(kClipGrid));
        }
      }
    }
    for (int64_t o = 0; o < out; ++o) {
      float* wg = w + o * in + k * g;
      const float mv = best[static_cast<size_t>(o * n_groups + k)];
      for (int64_t j = 0; j < g; ++j) wg[j] = std::clamp(wg[j], -mv, mv);
    }
  }
  return best;
}

}  // namespace mc::quant
