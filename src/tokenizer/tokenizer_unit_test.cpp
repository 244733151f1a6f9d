// Unit tests: byte maps, merge splitting, loader errors, GGUF KV defaults, HF export round trip,
// and an independent check of SentencePiece encoding against python3-sentencepiece.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "testutil.h"
#include "tokenizer/loaders.h"
#include "tokenizer/parse_memo.h"
#include "tokenizer/test_vocabs.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace mc::tok {
int run_vectors_for_test(const Tokenizer& t, const std::string& name);
namespace {

TEST(TokUnit, ByteToUnicodeMap) {
  EXPECT_EQ(byte_to_unicode(' '), "\xC4\xA0");   // U+0120
  EXPECT_EQ(byte_to_unicode('\n'), "\xC4\x8A");  // U+010A
  EXPECT_EQ(byte_to_unicode('A'), "A");
  EXPECT_EQ(byte_to_unicode(0xAD), "\xC5\x83");  // the 68th remapped byte -> U+0143
  std::string all;
  for (int b = 0; b < 256; ++b) all += byte_to_unicode(uint8_t(b));
  std::string back;
  ASSERT_TRUE(unicode_to_bytes(all, &back));
  ASSERT_EQ(back.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(uint8_t(back[size_t(b)]), b);
  EXPECT_FALSE(unicode_to_bytes("\xE4\xB8\xAD", &back));  // not in the alphabet
}

TEST(TokUnit, MergesAndBytePieces) {
  auto m = split_merge("\xC4\xA0 t");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first, "\xC4\xA0");
  EXPECT_EQ(m->second, "t");
  auto sp = split_merge("  a");  // leading space belongs to the left token
  ASSERT_TRUE(sp);
  EXPECT_EQ(sp->first, " ");
  EXPECT_EQ(sp->second, "a");
  EXPECT_FALSE(split_merge("ab"));
  EXPECT_EQ(byte_piece(0x0A), "<0x0A>");
  EXPECT_EQ(parse_byte_piece("<0xfF>"), std::optional<uint8_t>(0xFF));
  EXPECT_FALSE(parse_byte_piece("<0xG0>"));
  EXPECT_TRUE(looks_special("<|im_end|>"));
  EXPECT_FALSE(looks_special("<s>"));
}

TEST(TokUnit, CategoriesFromIcu) {
  EXPECT_TRUE(cp_flags('a').is(CpFlags::kLetter));
  EXPECT_TRUE(cp_flags(0x4E2D).is(CpFlags::kLetter));     // CJK
  EXPECT_TRUE(cp_flags(0x0663).is(CpFlags::kNumber));     // Arabic-Indic 3
  EXPECT_TRUE(cp_flags(0x0301).is(CpFlags::kMark));
  EXPECT_TRUE(cp_flags(0x3000).is(CpFlags::kWhitespace));
  EXPECT_TRUE(cp_flags(0x0085).is(CpFlags::kWhitespace));
  EXPECT_TRUE(cp_flags(0x1F999).is(CpFlags::kSymbol));    // emoji
  EXPECT_TRUE(cp_flags(0x0378).is(CpFlags::kUndefined));  // unassigned
  EXPECT_EQ(cp_tolower('Q'), uint32_t('q'));
  auto bad = pre_tokenizer_regexes("no-such-pre");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::Unsupported);
}

TEST(TokUnit, PreTokenizerSplits) {
  auto gpt2 = PreTokenizer::create(*pre_tokenizer_regexes("gpt-2"));
  ASSERT_TRUE(gpt2.ok());
  EXPECT_EQ(gpt2->split("Hello world's  3x", false),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " 3", "x"}));
  auto l3 = PreTokenizer::create(*pre_tokenizer_regexes("llama-bpe"));
  ASSERT_TRUE(l3.ok());
  EXPECT_EQ(l3->split("12345 I'LL go\n\n", false),
            (std::vector<std::string>{"123", "45", " I", "'LL", " go", "\n\n"}));
  // std::regex path: starcoder splits every digit first.
  auto sc = PreTokenizer::create(*pre_tokenizer_regexes("starcoder"));
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(sc->split("ab 123", false), (std::vector<std::string>{"ab", " ", "1", "2", "3"}));
}

