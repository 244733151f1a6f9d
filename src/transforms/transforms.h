// Model transforms: each takes a Model and returns a new one whose tensors are lazy TensorData
// wrappers over the old ones. No tensor data is read while a transform runs; the wrappers read
// their source in bounded chunks when a writer pulls them, so memory stays flat.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/model.h"
#include "core/tensor.h"
#include "transforms/rows.h"

namespace mc::transforms {

// ---- per-tensor wrappers (building blocks, also used by readers) ---------------------------

// The tensor converted element-wise to `target` (plain dtypes; floats round to nearest even,
// bit-exact with torch's Tensor.to). Returns `e` itself when the dtype already matches.
Result<TensorEntry> cast_tensor(const TensorEntry& e, DType target);

// The tensor multiplied by `factor`: computed in f32 (source upcast, product in f32) and rounded
// back to the tensor's own dtype, like `(w.float() * factor).to(w.dtype)` in torch.
Result<TensorEntry> scale_tensor(const TensorEntry& e, float factor);

// Q/K row permutation between HF's rotate-half layout and the Meta/GGUF/llama2.c adjacent-pair
// layout (formats.md §2.9, §12; QkDirection in rows.h). Rows (dim 0) are grouped by head:
// n_heads = rows / head_dim.
Result<TensorEntry> permute_qk_tensor(const TensorEntry& e, int64_t n_heads, QkDirection dir);

// ---- model transforms ----------------------------------------------------------------------

// Every plain floating-point tensor cast to `target` (a float dtype); integer, bool and
// quantized tensors are kept. config.json's torch_dtype is set ("float32", "float16",
// "bfloat16", ...) and config_modified is set when it changes.
Result<Model> cast(const Model& m, DType target);

// MiniCPM muP -> plain Llama, formats.md §10 option A: embed_tokens *= scale_emb; every
// o_proj/down_proj (and their biases) *= scale_depth / sqrt(num_hidden_layers);
// lm_head = (dim_model_base / hidden_size) * W with W = the ORIGINAL embedding when tied (the
// model is untied and both tensors written). Scaling is done in f32 and rounded once back to
// each tensor's dtype (so a bf16 input loses at most half a bf16 ulp per element).
// The config loses scale_emb / scale_depth / dim_model_base / auto_map and other MiniCPM-only
// keys and becomes model_type "llama", architectures ["LlamaForCausalLM"],
// tie_word_embeddings false; every other key is kept in place.
Result<Model> mup_to_llama(const Model& m);

enum class FakeMode { Zeros, Random };

struct FakeOptions {
  FakeMode mode = FakeMode::Random;
  uint64_t seed = 0;
  float stddev = 0.02f;  // random mode: N(0, stddev) for weights and non-norm biases
  // Optional explicit tensor list, parsed JSON: {name: [dims...]} or
  // {name: {"shape": [dims...], "dtype": "f16"}}. When given it is the whole tensor list (in its
  // order) instead of the architecture's table; a model's own tensors are then ignored.
  ojson shapes;
  std::optional<DType> dtype;  // float dtype of created tensors (default: config torch_dtype, else f32)
};

// Replaces every tensor's data with generated values, keeping names/dtypes/shapes. When `m` has
// no tensors (config-only input), the tensor list comes from `opt.shapes` or else from the HF
// parameter table of the config's architecture (arch::hf_param_specs), honouring
// tie_word_embeddings and torch_dtype.
// Random values are a pure function of (seed, tensor name, element index), so any thread count
// and any split of the reads give the same bytes: a counter-based hash of the index (two lowbias32
// hashes keyed by SplitMix64 of the seed and name) whose four 16-bit halves are summed, an
// Irwin-Hall near-normal with mean 0 and standard deviation stddev (fake_weights.cpp has the
// exact formula, tests/py/fake_random_oracle.py an independent copy). Norm weights (RMSNorm /
// LayerNorm) are 1 and norm biases 0 in random mode; zeros mode writes zeros everywhere.
Result<Model> fake_weights(const Model& m, const FakeOptions& opt);

// Reads a shapes file (JSON, or YAML when the name ends in .yaml/.yml) into the JSON form
// FakeOptions::shapes takes. Errors name the file and the offending entry.
Result<ojson> load_shapes_file(const std::string& path);
// Same from text already in memory; `yaml` selects the YAML parser.
Result<ojson> parse_shapes_text(std::string_view text, bool yaml, const std::string& path = "");

// q_proj / k_proj (weights and biases) of every layer permuted (see QkDirection), using
// num_attention_heads for q and num_key_value_heads for k from config.json.
Result<Model> permute_qk(const Model& m, QkDirection dir);

}  // namespace mc::transforms
