// Per-tensor lazy wrappers: dtype cast, f32 scaling, and the q/k row permutation
// (formats.md §2.9 for HF <-> GGUF, §12 for llama2.c -> HF). Each wrapper keeps a pointer to
// its source TensorData and converts only the bytes a read() asks for.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "transforms/lazy.h"
#include "transforms/transforms.h"

namespace mc::transforms {

namespace detail {

Status read_elementwise(uint64_t offset, std::span<std::byte> dst, size_t elem_size,
                        uint64_t total_elems, const ProduceFn& produce) {
  if (dst.empty()) return {};
  const uint64_t total_bytes = total_elems * elem_size;
  if (offset > total_bytes || dst.size() > total_bytes - offset)
    return make_error(ErrorCode::Internal, "read [{}, {}) past the {} bytes of a tensor", offset,
                      offset + dst.size(), total_bytes);
  const uint64_t end = offset + dst.size();
  const uint64_t first = offset / elem_size;
  const uint64_t last = (end + elem_size - 1) / elem_size;  // exclusive
  std::vector<std::byte> scratch;
  for (uint64_t a = first; a < last; a += kChunkElems) {
    const uint64_t b = std::min(last, a + kChunkElems);
    const uint64_t byte_a = a * elem_size, byte_b = b * elem_size;
    if (byte_a >= offset && byte_b <= end) {
      MC_CHECK(produce(a, b - a, dst.data() + (byte_a - offset)));
      continue;
    }
    scratch.resize((b - a) * elem_size);
    MC_CHECK(produce(a, b - a, scratch.data()));
    const uint64_t lo = std::max(byte_a, offset), hi = std::min(byte_b, end);
    std::memcpy(dst.data() + (lo - offset), scratch.data() + (lo - byte_a), hi - lo);
  }
  return {};
}

}  // namespace detail

namespace {

using detail::kChunkElems;
using detail::read_elementwise;

Status check_plain(const TensorEntry& e, const char* what) {
  if (is_quantized(e.dtype)) {
    Error err = make_error(ErrorCode::Unsupported, "cannot {} a {} tensor element-wise", what,
                           dtype_name(e.dtype));
    err.tensor = e.name;
    err.hint = "dequantize the model first";
    return err;
  }
  if (!e.data) {
    Error err = make_error(ErrorCode::Internal, "tensor has no data source");
    err.tensor = e.name;
    return err;
  }
  return {};
}

// Element-wise map from one plain dtype to another: reads the matching source elements (at most
// kChunkElems at a time) and converts them, optionally through f32 with a scale factor.
class ElementwiseData final : public TensorData {
 public:
  ElementwiseData(TensorDataPtr src, DType from, DType to, uint64_t n, std::optional<float> scale)
      : src_(std::move(src)), from_(from), to_(to), n_(n), scale_(scale) {}

  Status read(uint64_t offset, std::span<std::byte> dst) const override {
    const size_t in_sz = dtype_size(from_), out_sz = dtype_size(to_);
    // Convert straight out of the source mapping when it has one (no copy, no allocation); the
    // pages read are released once for the whole range, not per chunk (each release is a
    // madvise with a TLB shootdown, which made two threads slower than one).
    const auto view = src_->view();
    thread_local std::vector<std::byte> in_buf;
    thread_local std::vector<float> f_buf;
    uint64_t lo = UINT64_MAX, hi = 0;
    auto st = read_elementwise(offset, dst, out_sz, n_, [&](uint64_t first, uint64_t count, std::byte* out) -> Status {
      std::span<const std::byte> in;
      if (view && view->size() >= (first + count) * in_sz) {
        in = view->subspan(first * in_sz, count * in_sz);
      } else {
        if (in_buf.size() < count * in_sz) in_buf.resize(count * in_sz);
        MC_CHECK(src_->read(first * in_sz, std::span(in_buf.data(), count * in_sz)));
        in = std::span<const std::byte>(in_buf.data(), count * in_sz);
      }
      lo = std::min(lo, first * in_sz);
      hi = std::max(hi, (first + count) * in_sz);
      if (!scale_) {
        return convert(from_, in, to_, std::span<std::byte>(out, count * out_sz));
      }
      if (f_buf.size() < count) f_buf.resize(count);
      to_f32(from_, in.data(), f_buf.data(), count);
      const float s = *scale_;
      for (uint64_t i = 0; i < count; ++i) f_buf[i] *= s;
      from_f32(f_buf.data(), to_, out, count);
      return {};
    });
    if (st && hi > lo) src_->release(lo, hi - lo);
    return st;
  }
  uint64_t chunk_align() const override { return dtype_size(to_); }

