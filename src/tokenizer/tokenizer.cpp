// Tokenization algorithms, following llama.cpp's llama-vocab.cpp behaviour (our own code):
//  - special/user-defined tokens are cut out of the raw text first, longest token first;
//  - SentencePiece BPE: whitespace -> U+2581, optional dummy-prefix space, bigram merges by
//    highest piece score (ties: leftmost), pieces that are not tokens fall back to <0xXX>;
//  - byte-level BPE: regex pre-tokenizer, GPT-2 byte alphabet, merges by lowest rank (ties:
//    leftmost), Llama-3 style ignore_merges lets whole words that are tokens through;
//  - SentencePiece unigram: Viterbi over the pieces, user-defined pieces scored 0, unknown code
//    points scored (min score - 10) and runs of unknowns folded into one <unk>;
//  - WordPiece: BERT normalisation (lowercase, NFD with marks dropped), words split at white
//    space and around punctuation, ASCII symbols and CJK ideographs, then greedy longest match
//    from the left over "\u2581word"; a word with a gap becomes one [UNK].
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cfloat>
#include <map>
#include <queue>
#include <unordered_map>

#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace mc::tok {

namespace {
const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581

std::string escape_whitespace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == ' ') out += kSpaceMark;
    else out += c;
  }
  return out;
}

std::string unescape_whitespace(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s.substr(i, 3) == kSpaceMark) {
      out += ' ';
      i += 3;
    } else {
      out += s[i++];
    }
  }
  return out;
}

std::string rank_key(std::string_view a, std::string_view b) {
  std::string k = std::to_string(a.size());
  k += ':';
  k += a;
  k += b;
  return k;
}

struct Symbol {
  int prev, next;
  size_t off, n;  // into the word being merged
};
}  // namespace

struct Tokenizer::Impl {
  Vocab v;
  std::unordered_map<std::string, int32_t> ids;
  std::unordered_map<std::string, int32_t> ranks;
  std::vector<int32_t> specials;  // longest text first
  PreTokenizer pre;
  float unigram_min = FLT_MAX;
  size_t max_token_len = 0;

  int32_t id_of(std::string_view t) const {
    auto it = ids.find(std::string(t));
    return it == ids.end() ? kNoToken : it->second;
  }

  struct Fragment {
    int32_t token;  // kNoToken for raw text
    size_t off, len;
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void spm(std::string_view text, std::vector<int32_t>* out) const;
  void bpe(std::string_view text, std::vector<int32_t>* out) const;
  void ugm(std::string_view text, std::vector<int32_t>* out) const;
  void wpm(std::string_view text, std::vector<int32_t>* out) const;
  int32_t byte_token(uint8_t b) const;
};

Result<Tokenizer> Tokenizer::create(Vocab vocab) {
  MC_CHECK(vocab.validate());
  MC_CHECK(unicode_load());
  auto impl = std::make_shared<Impl>();
  impl->v = std::move(vocab);
  const Vocab& v = impl->v;
  impl->ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) impl->ids[v.tokens[i]] = int32_t(i);  // last one wins
  for (size_t i = 0; i < v.merges.size(); ++i) {
    auto parts = split_merge(v.merges[i]);
    if (!parts) continue;  // llama.cpp keeps such a merge under an empty pair: never matches
    impl->ranks.emplace(rank_key(parts->first, parts->second), int32_t(i));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.is_special(int32_t(i))) impl->specials.push_back(int32_t(i));
    impl->max_token_len = std::max(impl->max_token_len, v.tokens[i].size());
  }
  std::stable_sort(impl->specials.begin(), impl->specials.end(), [&](int32_t a, int32_t b) {
    return v.tokens[size_t(a)].size() > v.tokens[size_t(b)].size();
  });
  if (v.kind == ModelKind::ByteLevelBpe) {
    auto regexes = MC_TRY(pre_tokenizer_regexes(v.pre));
    impl->pre = MC_TRY(PreTokenizer::create(regexes));
  }
  if (v.kind == ModelKind::SpmUnigram) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (v.types[i] == kTokNormal) impl->unigram_min = std::min(impl->unigram_min, v.score_of(int32_t(i)));
    }
  }
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

const Vocab& Tokenizer::vocab() const { return impl_->v; }
int32_t Tokenizer::token_to_id(std::string_view token) const { return impl_->id_of(token); }

