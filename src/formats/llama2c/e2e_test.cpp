// llama2.c -> HF through the CLI: the written directory, run by tests/py/ref_forward.py, gives
// the logits run.c's algorithm (tests/py/llama2c_ref.py) gives on the original file.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::llama2c {
namespace {

namespace fs = std::filesystem;

class Llama2cCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_torch()) GTEST_SKIP() << "python3-torch not installed: interop test skipped";
    std::error_code ec;
    if (!fs::exists(test::modelconvert_binary(), ec))
      GTEST_SKIP() << "modelconvert binary not built (" << test::modelconvert_binary() << ")";
    std::string formats;
    test::run_command(test::modelconvert_binary().string() + " list formats", &formats);
    if (formats.find("llama2c      yes") == std::string::npos)
      GTEST_SKIP() << "this modelconvert binary does not read llama2c yet (registry row not wired)";
  }
  void convert(const fs::path& in, const fs::path& out, const std::string& extra = "") {
    std::string log;
    ASSERT_EQ(test::run_command(test::modelconvert_binary().string() + " convert " + in.string() +
                                    " hf -o " + out.string() + " --quiet " + extra,
                                &log),
              0)
        << log;
  }
  test::TempDir dir_;
};

TEST_F(Llama2cCli, LogitsMatchRunC) {
  std::string out;
  ASSERT_EQ(test::run_python("llama2c_ref.py --make-all " + dir_.path().string() + " --seed 11", &out), 0) << out;
  std::vector<fs::path> files = {dir_ / "m0u.bin", dir_ / "m2s.bin", dir_ / "m1s.bin"};
  if (auto p = test::fixture("llama2c/stories260K.bin")) files.push_back(*p);
  std::string pairs;
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path hf = dir_ / ("hf" + std::to_string(i));
    convert(files[i], hf, "--from llama2c");
    pairs += (pairs.empty() ? "" : ",") + files[i].string() + "=" + hf.string();
  }
  ASSERT_EQ(test::run_python("llama2c_ref.py --pairs " + pairs + " --ids 1,30,2,17,5,88,4", &out), 0) << out;
  auto j = nlohmann::json::parse(out.substr(out.find('[')));
  ASSERT_EQ(j.size(), files.size());
  for (const auto& r : j) {
    auto a = r["ref"].get<std::vector<std::vector<float>>>();
    auto b = r["hf"].get<std::vector<std::vector<float>>>();
    ASSERT_EQ(a.size(), b.size());
    float diff = 0;
    for (size_t t = 0; t < a.size(); ++t)
      for (size_t i = 0; i < a[t].size(); ++i) diff = std::max(diff, std::fabs(a[t][i] - b[t][i]));
    EXPECT_LT(diff, 1e-4f) << r["file"];
  }
}

TEST_F(Llama2cCli, TokenizerAndConfigWritten) {
  auto bin = test::fixture("llama2c/stories260K.bin");
  auto tok = test::fixture("tokenizers/llama2-spm/tokenizer.model");
  if (!bin || !tok) GTEST_SKIP() << "fixtures llama2c/stories260K.bin or tokenizers/llama2-spm absent";
  const fs::path out = dir_ / "hf";
  convert(*bin, out, "--tokenizer " + tok->string());
  EXPECT_EQ(fs::file_size(out / "tokenizer.model"), fs::file_size(*tok));
  auto tc = nlohmann::json::parse(std::ifstream(out / "tokenizer_config.json"));
  EXPECT_EQ(tc["tokenizer_class"], "LlamaTokenizer");
  auto cfg = nlohmann::json::parse(std::ifstream(out / "config.json"));
  EXPECT_EQ(cfg["rms_norm_eps"], 1e-5);
  EXPECT_EQ(cfg["max_position_embeddings"], 512);
  EXPECT_EQ(cfg["tie_word_embeddings"], true);
}

}  // namespace
}  // namespace mc::llama2c
