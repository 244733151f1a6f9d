// The expensive parts of the k-quants: the per-sub-block fits (make_qkx2_quants for Q2_K/Q4_K/
// Q5_K, make_qx_quants for Q6_K, make_q3_quants for Q3_K) and the re-quantization against the
// rounded scales. Each instruction set gets one implementation of these; quant_kquants.cpp does
// the rest (the per-super-block scales, the bit packing) once, in scalar code. Q8_0's block
// kernel lives here too (same dispatch).
//
// Every implementation gives the same bytes: the SIMD ones run one sub-block per vector lane and
// do, in each lane, exactly the float operations of the scalar code in the same order (no
// reassociation, no fused multiply-add: the area is built with -ffp-contract=off), so only the
// number of sub-blocks handled at once differs. Tests run every implementation the CPU has on
// the same inputs and compare bytes.
#pragma once

#include <cstdint>

namespace mc::quant::detail {

// The make_qkx2_quants configurations of the three types (ggml's constants): sub-block length,
// nmax, rmin, rdelta, nstep, MAD or squared error, and the weights (|x| for Q2_K,
// sqrt(mean x^2) + |x| for Q4_K/Q5_K).
enum class Qkx2Kind : uint8_t { Q2K, Q4K, Q5K };

struct FitKernels {
  const char* name;
  // n_sub consecutive sub-blocks (16 values for Q2K, 32 for Q4K/Q5K) at x: scales[s], mins[s]
  // (the_min, >= 0) and L[s * len + i] in [0, nmax].
  void (*qkx2)(Qkx2Kind kind, const float* x, int64_t n_sub, float* scales, float* mins,
               uint8_t* L);
  // Q6_K: make_qx_quants(16, 32, rmse_type 1) on n_sub sub-blocks of 16: scales, L in [0, 64).
  void (*qx6)(const float* x, int64_t n_sub, float* scales, int8_t* L);
  // Q3_K: make_q3_quants(16, 4, do_rmse) on n_sub sub-blocks of 16: scales, L in [0, 8).
  void (*q3)(const float* x, int64_t n_sub, float* scales, int8_t* L);
  // The re-quantization against the rounded scales (element-wise, so any width gives the same
  // bytes), for each sub-block s with d[s] != 0 (the others keep their L):
  // Q2_K/Q4_K/Q5_K: L = clamp(nearest_int((x + dm[s]) / d[s]), 0, nmax), `len` values each;
  void (*requant_affine)(const float* x, int64_t n_sub, int len, const float* d, const float* dm,
                         int nmax, uint8_t* L);
  // Q3_K/Q6_K: L = clamp(nearest_int(x / d[s]), -nmax, nmax - 1) + nmax, 16 values each.
  void (*requant_sym)(const float* x, int64_t n_sub, const float* d, int nmax, int8_t* L);
  // Q8_0 (quant_legacy.cpp) on nb blocks of 32: d[b] = max|x| / 127 and the 32 quants
  // round-half-away(x / d) in [-128, 127] at q + 32*b (max and element-wise: order-free).
  void (*q8_0)(const float* x, int64_t nb, float* d, int8_t* q);
};

// The scalar Q8_0 blocks (quant_legacy.cpp), the reference for FitKernels::q8_0.
void q8_0_blocks_scalar(const float* x, int64_t nb, float* d, int8_t* q);
// The scalar fits (the reference the others are tested against).
const FitKernels& fit_kernels_scalar();
// nullptr when not compiled in (other compilers or architectures); callers check the CPU.
const FitKernels* fit_kernels_avx2();
const FitKernels* fit_kernels_avx512();
// The fits quantize_rows uses now (kernel_isa() in ggml.h).
const FitKernels& fit_kernels();

// Test hooks: a*b+c evaluated on vectors inside each SIMD translation unit, to prove that unit
// was compiled without contraction into a fused multiply-add (nullptr when not compiled in).
using MulAddProbe = float (*)(float a, float b, float c);
MulAddProbe mul_add_probe_avx2();
MulAddProbe mul_add_probe_avx512();

}  // namespace mc::quant::detail
