#include "graph/compare.h"

#include <algorithm>
#include <cmath>

namespace mc::graph {

namespace {
double log_sum_exp(const std::vector<float>& x) {
  double mx = -INFINITY;
  for (float v : x) mx = std::max(mx, static_cast<double>(v));
  double s = 0;
  for (float v : x) s += std::exp(static_cast<double>(v) - mx);
  return mx + std::log(s);
}
size_t argmax(const std::vector<float>& x) {
  return static_cast<size_t>(std::max_element(x.begin(), x.end()) - x.begin());
}
}  // namespace

double kl_divergence(const std::vector<float>& p, const std::vector<float>& q) {
  const double lp = log_sum_exp(p), lq = log_sum_exp(q);
  double kl = 0;
  for (size_t i = 0; i < p.size() && i < q.size(); ++i) {
    const double a = static_cast<double>(p[i]) - lp, b = static_cast<double>(q[i]) - lq;
    kl += std::exp(a) * (a - b);
  }
  return std::max(0.0, kl);  // rounding can give -1e-17
}

Result<LogitComparison> compare_logits(const std::vector<std::vector<float>>& src,
                                       const std::vector<std::vector<float>>& oth) {
  if (src.empty() || src[0].empty())
    return make_error(ErrorCode::InvalidArgument, "no logits to compare");
  if (src.size() != oth.size())
    return make_error(ErrorCode::Mismatch, "source has {} positions, the other model {}", src.size(), oth.size());
  LogitComparison r;
  r.positions = static_cast<int64_t>(src.size());
  r.vocab = static_cast<int64_t>(src[0].size());
  r.source_min = INFINITY;
  r.source_max = -INFINITY;
  int64_t agree = 0;
  double kl_sum = 0;
  for (size_t t = 0; t < src.size(); ++t) {
    const auto &a = src[t], &b = oth[t];
    if (a.size() != static_cast<size_t>(r.vocab) || b.size() != a.size()) {
      return make_error(ErrorCode::Mismatch, "position {}: source has {} logits, the other model {}", t,
                        a.size(), b.size())
          .with_hint("the two models have different vocabulary sizes");
    }
    for (size_t i = 0; i < a.size(); ++i) {
      if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
        return make_error(ErrorCode::InvalidArgument, "position {}, token {}: logit is not finite (source {}, other {})",
                          t, i, a[i], b[i]);
      r.max_abs_diff = std::max(r.max_abs_diff, std::fabs(static_cast<double>(a[i]) - b[i]));
      r.source_min = std::min(r.source_min, static_cast<double>(a[i]));
      r.source_max = std::max(r.source_max, static_cast<double>(a[i]));
    }
    const bool m = argmax(a) == argmax(b);
    r.top1_match.push_back(m);
    agree += m ? 1 : 0;
    const double kl = kl_divergence(a, b);
    r.kl.push_back(kl);
    kl_sum += kl;
    r.max_kl = std::max(r.max_kl, kl);
  }
  const double range = r.source_max - r.source_min;
  r.rel_max_abs_diff = range > 0 ? r.max_abs_diff / range : 0.0;
  r.top1_agreement = static_cast<double>(agree) / static_cast<double>(r.positions);
  r.mean_kl = kl_sum / static_cast<double>(r.positions);
  return r;
}

}  // namespace mc::graph
