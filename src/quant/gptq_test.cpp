// GPTQ/AWQ packing against hand-worked words, and the GPTQ/AWQ numerics against their defining
// properties (GPTQ with an isotropic Hessian is round-to-nearest; with correlated inputs it lowers
// the layer's output error below round-to-nearest; AWQ's clip search never loses to no clipping).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "quant/awq.h"
#include "quant/gptq.h"
#include "quant/pack.h"

namespace mc::quant {
namespace {

TEST(GptqPack, HandWorkedWords) {
  // 4 bits: value k at bits [4k, 4k+4).
  const uint8_t v4[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint32_t w = 0;
  pack_stream(v4, 8, 1, 4, &w, 1);
  EXPECT_EQ(w, 0x87654321u);
  // 2 bits: 0,1,2,3 -> 0b11100100 per byte.
  const uint8_t v2[16] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
  pack_stream(v2, 16, 1, 2, &w, 1);
  EXPECT_EQ(w, 0xE4E4E4E4u);
  // 8 bits.
  const uint8_t v8[4] = {0x11, 0x22, 0x33, 0xF4};
  pack_stream(v8, 4, 1, 8, &w, 1);
  EXPECT_EQ(w, 0xF4332211u);
  // 3 bits: AutoGPTQ's 10|1|10|1|10 loop, worked for k % 8 and (5k + 3) % 8.
  uint8_t v3[32], back[32];
  uint32_t w3[3];
  for (int k = 0; k < 32; ++k) v3[k] = static_cast<uint8_t>(k % 8);
  pack_stream(v3, 32, 1, 3, w3, 1);
  EXPECT_EQ(w3[0], 0x88fac688u);
  EXPECT_EQ(w3[1], 0xc688fac6u);
  EXPECT_EQ(w3[2], 0xfac688fau);
  for (int k = 0; k < 32; ++k) v3[k] = static_cast<uint8_t>((5 * k + 3) % 8);
  pack_stream(v3, 32, 1, 3, w3, 1);
  EXPECT_EQ(w3[0], 0x43c67543u);
  EXPECT_EQ(w3[1], 0x7543c675u);
  EXPECT_EQ(w3[2], 0xc67543c6u);
  unpack_stream(w3, 1, 32, 3, back, 1);
  for (int k = 0; k < 32; ++k) EXPECT_EQ(back[k], v3[k]) << k;
}

TEST(GptqPack, StridedColumnsRoundTrip) {
  // qweight layout: column o of [in][out] codes packed down the column, words strided by out.
  std::mt19937 rng(5);
  for (int bits : {2, 3, 4, 8}) {
    const int64_t in = 64, out = 3;
    std::vector<uint8_t> codes(static_cast<size_t>(in * out)), back(codes.size());
    for (auto& c : codes) c = static_cast<uint8_t>(rng() % (1u << bits));
    std::vector<uint32_t> words(static_cast<size_t>(in * bits / 32 * out));
    for (int64_t o = 0; o < out; ++o) pack_stream(codes.data() + o, in, out, bits, words.data() + o, out);
    for (int64_t o = 0; o < out; ++o) unpack_stream(words.data() + o, out, in, bits, back.data() + o, out);
    EXPECT_EQ(codes, back) << bits;
  }
}

TEST(AwqPack, InterleavedOrder) {
  const uint8_t v[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  uint32_t w = 0;
  pack_awq_row(v, 8, &w);
  EXPECT_EQ(w, 0x75316420u);  // nibbles hold columns 0,2,4,6,1,3,5,7
  const uint8_t u[8] = {0xA, 0xB, 0xC, 0xD, 0xE, 0xF, 0x1, 0x2};
  pack_awq_row(u, 8, &w);
  EXPECT_EQ(w, 0x2FDB1ECAu);
  uint8_t back[8];
  unpack_awq_row(&w, 8, back);
  for (int j = 0; j < 8; ++j) EXPECT_EQ(back[j], u[j]);
  for (int j = 0; j < 8; ++j) EXPECT_EQ((w >> (4 * kAwqReverseOrder[static_cast<size_t>(j)])) & 0xF, u[j]);
}

struct Layer {
  int64_t out = 48, in = 128, tokens = 512;
  std::vector<float> w, x;  // [out][in], [tokens][in]
};

// Inputs with strongly correlated channels (a low-rank mix plus noise), as trained models have.
Layer make_layer(unsigned seed, bool correlated) {
  Layer l;
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  l.w.resize(static_cast<size_t>(l.out * l.in));
  for (auto& v : l.w) v = n(rng) * 0.05f;
  l.x.resize(static_cast<size_t>(l.tokens * l.in));
  const int64_t rank = 8;
  std::vector<float> mix(static_cast<size_t>(rank * l.in));
  for (auto& v : mix) v = n(rng);
  for (int64_t t = 0; t < l.tokens; ++t) {
    float z[8];
    for (auto& v : z) v = n(rng);
    for (int64_t i = 0; i < l.in; ++i) {
      float v = n(rng) * (correlated ? 0.1f : 1.0f);
      if (correlated)
        for (int64_t r = 0; r < rank; ++r) v += z[r] * mix[static_cast<size_t>(r * l.in + i)];
      l.x[static_cast<size_t>(t * l.in + i)] = v * (correlated ? (1.0f + float(i % 7)) : 1.0f);
    }
  }
  return l;
}

double output_error(const Layer& l, const std::vector<float>& wq) {
  double e = 0;
  for (int64_t t = 0; t < l.tokens; ++t)
    for (int64_t o = 0; o < l.out; ++o) {
      double d = 0;
      for (int64_t i = 0; i < l.in; ++i)
        d += double(l.x[static_cast<size_t>(t * l.in + i)]) *
             (double(wq[static_cast<size_t>(o * l.in + i)]) - l.w[static_cast<size_t>(o * l.in + i)]);
      e += d * d;
    }
  return e / double(l.tokens * l.out);
}

Hessian hessian_of(const Layer& l, int64_t seq = 64) {
  Hessian h(l.in);
  for (int64_t t = 0; t < l.tokens; t += seq) h.add_sequence(l.x.data() + t * l.in, seq);
  return h;
}

TEST(Gptq, IsotropicHessianIsRoundToNearest) {
  Layer l = make_layer(1, false);
  Hessian h(l.in);
  std::vector<float> eye(static_cast<size_t>(l.in * l.in), 0.0f);
  for (int64_t i = 0; i < l.in; ++i) eye[static_cast<size_t>(i * l.in + i)] = 1.0f;
  h.add_sequence(eye.data(), l.in);
  for (int bits : {2, 3, 4, 8}) {
    GptqParams p;
    p.bits = bits;
    p.group_size = 32;
    auto g = gptq_quantize(l.w, l.out, l.in, h, p);
    ASSERT_TRUE(g) << g.error().render();
    const GroupQuant r = rtn_quantize(l.w.data(), l.out, l.in, p);
    EXPECT_EQ(g->q, r.q) << bits;
    EXPECT_EQ(g->scales, r.scales) << bits;
    EXPECT_EQ(g->zeros, r.zeros) << bits;
    for (uint8_t z : g->zeros) EXPECT_EQ(z, 1 << (bits - 1));  // sym: zero = 2^(bits-1)
  }
}

TEST(Gptq, BeatsRoundToNearestOnTheLayerOutput) {
  Layer l = make_layer(2, true);
  for (bool desc_act : {false, true}) {
    for (int bits : {3, 4}) {
      GptqParams p;
      p.bits = bits;
      p.group_size = 32;
      p.desc_act = desc_act;
      Hessian h = hessian_of(l);
      auto g = gptq_quantize(l.w, l.out, l.in, h, p);
      ASSERT_TRUE(g) << g.error().render();
      const GroupQuant r = rtn_quantize(l.w.data(), l.out, l.in, p);
      const double eg = output_error(l, g->dequantize()), er = output_error(l, r.dequantize());
      std::printf("[ gptq %d-bit g32 desc_act %d ] output MSE %.3g vs RTN %.3g\n", bits, desc_act, eg, er);
      EXPECT_LT(eg, 0.7 * er);
      for (uint8_t c : g->q) EXPECT_LT(c, 1 << bits);
      if (!desc_act) {
        for (int64_t i = 0; i < l.in; ++i) EXPECT_EQ(g->g_idx[static_cast<size_t>(i)], i / 32);
      } else {
        // Act-order: every group holds exactly 32 columns, and the order is not the identity.
        std::vector<int> count(static_cast<size_t>(l.in / 32), 0);
        bool monotonic = true;
        for (int64_t i = 0; i < l.in; ++i) {
          ++count[static_cast<size_t>(g->g_idx[static_cast<size_t>(i)])];
          if (i > 0 && g->g_idx[static_cast<size_t>(i)] < g->g_idx[static_cast<size_t>(i - 1)]) monotonic = false;
        }
        for (int c : count) EXPECT_EQ(c, 32);
        EXPECT_FALSE(monotonic);
      }
    }
  }
}

TEST(Gptq, AsymZerosAndDeadInputs) {
  Layer l = make_layer(3, true);
  for (int64_t t = 0; t < l.tokens; ++t) l.x[static_cast<size_t>(t * l.in + 5)] = 0;  // input 5 never fires
  for (auto& v : l.w) v = std::fabs(v);  // all positive: asym zero points at 0
  GptqParams p;
  p.sym = false;
  p.group_size = 64;
  Hessian h = hessian_of(l);
  auto g = gptq_quantize(l.w, l.out, l.in, h, p);
  ASSERT_TRUE(g) << g.error().render();
  for (uint8_t z : g->zeros) EXPECT_LE(z, 15);
  EXPECT_EQ(g->zeros[0], 0);  // min(w, 0) = 0 -> zero point 0 (what v1's zero - 1 cannot store)
  for (int64_t o = 0; o < l.out; ++o) EXPECT_EQ(g->q[static_cast<size_t>(o * l.in + 5)], g->zeros[static_cast<size_t>(o)]);
}

TEST(Awq, QuantizerAndClip) {
  Layer l = make_layer(4, true);
  const GroupQuant q = awq_quantize(l.w.data(), l.out, l.in, 32);
  std::vector<float> pq = l.w;
  awq_pseudo_quantize(pq.data(), l.out, l.in, 32);
  const auto dq = q.dequantize();
  for (size_t i = 0; i < dq.size(); ++i) ASSERT_EQ(dq[i], pq[i]) << i;
  std::vector<float> clipped = l.w;
  const auto mv = awq_clip(clipped.data(), l.out, l.in, 32, l.x.data(), l.tokens);
  std::vector<float> cq = clipped;
  awq_pseudo_quantize(cq.data(), l.out, l.in, 32);
  const double e_clip = output_error(l, cq), e_plain = output_error(l, pq);
  std::printf("[ awq clip ] output MSE %.3g vs unclipped %.3g\n", e_clip, e_plain);
  EXPECT_LE(e_clip, e_plain * 1.0001);
  const size_t in = static_cast<size_t>(l.in), groups = in / 32;
  for (size_t i = 0; i < clipped.size(); ++i) EXPECT_LE(std::fabs(clipped[i]), mv[(i / in) * groups + (i % in) / 32]);
  const std::vector<float> xm = {0.5f, 2.0f, 8.0f}, wm = {0.2f, 0.4f, 0.1f};
  for (double r : {0.0, 0.35, 0.95}) {
    const auto s = awq_candidate_scales(xm, wm, r, true);
    const auto [mn, mx] = std::minmax_element(s.begin(), s.end());
    EXPECT_NEAR(double(*mn) * double(*mx), 1.0, 1e-5);
  }
}

}  // namespace
}  // namespace mc::quant
