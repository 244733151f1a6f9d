#include "graph/weights.h"

#include <cstring>
#include <vector>

#include "quant/ggml.h"

namespace mc::graph::detail {

namespace {
// Per-thread staging for sources without an in-memory view (reused across calls).
std::vector<std::byte>& staging(size_t n) {
  thread_local std::vector<std::byte> buf;
  if (buf.size() < n) buf.resize(n);
  return buf;
}

Status convert_bytes(const Weight& w, const std::byte* src, uint64_t nbytes, float* dst, int64_t n) {
  if (is_quantized(w.dtype)) {
    Status st = quant::dequantize(w.dtype, {src, static_cast<size_t>(nbytes)}, dst, n);
    if (!st) return std::move(st).error().with_tensor(w.name);
    return {};
  }
  to_f32(w.dtype, src, dst, static_cast<size_t>(n));
  return {};
}
}  // namespace

Result<Weight> make_weight(const TensorEntry& e) {
  Weight w;
  w.name = e.name;
  w.dtype = e.dtype;
  const DTypeInfo& info = dtype_info(e.dtype);
  if (!info.is_float && !is_quantized(e.dtype)) {
    return make_error(ErrorCode::Unsupported, "weight dtype {} cannot be used as a float weight", info.name)
        .with_tensor(e.name)
        .with_hint("cast the model to f32/f16/bf16 first");
  }
  if (e.shape.empty()) {
    w.rows = 1;
    w.cols = 1;
  } else {
    w.cols = e.shape.back();
    const uint64_t n = MC_TRY(shape_numel(e.shape));
    w.rows = w.cols > 0 ? static_cast<int64_t>(n / static_cast<uint64_t>(w.cols)) : 0;
  }
  auto rb = dtype_nbytes(e.dtype, static_cast<uint64_t>(w.cols));
  if (!rb) {
    return make_error(ErrorCode::Unsupported, "rows of {} elements do not split into whole {} blocks", w.cols,
                      info.name)
        .with_tensor(e.name)
        .with_hint("keep this tensor in f16/f32 (llama-quantize does the same)");
  }
  w.row_bytes = *rb;
  w.data = e.data;
  if (!w.data) return make_error(ErrorCode::Internal, "tensor '{}' has no data source", e.name);
  if (auto v = w.data->view()) {
    if (v->size() < w.row_bytes * static_cast<uint64_t>(w.rows)) {
      return make_error(ErrorCode::Truncated, "tensor holds {} bytes, its shape needs {}", v->size(),
                        w.row_bytes * static_cast<uint64_t>(w.rows))
          .with_tensor(e.name);
    }
    w.mem = v->data();
  }
  return w;
}

const float* direct_f32(const Weight& w, int64_t r0) {
  if (w.dtype != DType::F32 || !w.mem) return nullptr;
  const std::byte* p = w.mem + static_cast<uint64_t>(r0) * w.row_bytes;
  if (reinterpret_cast<uintptr_t>(p) % alignof(float) != 0) return nullptr;
  return reinterpret_cast<const float*>(p);
}

Status read_rows(const Weight& w, int64_t r0, int64_t r1, float* dst) {
  if (r0 < 0 || r1 > w.rows || r0 > r1)
    return make_error(ErrorCode::Internal, "rows [{}, {}) outside tensor '{}' of {} rows", r0, r1, w.name, w.rows);
  const uint64_t off = static_cast<uint64_t>(r0) * w.row_bytes;
  const uint64_t nbytes = static_cast<uint64_t>(r1 - r0) * w.row_bytes;
  const int64_t n = (r1 - r0) * w.cols;
  if (w.dtype == DType::F32 && w.mem) {
    std::memcpy(dst, w.mem + off, nbytes);
    return {};
  }
  if (w.mem) return convert_bytes(w, w.mem + off, nbytes, dst, n);
  auto& buf = staging(nbytes);
  Status st = w.data->read(off, {buf.data(), static_cast<size_t>(nbytes)});
  if (!st) return std::move(st).error().with_tensor(w.name);
  return convert_bytes(w, buf.data(), nbytes, dst, n);
}

Status read_tile(const Weight& w, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst) {
  if (is_quantized(w.dtype))
    return make_error(ErrorCode::Internal, "column tiles of block-quantized tensor '{}'", w.name);
  const uint64_t es = dtype_size(w.dtype);
  const int64_t nc = c1 - c0;
  const uint64_t seg = static_cast<uint64_t>(nc) * es;
  for (int64_t r = r0; r < r1; ++r) {
    const uint64_t off = static_cast<uint64_t>(r) * w.row_bytes + static_cast<uint64_t>(c0) * es;
    float* out = dst + (r - r0) * nc;
    if (w.mem) {
      to_f32(w.dtype, w.mem + off, out, static_cast<size_t>(nc));
      continue;
    }
    auto& buf = staging(seg);
    Status st = w.data->read(off, {buf.data(), static_cast<size_t>(seg)});
    if (!st) return std::move(st).error().with_tensor(w.name);
    to_f32(w.dtype, buf.data(), out, static_cast<size_t>(nc));
  }
  return {};
}

Result<std::vector<float>> read_small(const Weight& w) {
  std::vector<float> out(static_cast<size_t>(w.rows * w.cols));
  MC_CHECK(read_rows(w, 0, w.rows, out.data()));
  return out;
}

}  // namespace mc::graph::detail
