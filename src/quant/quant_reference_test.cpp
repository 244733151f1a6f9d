// Our quantizers/dequantizers against bytes and floats produced by ggml's own reference code
// (testdata/README.md says how): every type, including the edge rows of reference_input().
#include <gtest/gtest.h>

#include <bit>

#include "quant/ggml.h"
#include "quant/quant_test_data.h"

namespace mc::quant {
namespace {

using test::kRefRowLen;
using test::kRefRows;

struct RefCase {
  DType type;
  const char* file;
};

const RefCase kQuantCases[] = {
    {DType::Q4_0, "q4_0"}, {DType::Q4_1, "q4_1"}, {DType::Q5_0, "q5_0"}, {DType::Q5_1, "q5_1"},
    {DType::Q8_0, "q8_0"}, {DType::Q2_K, "q2_k"}, {DType::Q3_K, "q3_k"}, {DType::Q4_K, "q4_k"},
    {DType::Q5_K, "q5_k"}, {DType::Q6_K, "q6_k"},
};
const RefCase kPlainCases[] = {{DType::F16, "f16"}, {DType::BF16, "bf16"}};

class ReferenceBytes : public ::testing::TestWithParam<RefCase> {};
class ReferenceDequant : public ::testing::TestWithParam<RefCase> {};

TEST(QuantReference, InputGeneratorMatchesTheOneUsedForTestdata) {
  const auto x = test::reference_input();
  // Printed by the reference generator for the same formula (README).
  EXPECT_EQ(test::fnv1a64(x.data(), x.size() * sizeof(float)), 0x16f69184e7a11deeull);
}

TEST_P(ReferenceBytes, QuantizeRowsEqualsGgml) {
  const RefCase c = GetParam();
  const auto want = test::read_bytes(test::testdata_path(std::string(c.file) + ".bin"));
  ASSERT_FALSE(want.empty()) << "missing testdata/" << c.file << ".bin";
  const auto x = test::reference_input();
  // On every kernel set this machine has (the k-quant fits differ per set).
  for (KernelIsa isa : test::available_isas()) {
    test::IsaScope scope(isa);
    ASSERT_TRUE(scope.ok());
    std::vector<std::byte> got(want.size());
    ASSERT_TRUE(quantize_rows(c.type, x.data(), kRefRows, kRefRowLen, got).ok());
    const size_t row_bytes = want.size() / kRefRows;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(int(got[i]), int(want[i]))
          << c.file << " (" << kernel_isa_name(isa) << " kernels): first difference at byte " << i
          << " (row " << i / row_bytes << ", byte " << i % row_bytes << " of the row)";
    }
  }
}

TEST_P(ReferenceDequant, DequantizeOfReferenceBytesEqualsGgml) {
  const RefCase c = GetParam();
  const auto bytes = test::read_bytes(test::testdata_path(std::string(c.file) + ".bin"));
  const auto deq = test::read_bytes(test::testdata_path(std::string(c.file) + ".deq.f32"));
  ASSERT_EQ(deq.size(), size_t(kRefRows) * kRefRowLen * 4) << c.file;
  std::vector<float> got(size_t(kRefRows) * kRefRowLen);
  ASSERT_TRUE(dequantize(c.type, bytes, got.data(), int64_t(got.size())).ok());
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t want;
    std::memcpy(&want, deq.data() + 4 * i, 4);
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), want)
        << c.file << ": element " << i << " got " << got[i] << " want " << std::bit_cast<float>(want);
  }
}

auto case_name = [](const auto& info) { return std::string(info.param.file); };
INSTANTIATE_TEST_SUITE_P(BlockTypes, ReferenceBytes, ::testing::ValuesIn(kQuantCases), case_name);
INSTANTIATE_TEST_SUITE_P(PlainTypes, ReferenceBytes, ::testing::ValuesIn(kPlainCases), case_name);
INSTANTIATE_TEST_SUITE_P(BlockTypes, ReferenceDequant, ::testing::ValuesIn(kQuantCases), case_name);

