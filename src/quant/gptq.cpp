// GPTQ for one Linear (gptq.h): Hessian accumulation with SYRK, damping with retries, the
// inverse Cholesky factor through LAPACK (dpotrf/dpotri from OpenBLAS), blocks of 128 columns
// with error feedback, act-order with g_idx, groups.
//
// Layout: the algorithm walks W column by column, so it works on W^T ([in][out], one input
// column per row, contiguous over the outputs); the lazy update after each block is one SGEMM.
#include "quant/gptq.h"


#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/dtype.h"
#include "quant/blas_threads.h"

namespace mc::quant {

namespace {

constexpr int64_t kSyrkRows = 1024;  // rows buffered before one SYRK
constexpr int kDampRetries = 10;     // each retry doubles damp_percent

struct Params {
  std::vector<float> scale;  // per output
  std::vector<float> zero;
};

// Quantizer.find_params(weight=True) over columns [c0, c1) of W^T rows (wt is [in][out]).
void find_params(const float* wt, int64_t out, int64_t c0, int64_t c1, int bits, bool sym, Params& p) {
  const float maxq = float((1 << bits) - 1);
  p.scale.resize(static_cast<size_t>(out));
  p.zero.resize(static_cast<size_t>(out));
  std::vector<float> lo(static_cast<size_t>(out), 0.0f), hi(static_cast<size_t>(out), 0.0f);
  for (int64_t c = c0; c < c1; ++c) {
    const float* r = wt + c * out;
    for (int64_t o = 0; o < out; ++o) {
      lo[static_cast<size_t>(o)] = std::min(lo[static_cast<size_t>(o)], r[o]);
      hi[static_cast<size_t>(o)] = std::max(hi[static_cast<size_t>(o)], r[o]);
    }
  }
  for (size_t o = 0; o < static_cast<size_t>(out); ++o) {
    float xmin = lo[o], xmax = hi[o];
    if (sym) {
      xmax = std::max(std::fabs(xmin), xmax);
      if (xmin < 0) xmin = -xmax;
    }
    if (xmin == 0 && xmax == 0) {
      xmin = -1;
      xmax = 1;
    }
    const float scale = fp16_scale((xmax - xmin) / maxq);
    p.scale[o] = scale;
    p.zero[o] = sym ? (maxq + 1) / 2 : std::nearbyint(-xmin / scale);
    p.zero[o] = std::clamp(p.zero[o], 0.0f, maxq);
  }
}

inline float quant_code(float w, float scale, float zero, float maxq) {
  return std::clamp(std::nearbyint(w / scale) + zero, 0.0f, maxq);
}

// The upper Cholesky factor U of H^-1 (H^-1 = U^T U), row-major, in place over `h` ([n][n],
// symmetric). False when a factorisation fails.
bool inverse_cholesky_upper(std::vector<double>& h, int n) {
  int info = 0;
  // A symmetric row-major matrix is its own column-major transpose: 'L' in column-major terms
  // is the upper triangle in ours.
  const char lo = 'L';
  blas::api().dpotrf(&lo, &n, h.data(), &n, &info);
  if (info != 0) return false;
  blas::api().dpotri(&lo, &n, h.data(), &n, &info);
  if (info != 0) return false;
  // dpotri filled the column-major lower triangle (our upper): mirror it.
  const size_t N = static_cast<size_t>(n);
  for (size_t r = 0; r < N; ++r)
    for (size_t c = r + 1; c < N; ++c) h[c * N + r] = h[r * N + c];
  blas::api().dpotrf(&lo, &n, h.data(), &n, &info);
  if (info != 0) return false;
  // Column-major L (lower) read row-major is L^T = U (upper); clear what lies below.
  for (size_t r = 0; r < N; ++r)
    for (size_t c = 0; c < r; ++c) h[r * N + c] = 0;
  return true;
}

}  // namespace

float fp16_scale(float s) {
  float r = f16_to_f32(f32_to_f16(s));
  if (!(r > 0)) r = 5.9604645e-08f;  // smallest positive fp16: a zero scale cannot be stored
  return r;
}

std::vector<float> GroupQuant::dequantize() const {
  std::vector<float> w(static_cast<size_t>(out * in));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      const size_t g = static_cast<size_t>(g_idx[static_cast<size_t>(i)]) * static_cast<size_t>(out) + static_cast<size_t>(o);
      w[static_cast<size_t>(o * in + i)] = scales[g] * (float(q[static_cast<size_t>(o * in + i)]) - float(zeros[g]));
    }
  return w;
}

