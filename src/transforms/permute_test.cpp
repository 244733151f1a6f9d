// q/k row permutation (formats.md §2.9, §12): hand-checked rows, round trip, and the property
// that justifies it: rotate-half RoPE on HF rows == adjacent-pair RoPE on permuted rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "transforms/transforms.h"

namespace mc::transforms {
namespace {

// rows x cols tensor whose row r holds r*100 + c, so a row's first value names it.
TensorEntry rows_tensor(int64_t rows, int64_t cols, DType dt = DType::F32) {
  std::vector<float> v(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) v[size_t(r * cols + c)] = float(r * 100 + c);
  return make_tensor_f32("q", cols == 1 ? Shape{rows} : Shape{rows, cols}, v, dt);
}

std::vector<int> row_ids(const TensorEntry& e, int64_t cols) {
  auto v = *read_f32(e);
  std::vector<int> out;
  for (size_t i = 0; i < v.size(); i += size_t(cols)) out.push_back(int(std::lround(v[i])) / 100);
  return out;
}

TEST(PermuteQk, HandCheckedOneHead) {
  // hd = 8: HF rows (i, i + 4) form pair i; the pair layout puts them at 2i, 2i + 1.
  auto p = permute_qk_tensor(rows_tensor(8, 3), 1, QkDirection::HfToPairs);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(row_ids(*p, 3), (std::vector<int>{0, 4, 1, 5, 2, 6, 3, 7}));
  auto q = permute_qk_tensor(rows_tensor(8, 3), 1, QkDirection::PairsToHf);
  ASSERT_TRUE(q.ok());
  // llama2.c -> HF (§12): new row j < hd/2 is old row 2j, new row hd/2 + j is old row 2j + 1.
  EXPECT_EQ(row_ids(*q, 3), (std::vector<int>{0, 2, 4, 6, 1, 3, 5, 7}));
  // Two heads of 4 rows each: the permutation stays inside each head.
  auto two = permute_qk_tensor(rows_tensor(8, 2), 2, QkDirection::HfToPairs);
  EXPECT_EQ(row_ids(*two, 2), (std::vector<int>{0, 2, 1, 3, 4, 6, 5, 7}));
  // 1-D bias.
  auto bias = permute_qk_tensor(rows_tensor(8, 1), 1, QkDirection::PairsToHf);
  EXPECT_EQ(row_ids(*bias, 1), (std::vector<int>{0, 2, 4, 6, 1, 3, 5, 7}));
}

TEST(PermuteQk, RoundTripIsIdentityAndPartialReadsWork) {
  const auto t = rows_tensor(24, 5, DType::BF16);  // 3 heads of 8
  auto fwd = permute_qk_tensor(t, 3, QkDirection::HfToPairs);
  ASSERT_TRUE(fwd.ok());
  auto back = permute_qk_tensor(*fwd, 3, QkDirection::PairsToHf);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*read_all(*back), *read_all(t));
  EXPECT_NE(*read_all(*fwd), *read_all(t));
  // A read spanning parts of three rows equals the same slice of the whole tensor.
  auto whole = *read_all(*fwd);
  std::vector<std::byte> part(25);
  ASSERT_TRUE(fwd->data->read(7, part).ok());
  EXPECT_EQ(0, std::memcmp(part.data(), whole.data() + 7, 25));
  EXPECT_EQ(fwd->data->chunk_align(), 10u);  // one bf16 row of 5
}

TEST(PermuteQk, RopeEquivalence) {
  // For W (HF layout) and x: rotate_half-RoPE(W x) permuted == pair-RoPE((P W) x).
  const int hd = 8, heads = 2, cols = 3, pos = 5;
  std::vector<float> w(size_t(hd * heads * cols)), x = {0.3f, -1.2f, 0.7f};
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(float(i) * 1.7f);
  auto t = make_tensor_f32("q", {hd * heads, cols}, w);
  auto p = permute_qk_tensor(t, heads, QkDirection::HfToPairs);
  ASSERT_TRUE(p.ok());
  auto wp = *read_f32(*p);
  auto matvec = [&](const std::vector<float>& m) {
    std::vector<double> y(size_t(hd * heads));
    for (size_t r = 0; r < y.size(); ++r)
      for (int c = 0; c < cols; ++c) y[r] += double(m[r * cols + size_t(c)]) * x[size_t(c)];
    return y;
  };
  auto yh = matvec(w), yp = matvec(wp);
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < hd / 2; ++i) {
      const double ang = pos * std::pow(10000.0, -2.0 * i / hd);
      const double c = std::cos(ang), s = std::sin(ang);
      const size_t a = size_t(h * hd + i), b = size_t(h * hd + i + hd / 2);  // HF pair
      const size_t e = size_t(h * hd + 2 * i), o = e + 1;                    // adjacent pair
      const double hf0 = yh[a] * c - yh[b] * s, hf1 = yh[b] * c + yh[a] * s;
      const double pr0 = yp[e] * c - yp[o] * s, pr1 = yp[e] * s + yp[o] * c;
      EXPECT_NEAR(hf0, pr0, 1e-12);
      EXPECT_NEAR(hf1, pr1, 1e-12);
    }
  }
}

