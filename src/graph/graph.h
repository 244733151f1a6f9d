// A small op-graph IR for decoder-only LLMs. Each architecture is written down once, as a function
// that builds this graph from an ArchConfig and the HF tensor names; the CPU interpreter
// (runtime.h) runs it, and the ONNX / TorchScript emitters translate it op by op. So every op is
// explicit and named, activations are 2-D [tokens, width] f32 values, and weights are referenced by
// tensor name (never copied into the graph).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arch/config.h"
#include "core/error.h"
#include "core/model.h"

namespace mc::graph {

using ValueId = int32_t;

enum class OpKind : uint8_t {
  Embedding,          // out[t] = weight[ids[t]]                 in: {input_ids}
  PositionEmbedding,  // out[t] = weight[pos[t]]                 in: {position_ids}
  RMSNorm,            // x * rsqrt(mean(x^2) + eps) * (weight_offset + weight), over each group of
                      // norm_group columns (0: the whole row; a group = one head)  in: {x}
  LayerNorm,          // (x - mean) / sqrt(var + eps) * w + b     in: {x}
  MatMul,             // x @ W^T (+ bias); W is [out, in], or [in, out] when weight_in_out
  Add,                // a + b                                    in: {a, b}
  Mul,                // a * b (elementwise)                      in: {a, b}
  Scale,              // x * scale                                in: {x}
  Slice,              // columns [begin, end) of x                in: {x}
  RoPE,               // rotate-half rotary embedding per head    in: {x, position_ids}
  Attention,          // causal softmax attention with KV cache   in: {q, k, v}
  SiLU,               // x * sigmoid(x)                           in: {x}
  GELUTanh,           // 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))
  GELU,               // 0.5x(1 + erf(x / sqrt(2)))  (exact GELU)
  SwiGLU,             // silu(gate) * up                          in: {gate, up}
};
std::string_view op_kind_name(OpKind k);

// Rotary embedding parameters. inv_freq holds the final per-pair frequencies (after any
// scaling rule), so the interpreter and the emitters need not know the rules.
struct RopeSpec {
  int64_t n_heads = 0;
  int64_t head_dim = 0;
  double theta = 10000.0;
  std::string scaling = "default";   // default | linear | llama3 | longrope
  std::vector<float> inv_freq;       // head_dim / 2 entries
  float attention_factor = 1.0f;     // cos/sin multiplier (longrope)
  int64_t max_position = 0;          // positions >= this are refused (0 = unlimited)
};

struct AttentionSpec {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  double scale = 1.0;                   // multiplies q.k
  std::optional<int64_t> window;        // key j is visible from query i iff 0 <= i - j < window
};

struct Value {
  std::string name;
  int64_t width = 0;  // columns; input_ids / position_ids have width 1 and hold integers
};

struct Op {
  OpKind kind{};
  std::string name;               // unique, e.g. "layers.3.attn.q_proj"
  std::vector<ValueId> inputs;
  ValueId output = -1;
  std::string weight;             // HF tensor name ("" if none)
  std::string bias;               // HF tensor name ("" if none)
  bool weight_in_out = false;     // MatMul: weight stored [in, out] (GPT-2 Conv1D)
  double eps = 0.0;               // norms
  int64_t norm_group = 0;         // RMSNorm: columns normalised together (0 = the whole row)
  float weight_offset = 0.0f;     // RMSNorm: scales by (weight_offset + weight) (Gemma: 1)
  double scale = 1.0;             // Scale
  int64_t begin = 0, end = 0;     // Slice
  RopeSpec rope;                  // RoPE
  AttentionSpec attn;             // Attention
};

struct Graph {
  arch::Family family = arch::Family::Unknown;
  int64_t vocab_size = 0;
  int64_t max_positions = 0;      // hard limit from a learned position table (0 = none)
  std::vector<Value> values;
  std::vector<Op> ops;            // in execution order; each op's inputs are defined before it
  ValueId input_ids = 0;          // integer input, [tokens]
  ValueId position_ids = 1;       // integer input, [tokens]
  ValueId logits = -1;            // output, [tokens, vocab]

  // Every tensor name the graph reads, in first-use order, without repeats.
  std::vector<std::string> weight_names() const;
  // One line per op: "layers.0.attn.q_proj = MatMul(x) W=... [64 -> 64]" (for logs and tests).
  std::string to_string() const;
};

// Builds the forward graph of `cfg.family`. `tensors` is consulted for names only (an absent
// lm_head means tied to the embedding; GPT-2 checkpoints with or without the "transformer."
// prefix). `raw_config` (the config.json) supplies the few fields ArchConfig does not normalise
// (qwen2 max_window_layers, gpt2 scale_attn_weights); may be null.
Result<Graph> build_graph(const arch::ArchConfig& cfg, const TensorStore& tensors,
                          const ojson* raw_config = nullptr);
// Same, from a Model (normalises its config.json first).
Result<Graph> build_graph(const Model& model);

// Checks that each weight named by `g` exists in `tensors` with the shape the op needs; the
// first problem is returned as Mismatch/NotFound naming the tensor.
Status check_weights(const Graph& g, const TensorStore& tensors);

}  // namespace mc::graph
