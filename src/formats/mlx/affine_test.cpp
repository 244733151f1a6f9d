// MLX affine quantizer: hand-worked packing and quantization values, MLX's error bounds, and a
// byte-for-byte comparison with the independent numpy model (tests/py/mlx_oracle.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "formats/mlx/affine.h"
#include "formats/mlx/mlx.h"
#include "testutil.h"

namespace mc::mlx {
namespace {

std::vector<uint32_t> pack_vec(const std::vector<uint8_t>& q, int bits) {
  std::vector<uint32_t> out(q.size() * size_t(bits) / 32, 0xDEADBEEF);
  pack(q.data(), int64_t(q.size()), bits, out.data());
  return out;
}

void expect_round_trip(const std::vector<uint8_t>& q, int bits) {
  const auto words = pack_vec(q, bits);
  std::vector<uint8_t> back(q.size());
  unpack(words.data(), int64_t(q.size()), bits, back.data());
  EXPECT_EQ(back, q) << bits << " bits";
}

std::vector<uint8_t> repeat(std::vector<uint8_t> pattern, size_t n) {
  std::vector<uint8_t> v;
  while (v.size() < n) v.insert(v.end(), pattern.begin(), pattern.end());
  v.resize(n);
  return v;
}

// Values worked out by hand: value i sits at bits [i*bits, (i+1)*bits) of the little-endian
// stream; for 3/5/6 bits MLX's byte packs (8 values in 3 bytes, 8 in 5, 4 in 3) give the same.
TEST(MlxPack, TwoBits) {
  const auto q = repeat({0, 1, 2, 3}, 16);  // 0 | 1<<2 | 2<<4 | 3<<6 = 0xE4 per byte
  EXPECT_EQ(pack_vec(q, 2), (std::vector<uint32_t>{0xE4E4E4E4}));
  expect_round_trip(q, 2);
}

TEST(MlxPack, FourBits) {
  std::vector<uint8_t> q(16);
  for (int i = 0; i < 16; ++i) q[size_t(i)] = uint8_t(i);
  EXPECT_EQ(pack_vec(q, 4), (std::vector<uint32_t>{0x76543210, 0xFEDCBA98}));
  expect_round_trip(q, 4);
}

TEST(MlxPack, EightBits) {
  EXPECT_EQ(pack_vec({1, 2, 3, 4, 0xFF, 0, 0x80, 0x7F}, 8), (std::vector<uint32_t>{0x04030201, 0x7F8000FF}));
  expect_round_trip({1, 2, 3, 4, 0xFF, 0, 0x80, 0x7F}, 8);
}

TEST(MlxPack, ThreeBitsStraddleWords) {
  // 0..7 in 24 bits = 0xFAC688 (bytes 88 C6 FA), repeated: 88 C6 FA 88 | C6 FA 88 C6 | FA 88 C6 FA.
  // Value 10 (bits 30..32) is split between word 0 and word 1.
  const auto q = repeat({0, 1, 2, 3, 4, 5, 6, 7}, 32);
  EXPECT_EQ(pack_vec(q, 3), (std::vector<uint32_t>{0x88FAC688, 0xC688FAC6, 0xFAC688FA}));
  expect_round_trip(q, 3);
}

TEST(MlxPack, FiveBitsStraddleWords) {
  // 31,0,31,0,... : 40-bit pack 0x07C1F07C1F (bytes 1F 7C F0 C1 07), repeated four times.
  const auto q = repeat({31, 0}, 32);
  EXPECT_EQ(pack_vec(q, 5), (std::vector<uint32_t>{0xC1F07C1F, 0xF07C1F07, 0x7C1F07C1, 0x1F07C1F0, 0x07C1F07C}));
  expect_round_trip(q, 5);
}

TEST(MlxPack, SixBitsStraddleWords) {
  // 1,2,3,4 in 24 bits = 0x103081 (bytes 81 30 10), repeated: value 5 (bits 30..35) straddles.
  const auto q = repeat({1, 2, 3, 4}, 16);
  EXPECT_EQ(pack_vec(q, 6), (std::vector<uint32_t>{0x81103081, 0x30811030, 0x10308110}));
  expect_round_trip(q, 6);
}

TEST(MlxPack, RandomRoundTripEveryWidth) {
  std::mt19937 rng(5);
  for (int bits : kSupportedBits) {
    std::vector<uint8_t> q(256);
    for (auto& v : q) v = uint8_t(rng() & ((1u << bits) - 1));
    expect_round_trip(q, bits);
  }
}

// Worked by hand: w = 0..15 (twice). wmin = 0, wmax = 15: |wmin| <= |wmax| so edge = 15 and
// scale = -(15/15) = -1; q0 = rint(15 / -1) = -15, scale = 15 / -15 = -1, bias = 15;
// q = rint((w - 15) / -1) = 15 - w.
TEST(MlxQuantize, HandWorkedPositiveEdgeGivesNegativeScale) {
  std::vector<float> w(32);
  for (int i = 0; i < 32; ++i) w[size_t(i)] = float(i % 16);
  std::vector<uint32_t> packed(4);
  float s, b;
  std::vector<uint8_t> scratch(32);
  quantize_row(w.data(), 32, 4, 32, packed.data(), &s, &b, scratch.data());
  EXPECT_EQ(s, -1.0f);
  EXPECT_EQ(b, 15.0f);
  EXPECT_EQ(packed, (std::vector<uint32_t>{0x89ABCDEF, 0x01234567, 0x89ABCDEF, 0x01234567}));
  // The mirror image: edge = wmin = -15, scale = +1, bias = -15, q = w + 15: the same bytes.
  for (auto& v : w) v = -v;
  quantize_row(w.data(), 32, 4, 32, packed.data(), &s, &b, scratch.data());
  EXPECT_EQ(s, 1.0f);
  EXPECT_EQ(b, -15.0f);
  EXPECT_EQ(packed, (std::vector<uint32_t>{0x89ABCDEF, 0x01234567, 0x89ABCDEF, 0x01234567}));
}

// Ties round half to even: 2 bits, w = [0, 0.5, 1.5, 2.5, 3, 3, ...]: scale -1, bias 3,
// (w - 3) / -1 = 3, 2.5, 1.5, 0.5, 0 -> q = 3, 2, 2, 0, 0 (half away from zero would give 3, 3, 2, 1).
TEST(MlxQuantize, TiesRoundHalfToEven) {
  std::vector<float> w(32, 3.0f);
  w[0] = 0.0f, w[1] = 0.5f, w[2] = 1.5f, w[3] = 2.5f;
  std::vector<uint32_t> packed(2);
  float s, b;
  std::vector<uint8_t> scratch(32);
  quantize_row(w.data(), 32, 2, 32, packed.data(), &s, &b, scratch.data());
  EXPECT_EQ(s, -1.0f);
  EXPECT_EQ(b, 3.0f);
  EXPECT_EQ(packed, (std::vector<uint32_t>{0x2B, 0}));  // 3 | 2<<2 | 2<<4
}

// A constant group: range 0 -> scale = -1e-7, q0 = rint(0.3 / -1e-7) != 0 -> bias = 0.3, all q = 0.
TEST(MlxQuantize, ConstantGroupIsExact) {
  std::vector<float> w(64, 0.3f);
  std::vector<uint32_t> packed(16);
  std::vector<float> s(1), b(1), back(64);
  std::vector<uint8_t> scratch(64);
  quantize_row(w.data(), 64, 8, 64, packed.data(), s.data(), b.data(), scratch.data());
  EXPECT_EQ(b[0], 0.3f);
  for (uint32_t v : packed) EXPECT_EQ(v, 0u);
  dequantize_row(packed.data(), s.data(), b.data(), 64, 8, 64, back.data(), scratch.data());
  for (float v : back) EXPECT_EQ(v, 0.3f);
}

// MLX's own tests: |w - dequant| <= |scale|/2 where the value rounds inside the range, up to
// |scale| at the clipped far end; the group's edge (largest magnitude) is exact; 0.0 gets the
// integer code -q0, whose dequantized value is 0 up to the rounding of scale = edge/q0.
TEST(MlxQuantize, ErrorBoundsEdgeAndZero) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int bits : kSupportedBits)
    for (int group : kSupportedGroups) {
      SCOPED_TRACE(testing::Message() << bits << " bits, group " << group);
      const int64_t cols = 4 * group;
      for (int rep = 0; rep < 8; ++rep) {
        const float mag = std::pow(10.0f, float(rep % 4) - 2.0f);
        std::vector<float> w(static_cast<size_t>(cols)), back(static_cast<size_t>(cols));
        for (auto& v : w) v = nd(rng) * mag;
        if (rep % 2) for (auto& v : w) v = std::abs(v) * (rep % 4 == 1 ? -1.0f : 1.0f);
        for (int64_t g = 0; g < cols; g += group) w[size_t(g + 3)] = 0.0f;
        std::vector<uint32_t> packed(size_t(packed_words(cols, bits)));
        std::vector<float> s(size_t(cols / group)), b(size_t(cols / group));
        std::vector<uint8_t> scratch(static_cast<size_t>(cols)), q(static_cast<size_t>(cols));
        quantize_row(w.data(), cols, bits, group, packed.data(), s.data(), b.data(), scratch.data());
        unpack(packed.data(), cols, bits, q.data());
        dequantize_row(packed.data(), s.data(), b.data(), cols, bits, group, back.data(), scratch.data());
        const int top = (1 << bits) - 1;
        for (int64_t g = 0; g < cols / group; ++g) {
          const float sc = std::abs(s[size_t(g)]);
          int64_t edge_i = g * group;
          for (int64_t i = g * group; i < (g + 1) * group; ++i) {
            if (std::abs(w[size_t(i)]) > std::abs(w[size_t(edge_i)])) edge_i = i;
            const float err = std::abs(w[size_t(i)] - back[size_t(i)]);
            const float fp = 4e-7f * (std::abs(w[size_t(i)]) + std::abs(b[size_t(g)]) + sc * float(top));
            const float bound = (q[size_t(i)] == top ? sc : sc / 2) + fp;
            ASSERT_LE(err, bound) << "element " << i << " w=" << w[size_t(i)] << " q=" << int(q[size_t(i)]);
          }
          EXPECT_EQ(back[size_t(edge_i)], w[size_t(edge_i)]) << "edge of group " << g;
          const float edge = w[size_t(edge_i)];
          const float q0 = std::rint(edge / s[size_t(g)]);
          EXPECT_EQ(float(q[size_t(g * group + 3)]), -q0) << "0.0 must get the code -q0";
          EXPECT_LE(std::abs(back[size_t(g * group + 3)]), 2.4e-7f * std::abs(edge)) << "0.0 of group " << g;
        }
      }
    }
}

