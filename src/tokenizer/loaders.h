// Loaders that turn tokenizer files into a Vocab, and the reverse direction (Vocab -> HF files).
//   tokenizer.json            formats.md §11.2 (BPE with byte_fallback, ByteLevel BPE, Unigram)
//   tokenizer.model           formats.md §11.3 (SentencePiece ModelProto)
//   vocab.json + merges.txt   GPT-2 style byte-level BPE
//   tokenizer_config.json     formats.md §11.4 (add_bos/add_eos, special tokens, chat template)
//   GGUF tokenizer.ggml.*     formats.md §2.7, through GgufTokenizerKV (no GGUF reader needed)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/vocab.h"

namespace mc::tok {

Result<Vocab> load_tokenizer_json(const std::string& path);
Result<Vocab> parse_tokenizer_json(const std::string& text, const std::string& path_for_errors);
Result<Vocab> load_sentencepiece_model(const std::string& path);
Result<Vocab> parse_sentencepiece_model(std::string_view bytes, const std::string& path_for_errors);
Result<Vocab> load_vocab_merges(const std::string& vocab_json, const std::string& merges_txt);
// Parse a file to check it, and keep the vocabulary for the next parse of the same bytes, which
// takes it over instead of parsing again (parse_memo.h): a conversion's input check and its
// writer parse a tokenizer once.
Status check_tokenizer_json(const std::string& path);
Status check_sentencepiece_model(const std::string& path);

// Applies tokenizer_config.json: add_bos_token/add_eos_token, bos/eos/unk/pad token names ->
// ids, added_tokens_decoder types (CONTROL if special or looks special, else USER_DEFINED),
// chat_template (string, or the "default" entry of a list).
Status apply_tokenizer_config(Vocab& v, const std::string& config_json_text,
                              const std::string& path_for_errors);
// added_tokens.json ({"content": id}) for SentencePiece models: USER_DEFINED, score -1000.
Status apply_added_tokens_json(Vocab& v, const std::string& text, const std::string& path);

// A Hugging Face model directory: tokenizer.json, else tokenizer.model, else vocab.json +
// merges.txt; then added_tokens.json (SentencePiece only), tokenizer_config.json,
// special_tokens_map.json is not needed; chat_template.jinja overrides the config's template.
Result<Vocab> load_hf_tokenizer_dir(const std::string& dir);

// The tokenizer.* GGUF keys as plain values. The GGUF reader fills one from the KV section
// (absent keys stay nullopt/empty) and the GGUF writer writes one back with the types noted.
struct GgufTokenizerKV {
  std::string model;                           // tokenizer.ggml.model (string)
  std::optional<std::string> pre;              // tokenizer.ggml.pre (string)
  std::vector<std::string> tokens;             // tokenizer.ggml.tokens (array[string])
  std::optional<std::vector<float>> scores;    // tokenizer.ggml.scores (array[f32])
  std::optional<std::vector<int32_t>> token_types;  // tokenizer.ggml.token_type (array[i32])
  std::optional<std::vector<std::string>> merges;   // tokenizer.ggml.merges (array[string])
  // *_token_id keys (u32): bos, eos, unknown, padding, seperator (sic), eot, mask.
  std::optional<uint32_t> bos_id, eos_id, unk_id, pad_id, sep_id, eot_id, mask_id;
  // bools: add_bos_token, add_eos_token, add_sep_token, add_space_prefix,
  // remove_extra_whitespaces, normalizer.lowercase, normalizer.strip_accents.
  std::optional<bool> add_bos, add_eos, add_sep, add_space_prefix, remove_extra_whitespaces;
  std::optional<bool> lowercase, strip_accents;
  std::optional<std::string> chat_template;    // tokenizer.chat_template (string)
  // Read, never written here: llama.cpp's per-model token rules look at general.name,
  // general.architecture.
  std::optional<std::string> model_name, architecture;
};

// Key names, in the order a writer should emit them.
inline constexpr const char* kGgufKeyModel = "tokenizer.ggml.model";
inline constexpr const char* kGgufKeyPre = "tokenizer.ggml.pre";
inline constexpr const char* kGgufKeyTokens = "tokenizer.ggml.tokens";
inline constexpr const char* kGgufKeyScores = "tokenizer.ggml.scores";
inline constexpr const char* kGgufKeyTokenType = "tokenizer.ggml.token_type";
inline constexpr const char* kGgufKeyMerges = "tokenizer.ggml.merges";
inline constexpr const char* kGgufKeyBos = "tokenizer.ggml.bos_token_id";
inline constexpr const char* kGgufKeyEos = "tokenizer.ggml.eos_token_id";
inline constexpr const char* kGgufKeyUnk = "tokenizer.ggml.unknown_token_id";
inline constexpr const char* kGgufKeyPad = "tokenizer.ggml.padding_token_id";
inline constexpr const char* kGgufKeySep = "tokenizer.ggml.seperator_token_id";
inline constexpr const char* kGgufKeyEot = "tokenizer.ggml.eot_token_id";
inline constexpr const char* kGgufKeyMask = "tokenizer.ggml.mask_token_id";
inline constexpr const char* kGgufKeyAddBos = "tokenizer.ggml.add_bos_token";
inline constexpr const char* kGgufKeyAddEos = "tokenizer.ggml.add_eos_token";
inline constexpr const char* kGgufKeyAddSep = "tokenizer.ggml.add_sep_token";
inline constexpr const char* kGgufKeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
inline constexpr const char* kGgufKeyRemoveExtraWs = "tokenizer.ggml.remove_extra_whitespaces";
inline constexpr const char* kGgufKeyLowercase = "tokenizer.ggml.normalizer.lowercase";
inline constexpr const char* kGgufKeyStripAccents = "tokenizer.ggml.normalizer.strip_accents";
inline constexpr const char* kGgufKeyChatTemplate = "tokenizer.chat_template";

// GGUF -> Vocab with llama.cpp's defaults for absent keys (SPM: bos 1, eos 2, unk 0,
// add_bos, add_space_prefix; gpt2: bos = eos = 11; llama3-family pre: add_bos, ignore_merges;
// bert: [CLS] 101 ... [SEP] 102, lowercase, strip_accents) and the token attributes
// llama.cpp's loader derives from token texts and the model name (see TokenAttr).
Result<Vocab> vocab_from_gguf_kv(const GgufTokenizerKV& kv);
// Vocab -> GGUF values; every id/flag is written explicitly (formats.md §2.7 advice). The
// token, score, type and merge vectors are moved out of `v` (pass a copy to keep them).
GgufTokenizerKV vocab_to_gguf_kv(Vocab v);

// Vocab -> HF files (GGUF -> HF direction), for SentencePiece BPE and byte-level BPE.
struct HfTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
};
Result<HfTokenizerFiles> vocab_to_hf(const Vocab& v);

}  // namespace mc::tok
