// dtype conversions: against torch 1.13 / an independent numpy float8 model (tests/py/
// dtype_oracle.py), vector kernels against the scalar path, hand-worked values, and the table.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "core/dtype.h"
#include "testutil.h"

namespace mc {
namespace {

// Caps the kernel set for a scope and restores the previous cap, whatever happens inside it.
class KernelCap {
 public:
  explicit KernelCap(ConvertKernels cap) : prev_(cap_convert_kernels(cap)) {}
  ~KernelCap() { cap_convert_kernels(prev_); }

 private:
  ConvertKernels prev_;
};

// The vector sets this CPU runs (none, AVX2, or AVX2 and AVX-512).
std::vector<ConvertKernels> vector_sets() {
  std::vector<ConvertKernels> out;
  for (ConvertKernels k : {ConvertKernels::Avx2, ConvertKernels::Avx512}) {
    KernelCap cap(k);
    if (convert_kernels() == k) out.push_back(k);
  }
  return out;
}
// Scalar first, then every vector set.
std::vector<ConvertKernels> all_sets() {
  auto v = vector_sets();
  v.insert(v.begin(), ConvertKernels::Scalar);
  return v;
}

std::vector<std::byte> run(DType from, const std::vector<std::byte>& src, DType to,
                           ConvertKernels set) {
  KernelCap k(set);
  std::vector<std::byte> out(src.size() / dtype_size(from) * dtype_size(to));
  const Status st = convert(from, src, to, out);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().render());
  return out;
}

template <typename T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// "index i: src 0x.. -> got 0x.., want 0x.." for the first few differing elements.
std::string first_diffs(const std::vector<std::byte>& src, size_t ss, const std::vector<std::byte>& got,
                        const std::vector<std::byte>& want, size_t ds) {
  auto hex = [](const std::byte* p, size_t n) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);  // little endian
    return fmt::format("0x{:0{}x}", v, 2 * n);
  };
  std::string out;
  size_t shown = 0, total = 0;
  const size_t n = want.size() / ds;
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(got.data() + i * ds, want.data() + i * ds, ds) == 0) continue;
    ++total;
    if (shown++ < 6)
      out += fmt::format("\n  [{}] src {} -> got {}, want {}", i, hex(src.data() + i * ss, ss),
                         hex(got.data() + i * ds, ds), hex(want.data() + i * ds, ds));
  }
  return fmt::format("{} of {} elements differ:{}", total, n, out);
}

// ---- oracle records ----------------------------------------------------------------------------

struct Case {
  std::string label;
  DType from, to;
  std::vector<std::byte> src, want;
};

class OracleCases {
 public:
  static const std::vector<Case>* get() {
    static OracleCases instance;
    return instance.ok_ ? &instance.cases_ : nullptr;
  }
  static const std::string& why() { return get_why(); }

