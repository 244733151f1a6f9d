// dequantize(quantize(x)) error bounds, thread-count independence, and argument checking.
#include <gtest/gtest.h>

#include <cmath>

#include "quant/ggml.h"
#include "quant/quant_test_data.h"

namespace mc::quant {
namespace {

// ggml's tests/test-quantize-fns.cpp bounds and metric (sqrt(sum of squared errors) / n on
// 0.1 + 2cos(i), n = 4096).
constexpr float kMaxQuantizationTotalError = 0.002f;
constexpr float kMaxQuantizationTotalError2Bits = 0.0075f;
constexpr float kMaxQuantizationTotalError3Bits = 0.0040f;

// Our own, tighter bounds: RMSE relative to the RMS of uniform [-1, 1) data (measured values
// in comments: the larger of the two data sets; bounds leave ~25% headroom).
struct Bound {
  DType t;
  float ggml_total;    // test-quantize-fns bound
  float relative_rms;  // RMSE / RMS(x) bound on reference_input() row 0 and the cos data
};
constexpr Bound kBounds[] = {
    {DType::Q4_0, kMaxQuantizationTotalError, 0.080f},         // measured 0.063
    {DType::Q4_1, kMaxQuantizationTotalError, 0.073f},         // 0.058
    {DType::Q5_0, kMaxQuantizationTotalError, 0.040f},         // 0.032
    {DType::Q5_1, kMaxQuantizationTotalError, 0.037f},         // 0.029
    {DType::Q8_0, kMaxQuantizationTotalError, 0.0050f},        // 0.0039
    {DType::Q2_K, kMaxQuantizationTotalError2Bits, 0.29f},     // 0.232
    {DType::Q3_K, kMaxQuantizationTotalError3Bits, 0.16f},     // 0.126
    {DType::Q4_K, kMaxQuantizationTotalError, 0.067f},         // 0.054
    {DType::Q5_K, kMaxQuantizationTotalError, 0.034f},         // 0.027
    {DType::Q6_K, kMaxQuantizationTotalError, 0.016f},         // 0.0128
    {DType::F16, kMaxQuantizationTotalError, 0.00026f},        // 0.00020
    {DType::BF16, kMaxQuantizationTotalError, 0.0020f},        // 0.0016
};

std::vector<float> roundtrip(DType t, const std::vector<float>& x, int64_t row_len) {
  const int64_t rows = int64_t(x.size()) / row_len;
  std::vector<std::byte> q(dtype_nbytes(t, x.size()).value());
  EXPECT_TRUE(quantize_rows(t, x.data(), rows, row_len, q).ok());
  std::vector<float> y(x.size());
  EXPECT_TRUE(dequantize(t, q, y.data(), int64_t(y.size())).ok());
  return y;
}

double sum_sq_err(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s;
}
double rms(const std::vector<float>& a) {
  double s = 0;
  for (float v : a) s += double(v) * v;
  return std::sqrt(s / double(a.size()));
}

TEST(QuantRoundtrip, ErrorWithinBounds) {
  std::vector<float> cos_data(4096);
  for (size_t i = 0; i < cos_data.size(); ++i) cos_data[i] = 0.1f + 2 * std::cos(float(i));
  const auto ref = test::reference_input();
  const std::vector<float> uniform(ref.begin(), ref.begin() + test::kRefRowLen);  // row 0
  for (const Bound& b : kBounds) {
    const auto y = roundtrip(b.t, cos_data, 4096);
    const double ggml_metric = std::sqrt(sum_sq_err(cos_data, y)) / double(cos_data.size());
    EXPECT_LT(ggml_metric, b.ggml_total) << dtype_name(b.t);
    const double rel_cos = std::sqrt(sum_sq_err(cos_data, y) / 4096.0) / rms(cos_data);
    EXPECT_LT(rel_cos, b.relative_rms) << dtype_name(b.t) << " on cos data";
    const auto yu = roundtrip(b.t, uniform, test::kRefRowLen);
    const double rel_u = std::sqrt(sum_sq_err(uniform, yu) / double(uniform.size())) / rms(uniform);
    EXPECT_LT(rel_u, b.relative_rms) << dtype_name(b.t) << " on uniform data";
  }
}

TEST(QuantRoundtrip, EdgeRowsStayFiniteAndZerosStayZero) {
  const auto x = test::reference_input();
  for (const Bound& b : kBounds) {
    const auto y = roundtrip(b.t, x, test::kRefRowLen);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << dtype_name(b.t) << " " << i;
    for (int j = 0; j < test::kRefRowLen; ++j) {
      const size_t i = size_t(6) * test::kRefRowLen + size_t(j);  // row 6: all zeros
      EXPECT_EQ(y[i], 0.0f) << dtype_name(b.t) << " zero row element " << j;
    }
  }
}

TEST(QuantRoundtrip, BytesDoNotDependOnThreadCount) {
  // 1201 rows of 512: three pool tasks of 512 rows (quantize.cpp), the last one short.
  constexpr int64_t kRows = 1201, kLen = 512;
  const auto base = test::bulk_input();
  std::vector<float> x(size_t(kRows * kLen));
  for (size_t i = 0; i < x.size(); ++i) x[i] = base[(i * 7) % base.size()];
  for (DType t : {DType::Q4_K, DType::Q8_0, DType::F16}) {
    std::vector<std::byte> serial(dtype_nbytes(t, x.size()).value());
    ASSERT_TRUE(quantize_rows(t, x.data(), kRows, kLen, serial).ok());
    for (size_t threads : {2u, 3u, 8u}) {
      ThreadPool pool(threads);
      std::vector<std::byte> par(serial.size(), std::byte{0xEE});
      ASSERT_TRUE(quantize_rows(t, x.data(), kRows, kLen, par, &pool).ok());
      EXPECT_TRUE(par == serial) << dtype_name(t) << " with " << threads << " threads";
    }
  }
}

TEST(QuantRoundtrip, RejectsBadArguments) {
  std::vector<float> x(512, 1.0f);
  std::vector<std::byte> q(2 * 144);
  auto st = quantize_rows(DType::Q4_K, x.data(), 2, 200, q);  // 200 % 256 != 0
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(st.error().message.find("multiple of 256"), std::string::npos) << st.error().message;

  st = quantize_rows(DType::Q4_K, x.data(), 2, 256, std::span(q).first(143));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Mismatch);
  EXPECT_NE(st.error().message.find("288"), std::string::npos) << st.error().message;

  st = quantize_rows(DType::I32, x.data(), 1, 4, q);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Unsupported);

  std::vector<float> y(256);
  st = dequantize(DType::Q8_0, std::span<const std::byte>(q).first(33), y.data(), 32);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Mismatch);
  st = dequantize(DType::Q8_0, q, y.data(), 33);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::InvalidArgument);
}

}  // namespace
}  // namespace mc::quant
