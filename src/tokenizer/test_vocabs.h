// Tiny vocabularies shared by the tokenizer tests (unit and interop), built in code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/loaders.h"

namespace mc::tok::test_vocabs {

// A byte-level vocabulary in the Llama 3 shape: BOS added, no EOS. Ids: a 0, b 1, ab 2,
// <|begin_of_text|> 3, <|end_of_text|> 4, <|eot_id|> 5, "Ġ" 6, "Ġa" 7 ("Ġ" is the byte-level
// form of a space, so " a" is one token).
inline GgufTokenizerKV tiny_llama3_kv() {
  GgufTokenizerKV kv;
  kv.model = "gpt2";
  kv.pre = "llama-bpe";
  kv.tokens = {"a", "b", "ab", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "\xC4\xA0", "\xC4\xA0" "a"};
  kv.token_types = std::vector<int32_t>{1, 1, 1, 3, 3, 3, 1, 1};
  kv.merges = std::vector<std::string>{"a b", "\xC4\xA0 a"};
  kv.bos_id = 3, kv.eos_id = 4;
  kv.add_bos = true, kv.add_eos = false;
  return kv;
}

}  // namespace mc::tok::test_vocabs