std::string sp_model_bytes() {
  // Hand-built ModelProto: pieces <unk>(UNKNOWN), a, b, ab; trainer_spec model_type BPE.
  auto piece = [](const std::string& s, int type) {
    std::string m;
    m += char(0x0A);
    m += char(s.size());
    m += s;
    m += char(0x15);
    m += std::string("\0\0\0\0", 4);  // score 0.0
    m += char(0x18);
    m += char(type);
    std::string f;
    f += char(0x0A);
    f += char(m.size());
    return f + m;
  };
  std::string b = piece("<unk>", 2) + piece("a", 1) + piece("b", 1) + piece("ab", 1);
  b += std::string("\x12\x02\x18\x02", 4);  // trainer_spec { model_type: BPE }
  return b;
}

TEST(TokUnit, SentencePieceWireFormat) {
  const std::string b = sp_model_bytes();
  auto v = parse_sentencepiece_model(b, "mem.model");
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->kind, ModelKind::SpmBpe);
  EXPECT_EQ(v->tokens, (std::vector<std::string>{"<unk>", "a", "b", "ab"}));
  EXPECT_EQ(v->types[0], kTokUnknown);
  EXPECT_EQ(v->unk_id, 0);
  EXPECT_EQ(v->bos_id, 1);  // proto defaults (bos 1, eos 2) apply when the ids are in range
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_EQ(v->pad_id, kNoToken);
}

TEST(TokUnit, SentencePieceTruncatedAndCorrupt) {
  const std::string b = sp_model_bytes();
  auto t = parse_sentencepiece_model(b.substr(0, b.size() - 3), "cut.model");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::Truncated);  // cut inside trainer_spec's length varint
  EXPECT_NE(t.error().message.find("varint"), std::string::npos) << t.error().message;
  auto over = parse_sentencepiece_model(b.substr(0, b.size() - 1), "short.model");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::Corrupt);  // length 2 with 1 byte left
  EXPECT_NE(over.error().message.find("exceeds the 1 bytes left"), std::string::npos)
      << over.error().message;
  EXPECT_EQ(t.error().path, "cut.model");
  auto c = parse_sentencepiece_model(std::string("\x0A\xFF\xFF\xFF\xFF\x7F", 6), "big.model");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::Corrupt);
  auto e = parse_sentencepiece_model("", "empty.model");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::Corrupt);  // no pieces
}

