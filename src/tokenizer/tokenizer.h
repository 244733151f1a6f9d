// Encoder/decoder over a Vocab, token-for-token compatible with llama.cpp's llama_tokenize /
// llama_detokenize for SentencePiece BPE ("llama"), SentencePiece unigram ("t5", without the
// precompiled normalization map), byte-level BPE ("gpt2" with any tokenizer.ggml.pre that
// llama.cpp knows) and WordPiece ("bert").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/vocab.h"

namespace mc::tok {

struct DecodeOptions {
  bool remove_special = false;   // drop a leading BOS / trailing EOS the encoder would add
  bool unparse_special = true;   // render control/unknown tokens as their text
  bool clean_spaces = false;     // HF clean_up_tokenization_spaces (" ," -> "," ...)
};

class Tokenizer {
 public:
  // Validates the vocabulary and builds the look-up tables (token map, merge ranks, special
  // token list, compiled pre-tokenizer).
  static Result<Tokenizer> create(Vocab vocab);

  // Special (CONTROL/UNKNOWN, or kAttrControl) tokens written in the text are recognised only
  // with parse_special; USER_DEFINED tokens always are; lstrip/rstrip attributes swallow the
  // white space beside a match. add_special adds BOS/EOS/SEP per the vocab flags.
  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special = false) const;
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& opt = {}) const;
  // The text one token stands for (raw bytes; may be a partial UTF-8 sequence).
  std::string piece(int32_t id, bool special = true) const;

  int32_t token_to_id(std::string_view token) const;  // kNoToken if absent
  const Vocab& vocab() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace mc::tok
