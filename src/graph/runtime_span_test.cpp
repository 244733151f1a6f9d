// The calibration hooks of the runtime: run_span over every op equals forward_all; spans chain
// through the values they hand over; set_weight changes what the ops read and restore_weight
// undoes it; the MatMul hook sees each Linear's input.
#include <gtest/gtest.h>

#include "graph/runtime.h"
#include "graph/test_support.h"

namespace mc::graph {
namespace {

TEST(RuntimeSpan, SpansEqualForwardAndWeightsCanBeReplaced) {
  const Model m = test::synthetic_llama({});
  auto rt = Runtime::load(m, 2);
  ASSERT_TRUE(rt) << rt.error().render();
  const std::vector<int32_t> ids = {1, 5, 9, 42, 7, 60, 3};
  auto full = rt->forward_all(ids);
  ASSERT_TRUE(full);
  const Graph& g = rt->graph();
  const ValueId logits = g.logits;
  // In two halves: the residual stream after layer 0 is handed over.
  size_t cut = 0;
  while (!g.ops[cut].name.starts_with("layers.1.")) ++cut;
  const ValueId h = g.ops[cut].inputs[0];
  std::vector<size_t> hooked;
  auto first = rt->run_span(0, cut, ids, {}, std::span(&h, 1), [&](size_t op, const float*, int64_t S, int64_t K) -> Status {
    EXPECT_EQ(S, 7);
    EXPECT_EQ(K, g.values[static_cast<size_t>(g.ops[op].inputs[0])].width);
    hooked.push_back(op);
    return {};
  });
  ASSERT_TRUE(first) << first.error().render();
  EXPECT_EQ(hooked.size(), 7u);  // q, k, v, o, gate, up, down of layer 0
  const std::pair<ValueId, const float*> in{h, (*first)[0].data()};
  auto second = rt->run_span(cut, g.ops.size(), ids, std::span(&in, 1), std::span(&logits, 1));
  ASSERT_TRUE(second) << second.error().render();
  const int64_t V = g.vocab_size;
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t v = 0; v < V; ++v) ASSERT_EQ((*second)[0][t * static_cast<size_t>(V) + static_cast<size_t>(v)], (*full)[t][static_cast<size_t>(v)]);
  // A replaced weight changes the output; restoring it brings the old one back.
  const std::string w = "model.layers.1.mlp.down_proj.weight", n = "model.layers.1.input_layernorm.weight";
  const TensorEntry* e = m.tensors.find(w);
  ASSERT_TRUE(rt->set_weight(w, std::vector<float>(e->numel(), 0.0f)));
  ASSERT_TRUE(rt->set_weight(n, std::vector<float>(32, 2.0f)));
  auto changed = rt->forward_all(ids);
  ASSERT_TRUE(changed);
  EXPECT_GT(test::max_abs_diff(*changed, *full), 1e-3);
  EXPECT_FALSE(rt->set_weight(w, std::vector<float>(3, 0.0f)));  // wrong size
  rt->restore_weight(w);
  rt->restore_weight(n);
  auto back = rt->forward_all(ids);
  ASSERT_TRUE(back);
  EXPECT_EQ(test::max_abs_diff(*back, *full), 0.0);
  // A span missing an input it reads is an error, not a crash.
  EXPECT_FALSE(rt->run_span(cut, g.ops.size(), ids, {}, std::span(&logits, 1)));
}

}  // namespace
}  // namespace mc::graph