TEST(TokUnit, GgufKvDefaultsAndErrors) {
  GgufTokenizerKV kv;
  kv.model = "llama";
  kv.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a"};
  kv.token_types = std::vector<int32_t>{2, 3, 3, 1};
  kv.scores = std::vector<float>{0, 0, 0, -1};
  auto v = vocab_from_gguf_kv(kv);
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_TRUE(v->add_bos);
  EXPECT_TRUE(v->add_space_prefix);
  auto t = Tokenizer::create(*v);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->encode("a", true), (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(t->encode("<s>a", false, true), (std::vector<int32_t>{1, 3}));
  kv.token_types = std::vector<int32_t>{2, 3};
  auto short_types = vocab_from_gguf_kv(kv);
  ASSERT_FALSE(short_types.ok());
  EXPECT_EQ(short_types.error().code, ErrorCode::Mismatch);
  kv.model = "rwkv";
  EXPECT_EQ(vocab_from_gguf_kv(kv).error().code, ErrorCode::Unsupported);
  GgufTokenizerKV g;
  g.model = "gpt2";
  g.tokens = {"a", "b"};
  auto nomerge = vocab_from_gguf_kv(g);
  ASSERT_FALSE(nomerge.ok());
  EXPECT_NE(nomerge.error().message.find("no merges"), std::string::npos);
}

// llama.cpp's load-time token rules, worked by hand: phi-3's "</s>" is stored USER_DEFINED but
// acts as CONTROL, and a model named phi-3 strips white space right of its special tokens.
TEST(TokUnit, LlamaCppTokenRulesForPhi3) {
  const std::string sp = "\xE2\x96\x81";
  GgufTokenizerKV kv;
  kv.model = "llama";
  kv.tokens = {"<unk>", "<s>", "</s>", sp + "a", sp + "b", "<|end|>", "<|user|>"};
  kv.token_types = std::vector<int32_t>{2, 3, 4, 1, 1, 4, 4};
  kv.scores = std::vector<float>{0, 0, 0, -1, -1, 0, 0};
  kv.model_name = "Phi3";
  auto v = vocab_from_gguf_kv(kv);
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->attr_of(2), kAttrControl | kAttrRstrip);  // </s>
  EXPECT_EQ(v->attr_of(5), kAttrControl | kAttrRstrip);  // <|end|>: an end-of-turn text
  EXPECT_EQ(v->attr_of(6), kAttrRstrip);                 // <|user|>
  EXPECT_EQ(v->attr_of(1), 0);                           // <s> keeps no rstrip
  EXPECT_EQ(v->attr_of(0), 0);
  EXPECT_EQ(v->types[2], kTokUserDefined);  // the stored type is kept for writing back
  auto t = Tokenizer::create(*v);
  ASSERT_TRUE(t.ok());
  // "</s>" only with special parsing, and the space after it is swallowed (else "  b" -> unk).
  EXPECT_EQ(t->encode("a</s> b", false, true), (std::vector<int32_t>{3, 2, 4}));
  EXPECT_EQ(t->encode("a<|user|>  b", false, false), (std::vector<int32_t>{3, 6, 4}));
  EXPECT_EQ(t->piece(2, false), "");
  EXPECT_EQ(t->piece(2, true), "</s>");
  EXPECT_EQ(t->piece(6, false), "<|user|>");

  kv.model_name = "tiny-llama";  // no phi-3 rule: the space stays and is encoded
  auto plain = vocab_from_gguf_kv(kv);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->attr_of(2), kAttrControl);
  EXPECT_EQ(plain->attr_of(6), 0);
  auto tp = Tokenizer::create(*plain);
  ASSERT_TRUE(tp.ok());
  EXPECT_EQ(tp->encode("a</s>b", false, true), (std::vector<int32_t>{3, 2, 4}));
  // (the lone U+2581 is not a piece: one unknown per byte, as llama.cpp falls back)
  EXPECT_EQ(tp->encode("a</s> b", false, true), (std::vector<int32_t>{3, 2, 0, 0, 0, 4}));

  // lstrip: the white space left of a match goes with it; HF export keeps both flags.
  Vocab lv = *plain;
  lv.set_attr(6, kAttrLstrip, true);
  auto tl = Tokenizer::create(lv);
  ASSERT_TRUE(tl.ok());
  EXPECT_EQ(tl->encode("a  <|user|>b", false), (std::vector<int32_t>{3, 6, 4}));
  lv.set_attr(5, kAttrRstrip, true);
  auto files = vocab_to_hf(lv);
  ASSERT_TRUE(files.ok()) << files.error().render();
  auto back = parse_tokenizer_json(files->tokenizer_json, "mem");
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->attr_of(6), kAttrLstrip);
  EXPECT_EQ(back->attr_of(5), kAttrRstrip);
  EXPECT_EQ(back->attr_of(2), 0);  // the CONTROL override is llama.cpp's, not HF's
}

