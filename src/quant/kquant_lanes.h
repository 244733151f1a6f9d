// The k-quant fits (kquant_fit.h) written once for any vector width: each lane of a vector holds
// one sub-block and runs the scalar algorithm of quant_kquants.cpp on it, operation for
// operation, in the same order (sums run left to right along the sub-block, products keep the
// scalar association (w*l)*l, comparisons are the same ordered/unordered predicates), so every
// lane ends with the bits the scalar code computes. Branches of the scalar code become masks:
// both sides are computed and the lane keeps the side its own values choose; a loop the scalar
// code may leave early (make_q3_quants' passes) runs while any lane still changes, and an extra
// pass over a lane that did not change leaves it as it was.
//
// Included only by kquant_avx2.cpp and kquant_avx512.cpp, inside an anonymous namespace, after
// they define the traits struct V (width W; F float, I int32, M mask vectors; the operations
// below). It includes nothing and defines nothing with external linkage, so no function
// compiled for a wider instruction set can be picked by the linker for scalar code.
#pragma once

// Sub-blocks s0 .. s0+W-1 of n_sub (each N values at x) transposed so that xt[i*W + k] is value
// i of sub-block s0+k. Lanes past the end repeat the last sub-block; their results are dropped.
template <class V, int N>
inline void load_tile(const float* x, int64_t n_sub, int64_t s0, float* xt) {
  for (int k = 0; k < V::W; ++k) {
    const int64_t s = s0 + k < n_sub ? s0 + k : n_sub - 1;
    const float* src = x + s * N;
    for (int i = 0; i < N; ++i) xt[i * V::W + k] = src[i];
  }
}

template <class V>
inline typename V::I clamp_nearest(typename V::F f, int lo, int hi) {
  return V::clampi(V::nearest_int(f), lo, hi);
}

