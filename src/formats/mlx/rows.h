// Internal to the MLX engine: lazy tensors produced row by row (quantized outputs on write,
// dequantized weights on read), so a conversion streams and never holds a whole tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "core/tensor.h"

namespace mc::mlx {

// Fills rows [r0, r0 + n) of a tensor into dst (n * row_bytes bytes).
using RowFill = std::function<Status(int64_t r0, int64_t n, std::byte* dst)>;

// A TensorData over `rows` rows of `row_bytes` each; any byte range is served by producing the
// rows that cover it (writers ask for whole rows: chunk_align is the row size).
TensorDataPtr make_rows_data(int64_t rows, uint64_t row_bytes, RowFill fill);

// Reads rows of a float tensor (shape [..., cols]) as fp32. With `via`, the values are first
// rounded to that dtype (mlx-lm casts the model to its dtype before quantizing). Source pages
// are released after use so RSS stays flat.
class RowReader {
 public:
  RowReader(const TensorEntry& e, std::optional<DType> via);
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

// Rows of at most this many elements are processed per batch inside a fill.
inline constexpr int64_t kBatchElems = int64_t(1) << 18;

}  // namespace mc::mlx
