// Per-tensor lazy wrappers: dtype cast, f32 scaling, and the q/k row permutation
// (formats.md §2.9 for HF <-> GGUF, §12 for llama2.c -> HF). Each wrapper keeps a pointer to
// its source TensorData and converts only the bytes a read() asks for.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "transforms/rows.h"
#include "transforms/transforms.h"

namespace mc::transforms {

namespace {

Status check_plain(const TensorEntry& e, const char* what) {
  if (is_quantized(e.dtype)) {
    return make_error(ErrorCode::Unsupported, "cannot {} a {} tensor element-wise", what, dtype_name(e.dtype))
        .with_tensor(e.name)
        .with_hint("dequantize the model first");
  }
  if (!e.data) {
    return make_error(ErrorCode::Internal, "tensor has no data source").with_tensor(e.name);
  }
  return {};
}

// Element-wise map from one plain dtype to another: reads the matching source elements (at most
// kBatchElems at a time) and converts them, optionally through f32 with a scale factor.
class ElementwiseData final : public TensorData {
 public:
  ElementwiseData(TensorDataPtr src, DType from, DType to, uint64_t n, std::optional<float> scale)
      : src_(std::move(src)), from_(from), to_(to), n_(n), scale_(scale) {}

  Status read(uint64_t offset, std::span<std::byte> dst) const override {
    const size_t in_sz = dtype_size(from_), out_sz = dtype_size(to_);
    // Convert straight out of the source mapping when it has one (no copy, no allocation); the
    // pages read are released once for the whole range, not per chunk (each release is a
    // madvise with a TLB shootdown, which made two threads slower than one).
    const auto view = src_->memory_view();
    // Buffers of this call, not thread_local ones: wrappers nest (a cast of a scaled tensor), and
    // the inner read() would reuse, even move, the buffer the outer one is reading into.
    std::unique_ptr<std::byte[]> in_buf;  // not zero-filled: read() writes every byte
    size_t in_cap = 0;
    std::unique_ptr<float[]> f_buf;
    size_t f_cap = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    auto st = read_elementwise(offset, dst, out_sz, n_, [&](uint64_t first, uint64_t count, std::byte* out) -> Status {
      std::span<const std::byte> in;
      if (view && view->size() >= (first + count) * in_sz) {
        in = view->subspan(first * in_sz, count * in_sz);
      } else {
        if (in_cap < count * in_sz) in_buf.reset(new std::byte[in_cap = count * in_sz]);
        MC_CHECK(src_->read(first * in_sz, std::span(in_buf.get(), count * in_sz)));
        in = std::span<const std::byte>(in_buf.get(), count * in_sz);
      }
      lo = std::min(lo, first * in_sz);
      hi = std::max(hi, (first + count) * in_sz);
      if (!scale_) {
        return convert(from_, in, to_, std::span<std::byte>(out, count * out_sz));
      }
      if (f_cap < count) f_buf.reset(new float[f_cap = count]);
      to_f32(from_, in.data(), f_buf.get(), count);
      const float s = *scale_;
      for (uint64_t i = 0; i < count; ++i) f_buf[i] *= s;
      from_f32(f_buf.get(), to_, out, count);
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
    return make_error(ErrorCode::Unsupported, "cannot scale a {} tensor", dtype_name(e.dtype))
        .with_tensor(e.name);
  }
  TensorEntry out = e;
  out.data = std::make_shared<ElementwiseData>(e.data, e.dtype, e.dtype, e.numel(), factor);
  return out;
}

Result<TensorEntry> permute_qk_tensor(const TensorEntry& e, int64_t n_heads, QkDirection dir) {
  if (!e.data) return make_error(ErrorCode::Internal, "tensor '{}' has no data source", e.name);
  if (e.shape.empty() || e.shape.size() > 2 || n_heads <= 0 || e.shape[0] % n_heads != 0 ||
      (e.shape[0] / n_heads) % 2 != 0) {
    return make_error(ErrorCode::Mismatch,
                      "cannot permute q/k rows of shape {} with {} heads: rows must be "
                      "heads x an even head size",
                      shape_str(e.shape), n_heads)
        .with_tensor(e.name)
        .with_hint("check num_attention_heads / num_key_value_heads in config.json");
  }
  auto view = row_view(e, e.shape[0]);
  if (!view) return std::move(view).error().with_tensor(e.name);
  auto perm = qk_row_perm(e.shape[0], n_heads, dir);
  if (!perm) return std::move(perm).error().with_tensor(e.name);
  TensorEntry out = e;
  // Whole rows are copied, in the source's own dtype (quantized rows are whole blocks).
  out.data = MC_TRY(rows_as(gather_rows(std::move(*view), std::move(*perm)), e.dtype));
  return out;
}

}  // namespace mc::transforms
