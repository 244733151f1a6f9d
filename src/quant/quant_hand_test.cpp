// Blocks whose expected bytes are worked out by hand (formats.md §2.3/§2.5), independent of the
// reference files: they pin the rounding rules (roundf vs truncation vs nearest_int) and layouts.
#include <gtest/gtest.h>

#include <array>

#include "quant/ggml.h"

namespace mc::quant {
namespace {

std::vector<uint8_t> quantize_one(DType t, const std::vector<float>& x) {
  std::vector<std::byte> out(dtype_nbytes(t, x.size()).value());
  EXPECT_TRUE(quantize_rows(t, x.data(), 1, int64_t(x.size()), out).ok());
  std::vector<uint8_t> b(out.size());
  std::memcpy(b.data(), out.data(), out.size());
  return b;
}

TEST(QuantHand, Q8_0RoundsHalfAwayFromZero) {
  // amax = 127 so d = 127/127 = 1 exactly (f16 0x3C00, stored LE as 00 3C) and id = 1: each q is
  // roundf(x). roundf sends ties away from zero, so -0.5 -> -1 and 2.5 -> 3 (half-to-even would
  // give 0 and 2).
  std::vector<float> x = {127, -0.5f, 0.5f, 2.5f, -2.5f, -126.4f, 3.49f};
  for (int j = 7; j < 32; ++j) x.push_back(float(j - 16));  // -9 .. 15, exact
  const auto b = quantize_one(DType::Q8_0, x);
  ASSERT_EQ(b.size(), 34u);
  EXPECT_EQ(b[0], 0x00);
  EXPECT_EQ(b[1], 0x3C);
  const int8_t want_head[] = {127, -1, 1, 3, -3, -126, 3};
  for (int j = 0; j < 7; ++j) EXPECT_EQ(int8_t(b[2 + j]), want_head[j]) << "element " << j;
  for (int j = 7; j < 32; ++j) EXPECT_EQ(int8_t(b[2 + j]), j - 16) << "element " << j;
}

TEST(QuantHand, Q4_0TruncatesAndFirstMaxWins) {
  // x[0] = -8 and x[31] = +8 tie on |x|; the first one wins, so max = -8, d = max/-8 = 1
  // (f16 0x3C00) and id = 1. q = min(15, (int8)(x + 8.5)):
  //   -8 -> 0.5 -> 0;  7 -> 15.5 -> 15;  7.9 -> 16.4 -> 16 -> 15;  0 -> 8.5 -> 8;
  //   -0.5 -> 8.0 -> 8;  0.49 -> 8.99 -> 8;  -3.2 -> 5.3 -> 5;  2.5 -> 11.0 -> 11;
  //   x[j] = (j%8) - 4 for j = 8..30 -> q = (j%8) + 4;  x[31] = 8 -> 16.5 -> 16 -> 15.
  std::vector<float> x = {-8, 7, 7.9f, 0, -0.5f, 0.49f, -3.2f, 2.5f};
  for (int j = 8; j < 32; ++j) x.push_back(float((j % 8) - 4));
  x[31] = 8;
  const auto b = quantize_one(DType::Q4_0, x);
  ASSERT_EQ(b.size(), 18u);
  // qs[j] = q[j] | q[j+16] << 4, with q[16..23] = 4..11, q[24..30] = 4..10, q[31] = 15:
  //   qs[0] = 0 | 4<<4, qs[1] = 15 | 5<<4, qs[2] = 15 | 6<<4, qs[3] = 8 | 7<<4, qs[4] = 8 | 8<<4,
  //   qs[5] = 8 | 9<<4, qs[6] = 5 | 10<<4, qs[7] = 11 | 11<<4, qs[8..14] = (4..10) * 0x11,
  //   qs[15] = 11 | 15<<4.
  const std::array<uint8_t, 18> want = {0x00, 0x3C, 0x40, 0x5F, 0x6F, 0x78, 0x88, 0x98, 0xA5,
                                        0xBB, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xFB};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(b[i], want[i]) << "byte " << i;
}

TEST(QuantHand, Q4_KExactGridBlock) {
  // Every 32-value sub-block holds x_l = (l % 16) - 8: min = -8, max = 7, so make_qkx2_quants
  // starts at iscale = 15/15 = 1 with L = x + 8 and zero error; no candidate is strictly better,
  // so scale = 1 and the_min = 8 for all 8 sub-blocks.
  //   max_scale = 1 -> inv_scale = 63 -> ls = 63;  max_min = 8 -> inv_min = 63/8 -> lm = 63.
  //   d = fp16(1/63): 1/63 = 2^-6 * 1.015873, mantissa 0.015873*1024 = 16.25 -> 16, exponent
  //     -6+15 = 9 -> 0x2410 (bytes 10 24);  dmin = fp16(8/63) = 2^-3 * 1.015873 -> 0x3010.
  //   Re-quantizing with D = f16(0x2410)*63 = 0.999755859375 and M = f16(0x3010)*63 =
  //   7.998046875 gives nearest_int((x + M)/D) = x + 8 (e.g. x = 7: 14.998/0.99976 = 15.0018).
  //   Packed 6-bit scales: j<4: sc[j] = 63 | (63>>4)<<6 = 0xFF, sc[j+4] = 63 | (63>>4)<<6 = 0xFF;
  //   j>=4: sc[j+4] = (63&15) | (63&15)<<4 = 0xFF  ->  all twelve bytes are 0xFF.
  //   qs[32c + l] = L[64c + l] | L[64c + 32 + l] << 4 = (l%16) * 0x11.
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = float((i % 32) % 16 - 8);
  const auto b = quantize_one(DType::Q4_K, x);
  ASSERT_EQ(b.size(), 144u);
  EXPECT_EQ(b[0], 0x10);
  EXPECT_EQ(b[1], 0x24);
  EXPECT_EQ(b[2], 0x10);
  EXPECT_EQ(b[3], 0x30);
  for (int i = 4; i < 16; ++i) EXPECT_EQ(b[i], 0xFF) << "scales byte " << i - 4;
  for (int i = 0; i < 128; ++i) EXPECT_EQ(b[16 + i], uint8_t((i % 32 % 16) * 0x11)) << "qs " << i;

  // And back: d*sc*q - dmin*m = 0.999755859375*(x+8) - 7.998046875, within 0.004 of x.
  std::vector<float> y(256);
  ASSERT_TRUE(dequantize(DType::Q4_K, std::as_bytes(std::span(b)), y.data(), 256).ok());
  EXPECT_FLOAT_EQ(y[0], 0.999755859375f * 0 - 7.998046875f);
  EXPECT_FLOAT_EQ(y[15], 0.999755859375f * 15 - 7.998046875f);
}

TEST(QuantHand, Q6_KAllZeroBlockIsAllZeroBytes) {
  // max |scale| < 1e-15: the reference zeroes the whole 210-byte block.
  const auto b = quantize_one(DType::Q6_K, std::vector<float>(256, 0.0f));
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(b[i], 0) << "byte " << i;
}

}  // namespace
}  // namespace mc::quant