// make_qkx2_quants on W sub-blocks of N values (quant_kquants.cpp); weights |x| (Q2_K) or
// sqrt(sum x^2 / 32) + |x| (Q4_K, Q5_K). Writes scales, the_min values and L (Lt[i*W + k]).
template <class V, int N, bool kMad, bool kRmsWeights>
inline void qkx2_tile(const float* xt, int nmax, float rmin, float rdelta, int nstep,
                      float* scale_out, float* min_out, int32_t* Lt) {
  using F = typename V::F;
  using M = typename V::M;
  constexpr int W = V::W;
  const F zero = V::zero();
  F x[N], w[N], L[N], La[N];
  for (int i = 0; i < N; ++i) x[i] = V::load(xt + i * W);
  if constexpr (kRmsWeights) {
    F sum_x2 = zero;
    for (int i = 0; i < N; ++i) sum_x2 = V::add(sum_x2, V::mul(x[i], x[i]));
    const F av_x = V::sqrt(V::div(sum_x2, V::set1(32.0f)));
    for (int i = 0; i < N; ++i) w[i] = V::add(av_x, V::abs(x[i]));
  } else {
    for (int i = 0; i < N; ++i) w[i] = V::abs(x[i]);
  }

  F mn = x[0], mx = x[0];
  F sum_w = w[0];
  F sum_x = V::mul(sum_w, x[0]);
  for (int i = 1; i < N; ++i) {
    mn = V::sel(V::lt(x[i], mn), x[i], mn);
    mx = V::sel(V::gt(x[i], mx), x[i], mx);
    sum_w = V::add(sum_w, w[i]);
    sum_x = V::add(sum_x, V::mul(w[i], x[i]));
  }
  mn = V::sel(V::gt(mn, zero), zero, mn);
  const M flat = V::eq(mx, mn);  // these lanes return scale 0, L 0, the_min -mn
  const F mn_flat = mn;
  const F fnmax = V::set1(float(nmax));

  F iscale = V::div(fnmax, V::sub(mx, mn));
  F scale = V::div(V::set1(1.0f), iscale);
  F best_error = zero;
  for (int i = 0; i < N; ++i) {
    L[i] = V::cvt(clamp_nearest<V>(V::mul(iscale, V::sub(x[i], mn)), 0, nmax));
    F diff = V::sub(V::add(V::mul(scale, L[i]), mn), x[i]);
    diff = kMad ? V::abs(diff) : V::mul(diff, diff);
    best_error = V::add(best_error, V::mul(w[i], diff));
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = V::div(V::set1(rmin + rdelta * float(is) + float(nmax)), V::sub(mx, mn));
    F sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < N; ++i) {
      La[i] = V::cvt(clamp_nearest<V>(V::mul(iscale, V::sub(x[i], mn)), 0, nmax));
      const F wl = V::mul(w[i], La[i]);
      sum_l = V::add(sum_l, wl);
      sum_l2 = V::add(sum_l2, V::mul(wl, La[i]));
      sum_xl = V::add(sum_xl, V::mul(wl, x[i]));
    }
    const F D = V::sub(V::mul(sum_w, sum_l2), V::mul(sum_l, sum_l));
    const M dpos = V::gt(D, zero);
    if (!V::any(dpos)) continue;
    F this_scale = V::div(V::sub(V::mul(sum_w, sum_xl), V::mul(sum_x, sum_l)), D);
    F this_min = V::div(V::sub(V::mul(sum_l2, sum_x), V::mul(sum_l, sum_xl)), D);
    const M mpos = V::gt(this_min, zero);
    this_min = V::sel(mpos, zero, this_min);
    this_scale = V::sel(mpos, V::div(sum_xl, sum_l2), this_scale);
    F cur_error = zero;
    for (int i = 0; i < N; ++i) {
      F diff = V::sub(V::add(V::mul(this_scale, La[i]), this_min), x[i]);
      diff = kMad ? V::abs(diff) : V::mul(diff, diff);
      cur_error = V::add(cur_error, V::mul(w[i], diff));
    }
    const M upd = V::mand(dpos, V::lt(cur_error, best_error));
    if (!V::any(upd)) continue;
    for (int i = 0; i < N; ++i) L[i] = V::sel(upd, La[i], L[i]);
    best_error = V::sel(upd, cur_error, best_error);
    scale = V::sel(upd, this_scale, scale);
    mn = V::sel(upd, this_min, mn);
  }
  V::store(scale_out, V::sel(flat, zero, scale));
  V::store(min_out, V::neg(V::sel(flat, mn_flat, mn)));
  for (int i = 0; i < N; ++i) V::storei(Lt + i * W, V::cvti(V::sel(flat, zero, L[i])));
}

// The largest-magnitude value of each lane's sub-block (the first one on ties) and its |.|.
template <class V, int N>
inline void signed_absmax_lanes(const typename V::F* x, typename V::F& max, typename V::F& amax) {
  max = V::zero();
  amax = V::zero();
  for (int i = 0; i < N; ++i) {
    const typename V::F ax = V::abs(x[i]);
    const typename V::M m = V::gt(ax, amax);
    amax = V::sel(m, ax, amax);
    max = V::sel(m, x[i], max);
  }
}

// The weighted sums of make_qx_quants for one inverse scale (weights x^2).
template <class V, int N>
inline void qx_sums(const typename V::F* x, const typename V::F* w, const typename V::F* wx,
                    typename V::F iscale, int nmax, typename V::F& sumlx, typename V::F& suml2) {
  sumlx = V::zero();
  suml2 = V::zero();
  for (int i = 0; i < N; ++i) {
    const typename V::F l = V::cvt(clamp_nearest<V>(V::mul(iscale, x[i]), -nmax, nmax - 1));
    sumlx = V::add(sumlx, V::mul(wx[i], l));
    suml2 = V::add(suml2, V::mul(V::mul(w[i], l), l));
  }
}

