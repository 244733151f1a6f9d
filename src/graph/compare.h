// Logit comparison for `check --compare`: how far another model's logits are from the source's,
// position by position (the thresholds live with the caller; architecture.md "Verification").
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.h"

namespace mc::graph {

struct LogitComparison {
  int64_t positions = 0;
  int64_t vocab = 0;
  double max_abs_diff = 0;        // max over positions and vocab of |source - other|
  double source_min = 0, source_max = 0;  // range of the source logits
  double rel_max_abs_diff = 0;    // max_abs_diff / (source_max - source_min); 0 if the range is 0
  std::vector<bool> top1_match;   // per position: same argmax (lowest index on ties)
  double top1_agreement = 0;      // fraction of positions with the same argmax
  std::vector<double> kl;         // per position: KL(softmax(source) || softmax(other)), nats
  double mean_kl = 0, max_kl = 0;
};

// Compares [positions][vocab] logits; Mismatch when the shapes differ, InvalidArgument when empty
// or when a value is not finite (reported with its position and index).
Result<LogitComparison> compare_logits(const std::vector<std::vector<float>>& source,
                                       const std::vector<std::vector<float>>& other);

// KL(softmax(p) || softmax(q)) in nats, computed in double with log-sum-exp.
double kl_divergence(const std::vector<float>& p_logits, const std::vector<float>& q_logits);

}  // namespace mc::graph
