// Bulk dtype conversion with torch's Tensor.to(dtype) semantics on CPU:
//  - float <-> float goes through f32, as c10 does (Half(double) narrows to float first, so
//    f64 -> f16/bf16 rounds twice, exactly like torch);
//  - integer -> float is one rounding straight to f32 (static_cast<float>(int64_t)), then the
//    f32 -> f16/bf16/f8 rounding: torch's int64 -> f16 also passes through float;
//  - integer -> integer wraps modulo 2^bits (static_cast);
//  - x -> bool is (x != 0), so NaN is true; bool -> x is 0 or 1;
//  - float -> integer truncates toward zero. Out-of-range values (and NaN, inf) are undefined
//    behaviour in C++ and platform-dependent in torch (x86 torch gives 300.5 -> int8 44,
//    1e10 -> int32 INT32_MIN, NaN -> int64 INT64_MIN). We saturate instead: to the target's
//    min/max, NaN -> 0, so the result is the same everywhere (300.5 -> int8 127, -1.0 -> uint8 0).
// The six hot float pairs (f16/bf16 <-> f32, bf16 <-> f16) use the widest vector kernels the CPU
// has (AVX-512F, else AVX2+F16C: dtype_simd.cpp), else tight scalar loops; all give identical
// bits. No mutable state is shared between calls except the atomic cap on the kernel set, so
// convert() may run on many threads at once.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/dtype.h"
#include "core/dtype_simd.h"