 private:
  static std::string& get_why() {
    static std::string w;
    return w;
  }
  OracleCases() {
    if (!test::have_torch()) {
      get_why() = "python3-torch not installed: torch oracle tests skipped";
      return;
    }
    test::TempDir dir;
    std::string out;
    const int rc = test::run_python("dtype_oracle.py " + dir.path().string(), &out);
    if (rc != 0) {
      get_why() = "dtype_oracle.py failed (rc " + std::to_string(rc) + "):\n" + out;
      ADD_FAILURE() << get_why();
      return;
    }
    std::ifstream f(dir / "cases.bin", std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(f)), {});
    size_t pos = 0;
    auto take = [&](void* dst, size_t n) {
      if (raw.size() - pos < n) throw std::runtime_error("cases.bin truncated");
      std::memcpy(dst, raw.data() + pos, n);
      pos += n;
    };
    auto take_str = [&](size_t n) {
      std::string s(n, '\0');
      take(s.data(), n);
      return s;
    };
    try {
      char magic[4];
      uint32_t version, count;
      take(magic, 4);
      take(&version, 4);
      take(&count, 4);
      if (std::memcmp(magic, "MCDT", 4) != 0 || version != 1) throw std::runtime_error("bad header");
      for (uint32_t r = 0; r < count; ++r) {
        Case c;
        uint16_t ll;
        uint8_t fl, tl;
        uint64_t n;
        take(&ll, 2);
        c.label = take_str(ll);
        take(&fl, 1);
        const auto from = dtype_from_name(take_str(fl));
        take(&tl, 1);
        const auto to = dtype_from_name(take_str(tl));
        take(&n, 8);
        if (!from || !to) throw std::runtime_error("unknown dtype in record " + c.label);
        c.from = *from;
        c.to = *to;
        c.src.resize(n * dtype_size(c.from));
        c.want.resize(n * dtype_size(c.to));
        take(c.src.data(), c.src.size());
        take(c.want.data(), c.want.size());
        cases_.push_back(std::move(c));
      }
    } catch (const std::exception& e) {
      get_why() = std::string("cases.bin: ") + e.what();
      ADD_FAILURE() << get_why();
      return;
    }
    ok_ = true;
  }
  std::vector<Case> cases_;
  bool ok_ = false;
};

enum class Kind { Float, Float8, IntOrBool };
Kind kind_of(const Case& c) {
  auto f8 = [](DType t) { return t == DType::F8_E4M3 || t == DType::F8_E5M2; };
  if (f8(c.from) || f8(c.to)) return Kind::Float8;
  if (dtype_info(c.from).is_float && dtype_info(c.to).is_float) return Kind::Float;
  return Kind::IntOrBool;
}

// Checks every record of one kind on both kernel sets; returns how many there were.
size_t check_cases(Kind kind) {
  const auto* cases = OracleCases::get();
  if (!cases) return 0;
  size_t checked = 0;
  for (const auto& c : *cases) {
    if (kind_of(c) != kind) continue;
    ++checked;
    for (ConvertKernels set : all_sets()) {
      const auto got = run(c.from, c.src, c.to, set);
      EXPECT_TRUE(got == c.want) << c.label << " (" << convert_kernels_name(set) << "): "
                                 << first_diffs(c.src, dtype_size(c.from), got, c.want,
                                                dtype_size(c.to));
    }
  }
  return checked;
}

#define MC_SKIP_UNLESS_ORACLE()                                    \
  do {                                                             \
    if (!OracleCases::get()) GTEST_SKIP() << OracleCases::why();  \
  } while (0)

// One test, so ctest (a process per test) runs the oracle script once. Failures name the record.
TEST(DTypeOracle, MatchesTorchAndFloat8Model) {
  MC_SKIP_UNLESS_ORACLE();
  // f16/bf16 <-> f32/f64 on all 2^16 patterns, f32 -> f16/bf16 on ~1.4M f32 patterns covering
  // every exponent and every rounding position, f64 -> f32/f16/bf16 (double rounding via f32).
  EXPECT_EQ(check_cases(Kind::Float), 12u);
  // f8 <-> f32: all 256 codes decoded; ~300k f32 values, code midpoints +-1 ulp, encoded.
  EXPECT_EQ(check_cases(Kind::Float8), 4u);
  // int <-> int (wrap), int -> float, bool, float -> bool, float -> int in range.
  EXPECT_GE(check_cases(Kind::IntOrBool), 70u);
}

// ---- hand-worked values --------------------------------------------------------------------------

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t b) { return std::bit_cast<float>(b); }