// 512K values of assorted scales and exact ties, compared by FNV-1a 64 of the quantized bytes
// and of their dequantization, as printed by the reference program (README).
TEST(QuantReference, BulkHashesEqualGgml) {
  struct H { DType t; uint64_t bytes, deq; };
  const H want[] = {
      {DType::Q4_0, 0xc1b888b2d8806c87ull, 0x57ed417ffc3dc67bull},
      {DType::Q4_1, 0x0ffb2ba00b3f2215ull, 0xf5f4f1055197c8baull},
      {DType::Q5_0, 0xc4788018c9d84dfbull, 0xd241ee07cdb27859ull},
      {DType::Q5_1, 0x59674bec135a7b53ull, 0xbb053f6478439c62ull},
      {DType::Q8_0, 0x5d620c935c190cceull, 0x6b6bc4cf0d927cf4ull},
      {DType::Q2_K, 0xdc4753e26afa2e2cull, 0x9b66543219f7cc6cull},
      {DType::Q3_K, 0xec059f11d45fc42dull, 0xa1d114f38eac3b71ull},
      {DType::Q4_K, 0xfa1273e72133ea75ull, 0x08ee8d18f38576c5ull},
      {DType::Q5_K, 0x8962dd49d46ec923ull, 0xd845d64efead0a00ull},
      {DType::Q6_K, 0xa1a9df117cfd37ebull, 0xf9f6d4e8171036d5ull},
  };
  const auto x = test::bulk_input();
  ASSERT_EQ(test::fnv1a64(x.data(), x.size() * 4), 0xe6e1e7bc692c8087ull);
  ThreadPool pool(2);
  std::vector<float> back(x.size());
  for (KernelIsa isa : test::available_isas()) {
    test::IsaScope scope(isa);
    ASSERT_TRUE(scope.ok());
    for (const H& h : want) {
      std::vector<std::byte> q(dtype_nbytes(h.t, x.size()).value());
      ASSERT_TRUE(quantize_rows(h.t, x.data(), test::kBulkRows, kRefRowLen, q, &pool).ok());
      EXPECT_EQ(test::fnv1a64(q.data(), q.size()), h.bytes) << dtype_name(h.t) << " " << kernel_isa_name(isa);
      ASSERT_TRUE(dequantize(h.t, q, back.data(), int64_t(back.size())).ok());
      EXPECT_EQ(test::fnv1a64(back.data(), back.size() * 4), h.deq) << dtype_name(h.t);
    }
  }
}

TEST(QuantReference, PlainWidening) {
  const auto x = test::reference_input();
  for (DType t : {DType::F16, DType::BF16, DType::F32}) {
    std::vector<std::byte> q(x.size() * dtype_size(t));
    ASSERT_TRUE(quantize_rows(t, x.data(), kRefRows, kRefRowLen, q).ok());
    std::vector<float> back(x.size());
    ASSERT_TRUE(dequantize(t, q, back.data(), int64_t(back.size())).ok());
    if (t == DType::F32) {
      EXPECT_EQ(std::memcmp(back.data(), x.data(), x.size() * 4), 0);
    }
    // Widening is exact: re-narrowing the widened values gives the same bytes.
    std::vector<std::byte> q2(q.size());
    ASSERT_TRUE(quantize_rows(t, back.data(), kRefRows, kRefRowLen, q2).ok());
    EXPECT_EQ(q, q2) << dtype_name(t);
  }
}

// ggml_compute_fp32_to_fp16 / _bf16 on special inputs, values printed by the reference program.
TEST(QuantReference, SpecialValuesFollowGgml) {
  struct S { uint32_t in; uint16_t f16, bf16; };
  const S cases[] = {
      {0x7FC00000u, 0x7E00, 0x7FC0},  // NaN: f16 drops the payload, bf16 keeps the top bits
      {0xFFC00000u, 0xFE00, 0xFFC0},  {0x7F800001u, 0x7E00, 0x7FC0},  // signalling NaN made quiet
      {0xFF812345u, 0xFE00, 0xFFC1},  {0x7F800000u, 0x7C00, 0x7F80},  {0xFF800000u, 0xFC00, 0xFF80},
      {0x80000000u, 0x8000, 0x8000},  {0x477FF000u, 0x7C00, 0x4780},  // 65520 rounds to inf
      {0x477FEFFFu, 0x7BFF, 0x4780},  {0x33000000u, 0x0000, 0x3300},  // 2^-25: tie to even 0
      {0x33000001u, 0x0001, 0x3300},  {0x387FC000u, 0x03FF, 0x3880},  {0x00000001u, 0x0000, 0x0000},
      {0x3F807FFFu, 0x3C04, 0x3F80},  {0x3F808000u, 0x3C04, 0x3F80},  {0x3F818000u, 0x3C0C, 0x3F82},
  };
  for (const S& c : cases) {
    const float f = std::bit_cast<float>(c.in);
    uint16_t h, b;
    ASSERT_TRUE(quantize_rows(DType::F16, &f, 1, 1, std::as_writable_bytes(std::span(&h, 1))).ok());
    ASSERT_TRUE(quantize_rows(DType::BF16, &f, 1, 1, std::as_writable_bytes(std::span(&b, 1))).ok());
    EXPECT_EQ(h, c.f16) << std::hex << c.in;
    EXPECT_EQ(b, c.bf16) << std::hex << c.in;
  }
}

}  // namespace
}  // namespace mc::quant
