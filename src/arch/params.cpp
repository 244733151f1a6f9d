// HF parameter tables per decoder (formats.md §11.1). Orders follow module registration:
// LlamaDecoderLayer registers self_attn, mlp, input_layernorm, post_attention_layernorm;
// Qwen3Attention q/k/v/o_proj then q_norm, k_norm; Phi3Attention o_proj before qkv_proj, Phi3MLP
// gate_up_proj, down_proj; GPT2Block ln_1, attn, ln_2, mlp.
#include <fmt/format.h>

#include "arch/config.h"

namespace mc::arch {

namespace {

void add(std::vector<ParamSpec>& out, std::string name, Shape shape) {
  out.push_back({std::move(name), std::move(shape)});
}

std::vector<ParamSpec> llama_like(const ArchConfig& c) {
  const FamilyInfo& row = *c.info();
  std::vector<ParamSpec> out;
  const int64_t h = c.hidden_size, hd = c.head_dim, inter = c.intermediate_size;
  const int64_t q_out = c.num_heads * hd, kv_out = c.num_kv_heads * hd;
  add(out, "model.embed_tokens.weight", {c.vocab_size, h});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    auto proj = [&](const char* name, int64_t rows, int64_t cols, bool bias) {
      add(out, p + name + ".weight", {rows, cols});
      if (bias) add(out, p + name + ".bias", {rows});
    };
    if (row.fused_qkv) {
      proj("self_attn.o_proj", h, q_out, c.o_bias);
      proj("self_attn.qkv_proj", q_out + 2 * kv_out, h, c.qkv_bias);
    } else {
      proj("self_attn.q_proj", q_out, h, c.qkv_bias);
      proj("self_attn.k_proj", kv_out, h, c.qkv_bias);
      proj("self_attn.v_proj", kv_out, h, c.qkv_bias);
      proj("self_attn.o_proj", h, q_out, c.o_bias);
    }
    if (row.qk_norm) {
      add(out, p + "self_attn.q_norm.weight", {hd});
      add(out, p + "self_attn.k_norm.weight", {hd});
    }
    if (row.fused_gate_up) {
      proj("mlp.gate_up_proj", 2 * inter, h, c.mlp_bias);
    } else {
      proj("mlp.gate_proj", inter, h, c.mlp_bias);
      proj("mlp.up_proj", inter, h, c.mlp_bias);
    }
    proj("mlp.down_proj", h, inter, c.mlp_bias);
    add(out, p + "input_layernorm.weight", {h});
    add(out, p + "post_attention_layernorm.weight", {h});
  }
  add(out, "model.norm.weight", {h});
  if (!c.tie_word_embeddings) add(out, "lm_head.weight", {c.vocab_size, h});
  return out;
}

std::vector<ParamSpec> gpt2(const ArchConfig& c) {
  std::vector<ParamSpec> out;
  const int64_t h = c.hidden_size, inner = c.intermediate_size;
  add(out, "transformer.wte.weight", {c.vocab_size, h});
  add(out, "transformer.wpe.weight", {c.max_position, h});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("transformer.h.{}.", l);
    add(out, p + "ln_1.weight", {h});
    add(out, p + "ln_1.bias", {h});
    add(out, p + "attn.c_attn.weight", {h, 3 * h});
    add(out, p + "attn.c_attn.bias", {3 * h});
    add(out, p + "attn.c_proj.weight", {h, h});
    add(out, p + "attn.c_proj.bias", {h});
    add(out, p + "ln_2.weight", {h});
    add(out, p + "ln_2.bias", {h});
    add(out, p + "mlp.c_fc.weight", {h, inner});
    add(out, p + "mlp.c_fc.bias", {inner});
    add(out, p + "mlp.c_proj.weight", {inner, h});
    add(out, p + "mlp.c_proj.bias", {h});
  }
  add(out, "transformer.ln_f.weight", {h});
  add(out, "transformer.ln_f.bias", {h});
  if (!c.tie_word_embeddings) add(out, "lm_head.weight", {c.vocab_size, h});
  return out;
}

}  // namespace

Result<std::vector<ParamSpec>> hf_param_specs(const ArchConfig& c) {
  if (const FamilyInfo* row = c.info()) {
    switch (row->decoder) {
      case Decoder::LlamaLike: return llama_like(c);
      case Decoder::GPT2: return gpt2(c);
    }
  }
  return make_error(ErrorCode::Unsupported, "no parameter table for model_type '{}' (architecture '{}')",
                    c.model_type, c.architecture)
      .with_hint("pass a shapes file listing every tensor ({name: [dims]})");
}

}  // namespace mc::arch
