// quantize_rows / dequantize: dispatch to the row kernels (kernels.h) and split rows over the
// thread pool. Follows ggml-quants.c / ggml.c of llama.cpp as bundled by node-llama-cpp 3.21.1
// (llama.cpp commit 80fb11ac73e66d89eae2c6a91d8a77428fa733ed); see testdata/README.md.
#include <cstring>

#include "quant/ggml.h"
#include "quant/kernels.h"

namespace mc::quant {
namespace {

using QuantFn = void (*)(const float*, uint8_t*, int64_t);
using DequantFn = void (*)(const uint8_t*, float*, int64_t);

// Rows handed to one pool task: enough work per task to amortise scheduling (~256K values).
constexpr int64_t kValuesPerTask = 1 << 18;

void quantize_f32(const float* x, uint8_t* y, int64_t n) { std::memcpy(y, x, size_t(n) * 4); }
void quantize_f16(const float* x, uint8_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) detail::store_u16(y + 2 * i, detail::fp32_to_fp16(x[i]));
}
void quantize_bf16(const float* x, uint8_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) detail::store_u16(y + 2 * i, detail::fp32_to_bf16(x[i]));
}
void dequantize_f32(const uint8_t* x, float* y, int64_t n) { std::memcpy(y, x, size_t(n) * 4); }
void dequantize_f16(const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = detail::fp16_to_fp32(detail::load_u16(x + 2 * i));
}
void dequantize_bf16(const uint8_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = detail::bf16_to_fp32(detail::load_u16(x + 2 * i));
}

struct Kernels {
  QuantFn quant = nullptr;
  DequantFn dequant = nullptr;
};

Kernels kernels_for(DType t) {
  using namespace detail;
  switch (t) {
    case DType::F32: return {quantize_f32, dequantize_f32};
    case DType::F16: return {quantize_f16, dequantize_f16};
    case DType::BF16: return {quantize_bf16, dequantize_bf16};
    case DType::Q4_0: return {quantize_q4_0, dequantize_q4_0};
    case DType::Q4_1: return {quantize_q4_1, dequantize_q4_1};
    case DType::Q5_0: return {quantize_q5_0, dequantize_q5_0};
    case DType::Q5_1: return {quantize_q5_1, dequantize_q5_1};
    case DType::Q8_0: return {quantize_q8_0, dequantize_q8_0};
    case DType::Q2_K: return {quantize_q2_k, dequantize_q2_k};
    case DType::Q3_K: return {quantize_q3_k, dequantize_q3_k};
    case DType::Q4_K: return {quantize_q4_k, dequantize_q4_k};
    case DType::Q5_K: return {quantize_q5_k, dequantize_q5_k};
    case DType::Q6_K: return {quantize_q6_k, dequantize_q6_k};
    default: return {};
  }
}

Error unsupported(DType t) {
  return make_error(ErrorCode::Unsupported, "no ggml quantizer for type '{}'", dtype_name(t))
      .with_hint("use f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0 or q2_k..q6_k");
}

}  // namespace

Status quantize_rows(DType t, const float* src, int64_t n_rows, int64_t row_len,
                     std::span<std::byte> dst, ThreadPool* pool) {
  const Kernels k = kernels_for(t);
  if (!k.quant) return unsupported(t);
  const DTypeInfo& info = dtype_info(t);
  if (n_rows < 0 || row_len <= 0 || row_len % info.block_elems != 0) {
    return make_error(ErrorCode::InvalidArgument,
                      "cannot quantize {} rows of {} values to {}: the row length must be a "
                      "positive multiple of {}",
                      n_rows, row_len, info.name, info.block_elems)
        .with_hint("choose a type whose block size divides the row length (see choose_tensor_type)");
  }
  const uint64_t row_bytes = uint64_t(row_len / info.block_elems) * info.block_bytes;
  if (n_rows > 0 && row_bytes > UINT64_MAX / uint64_t(n_rows)) {
    return make_error(ErrorCode::LimitExceeded, "{} rows of {} bytes overflow", n_rows, row_bytes);
  }
  if (uint64_t(dst.size()) != row_bytes * uint64_t(n_rows)) {
    return make_error(ErrorCode::Mismatch,
                      "output buffer holds {} bytes, {} rows of {} {} values need {}", dst.size(),
                      n_rows, row_len, info.name, row_bytes * uint64_t(n_rows));
  }
  if (n_rows == 0) return ok_status();
  if (src == nullptr) return make_error(ErrorCode::InvalidArgument, "null input for quantize_rows");
  auto* out = reinterpret_cast<uint8_t*>(dst.data());
  auto run = [&](size_t r0, size_t r1) -> Status {
    // Rows are independent, so any split gives the same bytes.
    k.quant(src + int64_t(r0) * row_len, out + r0 * row_bytes, int64_t(r1 - r0) * row_len);
    return ok_status();
  };
  if (pool == nullptr || pool->size() <= 1 || n_rows == 1) return run(0, size_t(n_rows));
  const int64_t grain = std::max<int64_t>(1, kValuesPerTask / row_len);
  return pool->parallel_for(size_t(n_rows), size_t(grain), run);
}

Status dequantize(DType t, std::span<const std::byte> src, float* dst, int64_t n) {
  const Kernels k = kernels_for(t);
  if (!k.dequant) return unsupported(t);
  const DTypeInfo& info = dtype_info(t);
  if (n < 0 || n % info.block_elems != 0) {
    return make_error(ErrorCode::InvalidArgument,
                      "cannot dequantize {} {} values: not a multiple of the block size {}", n,
                      info.name, info.block_elems);
  }
  const uint64_t need = uint64_t(n / info.block_elems) * info.block_bytes;
  if (uint64_t(src.size()) != need) {
    return make_error(ErrorCode::Mismatch, "{} {} values need {} bytes, got {}", n, info.name,
                      need, src.size());
  }
  if (n == 0) return ok_status();
  k.dequant(reinterpret_cast<const uint8_t*>(src.data()), dst, n);
  return ok_status();
}

}  // namespace mc::quant
