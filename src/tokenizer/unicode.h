// Unicode character classes and the byte-level BPE pre-tokenizer (word splitting by regex).
// Categories come from ICU (u_charType, White_Space; opened when first needed), grouped the way llama.cpp's unicode.cpp
// groups them. The split reproduces llama.cpp: dedicated scanners for the GPT-2, Llama-3 and
// Qwen2 expressions, and for every other expression std::regex run over a "collapsed" copy of
// the text in which each code point becomes one byte standing for its category.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace mc::tok {

struct CpFlags {
  enum : uint16_t {
    kUndefined = 0x0001,
    kNumber = 0x0002,       // \p{N}
    kLetter = 0x0004,       // \p{L}
    kSeparator = 0x0008,    // \p{Z}
    kMark = 0x0010,         // \p{M}
    kPunctuation = 0x0020,  // \p{P}
    kSymbol = 0x0040,       // \p{S}
    kControl = 0x0080,      // \p{C} except Cn
    kWhitespace = 0x0100,   // White_Space property
  };
  uint16_t bits = 0;  // 0 only for positions outside the text
  bool is(uint16_t f) const { return (bits & f) != 0; }
  uint16_t category() const { return bits & 0xFF; }
};

// Opens the Unicode character data (ICU, with dlopen at the first call): an error naming the
// library when it is not installed. Tokenizer::create calls it; the functions below assume it
// succeeded (they throw otherwise).
Status unicode_load();

CpFlags cp_flags(uint32_t cp);
uint32_t cp_tolower(uint32_t cp);
// The first code point of the canonical decomposition (NFD) of `cp`, or `cp` itself: the
// one-to-one mapping llama.cpp's WordPiece normalizer applies before it drops accent marks.
uint32_t cp_nfd_first(uint32_t cp);

// The regular expressions llama.cpp uses for a tokenizer.ggml.pre value; an error for names it
// does not know (llama.cpp refuses to load those too).
Result<std::vector<std::string>> pre_tokenizer_regexes(std::string_view pre);

// Splits text into words with a list of expressions applied in turn (each refines the pieces
// of the previous one). Expressions are compiled once, at create().
class PreTokenizer {
 public:
  static Result<PreTokenizer> create(const std::vector<std::string>& regexes);
  // With byte_encode, each word is mapped byte-by-byte to the GPT-2 alphabet.
  std::vector<std::string> split(std::string_view text, bool byte_encode) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace mc::tok
