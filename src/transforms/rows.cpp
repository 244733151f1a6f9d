// The lazy row layer (rows.h). Rows are produced in batches of at most kBatchElems elements;
// reads that do not start or end on a row are served through the covering rows.
#include "transforms/rows.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "quant/ggml.h"

namespace mc::transforms {
namespace {

uint64_t bytes_for(DType t, int64_t n) {
  const auto& i = dtype_info(t);
  return uint64_t(n) / i.block_elems * i.block_bytes;
}

Status widen(DType t, const std::byte* src, float* dst, int64_t n) {
  if (is_quantized(t)) return quant::dequantize(t, {src, bytes_for(t, n)}, dst, n);
  to_f32(t, src, dst, size_t(n));
  return {};
}

Status narrow(DType t, const float* src, int64_t rows, int64_t cols, std::byte* dst) {
  if (is_quantized(t))
    return quant::quantize_rows(t, src, rows, cols, {dst, bytes_for(t, rows * cols)}, nullptr);
  from_f32(src, t, dst, size_t(rows * cols));
  return {};
}

Status check_cols(DType t, int64_t cols, const char* what) {
  const auto& i = dtype_info(t);
  if (cols % int64_t(i.block_elems) != 0)
    return make_error(ErrorCode::InvalidArgument, "{} rows of {} elements are not whole {} blocks of {}",
                      what, cols, i.name, i.block_elems);
  return {};
}

}  // namespace

uint64_t RowSource::row_bytes() const { return bytes_for(dtype, cols); }

Result<RowSource> row_view(const TensorEntry& e, int64_t rows) {
  const uint64_t numel = MC_TRY(shape_numel(e.shape));
  if (rows == 0) rows = e.shape.size() >= 2 ? e.shape[0] : 1;
  if (rows <= 0 || numel % uint64_t(rows) != 0)
    return make_error(ErrorCode::InvalidArgument, "cannot view shape {} as {} rows", shape_str(e.shape),
                      rows);
  RowSource s;
  s.dtype = e.dtype;
  s.rows = rows;
  s.cols = int64_t(numel / uint64_t(rows));
  MC_CHECK(check_cols(e.dtype, s.cols, e.name.c_str()));
  const uint64_t rb = s.row_bytes();
  TensorDataPtr data = e.data;
  std::string name = e.name;
  s.read = [data, rb, name](int64_t r0, int64_t n, std::byte* dst) -> Status {
    if (!data) return make_error(ErrorCode::Internal, "tensor '{}' has no data source", name);
    return data->read(uint64_t(r0) * rb, {dst, uint64_t(n) * rb});
  };
  s.release = [data, rb](int64_t r0, int64_t n) {
    if (data) data->release(uint64_t(r0) * rb, uint64_t(n) * rb);
  };
  // In-memory rows are used in place (the read() closure holds `data`, which owns them). Rows of
  // a mapped file are read with pread instead: cheaper than faulting the mapping in.
  if (data)
    if (auto v = data->memory_view(); v && v->size() == uint64_t(s.rows) * rb) s.base = v->data();
  return s;
}

RowSource gather_rows(RowSource src, std::vector<int64_t> perm) {
  RowSource out = src;
  out.release = {};  // rows are read out of order: keep the source mapped
  out.base = nullptr;
  out.rows = int64_t(perm.size());
  const uint64_t rb = src.row_bytes();
  auto p = std::make_shared<const std::vector<int64_t>>(std::move(perm));
  auto inner = std::move(src.read);
  out.read = [p, rb, inner](int64_t r0, int64_t n, std::byte* dst) -> Status {
    // Rows permuted within a small span (the RoPE permutation keeps each head's rows in the
    // head) come from one read of the span: a row-by-row read costs a system call per row when
    // the source is a file (15,000 reads of 4 KiB for the q/k weights of a 0.8 GB model).
    const auto first = p->begin() + r0, last = first + n;
    const auto [lo, hi] = std::minmax_element(first, last);
    const int64_t span = *hi - *lo + 1;
    if (n > 1 && span <= 2 * n && uint64_t(span) * rb <= (uint64_t(16) << 20)) {
      std::unique_ptr<std::byte[]> rows(new std::byte[size_t(uint64_t(span) * rb)]);  // all written
      MC_CHECK(inner(*lo, span, rows.get()));
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(dst + uint64_t(i) * rb, rows.get() + uint64_t((*p)[size_t(r0 + i)] - *lo) * rb, rb);
      return {};
    }
    // Otherwise consecutive source rows are read in one call.
    int64_t i = 0;
    while (i < n) {
      const int64_t first = (*p)[size_t(r0 + i)];
      int64_t run = 1;
      while (i + run < n && (*p)[size_t(r0 + i + run)] == first + run) ++run;
      MC_CHECK(inner(first, run, dst + uint64_t(i) * rb));
      i += run;
    }
    return {};
  };
  return out;
}

Result<RowSource> transposed(const TensorEntry& e) {
  if (e.shape.size() != 2)
    return make_error(ErrorCode::InvalidArgument, "tensor '{}' of shape {} is not 2-D", e.name,
                      shape_str(e.shape));
  RowSource src = MC_TRY(row_view(e));
  const int64_t a = e.shape[0], b = e.shape[1];
  RowSource out;
  out.dtype = is_quantized(e.dtype) ? DType::F32 : e.dtype;
  out.rows = b;
  out.cols = a;
  const size_t es = dtype_size(out.dtype);
  TensorDataPtr data = e.data;
  out.read = [src, data, a, b, es](int64_t r0, int64_t n, std::byte* dst) -> Status {
    // Output rows [r0, r0+n) are source columns [r0, r0+n): take that slice of every source
    // row (whole rows, dequantized, when the source is block-quantized) and scatter it.
    // Quantized: only the blocks covering columns [r0, r0+n) of each source row.
    const bool quantized = is_quantized(src.dtype);
    const auto& qi = dtype_info(src.dtype);
    const int64_t blk = int64_t(qi.block_elems);
    const int64_t b0 = r0 / blk, b1 = (r0 + n + blk - 1) / blk;
    const uint64_t src_rb = src.row_bytes();
    std::vector<std::byte> row(quantized ? uint64_t(b1 - b0) * qi.block_bytes : uint64_t(n) * es);
    std::vector<float> wide(quantized ? size_t((b1 - b0) * blk) : 0);
    for (int64_t i = 0; i < a; ++i) {
      const std::byte* base;
      if (quantized) {
        MC_CHECK(data->read(uint64_t(i) * src_rb + uint64_t(b0) * qi.block_bytes, row));
        MC_CHECK(widen(src.dtype, row.data(), wide.data(), (b1 - b0) * blk));
        base = reinterpret_cast<const std::byte*>(wide.data() + (r0 - b0 * blk));
      } else {
        MC_CHECK(data->read((uint64_t(i) * uint64_t(b) + uint64_t(r0)) * es, row));
        base = row.data();
      }
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(dst + (uint64_t(j) * uint64_t(a) + uint64_t(i)) * es, base + uint64_t(j) * es, es);
    }
    return {};
  };
  return out;
}

RowSource map_f32(RowSource src, std::function<void(float* values, int64_t n)> f) {
  RowSource out;
  out.dtype = DType::F32;
  out.rows = src.rows;
  out.cols = src.cols;
  out.release = src.release;
  const uint64_t in_rb = src.row_bytes();
  out.read = [src, f = std::move(f), in_rb](int64_t r0, int64_t n, std::byte* dst) -> Status {
    float* v = reinterpret_cast<float*>(dst);
    const int64_t elems = n * src.cols;
    if (src.dtype == DType::F32) {
      MC_CHECK(src.read(r0, n, dst));
    } else {
      std::vector<std::byte> raw(size_t(uint64_t(n) * in_rb));
      MC_CHECK(src.read(r0, n, raw.data()));
      MC_CHECK(widen(src.dtype, raw.data(), v, elems));
    }
    f(v, elems);
    return {};
  };
  return out;
}

Result<TensorDataPtr> rows_as(RowSource src, DType out) {
  MC_CHECK(check_cols(out, src.cols, "output"));
  const uint64_t in_rb = src.row_bytes();
  const uint64_t out_rb = bytes_for(out, src.cols);
  const int64_t rows = src.rows, cols = src.cols;
  auto fill = [src, out, in_rb, out_rb, cols](int64_t r0, int64_t n, std::byte* dst) -> Status {
    if (src.dtype == out) return src.read(r0, n, dst);
    // Plain to plain converts in one pass (no f32 step); rows in memory are read in place.
    const bool direct = !is_quantized(src.dtype) && !is_quantized(out);
    const int64_t batch = std::max<int64_t>(1, kBatchElems / std::max<int64_t>(cols, 1));
    const int64_t m_max = std::min(batch, n);
    // Scratch without zero-filling (new T[] leaves it uninitialised; every byte is written).
    std::unique_ptr<std::byte[]> raw(src.base ? nullptr : new std::byte[size_t(uint64_t(m_max) * in_rb)]);
    std::unique_ptr<float[]> wide(direct ? nullptr : new float[size_t(m_max * cols)]);
    for (int64_t b = 0; b < n; b += batch) {
      const int64_t m = std::min(batch, n - b);
      const std::byte* in = src.base ? src.base + uint64_t(r0 + b) * in_rb : raw.get();
      if (!src.base) MC_CHECK(src.read(r0 + b, m, raw.get()));
      std::byte* o = dst + uint64_t(b) * out_rb;
      if (direct) {
        MC_CHECK(convert(src.dtype, {in, uint64_t(m) * in_rb}, out, {o, uint64_t(m) * out_rb}));
      } else {
        MC_CHECK(widen(src.dtype, in, wide.get(), m * cols));
        MC_CHECK(narrow(out, wide.get(), m, cols, o));
      }
    }
    return {};
  };
  // Writers release each output row range once written; the source rows behind it go too (flat
  // RSS over mapped input).
  return make_rows_data(rows, out_rb, std::move(fill), src.release);
}

Result<std::vector<int64_t>> qk_row_perm(int64_t rows, int64_t heads, QkDirection dir) {
  if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0)
    return make_error(ErrorCode::Mismatch,
                      "{} rows cannot be split into {} heads of an even size for the RoPE permutation", rows,
                      heads);
  const int64_t hd = rows / heads, half = hd / 2;
  std::vector<int64_t> p(static_cast<size_t>(rows));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t pair = h * hd + 2 * i + j, half_split = h * hd + j * half + i;
        if (dir == QkDirection::HfToPairs)
          p[size_t(pair)] = half_split;
        else
          p[size_t(half_split)] = pair;
      }
  return p;
}

