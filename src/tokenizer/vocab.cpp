// Vocab helpers: validation, GGUF model names, the GPT-2 byte <-> unicode table (formats.md
// §11.2) and SentencePiece byte pieces.
#include "tokenizer/vocab.h"

#include <array>
#include <unordered_map>

#include "tokenizer/utf8.h"

namespace mc::tok {

std::string_view model_kind_gguf_name(ModelKind k) {
  switch (k) {
    case ModelKind::SpmBpe: return "llama";
    case ModelKind::SpmUnigram: return "t5";
    case ModelKind::ByteLevelBpe: return "gpt2";
    case ModelKind::WordPiece: return "bert";
  }
  return "llama";
}

std::optional<ModelKind> model_kind_from_gguf_name(std::string_view name) {
  if (name == "llama") return ModelKind::SpmBpe;
  if (name == "t5") return ModelKind::SpmUnigram;
  if (name == "gpt2") return ModelKind::ByteLevelBpe;
  if (name == "bert") return ModelKind::WordPiece;
  return std::nullopt;
}

int32_t Vocab::find(std::string_view token) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == token) return int32_t(i);
  }
  return kNoToken;
}

void Vocab::set_attr(int32_t id, uint8_t bit, bool on) {
  if (id < 0 || size_t(id) >= tokens.size()) return;
  if (attrs.size() < tokens.size()) attrs.resize(tokens.size(), 0);
  if (on) attrs[size_t(id)] = uint8_t(attrs[size_t(id)] | bit);
  else attrs[size_t(id)] = uint8_t(attrs[size_t(id)] & ~bit);
}

Status Vocab::validate() const {
  if (tokens.empty()) {
    return make_error(ErrorCode::Corrupt, "tokenizer vocabulary is empty")
        .with_hint("the tokenizer files hold no tokens; check they are complete");
  }
  if (tokens.size() > kMaxVocabTokens) {
    return make_error(ErrorCode::LimitExceeded, "vocabulary has {} tokens, more than the cap {}",
                      tokens.size(), kMaxVocabTokens);
  }
  if (!scores.empty() && scores.size() != tokens.size()) {
    return make_error(ErrorCode::Mismatch, "{} scores for {} tokens", scores.size(), tokens.size());
  }
  if (types.size() != tokens.size()) {
    return make_error(ErrorCode::Mismatch, "{} token types for {} tokens", types.size(),
                      tokens.size());
  }
  if (attrs.size() > tokens.size()) {
    return make_error(ErrorCode::Mismatch, "{} token attributes for {} tokens", attrs.size(),
                      tokens.size());
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].size() > kMaxTokenBytes) {
      return make_error(ErrorCode::LimitExceeded, "token {} is {} bytes long (cap {})", i,
                        tokens[i].size(), kMaxTokenBytes);
    }
    if (types[i] < kTokUndefined || types[i] > kTokByte) {
      return make_error(ErrorCode::Corrupt, "token {} has type {} (valid: 0..6)", i, types[i]);
    }
  }
  const std::pair<const char*, int32_t> ids[] = {{"bos", bos_id}, {"eos", eos_id},
                                                 {"unk", unk_id}, {"pad", pad_id},
                                                 {"sep", sep_id}, {"eot", eot_id},
                                                 {"mask", mask_id}};
  for (const auto& [name, id] : ids) {
    if (id != kNoToken && (id < 0 || size_t(id) >= tokens.size())) {
      return make_error(ErrorCode::Corrupt, "{} token id {} is outside the vocabulary (size {})",
                        name, id, tokens.size());
    }
  }
  if (kind == ModelKind::ByteLevelBpe && merges.empty()) {
    return make_error(ErrorCode::Corrupt, "byte-level BPE vocabulary has no merges")
        .with_hint("a GPT-2 style tokenizer needs its merges (tokenizer.json model.merges or merges.txt)");
  }
  return ok_status();
}

namespace {

struct ByteMaps {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<uint32_t, uint8_t> from_cp;
};

const ByteMaps& byte_maps() {
  static const ByteMaps maps = [] {
    ByteMaps m;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? uint32_t(b) : next++;
      m.to_unicode[size_t(b)] = utf8_encode(cp);
      m.from_cp[cp] = uint8_t(b);
    }
    return m;
  }();
  return maps;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_maps().to_unicode[b]; }

bool unicode_to_bytes(std::string_view token, std::string* out) {
  const auto& m = byte_maps().from_cp;
  size_t pos = 0;
  while (pos < token.size()) {
    const uint32_t cp = utf8_next(token, &pos);
    auto it = m.find(cp);
    if (it == m.end()) return false;
    out->push_back(char(it->second));
  }
  return true;
}

std::string byte_piece(uint8_t b) {
  static const char* hex = "0123456789ABCDEF";
  std::string s = "<0x";
  s += hex[b >> 4];
  s += hex[b & 15];
  s += '>';
  return s;
}

std::optional<uint8_t> parse_byte_piece(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return std::nullopt;
  auto hexval = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hexval(p[3]), lo = hexval(p[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return uint8_t(hi * 16 + lo);
}

std::optional<std::pair<std::string_view, std::string_view>> split_merge(std::string_view m) {
  const size_t pos = m.find(' ', 1);
  if (pos == std::string_view::npos) return std::nullopt;
  return std::make_pair(m.substr(0, pos), m.substr(pos + 1));
}

bool looks_special(std::string_view t) {
  auto starts = [&](std::string_view p) { return t.substr(0, p.size()) == p; };
  auto ends = [&](std::string_view s) {
    return t.size() >= s.size() && t.substr(t.size() - s.size()) == s;
  };
  if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
  if (starts("<|") && ends("|>")) return true;
  if (starts("<\xEF\xBD\x9C") && ends("\xEF\xBD\x9C>")) return true;  // fullwidth bars
  if (starts("<unused") && ends(">")) return true;
  return false;
}

}  // namespace mc::tok
