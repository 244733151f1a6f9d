// Transforms through the CLI (`modelconvert convert DIR hf ...`), checked by the independent
// Python side: ref_forward.py (logits), stlib.py (tensor lists, torch casts).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::transforms {
namespace {

class TransformsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_torch()) GTEST_SKIP() << "python3-torch not installed: interop test skipped";
    std::error_code ec;
    if (!test::fs::exists(test::modelconvert_binary(), ec))
      GTEST_SKIP() << "modelconvert binary not built (" << test::modelconvert_binary() << ")";
  }
  test::fs::path make(const std::string& name, const std::string& args) {
    const auto p = dir_ / name;
    std::string out;
    EXPECT_EQ(test::run_python("make_models.py " + p.string() + " " + args, &out), 0) << out;
    return p;
  }
  void convert(const test::fs::path& in, const test::fs::path& out, const std::string& args) {
    std::string log;
    ASSERT_EQ(test::run_command(test::modelconvert_binary().string() + " convert " + in.string() +
                                    " hf -o " + out.string() + " --quiet " + args,
                                &log),
              0)
        << log;
  }
  nlohmann::json py_json(const std::string& script_and_args) {
    std::string out;
    EXPECT_EQ(test::run_python(script_and_args, &out), 0) << out;
    const auto brace = out.find('{');
    if (brace == std::string::npos) return nlohmann::json::object();
    return nlohmann::json::parse(out.substr(brace));
  }
  test::TempDir dir_;
};

TEST_F(TransformsCli, MupToLlamaPreservesLogits) {
  const auto src = make("cpm", "--arch minicpm --seed 4");
  const auto out = dir_ / "cpm-llama";
  convert(src, out, "--mup2llama");
  auto r = py_json("ref_forward.py " + src.string() + " --compare " + out.string() +
                   " --ids 1,5,9,77,3,200,14 --greedy 4");
  ASSERT_TRUE(r.contains("max_abs_diff"));
  EXPECT_GT(r["max_abs"].get<double>(), 0.1);
  EXPECT_LT(r["max_abs_diff"].get<double>(), 1e-5);  // f32 reassociation only
  EXPECT_EQ(r["greedy_a"], r["greedy_b"]);
  // The output is plain Llama (ref_forward applies no muP factors to it) and untied.
  auto d = py_json("stlib.py describe " + out.string());
  EXPECT_TRUE(d.contains("lm_head.weight"));
}

TEST_F(TransformsCli, CastMatchesTorch) {
  const auto src = make("llama", "--arch llama --seed 2");
  const auto out = dir_ / "llama-bf16";
  convert(src, out, "--dtype bf16");
  auto r = py_json("stlib.py cast-check " + src.string() + " " + out.string());
  EXPECT_EQ(r["tensors"], 21);
  EXPECT_TRUE(r["mismatched"].empty()) << r.dump();
}

TEST_F(TransformsCli, FakeWeightsHaveHfNamesAndShapes) {
  // qwen2: q/k/v biases and a tied head; gpt2: Conv1D shapes, prefix, LayerNorm biases.
  std::string dirs;
  for (const char* arch : {"qwen2", "gpt2"}) {
    const auto ref = make(std::string("ref-") + arch, std::string("--arch ") + arch);
    const auto out = dir_ / (std::string("fake-") + arch);
    convert(ref / "config.json", out, "--fake-weight --fake-weight-init random --seed 5");
    dirs += " " + ref.string() + " " + out.string();
  }
  std::string text;
  ASSERT_EQ(test::run_python("stlib.py describe" + dirs, &text), 0) << text;
  auto j = nlohmann::json::parse(text.substr(text.find('[')));
  ASSERT_EQ(j.size(), 4u);
  EXPECT_GT(j[0].size(), 20u);
  EXPECT_EQ(j[0], j[1]) << "qwen2";
  EXPECT_EQ(j[2], j[3]) << "gpt2";
}

}  // namespace
}  // namespace mc::transforms
