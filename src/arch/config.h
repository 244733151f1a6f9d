// ArchConfig: the hyper-parameters of a decoder-only LLM, normalised from an HF config.json
// (formats.md §11.1) so that transforms, GGUF metadata and the runtime read one struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/families.h"
#include "core/error.h"
#include "core/model.h"

namespace mc::arch {

struct ArchConfig {
  Family family = Family::Unknown;
  std::string model_type;        // as in config.json
  std::string architecture;      // architectures[0], e.g. "LlamaForCausalLM"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;          // hidden/heads unless config says otherwise
  int64_t max_position = 0;
  // The context a RoPE scaling stretches (`original_max_position_embeddings`, at the top level of
  // Phi-3 configs or inside rope_scaling); nullopt when the config does not say.
  std::optional<int64_t> original_max_position;
  double norm_eps = 1e-6;        // rms_norm_eps or layer_norm_epsilon
  double rope_theta = 10000.0;
  ojson rope_scaling;            // null or the dict as given
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  bool qkv_bias = false;         // qwen2: always; llama: attention_bias
  bool o_bias = false;           // llama attention_bias also biases o_proj
  bool mlp_bias = false;
  std::optional<int64_t> sliding_window;  // mistral / qwen2 when used
  // MiniCPM muP factors (1 when absent).
  double scale_emb = 1.0;
  double scale_depth = 1.0;
  double dim_model_base = 1.0;
  std::optional<int64_t> bos_token_id, pad_token_id;
  std::vector<int64_t> eos_token_ids;
  std::string torch_dtype;       // "float16", "bfloat16", ... ("" if absent)

  // The family's row (nullptr for Unknown).
  const FamilyInfo* info() const { return find_family(family); }
  bool is_mup() const { return info() && info()->mup; }
};

// Reads config.json (already parsed). Unknown model types give Family::Unknown, not an error;
// missing required fields for a known family are an error naming the field; sizes over the
// limits below are LimitExceeded (check_limits).
Result<ArchConfig> from_hf_config(const ojson& config);

// Hard limits on hyper-parameters, checked before anything is sized from them (README "Limits
// and reliability"): several times the largest published models, far below what would make a
// reader or the runtime allocate more than the weights themselves need.
struct Limits {
  static constexpr int64_t kLayers = 1024;
  static constexpr int64_t kHidden = int64_t(1) << 17;        // hidden_size, head_dim
  static constexpr int64_t kIntermediate = int64_t(1) << 20;
  static constexpr int64_t kVocab = int64_t(1) << 23;
  static constexpr int64_t kHeads = 1024;                     // attention and key/value heads
  static constexpr int64_t kPositions = int64_t(1) << 26;     // max_position_embeddings
};
// LimitExceeded naming the field (as config.json spells it) and where the values came from
// (`source`, e.g. "config.json" or "GGUF metadata") when `c` is over a limit.
Status check_limits(const ArchConfig& c, std::string_view source = "config.json");

// The parameters (names and shapes, in state_dict order) transformers creates for the
// architecture from its config alone (formats.md §11.1): tied weights left out (as
// save_pretrained writes them), lm_head.weight only when !tie_word_embeddings, GPT-2 with
// Conv1D's [in, out] shapes and the "transformer." prefix. Non-persistent buffers (rotary
// inv_freq, GPT-2's attn.bias mask) are not listed. Unknown families are an Unsupported error.
struct ParamSpec {
  std::string name;
  Shape shape;
};
Result<std::vector<ParamSpec>> hf_param_specs(const ArchConfig& c);

// Writes the fields of `c` back into an HF config.json for `c.family` (used by importers that
// build a config from scratch: llama2.c, GGUF -> HF, Megatron -> HF).
ojson to_hf_config(const ArchConfig& c);

}  // namespace mc::arch
