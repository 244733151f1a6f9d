// llama2.c checkpoints (formats.md §12): legacy (run.c, no magic), version 1 (fp32, "ak42"
// header) and version 2 (int8 groups), read into a Model with Hugging Face Llama names.
#pragma once

#include <cstdint>
#include <span>

#include "formats/engine.h"

namespace mc::llama2c {

namespace fs = std::filesystem;

inline constexpr uint32_t kMagic = 0x616b3432;  // "ak42" read as a little-endian u32
inline constexpr uint64_t kHeaderV1 = 256;       // v1/v2 header size (zero padded)
inline constexpr uint64_t kHeaderLegacy = 28;    // 7 x int32

struct Header {
  int version = 0;  // 0 = legacy
  int64_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
  bool shared_classifier = true;
  int64_t group_size = 0;    // v2 only
  uint64_t data_offset = 0;  // first weight byte
  uint64_t expected_size = 0;  // file size implied by the header
  int64_t head_size() const { return dim / n_heads; }
  int64_t kv_dim() const { return n_kv_heads * head_size(); }
};

// Parses and checks the header against the file size (every count is capped before use; the
// size must match exactly, which is also how a legacy file without magic is recognised).
Result<Header> parse_header(std::span<const std::byte> head, uint64_t file_size);

formats::Confidence detect(const fs::path& path);
// Maps the file and returns a Model: HF Llama tensor names, q/k rows in rotate-half order
// (lazy permutation), v2 groups dequantized lazily to f32, config.json via arch::to_hf_config,
// and opt.tokenizer (a SentencePiece tokenizer.model, or a directory holding one) attached as
// "tokenizer.model" with a generated tokenizer_config.json.
Result<Model> read(const fs::path& path, const formats::ReadOptions& opt);

// id "llama2c"; read only (write == nullptr).
const formats::Engine& engine();

}  // namespace mc::llama2c
