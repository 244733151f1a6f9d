// A vocabulary parsed by the input check, kept for the next parse of the very same bytes. A
// conversion parses its tokenizer file twice, all before the first byte of output: the input
// check (a broken tokenizer must fail before anything is written) and then the writer; a 32k
// SentencePiece model takes ~6 ms, a large tokenizer.json many times that. The next parse takes
// the vocabulary over (moved, not copied: a 32k vocabulary copied is ~1 MB of fresh memory, and
// fresh pages are what a conversion's first milliseconds spend most on), so the memo answers
// once; a later parse of the same bytes parses again.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "tokenizer/vocab.h"

namespace mc::tok {

enum class ParserKind { TokenizerJson, SentencePiece };

// The vocabulary kept for exactly these bytes, handed over; nullopt when none is kept.
std::optional<Vocab> memo_take(ParserKind kind, std::string_view bytes);
// Keeps `v`, a successful parse of `bytes`, replacing what this parser kept before. `owner`
// keeps the bytes alive (the file's mapping, or the string read), so they are not copied.
void memo_keep(ParserKind kind, std::shared_ptr<const void> owner, std::string_view bytes, Vocab v);

}  // namespace mc::tok
