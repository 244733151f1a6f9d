#include "formats/mlx/rows.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "quant/ggml.h"

namespace mc::mlx {

TensorDataPtr make_rows_data(int64_t rows, uint64_t row_bytes, RowFill fill) {
  const uint64_t total = uint64_t(rows) * row_bytes;
  auto fn = [fill = std::move(fill), rows, row_bytes, total](uint64_t offset, std::span<std::byte> dst) -> Status {
    if (dst.empty()) return {};
    if (offset > total || dst.size() > total - offset)
      return make_error(ErrorCode::Internal, "read [{}, {}) past the tensor's {} bytes", offset,
                        offset + dst.size(), total);
    const int64_t r0 = int64_t(offset / row_bytes);
    const int64_t r1 = std::min<int64_t>(rows, int64_t((offset + dst.size() + row_bytes - 1) / row_bytes));
    if (offset % row_bytes == 0 && dst.size() == uint64_t(r1 - r0) * row_bytes)
      return fill(r0, r1 - r0, dst.data());
    // An unaligned range: make the covering rows, then copy the slice asked for.
    std::vector<std::byte> tmp(uint64_t(r1 - r0) * row_bytes);
    MC_CHECK(fill(r0, r1 - r0, tmp.data()));
    std::memcpy(dst.data(), tmp.data() + (offset - uint64_t(r0) * row_bytes), dst.size());
    return {};
  };
  return make_fn_data(std::move(fn), row_bytes);
}

RowReader::RowReader(const TensorEntry& e, std::optional<DType> via)
    : data_(e.data), name_(e.name), dtype_(e.dtype), via_(via) {
  cols_ = e.shape.empty() ? 1 : e.shape.back();
  const uint64_t numel = e.numel();
  rows_ = cols_ > 0 ? int64_t(numel / uint64_t(cols_)) : 0;
  if (via_ && (*via_ == dtype_ || *via_ == DType::F32)) via_.reset();
}

Status RowReader::read(int64_t r0, int64_t n, float* dst) const {
  if (!data_) return make_error(ErrorCode::Internal, "tensor '{}' has no data source", name_);
  const auto& info = dtype_info(dtype_);
  const uint64_t elems = uint64_t(n) * uint64_t(cols_);
  const uint64_t row_bytes = uint64_t(cols_) / info.block_elems * info.block_bytes;
  const uint64_t offset = uint64_t(r0) * row_bytes;
  const uint64_t nbytes = uint64_t(n) * row_bytes;
  // Straight from the mapping when there is one; else through a buffer.
  std::vector<std::byte> raw;
  const std::byte* src;
  if (auto v = data_->view(); v && v->size() >= offset + nbytes) {
    src = v->data() + offset;
  } else {
    raw.resize(nbytes);
    MC_CHECK(data_->read(offset, raw));
    src = raw.data();
  }
  if (is_quantized(dtype_)) {
    MC_CHECK(quant::dequantize(dtype_, {src, nbytes}, dst, int64_t(elems)));
  } else if (dtype_ == DType::F32) {
    std::memcpy(dst, src, elems * sizeof(float));
  } else {
    to_f32(dtype_, src, dst, elems);
  }
  data_->release(offset, nbytes);
  if (via_) {
    std::vector<std::byte> narrow(elems * dtype_size(*via_));
    from_f32(dst, *via_, narrow.data(), elems);
    to_f32(*via_, narrow.data(), dst, elems);
  }
  return {};
}

}  // namespace mc::mlx
