// Throughput of the reference runtime (report only, never asserted; disabled by default):
//   ./test_graph --gtest_also_run_disabled_tests --gtest_filter='RuntimeBench.*'
// MC_BENCH_THREADS sets the thread count (default 2).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "graph/runtime.h"
#include "graph/test_support.h"

namespace mc::graph {
namespace {

TEST(RuntimeBench, DISABLED_SyntheticLlama100M) {
  const test::LlamaDims d{.vocab = 16000, .hidden = 768, .layers = 12, .heads = 12, .kv_heads = 12, .inter = 2048};
  const Model m = test::synthetic_llama(d);
  const size_t threads = std::getenv("MC_BENCH_THREADS") ? std::strtoul(std::getenv("MC_BENCH_THREADS"), nullptr, 10) : 2;
  auto rt = Runtime::load(m, threads);
  ASSERT_TRUE(rt.ok()) << rt.error().render();
  std::vector<int32_t> prompt(128);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919) % 16000);
  using clk = std::chrono::steady_clock;
  auto t0 = clk::now();
  ASSERT_TRUE(rt->forward_all(prompt).ok());
  auto t1 = clk::now();
  const int64_t n_new = 32;
  ASSERT_TRUE(rt->greedy(prompt, n_new + 1).ok());  // prompt again, then n_new cached steps
  auto t2 = clk::now();
  const double prompt_s = std::chrono::duration<double>(t1 - t0).count();
  const double gen_s = std::chrono::duration<double>(t2 - t1).count() - prompt_s;
  std::printf("params %.1fM, %zu threads: prompt %zu tokens %.1f tok/s; generation %.1f tok/s\n",
              static_cast<double>(m.tensors.total_params()) / 1e6, threads, prompt.size(),
              static_cast<double>(prompt.size()) / prompt_s, static_cast<double>(n_new) / gen_s);
}

}  // namespace
}  // namespace mc::graph