// WordPiece as llama.cpp runs it on a GGUF "bert" vocabulary (word starts carry U+2581, no "##"),
// on a vocabulary small enough to work every id out by hand.
TEST(TokUnit, WordPieceHandWorked) {
  const std::string sp = "\xE2\x96\x81";
  GgufTokenizerKV kv;
  kv.model = "bert";
  kv.tokens = {"[PAD]",      "[UNK]",      "[CLS]",   "[SEP]",    sp + "hello", sp + "world",
               sp + "un",    "aff",        "able",    sp + ",",   sp + "!",     sp + "cafe",
               sp + "\xE4\xB8\xAD", sp + "\xE5\x9B\xBD", sp + "x"};
  kv.token_types = std::vector<int32_t>{3, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  kv.unk_id = 1, kv.bos_id = 2, kv.sep_id = 3, kv.pad_id = 0;
  auto v = vocab_from_gguf_kv(kv);
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_TRUE(v->lowercase);
  EXPECT_TRUE(v->strip_accents);  // follows lowercase when the key is absent
  EXPECT_TRUE(v->add_sep);
  auto t = Tokenizer::create(*v);
  ASSERT_TRUE(t.ok()) << t.error().render();
  // Lowercased; "," and "!" split off; "unaffable" = longest prefix "un", then "aff", "able";
  // "café" and "cafe" + U+0301 lose the accent; CJK ideographs are single words; "xyz" has no
  // continuation for "yz" so the whole word is [UNK]; a control character is dropped.
  const std::string text = "Hello, WORLD!\tunaffable caf\xC3\xA9 cafe\xCC\x81 \xE4\xB8\xAD\xE5\x9B\xBD xyz\x07";
  EXPECT_EQ(t->encode(text, true),
            (std::vector<int32_t>{2, 4, 9, 5, 10, 6, 7, 8, 11, 11, 12, 13, 1, 3}));
  EXPECT_EQ(t->encode("x", false), (std::vector<int32_t>{14}));
  EXPECT_EQ(t->decode(std::vector<int32_t>{4, 5}), " hello world");
  EXPECT_EQ(cp_nfd_first(0xE9), uint32_t('e'));
  EXPECT_EQ(cp_nfd_first(0xAC00), 0x1100u);  // Hangul: the first jamo only, as llama.cpp
  EXPECT_EQ(cp_nfd_first('A'), uint32_t('A'));

  kv.lowercase = false;  // case kept, and accents kept too unless asked
  auto cased = vocab_from_gguf_kv(kv);
  ASSERT_TRUE(cased.ok());
  EXPECT_FALSE(cased->strip_accents);
  auto tc = Tokenizer::create(*cased);
  ASSERT_TRUE(tc.ok());
  EXPECT_EQ(tc->encode("Hello hello", false), (std::vector<int32_t>{1, 4}));
}

// GGUF -> HF: a vocabulary written as tokenizer.json and read back encodes the same.
TEST(TokUnit, HfExportRoundTripGpt2) {
  auto dir = test::fixture("tokenizers/gpt2");
  if (!dir) GTEST_SKIP() << "fixture tokenizers/gpt2 absent: test skipped";
  auto v = load_hf_tokenizer_dir(dir->string());
  ASSERT_TRUE(v.ok()) << v.error().render();
  auto files = vocab_to_hf(*v);
  ASSERT_TRUE(files.ok()) << files.error().render();
  auto back = parse_tokenizer_json(files->tokenizer_json, "mem");
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->tokens, v->tokens);
  EXPECT_EQ(back->merges, v->merges);
  EXPECT_EQ(back->types, v->types);
  EXPECT_EQ(back->pre, "gpt-2");
  ASSERT_TRUE(apply_tokenizer_config(*back, files->tokenizer_config_json, "mem").ok());
  EXPECT_EQ(back->eos_id, v->eos_id);
  EXPECT_EQ(back->bos_id, v->bos_id);
}

TEST(TokUnit, HfExportRoundTripLlamaSpm) {
  auto p = test::fixture("tokenizers/llama2-spm/tokenizer.model");
  if (!p || !test::fixture("gguf-vocab/ggml-vocab-llama-spm.gguf.inp")) {
    GTEST_SKIP() << "fixtures llama2-spm / gguf-vocab absent: test skipped";
  }
  auto v = load_sentencepiece_model(p->string());
  ASSERT_TRUE(v.ok());
  auto files = vocab_to_hf(*v);
  ASSERT_TRUE(files.ok()) << files.error().render();
  auto back = parse_tokenizer_json(files->tokenizer_json, "mem");
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->kind, ModelKind::SpmBpe);
  EXPECT_EQ(back->tokens, v->tokens);
  EXPECT_EQ(back->types, v->types);
  ASSERT_TRUE(apply_tokenizer_config(*back, files->tokenizer_config_json, "mem").ok());
  EXPECT_EQ(back->bos_id, 1);
  auto t = Tokenizer::create(std::move(*back));
  ASSERT_TRUE(t.ok());
  // Scores rebuilt from the exported merge order must tokenize exactly like the original.
  EXPECT_EQ(run_vectors_for_test(*t, "llama-spm"), 0);
}

std::vector<std::string> varied_texts(size_t n) {
  const char* parts[] = {"Hello", "world", " ", "  ", "   ", "\t", "\n", "1234567", "3.14",
                         "don't", "I'm", "caf\xC3\xA9", "na\xC3\xAFve", "\xE4\xB8\xAD\xE6\x96\x87",
                         "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", "\xF0\x9F\xA6\x99",
                         "\xF0\x9F\x98\x80\xF0\x9F\x98\x81", "!?", "(x)", "e=mc^2", "__init__",
                         ("\xE2\x82\xAC" "5"), "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D", "ABC", "abc",
                         "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",
                         "\xEA\xB0\x80\xEB\x82\x98", "a\xCC\x81", "0", "---", "http://x.y/z"};
  const size_t np = sizeof(parts) / sizeof(parts[0]);
  std::vector<std::string> out;
  uint32_t s = 12345;
  for (size_t i = 0; i < n; ++i) {
    std::string t;
    const size_t k = 1 + i % 7;
    for (size_t j = 0; j < k; ++j) {
      s = s * 1103515245u + 12345u;
      t += parts[(s >> 16) % np];
      if ((s >> 8) % 3 == 0) t += ' ';
    }
    out.push_back(t);
  }
  return out;
}

