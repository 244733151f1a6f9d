// Shared pieces of the Megatron engine (formats.md §9): the hyper-parameters kept in `args`, the
// two naming styles, the rank-file layout, vocabulary padding and the lazy row gatherer that both
// directions use to split (HF -> ranks) and join (ranks -> HF) tensors without materialising them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/tensor.h"

namespace mc::megatron {

enum class Naming { Legacy, Mcore };
std::string_view naming_name(Naming n);  // "legacy" | "mcore"

// The hyper-parameters of a GPT-style (Llama-like) Megatron model, as named in its args.
struct Hyper {
  int64_t num_layers = 0, hidden = 0, ffn = 0, heads = 0, groups = 0, kv_channels = 0;
  int64_t max_pos = 0, seq_length = 0;
  int64_t padded_vocab = 0;
  int64_t vocab = 0;            // true vocabulary (0 = unknown)
  int64_t make_divisible_by = 128;
  double norm_eps = 1e-5, rotary_base = 10000.0;
  bool untie = true, qkv_bias = false;
  bool qk_norm = false;          // args.qk_layernorm: per-head RMSNorm of q and k (Qwen3)
  int tp = 1, pp = 1;
  int64_t iteration = 1;
  DType dtype = DType::F32;
};

// padded = ceil(V / (divisible_by * tp)) * (divisible_by * tp)  (formats.md §9.5).
int64_t padded_vocab_size(int64_t vocab, int64_t divisible_by, int tp);

// "iter_0000001" / "release"; "mp_rank_01" or "mp_rank_01_002" (pp > 1).
std::string iter_dir_name(int64_t iteration);
std::string rank_dir_name(int tp_rank, int pp_rank, int pp);

// Kinds of tensors Megatron stores (one transformer layer's parts + the global ones).
// QNorm/KNorm: Megatron-Core's q_layernorm / k_layernorm ([kv_channels], replicated); legacy
// names have none.
enum class Part { Embedding, Output, OutputCopy, FinalNorm, InNorm, PostNorm, Qkv, QkvBias, Proj, Fc1, Fc2, QNorm, KNorm };

struct LocalName {
  Part part;
  int64_t layer = -1;  // local layer number for per-layer parts
};

// The key of a part in one rank's flattened state dict (nested dicts joined with '.'). Parts a
// style lacks (legacy QNorm/KNorm) must not be asked for: has_part() tells.
bool has_part(Naming n, Part p);
std::string megatron_key(Naming n, Part p, int64_t local_layer);
// Parses any known legacy / mcore (local or Transformer Engine spec) key. nullopt for keys to
// ignore (`_extra_state`), an error for keys we do not understand (MoE, biases we do not map).
Result<std::optional<LocalName>> parse_megatron_key(std::string_view key, Naming* seen);

// ---- lazy gathering -----------------------------------------------------------------------------

// A run of bytes of a source tensor.
struct Segment {
  const TensorData* src;
  uint64_t offset;
  uint64_t len;
};

// A tensor whose row `r` (row_bytes long) is the concatenation of segments produced by `map`.
// Row-aligned reads; release() is forwarded to the sources so mapped files stay out of RSS
// (through `release_map` when given: the source ranges to drop once a row was written).
TensorDataPtr make_gather(uint64_t rows, uint64_t row_bytes,
                          std::function<void(uint64_t row, std::vector<Segment>& out)> map,
                          std::vector<TensorDataPtr> keep_alive,
                          std::function<void(uint64_t row, std::vector<Segment>& out)> release_map = {});

}  // namespace mc::megatron
