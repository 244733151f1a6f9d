// Lazy row-wise tensor transforms used by the HF <-> GGUF mappings: every output is a TensorData
// that computes the rows a writer asks for (q/k row permutation, transposition, dtype change,
// dequantization, quantization), so no more than a chunk of rows is ever in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace mc::gguf {

// Rows [r0, r0 + n) of a logical [rows, cols] matrix, as raw bytes of `dtype` (cols must be a
// multiple of dtype's block size when quantized). read() must be thread-safe.
struct RowSource {
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::function<Status(int64_t r0, int64_t n, std::byte* dst)> read;
  // Rows [r0, r0+n) will not be read again (empty: nothing to drop, e.g. a permuted view).
  std::function<void(int64_t r0, int64_t n)> release;

  uint64_t row_bytes() const;
};

// The tensor viewed as [rows, numel / rows] (rows = 0: its first dim, or 1 for 0-d/1-D tensors).
Result<RowSource> row_view(const TensorEntry& e, int64_t rows = 0);
// Output row r is source row perm[r].
RowSource gather_rows(RowSource src, std::vector<int64_t> perm);
// A 2-D [a, b] tensor transposed to [b, a]; plain dtypes keep their dtype, quantized sources are
// dequantized to F32 first.
Result<RowSource> transposed(const TensorEntry& e);
// The rows converted to `out` (plain or ggml block type): raw copies when the dtype already
// matches, otherwise widened to f32 (dequantized if needed) and converted/quantized.
Result<TensorDataPtr> rows_as(RowSource src, DType out);

// llama-style RoPE row orders (formats.md §2.9), for `rows` rows split in `heads` heads.
// hf_to_gguf_perm: GGUF row 2i+j of a head is HF row j*hd/2+i; gguf_to_hf_perm is its inverse.
Result<std::vector<int64_t>> hf_to_gguf_perm(int64_t rows, int64_t heads);
Result<std::vector<int64_t>> gguf_to_hf_perm(int64_t rows, int64_t heads);

}  // namespace mc::gguf
