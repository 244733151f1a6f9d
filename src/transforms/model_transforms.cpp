// Model-level transforms: dtype cast, MiniCPM muP -> Llama (formats.md §10 option A), and the
// q/k permutation of every layer (§2.9). They only rewire lazy TensorData; nothing is read here.
#include <cmath>
#include <string>
#include <string_view>

#include "arch/config.h"
#include "transforms/transforms.h"

namespace mc::transforms {

namespace {

// Keys MiniCPM adds to a Llama config (its config class and remote-code hooks).
constexpr std::string_view kMiniCpmOnlyKeys[] = {
    "scale_emb", "scale_depth", "dim_model_base", "auto_map", "use_mup", "mup_denominator",
};

}  // namespace

Result<Model> cast(const Model& m, DType target) {
  const auto& info = dtype_info(target);
  if (!info.is_float)
    return make_error(ErrorCode::InvalidArgument, "cast target {} is not a floating-point dtype",
                      dtype_name(target))
        .with_hint("use f32, f16 or bf16 (quantized types go through --quant)");
  Model out = m;
  for (const auto& e : m.tensors) {
    if (!dtype_info(e.dtype).is_float || e.dtype == target) continue;
    out.tensors.put(MC_TRY(cast_tensor(e, target)));
  }
  if (out.config.is_object() && !out.config.empty()) {
    const std::string name(torch_dtype_name(target));
    bool changed = false;
    // transformers v5 writes "dtype"; older versions "torch_dtype". Update what is there.
    for (const char* key : {"torch_dtype", "dtype"}) {
      auto it = out.config.find(key);
      if (it != out.config.end() && *it != name) {
        *it = name;
        changed = true;
      }
    }
    if (!out.config.contains("torch_dtype") && !out.config.contains("dtype")) {
      out.config["torch_dtype"] = name;
      changed = true;
    }
    if (changed) out.config_modified = true;
  }
  return out;
}

Result<Model> mup_to_llama(const Model& m) {
  const arch::ArchConfig c = MC_TRY(arch::from_hf_config(m.config));
  if (!c.is_mup())
    return make_error(ErrorCode::InvalidArgument,
                      "mup_to_llama needs a MiniCPM model, config.json says model_type '{}'",
                      c.model_type)
        .with_hint("only muP MiniCPM checkpoints (scale_emb / scale_depth / dim_model_base) fold to Llama");
  if (m.config.contains("kv_lora_rank"))
    return make_error(ErrorCode::Unsupported,
                      "this MiniCPM uses multi-head latent attention (kv_lora_rank), which has no "
                      "plain Llama equivalent")
        .with_hint("convert it without --mup2llama");
  const float emb_scale = float(c.scale_emb);
  const float alpha = float(c.scale_depth / std::sqrt(double(c.num_layers)));
  const float beta = float(c.dim_model_base / double(c.hidden_size));

  const TensorEntry* embed = MC_TRY(m.tensors.require("model.embed_tokens.weight"));
  const TensorEntry* lm_head = m.tensors.find("lm_head.weight");
  if (!c.tie_word_embeddings && !lm_head)
    return make_error(ErrorCode::NotFound,
                      "config.json says tie_word_embeddings false but lm_head.weight is missing")
        .with_tensor("lm_head.weight")
        .with_hint("set tie_word_embeddings to true if the output layer shares the embedding");

  Model out = m;
  for (const auto& e : m.tensors) {
    const std::string& n = e.name;
    if (n == "model.embed_tokens.weight") {
      out.tensors.put(MC_TRY(scale_tensor(e, emb_scale)));
    } else if (n.ends_with(".self_attn.o_proj.weight") || n.ends_with(".self_attn.o_proj.bias") ||
               n.ends_with(".mlp.down_proj.weight") || n.ends_with(".mlp.down_proj.bias")) {
      out.tensors.put(MC_TRY(scale_tensor(e, alpha)));
    }
  }
  // lm_head' = beta * W, W = the original embedding when tied (a stored lm_head is then ignored,
  // as transformers ignores it), else the stored lm_head.
  TensorEntry head = MC_TRY(scale_tensor(c.tie_word_embeddings ? *embed : *lm_head, beta));
  head.name = "lm_head.weight";
  out.tensors.put(std::move(head));
  std::erase_if(out.tied, [](const auto& p) {
    return p.first == "lm_head.weight" || p.second == "lm_head.weight";
  });

  ojson cfg = m.config;
  for (auto key : kMiniCpmOnlyKeys) cfg.erase(std::string(key));
  cfg["architectures"] = ojson::array({"LlamaForCausalLM"});
  cfg["model_type"] = "llama";
  cfg["tie_word_embeddings"] = false;
  out.set_config(std::move(cfg));
  return out;
}

Result<Model> permute_qk(const Model& m, QkDirection dir) {
  const arch::ArchConfig c = MC_TRY(arch::from_hf_config(m.config));
  if (!c.info() || c.info()->decoder != arch::Decoder::LlamaLike || c.num_heads <= 0)
    return make_error(ErrorCode::InvalidArgument,
                      "q/k permutation needs a RoPE model with num_attention_heads, got model_type '{}'",
                      c.model_type);
  Model out = m;
  for (const auto& e : m.tensors) {
    const std::string& n = e.name;
    const bool q = n.find(".self_attn.q_proj.") != std::string::npos;
    const bool k = n.find(".self_attn.k_proj.") != std::string::npos;
    if (!q && !k) continue;
    if (!n.ends_with(".weight") && !n.ends_with(".bias")) continue;
    auto p = permute_qk_tensor(e, q ? c.num_heads : c.num_kv_heads, dir);
    if (!p) return std::move(p).error().with_tensor(n);
    out.tensors.put(std::move(*p));
  }
  return out;
}

}  // namespace mc::transforms
