// Real files written by llama.cpp (vocabulary-only GGUFs from its models/ folder): every one
// parses, and selected values match what llama.cpp's converter wrote.
#include <gtest/gtest.h>

#include "formats/gguf/file.h"
#include "formats/gguf/gguf.h"
#include "formats/gguf/tokenizer_kv.h"
#include "testutil.h"

namespace mc::gguf {
namespace {

std::optional<File> open_fixture(const std::string& name) {
  auto p = test::fixture("gguf-vocab/" + name);
  if (!p) return std::nullopt;
  auto f = open(*p);
  EXPECT_TRUE(f.ok()) << f.error().render();
  if (!f.ok()) return std::nullopt;
  return std::move(*f);
}

#define OPEN_OR_SKIP(var, name)                                                   \
  auto var##_opt = open_fixture(name);                                            \
  if (!var##_opt) GTEST_SKIP() << "fixture gguf-vocab/" name " not available";    \
  const File& var = *var##_opt

TEST(GgufFixtures, LlamaSpmVocab) {
  OPEN_OR_SKIP(f, "ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(f.version, 3u);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_EQ(f.kv.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.kv.get_string("tokenizer.ggml.model"), "llama");
  const Value* toks = f.kv.get_array("tokenizer.ggml.tokens", ValueType::String);
  ASSERT_NE(toks, nullptr);
  ASSERT_EQ(toks->size(), 32000u);
  EXPECT_EQ(toks->string_items()[0], "<unk>");
  EXPECT_EQ(toks->string_items()[1], "<s>");
  EXPECT_EQ(toks->string_items()[3], "<0x00>");
  EXPECT_EQ(toks->string_items()[29871], "\xe2\x96\x81");  // "▁"
  const Value* scores = f.kv.get_array("tokenizer.ggml.scores", ValueType::F32);
  ASSERT_NE(scores, nullptr);
  EXPECT_EQ(scores->size(), 32000u);
  const Value* types = f.kv.get_array("tokenizer.ggml.token_type", ValueType::I32);
  ASSERT_NE(types, nullptr);
  EXPECT_EQ(types->int_at(0), 2);  // UNKNOWN
  EXPECT_EQ(types->int_at(1), 3);  // CONTROL
  EXPECT_EQ(types->int_at(3), 6);  // BYTE
  EXPECT_EQ(types->int_at(500), 1);
  EXPECT_EQ(f.kv.find("tokenizer.ggml.bos_token_id")->type(), ValueType::U32);
  EXPECT_EQ(f.kv.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f.kv.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f.kv.get_int("tokenizer.ggml.unknown_token_id"), 0);

  auto v = vocab_from_kv(f.kv);
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ(v->kind, tok::ModelKind::SpmBpe);
  EXPECT_EQ(v->size(), 32000u);
  EXPECT_EQ(v->bos_id, 1);
}

TEST(GgufFixtures, Gpt2Vocab) {
  OPEN_OR_SKIP(f, "ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(f.kv.get_string("general.architecture"), "gpt2");
  EXPECT_EQ(f.kv.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.kv.get_string("tokenizer.ggml.pre"), "gpt-2");
  const Value* toks = f.kv.get_array("tokenizer.ggml.tokens", ValueType::String);
  ASSERT_NE(toks, nullptr);
  ASSERT_EQ(toks->size(), 50257u);
  EXPECT_EQ(toks->string_items()[50256], "<|endoftext|>");
  EXPECT_EQ(toks->string_items()[220], "\xc4\xa0");  // "Ġ": the space byte
  const Value* merges = f.kv.get_array("tokenizer.ggml.merges", ValueType::String);
  ASSERT_NE(merges, nullptr);
  EXPECT_EQ(merges->size(), 50000u);
  EXPECT_EQ(merges->string_items()[0], "\xc4\xa0 t");  // "Ġ t", GPT-2's first merge
}

TEST(GgufFixtures, EveryVocabFileParsesAndValidatesStructurally) {
  auto dir = test::fixture("gguf-vocab");
  if (!dir) GTEST_SKIP() << "fixture folder gguf-vocab not available";
  int n = 0;
  for (const auto& ent : fs::directory_iterator(*dir)) {
    if (ent.path().extension() != ".gguf") continue;
    ++n;
    auto f = open(ent.path());
    ASSERT_TRUE(f.ok()) << f.error().render();
    EXPECT_TRUE(f->kv.contains("tokenizer.ggml.model")) << ent.path();
    EXPECT_EQ(detect(ent.path()), formats::Confidence::Certain);
    // No weights: the only complaints allowed are the missing tensors/hyper-parameters.
    auto rep = validate_file(ent.path());
    for (const auto& e : rep.errors)
      EXPECT_TRUE(e.code == ErrorCode::NotFound || e.code == ErrorCode::Mismatch) << e.render();
  }
  EXPECT_GE(n, 12);
}

}  // namespace
}  // namespace mc::gguf
