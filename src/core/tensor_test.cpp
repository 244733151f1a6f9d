// TensorStore bookkeeping, shape_numel checks, and the in-memory TensorData helpers.
#include <gtest/gtest.h>

#include <limits>

#include "core/tensor.h"

namespace mc {
namespace {

TensorEntry entry(std::string name, DType t, Shape s) {
  return TensorEntry{std::move(name), t, std::move(s), nullptr};
}

std::vector<std::string> names(const TensorStore& st) {
  std::vector<std::string> out;
  for (const auto& e : st) out.push_back(e.name);
  return out;
}

TEST(TensorStore, PutReplaceEraseFind) {
  TensorStore st;
  EXPECT_TRUE(st.empty());
  st.put(entry("a", DType::F32, {2, 3}));
  st.put(entry("b", DType::F16, {4}));
  st.put(entry("c", DType::BF16, {5, 1}));
  EXPECT_EQ(names(st), (std::vector<std::string>{"a", "b", "c"}));
  // Replacing keeps the original position.
  st.put(entry("a", DType::I8, {7}));
  EXPECT_EQ(names(st), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_NE(st.find("a"), nullptr);
  EXPECT_EQ(st.find("a")->dtype, DType::I8);
  EXPECT_EQ(st.total_params(), 7u + 4u + 5u);
  EXPECT_EQ(st.total_bytes(), 7u + 8u + 10u);
  // Erase, then the index must still find the entries that moved.
  EXPECT_TRUE(st.erase("b"));
  EXPECT_FALSE(st.erase("b"));
  EXPECT_EQ(names(st), (std::vector<std::string>{"a", "c"}));
  ASSERT_NE(st.find("c"), nullptr);
  EXPECT_EQ(st.find("c")->shape, (Shape{5, 1}));
  EXPECT_EQ(&st[1], st.find("c"));
  EXPECT_FALSE(st.contains("b"));
  st.put(entry("b", DType::F64, {1}));
  EXPECT_EQ(names(st), (std::vector<std::string>{"a", "c", "b"}));
  EXPECT_EQ(st.size(), 3u);
}

TEST(TensorStore, RequireNamesTheMissingTensor) {
  TensorStore st;
  st.put(entry("x", DType::F32, {1}));
  auto ok = st.require("x");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->name, "x");
  auto r = st.require("model.embed_tokens.weight");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::NotFound);
  EXPECT_EQ(r.error().tensor, "model.embed_tokens.weight");
  EXPECT_NE(r.error().render().find("tensor 'model.embed_tokens.weight'"), std::string::npos);
}

TEST(Shape, NumelChecksOverflowAndNegatives) {
  EXPECT_EQ(*shape_numel({}), 1u);
  EXPECT_EQ(*shape_numel({4096, 11008}), 4096u * 11008u);
  EXPECT_EQ(*shape_numel({0, int64_t(1) << 62, int64_t(1) << 62}), 0u);
  EXPECT_EQ(*shape_numel({int64_t(1) << 31, int64_t(1) << 32}), uint64_t(1) << 63);
  auto r = shape_numel({int64_t(1) << 32, int64_t(1) << 32});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::LimitExceeded);
  EXPECT_NE(r.error().message.find("[4294967296, 4294967296]"), std::string::npos);
  r = shape_numel({std::numeric_limits<int64_t>::max(), 3});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::LimitExceeded);
  r = shape_numel({3, -1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Corrupt);
  EXPECT_EQ(shape_str({3, -1}), "[3, -1]");
}

TEST(TensorData, MakeTensorAndReadBack) {
  const std::vector<float> v{1.0f, -2.5f, 3.0f, 1.00390625f};  // last one rounds in bf16
  const auto e = make_tensor_f32("w", {2, 2}, v, DType::BF16);
  EXPECT_EQ(e.nbytes(), 8u);
  const auto back = read_f32(e);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, (std::vector<float>{1.0f, -2.5f, 3.0f, 1.0f}));
  const auto raw = read_all(e);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(uint8_t((*raw)[2]), 0x20);  // -2.5 in bf16 is 0xC020, little endian
  EXPECT_EQ(uint8_t((*raw)[3]), 0xC0);
  std::vector<std::byte> buf(4);
  const Status st = e.data->read(6, buf);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Internal);
  TensorEntry q{"q", DType::Q4_0, {32}, e.data};
  const auto qf = read_f32(q);
  ASSERT_FALSE(qf.ok());
  EXPECT_EQ(qf.error().code, ErrorCode::Unsupported);
}

}  // namespace
}  // namespace mc