TEST(MlxQuantize, NanGivesZeroCode) {
  std::vector<float> w(32, 1.0f);
  w[0] = -1.0f;
  w[5] = std::nanf("");
  std::vector<uint32_t> packed(4);
  float s, b;
  std::vector<uint8_t> scratch(32), q(32);
  quantize_row(w.data(), 32, 4, 32, packed.data(), &s, &b, scratch.data());
  unpack(packed.data(), 32, 4, q.data());
  EXPECT_EQ(q[5], 0);
}

TEST(MlxQuantize, ParamsAndNamesAreChecked) {
  EXPECT_TRUE(check_params(4, 64).ok());
  auto e = check_params(7, 64);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(e.error().message.find("7 bits"), std::string::npos);
  EXPECT_NE(e.error().hint.find("2, 3, 4, 5, 6 or 8"), std::string::npos);
  auto g = check_params(4, 16);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("group size 16"), std::string::npos);

  auto q8 = parse_quant("8bit", ojson());
  ASSERT_TRUE(q8.ok());
  ASSERT_TRUE(q8->has_value());
  EXPECT_EQ((*q8)->bits, 8);
  EXPECT_EQ((*q8)->group_size, 64);
  auto cfg = parse_quant("", ojson::parse(R"({"bits": 3, "group_size": 32})"));
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ((*cfg)->bits, 3);
  EXPECT_EQ((*cfg)->group_size, 32);
  auto alias = parse_quant("q5_k_m", ojson());
  ASSERT_TRUE(alias.ok());
  EXPECT_EQ((*alias)->bits, 5);
  EXPECT_NE((*alias)->alias_note.find("5-bit affine"), std::string::npos);
  EXPECT_FALSE(parse_quant("", ojson())->has_value());
  auto bad = parse_quant("4bit", ojson::parse(R"({"group_size": 48})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  auto conflict = parse_quant("4bit", ojson::parse(R"({"bits": 8})"));
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.error().message.find("says 8"), std::string::npos);
  EXPECT_FALSE(parse_quant("q4_0", ojson()).ok());
  EXPECT_FALSE(parse_quant("", ojson::parse(R"({"mode": "mxfp4"})")).ok());
}

