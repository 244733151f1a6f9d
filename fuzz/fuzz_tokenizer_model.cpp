// libFuzzer target: SentencePiece tokenizer.model (the ModelProto protobuf: pieces, scores, types,
// trainer and normalizer specs) -> vocabulary, then the vocabulary as GGUF key/values.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenizer/loaders.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto v = mc::tok::parse_sentencepiece_model(bytes, "tokenizer.model");
  if (v) (void)mc::tok::vocab_to_gguf_kv(*v);
  return 0;
}
