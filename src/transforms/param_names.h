// The parameters (names and shapes, in state_dict order) that transformers creates for an
// architecture from its config.json alone (formats.md §11.1); used to make fake weights from a
// config and to check a model's tensor list.
#pragma once

#include <string>
#include <vector>

#include "arch/config.h"
#include "core/tensor.h"

namespace mc::transforms {

struct ParamSpec {
  std::string name;
  Shape shape;
};

// State-dict order, tied weights left out (as save_pretrained writes them): lm_head.weight only
// when !tie_word_embeddings. GPT-2 keeps Conv1D's [in, out] weight shapes and the
// "transformer." prefix. Non-persistent buffers (rotary inv_freq, GPT-2's attn.bias mask) are
// not parameters and are not listed. Unknown families are an Unsupported error.
Result<std::vector<ParamSpec>> hf_param_specs(const arch::ArchConfig& c);

// True for RMSNorm/LayerNorm parameters ("...norm.weight", "...layernorm.bias", GPT-2 "ln_*").
bool is_norm_param(std::string_view name);

}  // namespace mc::transforms