std::vector<std::byte> slurp_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), {});
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

// Every bits x group size x dtype against tests/py/mlx_oracle.py, written from the spec alone.
TEST(MlxQuantize, EqualsNumpyOracleByteForByte) {
  test::TempDir tmp;
  std::string out;
  if (test::run_python("mlx_oracle.py gen '" + tmp.path().string() + "'", &out) != 0)
    GTEST_SKIP() << "python3 with numpy unavailable: " << out;
  const auto manifest = nlohmann::json::parse(std::ifstream(tmp / "manifest.json"));
  ASSERT_EQ(manifest.size(), 54u);
  for (const auto& c : manifest) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const int bits = c["bits"], group = c["group"];
    const int64_t rows = c["rows"], cols = c["cols"];
    const DType dt = *dtype_from_name(c["dtype"].get<std::string>());
    const auto in = slurp_bytes(tmp / (name + ".in"));
    ASSERT_EQ(in.size(), size_t(rows * cols) * 4);
    std::vector<float> w(size_t(rows * cols));
    std::memcpy(w.data(), in.data(), in.size());
    const int64_t words = packed_words(cols, bits), groups = cols / group;
    std::vector<uint32_t> packed(size_t(rows * words));
    std::vector<float> s(size_t(rows * groups)), b(size_t(rows * groups));
    std::vector<uint8_t> scratch(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(w.data() + r * cols, cols, bits, group, packed.data() + r * words, s.data() + r * groups,
                   b.data() + r * groups, scratch.data());
    const auto want_w = slurp_bytes(tmp / (name + ".w"));
    ASSERT_EQ(want_w.size(), packed.size() * 4);
    EXPECT_EQ(std::memcmp(want_w.data(), packed.data(), want_w.size()), 0) << "packed weights";
    std::vector<std::byte> sb(s.size() * dtype_size(dt)), bb(b.size() * dtype_size(dt));
    from_f32(s.data(), dt, sb.data(), s.size());
    from_f32(b.data(), dt, bb.data(), b.size());
    EXPECT_EQ(sb, slurp_bytes(tmp / (name + ".s"))) << "scales";
    EXPECT_EQ(bb, slurp_bytes(tmp / (name + ".b"))) << "biases";
    // Dequantize from the stored (cast) scales and biases.
    std::vector<float> s2(s.size()), b2(b.size()), row(static_cast<size_t>(cols));
    to_f32(dt, sb.data(), s2.data(), s2.size());
    to_f32(dt, bb.data(), b2.data(), b2.size());
    std::vector<std::byte> dq(size_t(rows * cols) * dtype_size(dt));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(packed.data() + r * words, s2.data() + r * groups, b2.data() + r * groups, cols, bits, group,
                     row.data(), scratch.data());
      from_f32(row.data(), dt, dq.data() + size_t(r * cols) * dtype_size(dt), size_t(cols));
    }
    EXPECT_EQ(dq, slurp_bytes(tmp / (name + ".dq"))) << "dequantized";
  }
}