Hessian::Hessian(int64_t in) : in_(in), sum_(static_cast<size_t>(in * in), 0.0f) {
  buf_.resize(static_cast<size_t>(kSyrkRows * in));
}

void Hessian::add_sequence(const float* x, int64_t tokens) {
  ++n_seq_;
  while (tokens > 0) {
    const int64_t take = std::min(tokens, kSyrkRows - buffered_);
    std::memcpy(buf_.data() + buffered_ * in_, x, static_cast<size_t>(take * in_) * sizeof(float));
    buffered_ += take;
    x += take * in_;
    tokens -= take;
    if (buffered_ == kSyrkRows) flush();
  }
}

void Hessian::flush() {
  if (buffered_ == 0) return;
  // sum += X^T X with X [buffered][in] row-major.
  blas::api().ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(in_), static_cast<int>(buffered_), 1.0f,
              buf_.data(), static_cast<int>(in_), 1.0f, sum_.data(), static_cast<int>(in_));
  buffered_ = 0;
}

std::vector<double> Hessian::matrix() {
  flush();
  const size_t n = static_cast<size_t>(in_);
  std::vector<double> h(n * n);
  const double f = n_seq_ > 0 ? 2.0 / double(n_seq_) : 0.0;
  for (size_t r = 0; r < n; ++r)
    for (size_t c = r; c < n; ++c) h[r * n + c] = h[c * n + r] = f * double(sum_[r * n + c]);
  return h;
}

Result<GptqFactor> gptq_factor(Hessian& hess, const GptqParams& p, int threads) {
  BlasThreads blas(threads);
  const int64_t in = hess.in();
  const size_t I = static_cast<size_t>(in);
  GptqFactor f;
  f.in = in;
  // Kept in float between damping attempts (each attempt factors a double copy).
  std::vector<float> h;
  {
    const std::vector<double> hd = hess.matrix();
    h.assign(hd.begin(), hd.end());
  }
  f.dead.assign(I, 0);
  for (size_t i = 0; i < I; ++i)
    if (h[i * I + i] == 0) {
      h[i * I + i] = 1;
      f.dead[i] = 1;
    }
  f.perm.resize(I);
  std::iota(f.perm.begin(), f.perm.end(), 0);
  if (p.desc_act) {
    std::stable_sort(f.perm.begin(), f.perm.end(), [&](int64_t a, int64_t b) {
      return h[static_cast<size_t>(a) * I + static_cast<size_t>(a)] > h[static_cast<size_t>(b) * I + static_cast<size_t>(b)];
    });
    std::vector<float> h2(I * I);
    for (size_t r = 0; r < I; ++r)
      for (size_t c = 0; c < I; ++c) h2[r * I + c] = h[static_cast<size_t>(f.perm[r]) * I + static_cast<size_t>(f.perm[c])];
    h.swap(h2);
  }
  double mean_diag = 0;
  for (size_t i = 0; i < I; ++i) mean_diag += h[i * I + i];
  mean_diag /= double(I);
  double damp = p.damp_percent;
  std::vector<double> u;
  bool ok = false;
  for (int attempt = 0; attempt <= kDampRetries; ++attempt, damp *= 2) {
    u.assign(h.begin(), h.end());
    for (size_t i = 0; i < I; ++i) u[i * I + i] += damp * mean_diag;
    ok = inverse_cholesky_upper(u, static_cast<int>(in));
    if (ok) break;
  }
  if (!ok)
    return make_error(ErrorCode::Unsupported,
                      "the Hessian stays singular after {} retries with more damping (last damp_percent {:.4g})",
                      kDampRetries, damp)
        .with_hint("use more or longer calibration samples, or a larger damp_percent");
  f.damp_percent = damp;
  h = {};
  f.u.assign(u.begin(), u.end());
  return f;
}

Result<GroupQuant> gptq_quantize(std::vector<float> w, int64_t out, int64_t in, Hessian& hess,
                                 const GptqParams& p, int threads) {
  const GptqFactor f = MC_TRY(gptq_factor(hess, p, threads));
  return gptq_quantize(std::move(w), out, in, f, p, threads);
}

