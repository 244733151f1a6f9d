// DType: element types of tensors, plain and block-quantized (ggml), in one table read both ways.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/error.h"

namespace mc {

enum class DType : uint8_t {
  F64, F32, F16, BF16, F8_E4M3, F8_E5M2,
  I64, I32, I16, I8, U64, U32, U16, U8, Bool,
  // ggml block-quantized types (formats.md §2.3); elements come in blocks along the last dim.
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
  Count
};

struct DTypeInfo {
  DType dtype;
  std::string_view name;         // our name, lower case ("f16", "q4_k")
  std::string_view st_name;      // safetensors dtype string ("" if none)
  uint32_t block_elems;          // elements per block (1 for plain types)
  uint32_t block_bytes;          // bytes per block (element size for plain types)
  bool is_float;                 // plain floating point
  bool is_int;                   // plain integer (bool excluded)
  int ggml_type;                 // ggml_type id, -1 if not a ggml tensor type
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
inline bool is_quantized(DType t) { return dtype_info(t).block_elems > 1; }
inline size_t dtype_size(DType t) { return dtype_info(t).block_bytes; }  // plain types only
std::optional<DType> dtype_from_name(std::string_view name);     // "f16", "fp16", "float16", "bf16", ...
std::optional<DType> dtype_from_st_name(std::string_view name);  // "F16", "BF16", ...
// torch's name of a float dtype as config.json's torch_dtype spells it ("bfloat16"); "" if none.
std::string_view torch_dtype_name(DType t);
std::optional<DType> dtype_from_ggml(int ggml_type);

// Bytes for `n_elements` of `t`; error if n is not a multiple of the block size or overflows.
Result<uint64_t> dtype_nbytes(DType t, uint64_t n_elements);

// --- scalar conversions, bit-exact with PyTorch's (round to nearest even; NaN/Inf/subnormals) ---
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);
float f8e4m3_to_f32(uint8_t v);
uint8_t f32_to_f8e4m3(float f);
float f8e5m2_to_f32(uint8_t v);
uint8_t f32_to_f8e5m2(float f);

// Convert n elements between plain dtypes (as torch's Tensor.to(dtype)): floats round to nearest
// even, float->int truncates toward zero, ->bool is (x != 0). Vectorised where the CPU allows.
// `src` and `dst` must not overlap. Both spans must hold exactly n elements of their type.
Status convert(DType from, std::span<const std::byte> src, DType to, std::span<std::byte> dst);

// Same as convert(), into f32 / from f32 (hot paths of the runtime and the quantizers).
void to_f32(DType from, const void* src, float* dst, size_t n);
void from_f32(const float* src, DType to, void* dst, size_t n);

// The kernel sets of convert()'s hot float pairs, narrowest first; the CPU says which exist.
enum class ConvertKernels : uint8_t { Scalar, Avx2, Avx512 };
// The set convert() uses now: the widest the CPU has, within the cap.
ConvertKernels convert_kernels();
// "scalar", "avx2+f16c", "avx512f".
std::string_view convert_kernels_name(ConvertKernels k);
// convert_kernels_name(convert_kernels()), for logs and `version`.
std::string_view cpu_kernel_name();
// Caps the set convert() may use (tests run each set the CPU has on the same inputs); returns
// the previous cap. The default cap is Avx512 (no cap).
ConvertKernels cap_convert_kernels(ConvertKernels cap);

}  // namespace mc