TEST(DTypeScalar, HalfEdges) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.99f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // tie between 65504 (odd) and 2^16: to inf
  EXPECT_EQ(f32_to_f16(-1e9f), 0xFC00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);   // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);   // tie to even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);   // tie to even (2)
  EXPECT_EQ(f32_to_f16(from_bits(0x3F801000)), 0x3C00);  // 1 + 2^-11: tie, stays 1.0
  EXPECT_EQ(f32_to_f16(from_bits(0x3F803000)), 0x3C02);  // 1 + 3*2^-11: tie, up to even
  EXPECT_EQ(bits(f16_to_f32(0x0001)), bits(std::ldexp(1.0f, -24)));
  EXPECT_EQ(bits(f16_to_f32(0xFBFF)), bits(-65504.0f));
  // NaN, as c10: payload dropped, sign kept on the way down; quieted on the way up.
  EXPECT_EQ(f32_to_f16(from_bits(0x7FA12345)), 0x7E00);
  EXPECT_EQ(f32_to_f16(from_bits(0xFF800001)), 0xFE00);
  EXPECT_EQ(bits(f16_to_f32(0x7C01)), 0x7FC02000u);
  EXPECT_EQ(bits(f16_to_f32(0xFE00)), 0xFFC00000u);
  EXPECT_EQ(bits(f16_to_f32(0x7C00)), 0x7F800000u);
}

TEST(DTypeScalar, BFloat16Edges) {
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808001)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F7F8000)), 0x7F80);  // rounds past max to inf
  EXPECT_EQ(f32_to_bf16(from_bits(0x00000001)), 0x0000);  // f32 subnormal rounds to 0
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000)), 0x0000);  // tie to even
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);
  // c10 maps every NaN to 0x7FC0 (sign and payload dropped).
  EXPECT_EQ(f32_to_bf16(from_bits(0xFFC00000)), 0x7FC0);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F800001)), 0x7FC0);
  EXPECT_EQ(bits(bf16_to_f32(0xFF81)), 0xFF810000u);  // widening keeps the bits
}

