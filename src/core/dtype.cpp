#include "core/dtype.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace mc {
namespace {

// The one dtype table (T2): names, safetensors strings, block geometry and ggml ids.
constexpr std::array<DTypeInfo, size_t(DType::Count)> kDTypes{{
    {DType::F64, "f64", "F64", 1, 8, true, false, 28},
    {DType::F32, "f32", "F32", 1, 4, true, false, 0},
    {DType::F16, "f16", "F16", 1, 2, true, false, 1},
    {DType::BF16, "bf16", "BF16", 1, 2, true, false, 30},
    {DType::F8_E4M3, "f8_e4m3", "F8_E4M3", 1, 1, true, false, -1},
    {DType::F8_E5M2, "f8_e5m2", "F8_E5M2", 1, 1, true, false, -1},
    {DType::I64, "i64", "I64", 1, 8, false, true, 27},
    {DType::I32, "i32", "I32", 1, 4, false, true, 26},
    {DType::I16, "i16", "I16", 1, 2, false, true, 25},
    {DType::I8, "i8", "I8", 1, 1, false, true, 24},
    {DType::U64, "u64", "U64", 1, 8, false, true, -1},
    {DType::U32, "u32", "U32", 1, 4, false, true, -1},
    {DType::U16, "u16", "U16", 1, 2, false, true, -1},
    {DType::U8, "u8", "U8", 1, 1, false, true, -1},
    {DType::Bool, "bool", "BOOL", 1, 1, false, false, -1},
    {DType::Q4_0, "q4_0", "", 32, 18, false, false, 2},
    {DType::Q4_1, "q4_1", "", 32, 20, false, false, 3},
    {DType::Q5_0, "q5_0", "", 32, 22, false, false, 6},
    {DType::Q5_1, "q5_1", "", 32, 24, false, false, 7},
    {DType::Q8_0, "q8_0", "", 32, 34, false, false, 8},
    {DType::Q2_K, "q2_k", "", 256, 84, false, false, 10},
    {DType::Q3_K, "q3_k", "", 256, 110, false, false, 11},
    {DType::Q4_K, "q4_k", "", 256, 144, false, false, 12},
    {DType::Q5_K, "q5_k", "", 256, 176, false, false, 13},
    {DType::Q6_K, "q6_k", "", 256, 210, false, false, 14},
}};
static_assert(kDTypes.size() == size_t(DType::Count));

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < kDTypes.size(); ++i)
    if (size_t(kDTypes[i].dtype) != i) return false;
  return true;
}
static_assert(table_in_enum_order(), "kDTypes rows must follow the DType enum order");

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

}  // namespace

const DTypeInfo& dtype_info(DType t) { return kDTypes[size_t(t)]; }

std::optional<DType> dtype_from_name(std::string_view name) {
  const std::string n = lower(name);
  struct Alias {
    std::string_view alias;
    DType t;
  };
  static constexpr Alias kAliases[] = {
      {"fp64", DType::F64},     {"float64", DType::F64},  {"double", DType::F64},
      {"fp32", DType::F32},     {"float32", DType::F32},  {"float", DType::F32},
      {"fp16", DType::F16},     {"float16", DType::F16},  {"half", DType::F16},
      {"bfloat16", DType::BF16}, {"float8_e4m3fn", DType::F8_E4M3}, {"float8_e5m2", DType::F8_E5M2},
      {"int64", DType::I64},    {"int32", DType::I32},    {"int16", DType::I16},
      {"int8", DType::I8},      {"uint8", DType::U8},     {"uint16", DType::U16},
      {"uint32", DType::U32},   {"uint64", DType::U64},
  };
  for (const auto& row : kDTypes)
    if (row.name == n) return row.dtype;
  for (const auto& a : kAliases)
    if (a.alias == n) return a.t;
  return std::nullopt;
}