// Encodes with python3-sentencepiece (an independent implementation) and compares.
void compare_with_sentencepiece(const std::string& model, const Tokenizer& t,
                                const std::vector<std::string>& texts) {
  test::TempDir tmp;
  const auto jpath = tmp / "texts.json";
  {
    std::ofstream f(jpath, std::ios::binary);
    f << nlohmann::json(texts).dump();
  }
  std::string out;
  const int rc = test::run_python("tok_spm_oracle.py '" + model + "' '" + jpath.string() + "'", &out);
  if (rc != 0 && out.find("No module named") != std::string::npos) {
    GTEST_SKIP() << "python3-sentencepiece not installed: oracle test skipped";
  }
  ASSERT_EQ(rc, 0) << out;
  const auto want = nlohmann::json::parse(out);
  ASSERT_EQ(want.size(), texts.size());
  int bad = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto got = t.encode(texts[i], false);
    const auto exp = want[i].get<std::vector<int32_t>>();
    if (got != exp && ++bad <= 5) ADD_FAILURE() << "text '" << texts[i] << "' differs";
  }
  EXPECT_EQ(bad, 0);
}

TEST(TokOracle, Llama2MatchesSentencePiece) {
  auto p = test::fixture("tokenizers/llama2-spm/tokenizer.model");
  if (!p) GTEST_SKIP() << "fixture llama2-spm absent: test skipped";
  auto v = load_sentencepiece_model(p->string());
  ASSERT_TRUE(v.ok());
  auto t = Tokenizer::create(std::move(*v));
  ASSERT_TRUE(t.ok());
  compare_with_sentencepiece(p->string(), *t, varied_texts(300));
}

TEST(TokOracle, MiniCpm4LoadsAndMatchesSentencePiece) {
  auto dir = test::fixture("models/minicpm4-0.5b-config");
  if (!dir) GTEST_SKIP() << "fixture minicpm4-0.5b-config absent: test skipped";
  auto v = load_hf_tokenizer_dir(dir->string());
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->kind, ModelKind::SpmBpe);
  EXPECT_EQ(v->size(), 73448u);  // 73440 pieces + 8 added tokens
  EXPECT_EQ(v->tokens[73440], "<|im_end|>");
  EXPECT_EQ(v->types[73440], kTokControl);
  EXPECT_EQ(v->eos_id, 73440);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_TRUE(v->add_bos);
  EXPECT_NE(v->chat_template.find("<|im_start|>"), std::string::npos);
  auto t = Tokenizer::create(std::move(*v));
  ASSERT_TRUE(t.ok());
  const int32_t im_start = t->token_to_id("<|im_start|>");
  EXPECT_EQ(t->encode("<|im_start|>user", false, true).front(), im_start);
  std::vector<std::string> texts = {"Hello world", "The quick brown fox jumps over the lazy dog.",
                                    "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C",
                                    "x = 1234 + 5678", "caf\xC3\xA9 \xF0\x9F\xA6\x99"};
  compare_with_sentencepiece((*dir / "tokenizer.model").string(), *t, texts);
}

}  // namespace
}  // namespace mc::tok

