// libFuzzer target: tokenizer.json -> vocabulary (BPE, Unigram, WordPiece, added tokens).
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/loaders.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)mc::tok::parse_tokenizer_json(text, "tokenizer.json");
  return 0;
}