TEST(PermuteQk, ModelUsesHeadsAndKvHeads) {
  Model m;
  m.config = ojson::parse(R"({"model_type":"llama","hidden_size":8,"intermediate_size":4,
      "num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":4})");
  m.tensors.put(rows_tensor(8, 8));
  auto q = rows_tensor(8, 8);
  q.name = "model.layers.0.self_attn.q_proj.weight";
  auto k = rows_tensor(4, 8);
  k.name = "model.layers.0.self_attn.k_proj.weight";
  auto v = rows_tensor(4, 8);
  v.name = "model.layers.0.self_attn.v_proj.weight";
  m.tensors.put(q);
  m.tensors.put(k);
  m.tensors.put(v);
  auto r = permute_qk(m, QkDirection::HfToPairs);
  ASSERT_TRUE(r.ok()) << r.error().render();
  EXPECT_EQ(row_ids(*r->tensors.find(q.name), 8), (std::vector<int>{0, 2, 1, 3, 4, 6, 5, 7}));  // 2 heads of 4
  EXPECT_EQ(row_ids(*r->tensors.find(k.name), 8), (std::vector<int>{0, 2, 1, 3}));  // 1 kv head of 4
  EXPECT_EQ(r->tensors.find(v.name)->data, v.data);                                 // v untouched

  auto bad = permute_qk_tensor(rows_tensor(6, 2), 4, QkDirection::HfToPairs);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::Mismatch);
  m.config = ojson::parse(R"({"model_type":"gpt2","n_embd":8,"n_layer":1,"n_head":2,"vocab_size":4})");
  EXPECT_EQ(permute_qk(m, QkDirection::HfToPairs).error().code, ErrorCode::InvalidArgument);
}

// Rows permuted inside a head come from one read of the head's rows, not one read per row (a
// file source pays a system call per read); rows gathered from far apart are still read in runs.
TEST(PermuteQk, RowsOfAHeadAreReadInOneCall) {
  const int64_t rows = 32, cols = 4;  // 4 heads of 8
  const auto src = rows_tensor(rows, cols);
  auto calls = std::make_shared<std::vector<std::pair<uint64_t, uint64_t>>>();
  TensorEntry counted = src;
  counted.data = make_fn_data(
      [inner = src.data, calls](uint64_t off, std::span<std::byte> dst) -> Status {
        calls->emplace_back(off, dst.size());
        return inner->read(off, dst);
      },
      cols * 4);
  auto p = permute_qk_tensor(counted, 4, QkDirection::HfToPairs);
  ASSERT_TRUE(p.ok());
  const uint64_t rb = cols * 4;
  // Head 1 (rows 8..15) as a writer asks for it: one read of exactly those rows.
  std::vector<std::byte> head(8 * rb);
  ASSERT_TRUE(p->data->read(8 * rb, head).ok());
  ASSERT_EQ(calls->size(), 1u);
  EXPECT_EQ((*calls)[0], std::make_pair(8 * rb, 8 * rb));
  std::vector<float> v(8 * cols);
  std::memcpy(v.data(), head.data(), head.size());
  std::vector<int> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(int(std::lround(v[size_t(i * cols)])) / 100);
  EXPECT_EQ(ids, (std::vector<int>{8, 12, 9, 13, 10, 14, 11, 15}));
  // The whole tensor still equals the row-by-row permutation.
  calls->clear();
  EXPECT_EQ(row_ids(*p, cols), (std::vector<int>{0,  4,  1,  5,  2,  6,  3,  7,  8,  12, 9,  13, 10, 14, 11, 15,
                                                 16, 20, 17, 21, 18, 22, 19, 23, 24, 28, 25, 29, 26, 30, 27, 31}));
  EXPECT_EQ(calls->size(), 1u);
  // A gather whose rows lie far apart (here the first and last row) reads them one run each.
  calls->clear();
  auto view = row_view(counted, rows);
  ASSERT_TRUE(view.ok());
  auto far = gather_rows(std::move(*view), {0, 31});
  std::vector<std::byte> two(2 * rb);
  ASSERT_TRUE(far.read(0, 2, two.data()).ok());
  EXPECT_EQ(calls->size(), 2u);
  std::memcpy(v.data(), two.data(), two.size());
  EXPECT_EQ(v[0], 0.f);
  EXPECT_EQ(v[size_t(cols)], 3100.f);
}

}  // namespace
}  // namespace mc::transforms
