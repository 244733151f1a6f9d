// The true vocabulary size of a padded Megatron checkpoint taken from a tokenizer (formats.md §9.5):
// tokenizer.json (model.vocab + added_tokens: highest id + 1), a SentencePiece tokenizer.model
// (number of `pieces`, protobuf field 1 of ModelProto) or a GPT-2 vocab.json.
#include "formats/megatron/vocab.h"

#include <span>

#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "io/probe.h"

namespace mc::megatron {

namespace {

constexpr uint64_t kMaxTokenizerBytes = uint64_t(512) << 20;

std::optional<int64_t> from_tokenizer_json(const fs::path& p) {
  auto text = io::read_text_file(p.string(), kMaxTokenizerBytes);
  if (!text) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  int64_t n = -1;
  if (auto m = j.find("model"); m != j.end() && m->is_object())
    if (auto v = m->find("vocab"); v != m->end()) {
      if (v->is_array()) n = int64_t(v->size());  // Unigram: [[piece, score], ...]
      if (v->is_object())
        for (const auto& [k, id] : v->items())
          if (id.is_number_integer()) n = std::max(n, id.get<int64_t>() + 1);
    }
  if (auto a = j.find("added_tokens"); a != j.end() && a->is_array())
    for (const auto& t : *a)
      if (t.is_object())
        if (auto id = t.find("id"); id != t.end() && id->is_number_integer()) n = std::max(n, id->get<int64_t>() + 1);
  if (n <= 0) return std::nullopt;
  return n;
}

std::optional<int64_t> from_vocab_json(const fs::path& p) {
  auto text = io::read_text_file(p.string(), kMaxTokenizerBytes);
  if (!text) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.empty()) return std::nullopt;
  int64_t n = 0;
  for (const auto& [k, id] : j.items())
    if (id.is_number_integer()) n = std::max(n, id.get<int64_t>() + 1);
  return n > 0 ? std::optional<int64_t>(n) : std::nullopt;
}

bool read_varint(std::span<const std::byte> b, size_t& at, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (at >= b.size()) return false;
    const auto c = static_cast<uint8_t>(b[at++]);
    v |= uint64_t(c & 0x7f) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}

// Counts the top-level field-1 (repeated SentencePiece) records; every length is checked against
// the bytes left.
std::optional<int64_t> from_sentencepiece(const fs::path& p) {
  auto f = io::MappedFile::open(p.string());
  if (!f) return std::nullopt;
  const auto b = (*f)->bytes();
  size_t at = 0;
  int64_t pieces = 0;
  while (at < b.size()) {
    uint64_t key = 0, v = 0;
    if (!read_varint(b, at, key)) return std::nullopt;
    switch (key & 7) {
      case 0:
        if (!read_varint(b, at, v)) return std::nullopt;
        break;
      case 1:
        if (b.size() - at < 8) return std::nullopt;
        at += 8;
        break;
      case 5:
        if (b.size() - at < 4) return std::nullopt;
        at += 4;
        break;
      case 2:
        if (!read_varint(b, at, v) || v > b.size() - at) return std::nullopt;
        at += size_t(v);
        if ((key >> 3) == 1) ++pieces;
        break;
      default:
        return std::nullopt;
    }
  }
  return pieces > 0 ? std::optional<int64_t>(pieces) : std::nullopt;
}

}  // namespace

std::optional<TokenizerVocab> tokenizer_vocab_size(const fs::path& path) {
  std::error_code ec;
  auto try_file = [&](const fs::path& f) -> std::optional<TokenizerVocab> {
    if (!fs::is_regular_file(f, ec)) return std::nullopt;
    const auto name = f.filename().string();
    std::optional<int64_t> n;
    if (name.ends_with(".json") && name != "vocab.json") n = from_tokenizer_json(f);
    else if (name == "vocab.json") n = from_vocab_json(f);
    else if (name.ends_with(".model")) n = from_sentencepiece(f);
    if (!n) return std::nullopt;
    return TokenizerVocab{*n, f};
  };
  if (!io::is_dir(path)) return try_file(path);
  for (const char* n : {"tokenizer.json", "tokenizer.model", "vocab.json"})
    if (auto r = try_file(path / n)) return r;
  return std::nullopt;
}

}  // namespace mc::megatron