Result<GroupQuant> gptq_quantize(std::vector<float> w, int64_t out, int64_t in, const GptqFactor& f,
                                 const GptqParams& p, int threads) {
  if (f.in != in)
    return make_error(ErrorCode::Internal, "Hessian of width {} for a Linear with {} inputs", f.in, in);
  const int64_t g = p.group_size < 0 ? in : p.group_size;
  if (g <= 0 || in % g != 0)
    return make_error(ErrorCode::InvalidArgument, "group size {} does not divide {} inputs", p.group_size, in);
  BlasThreads blas(threads);
  const float maxq = float((1 << p.bits) - 1);
  const size_t O = static_cast<size_t>(out), I = static_cast<size_t>(in);
  // W^T: one input column per row.
  std::vector<float> wt(I * O);
  for (size_t o = 0; o < O; ++o)
    for (size_t i = 0; i < I; ++i) wt[i * O + o] = w[o * I + i];
  w = {};
  // Whole-row parameters (used when there is one group), before dead columns are zeroed.
  Params whole;
  find_params(wt.data(), out, 0, in, p.bits, p.sym, whole);
  for (size_t i = 0; i < I; ++i)
    if (f.dead[i]) std::fill(wt.begin() + static_cast<std::ptrdiff_t>(i * O), wt.begin() + static_cast<std::ptrdiff_t>((i + 1) * O), 0.0f);
  const int64_t n_groups = in / g;
  std::vector<Params> fixed;  // static groups, on the original order
  if (p.static_groups && p.group_size > 0) {
    fixed.resize(static_cast<size_t>(n_groups));
    for (int64_t k = 0; k < n_groups; ++k) find_params(wt.data(), out, k * g, (k + 1) * g, p.bits, p.sym, fixed[static_cast<size_t>(k)]);
  }
  const std::vector<int64_t>& perm = f.perm;
  if (p.desc_act) {
    std::vector<float> wt2(I * O);
    for (size_t r = 0; r < I; ++r)
      std::memcpy(wt2.data() + r * O, wt.data() + static_cast<size_t>(perm[r]) * O, O * sizeof(float));
    wt.swap(wt2);
  }
  const std::vector<float>& uf = f.u;
  const double damp = f.damp_percent;

  GroupQuant res;
  res.out = out;
  res.in = in;
  res.bits = p.bits;
  res.groups = n_groups;
  res.damp_percent = damp;
  res.scales.resize(static_cast<size_t>(n_groups) * O);
  res.zeros.resize(static_cast<size_t>(n_groups) * O);
  std::vector<uint8_t> qt(I * O);  // codes, permuted order, [in][out]
  std::vector<int32_t> gid_perm(I);
  const int64_t B = p.block_size;
  std::vector<float> w1, err;
  Params cur = whole;
  int64_t now_group = -1;
  for (int64_t i1 = 0; i1 < in; i1 += B) {
    const int64_t i2 = std::min(i1 + B, in), count = i2 - i1;
    w1.assign(wt.begin() + static_cast<std::ptrdiff_t>(i1) * out, wt.begin() + static_cast<std::ptrdiff_t>(i2) * out);
    err.assign(static_cast<size_t>(count) * O, 0.0f);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t col = i1 + i;
      int64_t grp = 0;
      if (p.group_size > 0) {
        if (!fixed.empty()) {
          grp = perm[static_cast<size_t>(col)] / g;
          cur = fixed[static_cast<size_t>(grp)];
        } else {
          grp = col / g;
          if (col % g == 0) find_params(wt.data(), out, col, col + g, p.bits, p.sym, cur);
          if (grp != now_group) {
            now_group = grp;
            std::copy(cur.scale.begin(), cur.scale.end(), res.scales.begin() + static_cast<std::ptrdiff_t>(grp) * out);
            for (size_t o = 0; o < O; ++o) res.zeros[static_cast<size_t>(grp) * O + o] = static_cast<uint8_t>(cur.zero[o]);
          }
        }
      }
      gid_perm[static_cast<size_t>(col)] = static_cast<int32_t>(grp);
      float* wc = w1.data() + i * out;
      float* ec = err.data() + i * out;
      const float d = uf[static_cast<size_t>(col) * I + static_cast<size_t>(col)];
      uint8_t* qc = qt.data() + static_cast<size_t>(col) * O;
      for (size_t o = 0; o < O; ++o) {
        const float code = quant_code(wc[o], cur.scale[o], cur.zero[o], maxq);
        qc[o] = static_cast<uint8_t>(code);
        ec[o] = (wc[o] - cur.scale[o] * (code - cur.zero[o])) / d;
      }
      // Spread the error over the block's later columns.
      const float* urow = uf.data() + static_cast<size_t>(col) * I;
      for (int64_t j = i + 1; j < count; ++j) {
        const float f = urow[i1 + j];
        if (f == 0) continue;
        float* wj = w1.data() + j * out;
        for (size_t o = 0; o < O; ++o) wj[o] -= f * ec[o];
      }
    }
    // Lazy batch update: W^T[i2:] -= U[i1:i2, i2:]^T * Err.
    if (i2 < in)
      blas::api().sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(in - i2), static_cast<int>(out),
                  static_cast<int>(count), -1.0f, uf.data() + static_cast<size_t>(i1) * I + static_cast<size_t>(i2),
                  static_cast<int>(in), err.data(), static_cast<int>(out), 1.0f,
                  wt.data() + static_cast<size_t>(i2) * O, static_cast<int>(out));
  }
  if (p.group_size < 0) {
    std::copy(whole.scale.begin(), whole.scale.end(), res.scales.begin());
    for (size_t o = 0; o < O; ++o) res.zeros[o] = static_cast<uint8_t>(whole.zero[o]);
  } else if (!fixed.empty()) {
    for (int64_t k = 0; k < n_groups; ++k) {
      const Params& f = fixed[static_cast<size_t>(k)];
      std::copy(f.scale.begin(), f.scale.end(), res.scales.begin() + static_cast<std::ptrdiff_t>(k) * out);
      for (size_t o = 0; o < O; ++o) res.zeros[static_cast<size_t>(k) * O + o] = static_cast<uint8_t>(f.zero[o]);
    }
  }
  // Undo the permutation: codes back to [out][in], g_idx per original column.
  res.q.resize(O * I);
  res.g_idx.resize(I);
  for (size_t r = 0; r < I; ++r) {
    const size_t c = static_cast<size_t>(perm[r]);
    res.g_idx[c] = gid_perm[r];
    for (size_t o = 0; o < O; ++o) res.q[o * I + c] = qt[r * O + o];
  }
  return res;
}

