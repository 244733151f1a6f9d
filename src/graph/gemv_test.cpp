// The fused f16/bf16 matrix-vector kernel against a double-precision sum over the same values
// (widened by the scalar converters), for row lengths that exercise every tail.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "graph/gemv.h"

namespace mc::graph::detail {
namespace {

TEST(Gemv, HalfRowsMatchADoubleSum) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (DType dt : {DType::F16, DType::BF16}) {
    for (int64_t k : {1, 7, 8, 9, 31, 32, 33, 63, 64, 100, 257}) {
      const int64_t rows = 5;
      const uint64_t row_bytes = uint64_t(k) * 2 + 6;  // rows need not be packed
      std::vector<float> wf(static_cast<size_t>(rows * k));
      std::vector<float> x(static_cast<size_t>(k));
      for (auto& v : wf) v = d(rng);
      for (auto& v : x) v = d(rng);
      std::vector<std::byte> w(size_t(rows) * row_bytes);
      for (int64_t j = 0; j < rows; ++j)
        from_f32(wf.data() + j * k, dt, w.data() + uint64_t(j) * row_bytes, size_t(k));
      std::vector<float> y(static_cast<size_t>(rows), -1.0f);
      if (!gemv_half(dt, w.data(), row_bytes, rows, k, x.data(), y.data()))
        GTEST_SKIP() << "no AVX2/FMA/F16C on this CPU: the runtime uses its f32 path";
      for (int64_t j = 0; j < rows; ++j) {
        std::vector<float> wide(static_cast<size_t>(k));
        to_f32(dt, w.data() + uint64_t(j) * row_bytes, wide.data(), size_t(k));
        double want = 0, mag = 0;
        for (int64_t i = 0; i < k; ++i) {
          want += double(wide[size_t(i)]) * double(x[size_t(i)]);
          mag += std::abs(double(wide[size_t(i)]) * double(x[size_t(i)]));
        }
        EXPECT_NEAR(y[size_t(j)], want, 1e-6 * mag + 1e-30) << dtype_name(dt) << " k=" << k << " row " << j;
      }
    }
  }
  std::vector<float> y(1);
  EXPECT_FALSE(gemv_half(DType::F32, nullptr, 4, 1, 1, y.data(), y.data()));  // not a half type
}

}  // namespace
}  // namespace mc::graph::detail
