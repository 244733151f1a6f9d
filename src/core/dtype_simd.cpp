// AVX2 + F16C kernels for the hot float conversions (f16/bf16 <-> f32, bf16 <-> f16). Each
// function carries its own target attribute, so the rest of the binary stays baseline x86-64 and
// these are only called after a run-time CPU check (dtype_convert.cpp). Results are bit-identical
// to the scalar functions in dtype.cpp, NaNs included (dtype_test.cpp checks all 2^16 patterns):
//  - f32 -> f16: F16C keeps a NaN's payload, c10 does not, so NaN lanes are replaced by
//    sign | 0x7FC00000 first, which F16C turns into sign | 0x7E00.
//  - f32 -> bf16: round to nearest even by integer add, NaN lanes forced to 0x7FC0 (c10).
//  - f16 -> f32: F16C quiets signalling NaNs exactly as c10's float multiply does; the quiet
//    bit is set on NaN lanes anyway so the result does not depend on that detail.
// Tails shorter than a vector go through an 8-element stack buffer and the same vector code.
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define MC_HAVE_X86_KERNELS 1
#endif

namespace mc::simd {

#ifdef MC_HAVE_X86_KERNELS

#define MC_AVX2_F16C __attribute__((target("avx2,f16c")))

namespace {

constexpr size_t kLanes = 8;

MC_AVX2_F16C inline __m256 load_f16x8(const std::byte* s) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
}

MC_AVX2_F16C inline __m256 load_bf16x8(const std::byte* s) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
}

MC_AVX2_F16C inline __m256 quiet_nans(__m256 x) {
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 quiet = _mm256_castsi256_ps(_mm256_set1_epi32(0x00400000));
  return _mm256_or_ps(x, _mm256_and_ps(nan, quiet));
}

MC_AVX2_F16C inline void store_f16x8(std::byte* d, __m256 x) {
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 sign = _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u))));
  const __m256 canon = _mm256_or_ps(sign, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000)));
  x = _mm256_blendv_ps(x, canon, nan);
  const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d), h);
}

MC_AVX2_F16C inline void store_bf16x8(std::byte* d, __m256 xf) {
  const __m256i x = _mm256_castps_si256(xf);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(x, bias), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(xf, xf, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), nan);
  // Every lane is <= 0xFFFF, so the unsigned-saturating pack is a plain narrowing.
  const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d), packed);
}

MC_AVX2_F16C inline __m256 load_f32x8(const std::byte* s) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(s));
}

MC_AVX2_F16C inline void store_f32x8(std::byte* d, __m256 x) {
  _mm256_storeu_ps(reinterpret_cast<float*>(d), x);
}

// One loop shape for all six kernels: 8 elements per step, the tail padded through a buffer.
#define MC_DEFINE_KERNEL(name, src_size, dst_size, load, store)                      \
  MC_AVX2_F16C void name##_impl(const std::byte* s, std::byte* d, size_t n) {        \
    size_t i = 0;                                                                     \
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {                                    \
      const __m256 a = load(s + i * (src_size));                                      \
      const __m256 b = load(s + (i + kLanes) * (src_size));                           \
      store(d + i * (dst_size), a);                                                   \
      store(d + (i + kLanes) * (dst_size), b);                                        \
    }                                                                                 \
    for (; i + kLanes <= n; i += kLanes) store(d + i * (dst_size), load(s + i * (src_size))); \
    if (i < n) {                                                                      \
      alignas(32) std::byte in[kLanes * (src_size)] = {};                             \
      alignas(32) std::byte out[kLanes * (dst_size)];                                 \
      std::memcpy(in, s + i * (src_size), (n - i) * (src_size));                      \
      store(out, load(in));                                                           \
      std::memcpy(d + i * (dst_size), out, (n - i) * (dst_size));                     \
    }                                                                                 \
  }

#define MC_LOAD_F16_QUIET(p) quiet_nans(load_f16x8(p))
MC_DEFINE_KERNEL(f16_to_f32, 2, 4, MC_LOAD_F16_QUIET, store_f32x8)
MC_DEFINE_KERNEL(bf16_to_f32, 2, 4, load_bf16x8, store_f32x8)
MC_DEFINE_KERNEL(f32_to_f16, 4, 2, load_f32x8, store_f16x8)
MC_DEFINE_KERNEL(f32_to_bf16, 4, 2, load_f32x8, store_bf16x8)
MC_DEFINE_KERNEL(bf16_to_f16, 2, 2, load_bf16x8, store_f16x8)
MC_DEFINE_KERNEL(f16_to_bf16, 2, 2, load_f16x8, store_bf16x8)
#undef MC_LOAD_F16_QUIET
#undef MC_DEFINE_KERNEL

}  // namespace

bool supported() {
  __builtin_cpu_init();
  // F16C through CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports has no "f16c".
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
  return __builtin_cpu_supports("avx2") && f16c;
}

void f16_to_f32(const std::byte* s, std::byte* d, size_t n) { f16_to_f32_impl(s, d, n); }
void bf16_to_f32(const std::byte* s, std::byte* d, size_t n) { bf16_to_f32_impl(s, d, n); }
void f32_to_f16(const std::byte* s, std::byte* d, size_t n) { f32_to_f16_impl(s, d, n); }
void f32_to_bf16(const std::byte* s, std::byte* d, size_t n) { f32_to_bf16_impl(s, d, n); }
void bf16_to_f16(const std::byte* s, std::byte* d, size_t n) { bf16_to_f16_impl(s, d, n); }
void f16_to_bf16(const std::byte* s, std::byte* d, size_t n) { f16_to_bf16_impl(s, d, n); }

#else  // not x86: the scalar path is the only one; these are never called.

bool supported() { return false; }
void f16_to_f32(const std::byte*, std::byte*, size_t) {}
void bf16_to_f32(const std::byte*, std::byte*, size_t) {}
void f32_to_f16(const std::byte*, std::byte*, size_t) {}
void f32_to_bf16(const std::byte*, std::byte*, size_t) {}
void bf16_to_f16(const std::byte*, std::byte*, size_t) {}
void f16_to_bf16(const std::byte*, std::byte*, size_t) {}

#endif

}  // namespace mc::simd
