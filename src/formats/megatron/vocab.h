// True vocabulary size from a tokenizer (for unpadding a Megatron embedding, formats.md §9.5).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

namespace mc::megatron {

namespace fs = std::filesystem;

struct TokenizerVocab {
  int64_t size = 0;
  fs::path file;  // the file the size was taken from
};

// `path`: a tokenizer file or a directory holding tokenizer.json / tokenizer.model / vocab.json.
std::optional<TokenizerVocab> tokenizer_vocab_size(const fs::path& path);

}  // namespace mc::megatron
