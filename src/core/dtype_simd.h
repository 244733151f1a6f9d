// The vector kernel sets behind convert() (dtype_simd.cpp); dtype_convert.cpp picks one.
#pragma once

#include <cstddef>

namespace mc::simd {

using Kernel = void (*)(const std::byte* s, std::byte* d, size_t n);

// One set's six hot conversions.
struct Kernels {
  Kernel f16_to_f32, bf16_to_f32, f32_to_f16, f32_to_bf16, bf16_to_f16, f16_to_bf16;
};

// The widest set this CPU runs: 0 none (scalar only), 1 AVX2+F16C, 2 AVX-512F.
int widest();
const Kernels& avx2();
const Kernels& avx512();

}  // namespace mc::simd