std::vector<Tokenizer::Impl::Fragment> Tokenizer::Impl::partition(std::string_view text,
                                                                  bool parse_special) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({kNoToken, 0, text.size()});
  auto is_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };  // C isspace
  for (int32_t sid : specials) {
    if (!parse_special && v.is_control_like(sid)) continue;
    const uint8_t attr = v.attr_of(sid);
    const std::string& st = v.tokens[size_t(sid)];
    std::vector<Fragment> next;
    next.reserve(frags.size());
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.off;
      const size_t end = f.off + f.len;
      while (pos < end) {
        const size_t m = text.substr(0, end).find(st, pos);
        if (m == std::string_view::npos) break;
        size_t left_end = m;
        if (attr & kAttrLstrip) {
          while (left_end > pos && is_space(text[left_end - 1])) --left_end;
        }
        if (left_end > pos) next.push_back({kNoToken, pos, left_end - pos});
        next.push_back({sid, m, st.size()});
        pos = m + st.size();
        if (attr & kAttrRstrip) {
          while (pos < end && is_space(text[pos])) ++pos;
        }
      }
      if (pos < end) next.push_back({kNoToken, pos, end - pos});
    }
    frags = std::move(next);
  }
  return frags;
}

int32_t Tokenizer::Impl::byte_token(uint8_t b) const {
  int32_t id = id_of(byte_piece(b));
  if (id == kNoToken) id = id_of(std::string(1, char(b)));
  return id;
}

void Tokenizer::Impl::spm(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<Symbol> sym;
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(utf8_len(text[off]), text.size() - off);
    sym.push_back({int(sym.size()) - 1, -1, off, n});
    off += n;
    if (off < text.size()) sym.back().next = int(sym.size());
  }
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  auto worse = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> queue(worse);
  std::unordered_map<std::string, std::pair<int, int>> rev_merge;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const std::string_view s = text.substr(sym[size_t(l)].off, sym[size_t(l)].n + sym[size_t(r)].n);
    const int32_t id = id_of(s);
    if (id == kNoToken) return;
    queue.push({l, r, v.score_of(id), s.size()});
    rev_merge[std::string(s)] = {l, r};
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(int(i) - 1, int(i));
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& L = sym[size_t(b.left)];
    Symbol& R = sym[size_t(b.right)];
    if (L.n == 0 || R.n == 0 || L.n + R.n != b.size) continue;
    L.n += R.n;
    R.n = 0;
    L.next = R.next;
    if (R.next >= 0) sym[size_t(R.next)].prev = b.left;
    try_add(L.prev, b.left);
    try_add(b.left, L.next);
  }
  // Emits a symbol, undoing merges whose result is not a token (recursively), else as bytes.
  auto emit = [&](auto&& self, const Symbol& s) -> void {
    const std::string_view t = text.substr(s.off, s.n);
    const int32_t id = id_of(t);
    if (id != kNoToken) {
      out->push_back(id);
      return;
    }
    auto it = rev_merge.find(std::string(t));
    if (it == rev_merge.end()) {
      for (char c : t) {
        const int32_t bid = byte_token(uint8_t(c));
        if (bid != kNoToken) out->push_back(bid);
        else if (v.unk_id != kNoToken) out->push_back(v.unk_id);
      }
      return;
    }
    self(self, sym[size_t(it->second.first)]);
    self(self, sym[size_t(it->second.second)]);
  };
  if (sym.empty()) return;
  for (int i = 0; i != -1; i = sym[size_t(i)].next) emit(emit, sym[size_t(i)]);
}