std::optional<DType> dtype_from_st_name(std::string_view name) {
  for (const auto& row : kDTypes)
    if (!row.st_name.empty() && row.st_name == name) return row.dtype;
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml(int ggml_type) {
  if (ggml_type < 0) return std::nullopt;  // -1 marks the rows without a ggml type
  for (const auto& row : kDTypes)
    if (row.ggml_type == ggml_type) return row.dtype;
  return std::nullopt;
}

Result<uint64_t> dtype_nbytes(DType t, uint64_t n_elements) {
  const auto& info = dtype_info(t);
  if (n_elements % info.block_elems != 0)
    return make_error(ErrorCode::Mismatch, "{} elements is not a multiple of the {} block size {}",
                      n_elements, info.name, info.block_elems);
  const uint64_t blocks = n_elements / info.block_elems;
  if (blocks > std::numeric_limits<uint64_t>::max() / info.block_bytes)
    return make_error(ErrorCode::LimitExceeded, "{} elements of {} overflow a 64-bit byte count",
                      n_elements, info.name);
  return blocks * info.block_bytes;
}

// ---------------------------------------------------------------------------------------------
// Scalar conversions. These follow c10's Half/BFloat16/Float8 code paths (round to nearest even,
// overflow to inf for f16), which is what torch's .to(dtype) does on CPU, NaNs included:
//   f32 -> f16  NaN -> sign | 0x7E00        f16 -> f32  NaN quieted, payload kept
//   f32 -> bf16 NaN -> 0x7FC0               bf16 -> f32 bits << 16
//   f32 -> e4m3 NaN, inf, |x| > 464 -> 0x7F | sign     e4m3 0x7F -> 0x7FF00000 | sign
//   f32 -> e5m2 NaN -> 0x7F | sign, overflow -> inf     e5m2 -> as the f16 with 8 zero bits
// tests/py/dtype_oracle.py checks them against torch 1.13 (f16, bf16) and a numpy model (f8).

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 0x1F) {
    // c10 widens inf/NaN with a float multiply, which quiets a signalling NaN (bit 22) and
    // keeps the payload: f16 0x7C01 -> f32 0x7FC02000.
    bits = sign | 0x7F800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u);
  } else {
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7FFFFFFFu;
  // c10 (fp16_ieee_from_fp32_value) drops the NaN payload: every NaN becomes sign | 0x7E00.
  if (ax > 0x7F800000u) return uint16_t(sign | 0x7E00u);
  if (ax >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // rounds to >= 65520 -> inf
  if (ax < 0x38800000u) {  // result is subnormal or zero (|f| < 2^-14)
    // Add 0.5 (as a float) so the FPU does the round-to-nearest-even of the shifted mantissa.
    const float r = std::bit_cast<float>(ax) + 0.5f;
    return uint16_t(sign | (std::bit_cast<uint32_t>(r) - 0x3F000000u));
  }
  const uint32_t mant_odd = (ax >> 13) & 1u;
  uint32_t v = ax + (uint32_t(15 - 127) << 23) + 0xFFFu + mant_odd;
  return uint16_t(sign | (v >> 13));
}

float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  // c10::BFloat16 (round_to_nearest_even) maps every NaN to 0x7FC0, sign and payload dropped.
  // Torch's AVX2 kernel for contiguous f32 tensors writes 0xFFFF instead; we keep the c10 value,
  // which is also what torch gives for strided tensors and f16/f64 -> bf16 (formats.md §2.4 has
  // ggml's variant, (bits >> 16) | 0x40, which we do not follow).
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0u;
  return uint16_t((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; no infinities, 0x7F/0xFF are NaN,
// max finite 448. c10::Float8_e4m3fn: values that round above 448 become NaN (no saturation).
float f8e4m3_to_f32(uint8_t v) {
  const uint32_t sign = uint32_t(v & 0x80u) << 24;
  const uint32_t exp = (v >> 3) & 0xFu;
  const uint32_t mant = v & 0x7u;
  // c10's bit arithmetic turns the NaN codes 0x7F/0xFF into f32 0x7FF00000 / 0xFFF00000.
  if (exp == 0xF && mant == 0x7) return std::bit_cast<float>(sign | 0x7FF00000u);
  float mag;
  if (exp == 0)
    mag = std::ldexp(float(mant), -9);  // subnormal: mant * 2^-6 / 8
  else
    mag = std::ldexp(1.0f + float(mant) / 8.0f, int(exp) - 7);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(mag) | sign);
}

uint8_t f32_to_f8e4m3(float f) {
  // Mirrors c10::detail::fp8e4m3fn_from_fp32_value.
  constexpr uint32_t fp8_max = uint32_t(1087) << 20;       // 480.0f: first value that rounds past 448
  constexpr uint32_t denorm_mask = uint32_t(141) << 23;   // 2^14
  uint32_t f_bits = std::bit_cast<uint32_t>(f);
  const uint32_t sign = f_bits & 0x80000000u;
  f_bits ^= sign;
  uint8_t result;
  if (f_bits >= fp8_max) {
    result = 0x7F;
  } else if (f_bits < (uint32_t(121) << 23)) {
    const float r = std::bit_cast<float>(f_bits) + std::bit_cast<float>(denorm_mask);
    result = uint8_t(std::bit_cast<uint32_t>(r) - denorm_mask);
  } else {
    const uint8_t mant_odd = (f_bits >> 20) & 1u;
    f_bits += (uint32_t(7 - 127) << 23) + 0x7FFFFu;
    f_bits += mant_odd;
    result = uint8_t(f_bits >> 20);
  }
  return uint8_t(result | (sign >> 24));
}

// float8_e5m2: the top byte of an f16; conversion from f32 goes as c10 does
// (fp8e5m2_from_fp32_value): round to nearest even at 2 mantissa bits, overflow to inf.
float f8e5m2_to_f32(uint8_t v) { return f16_to_f32(uint16_t(uint16_t(v) << 8)); }

uint8_t f32_to_f8e5m2(float f) {
  constexpr uint32_t fp32_inf = uint32_t(255) << 23;
  constexpr uint32_t fp8_max = uint32_t(143) << 23;      // 65536.0f
  constexpr uint32_t denorm_mask = uint32_t(134) << 23;  // 2^7
  uint32_t f_bits = std::bit_cast<uint32_t>(f);
  const uint32_t sign = f_bits & 0x80000000u;
  f_bits ^= sign;
  uint8_t result;
  if (f_bits >= fp8_max) {
    result = f_bits > fp32_inf ? 0x7F : 0x7C;
  } else if (f_bits < (uint32_t(113) << 23)) {
    const float r = std::bit_cast<float>(f_bits) + std::bit_cast<float>(denorm_mask);
    result = uint8_t(std::bit_cast<uint32_t>(r) - denorm_mask);
  } else {
    const uint32_t mant_odd = (f_bits >> 21) & 1u;
    f_bits += (uint32_t(15 - 127) << 23) + 0xFFFFFu;
    f_bits += mant_odd;
    result = uint8_t(f_bits >> 21);
  }
  return uint8_t(result | (sign >> 24));
}

std::string_view torch_dtype_name(DType t) {
  switch (t) {
    case DType::F64: return "float64";
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F8_E4M3: return "float8_e4m3fn";
    case DType::F8_E5M2: return "float8_e5m2";
    default: return "";
  }
}

}  // namespace mc
