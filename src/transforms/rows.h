// The one lazy row layer: tensors viewed as [rows, cols] and transformed row by row (view,
// gather/permute, transpose, convert, quantize, dequantize, rows made by a function), so that a
// writer pulling any range of an output tensor makes only the rows behind it, a batch at a time.
// Every engine that reshapes or re-encodes tensors on the way (GGUF, MLX, the q/k permutation,
// llama2.c, fake weights) builds on it; nothing here holds more than a batch of rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mc::transforms {

// Elements a lazy transform handles per step (about 1 MiB of f32): bounds the scratch memory of
// one read whatever range the writer asks for.
inline constexpr int64_t kBatchElems = int64_t(1) << 18;

// Rows [r0, r0 + n) of a logical [rows, cols] matrix, as raw bytes of `dtype` (cols must be a
// multiple of dtype's block size when quantized). read() must be thread-safe.
struct RowSource {
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::function<Status(int64_t r0, int64_t n, std::byte* dst)> read;
  // Rows [r0, r0+n) will not be read again (empty: nothing to drop, e.g. a permuted view).
  std::function<void(int64_t r0, int64_t n)> release;
  // All rows in place when they lie contiguous in memory (an input mapping): read() without the
  // copy. Null when there is no such memory (transformed or permuted rows).
  const std::byte* base = nullptr;

  uint64_t row_bytes() const;
};

// The tensor viewed as [rows, numel / rows] (rows = 0: its first dim, or 1 for 0-d/1-D tensors).
Result<RowSource> row_view(const TensorEntry& e, int64_t rows = 0);
// Output row r is source row perm[r].
RowSource gather_rows(RowSource src, std::vector<int64_t> perm);
// A 2-D [a, b] tensor transposed to [b, a]; plain dtypes keep their dtype, quantized sources are
// dequantized to F32 first.
Result<RowSource> transposed(const TensorEntry& e);
// The rows widened to f32 (dequantized if needed) and passed through `f` (n values, in place).
RowSource map_f32(RowSource src, std::function<void(float* values, int64_t n)> f);
// The rows converted to `out` (plain or ggml block type): raw copies when the dtype already
// matches, otherwise widened to f32 (dequantized if needed) and converted/quantized.
Result<TensorDataPtr> rows_as(RowSource src, DType out);

// Q/K rows between HF's rotate-half RoPE layout and Meta's adjacent-pair layout (GGUF, llama2.c;
// formats.md §2.9, §12), `rows` rows in `heads` heads of an even size.
enum class QkDirection {
  HfToPairs,  // convert_hf_to_gguf's permute: new[h·hd + 2i + j] = old[h·hd + j·hd/2 + i]
  PairsToHf,  // its inverse (llama2.c / GGUF -> HF)
};
Result<std::vector<int64_t>> qk_row_perm(int64_t rows, int64_t heads, QkDirection dir);

// ---- rows made by a function --------------------------------------------------------------------

// Fills rows [r0, r0 + n) of a tensor into dst (n * row_bytes bytes).
using RowFill = std::function<Status(int64_t r0, int64_t n, std::byte* dst)>;
// A TensorData over `rows` rows of `row_bytes` each; any byte range is served by producing the
// rows that cover it (writers ask for whole rows: chunk_align is the row size). `release`, when
// given, receives the rows a writer is done with.
TensorDataPtr make_rows_data(int64_t rows, uint64_t row_bytes, RowFill fill,
                             std::function<void(int64_t r0, int64_t n)> release = {});

// Rows of a tensor (shape [..., cols]) read as f32: straight from the mapping when there is one,
// dequantized when block-quantized; with `via`, values are first rounded to that dtype (mlx-lm
// casts a model to its dtype before quantizing). Source pages are released after use.
class F32Rows {
 public:
  F32Rows(const TensorEntry& e, std::optional<DType> via);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Reads rows [r0, r0 + n) into dst (n * cols floats).
  Status read(int64_t r0, int64_t n, float* dst) const;

 private:
  TensorDataPtr data_;
  std::string name_;
  DType dtype_;
  std::optional<DType> via_;
  int64_t rows_ = 0, cols_ = 0;
};

// ---- element-wise -------------------------------------------------------------------------------

// Produces `count` elements starting at element `first` into `out` (count * elem_size bytes).
using ProduceFn = std::function<Status(uint64_t first, uint64_t count, std::byte* out)>;
// Fills bytes [offset, offset + dst.size()) of a tensor of `total_elems` elements of `elem_size`
// bytes by calling `produce` on element ranges of at most kBatchElems. Ranges that start or end
// inside an element are served through a small scratch buffer.
Status read_elementwise(uint64_t offset, std::span<std::byte> dst, size_t elem_size, uint64_t total_elems,
                        const ProduceFn& produce);

}  // namespace mc::transforms
