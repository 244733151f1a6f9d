// Transformers.js (npm @huggingface/transformers, offline) reads the tokenizer.json we write for
// a byte-level vocabulary that adds BOS (the Llama 3 shape) and adds that BOS itself, as its
// AutoTokenizer does for Meta's own file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "testutil.h"
#include "tokenizer/loaders.h"
#include "tokenizer/test_vocabs.h"

namespace mc::tok {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

TEST(TokenizerInterop, TransformersJsAddsTheBosOfAByteLevelExport) {
  const auto root = test::repo_root();
  if (!fs::exists(root / "node_modules" / "@huggingface" / "transformers" / "package.json"))
    GTEST_SKIP() << "node_modules missing (run `npm ci` at the repository root): interop test skipped";
  if (test::run_command("node --version") != 0) GTEST_SKIP() << "node not installed: interop test skipped";
  auto v = vocab_from_gguf_kv(test_vocabs::tiny_llama3_kv());
  ASSERT_TRUE(v.ok()) << v.error().render();
  test::TempDir dir;
  json texts = json::array({"ab", "ab a", "b"});
  std::ofstream(dir.path() / "texts.json") << texts.dump();
  std::string specs;
  for (const bool bos : {true, false}) {
    Vocab c = *v;
    c.add_bos = bos;
    auto files = vocab_to_hf(c);
    ASSERT_TRUE(files.ok()) << files.error().render();
    const fs::path out = dir.path() / (bos ? "bos" : "plain");
    fs::create_directories(out);
    std::ofstream(out / "tokenizer.json") << files->tokenizer_json;
    std::ofstream(out / "tokenizer_config.json") << files->tokenizer_config_json;
    specs += " " + test::q(fs::absolute(out).string() + ":tokenizer");
  }
  std::string o;
  ASSERT_EQ(test::run_command("cd " + test::q(root) + " && node tests/js/onnx_tfjs.mjs 0 0 " +
                                  test::q(dir.path() / "texts.json") + specs,
                              &o),
            0)
      << o;
  const auto r = test::last_json_line(o);
  ASSERT_TRUE(r.has_value()) << o;
  const json& with = (*r)[fs::absolute(dir.path() / "bos").string() + ":tokenizer"]["tokens"];
  const json& without = (*r)[fs::absolute(dir.path() / "plain").string() + ":tokenizer"]["tokens"];
  EXPECT_EQ(with, json::parse("[[3, 2], [3, 2, 7], [3, 1]]")) << o;
  EXPECT_EQ(without, json::parse("[[2], [2, 7], [1]]")) << o;
}

}  // namespace
}  // namespace mc::tok