namespace mc::tok {
namespace {

// Six SentencePiece tokens: <unk> <s> </s> a b ab (ids 0..5).
GgufTokenizerKV tiny_spm_kv() {
  GgufTokenizerKV kv;
  kv.model = "llama";
  kv.tokens = {"<unk>", "<s>", "</s>", "a", "b", "ab"};
  kv.scores = std::vector<float>{0, 0, 0, -1, -2, -3};
  kv.token_types = std::vector<int32_t>{2, 3, 3, 1, 1, 1};
  kv.unk_id = 0, kv.bos_id = 1, kv.eos_id = 2;
  return kv;
}

// A SentencePiece vocabulary's tokenizer.json adds BOS/EOS the way tokenizers and Transformers.js
// read it, in the post_processor (transformers' LlamaConverter template), as tokenizer_config says.
TEST(TokUnit, SpmExportCarriesTheSpecialTokenTemplate) {
  auto v = vocab_from_gguf_kv(tiny_spm_kv());
  ASSERT_TRUE(v.ok()) << v.error().render();
  auto post = [&](bool bos, bool eos) {
    Vocab c = *v;
    c.add_bos = bos;
    c.add_eos = eos;
    auto f = vocab_to_hf(c);
    EXPECT_TRUE(f.ok());
    return f.ok() ? nlohmann::json::parse(f->tokenizer_json)["post_processor"] : nlohmann::json();
  };
  using nlohmann::json;
  const json bos_a = json::parse(R"([{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}])");
  const json p1 = post(true, false);
  EXPECT_EQ(p1["type"], "TemplateProcessing");
  EXPECT_EQ(p1["single"], bos_a);
  EXPECT_EQ(p1["pair"], json::parse(R"([{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
      {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}])"));
  EXPECT_EQ(p1["special_tokens"], json::parse(R"({"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}})"));
  const json p2 = post(true, true);
  EXPECT_EQ(p2["single"], json::parse(R"([{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
      {"SpecialToken": {"id": "</s>", "type_id": 0}}])"));
  EXPECT_EQ(p2["special_tokens"]["</s>"]["ids"], json::array({2}));
  EXPECT_TRUE(post(false, false).is_null());
}

using test_vocabs::tiny_llama3_kv;

// GGUF -> HF of a byte-level vocabulary that adds BOS: the post_processor is transformers'
// Sequence of ByteLevel and the BOS template, so tokenizers and Transformers.js add it; without
// BOS it stays ByteLevel alone.
TEST(TokUnit, ByteLevelExportCarriesTheBosTemplateAfterByteLevel) {
  auto v = vocab_from_gguf_kv(tiny_llama3_kv());
  ASSERT_TRUE(v.ok()) << v.error().render();
  using nlohmann::json;
  auto files = vocab_to_hf(*v);
  ASSERT_TRUE(files.ok()) << files.error().render();
  const json pp = json::parse(files->tokenizer_json)["post_processor"];
  EXPECT_EQ(pp["type"], "Sequence");
  ASSERT_EQ(pp["processors"].size(), 2u);
  EXPECT_EQ(pp["processors"][0], json::parse(R"({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})"));
  EXPECT_EQ(pp["processors"][1]["type"], "TemplateProcessing");
  EXPECT_EQ(pp["processors"][1]["single"],
            json::parse(R"([{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}])"));
  EXPECT_EQ(pp["processors"][1]["special_tokens"]["<|begin_of_text|>"]["ids"], json::array({3}));
  Vocab none = *v;
  none.add_bos = false;
  auto plain = vocab_to_hf(none);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(json::parse(plain->tokenizer_json)["post_processor"]["type"], "ByteLevel");
}

// HF -> GGUF: add_bos / add_eos come from the post_processor's template as convert_hf_to_gguf.py
// reads it (Llama 3's tokenizer_config.json has no add_bos_token), and the config's keys win.
TEST(TokUnit, HfLoadReadsBosAndEosFromThePostProcessor) {
  auto v = vocab_from_gguf_kv(tiny_llama3_kv());
  ASSERT_TRUE(v.ok()) << v.error().render();
  auto files = vocab_to_hf(*v);
  ASSERT_TRUE(files.ok()) << files.error().render();
  namespace fs = std::filesystem;
  using nlohmann::json;
  test::TempDir dir;
  auto load = [&](const std::string& tokenizer_json, const std::optional<std::string>& config) {
    fs::remove(dir.path() / "tokenizer_config.json");
    std::ofstream(dir.path() / "tokenizer.json") << tokenizer_json;
    if (config) std::ofstream(dir.path() / "tokenizer_config.json") << *config;
    return load_hf_tokenizer_dir(dir.path().string());
  };
  // No tokenizer_config.json: the template alone names and adds the BOS.
  auto a = load(files->tokenizer_json, std::nullopt);
  ASSERT_TRUE(a.ok()) << a.error().render();
  EXPECT_EQ(a->bos_id, 3);
  EXPECT_TRUE(a->add_bos);
  EXPECT_FALSE(a->add_eos);
  EXPECT_EQ(a->post_first, "<|begin_of_text|>");
  EXPECT_EQ(a->post_last, "");
  // Llama 3's config: names the BOS, no add_bos_token.
  auto b = load(files->tokenizer_json, R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})");
  ASSERT_TRUE(b.ok()) << b.error().render();
  EXPECT_TRUE(b->add_bos);
  EXPECT_EQ(b->eos_id, 5);
  auto t = Tokenizer::create(*b);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->encode("ab", true), (std::vector<int32_t>{3, 2}));
  // The config's key decides.
  auto c = load(files->tokenizer_json, R"({"bos_token": "<|begin_of_text|>", "add_bos_token": false})");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->add_bos);
  // A config naming another BOS and a cls_token that the leading token is neither: not added.
  auto d = load(files->tokenizer_json, R"({"bos_token": "<|end_of_text|>", "cls_token": "<|eot_id|>"})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->bos_id, 4);
  EXPECT_FALSE(d->add_bos);
  // A trailing token in the template: it is the EOS and is added; the config's EOS becomes the
  // end of turn.
  json j = json::parse(files->tokenizer_json);
  json& tpl = j["post_processor"]["processors"][1];
  tpl["single"].push_back(json::parse(R"({"SpecialToken": {"id": "<|end_of_text|>", "type_id": 0}})"));
  auto e = load(j.dump(), R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})");
  ASSERT_TRUE(e.ok()) << e.error().render();
  EXPECT_TRUE(e->add_eos);
  EXPECT_EQ(e->eos_id, 4);
  EXPECT_EQ(e->eot_id, 5);
  // A plain ByteLevel post_processor (Qwen2, GPT-2) adds nothing.
  j["post_processor"] = j["post_processor"]["processors"][0];
  auto f = load(j.dump(), R"({"bos_token": "<|begin_of_text|>"})");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->add_bos);
  EXPECT_FALSE(f->add_eos);
}

