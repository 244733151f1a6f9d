// The vocabulary last parsed from the very same bytes, per parser. A conversion parses its
// tokenizer file twice, all before the first byte of output: the input check (a broken tokenizer
// must fail before anything is written) and then the writer; a 32k SentencePiece model takes ~6 ms,
// a large tokenizer.json many times that. Only successes are kept, and only the last one per parser.
#pragma once

#include <optional>
#include <string_view>

#include "tokenizer/vocab.h"

namespace mc::tok {

enum class ParserKind { TokenizerJson, SentencePiece };

std::optional<Vocab> memo_find(ParserKind kind, std::string_view bytes);
void memo_store(ParserKind kind, std::string_view bytes, const Vocab& v);

}  // namespace mc::tok
