// Pre-tokenizer for byte-level BPE (formats.md §11.2 regexes; expression lists per
// tokenizer.ggml.pre value as llama.cpp's llama-vocab.cpp defines them).
//
// Character classes: ICU's general category (Debian libicu), grouped into llama.cpp's flags
// (L*, N*, M*, P*, S*, Z*, C* minus Cn, Cn = undefined) plus the White_Space property. We use ICU
// rather than a table of our own so the data tracks a maintained Unicode database.
//
// Matching: the three expressions llama.cpp scans by hand (GPT-2, Llama-3, Qwen2) are scanned by
// hand here too, alternative by alternative in regex order. Any other expression goes through
// std::regex (ECMAScript) on a collapsed text: code points below 128 stay as they are, other
// white space becomes 0x0B, and every other code point becomes one byte naming its class; in the
// expression, \p{X} becomes that byte plus the ASCII members of the class. Expressions without
// \p{..} run on the code points with std::wregex. Doing it the same way keeps the corner cases
// (e.g. which non-ASCII characters count as \s) identical to llama.cpp.
#include "tokenizer/unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/utf16.h>
#include <unicode/uvernum.h>

#include <map>
#include <regex>
#include <stdexcept>

#include "core/dynamic_library.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace mc::tok {

namespace {
// libicuuc is opened with dlopen when a text is first classified, not linked: linking it cost
// every run ~5-10 ms from a dropped page cache (its data library alone pulled in 8 MB of
// read-ahead at start-up), though only tokenizing text uses it. Its exported names carry the
// version (u_charType_72); the headers rename them, so a name's string is taken after renaming.
#define MC_ICU_NAME_STR(x) #x
#define MC_ICU_NAME(x) MC_ICU_NAME_STR(x)
constexpr const char* kIcuLibrary = "libicuuc.so." U_ICU_VERSION_SHORT;

struct Icu {
  DynamicLibrary lib{kIcuLibrary};
  decltype(&u_charType) char_type = nullptr;
  decltype(&u_hasBinaryProperty) has_binary_property = nullptr;
  decltype(&u_tolower) to_lower = nullptr;
  decltype(&unorm2_getNFDInstance) nfd_instance = nullptr;
  decltype(&unorm2_getDecomposition) decomposition = nullptr;
};

const Icu& icu_loaded() {
  static const Icu icu = [] {
    Icu x;
    x.lib.bind(x.char_type, MC_ICU_NAME(u_charType));
    x.lib.bind(x.has_binary_property, MC_ICU_NAME(u_hasBinaryProperty));
    x.lib.bind(x.to_lower, MC_ICU_NAME(u_tolower));
    x.lib.bind(x.nfd_instance, MC_ICU_NAME(unorm2_getNFDInstance));
    x.lib.bind(x.decomposition, MC_ICU_NAME(unorm2_getDecomposition));
    return x;
  }();
  return icu;
}

// For the classifiers below; entry points check unicode_load() first, so this throws only on a
// caller's bug.
const Icu& icu() {
  const Icu& i = icu_loaded();
  if (!i.lib.ok()) throw std::runtime_error(std::string("cannot load ") + kIcuLibrary + ": " + i.lib.error());
  return i;
}
}  // namespace

Status unicode_load() {
  const Icu& i = icu_loaded();
  if (!i.lib.ok())
    return make_error(ErrorCode::Unsupported, "cannot load {} (Unicode character data): {}", kIcuLibrary,
                      i.lib.error())
        .with_hint("install ICU (Debian: apt-get install libicu" U_ICU_VERSION_SHORT ")");
  return {};
}

