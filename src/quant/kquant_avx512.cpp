// The k-quant fits (kquant_fit.h) on AVX-512F: 16 sub-blocks per vector (kquant_lanes.h).
// Compiled for AVX-512F through a target pragma, so only the functions below use it;
// quantize_rows calls them only when the CPU and the OS support AVX-512F (isa.cpp). The area is
// built with -ffp-contract=off (AVX-512F has fused multiply-add): mul_add_probe_avx512 lets a
// test check that no multiply-add here was fused.
#include "quant/kquant_fit.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MC_KQUANT_AVX512 1
// GCC 12's AVX-512 intrinsics start from self-initialised "undefined" vectors, which its
// -Wmaybe-uninitialized reports once they are inlined here (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif

namespace mc::quant::detail {
namespace {

// Vector traits for kquant_lanes.h: masks are AVX-512 mask registers.
struct V {
  static constexpr int W = 16;
  using F = __m512;
  using I = __m512i;
  using M = __mmask16;
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static void storei(int32_t* p, I v) { _mm512_storeu_si512(p, v); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static I set1i(int v) { return _mm512_set1_epi32(v); }
  static F zero() { return _mm512_setzero_ps(); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F sqrt(F a) { return _mm512_sqrt_ps(a); }
  static F abs(F a) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7FFFFFFF)));
  }
  static F neg(F a) {
    return _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(int(0x80000000u))));
  }
  static I addi(I a, I b) { return _mm512_add_epi32(a, b); }
  static M lt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M eq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static M ne(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }  // C's != (true on NaN)
  static M nei(I a, I b) { return _mm512_cmpneq_epi32_mask(a, b); }
  static M mand(M a, M b) { return M(a & b); }
  static M mor(M a, M b) { return M(a | b); }
  static M mnone() { return 0; }
  static bool any(M m) { return m != 0; }
  static F sel(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
  static I seli(M m, I a, I b) { return _mm512_mask_blend_epi32(m, b, a); }
  // ggml's nearest_int: the FPU rounds f + 1.5*2^23 to nearest even, the low mantissa bits are
  // the result.
  static I nearest_int(F f) {
    const I bits = _mm512_castps_si512(_mm512_add_ps(f, _mm512_set1_ps(12582912.0f)));
    return _mm512_sub_epi32(_mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)),
                            _mm512_set1_epi32(0x00400000));
  }
  static I clampi(I v, int lo, int hi) {
    return _mm512_max_epi32(_mm512_set1_epi32(lo), _mm512_min_epi32(_mm512_set1_epi32(hi), v));
  }
  static F cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }  // a > b ? a : b (b when a is NaN)
  static F min(F a, F b) { return _mm512_min_ps(a, b); }  // a < b ? a : b
  static F trunc(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F copysign(F mag, F sign) {
    const I m = _mm512_set1_epi32(int(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(m, _mm512_castps_si512(mag)),
                                               _mm512_and_si512(m, _mm512_castps_si512(sign))));
  }
  static M ge(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  // The largest lane of a vector of magnitudes (no NaN, no -0: any order gives the same value).
  static float hmax_abs(F a) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(a),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  static I cvti(F v) { return _mm512_cvttps_epi32(v); }  // exact small integers only
  // The 16 lanes as bytes (values in [-128, 127]).
  static void store_u8(uint8_t* p, I v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
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

#ifdef MC_KQUANT_AVX512
const FitKernels* fit_kernels_avx512() {
  static const FitKernels k{"avx512", qkx2, qx6, q3, req_affine, req_sym, q8};
  return &k;
}
MulAddProbe mul_add_probe_avx512() { return probe; }
#else
const FitKernels* fit_kernels_avx512() { return nullptr; }
MulAddProbe mul_add_probe_avx512() { return nullptr; }
#endif

}  // namespace mc::quant::detail