TEST(DTypeScalar, Float8E4M3Edges) {
  EXPECT_EQ(f32_to_f8e4m3(448.0f), 0x7E);
  EXPECT_EQ(f32_to_f8e4m3(464.0f), 0x7E);  // tie between 448 (even code) and "480"
  EXPECT_EQ(f32_to_f8e4m3(465.0f), 0x7F);  // rounds past 448: NaN, no saturation (c10)
  EXPECT_EQ(f32_to_f8e4m3(480.0f), 0x7F);
  EXPECT_EQ(f32_to_f8e4m3(-480.0f), 0xFF);
  EXPECT_EQ(f32_to_f8e4m3(INFINITY), 0x7F);
  EXPECT_EQ(f32_to_f8e4m3(NAN), 0x7F);
  EXPECT_EQ(f32_to_f8e4m3(std::ldexp(1.0f, -9)), 0x01);   // smallest subnormal
  EXPECT_EQ(f32_to_f8e4m3(std::ldexp(1.0f, -10)), 0x00);  // tie to even
  EXPECT_EQ(f32_to_f8e4m3(std::ldexp(3.0f, -10)), 0x02);  // 1.5 * 2^-9: tie to even
  EXPECT_EQ(f32_to_f8e4m3(-std::ldexp(1.0f, -11)), 0x80); // underflow keeps the sign
  EXPECT_EQ(f32_to_f8e4m3(1.0f), 0x38);
  EXPECT_EQ(f32_to_f8e4m3(1.0625f), 0x38);  // 1 + 1/16: tie, even mantissa
  EXPECT_EQ(f32_to_f8e4m3(1.1875f), 0x3A);  // 1 + 3/16: tie, up to even
  EXPECT_EQ(f8e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(f8e4m3_to_f32(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(bits(f8e4m3_to_f32(0x7F)), 0x7FF00000u);
  EXPECT_EQ(bits(f8e4m3_to_f32(0xFF)), 0xFFF00000u);
  EXPECT_EQ(bits(f8e4m3_to_f32(0x80)), 0x80000000u);
}

TEST(DTypeScalar, Float8E5M2Edges) {
  EXPECT_EQ(f32_to_f8e5m2(57344.0f), 0x7B);
  EXPECT_EQ(f32_to_f8e5m2(61439.0f), 0x7B);
  EXPECT_EQ(f32_to_f8e5m2(61440.0f), 0x7C);  // tie between max (odd) and inf
  EXPECT_EQ(f32_to_f8e5m2(-INFINITY), 0xFC);
  EXPECT_EQ(f32_to_f8e5m2(NAN), 0x7F);
  EXPECT_EQ(f32_to_f8e5m2(-NAN), 0xFF);
  EXPECT_EQ(f32_to_f8e5m2(std::ldexp(1.0f, -16)), 0x01);
  EXPECT_EQ(f32_to_f8e5m2(std::ldexp(1.0f, -17)), 0x00);
  EXPECT_EQ(f32_to_f8e5m2(1.125f), 0x3C);  // 1 + 1/8: tie, even
  EXPECT_EQ(f32_to_f8e5m2(1.375f), 0x3E);  // 1 + 3/8: tie, up to even
  EXPECT_EQ(f8e5m2_to_f32(0x7B), 57344.0f);
  EXPECT_EQ(bits(f8e5m2_to_f32(0x7C)), 0x7F800000u);
  EXPECT_EQ(bits(f8e5m2_to_f32(0x7D)), 0x7FE00000u);  // quieted like f16 0x7D00
}

// ---- bulk conversion rules -----------------------------------------------------------------------

template <typename T, typename S>
std::vector<T> convert_vec(DType from, const std::vector<S>& src, DType to) {
  std::vector<T> out(src.size());
  const Status st = convert(from, std::as_bytes(std::span(src)), to,
                            std::as_writable_bytes(std::span(out)));
  EXPECT_TRUE(st.ok());
  return out;
}

TEST(DTypeConvert, FloatToIntTruncatesAndSaturates) {
  const std::vector<float> v{2.9f, -2.9f, 300.5f, -300.5f, NAN, INFINITY, -INFINITY, 1e30f};
  EXPECT_EQ(convert_vec<int8_t>(DType::F32, v, DType::I8),
            (std::vector<int8_t>{2, -2, 127, -128, 0, 127, -128, 127}));
  EXPECT_EQ(convert_vec<uint8_t>(DType::F32, v, DType::U8),
            (std::vector<uint8_t>{2, 0, 255, 0, 0, 255, 0, 255}));
  const auto i64 = convert_vec<int64_t>(DType::F32, v, DType::I64);
  EXPECT_EQ(i64[2], 300);
  EXPECT_EQ(i64[5], std::numeric_limits<int64_t>::max());
  EXPECT_EQ(i64[6], std::numeric_limits<int64_t>::min());
  const std::vector<double> d{9223372036854775807.0, -9223372036854775808.0, 4294967295.9};
  EXPECT_EQ(convert_vec<int64_t>(DType::F64, d, DType::I64),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::min(), 4294967295}));
  EXPECT_EQ(convert_vec<uint32_t>(DType::F64, d, DType::U32),
            (std::vector<uint32_t>{0xFFFFFFFFu, 0, 0xFFFFFFFFu}));
}

TEST(DTypeConvert, IntegersWrapAndRoundOnce) {
  const std::vector<int64_t> v{300, -1, 65536 + 7, (int64_t(1) << 60) + (int64_t(1) << 36) + 1};
  EXPECT_EQ(convert_vec<int8_t>(DType::I64, v, DType::I8)[0], 44);
  EXPECT_EQ(convert_vec<uint16_t>(DType::I64, v, DType::U16),
            (std::vector<uint16_t>{300, 0xFFFF, 7, 1}));
  // int64 -> f32 is one rounding (0x5D800001); via double it would tie down to 0x5D800000.
  EXPECT_EQ(bits(convert_vec<float>(DType::I64, v, DType::F32)[3]), 0x5D800001u);
  EXPECT_EQ(convert_vec<uint8_t>(DType::I64, v, DType::Bool), (std::vector<uint8_t>{1, 1, 1, 1}));
  const std::vector<uint8_t> b{0, 1, 2};
  EXPECT_EQ(convert_vec<float>(DType::Bool, b, DType::F32), (std::vector<float>{0, 1, 1}));
}

TEST(DTypeConvert, RejectsQuantizedAndSizeMismatch) {
  std::vector<std::byte> src(64), dst(64);
  auto st = convert(DType::F32, src, DType::Q4_0, dst);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Unsupported);
  EXPECT_NE(st.error().message.find("f32 -> q4_0"), std::string::npos) << st.error().message;
  st = convert(DType::F32, std::span(src).first(16), DType::F16, std::span(dst).first(10));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Internal);
  EXPECT_NE(st.error().message.find("16 bytes of f32 do not fit 10 bytes of f16"),
            std::string::npos)
      << st.error().message;
  EXPECT_TRUE(convert(DType::F16, {}, DType::F32, {}).ok());
}

