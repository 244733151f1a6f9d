// llama.cpp's tokenizer test vectors (fixtures/gguf-vocab/*.inp/.out: texts separated by
// "\n__ggml_vocab_test__\n", ids produced by HF tokenizers, no BOS) run against our encoder,
// with the vocabulary loaded from HF files and from the GGUF vocab files.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "testutil.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"

namespace mc::tok {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> read_vectors(const std::filesystem::path& inp, const std::filesystem::path& out) {
  const std::string raw = slurp(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(raw.substr(pos));
      break;
    }
    texts.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<Case> cases;
  std::istringstream os(slurp(out));
  std::string line;
  size_t i = 0;
  while (std::getline(os, line) && i < texts.size()) {
    Case c{texts[i++], {}};
    std::istringstream ls(line);
    int32_t id;
    while (ls >> id) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << inp;
  return cases;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += std::to_string(x) + " ";
  return s;
}

// Runs every vector; returns the number of mismatches (each one reported).
int run_vectors(const Tokenizer& t, const std::string& name, bool check_roundtrip = true) {
  auto inp = test::fixture("gguf-vocab/ggml-vocab-" + name + ".gguf.inp");
  auto out = test::fixture("gguf-vocab/ggml-vocab-" + name + ".gguf.out");
  if (!inp || !out) return -1;
  const auto cases = read_vectors(*inp, *out);
  EXPECT_GE(cases.size(), 40u);
  int bad = 0;
  for (const auto& c : cases) {
    const auto got = t.encode(c.text, false);
    if (got != c.ids) {
      ++bad;
      ADD_FAILURE() << name << ": text '" << c.text << "'\n want " << show(c.ids) << "\n got  "
                    << show(got);
    }
    if (check_roundtrip && t.vocab().kind != ModelKind::WordPiece) {  // WordPiece normalises
      EXPECT_EQ(t.decode(got), c.text) << name << ": round trip of '" << c.text << "'";
    }
  }
  return bad;
}

}  // namespace

int run_vectors_for_test(const Tokenizer& t, const std::string& name) {
  return run_vectors(t, name);
}

namespace {

#define SKIP_UNLESS(opt, what) \
  if (!(opt)) GTEST_SKIP() << "fixture " << what << " absent: test skipped"

TEST(TokVectors, Gpt2TokenizerJson) {
  auto dir = test::fixture("tokenizers/gpt2");
  SKIP_UNLESS(dir, "tokenizers/gpt2");
  auto v = load_tokenizer_json((*dir / "tokenizer.json").string());
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->kind, ModelKind::ByteLevelBpe);
  EXPECT_EQ(v->pre, "gpt-2");
  EXPECT_EQ(v->size(), 50257u);
  EXPECT_EQ(v->merges.size(), 50000u);
  EXPECT_EQ(v->types[50256], kTokControl);
  auto t = Tokenizer::create(std::move(*v));
  ASSERT_TRUE(t.ok()) << t.error().render();
  SKIP_UNLESS(test::fixture("gguf-vocab/ggml-vocab-gpt-2.gguf.inp"), "gguf-vocab");
  EXPECT_EQ(run_vectors(*t, "gpt-2"), 0);
}

TEST(TokVectors, Gpt2VocabMerges) {
  auto dir = test::fixture("tokenizers/gpt2");
  SKIP_UNLESS(dir, "tokenizers/gpt2");
  auto v = load_vocab_merges((*dir / "vocab.json").string(), (*dir / "merges.txt").string());
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->merges.size(), 50000u);
  EXPECT_EQ(v->eos_id, 50256);
  auto t = Tokenizer::create(std::move(*v));
  ASSERT_TRUE(t.ok()) << t.error().render();
  // Known ids from GPT-2: "Hello world" -> 15496 995, " Hello" -> 18435.
  EXPECT_EQ(t->encode("Hello world", false), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(t->encode(" Hello", false), (std::vector<int32_t>{18435}));
  EXPECT_EQ(t->encode("<|endoftext|>", false, true), (std::vector<int32_t>{50256}));
  SKIP_UNLESS(test::fixture("gguf-vocab/ggml-vocab-gpt-2.gguf.inp"), "gguf-vocab");
  EXPECT_EQ(run_vectors(*t, "gpt-2"), 0);
}

TEST(TokVectors, LlamaSpmTokenizerModel) {
  auto p = test::fixture("tokenizers/llama2-spm/tokenizer.model");
  SKIP_UNLESS(p, "tokenizers/llama2-spm/tokenizer.model");
  auto v = load_sentencepiece_model(p->string());
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->kind, ModelKind::SpmBpe);
  EXPECT_EQ(v->size(), 32000u);
  EXPECT_EQ(v->tokens[3], "<0x00>");
  EXPECT_EQ(v->types[3], kTokByte);
  EXPECT_EQ(v->types[0], kTokUnknown);
  EXPECT_EQ(v->types[1], kTokControl);
  EXPECT_EQ(v->bos_id, 1);
  EXPECT_EQ(v->eos_id, 2);
  EXPECT_TRUE(v->add_space_prefix);
  auto t = Tokenizer::create(std::move(*v));
  ASSERT_TRUE(t.ok()) << t.error().render();
  EXPECT_EQ(t->encode("Hello world", true), (std::vector<int32_t>{1, 15043, 3186}));
  SKIP_UNLESS(test::fixture("gguf-vocab/ggml-vocab-llama-spm.gguf.inp"), "gguf-vocab");
  EXPECT_EQ(run_vectors(*t, "llama-spm"), 0);
}

}  // namespace
}  // namespace mc::tok