CpFlags cp_flags(uint32_t cp) {
  CpFlags f;
  if (cp > 0x10FFFF) {
    f.bits = CpFlags::kUndefined;
    return f;
  }
  const Icu& lib = icu();
  const UChar32 c = UChar32(cp);
  const uint32_t mask = U_MASK(lib.char_type(c));
  if (mask & U_GC_L_MASK) f.bits = CpFlags::kLetter;
  else if (mask & U_GC_N_MASK) f.bits = CpFlags::kNumber;
  else if (mask & U_GC_M_MASK) f.bits = CpFlags::kMark;
  else if (mask & U_GC_P_MASK) f.bits = CpFlags::kPunctuation;
  else if (mask & U_GC_S_MASK) f.bits = CpFlags::kSymbol;
  else if (mask & U_GC_Z_MASK) f.bits = CpFlags::kSeparator;
  else if (mask & U_GC_CN_MASK) f.bits = CpFlags::kUndefined;
  else f.bits = CpFlags::kControl;
  if (lib.has_binary_property(c, UCHAR_WHITE_SPACE)) f.bits |= CpFlags::kWhitespace;
  return f;
}

uint32_t cp_tolower(uint32_t cp) {
  if (cp > 0x10FFFF) return cp;
  return uint32_t(icu().to_lower(UChar32(cp)));
}

uint32_t cp_nfd_first(uint32_t cp) {
  if (cp > 0x10FFFF || cp < 0xC0) return cp;  // nothing below U+00C0 decomposes
  const Icu& lib = icu();
  UErrorCode err = U_ZERO_ERROR;
  static const UNormalizer2* nfd = lib.nfd_instance(&err);
  if (nfd == nullptr) return cp;
  UChar buf[32];
  err = U_ZERO_ERROR;
  const int32_t n = lib.decomposition(nfd, UChar32(cp), buf, 32, &err);
  if (U_FAILURE(err) || n <= 0) return cp;
  UChar32 first = 0;
  int32_t i = 0;
  U16_NEXT(buf, i, n, first);
  return uint32_t(first);
}