// ---- vector kernels == scalar path ---------------------------------------------------------------

TEST(DTypeKernels, CapSwitchesKernelName) {
  {
    KernelCap k(ConvertKernels::Scalar);
    EXPECT_EQ(cpu_kernel_name(), "scalar");
    EXPECT_EQ(convert_kernels(), ConvertKernels::Scalar);
  }
  for (ConvertKernels set : vector_sets()) {
    KernelCap k(set);
    EXPECT_EQ(cpu_kernel_name(), convert_kernels_name(set));
  }
  const auto name = cpu_kernel_name();
  EXPECT_TRUE(name == "scalar" || name == "avx2+f16c" || name == "avx512f") << name;
  // Uncapped, the widest set the CPU has.
  const auto sets = vector_sets();
  EXPECT_EQ(convert_kernels(), sets.empty() ? ConvertKernels::Scalar : sets.back());
}

TEST(DTypeKernels, AllSixteenBitPatternsVectorEqualsScalar) {
  const auto sets = vector_sets();
  if (sets.empty()) GTEST_SKIP() << "CPU has no AVX2+F16C: only the scalar path exists";
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = uint16_t(i);
  const auto src = bytes_of(all);
  for (ConvertKernels set : sets) {
    const char* name = convert_kernels_name(set).data();
    for (auto [from, to] : {std::pair{DType::F16, DType::F32}, {DType::BF16, DType::F32},
                            {DType::F16, DType::BF16}, {DType::BF16, DType::F16}}) {
      const auto s = run(from, src, to, ConvertKernels::Scalar), v = run(from, src, to, set);
      EXPECT_TRUE(s == v) << name << " " << dtype_name(from) << "->" << dtype_name(to) << ": "
                          << first_diffs(src, 2, v, s, dtype_size(to));
    }
    // And back: every f32 that an f16/bf16 widens to narrows again identically on both paths.
    for (DType t : {DType::F16, DType::BF16}) {
      const auto wide = run(t, src, DType::F32, ConvertKernels::Scalar);
      for (DType back : {DType::F16, DType::BF16}) {
        const auto s = run(DType::F32, wide, back, ConvertKernels::Scalar), v = run(DType::F32, wide, back, set);
        EXPECT_TRUE(s == v) << name << " f32->" << dtype_name(back) << ": " << first_diffs(wide, 4, v, s, 2);
      }
    }
  }
}

std::vector<uint32_t> random_and_edge_f32(size_t n) {
  std::mt19937 rng(1234);
  std::vector<uint32_t> v;
  const uint32_t edges[] = {0x7F800001, 0x7FC00000, 0xFFFFFFFF, 0x7FA12345, 0x7F800000,
                            0xFF800000, 0x7F7FFFFF, 0x477FF000, 0x477FEFFF, 0x3F801000,
                            0x3F808000, 0x00000001, 0x80000000, 0x38800000, 0x387FFFFF,
                            0x33000000, 0x33000001, 0x7F7F8000, 0xFF7F7FFF};
  for (uint32_t e : edges) v.push_back(e);
  while (v.size() < n) {
    uint32_t x = rng();
    if (v.size() % 3 == 0) x = (x & 0x8FFFFFFFu) | 0x30000000u;  // bias toward the f16 range
    if (v.size() % 7 == 0) x = (x & 0xFFFF0000u) | 0x8000u;        // bf16 ties
    if (v.size() % 11 == 0) x = (x & 0xFFFFE000u) | 0x1000u;       // f16 ties
    v.push_back(x);
  }
  return v;
}

