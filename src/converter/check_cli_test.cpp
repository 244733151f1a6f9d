// The `check` and `tokenize` commands end to end: the reference runtime's logits against an
// independent torch forward pass (tests/py/ref_forward.py), the comparison rules picked by the
// precision a model really carries, PASS/FAIL exit codes, and tokenizer ids against known values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

// The last line of the program's output parsed as JSON (progress lines may come first).
json last_json(const std::string& out) {
  const auto start = out.rfind("\n{");
  return json::parse(start == std::string::npos ? out : out.substr(start + 1));
}

class CheckCli : public ::testing::Test {
 protected:
  void SetUp() override {
    MC_SKIP_UNLESS_TORCH();
    ASSERT_TRUE(fs::exists(modelconvert_binary())) << modelconvert_binary();
  }
  TempDir tmp;
};

TEST_F(CheckCli, DumpedLogitsAndGreedyIdsMatchTorch) {
  for (const char* arch : {"qwen2", "gpt2"}) {
    SCOPED_TRACE(arch);
    const fs::path src = tmp / arch;
    make_model(src, std::string("--arch ") + arch + " --seed 31");
    auto r = mc_run("check " + q(src) + " --ids 1,5,9,3,7 --max-new-tokens 3 --dump-logits " +
                    q(tmp / "ours.json") + " --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    std::string out;
    ASSERT_EQ(run_python("ref_forward.py " + q(src) + " --ids 1,5,9,3,7 --greedy 3 --out " + q(tmp / "ref.json"), &out), 0)
        << out;
    const json ours = json::parse(slurp(tmp / "ours.json"));
    const json ref = json::parse(slurp(tmp / "ref.json"));
    EXPECT_EQ(ours["prompt_ids"], ref["prompt_ids"]);
    EXPECT_EQ(ours["greedy_ids"], ref["greedy_ids"]);
    EXPECT_EQ(last_json(r.out)["greedy_ids"], ref["greedy_ids"]);
    ASSERT_EQ(ours["logits_all"].size(), 5u);
    ASSERT_EQ(ref["logits_all"].size(), 5u);
    double lo = 1e30, hi = -1e30, worst = 0;
    for (size_t i = 0; i < 5; ++i) {
      const auto& a = ours["logits_all"][i];
      const auto& b = ref["logits_all"][i];
      ASSERT_EQ(a.size(), b.size());
      for (size_t k = 0; k < a.size(); ++k) {
        const double x = a[k].get<double>(), y = b[k].get<double>();
        lo = std::min(lo, y);
        hi = std::max(hi, y);
        worst = std::max(worst, std::abs(x - y));
      }
    }
    EXPECT_LE(worst, 1e-4 * std::max(1.0, hi - lo)) << "range " << hi - lo;
  }
}

TEST_F(CheckCli, HalfCopyPassesAndAnotherModelFails) {
  make_model(tmp / "src", "--arch llama --seed 32");
  make_model(tmp / "other", "--arch llama --seed 33");
  ASSERT_EQ(mc_run("convert " + q(tmp / "src") + " safetensors --dtype fp16 --quiet -o " + q(tmp / "half")).rc, 0);

  auto r = mc_run("check " + q(tmp / "half") + " --compare " + q(tmp / "src") + " --ids 1,2,3,4 --max-new-tokens 2 --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  json j = last_json(r.out);
  EXPECT_TRUE(j["pass"].get<bool>());
  EXPECT_EQ(j["rule"].get<std::string>().rfind("f16/bf16", 0), 0u) << j["rule"];

  r = mc_run("check " + q(tmp / "other") + " --compare " + q(tmp / "src") + " --ids 1,2,3,4 --max-new-tokens 2");
  EXPECT_EQ(r.rc, 10) << r.out;  // CheckFailed: distinct from load/run errors
  ASSERT_GE(r.out.size(), 5u);
  std::string tail = r.out.substr(r.out.find_last_not_of("\n") - 3, 4);
  EXPECT_EQ(tail, "FAIL") << r.out;

  r = mc_run("check " + q(tmp / "missing") + " --ids 1,2");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.rc, 10) << r.out;
}

TEST_F(CheckCli, DequantizedGgufIsJudgedByItsStoredBits) {
  // The GGUF reader hands the runtime f32 rows, but the values carry 4-5 bits per weight: check
  // must apply the quantized rule, not the f32 one (which a q4 model cannot meet).
  make_model(tmp / "src", "--arch llama --seed 34");
  ASSERT_EQ(mc_run("convert " + q(tmp / "src") + " gguf --quant q4_k_m --quiet -o " + q(tmp / "q.gguf")).rc, 0);
  auto r = mc_run("check " + q(tmp / "q.gguf") + " --compare " + q(tmp / "src") + " --ids 1,2,3,4,5 --max-new-tokens 2 --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const json j = last_json(r.out);
  const std::string rule = j["rule"];
  EXPECT_EQ(rule.rfind("quantized (", 0), 0u) << rule;
  const double bits = std::stod(rule.substr(std::string("quantized (").size()));
  EXPECT_GE(bits, 4.0) << rule;
  EXPECT_LE(bits, 6.0) << rule;
}

TEST_F(CheckCli, TokenizeLlama2Ids) {
  const auto spm = fixture("tokenizers/llama2-spm/tokenizer.model");
  if (!spm) GTEST_SKIP() << "fixture tokenizers/llama2-spm/tokenizer.model not available";
  auto r = mc_run("tokenize " + q(*spm) + " --text 'Hello world' --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const json j = last_json(r.out);
  // Llama 2: <s>=1, "▁Hello"=15043, "▁world"=3186 (the same ids sentencepiece gives).
  EXPECT_EQ(j["ids"], json::array({1, 15043, 3186}));
  EXPECT_EQ(j["pieces"][1], " Hello");  // pieces are printed as text: the "\u2581" marker is a space
  r = mc_run("tokenize " + q(*spm) + " --text 'Hello world' --no-bos --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(last_json(r.out)["ids"], json::array({15043, 3186}));
}

}  // namespace
}  // namespace mc::test
