// The family table. Name stems follow convert_hf_to_gguf / llama.cpp's llama-arch.cpp
// (formats.md §2.8); decoder dialects follow transformers' modelling code (§11.1).
#include "arch/families.h"

#include <array>
#include <charconv>

namespace mc::arch {

namespace {

// Per-layer tensors: HF "model.layers.N.<hf>" / GPT-2 "[transformer.]h.N.<hf>" <-> "blk.N.<gguf>".
constexpr NamePair kLlamaLayer[] = {
    {"input_layernorm", "attn_norm"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};
constexpr NamePair kLlamaGlobal[] = {
    {"model.embed_tokens", "token_embd"},
    {"model.norm", "output_norm"},
    {"lm_head", "output"},
};
constexpr NamePair kGpt2Layer[] = {
    {"ln_1", "attn_norm"},
    {"attn.c_attn", "attn_qkv"},
    {"attn.c_proj", "attn_output"},
    {"ln_2", "ffn_norm"},
    {"mlp.c_fc", "ffn_up"},
    {"mlp.c_proj", "ffn_down"},
};
constexpr NamePair kGpt2Global[] = {
    {"wte", "token_embd"},
    {"wpe", "position_embd"},
    {"ln_f", "output_norm"},
};

constexpr NamePair kQwen3Layer[] = {
    {"input_layernorm", "attn_norm"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},
    {"self_attn.o_proj", "attn_output"},
    {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};
// llama.cpp keeps Phi-3's fused projections fused: attn_qkv, and ffn_up holding [gate; up].
constexpr NamePair kPhi3Layer[] = {
    {"input_layernorm", "attn_norm"},
    {"self_attn.qkv_proj", "attn_qkv"},
    {"self_attn.o_proj", "attn_output"},
    {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};

constexpr std::string_view kRotaryBuffers[] = {".rotary_emb.inv_freq"};
constexpr std::string_view kGpt2Dropped[] = {"lm_head.weight", ".attn.bias", ".attn.masked_bias"};

constexpr FamilyInfo kFamilies[] = {
    {
        .family = Family::Llama,
        .model_type = "llama",
        .hf_architecture = "LlamaForCausalLM",
        .decoder = Decoder::LlamaLike,
        .hf_prefix = "",
        .hf_layer_prefix = "model.layers.",
        .layer_names = kLlamaLayer,
        .global_names = kLlamaGlobal,
        .hf_dropped = kRotaryBuffers,
        .bias_keys = true,
        .gguf_arch = "llama",
        .rope_pair_rows = true,
        .megatron = true,
        .mlx = true,
    },
    {
        .family = Family::Mistral,
        .model_type = "mistral",
        .hf_architecture = "MistralForCausalLM",
        .decoder = Decoder::LlamaLike,
        .hf_prefix = "",
        .hf_layer_prefix = "model.layers.",
        .layer_names = kLlamaLayer,
        .global_names = kLlamaGlobal,
        .hf_dropped = kRotaryBuffers,
        .sliding = SlidingWindow::Key,
        .gguf_arch = "llama",  // llama.cpp runs Mistral as llama
        .gguf_reads_back = false,
        .rope_pair_rows = true,
        .megatron = true,
        .mlx = true,
    },
    {
        .family = Family::Qwen2,
        .model_type = "qwen2",
        .hf_architecture = "Qwen2ForCausalLM",
        .decoder = Decoder::LlamaLike,
        .hf_prefix = "",
        .hf_layer_prefix = "model.layers.",
        .layer_names = kLlamaLayer,
        .global_names = kLlamaGlobal,
        .hf_dropped = kRotaryBuffers,
        .qkv_bias_always = true,
        .sliding = SlidingWindow::Flagged,
        .gguf_arch = "qwen2",  // NEOX RoPE: rows stay in HF order
        .megatron = true,
        .mlx = true,
    },
    {
        .family = Family::MiniCPM,
        .model_type = "minicpm",
        .hf_architecture = "MiniCPMForCausalLM",
        .decoder = Decoder::LlamaLike,
        .hf_prefix = "",
        .hf_layer_prefix = "model.layers.",
        .layer_names = kLlamaLayer,
        .global_names = kLlamaGlobal,
        .hf_dropped = kRotaryBuffers,
        .tie_by_default = true,
        .mup = true,
        .gguf_arch = "minicpm",
        .rope_pair_rows = true,
        .megatron = true,
        .mlx = true,
    },
    {
        .family = Family::GPT2,
        .model_type = "gpt2",
        .hf_architecture = "GPT2LMHeadModel",
        .decoder = Decoder::GPT2,
        .hf_prefix = "transformer.",
        .hf_layer_prefix = "h.",
        .layer_names = kGpt2Layer,
        .global_names = kGpt2Global,
        .hf_dropped = kGpt2Dropped,
        .conv1d = true,
        .tie_by_default = true,
        .gguf_arch = "gpt2",
        .gguf_output_copy = true,
        // mlx-lm's gpt2 class renames and transposes the Conv1D weights; Megatron's GPT has no
        // learned positions with LayerNorm biases in our mapping.
    },
    {
        .family = Family::Qwen3,
        .model_type = "qwen3",
        .hf_architecture = "Qwen3ForCausalLM",
        .decoder = Decoder::LlamaLike,
        .hf_prefix = "",
        .hf_layer_prefix = "model.layers.",
        .layer_names = kQwen3Layer,
        .global_names = kLlamaGlobal,
        .hf_dropped = kRotaryBuffers,
        .bias_keys = true,  // Qwen3Config has attention_bias (false by default)
        .sliding = SlidingWindow::Flagged,
        .default_head_dim = 128,  // Qwen3Config's default, not hidden/heads
        .qk_norm = true,
        .gguf_arch = "qwen3",  // NEOX RoPE: rows stay in HF order
        .megatron = true,  // Megatron-Core's qk_layernorm (not in legacy names)
        .mlx = true,
    },
    {
        .family = Family::Phi3,
        .model_type = "phi3",
        .hf_architecture = "Phi3ForCausalLM",
        .decoder = Decoder::LlamaLike,
        .hf_prefix = "",
        .hf_layer_prefix = "model.layers.",
        .layer_names = kPhi3Layer,
        .global_names = kLlamaGlobal,
        .hf_dropped = kRotaryBuffers,
        .sliding = SlidingWindow::Key,
        .default_norm_eps = 1e-5,
        .fused_qkv = true,
        .fused_gate_up = true,
        .gguf_arch = "phi3",  // NEOX RoPE
        .gguf_rope_factors = GgufRopeFactors::LongShort,
        .gguf_sliding_window_key = true,
        .mlx = true,
        // Megatron would need the fused [q; k; v] regrouped by query group: not mapped.
    },
    {
        .family = Family::Gemma,
        .model_type = "gemma",
        .hf_architecture = "GemmaForCausalLM",
        .decoder = Decoder::LlamaLike,
        .hf_prefix = "",
        .hf_layer_prefix = "model.layers.",
        .layer_names = kLlamaLayer,
        .global_names = kLlamaGlobal,
        .hf_dropped = kRotaryBuffers,
        .tie_by_default = true,
        .bias_keys = true,  // GemmaConfig has attention_bias (false by default)
        .default_head_dim = 256,  // GemmaConfig's default
        .activation = ActivationKey::GemmaEra,
        .norm_plus_one = true,
        .embed_scale_sqrt = true,
        .gguf_arch = "gemma",  // NEOX RoPE; norms stored as 1 + w (convert_hf_to_gguf)
        .mlx = true,
        // Megatron-Core's Gemma needs zero-centred norms and GeGLU: not mapped.
    },
};
static_assert(std::size(kFamilies) == kFamilyCount, "one row per Family");

constexpr bool rows_in_enum_order() {
  for (size_t i = 0; i < std::size(kFamilies); ++i)
    if (size_t(kFamilies[i].family) != i) return false;
  return true;
}
static_assert(rows_in_enum_order(), "kFamilies rows must follow the Family enum order");

}  // namespace

std::span<const FamilyInfo> families() { return kFamilies; }

const FamilyInfo* find_family(Family f) {
  return f == Family::Unknown ? nullptr : &kFamilies[size_t(f)];
}

const FamilyInfo& family_info(Family f) { return kFamilies[size_t(f)]; }

std::string_view family_name(Family f) {
  const FamilyInfo* r = find_family(f);
  return r ? r->model_type : "unknown";
}

Family family_from_model_type(std::string_view mt) {
  for (const auto& r : kFamilies)
    if (r.model_type == mt) return r.family;
  return Family::Unknown;
}

Family family_from_hf_architecture(std::string_view a) {
  for (const auto& r : kFamilies)
    if (r.hf_architecture == a) return r.family;
  return Family::Unknown;
}

std::optional<Family> family_from_gguf_arch(std::string_view a) {
  for (const auto& r : kFamilies)
    if (r.gguf_reads_back && !r.gguf_arch.empty() && r.gguf_arch == a) return r.family;
  return std::nullopt;
}

bool split_layer_name(std::string_view name, std::string_view prefix, int64_t* n, std::string_view* rest) {
  if (!name.starts_with(prefix)) return false;
  name.remove_prefix(prefix.size());
  const auto dot = name.find('.');
  if (dot == 0 || dot == name.npos) return false;
  auto [p, ec] = std::from_chars(name.data(), name.data() + dot, *n);
  if (ec != std::errc() || p != name.data() + dot || *n < 0) return false;
  *rest = name.substr(dot + 1);
  return true;
}

bool split_param_name(std::string_view name, std::string_view* stem, std::string_view* suffix) {
  for (std::string_view s : {std::string_view(".weight"), std::string_view(".bias")})
    if (name.ends_with(s)) {
      *stem = name.substr(0, name.size() - s.size());
      *suffix = s;
      return true;
    }
  return false;
}

bool is_norm_param(std::string_view name) {
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view module = name.substr(0, dot);
  const auto mdot = module.rfind('.');
  const std::string_view last = mdot == std::string_view::npos ? module : module.substr(mdot + 1);
  if (last.find("norm") != std::string_view::npos) return true;  // *_layernorm, norm, ln_norm
  return last.starts_with("ln_") || last == "ln";                // GPT-2 ln_1 / ln_2 / ln_f
}

}  // namespace mc::arch
