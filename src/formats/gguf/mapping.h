// Model <-> GGUF mappings for the architectures llama.cpp runs (formats.md §2.7-2.9):
// tensor names, hyper-parameter metadata, the llama q/k RoPE row permutation, GPT-2's Conv1D
// transposition and the per-tensor output types of convert_hf_to_gguf / llama-quantize.
//
// MiniCPM is written as llama.cpp's own "minicpm" architecture (minicpm.embedding_scale,
// .residual_scale, .logit_scale) rather than folded into plain llama weights: that keeps every
// weight bit-identical and the tying intact, llama.cpp runs it natively, and GGUF -> HF gives the
// original MiniCPM model back. Folding to llama is the separate mup2llama transform (§10), which
// a user asks for explicitly.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arch/config.h"
#include "core/model.h"
#include "formats/gguf/file.h"
#include "quant/ggml.h"

namespace mc::gguf {

// general.architecture for a family (Mistral is written as "llama", as llama.cpp does); the
// way back is arch::family_from_gguf_arch.
std::optional<std::string_view> gguf_arch_name(arch::Family f);

// The GGUF name of an HF tensor: nullopt if the family has no such tensor, "" if convert skips
// it (rotary inv_freq, GPT-2 attention masks, tied lm_head).
std::optional<std::string> gguf_tensor_name(arch::Family f, std::string_view hf_name);
// The HF name of a GGUF tensor (nullopt when unknown).
std::optional<std::string> hf_tensor_name(arch::Family f, std::string_view gguf_name);

// True when the family's llama.cpp graph uses NORM RoPE on HF rotate-half weights, so q/k rows
// are permuted (llama, mistral, minicpm; not qwen2, not gpt2).
bool needs_qk_permutation(arch::Family f);
// True for a GGUF layer weight the family stores [in, out] in HF (GPT-2's Conv1D): transposed on
// the way to and from GGUF.
bool is_conv1d_weight(arch::Family f, std::string_view gguf_name);

struct ToGgufOptions {
  quant::FileType ftype = quant::FileType::F16;  // a llama-quantize file type (f32, f16, q4_k_m, ...)
  std::string name;           // general.name ("" = from the config / source path)
};

struct Plan {
  KvStore kv;
  std::vector<TensorEntry> tensors;  // GGUF names, PyTorch-order shapes, output dtypes, lazy data
};

// HF-form Model -> the header and lazy tensors of a GGUF file (tokenizer keys not included).
Result<Plan> plan_from_model(const Model& m, const ToGgufOptions& opt);

// `name` unless llama.cpp would take it for a Phi-3 name ("phi3"/"phi-3") while `tokens` lack a
// token its Phi-3 rule needs (it fails to load then): that part is written "phi_3" and `note`
// says why.
std::string safe_general_name(std::string name, const std::vector<std::string>& tokens, std::string* note);

// The architecture keys of `c` for arch `a` (general.architecture, {a}.context_length, ...).
void put_arch_metadata(KvStore& kv, const arch::ArchConfig& c, std::string_view a);
// The ArchConfig a GGUF file describes (from its {arch}.* keys and tensor shapes).
Result<arch::ArchConfig> arch_from_file(const File& f);

// The per-dimension RoPE frequency divisors llama.cpp reads from `rope_freqs.weight` (head_dim/2
// f32 values), for a config whose scaling has no GGUF key: rope_type "llama3" (computed as
// convert_hf_to_gguf does) and a "longrope" whose short and long factors are equal with no
// attention scaling (the form arch_from_file gives such a file). nullopt when the scaling needs
// none; an error for scalings llama.cpp's llama architecture cannot express.
Result<std::optional<std::vector<float>>> rope_freq_factors(const arch::ArchConfig& c);

// Phi-3's longrope as llama.cpp's phi3 reads it: rope_factors_long/short.weight (head_dim/2 f32
// each) and {arch}.rope.scaling.attn_factor. nullopt when the config has no scaling; an error for
// scalings the phi3 architecture cannot express.
struct LongShortFactors {
  std::vector<float> long_factors, short_factors;
  float attn_factor = 1.0f;
};
Result<std::optional<LongShortFactors>> rope_long_short_factors(const arch::ArchConfig& c);
// The original context of a RoPE scaling (its original_max_position_embeddings, else the context).
int64_t original_context(const arch::ArchConfig& c);

// GGUF file -> HF-form Model: config.json rebuilt, tensors renamed back, q/k rows un-permuted,
// GPT-2 Conv1D weights transposed back, block-quantized tensors dequantized to F32 lazily.
Result<Model> model_from_file(const File& f);

}  // namespace mc::gguf
