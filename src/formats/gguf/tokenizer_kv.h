// The embedded tokenizer (tokenizer.ggml.* keys, formats.md §2.7) in both directions, through the
// tokenizer library's Vocab.
#pragma once

#include "core/model.h"
#include "formats/gguf/file.h"
#include "formats/gguf/mapping.h"
#include "tokenizer/vocab.h"

namespace mc::gguf {

// Writes a Vocab as GGUF keys (every id and flag explicit, arrays typed as llama.cpp reads them);
// its vectors move into the keys (pass a copy to keep them).
void put_vocab(KvStore& kv, tok::Vocab v);
// Reads the tokenizer keys back into a Vocab (NotFound when the file has none).
Result<tok::Vocab> vocab_from_kv(const KvStore& kv);
// Pads a vocabulary to `n` entries with "[PADi]" UNUSED tokens, as convert_hf_to_gguf does when
// the embedding has more rows than the tokenizer has tokens; Mismatch when it has fewer.
Status pad_vocab(tok::Vocab& v, int64_t n);

// Adds the tokenizer keys to a GGUF plan: copied from the source file for a Model read from a
// GGUF, else loaded from the Model's tokenizer files (tokenizer.model preferred for
// SentencePiece, then tokenizer.json, vocab.json + merges.txt; tokenizer_config.json,
// added_tokens.json and chat_template.jinja applied). No tokenizer files: nothing is added.
Status add_tokenizer_metadata(const Model& m, Plan& plan);
// GGUF -> HF: tokenizer.json and tokenizer_config.json rebuilt from the file's keys, as extra
// files of `m` (nothing when the file has no vocabulary or the tokenizer kind has no HF form).
Status attach_tokenizer_files(const File& f, Model& m);

}  // namespace mc::gguf
