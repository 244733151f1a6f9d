// Weight access for the interpreter: rows or tiles of a stored tensor as f32, converted on the
// fly from its dtype (plain floats via mc::to_f32, ggml blocks via quant::dequantize). Nothing
// here keeps a converted copy; callers pass their own scratch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace mc::graph::detail {

struct Weight {
  std::string name;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;        // [numel / last dim, last dim]
  uint64_t row_bytes = 0;            // stored bytes of one row
  TensorDataPtr data;
  const std::byte* mem = nullptr;    // the bytes in memory when the source offers a view
};

// Checks the dtype is convertible (plain float or ggml block type whose blocks tile a row).
Result<Weight> make_weight(const TensorEntry& e);

// f32 pointer to rows [r0, ...) when the tensor is f32, in memory and float-aligned; else null.
const float* direct_f32(const Weight& w, int64_t r0);

// Rows [r0, r1) as f32 into dst ((r1 - r0) * cols floats).
Status read_rows(const Weight& w, int64_t r0, int64_t r1, float* dst);

// Columns [c0, c1) of rows [r0, r1) into dst ((r1 - r0) * (c1 - c0) floats, row-major). Plain
// dtypes only (a ggml block spans several columns).
Status read_tile(const Weight& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst);

// The whole (small) tensor as f32: norms and biases.
Result<std::vector<float>> read_small(const Weight& w);

}  // namespace mc::graph::detail
