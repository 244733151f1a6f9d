// The model families, one row each (style.md T2): what every engine needs to know about a family
// lives here, and engines read the row instead of testing `Family::X`. Adding a family is a row in
// families.cpp (plus a graph builder in graph/architectures.cpp when its math is new) and tests;
// docs/extending.md walks through it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace mc::arch {

enum class Family : uint8_t { Llama, Mistral, Qwen2, MiniCPM, GPT2, Qwen3, Phi3, Gemma, Unknown };
inline constexpr size_t kFamilyCount = size_t(Family::Unknown);

// The decoder a family's checkpoint follows: selects the HF parameter table, the config.json
// dialect and the runtime's graph builder.
enum class Decoder : uint8_t {
  LlamaLike,  // pre-RMSNorm, RoPE, GQA attention, gated MLP; "model.layers.N." names (the
              // variations are the row's flags: fused projections, q/k norms, Gemma's norms)
  GPT2,       // pre-LayerNorm, learned positions, fused qkv Conv1D ([in, out] weights)
};

// How a config.json turns on a sliding attention window.
enum class SlidingWindow : uint8_t {
  None,
  Key,      // `sliding_window` set (mistral)
  Flagged,  // `use_sliding_window` true, from layer `max_window_layers` on (qwen2)
};

// Which config.json key names the MLP activation.
enum class ActivationKey : uint8_t {
  HiddenAct,  // `hidden_act` (GPT-2: `activation_function`)
  // Gemma: transformers 4.38-4.47 read `hidden_activation` (absent/null = tanh GELU) and ignored
  // `hidden_act`; 4.48+ read `hidden_act`. The config's transformers_version tells the era.
  GemmaEra,
};

// How GGUF carries a RoPE scaling that has no key of its own.
enum class GgufRopeFactors : uint8_t {
  PerFrequency,  // llama: one `rope_freqs.weight` divisor per frequency (Llama 3 rules)
  LongShort,     // phi3: `rope_factors_long/short.weight` + rope.scaling.attn_factor (longrope)
};

// One HF parameter stem (without ".weight"/".bias") and its GGUF stem.
struct NamePair {
  std::string_view hf;
  std::string_view gguf;
};

struct FamilyInfo {
  Family family;
  std::string_view model_type;       // config.json "model_type"
  std::string_view hf_architecture;  // config.json "architectures"[0]
  Decoder decoder;

  // ---- HF checkpoint names ----
  std::string_view hf_prefix;        // "" or GPT-2's "transformer." (checkpoints may omit it)
  std::string_view hf_layer_prefix;  // before the layer number: "model.layers." / "h."
  std::span<const NamePair> layer_names;   // per layer: HF stem <-> GGUF stem (after "blk.N.")
  std::span<const NamePair> global_names;  // outside the layers
  // Tensors some checkpoints carry that are not parameters of the model (non-persistent buffers,
  // GPT-2's always-tied lm_head), matched as name suffixes: readers keep them, other formats drop them.
  std::span<const std::string_view> hf_dropped;
  bool conv1d = false;  // layer Linear weights are stored [in, out] (GPT-2's Conv1D)

  // ---- config.json dialect beyond the decoder's ----
  bool qkv_bias_always = false;  // q/k/v biases whatever the config says (qwen2)
  bool tie_by_default = false;   // tie_word_embeddings when the key is absent
  bool mup = false;              // MiniCPM muP scales: scale_emb, scale_depth, dim_model_base
  bool bias_keys = false;        // the config class has attention_bias / mlp_bias (llama)
  SlidingWindow sliding = SlidingWindow::None;
  int64_t default_head_dim = 0;  // the config class's head_dim when the key is absent (0: hidden/heads)
  double default_norm_eps = 1e-6;  // rms_norm_eps when absent
  ActivationKey activation = ActivationKey::HiddenAct;

  // ---- decoder variations (LlamaLike) ----
  bool fused_qkv = false;        // one `self_attn.qkv_proj` [q; k; v] (phi3)
  bool fused_gate_up = false;    // one `mlp.gate_up_proj` [gate; up] (phi3)
  bool qk_norm = false;          // per-head RMSNorm of q and k before RoPE (qwen3)
  bool norm_plus_one = false;    // RMSNorm scales by (1 + weight) (gemma)
  bool embed_scale_sqrt = false; // embeddings times sqrt(hidden_size), in the model dtype (gemma)

  // ---- GGUF (llama.cpp) ----
  std::string_view gguf_arch;    // general.architecture ("" = llama.cpp has no such arch)
  bool gguf_reads_back = true;   // a file of gguf_arch reads back as this family (Mistral: no, llama)
  // q/k rows are stored in Meta's adjacent-pair RoPE order in GGUF and llama2.c (llama.cpp's NORM
  // RoPE) instead of HF's rotate-half order (formats.md §2.9).
  bool rope_pair_rows = false;
  bool gguf_output_copy = false;  // llama.cpp's graph needs output.weight even when tied (a copy)
  GgufRopeFactors gguf_rope_factors = GgufRopeFactors::PerFrequency;
  bool gguf_sliding_window_key = false;  // {arch}.attention.sliding_window always written (phi3)

  // ---- other formats ----
  bool megatron = false;  // Megatron GPTModel expresses it (SwiGLU, RMSNorm, RoPE, query groups)
  bool mlx = false;       // mlx-lm's model class keeps the HF names and shapes
};

// Every family, in enum order.
std::span<const FamilyInfo> families();
// The row of `f` (nullptr for Unknown).
const FamilyInfo* find_family(Family f);
const FamilyInfo& family_info(Family f);  // f must not be Unknown

std::string_view family_name(Family f);  // "llama", "mistral", ... ("unknown")
Family family_from_model_type(std::string_view model_type);  // Unknown if none
Family family_from_hf_architecture(std::string_view architecture);
// The family a GGUF general.architecture reads back as (nullopt: not ours).
std::optional<Family> family_from_gguf_arch(std::string_view gguf_arch);

// "<layer prefix>N.<rest>" -> (N, rest); false when `name` does not have that form.
bool split_layer_name(std::string_view name, std::string_view prefix, int64_t* layer, std::string_view* rest);
// "stem.weight" / "stem.bias" -> stem and suffix; false for other names.
bool split_param_name(std::string_view name, std::string_view* stem, std::string_view* suffix);

// True for RMSNorm/LayerNorm parameters ("...norm.weight", "...layernorm.bias", GPT-2 "ln_*").
bool is_norm_param(std::string_view name);

}  // namespace mc::arch
