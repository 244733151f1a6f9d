// The embedded tokenizer: HF tokenizer files -> tokenizer.ggml.* keys (padded to the embedding),
// kept key for key through GGUF -> GGUF, and rebuilt as tokenizer.json for GGUF -> HF.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "formats/gguf/file.h"
#include "formats/gguf/gguf.h"
#include "formats/gguf/test_models.h"
#include "formats/gguf/tokenizer_kv.h"
#include "testutil.h"

namespace mc::gguf {
namespace {

TEST(GgufTokenizer, SentencePieceEmbeddedPaddedAndCarried) {
  auto spm = test::fixture("tokenizers/llama2-spm/tokenizer.model");
  if (!spm) GTEST_SKIP() << "fixture tokenizers/llama2-spm/tokenizer.model not available";
  test::TempDir dir;
  Model m = testing::tiny_model({.vocab = 32003, .hidden = 32, .inter = 64, .layers = 1, .heads = 2, .kv_heads = 1});
  m.extra_files.push_back({"tokenizer.model", *spm, std::nullopt});
  m.extra_files.push_back({"tokenizer_config.json", {}, std::string(R"({"add_bos_token": true,
      "add_eos_token": false, "chat_template": "{{ messages }}"})")});
  ThreadPool pool(2);
  formats::WriteOptions wo;
  wo.pool = &pool;
  const auto p = dir / "t.gguf";
  auto w = engine().write(m, p, wo);
  ASSERT_TRUE(w.ok()) << w.error().render();
  auto rep = validate_file(p);
  for (const auto& e : rep.errors) ADD_FAILURE() << e.render();
  auto f = open(p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kv.get_string("tokenizer.ggml.model"), "llama");
  const Value* toks = f->kv.get_array("tokenizer.ggml.tokens", ValueType::String);
  ASSERT_NE(toks, nullptr);
  ASSERT_EQ(toks->size(), 32003u);  // padded to the embedding rows, as convert_hf_to_gguf does
  EXPECT_EQ(toks->string_items()[1], "<s>");
  EXPECT_EQ(toks->string_items()[32002], "[PAD32002]");
  EXPECT_EQ(f->kv.get_array("tokenizer.ggml.token_type", ValueType::I32)->int_at(32002), 5);  // UNUSED
  EXPECT_EQ(f->kv.get_array("tokenizer.ggml.scores", ValueType::F32)->size(), 32003u);
  EXPECT_EQ(f->kv.find("tokenizer.ggml.bos_token_id")->type(), ValueType::U32);
  EXPECT_EQ(f->kv.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f->kv.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(f->kv.get_bool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(f->kv.get_bool("tokenizer.ggml.add_eos_token"), false);
  EXPECT_EQ(f->kv.get_string("tokenizer.chat_template"), "{{ messages }}");

  // GGUF -> HF: tokenizer files rebuilt.
  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  const ExtraFile* tj = back->find_extra("tokenizer.json");
  ASSERT_NE(tj, nullptr);
  ASSERT_TRUE(tj->content.has_value());
  auto j = nlohmann::json::parse(*tj->content, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_TRUE(j.contains("model"));
  EXPECT_NE(back->find_extra("tokenizer_config.json"), nullptr);

  // GGUF -> GGUF: the vocabulary keys are copied unchanged.
  const auto q = dir / "q.gguf";
  wo.quant = "q8_0";
  ASSERT_TRUE(engine().write(*back, q, wo).ok());
  auto g = open(q);
  ASSERT_TRUE(g.ok());
  for (const auto& [k, v] : f->kv)
    if (k.starts_with("tokenizer.")) {
      EXPECT_TRUE(g->kv.find(k) && *g->kv.find(k) == v) << k;
    }
}

TEST(GgufTokenizer, MoreTokensThanEmbeddingRowsIsAnError) {
  tok::Vocab v;
  v.tokens = {"a", "b", "c"};
  v.types = {1, 1, 1};
  auto st = pad_vocab(v, 2);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Mismatch);
  EXPECT_NE(st.error().message.find("3 tokens but the embedding only 2 rows"), std::string::npos);
}

}  // namespace
}  // namespace mc::gguf