void Tokenizer::Impl::bpe(std::string_view text, std::vector<int32_t>* out) const {
  const std::vector<std::string> words = pre.split(text, true);
  struct Bigram {
    int left, right;
    std::string text;
    int32_t rank;
  };
  auto worse = [](const Bigram& a, const Bigram& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  for (const std::string& w : words) {
    std::vector<Symbol> sym;
    if (v.ignore_merges && id_of(w) != kNoToken) {
      sym.push_back({-1, -1, 0, w.size()});
    } else {
      for (size_t off = 0; off < w.size();) {
        const size_t n = std::min(utf8_len(w[off]), w.size() - off);
        sym.push_back({int(sym.size()) - 1, -1, off, n});
        off += n;
        if (off < w.size()) sym.back().next = int(sym.size());
      }
    }
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> queue(worse);
    auto str = [&](int i) { return std::string_view(w).substr(sym[size_t(i)].off, sym[size_t(i)].n); };
    auto try_add = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      auto it = ranks.find(rank_key(str(l), str(r)));
      if (it == ranks.end()) return;
      std::string joined(str(l));
      joined += str(r);
      queue.push({l, r, std::move(joined), it->second});
    };
    for (size_t i = 1; i < sym.size(); ++i) try_add(int(i) - 1, int(i));
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& L = sym[size_t(b.left)];
      Symbol& R = sym[size_t(b.right)];
      if (L.n == 0 || R.n == 0) continue;
      if (std::string(str(b.left)) + std::string(str(b.right)) != b.text) continue;
      L.n += R.n;
      R.n = 0;
      L.next = R.next;
      if (R.next >= 0) sym[size_t(R.next)].prev = b.left;
      try_add(L.prev, b.left);
      try_add(b.left, L.next);
    }
    for (size_t i = 0; i < sym.size(); ++i) {
      if (sym[i].n == 0) continue;
      const std::string_view s = str(int(i));
      const int32_t id = id_of(s);
      if (id != kNoToken) {
        out->push_back(id);
        continue;
      }
      // llama.cpp falls back to one-byte tokens of the encoded text; usually none exist.
      for (char c : s) {
        const int32_t bid = id_of(std::string(1, c));
        if (bid != kNoToken) out->push_back(bid);
      }
    }
  }
}

void Tokenizer::Impl::ugm(std::string_view text, std::vector<int32_t>* out) const {
  // Whitespace handling of SentencePiece's normalizer (without the precompiled map).
  std::string norm;
  bool prepended = false, in_word = false;
  for (char c : text) {
    if (c != ' ') {
      if (!in_word) {
        in_word = true;
        if ((v.add_space_prefix && !prepended) || v.remove_extra_whitespaces) {
          norm += kSpaceMark;
          prepended = true;
        }
      }
      norm += c;
    } else {
      in_word = false;
      if (!v.remove_extra_whitespaces) norm += kSpaceMark;
    }
  }
  if (norm.empty()) return;
  struct Best {
    int32_t id;
    size_t from;
    double score;
  };
  const size_t n = norm.size();
  const double unk_score = double(unigram_min) - 10.0;
  std::vector<Best> best(n + 1, {v.unk_id, 0, -DBL_MAX});
  best[0] = {v.unk_id, 0, 0.0};
  for (size_t pos = 0; pos < n;) {
    const size_t cl = std::min(utf8_len(norm[pos]), n - pos);
    bool single = false;
    // Candidate pieces starting here: every prefix that is a (normal/user/unused) token.
    for (size_t end = pos + 1; end <= n && end - pos <= kMaxTokenBytes; ++end) {
      const int32_t id = id_of(std::string_view(norm).substr(pos, end - pos));
      if (id == kNoToken) continue;
      const int32_t t = v.types[size_t(id)];
      if (t != kTokNormal && t != kTokUserDefined && t != kTokUnused) continue;
      if (end - pos == cl) single = true;
      const double s = best[pos].score + (t == kTokUserDefined ? 0.0 : double(v.score_of(id)));
      if (s > best[end].score) best[end] = {id, pos, s};
    }
    if (!single) {
      const double s = best[pos].score + unk_score;
      if (s > best[pos + cl].score) best[pos + cl] = {v.unk_id, pos, s};
    }
    pos += cl;
  }
  std::vector<int32_t> rev;
  bool prev_unk = false;
  for (size_t at = n;;) {
    const Best& b = best[at];
    const bool unk = b.id == v.unk_id;
    if (!(prev_unk && unk)) rev.push_back(b.id);
    if (b.from == 0) break;
    prev_unk = unk;
    at = b.from;
  }
  out->insert(out->end(), rev.rbegin(), rev.rend());
}