// make_qx_quants(16, nmax, rmse_type 1) on W sub-blocks: scales and L + nmax (Lt[i*W + k]).
template <class V, int N>
inline void qx_tile(const float* xt, int nmax, float* scale_out, int32_t* Lt) {
  using F = typename V::F;
  using M = typename V::M;
  constexpr int W = V::W;
  const F zero = V::zero();
  F x[N], w[N], wx[N];
  for (int i = 0; i < N; ++i) {
    x[i] = V::load(xt + i * W);
    w[i] = V::mul(x[i], x[i]);
    wx[i] = V::mul(w[i], x[i]);
  }
  F max, amax;
  signed_absmax_lanes<V, N>(x, max, amax);
  const M tiny = V::lt(amax, V::set1(1e-15f));

  F best_iscale = V::div(V::set1(float(-nmax)), max);
  F sumlx, suml2;
  qx_sums<V, N>(x, w, wx, best_iscale, nmax, sumlx, suml2);
  F scale = V::sel(V::ne(suml2, zero), V::div(sumlx, suml2), zero);
  F best = V::mul(scale, sumlx);
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const F iscale = V::div(V::set1(-(float(nmax) + 0.1f * float(is))), max);
    qx_sums<V, N>(x, w, wx, iscale, nmax, sumlx, suml2);
    const M upd = V::mand(V::gt(suml2, zero), V::gt(V::mul(sumlx, sumlx), V::mul(best, suml2)));
    if (!V::any(upd)) continue;
    best_iscale = V::sel(upd, iscale, best_iscale);
    const F s = V::div(sumlx, suml2);
    scale = V::sel(upd, s, scale);
    best = V::sel(upd, V::mul(s, sumlx), best);
  }
  V::store(scale_out, V::sel(tiny, zero, scale));
  const typename V::I vnmax = V::set1i(nmax);
  for (int i = 0; i < N; ++i) {
    const typename V::I l = V::addi(clamp_nearest<V>(V::mul(best_iscale, x[i]), -nmax, nmax - 1), vnmax);
    V::storei(Lt + i * W, V::seli(tiny, V::set1i(0), l));
  }
}

// make_q3_quants(16, nmax, do_rmse = true) on W sub-blocks: scales and L + nmax (Lt[i*W + k]).
template <class V, int N>
inline void q3_tile(const float* xt, int nmax, float* scale_out, int32_t* Lt) {
  using F = typename V::F;
  using I = typename V::I;
  using M = typename V::M;
  constexpr int W = V::W;
  const F zero = V::zero();
  F x[N], w[N], wx[N], Lf[N];
  I L[N];
  for (int i = 0; i < N; ++i) {
    x[i] = V::load(xt + i * W);
    w[i] = V::mul(x[i], x[i]);
    wx[i] = V::mul(w[i], x[i]);
  }
  F max, amax;
  signed_absmax_lanes<V, N>(x, max, amax);
  const M tiny = V::lt(amax, V::set1(1e-15f));
  const F iscale = V::div(V::set1(float(-nmax)), max);
  F sumlx = zero, suml2 = zero;
  for (int i = 0; i < N; ++i) {
    L[i] = clamp_nearest<V>(V::mul(iscale, x[i]), -nmax, nmax - 1);
    Lf[i] = V::cvt(L[i]);
    sumlx = V::add(sumlx, V::mul(wx[i], Lf[i]));
    suml2 = V::add(suml2, V::mul(V::mul(w[i], Lf[i]), Lf[i]));
  }
  for (int itry = 0; itry < 5; ++itry) {
    M changed = V::mnone();
    for (int i = 0; i < N; ++i) {
      F slx = V::sub(sumlx, V::mul(wx[i], Lf[i]));
      const M spos = V::gt(slx, zero);
      if (!V::any(spos)) continue;
      F sl2 = V::sub(suml2, V::mul(V::mul(w[i], Lf[i]), Lf[i]));
      const I new_l = clamp_nearest<V>(V::div(V::mul(x[i], sl2), slx), -nmax, nmax - 1);
      const M differs = V::mand(spos, V::nei(new_l, L[i]));
      if (!V::any(differs)) continue;
      const F nl = V::cvt(new_l);
      slx = V::add(slx, V::mul(wx[i], nl));
      sl2 = V::add(sl2, V::mul(V::mul(w[i], nl), nl));
      const M take = V::mand(differs, V::mand(V::gt(sl2, zero),
                                               V::gt(V::mul(V::mul(slx, slx), suml2),
                                                     V::mul(V::mul(sumlx, sumlx), sl2))));
      L[i] = V::seli(take, new_l, L[i]);
      Lf[i] = V::sel(take, nl, Lf[i]);
      sumlx = V::sel(take, slx, sumlx);
      suml2 = V::sel(take, sl2, suml2);
      changed = V::mor(changed, take);
    }
    if (!V::any(changed)) break;
  }
  const F scale = V::sel(V::gt(suml2, zero), V::div(sumlx, suml2), zero);
  V::store(scale_out, V::sel(tiny, zero, scale));
  const I vnmax = V::set1i(nmax);
  for (int i = 0; i < N; ++i) V::storei(Lt + i * W, V::seli(tiny, V::set1i(0), V::addi(L[i], vnmax)));
}