Result<std::vector<std::string>> pre_tokenizer_regexes(std::string_view pre) {
  // Shared building blocks.
  const std::string gpt2 =
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
  const std::string llama3 =
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
      "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const std::string qwen2 =
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
      "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  auto is = [&](std::initializer_list<std::string_view> names) {
    for (auto n : names)
      if (pre == n) return true;
    return false;
  };
  using V = std::vector<std::string>;
  if (pre.empty() || pre == "default") {
    return V{"[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2, "\\p{N}+", "[0-9][0-9][0-9]"};
  }
  if (is({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
          "lfm2", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4"})) {
    return V{llama3};
  }
  if (pre == "deepseek-llm") {
    return V{"[\r\n]",
             "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293"
             "\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c"
             "\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5"
             "\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77"
             "\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59"
             "\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc"
             "\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107"
             "\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
             "\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee"
             "\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e"
             "\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f"
             "\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2"
             "\U000118a0-\U000118df\U0001e900-\U0001e943]+",
             "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
             "\\s+$",
             "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
             "\\p{N}+"};
  }
  if (pre == "deepseek-coder") {
    return V{"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
             "\\p{N}"};
  }
  if (pre == "falcon") {
    return V{"[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2, "[0-9][0-9][0-9]"};
  }
  if (is({"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva"})) {
    return V{"\\p{N}", gpt2};
  }
  if (is({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
          "a.x-4.0", "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt",
          "olmo", "jais"})) {
    return V{gpt2};
  }
  if (is({"qwen2", "deepseek-r1-qwen", "kormo", "stablelm2"})) return V{qwen2};
  if (is({"poro-chat", "bloom", "gpt3-finnish"})) {
    return V{" ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"};
  }
  if (pre == "viking") {
    return V{" ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+", "\\p{N}"};
  }
  return make_error(ErrorCode::Unsupported, "unknown pre-tokenizer '{}'", pre)
      .with_hint("tokenizer.ggml.pre must name one of llama.cpp's pre-tokenizers (e.g. gpt-2, "
                 "llama-bpe, qwen2, falcon, starcoder)");
}

namespace {

enum class SplitKind { Gpt2, Llama3, Qwen2, Collapsed, Wide };

struct CompiledExpr {
  SplitKind kind;
  std::regex narrow;
  std::wregex wide;
};

constexpr char kCollapsedOther = char(0xD0);

char collapsed_class_byte(uint16_t category) {
  switch (category) {
    case CpFlags::kNumber: return char(0xD1);
    case CpFlags::kLetter: return char(0xD2);
    case CpFlags::kPunctuation: return char(0xD3);
    case CpFlags::kMark: return char(0xD4);
    case CpFlags::kSymbol: return char(0xD5);
    default: return kCollapsedOther;
  }
}

// \p{..} names llama.cpp understands, with the class they stand for and its ASCII members.
struct UCat {
  const char* name;
  uint16_t flag;
  const char* ascii;
};
const UCat kUCats[] = {
    {"\\p{N}", CpFlags::kNumber, "0-9"},
    {"\\p{L}", CpFlags::kLetter, "A-Za-z"},
    {"\\p{P}", CpFlags::kPunctuation, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", CpFlags::kMark, ""},
    {"\\p{S}", CpFlags::kSymbol, "\\$\\+<->\\^`\\|~"},
    {"\\p{Lu}", CpFlags::kLetter, "A-Za-z"},
    {"\\p{Ll}", CpFlags::kLetter, "A-Za-z"},
    {"\\p{Lt}", CpFlags::kLetter, "A-Za-z"},
    {"\\p{Lm}", CpFlags::kLetter, "A-Za-z"},
    {"\\p{Lo}", CpFlags::kLetter, "A-Za-z"},
};

bool uses_categories(const std::string& re) {
  for (const auto& u : kUCats)
    if (re.find(u.name) != std::string::npos) return true;
  return false;
}

std::string collapse_expression(const std::string& re) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    const bool escaped = i > 0 && re[i - 1] == '\\';
    if (c == '[' && !escaped) {
      in_class = true;
      out += c;
      continue;
    }
    if (c == ']' && in_class && !escaped) {
      in_class = false;
      out += c;
      continue;
    }
    if (c == '\\' && i + 3 < re.size() && re[i + 1] == 'p' && re[i + 2] == '{') {
      const size_t close = re.find('}', i + 3);
      if (close != std::string::npos) {
        const std::string name = re.substr(i, close - i + 1);
        for (const auto& u : kUCats) {
          if (name == u.name) {
            if (!in_class) out += '[';
            out += collapsed_class_byte(u.flag);
            out += u.ascii;
            if (!in_class) out += ']';
            i = close;
            goto next;
          }
        }
      }
    }
    out += c;
  next:;
  }
  return out;
}

}  // namespace

struct PreTokenizer::Impl {
  std::vector<CompiledExpr> exprs;
  bool need_collapse = false;
};

Result<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& regexes) {
  auto impl = std::make_shared<Impl>();
  const auto all = pre_tokenizer_regexes("gpt-2");
  const auto l3 = pre_tokenizer_regexes("llama3");
  const auto q2 = pre_tokenizer_regexes("qwen2");
  for (const auto& re : regexes) {
    CompiledExpr ce{SplitKind::Collapsed, {}, {}};
    if (re == all->front()) {
      ce.kind = SplitKind::Gpt2;
    } else if (re == l3->front() ||
               re == "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+") {
      ce.kind = SplitKind::Llama3;
    } else if (re == q2->front()) {
      ce.kind = SplitKind::Qwen2;
    } else {
      try {
        constexpr auto flags = std::regex_constants::ECMAScript | std::regex_constants::optimize |
                               std::regex_constants::nosubs;
        if (uses_categories(re)) {
          for (unsigned char ch : re) {
            if (ch >= 0x80) {
              return make_error(ErrorCode::Unsupported,
                                "pre-tokenizer expression mixes \\p{{..}} classes with non-ASCII "
                                "characters: {}", re);
            }
          }
          ce.narrow = std::regex(collapse_expression(re), flags);
          impl->need_collapse = true;
        } else {
          ce.kind = SplitKind::Wide;
          const auto cps = utf8_decode_all(re);
          ce.wide = std::wregex(std::wstring(cps.begin(), cps.end()), flags);
        }
      } catch (const std::regex_error& e) {
        return make_error(ErrorCode::Unsupported, "cannot compile pre-tokenizer expression {}: {}",
                          re, e.what());
      }
    }
    impl->exprs.push_back(std::move(ce));
  }
  PreTokenizer p;
  p.impl_ = std::move(impl);
  return p;
}

namespace {

// Hand scanners; they take code point flags and return word lengths within one piece.
struct Scanner {
  const std::vector<uint32_t>& cps;
  const std::vector<CpFlags>& flags;
  size_t begin, end;
  std::vector<size_t>* out;
  size_t prev;

  uint32_t cp(size_t i) const { return (i >= begin && i < end) ? cps[i] : 0xFFFFFFFFu; }
  CpFlags fl(size_t i) const { return (i >= begin && i < end) ? flags[i] : CpFlags{}; }
  void emit(size_t upto) {
    if (upto > prev) out->push_back(upto - prev);
    prev = upto;
  }
  // \s+(?!\S) then \s+ (the latter only exists in some expressions, but a lone white space
  // that nothing else takes ends up as its own word either way).
  bool whitespace_run(size_t* pos, bool newline_rule) {
    size_t n = 0, last_nl = 0;
    while (fl(*pos + n).is(CpFlags::kWhitespace)) {
      const uint32_t c = cp(*pos + n);
      if (newline_rule && (c == '\r' || c == '\n')) last_nl = *pos + n + 1;
      ++n;
    }
    if (last_nl > 0) {  // \s*[\r\n]+
      *pos = last_nl;
      emit(*pos);
      return true;
    }
    if (n > 1 && cp(*pos + n) != 0xFFFFFFFFu) {
      *pos += n - 1;
      emit(*pos);
      return true;
    }
    if (n > 0) {
      *pos += n;
      emit(*pos);
      return true;
    }
    return false;
  }
  bool contraction(size_t* pos, bool fold_case) {
    if (cp(*pos) != '\'' || *pos + 1 >= end) return false;
    auto low = [&](uint32_t c) { return fold_case ? cp_tolower(c) : c; };
    const uint32_t a = low(cp(*pos + 1));
    if (a == 's' || a == 't' || a == 'm' || a == 'd') {
      *pos += 2;
      emit(*pos);
      return true;
    }
    if (*pos + 2 < end) {
      const uint32_t b = low(cp(*pos + 2));
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        *pos += 3;
        emit(*pos);
        return true;
      }
    }
    return false;
  }
  static bool other(CpFlags f) {  // [^\s\p{L}\p{N}] (and inside the text)
    return f.bits != 0 && !f.is(CpFlags::kWhitespace | CpFlags::kLetter | CpFlags::kNumber);
  }

  void gpt2() {
    for (size_t pos = begin; pos < end;) {
      if (contraction(&pos, false)) continue;
      const bool sp = cp(pos) == ' ';
      CpFlags f = sp ? fl(pos + 1) : fl(pos);
      const uint16_t kinds[] = {CpFlags::kLetter, CpFlags::kNumber};
      bool done = false;
      for (uint16_t k : kinds) {
        if (f.is(k)) {  // ' ?\p{L}+' and ' ?\p{N}+'
          pos += sp;
          while (fl(pos).is(k)) ++pos;
          emit(pos);
          done = true;
          break;
        }
      }
      if (done) continue;
      if (other(f)) {  // ' ?[^\s\p{L}\p{N}]+'
        pos += sp;
        while (other(fl(pos))) ++pos;
        emit(pos);
        continue;
      }
      if (whitespace_run(&pos, false)) continue;
      emit(++pos);
    }
  }

  void llama3(size_t max_digits) {
    for (size_t pos = begin; pos < end;) {
      if (contraction(&pos, true)) continue;
      const uint32_t c = cp(pos);
      const CpFlags f = fl(pos);
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (!(c == '\r' || c == '\n' || f.is(CpFlags::kNumber)) &&
          (f.is(CpFlags::kLetter) || fl(pos + 1).is(CpFlags::kLetter))) {
        ++pos;
        while (fl(pos).is(CpFlags::kLetter)) ++pos;
        emit(pos);
        continue;
      }
      if (f.is(CpFlags::kNumber)) {  // \p{N}{1,max}
        size_t run = 0;
        while (fl(pos).is(CpFlags::kNumber)) {
          ++pos;
          if (++run == max_digits) {
            emit(pos);
            run = 0;
          }
        }
        emit(pos);
        continue;
      }
      // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
      const bool sp = c == ' ';
      if (other(sp ? fl(pos + 1) : f) && f.bits != 0) {
        pos += sp;
        while (other(fl(pos))) ++pos;
        while (cp(pos) == '\r' || cp(pos) == '\n') ++pos;
        emit(pos);
        continue;
      }
      if (whitespace_run(&pos, true)) continue;
      emit(++pos);
    }
  }
};

std::vector<size_t> run_std_regex(const auto& text, const auto& re,
                                  const std::vector<size_t>& pieces) {
  using It = typename std::decay_t<decltype(text)>::const_iterator;
  std::vector<size_t> out;
  out.reserve(pieces.size());
  size_t start = 0;
  for (size_t len : pieces) {
    std::regex_iterator<It> it(text.begin() + ptrdiff_t(start),
                               text.begin() + ptrdiff_t(start + len), re);
    size_t done = 0;
    for (; it != std::regex_iterator<It>(); ++it) {
      const size_t p = size_t(it->position()), n = size_t(it->length());
      if (p > done) out.push_back(p - done);
      out.push_back(n);
      done = p + n;
    }
    if (done < len) out.push_back(len - done);
    start += len;
  }
  return out;
}

}  // namespace

