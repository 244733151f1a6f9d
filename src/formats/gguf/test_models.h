// Tiny HF-form models built in memory for the GGUF tests (random weights, fixed seeds).
#pragma once

#include <random>
#include <string>
#include <vector>

#include "core/model.h"

namespace mc::gguf::testing {

struct TinySpec {
  std::string family = "llama";  // llama | qwen2 | gpt2 | minicpm
  int64_t vocab = 64, hidden = 64, inter = 96, layers = 2, heads = 4, kv_heads = 2;
  int64_t positions = 128;
  bool tied = false;
  float head_scale = 0.1f;
  float qk_scale = 0.15f;   // q/k weight std (smaller: smoother attention)  // lm_head std (larger: peakier next-token distributions)
  uint32_t seed = 1;
  DType dtype = DType::F32;
};

inline std::vector<float> random_values(size_t n, std::mt19937& rng, float scale, float offset = 0.0f) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = offset + scale * d(rng);
  return v;
}

inline Model tiny_model(const TinySpec& s) {
  Model m;
  m.source_format = "hf";
  m.source_path = "tiny-" + s.family;
  std::mt19937 rng(s.seed);
  auto add = [&](const std::string& name, Shape shape, float scale = 0.05f, float offset = 0.0f) {
    size_t n = 1;
    for (auto d : shape) n *= size_t(d);
    auto v = random_values(n, rng, scale, offset);
    m.tensors.put(make_tensor_f32(name, std::move(shape), v, s.dtype));
  };
  const int64_t h = s.hidden, hd = s.hidden / s.heads;
  ojson c = ojson::object();
  if (s.family == "gpt2") {
    c = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", s.vocab},
         {"n_embd", h}, {"n_layer", s.layers}, {"n_head", s.heads}, {"n_positions", s.positions},
         {"n_inner", s.inter}, {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"}};
    add("transformer.wte.weight", {s.vocab, h});
    add("transformer.wpe.weight", {s.positions, h}, 0.01f);
    for (int64_t i = 0; i < s.layers; ++i) {
      const std::string p = "transformer.h." + std::to_string(i) + ".";
      add(p + "ln_1.weight", {h}, 0.1f, 1.0f);
      add(p + "ln_1.bias", {h}, 0.02f);
      add(p + "attn.c_attn.weight", {h, 3 * h});
      add(p + "attn.c_attn.bias", {3 * h}, 0.02f);
      add(p + "attn.c_proj.weight", {h, h});
      add(p + "attn.c_proj.bias", {h}, 0.02f);
      add(p + "ln_2.weight", {h}, 0.1f, 1.0f);
      add(p + "ln_2.bias", {h}, 0.02f);
      add(p + "mlp.c_fc.weight", {h, s.inter});
      add(p + "mlp.c_fc.bias", {s.inter}, 0.02f);
      add(p + "mlp.c_proj.weight", {s.inter, h});
      add(p + "mlp.c_proj.bias", {h}, 0.02f);
      std::vector<float> mask(size_t(s.positions * s.positions), 1.0f);
      m.tensors.put(make_tensor_f32(p + "attn.bias", {1, 1, s.positions, s.positions}, mask));
    }
    add("transformer.ln_f.weight", {h}, 0.1f, 1.0f);
    add("transformer.ln_f.bias", {h}, 0.02f);
  } else {
    const bool qwen = s.family == "qwen2";
    const char* arch = qwen ? "Qwen2ForCausalLM" : s.family == "minicpm" ? "MiniCPMForCausalLM" : "LlamaForCausalLM";
    c = {{"architectures", {arch}}, {"model_type", s.family}, {"vocab_size", s.vocab},
         {"hidden_size", h}, {"intermediate_size", s.inter}, {"num_hidden_layers", s.layers},
         {"num_attention_heads", s.heads}, {"num_key_value_heads", s.kv_heads},
         {"max_position_embeddings", s.positions}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
         {"hidden_act", "silu"}, {"tie_word_embeddings", s.tied}, {"bos_token_id", 1}, {"eos_token_id", 2}};
    if (s.family == "minicpm") {
      c["scale_emb"] = 12;
      c["scale_depth"] = 1.4;
      c["dim_model_base"] = 16;
    }
    add("model.embed_tokens.weight", {s.vocab, h}, 0.5f);
    for (int64_t i = 0; i < s.layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      add(p + "input_layernorm.weight", {h}, 0.1f, 1.0f);
      add(p + "self_attn.q_proj.weight", {s.heads * hd, h}, s.qk_scale);
      add(p + "self_attn.k_proj.weight", {s.kv_heads * hd, h}, s.qk_scale);
      add(p + "self_attn.v_proj.weight", {s.kv_heads * hd, h}, 0.1f);
      if (qwen) {
        add(p + "self_attn.q_proj.bias", {s.heads * hd}, 0.1f);
        add(p + "self_attn.k_proj.bias", {s.kv_heads * hd}, 0.1f);
        add(p + "self_attn.v_proj.bias", {s.kv_heads * hd}, 0.1f);
      }
      add(p + "self_attn.o_proj.weight", {h, s.heads * hd}, 0.1f);
      add(p + "post_attention_layernorm.weight", {h}, 0.1f, 1.0f);
      add(p + "mlp.gate_proj.weight", {s.inter, h}, 0.1f);
      add(p + "mlp.up_proj.weight", {s.inter, h}, 0.1f);
      add(p + "mlp.down_proj.weight", {h, s.inter}, 0.1f);
    }
    add("model.norm.weight", {h}, 0.1f, 1.0f);
    if (!s.tied) add("lm_head.weight", {s.vocab, h}, s.head_scale);
  }
  m.config = c;
  m.config_text = c.dump(2);
  return m;
}

}  // namespace mc::gguf::testing
