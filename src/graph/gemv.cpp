#include "graph/gemv.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define MC_GEMV_X86 1
#endif

namespace mc::graph::detail {

#ifdef MC_GEMV_X86
namespace {

#define MC_TARGET __attribute__((target("avx2,fma,f16c")))

MC_TARGET inline __m256 load8(DType dt, const std::byte* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (dt == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // bf16
}

MC_TARGET inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Four independent accumulators over 32 values per step; the tail (k % 8) goes through a
// zero-padded 8-value buffer so every value takes the same vector path.
MC_TARGET float dot_row(DType dt, const std::byte* w, const float* x, int64_t k) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    a0 = _mm256_fmadd_ps(load8(dt, w + 2 * i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(load8(dt, w + 2 * (i + 8)), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(load8(dt, w + 2 * (i + 16)), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(load8(dt, w + 2 * (i + 24)), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= k; i += 8) a0 = _mm256_fmadd_ps(load8(dt, w + 2 * i), _mm256_loadu_ps(x + i), a0);
  if (i < k) {
    alignas(32) std::byte wb[16] = {};
    alignas(32) float xb[8] = {};
    std::memcpy(wb, w + 2 * i, size_t(k - i) * 2);
    std::memcpy(xb, x + i, size_t(k - i) * sizeof(float));
    a1 = _mm256_fmadd_ps(load8(dt, wb), _mm256_load_ps(xb), a1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

bool cpu_ok() {
  // F16C through CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports has no "f16c".
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  }();
  return ok;
}

}  // namespace
#endif

bool gemv_half(DType dt, const std::byte* w, uint64_t row_bytes, int64_t rows, int64_t k,
               const float* x, float* y) {
#ifdef MC_GEMV_X86
  if ((dt != DType::F16 && dt != DType::BF16) || !cpu_ok()) return false;
  for (int64_t j = 0; j < rows; ++j) y[j] = dot_row(dt, w + uint64_t(j) * row_bytes, x, k);
  return true;
#else
  (void)dt, (void)w, (void)row_bytes, (void)rows, (void)k, (void)x, (void)y;
  return false;
#endif
}

}  // namespace mc::graph::detail
