// Test inputs shared by the quant tests: the deterministic tensor the reference files in
// testdata/ were made from (testdata/README.md gives the same formula), and file helpers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "quant/ggml.h"
#include "testutil.h"

namespace mc::quant::test {

inline constexpr int kRefRows = 12;
inline constexpr int kRefRowLen = 256;

// 64-bit LCG (Knuth's MMIX constants), seed 12345; u = top 24 bits / 2^24, s = 2u - 1.
// Row r, element j takes the (r*256 + j)-th draw. Rows: 0 s, 1 s*0.02, 2 s*37.5, 3 (2s)^3,
// 4 s*0.5+0.3, 5 s*0.001, 6 zeros, 7 s*0.1 with x[37]=1000 and x[200]=-3.5, 8 -(2u)-0.001,
// 9 s*1e-6 (f16 subnormal range), 10 constant 0.75, 11 s*2^((j%16)-8).
inline std::vector<float> reference_input() {
  std::vector<float> x(size_t(kRefRows) * kRefRowLen);
  uint64_t st = 12345;
  for (int r = 0; r < kRefRows; ++r) {
    for (int j = 0; j < kRefRowLen; ++j) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      const float u = float(uint32_t(st >> 40)) / 16777216.0f;
      const float s = u * 2.0f - 1.0f;
      float v;
      switch (r) {
        case 0: v = s; break;
        case 1: v = s * 0.02f; break;
        case 2: v = s * 37.5f; break;
        case 3: { const float t = s * 2.0f; v = t * t * t; } break;
        case 4: v = s * 0.5f + 0.3f; break;
        case 5: v = s * 0.001f; break;
        case 6: v = 0.0f; break;
        case 7: v = j == 37 ? 1000.0f : j == 200 ? -3.5f : s * 0.1f; break;
        case 8: v = -(u * 2.0f) - 0.001f; break;
        case 9: v = s * 1e-6f; break;
        case 10: v = 0.75f; break;
        default: v = std::ldexp(s, (j % 16) - 8); break;
      }
      x[size_t(r) * kRefRowLen + size_t(j)] = v;
    }
  }
  return x;
}

// A larger input checked by hash only (testdata/README.md): 2048 rows of 256, LCG seed 777, same
// draw order. Row r by r%4: 0 s*2^((r%29)-14); 1 (s^3 + s/4)*2^((r%13)-6); 2 s*2^-4 with
// s*2^6 wherever j%61 == r%61; 3 (floor(17u)-8)/4, a grid with exact rounding ties.
inline constexpr int kBulkRows = 2048;
inline std::vector<float> bulk_input() {
  std::vector<float> x(size_t(kBulkRows) * kRefRowLen);
  uint64_t st = 777;
  for (int r = 0; r < kBulkRows; ++r) {
    for (int j = 0; j < kRefRowLen; ++j) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      const float u = float(uint32_t(st >> 40)) / 16777216.0f;
      const float s = u * 2.0f - 1.0f;
      float v;
      switch (r % 4) {
        case 0: v = std::ldexp(s, (r % 29) - 14); break;
        case 1: v = std::ldexp(s * s * s + 0.25f * s, (r % 13) - 6); break;
        case 2: v = (j % 61 == r % 61) ? std::ldexp(s, 6) : std::ldexp(s, -4); break;
        default: v = (std::floor(u * 17.0f) - 8.0f) * 0.25f; break;
      }
      x[size_t(r) * kRefRowLen + size_t(j)] = v;
    }
  }
  return x;
}

inline uint64_t fnv1a64(const void* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}

inline std::string testdata_path(const std::string& name) {
  return (mc::test::repo_root() / "src" / "quant" / "testdata" / name).string();
}

// Whole file, or an empty vector when it cannot be read.
inline std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  if (!c.empty()) std::memcpy(out.data(), c.data(), c.size());
  return out;
}

// Every k-quant kernel set this machine can run (scalar first), for tests that must hold on each.
inline std::vector<KernelIsa> available_isas() {
  std::vector<KernelIsa> out;
  for (KernelIsa i : {KernelIsa::Scalar, KernelIsa::Avx2, KernelIsa::Avx512})
    if (kernel_isa_available(i)) out.push_back(i);
  return out;
}

// Uses `isa` until the end of the scope, then the previous choice again.
class IsaScope {
 public:
  explicit IsaScope(KernelIsa isa) : prev_(kernel_isa()) { ok_ = set_kernel_isa(isa).ok(); }
  ~IsaScope() { (void)set_kernel_isa(prev_); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;
  bool ok() const { return ok_; }

 private:
  KernelIsa prev_;
  bool ok_ = false;
};

}  // namespace mc::quant::test
