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

// Vectors of sub-blocks the fits work on side by side (independent running sums overlap).
constexpr int kTiles = 2;

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

// make_qkx2_quants on T*W sub-blocks of N values (quant_kquants.cpp); weights |x| (Q2_K) or
// sqrt(sum x^2 / 32) + |x| (Q4_K, Q5_K). Writes scales, the_min values and L (Lt[(t*N + i)*W +
// k] for sub-block t*W + k). The T vectors are independent; handling them side by side hides
// the latency of the running sums.
template <class V, int N, bool kMad, bool kRmsWeights, int T>
inline void qkx2_tile(const float* xt, int nmax, float rmin, float rdelta, int nstep,
                      float* scale_out, float* min_out, int32_t* Lt) {
  using F = typename V::F;
  using M = typename V::M;
  constexpr int W = V::W;
  const F zero = V::zero();
  F x[T][N], w[T][N], L[T][N], La[T][N];
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < N; ++i) x[t][i] = V::load(xt + (t * N + i) * W);
  for (int t = 0; t < T; ++t) {
    if constexpr (kRmsWeights) {
      F sum_x2 = zero;
      for (int i = 0; i < N; ++i) sum_x2 = V::add(sum_x2, V::mul(x[t][i], x[t][i]));
      const F av_x = V::sqrt(V::div(sum_x2, V::set1(32.0f)));
      for (int i = 0; i < N; ++i) w[t][i] = V::add(av_x, V::abs(x[t][i]));
    } else {
      for (int i = 0; i < N; ++i) w[t][i] = V::abs(x[t][i]);
    }
  }

  F mn[T], mx[T], sum_w[T], sum_x[T], mn_flat[T], scale[T], best_error[T];
  M flat[T];
  for (int t = 0; t < T; ++t) {
    mn[t] = x[t][0];
    mx[t] = x[t][0];
    sum_w[t] = w[t][0];
    sum_x[t] = V::mul(sum_w[t], x[t][0]);
  }
  for (int i = 1; i < N; ++i) {
    for (int t = 0; t < T; ++t) {
      mn[t] = V::sel(V::lt(x[t][i], mn[t]), x[t][i], mn[t]);
      mx[t] = V::sel(V::gt(x[t][i], mx[t]), x[t][i], mx[t]);
      sum_w[t] = V::add(sum_w[t], w[t][i]);
      sum_x[t] = V::add(sum_x[t], V::mul(w[t][i], x[t][i]));
    }
  }
  const F fnmax = V::set1(float(nmax));
  for (int t = 0; t < T; ++t) {
    mn[t] = V::sel(V::gt(mn[t], zero), zero, mn[t]);
    flat[t] = V::eq(mx[t], mn[t]);  // these lanes return scale 0, L 0, the_min -mn
    mn_flat[t] = mn[t];
    const F iscale = V::div(fnmax, V::sub(mx[t], mn[t]));
    scale[t] = V::div(V::set1(1.0f), iscale);
    best_error[t] = zero;
    for (int i = 0; i < N; ++i) {
      L[t][i] = V::cvt(clamp_nearest<V>(V::mul(iscale, V::sub(x[t][i], mn[t])), 0, nmax));
      F diff = V::sub(V::add(V::mul(scale[t], L[t][i]), mn[t]), x[t][i]);
      diff = kMad ? V::abs(diff) : V::mul(diff, diff);
      best_error[t] = V::add(best_error[t], V::mul(w[t][i], diff));
    }
  }
  for (int is = 0; is <= nstep; ++is) {
    const F num = V::set1(rmin + rdelta * float(is) + float(nmax));
    F iscale[T], sum_l[T], sum_l2[T], sum_xl[T], D[T];
    M dpos[T];
    for (int t = 0; t < T; ++t) {
      iscale[t] = V::div(num, V::sub(mx[t], mn[t]));
      sum_l[t] = sum_l2[t] = sum_xl[t] = zero;
    }
    for (int i = 0; i < N; ++i) {
      for (int t = 0; t < T; ++t) {
        La[t][i] = V::cvt(clamp_nearest<V>(V::mul(iscale[t], V::sub(x[t][i], mn[t])), 0, nmax));
        const F wl = V::mul(w[t][i], La[t][i]);
        sum_l[t] = V::add(sum_l[t], wl);
        sum_l2[t] = V::add(sum_l2[t], V::mul(wl, La[t][i]));
        sum_xl[t] = V::add(sum_xl[t], V::mul(wl, x[t][i]));
      }
    }
    M any_d = V::mnone();
    for (int t = 0; t < T; ++t) {
      D[t] = V::sub(V::mul(sum_w[t], sum_l2[t]), V::mul(sum_l[t], sum_l[t]));
      dpos[t] = V::gt(D[t], zero);
      any_d = V::mor(any_d, dpos[t]);
    }
    if (!V::any(any_d)) continue;
    F this_scale[T], this_min[T], cur_error[T];
    for (int t = 0; t < T; ++t) {
      this_scale[t] = V::div(V::sub(V::mul(sum_w[t], sum_xl[t]), V::mul(sum_x[t], sum_l[t])), D[t]);
      this_min[t] = V::div(V::sub(V::mul(sum_l2[t], sum_x[t]), V::mul(sum_l[t], sum_xl[t])), D[t]);
      const M mpos = V::gt(this_min[t], zero);
      this_min[t] = V::sel(mpos, zero, this_min[t]);
      this_scale[t] = V::sel(mpos, V::div(sum_xl[t], sum_l2[t]), this_scale[t]);
      cur_error[t] = zero;
    }
    for (int i = 0; i < N; ++i) {
      for (int t = 0; t < T; ++t) {
        F diff = V::sub(V::add(V::mul(this_scale[t], La[t][i]), this_min[t]), x[t][i]);
        diff = kMad ? V::abs(diff) : V::mul(diff, diff);
        cur_error[t] = V::add(cur_error[t], V::mul(w[t][i], diff));
      }
    }
    for (int t = 0; t < T; ++t) {
      const M upd = V::mand(dpos[t], V::lt(cur_error[t], best_error[t]));
      if (!V::any(upd)) continue;
      for (int i = 0; i < N; ++i) L[t][i] = V::sel(upd, La[t][i], L[t][i]);
      best_error[t] = V::sel(upd, cur_error[t], best_error[t]);
      scale[t] = V::sel(upd, this_scale[t], scale[t]);
      mn[t] = V::sel(upd, this_min[t], mn[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    V::store(scale_out + t * W, V::sel(flat[t], zero, scale[t]));
    V::store(min_out + t * W, V::neg(V::sel(flat[t], mn_flat[t], mn[t])));
    for (int i = 0; i < N; ++i)
      V::storei(Lt + (t * N + i) * W, V::cvti(V::sel(flat[t], zero, L[t][i])));
  }
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

// make_qx_quants(16, nmax, rmse_type 1) on T*W sub-blocks: scales and L + nmax
// (Lt[(t*N + i)*W + k]), the T vectors side by side as in qkx2_tile.
template <class V, int N, int T>
inline void qx_tile(const float* xt, int nmax, float* scale_out, int32_t* Lt) {
  using F = typename V::F;
  using M = typename V::M;
  constexpr int W = V::W;
  const F zero = V::zero();
  F x[T][N], w[T][N], wx[T][N];
  F max[T], amax[T], best_iscale[T], sumlx[T], suml2[T], scale[T], best[T];
  M tiny[T];
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < N; ++i) {
      x[t][i] = V::load(xt + (t * N + i) * W);
      w[t][i] = V::mul(x[t][i], x[t][i]);
      wx[t][i] = V::mul(w[t][i], x[t][i]);
    }
    signed_absmax_lanes<V, N>(x[t], max[t], amax[t]);
    tiny[t] = V::lt(amax[t], V::set1(1e-15f));
    best_iscale[t] = V::div(V::set1(float(-nmax)), max[t]);
  }
  auto sums = [&](const F* iscale) {
    for (int t = 0; t < T; ++t) sumlx[t] = suml2[t] = zero;
    for (int i = 0; i < N; ++i) {
      for (int t = 0; t < T; ++t) {
        const F l = V::cvt(clamp_nearest<V>(V::mul(iscale[t], x[t][i]), -nmax, nmax - 1));
        sumlx[t] = V::add(sumlx[t], V::mul(wx[t][i], l));
        suml2[t] = V::add(suml2[t], V::mul(V::mul(w[t][i], l), l));
      }
    }
  };
  sums(best_iscale);
  for (int t = 0; t < T; ++t) {
    scale[t] = V::sel(V::ne(suml2[t], zero), V::div(sumlx[t], suml2[t]), zero);
    best[t] = V::mul(scale[t], sumlx[t]);
  }
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const F num = V::set1(-(float(nmax) + 0.1f * float(is)));
    F iscale[T];
    for (int t = 0; t < T; ++t) iscale[t] = V::div(num, max[t]);
    sums(iscale);
    for (int t = 0; t < T; ++t) {
      const M upd = V::mand(V::gt(suml2[t], zero),
                            V::gt(V::mul(sumlx[t], sumlx[t]), V::mul(best[t], suml2[t])));
      if (!V::any(upd)) continue;
      best_iscale[t] = V::sel(upd, iscale[t], best_iscale[t]);
      const F s = V::div(sumlx[t], suml2[t]);
      scale[t] = V::sel(upd, s, scale[t]);
      best[t] = V::sel(upd, V::mul(s, sumlx[t]), best[t]);
    }
  }
  const typename V::I vnmax = V::set1i(nmax);
  for (int t = 0; t < T; ++t) {
    V::store(scale_out + t * W, V::sel(tiny[t], zero, scale[t]));
    for (int i = 0; i < N; ++i) {
      const typename V::I l =
          V::addi(clamp_nearest<V>(V::mul(best_iscale[t], x[t][i]), -nmax, nmax - 1), vnmax);
      V::storei(Lt + (t * N + i) * W, V::seli(tiny[t], V::set1i(0), l));
    }
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

// Drivers: n_sub sub-blocks at x, kTiles*W at a time, results in sub-block order.
template <class V, int N>
inline void load_tiles(const float* x, int64_t n_sub, int64_t s0, float* xt) {
  for (int t = 0; t < kTiles; ++t) load_tile<V, N>(x, n_sub, s0 + t * V::W, xt + t * N * V::W);
}

template <class V, int N, class Out>
inline void store_tiles(int64_t n_sub, int64_t s0, const int32_t* Lt, Out* L) {
  constexpr int W = V::W;
  const int cnt = n_sub - s0 < kTiles * W ? int(n_sub - s0) : kTiles * W;
  for (int c = 0; c < cnt; ++c) {
    const int t = c / W, k = c % W;
    Out* out = L + (s0 + c) * N;
    for (int i = 0; i < N; ++i) out[i] = Out(Lt[(t * N + i) * W + k]);
  }
}

template <class V, int N, bool kMad, bool kRmsWeights>
void qkx2_run(const float* x, int64_t n_sub, int nmax, float rmin, float rdelta, int nstep,
              float* scales, float* mins, uint8_t* L) {
  constexpr int W = V::W;
  alignas(64) float xt[kTiles * N * W];
  alignas(64) int32_t Lt[kTiles * N * W];
  alignas(64) float sc[kTiles * W], mn[kTiles * W];
  for (int64_t s0 = 0; s0 < n_sub; s0 += kTiles * W) {
    load_tiles<V, N>(x, n_sub, s0, xt);
    qkx2_tile<V, N, kMad, kRmsWeights, kTiles>(xt, nmax, rmin, rdelta, nstep, sc, mn, Lt);
    const int cnt = n_sub - s0 < kTiles * W ? int(n_sub - s0) : kTiles * W;
    for (int c = 0; c < cnt; ++c) {
      scales[s0 + c] = sc[c];
      mins[s0 + c] = mn[c];
    }
    store_tiles<V, N>(n_sub, s0, Lt, L);
  }
}

template <class V, bool kQ3>
void q16_run(const float* x, int64_t n_sub, float* scales, int8_t* L) {
  constexpr int W = V::W;
  constexpr int N = 16;
  alignas(64) float xt[kTiles * N * W];
  alignas(64) int32_t Lt[kTiles * N * W];
  alignas(64) float sc[kTiles * W];
  for (int64_t s0 = 0; s0 < n_sub; s0 += kTiles * W) {
    load_tiles<V, N>(x, n_sub, s0, xt);
    if constexpr (kQ3) {
      for (int t = 0; t < kTiles; ++t) q3_tile<V, N>(xt + t * N * W, 4, sc + t * W, Lt + t * N * W);
    } else {
      qx_tile<V, N, kTiles>(xt, 32, sc, Lt);
    }
    const int cnt = n_sub - s0 < kTiles * W ? int(n_sub - s0) : kTiles * W;
    for (int c = 0; c < cnt; ++c) scales[s0 + c] = sc[c];
    store_tiles<V, N>(n_sub, s0, Lt, L);
  }
}

// Re-quantization against the rounded scales (kquant_fit.h), element-wise within a sub-block.
template <class V>
void requant_affine(const float* x, int64_t n_sub, int len, const float* d, const float* dm,
                    int nmax, uint8_t* L) {
  for (int64_t s = 0; s < n_sub; ++s) {
    if (d[s] == 0.0f) continue;
    const typename V::F vd = V::set1(d[s]), vdm = V::set1(dm[s]);
    for (int i = 0; i < len; i += V::W) {
      const typename V::F v = V::load(x + s * len + i);
      V::store_u8(L + s * len + i, clamp_nearest<V>(V::div(V::add(v, vdm), vd), 0, nmax));
    }
  }
}
template <class V>
void requant_sym(const float* x, int64_t n_sub, const float* d, int nmax, int8_t* L) {
  const typename V::I vnmax = V::set1i(nmax);
  for (int64_t s = 0; s < n_sub; ++s) {
    if (d[s] == 0.0f) continue;
    const typename V::F vd = V::set1(d[s]);
    for (int i = 0; i < 16; i += V::W) {
      const typename V::F v = V::load(x + s * 16 + i);
      const typename V::I l = V::addi(clamp_nearest<V>(V::div(v, vd), -nmax, nmax - 1), vnmax);
      V::store_u8(reinterpret_cast<uint8_t*>(L + s * 16 + i), l);
    }
  }
}

// Q8_0 blocks (quant_legacy.cpp): amax as a max over |x| (a NaN never wins, as in the scalar
// std::max chain), then q = round-half-away(clamp(x * id, -128, 127)) with NaN -> -128, which
// equals the scalar's clamp(trunc_to_int(roundf(x * id)), -128, 127) for every input. The
// divisions d = amax / 127 and id = 1 / d (IEEE, exact as in the scalar code) run for W blocks
// side by side.
template <class V>
void q8_0_blocks(const float* x, int64_t nb, float* dout, int8_t* q) {
  using F = typename V::F;
  constexpr int W = V::W;
  const F lo = V::set1(-128.0f), hi = V::set1(127.0f), half = V::set1(0.5f), one = V::set1(1.0f);
  alignas(64) float amax[W], d[W], id[W];
  for (int64_t b0 = 0; b0 < nb; b0 += W) {
    const int cnt = nb - b0 < W ? int(nb - b0) : W;
    for (int k = 0; k < W; ++k) {
      F a = V::zero();
      if (k < cnt)
        for (int i = 0; i < 32; i += W) a = V::max(V::abs(V::load(x + (b0 + k) * 32 + i)), a);
      amax[k] = V::hmax_abs(a);
    }
    const F vd = V::div(V::load(amax), V::set1(127.0f));
    V::store(d, vd);
    V::store(id, V::sel(V::ne(vd, V::zero()), V::div(one, vd), V::zero()));
    for (int k = 0; k < cnt; ++k) {
      dout[b0 + k] = d[k];
      const F vid = V::set1(id[k]);
      for (int i = 0; i < 32; i += W) {
        F v = V::mul(V::load(x + (b0 + k) * 32 + i), vid);
        v = V::min(V::max(v, lo), hi);  // max() returns lo for a NaN lane
        const F t = V::trunc(v);
        const F frac = V::abs(V::sub(v, t));  // exact: |v| <= 128
        const F step = V::copysign(one, v);
        const F r = V::add(t, V::sel(V::ge(frac, half), step, V::zero()));
        V::store_u8(reinterpret_cast<uint8_t*>(q + (b0 + k) * 32 + i), V::cvti(r));
      }
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