namespace mc {

namespace {

std::atomic<ConvertKernels> g_cap{ConvertKernels::Avx512};

ConvertKernels widest_available() {
  static const ConvertKernels w = ConvertKernels(simd::widest());  // thread-safe one-time init
  return w;
}

ConvertKernels kernels_in_use() {
  return std::min(widest_available(), g_cap.load(std::memory_order_relaxed));
}

template <typename T>
T load_as(const void* p, size_t i) {
  T v;
  std::memcpy(&v, static_cast<const std::byte*>(p) + i * sizeof(T), sizeof(T));
  return v;
}
template <typename T>
void store_as(void* p, size_t i, T v) {
  std::memcpy(static_cast<std::byte*>(p) + i * sizeof(T), &v, sizeof(T));
}

using simd::Kernel;

// Scalar loops for the hot pairs: same functions as the generic path, without its switches.
template <typename S, typename D, auto Fn>
void scalar_loop(const std::byte* s, std::byte* d, size_t n) {
  for (size_t i = 0; i < n; ++i) store_as<D>(d, i, Fn(load_as<S>(s, i)));
}
uint16_t bf16_to_f16_bits(uint16_t b) { return f32_to_f16(bf16_to_f32(b)); }
uint16_t f16_to_bf16_bits(uint16_t h) { return f32_to_bf16(f16_to_f32(h)); }

Kernel hot_kernel(DType from, DType to, ConvertKernels set) {
  using D = DType;
  static const simd::Kernels scalar{scalar_loop<uint16_t, float, f16_to_f32>,
                                    scalar_loop<uint16_t, float, bf16_to_f32>,
                                    scalar_loop<float, uint16_t, f32_to_f16>,
                                    scalar_loop<float, uint16_t, f32_to_bf16>,
                                    scalar_loop<uint16_t, uint16_t, bf16_to_f16_bits>,
                                    scalar_loop<uint16_t, uint16_t, f16_to_bf16_bits>};
  const simd::Kernels& k = set == ConvertKernels::Avx512 ? simd::avx512()
                           : set == ConvertKernels::Avx2 ? simd::avx2()
                                                         : scalar;
  if (from == D::F16 && to == D::F32) return k.f16_to_f32;
  if (from == D::BF16 && to == D::F32) return k.bf16_to_f32;
  if (from == D::F32 && to == D::F16) return k.f32_to_f16;
  if (from == D::F32 && to == D::BF16) return k.f32_to_bf16;
  if (from == D::BF16 && to == D::F16) return k.bf16_to_f16;
  if (from == D::F16 && to == D::BF16) return k.f16_to_bf16;
  return nullptr;
}

// Element i as float: one rounding from any source (integers convert straight to float).
float read_float(DType t, const void* p, size_t i) {
  switch (t) {
    case DType::F64: return float(load_as<double>(p, i));
    case DType::F32: return load_as<float>(p, i);
    case DType::F16: return f16_to_f32(load_as<uint16_t>(p, i));
    case DType::BF16: return bf16_to_f32(load_as<uint16_t>(p, i));
    case DType::F8_E4M3: return f8e4m3_to_f32(load_as<uint8_t>(p, i));
    case DType::F8_E5M2: return f8e5m2_to_f32(load_as<uint8_t>(p, i));
    case DType::I64: return float(load_as<int64_t>(p, i));
    case DType::I32: return float(load_as<int32_t>(p, i));
    case DType::I16: return float(load_as<int16_t>(p, i));
    case DType::I8: return float(load_as<int8_t>(p, i));
    case DType::U64: return float(load_as<uint64_t>(p, i));
    case DType::U32: return float(load_as<uint32_t>(p, i));
    case DType::U16: return float(load_as<uint16_t>(p, i));
    case DType::U8: return float(load_as<uint8_t>(p, i));
    case DType::Bool: return load_as<uint8_t>(p, i) ? 1.0f : 0.0f;
    default: return 0.0f;
  }
}

// Element i as double: exact for every float type and 32-bit integer; 64-bit integers round
// once (static_cast<double>, as torch's int64 -> f64).
double read_double(DType t, const void* p, size_t i) {
  switch (t) {
    case DType::F64: return load_as<double>(p, i);
    case DType::I64: return double(load_as<int64_t>(p, i));
    case DType::U64: return double(load_as<uint64_t>(p, i));
    case DType::I32: return double(load_as<int32_t>(p, i));
    case DType::U32: return double(load_as<uint32_t>(p, i));
    default: return double(read_float(t, p, i));  // exact: 16-bit ints and floats fit a float
  }
}

void write_float(DType t, void* p, size_t i, float v) {
  switch (t) {
    case DType::F32: store_as<float>(p, i, v); break;
    case DType::F16: store_as<uint16_t>(p, i, f32_to_f16(v)); break;
    case DType::BF16: store_as<uint16_t>(p, i, f32_to_bf16(v)); break;
    case DType::F8_E4M3: store_as<uint8_t>(p, i, f32_to_f8e4m3(v)); break;
    case DType::F8_E5M2: store_as<uint8_t>(p, i, f32_to_f8e5m2(v)); break;
    default: break;
  }
}

// Integer element i with its bits widened to 64 (sign- or zero-extended), for wrapping casts.
int64_t read_int(DType t, const void* p, size_t i) {
  switch (t) {
    case DType::I64: return load_as<int64_t>(p, i);
    case DType::I32: return load_as<int32_t>(p, i);
    case DType::I16: return load_as<int16_t>(p, i);
    case DType::I8: return load_as<int8_t>(p, i);
    case DType::U64: return int64_t(load_as<uint64_t>(p, i));  // modular since C++20
    case DType::U32: return load_as<uint32_t>(p, i);
    case DType::U16: return load_as<uint16_t>(p, i);
    case DType::U8: return load_as<uint8_t>(p, i);
    case DType::Bool: return load_as<uint8_t>(p, i) ? 1 : 0;
    default: return 0;
  }
}

// Truncation toward zero, saturated outside I's range, NaN -> 0 (see the file comment).
template <typename I>
I float_to_int(double v) {
  if (std::isnan(v)) return 0;
  constexpr double lo = double(std::numeric_limits<I>::min());
  constexpr double hi = double(std::numeric_limits<I>::max());  // rounds up to 2^k for 64 bits
  if (v <= lo) return std::numeric_limits<I>::min();
  if (v >= hi) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}

template <typename I>
void put_int(void* dst, size_t i, DType from, const void* src) {
  if (dtype_info(from).is_float)
    store_as<I>(dst, i, float_to_int<I>(read_double(from, src, i)));
  else
    store_as<I>(dst, i, static_cast<I>(read_int(from, src, i)));
}

void convert_generic(DType from, const void* src, DType to, void* dst, size_t n) {
  const bool from_float = dtype_info(from).is_float;
  if (to == DType::Bool) {
    for (size_t i = 0; i < n; ++i) {
      const bool nz = from_float ? read_double(from, src, i) != 0.0  // NaN != 0 is true
                                 : read_int(from, src, i) != 0;
      store_as<uint8_t>(dst, i, nz ? 1 : 0);
    }
    return;
  }
  if (to == DType::F64) {
    for (size_t i = 0; i < n; ++i) store_as<double>(dst, i, read_double(from, src, i));
    return;
  }
  if (dtype_info(to).is_float) {
    for (size_t i = 0; i < n; ++i) write_float(to, dst, i, read_float(from, src, i));
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    switch (to) {
      case DType::I64: put_int<int64_t>(dst, i, from, src); break;
      case DType::I32: put_int<int32_t>(dst, i, from, src); break;
      case DType::I16: put_int<int16_t>(dst, i, from, src); break;
      case DType::I8: put_int<int8_t>(dst, i, from, src); break;
      case DType::U64: put_int<uint64_t>(dst, i, from, src); break;
      case DType::U32: put_int<uint32_t>(dst, i, from, src); break;
      case DType::U16: put_int<uint16_t>(dst, i, from, src); break;
      case DType::U8: put_int<uint8_t>(dst, i, from, src); break;
      default: break;
    }
  }
}

// Unchecked core: plain dtypes, n elements, no overlap.
void convert_n(DType from, const void* src, DType to, void* dst, size_t n) {
  if (n == 0) return;
  if (from == to) {
    std::memcpy(dst, src, n * dtype_size(from));
    return;
  }
  if (Kernel k = hot_kernel(from, to, kernels_in_use())) {
    k(static_cast<const std::byte*>(src), static_cast<std::byte*>(dst), n);
    return;
  }
  convert_generic(from, src, to, dst, n);
}

}  // namespace

ConvertKernels cap_convert_kernels(ConvertKernels cap) { return g_cap.exchange(cap); }

ConvertKernels convert_kernels() { return kernels_in_use(); }

std::string_view convert_kernels_name(ConvertKernels k) {
  switch (k) {
    case ConvertKernels::Scalar: return "scalar";
    case ConvertKernels::Avx2: return "avx2+f16c";
    case ConvertKernels::Avx512: return "avx512f";
  }
  return "?";
}

std::string_view cpu_kernel_name() { return convert_kernels_name(kernels_in_use()); }

void to_f32(DType from, const void* src, float* dst, size_t n) {
  convert_n(from, src, DType::F32, dst, n);
}

void from_f32(const float* src, DType to, void* dst, size_t n) {
  convert_n(DType::F32, src, to, dst, n);
}

Status convert(DType from, std::span<const std::byte> src, DType to, std::span<std::byte> dst) {
  if (from >= DType::Count || to >= DType::Count)
    return make_error(ErrorCode::InvalidArgument, "convert: dtype id {} -> {} is not a dtype",
                      int(from), int(to));
  if (is_quantized(from) || is_quantized(to))
    return make_error(ErrorCode::Unsupported, "convert: {} -> {} needs a quantizer, not a cast",
                      dtype_name(from), dtype_name(to));
  const size_t fs = dtype_size(from), ts = dtype_size(to);
  if (src.size() % fs != 0 || dst.size() % ts != 0 || src.size() / fs != dst.size() / ts)
    return make_error(ErrorCode::Internal, "convert: {} bytes of {} do not fit {} bytes of {}",
                      src.size(), dtype_name(from), dst.size(), dtype_name(to));
  convert_n(from, src.data(), to, dst.data(), src.size() / fs);
  return {};
}

}  // namespace mc