// The memo hands a kept vocabulary to the next parse of exactly the same bytes, once: bytes that
// differ in one token give that token, not the kept one; a failure keeps nothing.
TEST(TokUnit, ParseMemoAnswersOnlyForTheSameBytes) {
  auto v = vocab_from_gguf_kv(tiny_spm_kv());
  ASSERT_TRUE(v.ok()) << v.error().render();
  auto files = vocab_to_hf(*v);
  ASSERT_TRUE(files.ok()) << files.error().render();
  const std::string text = files->tokenizer_json;
  auto parsed = parse_tokenizer_json(text, "mem");
  ASSERT_TRUE(parsed.ok()) << parsed.error().render();
  EXPECT_EQ(parsed->tokens[5], "ab");

  // What is kept is what the next parse of the same bytes returns, whatever it holds: a marked
  // vocabulary shows that the parse took it instead of parsing.
  Vocab marked = *parsed;
  marked.tokens[5] = "kept";
  auto owner = std::make_shared<const std::string>(text);
  memo_keep(ParserKind::TokenizerJson, owner, *owner, marked);
  std::string other = text;
  const auto at = other.find("\"ab\"");
  ASSERT_NE(at, std::string::npos);
  other.replace(at, 4, "\"ba\"");
  auto changed = parse_tokenizer_json(other, "mem");  // other bytes: parsed, the memo untouched
  ASSERT_TRUE(changed.ok()) << changed.error().render();
  EXPECT_EQ(changed->tokens[5], "ba");
  auto taken = parse_tokenizer_json(text, "mem");
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(taken->tokens[5], "kept");
  EXPECT_EQ(taken->tokens.size(), parsed->tokens.size());
  auto again = parse_tokenizer_json(text, "mem");  // handed over once: parsed again
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tokens, parsed->tokens);

  // The input check keeps its parse of a file for the writer; a broken file keeps nothing.
  const auto dir = std::filesystem::temp_directory_path() / ("mc_memo_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "tokenizer.json").string(), bad = (dir / "broken.json").string();
  { std::ofstream(good, std::ios::binary) << other; }
  { std::ofstream(bad, std::ios::binary) << "{"; }
  ASSERT_TRUE(check_tokenizer_json(good).ok());
  EXPECT_FALSE(check_tokenizer_json(bad).ok());
  EXPECT_FALSE(memo_take(ParserKind::TokenizerJson, "{").has_value());
  auto kept = memo_take(ParserKind::TokenizerJson, other);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->tokens, changed->tokens);
  EXPECT_FALSE(memo_take(ParserKind::TokenizerJson, other).has_value());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mc::tok
