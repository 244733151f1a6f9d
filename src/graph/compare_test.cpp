#include <gtest/gtest.h>

#include <cmath>

#include "graph/compare.h"

namespace mc::graph {
namespace {

TEST(CompareLogits, IdenticalLogitsHaveZeroDistance) {
  const std::vector<std::vector<float>> a = {{1, 2, 3}, {0, -1, 5}};
  auto r = compare_logits(a, a);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->positions, 2);
  EXPECT_EQ(r->vocab, 3);
  EXPECT_EQ(r->max_abs_diff, 0.0);
  EXPECT_EQ(r->source_min, -1.0);
  EXPECT_EQ(r->source_max, 5.0);
  EXPECT_EQ(r->top1_agreement, 1.0);
  EXPECT_EQ(r->max_kl, 0.0);
}

TEST(CompareLogits, KnownValues) {
  // Two tokens: p = softmax(0, 0) = (1/2, 1/2), q = softmax(0, ln 3) = (1/4, 3/4).
  // KL(p||q) = 1/2 ln(2) + 1/2 ln(2/3).
  const std::vector<std::vector<float>> src = {{0, 0}, {2, 0}};
  const std::vector<std::vector<float>> oth = {{0, static_cast<float>(std::log(3.0))}, {2, 0.5f}};
  auto r = compare_logits(src, oth);
  ASSERT_TRUE(r.ok());
  const double kl0 = 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0);
  EXPECT_NEAR(r->kl[0], kl0, 1e-6);
  EXPECT_NEAR(r->max_abs_diff, std::log(3.0), 1e-6);
  EXPECT_NEAR(r->rel_max_abs_diff, std::log(3.0) / 2.0, 1e-6);
  // Position 0: argmax(0,0)=0 vs argmax(0,ln3)=1 -> mismatch; position 1 agrees.
  EXPECT_EQ(r->top1_match, (std::vector<bool>{false, true}));
  EXPECT_DOUBLE_EQ(r->top1_agreement, 0.5);
  EXPECT_NEAR(r->mean_kl, (r->kl[0] + r->kl[1]) / 2, 1e-12);
  EXPECT_GT(r->kl[1], 0.0);
  EXPECT_DOUBLE_EQ(r->max_kl, std::max(r->kl[0], r->kl[1]));
  // Shift invariance: adding a constant to all logits of a position does not change KL.
  EXPECT_NEAR(kl_divergence({10, 10}, {100, static_cast<float>(100 + std::log(3.0))}), kl0, 1e-5);
}

TEST(CompareLogits, ShapeAndValueErrors) {
  auto e1 = compare_logits({{1, 2}}, {{1, 2}, {3, 4}});
  ASSERT_FALSE(e1.ok());
  EXPECT_EQ(e1.error().code, ErrorCode::Mismatch);
  auto e2 = compare_logits({{1, 2}}, {{1, 2, 3}});
  ASSERT_FALSE(e2.ok());
  EXPECT_EQ(e2.error().code, ErrorCode::Mismatch);
  auto e3 = compare_logits({{1, NAN}}, {{1, 2}});
  ASSERT_FALSE(e3.ok());
  EXPECT_EQ(e3.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(e3.error().message.find("position 0, token 1"), std::string::npos);
  EXPECT_FALSE(compare_logits({}, {}).ok());
}

}  // namespace
}  // namespace mc::graph