 private:
  TensorDataPtr src_;
  DType from_, to_;
  uint64_t n_;
  std::optional<float> scale_;
};

// Output row r is source row map(r); rows are whole (quantized rows are whole blocks).
class RowPermuteData final : public TensorData {
 public:
  RowPermuteData(TensorDataPtr src, uint64_t rows, uint64_t row_bytes, int64_t n_heads, QkDirection dir)
      : src_(std::move(src)), rows_(rows), row_bytes_(row_bytes), dir_(dir) {
    head_rows_ = rows / uint64_t(n_heads);
  }

  uint64_t source_row(uint64_t r) const {
    const uint64_t hd = head_rows_, half = hd / 2;
    const uint64_t h = r / hd, k = r % hd;
    if (dir_ == QkDirection::HfToPairs) {
      // new[h·hd + 2i + j] = old[h·hd + j·hd/2 + i]
      const uint64_t i = k / 2, j = k % 2;
      return h * hd + j * half + i;
    }
    // new[h·hd + j·hd/2 + i] = old[h·hd + 2i + j]
    const uint64_t j = k / half, i = k % half;
    return h * hd + 2 * i + j;
  }

  Status read(uint64_t offset, std::span<std::byte> dst) const override {
    const uint64_t total = rows_ * row_bytes_;
    if (offset > total || dst.size() > total - offset)
      return make_error(ErrorCode::Internal, "read [{}, {}) past the {} bytes of a tensor", offset,
                        offset + dst.size(), total);
    uint64_t pos = offset;
    const uint64_t end = offset + dst.size();
    while (pos < end) {
      const uint64_t r = pos / row_bytes_, in_row = pos % row_bytes_;
      const uint64_t n = std::min(row_bytes_ - in_row, end - pos);
      MC_CHECK(src_->read(source_row(r) * row_bytes_ + in_row, dst.subspan(pos - offset, n)));
      pos += n;
    }
    return {};
  }
  uint64_t chunk_align() const override { return row_bytes_; }

 private:
  TensorDataPtr src_;
  uint64_t rows_, row_bytes_, head_rows_ = 1;
  QkDirection dir_;
};

}  // namespace

Result<TensorEntry> cast_tensor(const TensorEntry& e, DType target) {
  if (e.dtype == target) return e;
  MC_CHECK(check_plain(e, "cast"));
  if (is_quantized(target))
    return make_error(ErrorCode::InvalidArgument, "cast to {} is a quantization, not a cast",
                      dtype_name(target));
  TensorEntry out = e;
  out.dtype = target;
  out.data = std::make_shared<ElementwiseData>(e.data, e.dtype, target, e.numel(), std::nullopt);
  return out;
}

Result<TensorEntry> scale_tensor(const TensorEntry& e, float factor) {
  MC_CHECK(check_plain(e, "scale"));
  if (!dtype_info(e.dtype).is_float) {
    Error err = make_error(ErrorCode::Unsupported, "cannot scale a {} tensor", dtype_name(e.dtype));
    err.tensor = e.name;
    return err;
  }
  TensorEntry out = e;
  out.data = std::make_shared<ElementwiseData>(e.data, e.dtype, e.dtype, e.numel(), factor);
  return out;
}

Result<TensorEntry> permute_qk_tensor(const TensorEntry& e, int64_t n_heads, QkDirection dir) {
  if (!e.data) return make_error(ErrorCode::Internal, "tensor '{}' has no data source", e.name);
  if (e.shape.empty() || e.shape.size() > 2 || n_heads <= 0 || e.shape[0] % n_heads != 0 ||
      (e.shape[0] / n_heads) % 2 != 0) {
    Error err = make_error(ErrorCode::Mismatch,
                           "cannot permute q/k rows of shape {} with {} heads: rows must be "
                           "heads x an even head size",
                           shape_str(e.shape), n_heads);
    err.tensor = e.name;
    err.hint = "check num_attention_heads / num_key_value_heads in config.json";
    return err;
  }
  const uint64_t rows = uint64_t(e.shape[0]);
  const uint64_t row_bytes = e.nbytes() / rows;
  if (row_bytes == 0 || row_bytes * rows != e.nbytes())
    return make_error(ErrorCode::Mismatch, "tensor '{}': {} bytes do not split into {} rows",
                      e.name, e.nbytes(), rows);
  TensorEntry out = e;
  out.data = std::make_shared<RowPermuteData>(e.data, rows, row_bytes, n_heads, dir);
  return out;
}

}  // namespace mc::transforms
