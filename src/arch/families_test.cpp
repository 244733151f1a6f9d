// The family table: its invariants, and the name maps and parameter tables read from it.
#include <gtest/gtest.h>

#include <set>

#include "arch/config.h"

namespace mc::arch {
namespace {

TEST(Families, OneRowPerFamilyWithUniqueNames) {
  std::set<std::string_view> types, archs;
  for (const auto& f : families()) {
    EXPECT_EQ(&family_info(f.family), &f);
    EXPECT_TRUE(types.insert(f.model_type).second) << f.model_type;
    EXPECT_TRUE(archs.insert(f.hf_architecture).second) << f.hf_architecture;
    EXPECT_EQ(family_from_model_type(f.model_type), f.family);
    EXPECT_EQ(family_from_hf_architecture(f.hf_architecture), f.family);
    EXPECT_EQ(family_name(f.family), f.model_type);
    EXPECT_FALSE(f.layer_names.empty()) << f.model_type;
    EXPECT_FALSE(f.global_names.empty()) << f.model_type;
  }
  EXPECT_EQ(families().size(), kFamilyCount);
  EXPECT_EQ(find_family(Family::Unknown), nullptr);
  EXPECT_EQ(family_from_model_type("falcon"), Family::Unknown);
}

TEST(Families, GgufArchitecturesReadBackToOneFamily) {
  // Mistral is written as llama.cpp's "llama" and reads back as Llama.
  EXPECT_EQ(family_info(Family::Mistral).gguf_arch, "llama");
  EXPECT_EQ(family_from_gguf_arch("llama"), Family::Llama);
  EXPECT_EQ(family_from_gguf_arch("qwen2"), Family::Qwen2);
  EXPECT_EQ(family_from_gguf_arch("minicpm"), Family::MiniCPM);
  EXPECT_EQ(family_from_gguf_arch("gpt2"), Family::GPT2);
  EXPECT_EQ(family_from_gguf_arch("falcon"), std::nullopt);
  for (const auto& f : families()) {
    if (f.gguf_arch.empty()) continue;
    auto back = family_from_gguf_arch(f.gguf_arch);
    ASSERT_TRUE(back) << f.model_type;
    EXPECT_EQ(family_info(*back).gguf_arch, f.gguf_arch);
  }
  // llama.cpp's NORM RoPE families store q/k in pair order; NEOX (qwen2) and GPT-2 do not.
  EXPECT_TRUE(family_info(Family::Llama).rope_pair_rows);
  EXPECT_TRUE(family_info(Family::MiniCPM).rope_pair_rows);
  EXPECT_FALSE(family_info(Family::Qwen2).rope_pair_rows);
  EXPECT_FALSE(family_info(Family::GPT2).rope_pair_rows);
}

TEST(Families, NameSplitting) {
  int64_t n = -1;
  std::string_view rest, stem, suffix;
  EXPECT_TRUE(split_layer_name("model.layers.12.self_attn.q_proj", "model.layers.", &n, &rest));
  EXPECT_EQ(n, 12);
  EXPECT_EQ(rest, "self_attn.q_proj");
  EXPECT_FALSE(split_layer_name("model.layers.x.mlp", "model.layers.", &n, &rest));
  EXPECT_FALSE(split_layer_name("model.layers.3", "model.layers.", &n, &rest));
  EXPECT_FALSE(split_layer_name("model.layers.-1.mlp", "model.layers.", &n, &rest));
  EXPECT_TRUE(split_param_name("h.0.ln_1.bias", &stem, &suffix));
  EXPECT_EQ(stem, "h.0.ln_1");
  EXPECT_EQ(suffix, ".bias");
  EXPECT_FALSE(split_param_name("rotary_emb.inv_freq", &stem, &suffix));
}

ArchConfig tiny(Family f) {
  ArchConfig c;
  c.family = f;
  c.model_type = std::string(family_name(f));
  c.vocab_size = 32;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 4;
  c.max_position = 8;
  c.qkv_bias = family_info(f).qkv_bias_always;
  c.tie_word_embeddings = family_info(f).tie_by_default;
  if (family_info(f).decoder == Decoder::GPT2) {
    c.num_kv_heads = c.num_heads;
    c.qkv_bias = c.o_bias = c.mlp_bias = true;
  }
  return c;
}

TEST(Families, ParameterTablesFollowTheDecoder) {
  // Llama-like: embed + 9 per layer (+3 q/k/v biases for qwen2) + norm (+ lm_head when untied).
  auto llama = hf_param_specs(tiny(Family::Llama));
  ASSERT_TRUE(llama.ok());
  EXPECT_EQ(llama->size(), 1u + 2 * 9 + 1 + 1);
  EXPECT_EQ(llama->front().name, "model.embed_tokens.weight");
  EXPECT_EQ(llama->front().shape, (Shape{32, 16}));
  EXPECT_EQ((*llama)[2].name, "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ((*llama)[2].shape, (Shape{8, 16}));  // 2 kv heads x head_dim 4
  auto qwen = hf_param_specs(tiny(Family::Qwen2));
  ASSERT_TRUE(qwen.ok());
  EXPECT_EQ(qwen->size(), 1u + 2 * 12 + 1 + 1);
  auto minicpm = hf_param_specs(tiny(Family::MiniCPM));  // tied by default: no lm_head
  ASSERT_TRUE(minicpm.ok());
  EXPECT_EQ(minicpm->back().name, "model.norm.weight");
  // GPT-2: Conv1D [in, out] and the transformer. prefix.
  auto gpt2 = hf_param_specs(tiny(Family::GPT2));
  ASSERT_TRUE(gpt2.ok());
  EXPECT_EQ(gpt2->size(), 2u + 2 * 12 + 2);
  EXPECT_EQ((*gpt2)[4].name, "transformer.h.0.attn.c_attn.weight");
  EXPECT_EQ((*gpt2)[4].shape, (Shape{16, 48}));
  ArchConfig unknown;
  auto none = hf_param_specs(unknown);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::Unsupported);
}

TEST(Families, ConfigDialectsRoundTrip) {
  for (const auto& f : families()) {
    ArchConfig c = tiny(f.family);
    if (f.sliding != SlidingWindow::None) c.sliding_window = 4;
    if (f.mup) c.scale_emb = 12, c.scale_depth = 1.4, c.dim_model_base = 8;
    ojson j = to_hf_config(c);
    if (f.sliding == SlidingWindow::Flagged) j["use_sliding_window"] = true;
    auto back = from_hf_config(j);
    ASSERT_TRUE(back.ok()) << f.model_type << ": " << back.error().render();
    EXPECT_EQ(back->family, f.family);
    EXPECT_EQ(back->hidden_size, c.hidden_size);
    EXPECT_EQ(back->num_kv_heads, c.num_kv_heads);
    EXPECT_EQ(back->tie_word_embeddings, c.tie_word_embeddings) << f.model_type;
    EXPECT_EQ(back->qkv_bias, c.qkv_bias) << f.model_type;
    EXPECT_EQ(back->sliding_window, c.sliding_window) << f.model_type;
    EXPECT_EQ(back->scale_emb, c.scale_emb) << f.model_type;
    EXPECT_EQ(j.contains("attention_bias"), f.bias_keys) << f.model_type;
  }
}

TEST(Families, ClassDefaultsAreNotHiddenOverHeads) {
  ojson j = {{"model_type", "qwen3"}, {"vocab_size", 32}, {"hidden_size", 64}, {"intermediate_size", 96},
             {"num_hidden_layers", 2}, {"num_attention_heads", 4}};
  EXPECT_EQ(from_hf_config(j)->head_dim, 128);  // Qwen3Config's default
  j["model_type"] = "gemma";
  EXPECT_EQ(from_hf_config(j)->head_dim, 256);  // GemmaConfig's default
  EXPECT_TRUE(from_hf_config(j)->tie_word_embeddings);
  j["model_type"] = "phi3";
  EXPECT_EQ(from_hf_config(j)->head_dim, 16);
  EXPECT_DOUBLE_EQ(from_hf_config(j)->norm_eps, 1e-5);
  j["partial_rotary_factor"] = 0.75;
  auto partial = from_hf_config(j);
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.error().code, ErrorCode::Unsupported);
}

TEST(Families, GemmaActivationFollowsTheConfigsEra) {
  ojson j = {{"model_type", "gemma"}, {"vocab_size", 32}, {"hidden_size", 64}, {"intermediate_size", 96},
             {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"head_dim", 16}};
  // gemma-2b as released: hidden_act "gelu", no hidden_activation, 4.38: tanh GELU then.
  j["hidden_act"] = "gelu";
  j["transformers_version"] = "4.38.0.dev0";
  EXPECT_EQ(from_hf_config(j)->hidden_act, "gelu_pytorch_tanh");
  // The same keys from 4.48 on mean the exact GELU.
  j["transformers_version"] = "4.48.1";
  EXPECT_EQ(from_hf_config(j)->hidden_act, "gelu");
  // The old era reads hidden_activation when it is set.
  j["transformers_version"] = "4.42.0";
  j["hidden_act"] = "gelu_pytorch_tanh";
  j["hidden_activation"] = "gelu_pytorch_tanh";
  EXPECT_EQ(from_hf_config(j)->hidden_act, "gelu_pytorch_tanh");
  // Two keys naming different functions are refused, naming both.
  j["hidden_act"] = "gelu";
  auto bad = from_hf_config(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::Mismatch);
  EXPECT_NE(bad.error().message.find("hidden_activation"), std::string::npos);
  EXPECT_NE(bad.error().message.find("hidden_act'"), std::string::npos);
  // Written back, both keys agree.
  j["hidden_act"] = "gelu_pytorch_tanh";
  ojson w = to_hf_config(*from_hf_config(j));
  EXPECT_EQ(w["hidden_act"], "gelu_pytorch_tanh");
  EXPECT_EQ(w["hidden_activation"], "gelu_pytorch_tanh");
  EXPECT_EQ(w["head_dim"], 16);
}

TEST(Families, NormParameters) {
  EXPECT_TRUE(is_norm_param("model.layers.3.input_layernorm.weight"));
  EXPECT_TRUE(is_norm_param("transformer.ln_f.bias"));
  EXPECT_FALSE(is_norm_param("model.layers.3.mlp.down_proj.weight"));
  EXPECT_FALSE(is_norm_param("lm_head.weight"));
}

}  // namespace
}  // namespace mc::arch

namespace mc::arch {
namespace {

// An unknown family's config need not say how many heads it has: writing it back must not
// divide by the zero head count (found by fuzzing config.json).
TEST(Families, UnknownFamilyWithoutHeadsWritesBack) {
  auto c = from_hf_config(ojson::parse(R"({"model_type": "falcon", "hidden_size": 64})"));
  ASSERT_TRUE(c.ok()) << c.error().render();
  ASSERT_EQ(c->family, Family::Unknown);
  c->num_heads = 0;
  c->hidden_size = 64;
  c->head_dim = 16;
  const ojson j = to_hf_config(*c);
  EXPECT_EQ(j["num_attention_heads"], 0);
  EXPECT_EQ(j["head_dim"], 16);
  EXPECT_EQ(j["hidden_size"], 64);
}

}  // namespace
}  // namespace mc::arch
