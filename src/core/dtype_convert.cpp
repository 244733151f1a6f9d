// Bulk dtype conversion. Float <-> float goes through f32 (exactly what c10 does: Half(double)
// converts via float), integer paths go through int64/double with torch's casts.
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/dtype.h"

namespace mc {
namespace {

std::atomic<bool> g_force_scalar{false};

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

void write_float(DType t, void* p, size_t i, float v) {
  switch (t) {
    case DType::F64: store_as<double>(p, i, double(v)); break;
    case DType::F32: store_as<float>(p, i, v); break;
    case DType::F16: store_as<uint16_t>(p, i, f32_to_f16(v)); break;
    case DType::BF16: store_as<uint16_t>(p, i, f32_to_bf16(v)); break;
    case DType::F8_E4M3: store_as<uint8_t>(p, i, f32_to_f8e4m3(v)); break;
    case DType::F8_E5M2: store_as<uint8_t>(p, i, f32_to_f8e5m2(v)); break;
    default: break;
  }
}

// Float -> integer: truncation toward zero as static_cast; values outside the target's range
// (UB in C++, platform-defined in torch) are saturated and NaN becomes 0, so we stay defined.
template <typename I>
I float_to_int(double v) {
  if (std::isnan(v)) return 0;
  constexpr double lo = double(std::numeric_limits<I>::min());
  constexpr double hi = double(std::numeric_limits<I>::max());
  if (v <= lo) return std::numeric_limits<I>::min();
  if (v >= hi) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}

bool is_plain(DType t) { return !is_quantized(t); }

// Read element i as double (exact for every integer type up to 2^53 and every float type).
double read_double(DType t, const void* p, size_t i) {
  switch (t) {
    case DType::F64: return load_as<double>(p, i);
    case DType::I64: return double(load_as<int64_t>(p, i));
    case DType::U64: return double(load_as<uint64_t>(p, i));
    default: return double(read_float(t, p, i));
  }
}

void convert_scalar(DType from, const void* src, DType to, void* dst, size_t n) {
  const auto& fi = dtype_info(from);
  const auto& ti = dtype_info(to);
  if (to == DType::Bool) {
    for (size_t i = 0; i < n; ++i) {
      bool nz;
      if (from == DType::I64 || from == DType::U64)
        nz = load_as<uint64_t>(src, i) != 0;
      else
        nz = read_double(from, src, i) != 0.0 || std::isnan(read_double(from, src, i));
      store_as<uint8_t>(dst, i, nz ? 1 : 0);
    }
    return;
  }
  if (ti.is_float) {
    if (to == DType::F64) {
      for (size_t i = 0; i < n; ++i) store_as<double>(dst, i, read_double(from, src, i));
      return;
    }
    if (from == DType::F64 || from == DType::I64 || from == DType::U64 || from == DType::I32 ||
        from == DType::U32) {
      // Wide sources: torch rounds once, straight to the target type for f32; for 16/8-bit
      // targets c10 goes through float first, which we reproduce.
      for (size_t i = 0; i < n; ++i) write_float(to, dst, i, float(read_double(from, src, i)));
      return;
    }
    for (size_t i = 0; i < n; ++i) write_float(to, dst, i, read_float(from, src, i));
    return;
  }
  // Integer target.
  auto put = [&](size_t i, auto conv) {
    switch (to) {
      case DType::I64: store_as<int64_t>(dst, i, conv.template operator()<int64_t>()); break;
      case DType::I32: store_as<int32_t>(dst, i, conv.template operator()<int32_t>()); break;
      case DType::I16: store_as<int16_t>(dst, i, conv.template operator()<int16_t>()); break;
      case DType::I8: store_as<int8_t>(dst, i, conv.template operator()<int8_t>()); break;
      case DType::U64: store_as<uint64_t>(dst, i, conv.template operator()<uint64_t>()); break;
      case DType::U32: store_as<uint32_t>(dst, i, conv.template operator()<uint32_t>()); break;
      case DType::U16: store_as<uint16_t>(dst, i, conv.template operator()<uint16_t>()); break;
      case DType::U8: store_as<uint8_t>(dst, i, conv.template operator()<uint8_t>()); break;
      default: break;
    }
  };
  for (size_t i = 0; i < n; ++i) {
    if (fi.is_float) {
      const double v = read_double(from, src, i);
      put(i, [&]<typename I>() { return float_to_int<I>(v); });
    } else {
      // int -> int wraps modulo 2^bits, as static_cast does.
      int64_t v;
      switch (from) {
        case DType::I64: v = load_as<int64_t>(src, i); break;
        case DType::I32: v = load_as<int32_t>(src, i); break;
        case DType::I16: v = load_as<int16_t>(src, i); break;
        case DType::I8: v = load_as<int8_t>(src, i); break;
        case DType::U64: v = int64_t(load_as<uint64_t>(src, i)); break;
        case DType::U32: v = load_as<uint32_t>(src, i); break;
        case DType::U16: v = load_as<uint16_t>(src, i); break;
        case DType::U8: v = load_as<uint8_t>(src, i); break;
        case DType::Bool: v = load_as<uint8_t>(src, i) ? 1 : 0; break;
        default: v = 0;
      }
      put(i, [&]<typename I>() { return static_cast<I>(v); });
    }
  }
}

}  // namespace

bool force_scalar_kernels(bool on) { return g_force_scalar.exchange(on); }

std::string_view cpu_kernel_name() { return "scalar"; }

void to_f32(DType from, const void* src, float* dst, size_t n) {
  if (from == DType::F32) {
    std::memcpy(dst, src, n * 4);
    return;
  }
  convert_scalar(from, src, DType::F32, dst, n);
}

void from_f32(const float* src, DType to, void* dst, size_t n) {
  if (to == DType::F32) {
    std::memcpy(dst, src, n * 4);
    return;
  }
  convert_scalar(DType::F32, src, to, dst, n);
}

Status convert(DType from, std::span<const std::byte> src, DType to, std::span<std::byte> dst) {
  if (!is_plain(from) || !is_plain(to))
    return make_error(ErrorCode::Unsupported, "convert: {} -> {} needs a quantizer, not a cast",
                      dtype_name(from), dtype_name(to));
  const size_t fs = dtype_size(from), ts = dtype_size(to);
  if (src.size() % fs != 0 || dst.size() % ts != 0 || src.size() / fs != dst.size() / ts)
    return make_error(ErrorCode::Internal, "convert: {} bytes of {} do not fit {} bytes of {}",
                      src.size(), dtype_name(from), dst.size(), dtype_name(to));
  const size_t n = src.size() / fs;
  if (from == to) {
    std::memcpy(dst.data(), src.data(), src.size());
    return {};
  }
  convert_scalar(from, src.data(), to, dst.data(), n);
  return {};
}

}  // namespace mc