void Tokenizer::Impl::wpm(std::string_view text, std::vector<int32_t>* out) const {
  auto is_cjk = [](uint32_t c) {  // the ranges BERT (and llama.cpp) treat as Chinese
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
  };
  std::vector<std::string> words(1);
  for (uint32_t c : utf8_decode_all(text)) {
    if (v.strip_accents) c = cp_nfd_first(c);
    const CpFlags f = cp_flags(c);
    if (f.is(CpFlags::kWhitespace)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (c == 0 || c == kReplacementChar || f.is(CpFlags::kControl)) continue;
    if (v.strip_accents && f.is(CpFlags::kMark)) continue;
    const std::string s = utf8_encode(v.lowercase ? cp_tolower(c) : c);
    if (f.is(CpFlags::kPunctuation) || (c < 0x7F && f.is(CpFlags::kSymbol)) || is_cjk(c)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  for (const std::string& w : words) {
    if (w.empty()) continue;
    const std::string word = kSpaceMark + w;
    const size_t start = out->size();
    for (size_t i = 0; i < word.size();) {
      size_t j = std::min(word.size(), i + max_token_len);
      int32_t id = kNoToken;
      for (; j > i; --j) {
        id = id_of(std::string_view(word).substr(i, j - i));
        if (id != kNoToken) break;
      }
      if (id == kNoToken) {  // a gap: the whole word becomes [UNK]
        out->resize(start);
        break;
      }
      out->push_back(id);
      i = j;
    }
    if (out->size() == start && v.unk_id != kNoToken) out->push_back(v.unk_id);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const Impl& m = *impl_;
  const Vocab& v = m.v;
  std::vector<int32_t> out;
  const auto frags = m.partition(text, parse_special);
  if (add_special && v.add_bos && v.bos_id != kNoToken) out.push_back(v.bos_id);
  bool prev_special = true;  // the SentencePiece dummy prefix goes after specials too
  for (const auto& f : frags) {
    if (f.token != kNoToken) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    const std::string_view raw = text.substr(f.off, f.len);
    switch (v.kind) {
      case ModelKind::SpmBpe: {
        std::string s = (v.add_space_prefix && prev_special) ? " " : "";
        s += raw;
        m.spm(escape_whitespace(s), &out);
        break;
      }
      case ModelKind::ByteLevelBpe: m.bpe(raw, &out); break;
      case ModelKind::SpmUnigram: m.ugm(raw, &out); break;
      case ModelKind::WordPiece: m.wpm(raw, &out); break;
    }
    prev_special = false;
  }
  if (add_special && v.add_eos && v.eos_id != kNoToken) out.push_back(v.eos_id);
  if (add_special && v.add_sep && v.sep_id != kNoToken) out.push_back(v.sep_id);
  return out;
}

std::string Tokenizer::piece(int32_t id, bool special) const {
  const Vocab& v = impl_->v;
  if (id < 0 || size_t(id) >= v.size()) return {};
  const int32_t t = v.types[size_t(id)];
  const std::string& text = v.tokens[size_t(id)];
  if (v.is_control_like(id)) return special ? text : std::string();
  if (t == kTokUserDefined) return text;
  if (t == kTokByte) {
    auto b = parse_byte_piece(text);
    return b ? std::string(1, char(*b)) : std::string();
  }
  if (t != kTokNormal) return {};
  if (v.kind == ModelKind::ByteLevelBpe) {
    std::string raw;
    if (!unicode_to_bytes(text, &raw)) return text;
    return raw;
  }
  return unescape_whitespace(text);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& opt) const {
  const Vocab& v = impl_->v;
  bool strip_space = v.add_space_prefix;
  if (opt.remove_special && v.add_bos && !ids.empty() && ids.front() == v.bos_id) {
    strip_space = false;
    ids = ids.subspan(1);
  }
  if (opt.remove_special && v.add_eos && !ids.empty() && ids.back() == v.eos_id) {
    ids = ids.first(ids.size() - 1);
  }
  std::string out;
  for (int32_t id : ids) {
    std::string p = piece(id, opt.unparse_special);
    if (strip_space && !p.empty() && p[0] == ' ') p.erase(0, 1);
    strip_space = false;
    out += p;
  }
  if (!opt.clean_spaces) return out;
  // HF clean_up_tokenization: drop the space before . , ! ? and before 's 'm 're 've, and
  // the spaces around a lone apostrophe (llama.cpp's three passes).
  std::string a;
  for (size_t i = 0; i < out.size(); ++i) {
    const char x = out[i];
    if (i > 0 && !a.empty() && a.back() == ' ' && out[i - 1] == ' ' &&
        (x == '?' || x == '!' || x == '.' || x == ',')) {
      a.pop_back();
    }
    a += x;
  }
  std::string b;
  for (size_t i = 0; i < a.size(); ++i) {
    if (i > 0 && a[i] == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
      b.pop_back();
      b += '\'';
      ++i;
      continue;
    }
    b += a[i];
  }
  std::string c;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i > 0 && b[i - 1] == ' ' && b[i] == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      const char x2 = i + 2 < b.size() ? b[i + 2] : '\0';
      if (x1 == 's' || x1 == 'm' || (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) {
        c.pop_back();
      }
    }
    c += b[i];
  }
  return c;
}

}  // namespace mc::tok
