// y[j] = sum_k W[j, k] * x[k] for weights stored as f16 or bf16, without widening W to an f32
// buffer first: one-token generation reads every weight once per token, so the pass that wrote
// and re-read an f32 copy (about a third of the time on a 1B model) is what this removes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace mc::graph::detail {

// False when this CPU lacks AVX2/FMA/F16C or `dt` is not F16/BF16: the caller falls back.
// `w` points at row 0; rows are `row_bytes` apart and hold `k` values each.
bool gemv_half(DType dt, const std::byte* w, uint64_t row_bytes, int64_t rows, int64_t k,
               const float* x, float* y);

}  // namespace mc::graph::detail