TensorDataPtr make_rows_data(int64_t rows, uint64_t row_bytes, RowFill fill,
                             std::function<void(int64_t r0, int64_t n)> release) {
  const uint64_t total = uint64_t(rows) * row_bytes;
  auto fn = [fill = std::move(fill), rows, row_bytes, total](uint64_t offset,
                                                             std::span<std::byte> dst) -> Status {
    if (dst.empty()) return {};
    if (offset > total || dst.size() > total - offset)
      return make_error(ErrorCode::Internal, "read [{}, {}) past {} bytes", offset, offset + dst.size(),
                        total);
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
  std::function<void(uint64_t, uint64_t)> on_release;
  if (release && row_bytes > 0) {
    on_release = [release = std::move(release), row_bytes, rows](uint64_t offset, uint64_t n) {
      const uint64_t r0 = (offset + row_bytes - 1) / row_bytes;
      const uint64_t r1 = std::min<uint64_t>((offset + n) / row_bytes, uint64_t(rows));
      if (r1 > r0) release(int64_t(r0), int64_t(r1 - r0));
    };
  }
  return make_fn_data(std::move(fn), row_bytes, std::move(on_release));
}

F32Rows::F32Rows(const TensorEntry& e, std::optional<DType> via)
    : data_(e.data), name_(e.name), dtype_(e.dtype), via_(via) {
  cols_ = e.shape.empty() ? 1 : e.shape.back();
  const uint64_t numel = e.numel();
  rows_ = cols_ > 0 ? int64_t(numel / uint64_t(cols_)) : 0;
  if (via_ && (*via_ == dtype_ || *via_ == DType::F32)) via_.reset();
}

Status F32Rows::read(int64_t r0, int64_t n, float* dst) const {
  if (!data_) return make_error(ErrorCode::Internal, "tensor '{}' has no data source", name_);
  const auto& info = dtype_info(dtype_);
  const uint64_t elems = uint64_t(n) * uint64_t(cols_);
  const uint64_t row_bytes = uint64_t(cols_) / info.block_elems * info.block_bytes;
  const uint64_t offset = uint64_t(r0) * row_bytes;
  const uint64_t nbytes = uint64_t(n) * row_bytes;
  // Straight from memory when the tensor is in memory; else (a file, a transform) through a buffer.
  std::unique_ptr<std::byte[]> raw;  // not zero-filled: read() writes every byte
  const std::byte* src;
  const auto v = data_->memory_view();
  if (v && v->size() >= offset + nbytes) {
    src = v->data() + offset;
  } else {
    raw.reset(new std::byte[nbytes]);
    MC_CHECK(data_->read(offset, {raw.get(), nbytes}));
    src = raw.get();
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

Status read_elementwise(uint64_t offset, std::span<std::byte> dst, size_t elem_size, uint64_t total_elems,
                        const ProduceFn& produce) {
  if (dst.empty()) return {};
  const uint64_t total_bytes = total_elems * elem_size;
  if (offset > total_bytes || dst.size() > total_bytes - offset)
    return make_error(ErrorCode::Internal, "read [{}, {}) past the {} bytes of a tensor", offset,
                      offset + dst.size(), total_bytes);
  const uint64_t end = offset + dst.size();
  const uint64_t first = offset / elem_size;
  const uint64_t last = (end + elem_size - 1) / elem_size;  // exclusive
  std::vector<std::byte> scratch;
  for (uint64_t a = first; a < last; a += uint64_t(kBatchElems)) {
    const uint64_t b = std::min(last, a + uint64_t(kBatchElems));
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

}  // namespace mc::transforms
