// GPTQ (Frantar et al.; AutoGPTQ's `GPTQ.add_batch` / `fasterquant`) for one Linear layer, on
// the CPU with OpenBLAS/LAPACK, and the round-to-nearest quantizer it is built on.
//
// Per Linear with weight W [out, in] and calibration inputs x (one row per token):
//   H = (2/n) sum x x^T (n = sequences seen); dead inputs (H[i,i] == 0) get H[i,i] = 1, W[:, i] = 0;
//   act-order (desc_act): columns in order of decreasing diag(H), groups over that order;
//   H += damp_percent * mean(diag H) * I, U = upper Cholesky factor of H^-1 (retried with more
//   damping while a factorisation fails);
//   blocks of 128 columns: each column is quantized with its group's (scale, zero), its error
//   divided by U[i,i] is spread over the block's later columns, and after the block over all
//   later columns (one GEMM).
// Group parameters (Quantizer.find_params, per output row): xmin = min(w, 0), xmax = max(w, 0);
// sym: xmax = max(|xmin|, xmax), xmin = -xmax when xmin < 0; both 0 -> [-1, 1];
// scale = (xmax - xmin) / maxq, zero = (maxq + 1) / 2 (sym) or round(-xmin / scale);
// q = clamp(round(w / scale) + zero, 0, maxq), rounding half to even.
// Scales are rounded to fp16 when they are made, so the codes, the error feedback and the stored
// checkpoint all use the scale a loader will read.
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.h"

namespace mc::quant {

struct GptqParams {
  int bits = 4;                // 2, 3, 4 or 8
  int64_t group_size = 128;    // -1: one group over all inputs
  bool sym = true;
  bool desc_act = false;       // act-order
  bool static_groups = false;  // with desc_act: groups fixed on the original column order
  double damp_percent = 0.01;
  int64_t block_size = 128;
};

// A quantized Linear: W[o, i] ~= scales[g_idx[i], o] * (q[o, i] - zeros[g_idx[i], o]).
struct GroupQuant {
  int64_t out = 0, in = 0, groups = 0;
  int bits = 4;
  std::vector<uint8_t> q;       // [out][in] codes
  std::vector<float> scales;    // [groups][out], fp16-representable values
  std::vector<uint8_t> zeros;   // [groups][out], the true zero points (0 .. 2^bits - 1)
  std::vector<int32_t> g_idx;   // [in] group of each input column
  double damp_percent = 0;      // the damping that succeeded (GPTQ)

  // The dequantized weight [out][in].
  std::vector<float> dequantize() const;
};

// Sum of x x^T over calibration tokens, for one Linear's input width. Rows are buffered and
// added with SYRK in batches.
class Hessian {
 public:
  explicit Hessian(int64_t in);
  // Adds one calibration sequence: x is [tokens][in].
  void add_sequence(const float* x, int64_t tokens);
  int64_t in() const { return in_; }
  int64_t sequences() const { return n_seq_; }
  // (2 / sequences) * sum x x^T as a full symmetric [in][in] matrix in double.
  std::vector<double> matrix();

 private:
  void flush();
  int64_t in_ = 0, n_seq_ = 0, buffered_ = 0;
  std::vector<float> sum_;  // upper triangle (row-major) of sum x x^T
  std::vector<float> buf_;  // pending rows
};

// What GPTQ derives from the Hessian alone, shared by the Linears that read the same input:
// the dead inputs, the act-order permutation and the upper Cholesky factor of the damped,
// permuted inverse Hessian.
struct GptqFactor {
  int64_t in = 0;
  std::vector<uint8_t> dead;  // [in] inputs that never fired (H[i,i] == 0)
  std::vector<int64_t> perm;  // [in] processing order (identity without act-order)
  std::vector<float> u;       // [in][in], upper triangular
  double damp_percent = 0;    // the damping that succeeded
};
Result<GptqFactor> gptq_factor(Hessian& h, const GptqParams& p, int threads = 1);

// GPTQ on W ([out][in] f32) with a factor of its input's Hessian. `threads`: BLAS threads.
Result<GroupQuant> gptq_quantize(std::vector<float> w, int64_t out, int64_t in, const GptqFactor& f,
                                 const GptqParams& p, int threads = 1);
// Both steps at once.
Result<GroupQuant> gptq_quantize(std::vector<float> w, int64_t out, int64_t in, Hessian& h,
                                 const GptqParams& p, int threads = 1);

// Round-to-nearest with GPTQ's quantizer (the baseline GPTQ is measured against), groups in
// column order.
GroupQuant rtn_quantize(const float* w, int64_t out, int64_t in, const GptqParams& p);

// Rounds to the nearest fp16 value (as float), never to zero for a positive input.
float fp16_scale(float s);

}  // namespace mc::quant
