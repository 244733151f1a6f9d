// The SIMD k-quant (and Q8_0) kernels against the scalar ones (kquant_fit.h): same bytes on the same
// inputs, hostile ones included (zeros, constants, -0, huge and tiny magnitudes, subnormals,
// exact rounding ties, single outliers, NaN and infinities), with row counts that leave vector
// lanes unused; and proof that each SIMD unit was compiled without fused multiply-add.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "quant/ggml.h"
#include "quant/kquant_fit.h"
#include "quant/quant_test_data.h"

namespace mc::quant {
namespace {

constexpr int kLen = 256;
constexpr DType kKTypes[] = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0};

// One row per kind of hostile input; drawn from the tests' LCG.
std::vector<float> hostile_rows(int& n_rows) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  constexpr int kKinds = 25;
  n_rows = kKinds;
  std::vector<float> x(size_t(kKinds) * kLen);
  uint64_t st = 4242;
  for (int r = 0; r < kKinds; ++r) {
    for (int j = 0; j < kLen; ++j) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      const float u = float(uint32_t(st >> 40)) / 16777216.0f;
      const float s = u * 2.0f - 1.0f;
      float v = 0;
      switch (r) {
        case 0: v = 0.0f; break;
        case 1: v = 0.75f; break;
        case 2: v = -3.0f; break;
        case 3: v = -0.0f; break;
        case 4: v = (j % 3 == 0) ? -0.0f : 0.0f; break;
        case 5: v = s * 3.0e38f; break;                       // sums of squares overflow
        case 6: v = s * 1.0e-30f; break;                      // x^2 underflows
        case 7: v = s * 1.0e-40f; break;                      // subnormal inputs
        case 8: v = j == 77 ? 5.0f : 0.0f; break;             // one value, the rest zero
        case 9: v = std::ldexp(s, (j % 40) - 20); break;      // magnitudes within a sub-block
        case 10: v = (std::floor(u * 17.0f) - 8.0f) * 0.25f; break;  // ties on a grid
        case 11: v = (j % 2 ? 1.0f : -1.0f); break;
        case 12: v = float(j % 16) - 7.5f; break;             // every sub-block the same ramp
        case 13: v = (j / 32 == 3) ? s * 1e-7f : s; break;    // one sub-block whose scale rounds to 0
        case 14: v = (j / 16 == 5) ? 0.0f : s * 10.0f; break; // one flat sub-block of 16
        case 15: v = (j < 128) ? s * 1e6f : s * 1e-6f; break;
        case 16: v = s * 4194303.0f; break;                   // nearest_int's range
        case 17: v = j == 100 ? nan : s; break;
        case 18: v = j == 0 ? nan : s; break;                 // NaN as the first value (min/max seed)
        case 19: v = j == 31 ? inf : s; break;
        case 20: v = j == 31 ? -inf : (j == 200 ? inf : s); break;
        case 21: v = nan; break;
        case 22: v = j % 32 == 5 ? -inf : 0.5f; break;
        case 23: v = j % 32 == 0 ? 127.0f : float(j % 64) - 32.0f + 0.5f; break;  // Q8_0 ties
        default: v = 0.3f + 0.5f * s; break;                  // positive only (min paths)
      }
      x[size_t(r) * kLen + size_t(j)] = v;
    }
  }
  return x;
}

std::vector<std::byte> quantize_with(KernelIsa isa, DType t, const float* x, int64_t rows) {
  test::IsaScope scope(isa);
  EXPECT_TRUE(scope.ok()) << kernel_isa_name(isa);
  std::vector<std::byte> q(dtype_nbytes(t, uint64_t(rows) * kLen).value(), std::byte{0xEE});
  EXPECT_TRUE(quantize_rows(t, x, rows, kLen, q).ok());
  return q;
}

void expect_same_as_scalar(const std::vector<float>& x, int64_t rows, const char* what) {
  for (DType t : kKTypes) {
    const auto want = quantize_with(KernelIsa::Scalar, t, x.data(), rows);
    const size_t row_bytes = want.size() / size_t(rows);
    for (KernelIsa isa : test::available_isas()) {
      if (isa == KernelIsa::Scalar) continue;
      const auto got = quantize_with(isa, t, x.data(), rows);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(int(got[i]), int(want[i]))
            << what << ", " << dtype_name(t) << " with " << kernel_isa_name(isa)
            << " kernels: first difference at byte " << i << " (row " << i / row_bytes << ")";
      }
    }
  }
}

TEST(QuantIsa, ScalarIsAlwaysThereAndNamesRoundTrip) {
  EXPECT_TRUE(kernel_isa_available(KernelIsa::Scalar));
  for (KernelIsa isa : {KernelIsa::Scalar, KernelIsa::Avx2, KernelIsa::Avx512})
    EXPECT_EQ(kernel_isa_from_name(kernel_isa_name(isa)), isa);
  EXPECT_FALSE(kernel_isa_from_name("sse9").has_value());
  // The default is the widest available set.
  const auto all = test::available_isas();
  EXPECT_TRUE(kernel_isa_available(kernel_isa()));
  std::printf("k-quant kernels here: %zu sets, default %s\n", all.size(),
              kernel_isa_name(kernel_isa()).data());
}

TEST(QuantIsa, HostileRowsGiveScalarBytes) {
  int rows = 0;
  const auto x = hostile_rows(rows);
  expect_same_as_scalar(x, rows, "hostile rows");
}

TEST(QuantIsa, EachHostileRowAloneGivesScalarBytes) {
  // One row of 256: 8 or 16 sub-blocks, so a 16-lane vector is half empty for Q4_K/Q5_K.
  int rows = 0;
  const auto x = hostile_rows(rows);
  for (int r = 0; r < rows; ++r) {
    const std::vector<float> one(x.begin() + r * kLen, x.begin() + (r + 1) * kLen);
    expect_same_as_scalar(one, 1, ("hostile row " + std::to_string(r)).c_str());
  }
}

TEST(QuantIsa, ReferenceAndBulkInputsGiveScalarBytes) {
  expect_same_as_scalar(test::reference_input(), test::kRefRows, "reference input");
  auto bulk = test::bulk_input();
  bulk.resize(size_t(203) * kLen);  // 203 rows: not a multiple of any tile
  expect_same_as_scalar(bulk, 203, "bulk input");
}

TEST(QuantIsa, SimdUnitsDoNotFuseMultiplyAdd) {
  // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 rounds to 1 + 2^-11 (a tie, to even); minus that is 0.
  // Fused, the 2^-24 survives.
  const float a = 1.0f + std::ldexp(1.0f, -12);
  const float c = -(1.0f + std::ldexp(1.0f, -11));
  for (auto probe : {detail::mul_add_probe_avx2(), detail::mul_add_probe_avx512()}) {
    if (probe == nullptr) continue;
    // Calling a probe runs its instruction set: only where the CPU has it.
    const bool avx512 = probe == detail::mul_add_probe_avx512();
    if (!kernel_isa_available(avx512 ? KernelIsa::Avx512 : KernelIsa::Avx2)) continue;
    EXPECT_EQ(probe(a, a, c), 0.0f) << (avx512 ? "avx512" : "avx2")
                                    << " unit contracted a*b+c into a fused multiply-add";
  }
}

}  // namespace
}  // namespace mc::quant
