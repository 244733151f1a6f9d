// mup_to_llama on a tiny MiniCPM with known numbers (formats.md §10 option A).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "transforms/transforms.h"

namespace mc::transforms {
namespace {

std::vector<float> iota(size_t n, float start) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + float(i);
  return v;
}

// hidden 4, 2 layers, vocab 3: alpha = 1.4 / sqrt(2), beta = 2 / 4.
Model tiny_minicpm(bool tied, DType dt = DType::F32) {
  Model m;
  m.config = ojson::parse(R"({
    "_name_or_path": "x", "architectures": ["MiniCPMForCausalLM"],
    "auto_map": {"AutoConfig": "configuration_minicpm.MiniCPMConfig"},
    "bos_token_id": 1, "dim_model_base": 2, "eos_token_id": [2, 5], "hidden_size": 4,
    "intermediate_size": 2, "model_type": "minicpm", "num_attention_heads": 2,
    "num_hidden_layers": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0, "scale_depth": 1.4, "scale_emb": 12, "torch_dtype": "float32",
    "vocab_size": 3})");
  if (!tied) m.config["tie_word_embeddings"] = false;
  m.tensors.put(make_tensor_f32("model.embed_tokens.weight", {3, 4}, iota(12, 1.0f), dt));
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    m.tensors.put(make_tensor_f32(p + "self_attn.q_proj.weight", {4, 4}, iota(16, 0.5f), dt));
    m.tensors.put(make_tensor_f32(p + "self_attn.o_proj.weight", {4, 4}, iota(16, -3.0f), dt));
    m.tensors.put(make_tensor_f32(p + "mlp.down_proj.weight", {4, 2}, iota(8, 2.0f), dt));
    m.tensors.put(make_tensor_f32(p + "mlp.up_proj.weight", {2, 4}, iota(8, 7.0f), dt));
    m.tensors.put(make_tensor_f32(p + "input_layernorm.weight", {4}, iota(4, 1.0f), dt));
  }
  m.tensors.put(make_tensor_f32("model.norm.weight", {4}, iota(4, 1.0f), dt));
  if (!tied) m.tensors.put(make_tensor_f32("lm_head.weight", {3, 4}, iota(12, 100.0f), dt));
  else m.tied.push_back({"lm_head.weight", "model.embed_tokens.weight"});
  return m;
}

std::vector<float> values(const Model& m, const std::string& name) {
  auto e = m.tensors.find(name);
  EXPECT_NE(e, nullptr) << name;
  if (!e) return {};
  auto v = read_f32(*e);
  EXPECT_TRUE(v.ok());
  return *v;
}

std::vector<float> scaled(std::vector<float> v, float s) {
  for (auto& x : v) x *= s;
  return v;
}

TEST(MupToLlama, TiedModelScalesAndUnties) {
  const Model m = tiny_minicpm(true);
  auto r = mup_to_llama(m);
  ASSERT_TRUE(r.ok()) << r.error().render();
  const float alpha = float(1.4 / std::sqrt(2.0));
  EXPECT_EQ(values(*r, "model.embed_tokens.weight"), scaled(iota(12, 1.0f), 12.0f));
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    EXPECT_EQ(values(*r, p + "self_attn.o_proj.weight"), scaled(iota(16, -3.0f), alpha));
    EXPECT_EQ(values(*r, p + "mlp.down_proj.weight"), scaled(iota(8, 2.0f), alpha));
    EXPECT_EQ(values(*r, p + "self_attn.q_proj.weight"), iota(16, 0.5f));
    EXPECT_EQ(values(*r, p + "mlp.up_proj.weight"), iota(8, 7.0f));
    EXPECT_EQ(values(*r, p + "input_layernorm.weight"), iota(4, 1.0f));
  }
  // lm_head = (dim_model_base / hidden) * ORIGINAL embedding, last in the tensor order.
  EXPECT_EQ(values(*r, "lm_head.weight"), scaled(iota(12, 1.0f), 0.5f));
  EXPECT_EQ(r->tensors[r->tensors.size() - 1].name, "lm_head.weight");
  EXPECT_TRUE(r->tied.empty());
  // Spot value by hand: embed[1][2] = 7 -> 84; o_proj[0][1] = -2 -> -2 * 0.98995 = -1.9799
  EXPECT_FLOAT_EQ(values(*r, "model.embed_tokens.weight")[6], 84.0f);
  EXPECT_NEAR(values(*r, "model.layers.0.self_attn.o_proj.weight")[1], -1.979899f, 1e-5);

  const ojson& c = r->config;
  EXPECT_TRUE(r->config_modified);
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["architectures"], ojson::array({"LlamaForCausalLM"}));
  EXPECT_EQ(c["tie_word_embeddings"], false);
  for (const char* k : {"scale_emb", "scale_depth", "dim_model_base", "auto_map"})
    EXPECT_FALSE(c.contains(k)) << k;
  for (const char* k : {"_name_or_path", "bos_token_id", "hidden_size", "num_key_value_heads", "rms_norm_eps", "rope_theta", "torch_dtype", "vocab_size"})
    EXPECT_TRUE(c.contains(k)) << k;
  EXPECT_EQ(c["eos_token_id"], ojson::array({2, 5}));
  EXPECT_EQ(c.begin().key(), "_name_or_path");  // order of kept keys unchanged
  // The input model is untouched.
  EXPECT_EQ(values(m, "model.embed_tokens.weight"), iota(12, 1.0f));
  EXPECT_EQ(m.config["model_type"], "minicpm");
}

TEST(MupToLlama, UntiedUsesStoredLmHeadAndKeepsDtype) {
  auto r = mup_to_llama(tiny_minicpm(false, DType::BF16));
  ASSERT_TRUE(r.ok()) << r.error().render();
  EXPECT_EQ(r->tensors.find("lm_head.weight")->dtype, DType::BF16);
  // 100..111 times 0.5, rounded to bf16 (exact for these small integers/halves)
  EXPECT_EQ(values(*r, "lm_head.weight"), scaled(iota(12, 100.0f), 0.5f));
  // embed * 12 in bf16: 12 * 11 = 132 is exact, 12 * 7 = 84 exact.
  EXPECT_EQ(values(*r, "model.embed_tokens.weight")[10], 132.0f);
  // o_proj rounding: bf16(f32(-3) * alpha) — one rounding from the f32 product.
  const float alpha = float(1.4 / std::sqrt(2.0));
  EXPECT_EQ(values(*r, "model.layers.1.self_attn.o_proj.weight")[0],
            bf16_to_f32(f32_to_bf16(-3.0f * alpha)));
}

TEST(MupToLlama, Errors) {
  Model llama = tiny_minicpm(true);
  llama.config["model_type"] = "llama";
  llama.config["architectures"] = ojson::array({"LlamaForCausalLM"});
  auto r = mup_to_llama(llama);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(r.error().message.find("model_type 'llama'"), std::string::npos);

  Model missing = tiny_minicpm(false);
  missing.tensors.erase("lm_head.weight");
  auto r2 = mup_to_llama(missing);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, ErrorCode::NotFound);
  EXPECT_EQ(r2.error().tensor, "lm_head.weight");
}

}  // namespace
}  // namespace mc::transforms
