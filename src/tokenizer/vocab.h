// The normalised tokenizer vocabulary. Every loader (tokenizer.json, tokenizer.model,
// vocab.json + merges.txt, GGUF tokenizer.ggml.* metadata) produces a Vocab; the GGUF writer
// embeds one and the HF writer turns one back into tokenizer.json. Field meanings follow the GGUF
// tokenizer keys (formats.md §2.7): `tokens` hold the strings exactly as tokenizer.ggml.tokens
// stores them (SentencePiece pieces with U+2581, GPT-2 byte-to-unicode strings for byte-level
// BPE), `types` the llama.cpp token types, `merges` the "left right" strings.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mc::tok {

enum class ModelKind : uint8_t {
  SpmBpe,         // SentencePiece BPE with byte fallback (GGUF "llama")
  SpmUnigram,     // SentencePiece unigram (GGUF "t5")
  ByteLevelBpe,   // GPT-2 style byte-level BPE (GGUF "gpt2")
  WordPiece,      // BERT WordPiece (GGUF "bert")
};

// tokenizer.ggml.model value for a kind ("llama", "t5", "gpt2", "bert").
std::string_view model_kind_gguf_name(ModelKind k);
// Inverse of model_kind_gguf_name; nullopt for models we do not handle ("rwkv", "none", ...).
std::optional<ModelKind> model_kind_from_gguf_name(std::string_view name);

// llama.cpp token types (tokenizer.ggml.token_type).
enum TokenType : int32_t {
  kTokUndefined = 0,
  kTokNormal = 1,
  kTokUnknown = 2,
  kTokControl = 3,
  kTokUserDefined = 4,
  kTokUnused = 5,
  kTokByte = 6,
};

// Per-token attributes that GGUF does not store: HF added_tokens' lstrip/rstrip, and the
// overrides llama.cpp's vocabulary loader applies by token text or model name (llama-vocab.cpp
// load: end-of-generation and FIM tokens become CONTROL; phi-3's special tokens get rstrip).
enum TokenAttr : uint8_t {
  kAttrLstrip = 1,   // a match swallows the whitespace on its left
  kAttrRstrip = 2,   // ... and on its right
  kAttrControl = 4,  // treated as CONTROL whatever its stored type
};

inline constexpr int32_t kNoToken = -1;
// Safety caps for counts read from files.
inline constexpr size_t kMaxVocabTokens = size_t(1) << 24;
inline constexpr size_t kMaxTokenBytes = size_t(1) << 16;

struct Vocab {
  ModelKind kind = ModelKind::SpmBpe;
  std::vector<std::string> tokens;
  std::vector<float> scores;   // empty or one per token
  std::vector<int32_t> types;  // one per token (TokenType values)
  std::vector<uint8_t> attrs;  // TokenAttr bits; tokens past its end have none
  std::vector<std::string> merges;  // "a b"; rank = index
  std::string pre = "default";      // tokenizer.ggml.pre

  int32_t bos_id = kNoToken;
  int32_t eos_id = kNoToken;
  int32_t unk_id = kNoToken;
  int32_t pad_id = kNoToken;
  int32_t sep_id = kNoToken;
  int32_t eot_id = kNoToken;
  int32_t mask_id = kNoToken;

  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SentencePiece add_dummy_prefix
  bool remove_extra_whitespaces = false;
  bool byte_fallback = false;     // informational: BPE with <0xXX> pieces
  bool ignore_merges = false;     // tokenizer.json BPE ignore_merges (Llama-3 style)
  bool add_sep = false;           // WordPiece: [SEP] ends an encoding with special tokens
  bool lowercase = true;          // WordPiece normalizer (BertNormalizer lowercase)
  bool strip_accents = true;      // WordPiece normalizer (NFD, marks dropped)

  std::string chat_template;  // "" when none
  // The special tokens tokenizer.json's post_processor puts before and after a single text
  // (TemplateProcessing, alone or in a Sequence; RobertaProcessing's cls and sep), "" when none.
  // Loading an HF directory turns them into add_bos / add_eos as convert_hf_to_gguf.py does,
  // unless tokenizer_config.json says add_bos_token / add_eos_token itself.
  std::string post_first, post_last;

  size_t size() const { return tokens.size(); }
  int32_t type_of(int32_t id) const {
    return (id >= 0 && size_t(id) < types.size()) ? types[size_t(id)] : kTokUndefined;
  }
  uint8_t attr_of(int32_t id) const {
    return (id >= 0 && size_t(id) < attrs.size()) ? attrs[size_t(id)] : uint8_t(0);
  }
  void set_attr(int32_t id, uint8_t bit, bool on);  // grows `attrs` as needed
  // CONTROL or UNKNOWN (by type or by kAttrControl): matched in text only with special parsing,
  // rendered only when special tokens are.
  bool is_control_like(int32_t id) const {
    const int32_t t = type_of(id);
    return t == kTokControl || t == kTokUnknown || (attr_of(id) & kAttrControl) != 0;
  }
  // Control-like or USER_DEFINED: the tokens cut out of the raw text before the model runs
  // (llama.cpp's special-token cache).
  bool is_special(int32_t id) const { return is_control_like(id) || type_of(id) == kTokUserDefined; }
  float score_of(int32_t id) const {
    return (id >= 0 && size_t(id) < scores.size()) ? scores[size_t(id)] : 0.0f;
  }
  // Linear search; build a map (Tokenizer does) for repeated look-ups.
  int32_t find(std::string_view token) const;

  // Checks sizes agree, ids are in range, tokens are non-empty and bounded.
  Status validate() const;
};

// GPT-2 byte <-> unicode mapping (formats.md §11.2): the UTF-8 string a byte becomes in a
// byte-level BPE vocabulary, and the byte a (single code point) string stands for.
const std::string& byte_to_unicode(uint8_t b);
// Decodes a byte-level token string back to raw bytes; false if a code point is not in the map.
bool unicode_to_bytes(std::string_view token, std::string* out);
// "<0xAB>" for SentencePiece byte pieces.
std::string byte_piece(uint8_t b);
// Parses "<0xAB>"; nullopt otherwise.
std::optional<uint8_t> parse_byte_piece(std::string_view piece);

// Splits a GGUF merge string at the first space after position 0 (llama.cpp's rule).
std::optional<std::pair<std::string_view, std::string_view>> split_merge(std::string_view m);

// convert_hf_to_gguf's rule for added tokens that should be CONTROL although not marked special.
bool looks_special(std::string_view token);

}  // namespace mc::tok