TEST(DTypeKernels, RandomF32VectorEqualsScalarAtEveryLengthAndOffset) {
  const auto sets = vector_sets();
  if (sets.empty()) GTEST_SKIP() << "CPU has no AVX2+F16C: only the scalar path exists";
  const auto data = random_and_edge_f32(1 << 18);
  const auto src = bytes_of(data);
  for (ConvertKernels set : sets) {
  for (DType to : {DType::F16, DType::BF16}) {
    const auto s = run(DType::F32, src, to, ConvertKernels::Scalar), v = run(DType::F32, src, to, set);
    EXPECT_TRUE(s == v) << convert_kernels_name(set) << " f32->" << dtype_name(to) << ": "
                        << first_diffs(src, 4, v, s, 2);
  }
  // Lengths 0..40 (every tail, both sets' steps of 8, 16 and 32 elements) at byte offsets 0..3
  // (unaligned source and target).
  std::vector<std::byte> in(41 * 4 + 8), out_s(41 * 4 + 8), out_v(41 * 4 + 8);
  for (auto [from, to] : {std::pair{DType::F32, DType::F16}, {DType::F32, DType::BF16},
                          {DType::F16, DType::F32}, {DType::BF16, DType::F32},
                          {DType::BF16, DType::F16}, {DType::F16, DType::BF16}}) {
    for (size_t off = 0; off < 4; ++off) {
      for (size_t n = 0; n <= 40; ++n) {
        std::memcpy(in.data() + off, src.data() + 4 * 64 * off, n * dtype_size(from));
        std::fill(out_s.begin(), out_s.end(), std::byte{0xAB});
        std::fill(out_v.begin(), out_v.end(), std::byte{0xAB});
        auto sin = std::span<const std::byte>(in).subspan(off, n * dtype_size(from));
        {
          KernelCap k(ConvertKernels::Scalar);
          ASSERT_TRUE(convert(from, sin, to, std::span(out_s).subspan(off, n * dtype_size(to))));
        }
        {
          KernelCap k(set);
          ASSERT_TRUE(convert(from, sin, to, std::span(out_v).subspan(off, n * dtype_size(to))));
        }
        // Equal, and nothing written past the n elements (guard bytes intact).
        ASSERT_TRUE(out_s == out_v) << convert_kernels_name(set) << " " << dtype_name(from) << "->"
                                    << dtype_name(to) << " n=" << n << " off=" << off;
        EXPECT_EQ(out_v[off + n * dtype_size(to)], std::byte{0xAB});
      }
    }
  }
  }
}

TEST(DTypeKernels, ToFromF32UseTheSameKernels) {
  const auto data = random_and_edge_f32(1001);
  std::vector<float> f(data.size());
  std::memcpy(f.data(), data.data(), data.size() * 4);
  for (DType t : {DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2, DType::F32}) {
    std::vector<std::byte> a(f.size() * dtype_size(t)), b(a.size());
    from_f32(f.data(), t, a.data(), f.size());
    ASSERT_TRUE(convert(DType::F32, std::as_bytes(std::span(f)), t, b).ok());
    EXPECT_TRUE(a == b) << dtype_name(t);
    std::vector<float> ra(f.size()), rb(f.size());
    to_f32(t, a.data(), ra.data(), f.size());
    ASSERT_TRUE(convert(t, a, DType::F32, std::as_writable_bytes(std::span(rb))).ok());
    EXPECT_EQ(std::memcmp(ra.data(), rb.data(), ra.size() * 4), 0) << dtype_name(t);
  }
}