std::vector<std::string> PreTokenizer::split(std::string_view text, bool byte_encode) const {
  const std::vector<uint32_t> cps = utf8_decode_all(text);
  std::vector<CpFlags> flags(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) flags[i] = cp_flags(cps[i]);

  std::string collapsed;
  if (impl_->need_collapse) {
    collapsed.resize(cps.size());
    for (size_t i = 0; i < cps.size(); ++i) {
      if (cps[i] < 128) collapsed[i] = char(cps[i]);
      else if (flags[i].is(CpFlags::kWhitespace)) collapsed[i] = char(0x0B);
      else collapsed[i] = collapsed_class_byte(flags[i].category());
    }
  }

  std::vector<size_t> pieces;
  if (!cps.empty()) pieces.push_back(cps.size());
  for (const auto& e : impl_->exprs) {
    std::vector<size_t> next;
    if (e.kind == SplitKind::Collapsed) {
      next = run_std_regex(collapsed, e.narrow, pieces);
    } else if (e.kind == SplitKind::Wide) {
      std::wstring w(cps.size(), L'\0');
      for (size_t i = 0; i < cps.size(); ++i) {
        w[i] = (cps[i] > 0x7F && flags[i].is(CpFlags::kWhitespace)) ? wchar_t(0x0B)
                                                                    : wchar_t(cps[i]);
      }
      next = run_std_regex(w, e.wide, pieces);
    } else {
      size_t start = 0;
      for (size_t len : pieces) {
        Scanner s{cps, flags, start, start + len, &next, start};
        if (e.kind == SplitKind::Gpt2) s.gpt2();
        else s.llama3(e.kind == SplitKind::Llama3 ? 3 : 1);
        start += len;
      }
    }
    pieces = std::move(next);
  }

  std::vector<std::string> words;
  words.reserve(pieces.size());
  size_t start = 0;
  for (size_t len : pieces) {
    std::string w;
    for (size_t i = start; i < start + len; ++i) {
      const std::string u = utf8_encode(cps[i]);
      if (byte_encode) {
        for (unsigned char b : u) w += byte_to_unicode(b);
      } else {
        w += u;
      }
    }
    words.push_back(std::move(w));
    start += len;
  }
  return words;
}

}  // namespace mc::tok
