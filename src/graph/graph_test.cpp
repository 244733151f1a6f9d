// Structure of the per-architecture graphs: op order, names, weights, scales and the weight check.
#include <gtest/gtest.h>

#include <cmath>

#include "graph/graph.h"
#include "graph/test_support.h"

namespace mc::graph {
namespace {

const Op* find_op(const Graph& g, std::string_view name) {
  for (const auto& op : g.ops)
    if (op.name == name) return &op;
  return nullptr;
}

TEST(GraphBuild, LlamaLayerIsSpelledOutWithHfNames) {
  const Model m = test::synthetic_llama({});
  auto g = build_graph(m);
  ASSERT_TRUE(g.ok()) << g.error().render();
  // embed + 2 layers x 15 ops + norm + lm_head
  EXPECT_EQ(g->ops.size(), 1u + 2u * 15u + 2u);
  EXPECT_EQ(g->values[0].name, "input_ids");
  EXPECT_EQ(g->values[1].name, "position_ids");
  const Op* q = find_op(*g, "layers.1.attn.q_proj");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->kind, OpKind::MatMul);
  EXPECT_EQ(q->weight, "model.layers.1.self_attn.q_proj.weight");
  EXPECT_TRUE(q->bias.empty());
  const Op* at = find_op(*g, "layers.0.attn.attention");
  ASSERT_NE(at, nullptr);
  EXPECT_EQ(at->attn.n_heads, 4);
  EXPECT_EQ(at->attn.n_kv_heads, 2);
  EXPECT_EQ(at->attn.head_dim, 8);
  EXPECT_DOUBLE_EQ(at->attn.scale, 1.0 / std::sqrt(8.0));
  EXPECT_FALSE(at->attn.window.has_value());
  const Op* rope = find_op(*g, "layers.0.attn.k_rope");
  ASSERT_NE(rope, nullptr);
  EXPECT_EQ(rope->rope.n_heads, 2);
  ASSERT_EQ(rope->rope.inv_freq.size(), 4u);
  EXPECT_FLOAT_EQ(rope->rope.inv_freq[0], 1.0f);
  EXPECT_FLOAT_EQ(rope->rope.inv_freq[2], static_cast<float>(1.0 / std::pow(10000.0, 0.5)));
  EXPECT_EQ(g->ops.back().weight, "lm_head.weight");
  EXPECT_EQ(g->values[static_cast<size_t>(g->logits)].width, 96);
  EXPECT_TRUE(check_weights(*g, m.tensors).ok());
  // Every op's inputs exist before it runs.
  std::vector<bool> defined(g->values.size(), false);
  defined[0] = defined[1] = true;
  for (const auto& op : g->ops) {
    for (ValueId v : op.inputs) EXPECT_TRUE(defined[static_cast<size_t>(v)]) << op.name;
    defined[static_cast<size_t>(op.output)] = true;
  }
}

TEST(GraphBuild, TiedHeadUsesTheEmbedding) {
  Model m = test::synthetic_llama({});
  m.tensors.erase("lm_head.weight");
  auto g = build_graph(m);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->ops.back().weight, "model.embed_tokens.weight");
  const auto names = g->weight_names();
  EXPECT_EQ(std::count(names.begin(), names.end(), "model.embed_tokens.weight"), 1);
  EXPECT_EQ(names.size(), 1u + 2u * 9u + 1u);
}

