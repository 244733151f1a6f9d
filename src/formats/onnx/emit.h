// The runtime's op graph (graph/graph.h) emitted as a plain-ONNX decoder with a KV cache, in the
// I/O contract optimum writes and Transformers.js feeds (formats.md §5.4):
//   inputs   input_ids int64 [batch_size, sequence_length]
//            attention_mask int64 [batch_size, total_sequence_length]
//            position_ids int64 [batch_size, sequence_length]
//            past_key_values.{i}.key/.value float [batch_size, KV, past_sequence_length, HD]
//   outputs  logits float [batch_size, sequence_length, vocab]
//            present.{i}.key/.value float [batch_size, KV, total_sequence_length, HD]
// with KV (kv heads) and HD (head dim) concrete numbers (Transformers.js makes its first, empty
// past from the declared shape: every symbolic dim but batch_size becomes 0).
// Activations stay 2-D [batch·seq, width] as in the IR; attention reshapes to
// [batch, heads, seq, head_dim]. What decoding with a cache needs besides the IR's ops is added
// here: the causal + padding mask from attention_mask (query i of the chunk has cache index
// past + i and sees key j iff j <= past + i, attention_mask[b, j] = 1 and, with a sliding window,
// past + i - j < window; masked scores become the lowest float, so a fully padded row stays
// finite), RoPE cos/sin from position_ids, past/present Concat, and GQA by repeating kv heads.
// Opset 17 ops only; weights are initializers under their HF names in their HF layout
// (Linear [out, in] via Gemm transB=1, GPT-2 Conv1D [in, out] via Gemm); f16 weights are Cast to
// f32, so computation and the I/O are f32 in both dtypes.
#pragma once

#include "formats/onnx/model_proto.h"
#include "graph/graph.h"

namespace mc::onnx {

inline constexpr int64_t kOpset = 17;

// Names of the cache I/O of layer `i`.
std::string past_name(size_t i, bool key);
std::string present_name(size_t i, bool key);

// `ts` must hold every weight the graph names (f32 or f16) and outlive the result (its
// initializers point at the entries).
Result<GraphOut> emit_decoder(const graph::Graph& g, const TensorStore& ts);

}  // namespace mc::onnx