TEST(DTypeKernels, ConcurrentConvertsAgree) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = uint16_t(i);
  const auto src = bytes_of(all);
  const auto want = run(DType::BF16, src, DType::F16, ConvertKernels::Scalar);
  std::vector<std::vector<std::byte>> got(4, std::vector<std::byte>(want.size()));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 8; ++rep)
        if (!convert(DType::BF16, src, DType::F16, got[t]).ok()) return;
    });
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_TRUE(g == want);
}

// ---- table ---------------------------------------------------------------------------------------

TEST(DTypeTable, NamesAndAliases) {
  EXPECT_EQ(dtype_from_name("f16"), DType::F16);
  EXPECT_EQ(dtype_from_name("FP16"), DType::F16);
  EXPECT_EQ(dtype_from_name("float16"), DType::F16);
  EXPECT_EQ(dtype_from_name("half"), DType::F16);
  EXPECT_EQ(dtype_from_name("bfloat16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("BF16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("float"), DType::F32);
  EXPECT_EQ(dtype_from_name("double"), DType::F64);
  EXPECT_EQ(dtype_from_name("float8_e4m3fn"), DType::F8_E4M3);
  EXPECT_EQ(dtype_from_name("float8_e5m2"), DType::F8_E5M2);
  EXPECT_EQ(dtype_from_name("int64"), DType::I64);
  EXPECT_EQ(dtype_from_name("uint8"), DType::U8);
  EXPECT_EQ(dtype_from_name("q4_k"), DType::Q4_K);
  EXPECT_EQ(dtype_from_name("Q8_0"), DType::Q8_0);
  EXPECT_EQ(dtype_from_name("f17"), std::nullopt);
  EXPECT_EQ(dtype_from_name(""), std::nullopt);
  EXPECT_EQ(dtype_from_st_name("BF16"), DType::BF16);
  EXPECT_EQ(dtype_from_st_name("bf16"), std::nullopt);  // safetensors strings are exact
  EXPECT_EQ(dtype_from_st_name("F8_E4M3"), DType::F8_E4M3);
  EXPECT_EQ(dtype_from_ggml(1), DType::F16);
  EXPECT_EQ(dtype_from_ggml(12), DType::Q4_K);
  EXPECT_EQ(dtype_from_ggml(30), DType::BF16);
  EXPECT_EQ(dtype_from_ggml(-1), std::nullopt);
  EXPECT_EQ(dtype_from_ggml(999), std::nullopt);
  for (size_t i = 0; i < size_t(DType::Count); ++i) {
    const DType t = DType(i);
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t) << dtype_name(t);
  }
}

TEST(DTypeTable, NbytesForBlockTypes) {
  EXPECT_EQ(*dtype_nbytes(DType::Q4_0, 64), 36u);
  EXPECT_EQ(*dtype_nbytes(DType::Q8_0, 32), 34u);
  EXPECT_EQ(*dtype_nbytes(DType::Q4_K, 512), 288u);
  EXPECT_EQ(*dtype_nbytes(DType::Q6_K, 256), 210u);
  EXPECT_EQ(*dtype_nbytes(DType::Q2_K, 0), 0u);
  EXPECT_EQ(*dtype_nbytes(DType::BF16, 7), 14u);
  auto r = dtype_nbytes(DType::Q4_0, 33);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Mismatch);
  EXPECT_NE(r.error().message.find("33 elements is not a multiple of the q4_0 block size 32"),
            std::string::npos)
      << r.error().message;
  r = dtype_nbytes(DType::F64, uint64_t(1) << 62);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::LimitExceeded);
  EXPECT_TRUE(dtype_nbytes(DType::F32, (uint64_t(1) << 62) - 1).ok());
  EXPECT_TRUE(is_quantized(DType::Q5_1));
  EXPECT_FALSE(is_quantized(DType::Bool));
}

}  // namespace
}  // namespace mc