TEST(GraphBuild, MiniCpmKeepsItsMupScalesAsOps) {
  Model m = test::synthetic_llama({});
  m.config["model_type"] = "minicpm";
  m.config["scale_emb"] = 12;
  m.config["scale_depth"] = 1.4;
  m.config["dim_model_base"] = 16;
  auto g = build_graph(m);
  ASSERT_TRUE(g.ok());
  const Op* e = find_op(*g, "embed_scale");
  const Op* r = find_op(*g, "layers.1.mlp.residual_scale");
  const Op* l = find_op(*g, "logit_scale");
  ASSERT_TRUE(e && r && l);
  EXPECT_DOUBLE_EQ(e->scale, 12.0);
  EXPECT_DOUBLE_EQ(r->scale, 1.4 / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(l->scale, 16.0 / 32.0);
  EXPECT_NE(find_op(*g, "layers.0.attn.residual_scale"), nullptr);
}

TEST(GraphBuild, Qwen2BiasesAndPerLayerWindow) {
  Model m = test::synthetic_llama({.layers = 3});
  m.config["model_type"] = "qwen2";
  m.config["use_sliding_window"] = true;
  m.config["sliding_window"] = 5;
  m.config["max_window_layers"] = 2;
  auto g = build_graph(m);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(find_op(*g, "layers.0.attn.k_proj")->bias, "model.layers.0.self_attn.k_proj.bias");
  EXPECT_TRUE(find_op(*g, "layers.0.attn.o_proj")->bias.empty());
  EXPECT_FALSE(find_op(*g, "layers.1.attn.attention")->attn.window.has_value());
  EXPECT_EQ(find_op(*g, "layers.2.attn.attention")->attn.window, 5);
  // The biases are not in the synthetic store: the check names the first one.
  auto st = check_weights(*g, m.tensors);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::NotFound);
  EXPECT_EQ(st.error().tensor, "model.layers.0.self_attn.q_proj.bias");
}

TEST(GraphBuild, Gpt2UsesConv1DLayoutAndSlices) {
  Model m;
  m.config = ojson{{"model_type", "gpt2"}, {"vocab_size", 50}, {"n_embd", 16}, {"n_layer", 1}, {"n_head", 2},
                   {"n_positions", 8}};
  m.tensors.put(make_tensor_f32("wte.weight", {50, 16}, std::vector<float>(800)));
  auto g = build_graph(m);
  ASSERT_TRUE(g.ok()) << g.error().render();
  const Op* c = find_op(*g, "h.0.attn.c_attn");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->weight_in_out);
  EXPECT_EQ(c->weight, "h.0.attn.c_attn.weight");  // no "transformer." prefix in this store
  EXPECT_EQ(g->values[static_cast<size_t>(c->output)].width, 48);
  const Op* v = find_op(*g, "h.0.attn.v");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->begin, 32);
  EXPECT_EQ(v->end, 48);
  EXPECT_EQ(g->ops.back().weight, "wte.weight");
  EXPECT_EQ(g->max_positions, 8);
  EXPECT_NE(g->to_string().find("h.0.mlp.act = GELUTanh(h.0.mlp.c_fc) -> [64]"), std::string::npos)
      << g->to_string();
}

TEST(GraphBuild, RopeScalingRules) {
  Model m = test::synthetic_llama({});
  m.config["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  auto lin = build_graph(m);
  ASSERT_TRUE(lin.ok());
  EXPECT_FLOAT_EQ(find_op(*lin, "layers.0.attn.q_rope")->rope.inv_freq[0], 0.25f);
  // llama3, original context 64: wavelength 2*pi (freq 1) < 64/4 stays, 2*pi/0.1 lies between
  // 64/4 and 64/1 and is smoothed, freq 1e-3 is divided by the factor.
  m.config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  auto l3 = build_graph(m);
  ASSERT_TRUE(l3.ok());
  const auto& f = find_op(*l3, "layers.0.attn.q_rope")->rope.inv_freq;
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  const double f1 = std::pow(10000.0, -0.25), smooth = (64.0 / (2 * M_PI / f1) - 1.0) / 3.0;
  EXPECT_NEAR(f[1], (1 - smooth) * f1 / 8 + smooth * f1, 1e-7);
  EXPECT_FLOAT_EQ(f[3], static_cast<float>(std::pow(10000.0, -0.75) / 8.0));
  m.config["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  auto dyn = build_graph(m);
  ASSERT_FALSE(dyn.ok());
  EXPECT_EQ(dyn.error().code, ErrorCode::Unsupported);
  EXPECT_NE(dyn.error().message.find("'dynamic'"), std::string::npos);
}

TEST(GraphBuild, ShapeMismatchNamesTensorAndShapes) {
  Model m = test::synthetic_llama({});
  m.tensors.put(make_tensor_f32("model.norm.weight", {31}, std::vector<float>(31)));
  auto g = build_graph(m);
  ASSERT_TRUE(g.ok());
  auto st = check_weights(*g, m.tensors);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Mismatch);
  EXPECT_EQ(st.error().tensor, "model.norm.weight");
  EXPECT_NE(st.error().message.find("needs shape [32], the tensor has [31]"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace mc::graph