GroupQuant rtn_quantize(const float* w, int64_t out, int64_t in, const GptqParams& p) {
  const int64_t g = p.group_size < 0 ? in : p.group_size;
  const size_t O = static_cast<size_t>(out), I = static_cast<size_t>(in);
  std::vector<float> wt(I * O);
  for (size_t o = 0; o < O; ++o)
    for (size_t i = 0; i < I; ++i) wt[i * O + o] = w[o * I + i];
  const float maxq = float((1 << p.bits) - 1);
  GroupQuant res;
  res.out = out;
  res.in = in;
  res.bits = p.bits;
  res.groups = in / g;
  res.q.resize(O * I);
  res.g_idx.resize(I);
  res.scales.resize(static_cast<size_t>(res.groups) * O);
  res.zeros.resize(static_cast<size_t>(res.groups) * O);
  Params cur;
  for (int64_t k = 0; k < res.groups; ++k) {
    find_params(wt.data(), out, k * g, (k + 1) * g, p.bits, p.sym, cur);
    for (size_t o = 0; o < O; ++o) {
      res.scales[static_cast<size_t>(k) * O + o] = cur.scale[o];
      res.zeros[static_cast<size_t>(k) * O + o] = static_cast<uint8_t>(cur.zero[o]);
    }
    for (int64_t i = k * g; i < (k + 1) * g; ++i) {
      res.g_idx[static_cast<size_t>(i)] = static_cast<int32_t>(k);
      for (size_t o = 0; o < O; ++o)
        res.q[o * I + static_cast<size_t>(i)] =
            static_cast<uint8_t>(quant_code(wt[static_cast<size_t>(i) * O + o], cur.scale[o], cur.zero[o], maxq));
    }
  }
  return res;
}

}  // namespace mc::quant
