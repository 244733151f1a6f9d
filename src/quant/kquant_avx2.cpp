// The k-quant fits (kquant_fit.h) on AVX2: 8 sub-blocks per vector (kquant_lanes.h). Compiled
// for AVX2 through a target pragma, so only the functions below use it; quantize_rows calls
// them only when the CPU has AVX2 (isa.cpp). The area is built with -ffp-contract=off:
// mul_add_probe_avx2 lets a test check that no multiply-add here was fused.
#include "quant/kquant_fit.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MC_KQUANT_AVX2 1
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2")
#endif

namespace mc::quant::detail {
namespace {

// Vector traits for kquant_lanes.h: masks are all-ones / all-zeros float lanes.
struct V {
  static constexpr int W = 8;
  using F = __m256;
  using I = __m256i;
  using M = __m256;
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static void storei(int32_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static I set1i(int v) { return _mm256_set1_epi32(v); }
  static F zero() { return _mm256_setzero_ps(); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F sqrt(F a) { return _mm256_sqrt_ps(a); }
  static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static F neg(F a) { return _mm256_xor_ps(_mm256_set1_ps(-0.0f), a); }
  static I addi(I a, I b) { return _mm256_add_epi32(a, b); }
  static M lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M eq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static M ne(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }  // C's != (true on NaN)
  static M nei(I a, I b) {
    return _mm256_castsi256_ps(
        _mm256_xor_si256(_mm256_cmpeq_epi32(a, b), _mm256_set1_epi32(-1)));
  }
  static M mand(M a, M b) { return _mm256_and_ps(a, b); }
  static M mor(M a, M b) { return _mm256_or_ps(a, b); }
  static M mnone() { return _mm256_setzero_ps(); }
  static bool any(M m) { return _mm256_movemask_ps(m) != 0; }
  static F sel(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
  static I seli(M m, I a, I b) {
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
  }
  // ggml's nearest_int: the FPU rounds f + 1.5*2^23 to nearest even, the low mantissa bits are
  // the result.
  static I nearest_int(F f) {
    const I bits = _mm256_castps_si256(_mm256_add_ps(f, _mm256_set1_ps(12582912.0f)));
    return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)),
                            _mm256_set1_epi32(0x00400000));
  }
  static I clampi(I v, int lo, int hi) {
    return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), v));
  }
  static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }  // a > b ? a : b (b when a is NaN)
  static F min(F a, F b) { return _mm256_min_ps(a, b); }  // a < b ? a : b
  static F trunc(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F copysign(F mag, F sign) {
    const F m = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(m, mag), _mm256_and_ps(m, sign));
  }
  static M ge(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  // The largest lane of a vector of magnitudes (no NaN, no -0: any order gives the same value).
  static float hmax_abs(F a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  static I cvti(F v) { return _mm256_cvttps_epi32(v); }  // exact small integers only
  // The 8 lanes as bytes (values in [-128, 127]).
  static void store_u8(uint8_t* p, I v) {
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi16(w, w));
  }
};

#include "quant/kquant_lanes.h"

void qkx2(Qkx2Kind kind, const float* x, int64_t n_sub, float* scales, float* mins, uint8_t* L) {
  fit_qkx2<V>(kind, x, n_sub, scales, mins, L);
}
void qx6(const float* x, int64_t n_sub, float* scales, int8_t* L) { fit_qx6<V>(x, n_sub, scales, L); }
void q3(const float* x, int64_t n_sub, float* scales, int8_t* L) { fit_q3<V>(x, n_sub, scales, L); }
void req_affine(const float* x, int64_t n_sub, int len, const float* d, const float* dm, int nmax,
                uint8_t* L) {
  requant_affine<V>(x, n_sub, len, d, dm, nmax, L);
}
void req_sym(const float* x, int64_t n_sub, const float* d, int nmax, int8_t* L) {
  requant_sym<V>(x, n_sub, d, nmax, L);
}
void q8(const float* x, int64_t nb, float* d, int8_t* q) { q8_0_blocks<V>(x, nb, d, q); }
float probe(float a, float b, float c) { return mul_add_probe<V>(a, b, c); }

}  // namespace
}  // namespace mc::quant::detail

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

namespace mc::quant::detail {

#ifdef MC_KQUANT_AVX2
const FitKernels* fit_kernels_avx2() {
  static const FitKernels k{"avx2", qkx2, qx6, q3, req_affine, req_sym, q8};
  return &k;
}
MulAddProbe mul_add_probe_avx2() { return probe; }
#else
const FitKernels* fit_kernels_avx2() { return nullptr; }
MulAddProbe mul_add_probe_avx2() { return nullptr; }
#endif

}  // namespace mc::quant::detail
