// The MLX module quantizer reads each source row once when its scales and biases may be kept,
// gives the same bytes whatever the order the three tensors are pulled in, and the same bytes as
// when nothing may be kept (every tensor computed from the source rows).
#include <gtest/gtest.h>

#include <atomic>
#include <random>

#include "formats/mlx/affine.h"
#include "formats/mlx/module_quant.h"

namespace mc::mlx {
namespace {

// f32 rows that count how many row-reads they serve.
class CountingRows final : public TensorData {
 public:
  CountingRows(std::vector<float> v, uint64_t row_bytes) : v_(std::move(v)), row_bytes_(row_bytes) {}
  Status read(uint64_t offset, std::span<std::byte> dst) const override {
    std::memcpy(dst.data(), reinterpret_cast<const std::byte*>(v_.data()) + offset, dst.size());
    rows_read += dst.size() / row_bytes_;
    return {};
  }
  mutable std::atomic<uint64_t> rows_read{0};

 private:
  std::vector<float> v_;
  uint64_t row_bytes_;
};

struct Pulled {
  std::vector<std::byte> w, s, b;
};

// Pulls the three tensors as the stream writer does (chunks of whole rows, each released after
// use), in the order given by `order` (0 weight, 1 scales, 2 biases).
Pulled pull(const std::array<TensorEntry, 3>& t, const std::vector<int>& order, int64_t rows_per_chunk) {
  Pulled p;
  std::vector<std::byte>* out[3] = {&p.w, &p.s, &p.b};
  for (int which : order) {
    const TensorEntry& e = t[size_t(which)];
    out[which]->resize(e.nbytes());
    const uint64_t row = e.nbytes() / uint64_t(e.shape[0]);
    for (int64_t r = 0; r < e.shape[0]; r += rows_per_chunk) {
      const uint64_t n = uint64_t(std::min<int64_t>(rows_per_chunk, e.shape[0] - r)) * row;
      EXPECT_TRUE(e.data->read(uint64_t(r) * row, {out[which]->data() + uint64_t(r) * row, n}).ok());
      e.data->release(uint64_t(r) * row, n);
    }
  }
  return p;
}

TEST(MlxModuleQuant, EachRowReadOnceAndTheSameBytesInAnyOrder) {
  const int64_t rows = 48, cols = 256;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> v(size_t(rows * cols));
  for (auto& x : v) x = nd(rng);
  auto make = [&](int64_t budget_bytes, std::shared_ptr<CountingRows>* src) {
    *src = std::make_shared<CountingRows>(v, uint64_t(cols) * 4);
    TensorEntry e{"model.layers.0.mlp.up_proj.weight", DType::F32, {rows, cols}, *src};
    return quantized_module(e, DType::F16, 4, 64, std::make_shared<ParamBudget>(budget_bytes));
  };
  std::shared_ptr<CountingRows> kept_src, none_src, other_src;
  const Pulled kept = pull(make(kDefaultParamBudget, &kept_src), {0, 1, 2}, 5);
  EXPECT_EQ(kept_src->rows_read.load(), uint64_t(rows)) << "weight first: scales and biases come from the kept rows";
  const Pulled none = pull(make(0, &none_src), {0, 1, 2}, 5);
  EXPECT_EQ(none_src->rows_read.load(), uint64_t(3 * rows)) << "nothing kept: every tensor reads the rows";
  const Pulled other = pull(make(kDefaultParamBudget, &other_src), {2, 0, 1}, 7);
  EXPECT_EQ(other_src->rows_read.load(), uint64_t(2 * rows)) << "biases first: the weight needs the rows again";
  EXPECT_EQ(kept.w, none.w);
  EXPECT_EQ(kept.s, none.s);
  EXPECT_EQ(kept.b, none.b);
  EXPECT_EQ(kept.w, other.w);
  EXPECT_EQ(kept.s, other.s);
  EXPECT_EQ(kept.b, other.b);

  // And they are MLX's affine quantization of the f16-rounded rows (values independent of the cache).
  std::vector<float> row(static_cast<size_t>(cols)), sc(static_cast<size_t>(cols / 64)), bi(static_cast<size_t>(cols / 64));
  std::vector<uint32_t> packed(size_t(packed_words(cols, 4)));
  std::vector<uint8_t> scratch(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; r += 13) {
    for (int64_t c = 0; c < cols; ++c) row[size_t(c)] = f16_to_f32(f32_to_f16(v[size_t(r * cols + c)]));
    quantize_row(row.data(), cols, 4, 64, packed.data(), sc.data(), bi.data(), scratch.data());
    EXPECT_EQ(0, std::memcmp(kept.w.data() + uint64_t(r) * packed.size() * 4, packed.data(), packed.size() * 4));
    for (size_t g = 0; g < sc.size(); ++g) {
      uint16_t s16, b16;
      std::memcpy(&s16, kept.s.data() + (uint64_t(r) * sc.size() + g) * 2, 2);
      std::memcpy(&b16, kept.b.data() + (uint64_t(r) * sc.size() + g) * 2, 2);
      EXPECT_EQ(s16, f32_to_f16(sc[g]));
      EXPECT_EQ(b16, f32_to_f16(bi[g]));
    }
  }
}

TEST(MlxModuleQuant, BudgetIsTakenByTheFirstKeptRowAndReturnedOnceAllThreeAreWritten) {
  auto budget = std::make_shared<ParamBudget>(4096);
  std::vector<float> v(size_t(8 * 64), 0.25f);
  TensorEntry e{"x.weight", DType::F32, {8, 64}, make_owned_data(std::vector<std::byte>(
                    reinterpret_cast<const std::byte*>(v.data()), reinterpret_cast<const std::byte*>(v.data() + v.size())))};
  {
    auto t = quantized_module(e, DType::F16, 8, 64, budget);  // keeps 2 x 8 rows x 2 bytes
    EXPECT_TRUE(budget->take(4096)) << "nothing is held before a row is kept";
    budget->give(4096);
    pull(t, {0}, 3);
    EXPECT_FALSE(budget->take(4096 - 31)) << "the weight is written: 32 bytes are held";
    pull(t, {1, 2}, 3);
    EXPECT_TRUE(budget->take(4096)) << "all three written: the kept rows were given back";
    budget->give(4096);
  }
}

// Each module's scales and biases are pulled `lag` modules after its weight; other tensors, and
// a packed weight that is not followed by its own scales and biases, keep their place.
TEST(MlxModuleQuant, PullOrderDefersScalesAndBiasesByLagModules) {
  TensorStore s;
  auto put = [&](const std::string& name, DType t) { s.put(TensorEntry{name, t, {1}, nullptr}); };
  for (int m = 0; m < 4; ++m) {
    const std::string p = "l." + std::to_string(m);
    put(p + ".weight", DType::U32);  // 0, 4, 7, 10 (the norm is 3)
    put(p + ".scales", DType::F16);
    put(p + ".biases", DType::F16);
    if (m == 0) put("norm.weight", DType::F16);  // 3
  }
  put("odd.weight", DType::U32);    // 13: not followed by scales/biases of its own
  put("other.scales", DType::F16);  // 14
  put("other.biases", DType::F16);  // 15
  EXPECT_EQ(module_pull_order(s, 2), (std::vector<size_t>{0, 3, 4, 7, 1, 2, 10, 5, 6, 13, 14, 15, 8, 9, 11, 12}))
      << "module 0's pair after module 2's weight, 1's after 3's, the last two at the end";
  EXPECT_EQ(module_pull_order(s, 0), (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}))
      << "lag 0: store order";
}

}  // namespace
}  // namespace mc::mlx