// Drivers: n_sub sub-blocks at x, W at a time, results in sub-block order.
template <class V, int N, bool kMad, bool kRmsWeights>
void qkx2_run(const float* x, int64_t n_sub, int nmax, float rmin, float rdelta, int nstep,
              float* scales, float* mins, uint8_t* L) {
  constexpr int W = V::W;
  alignas(64) float xt[N * W];
  alignas(64) int32_t Lt[N * W];
  alignas(64) float sc[W], mn[W];
  for (int64_t s0 = 0; s0 < n_sub; s0 += W) {
    load_tile<V, N>(x, n_sub, s0, xt);
    qkx2_tile<V, N, kMad, kRmsWeights>(xt, nmax, rmin, rdelta, nstep, sc, mn, Lt);
    const int cnt = n_sub - s0 < W ? int(n_sub - s0) : W;
    for (int k = 0; k < cnt; ++k) {
      scales[s0 + k] = sc[k];
      mins[s0 + k] = mn[k];
      uint8_t* out = L + (s0 + k) * N;
      for (int i = 0; i < N; ++i) out[i] = uint8_t(Lt[i * W + k]);
    }
  }
}

template <class V, bool kQ3>
void q16_run(const float* x, int64_t n_sub, float* scales, int8_t* L) {
  constexpr int W = V::W;
  constexpr int N = 16;
  alignas(64) float xt[N * W];
  alignas(64) int32_t Lt[N * W];
  alignas(64) float sc[W];
  for (int64_t s0 = 0; s0 < n_sub; s0 += W) {
    load_tile<V, N>(x, n_sub, s0, xt);
    if constexpr (kQ3)
      q3_tile<V, N>(xt, 4, sc, Lt);
    else
      qx_tile<V, N>(xt, 32, sc, Lt);
    const int cnt = n_sub - s0 < W ? int(n_sub - s0) : W;
    for (int k = 0; k < cnt; ++k) {
      scales[s0 + k] = sc[k];
      int8_t* out = L + (s0 + k) * N;
      for (int i = 0; i < N; ++i) out[i] = int8_t(Lt[i * W + k]);
    }
  }
}

// The FitKernels entry points (ggml's constants per type).
template <class V>
void fit_qkx2(mc::quant::detail::Qkx2Kind kind, const float* x, int64_t n_sub, float* scales,
              float* mins, uint8_t* L) {
  using mc::quant::detail::Qkx2Kind;
  switch (kind) {
    case Qkx2Kind::Q2K: qkx2_run<V, 16, true, false>(x, n_sub, 3, -0.5f, 0.1f, 15, scales, mins, L); break;
    case Qkx2Kind::Q4K: qkx2_run<V, 32, false, true>(x, n_sub, 15, -1.0f, 0.1f, 20, scales, mins, L); break;
    case Qkx2Kind::Q5K: qkx2_run<V, 32, false, true>(x, n_sub, 31, -0.5f, 0.1f, 15, scales, mins, L); break;
  }
}
template <class V>
void fit_qx6(const float* x, int64_t n_sub, float* scales, int8_t* L) {
  q16_run<V, false>(x, n_sub, scales, L);
}
template <class V>
void fit_q3(const float* x, int64_t n_sub, float* scales, int8_t* L) {
  q16_run<V, true>(x, n_sub, scales, L);
}

// a*b + c on vectors: with contraction this would be one fused operation and round once.
template <class V>
float mul_add_probe(float a, float b, float c) {
  alignas(64) float out[V::W];
  V::store(out, V::add(V::mul(V::set1(a), V::set1(b)), V::set1(c)));
  return out[0];
}