// quantize_row (one pass: 8 groups' parameters side by side, q values packed in registers for
// 2/4/8 bits) against the one-group functions and pack(), on rows with every kind of group:
// random, constant, all negative, signed zeros, ties, NaN and infinities; whole batches of 8
// groups and a tail.
TEST(MlxAffine, RowEqualsGroupByGroup) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    for (int group : {32, 64, 128}) {
      const int64_t cols = int64_t(group) * 19;  // two batches of 8 groups and a tail of 3
      std::vector<float> w(static_cast<size_t>(cols));
      for (int64_t g = 0; g < cols / group; ++g) {
        float* x = w.data() + g * group;
        for (int j = 0; j < group; ++j) {
          switch (g % 10) {
            case 0: x[j] = 0.25f; break;                                    // constant
            case 1: x[j] = -std::fabs(nd(rng)) - 0.001f; break;             // all negative
            case 2: x[j] = j % 2 ? 0.0f : -0.0f; break;                     // signed zeros
            case 3: x[j] = float(j % 16) * 0.5f - 2.0f; break;              // ties
            case 4: x[j] = j == 5 ? std::nanf("") : nd(rng); break;         // a NaN
            case 5: x[j] = j == 3 ? INFINITY : nd(rng); break;              // +inf
            case 6: x[j] = j == 9 ? -INFINITY : nd(rng); break;             // -inf
            default: x[j] = nd(rng); break;
          }
        }
      }
      const int64_t words = packed_words(cols, bits), groups = cols / group;
      std::vector<uint32_t> got(static_cast<size_t>(words)), want(static_cast<size_t>(words));
      std::vector<float> gs(static_cast<size_t>(groups)), gb(gs.size()), ws(gs.size()), wb(gs.size());
      std::vector<uint8_t> scratch(static_cast<size_t>(cols)), q(static_cast<size_t>(cols));
      quantize_row(w.data(), cols, bits, group, got.data(), gs.data(), gb.data(), scratch.data());
      for (int64_t g = 0; g < groups; ++g) {
        const GroupParams p = group_params(w.data() + g * group, group, bits);
        ws[size_t(g)] = p.scale;
        wb[size_t(g)] = p.bias;
        quantize_group(w.data() + g * group, group, bits, p, q.data() + g * group);
      }
      pack(q.data(), cols, bits, want.data());
      SCOPED_TRACE(testing::Message() << bits << " bits, group " << group);
      EXPECT_EQ(got, want);
      EXPECT_EQ(std::memcmp(gs.data(), ws.data(), gs.size() * 4), 0) << "scales";
      EXPECT_EQ(std::memcmp(gb.data(), wb.data(), gb.size() * 4), 0) << "biases";
    }
  }
}

}  // namespace
}  // namespace mc::mlx
