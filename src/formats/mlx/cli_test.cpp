// End-to-end: tests/py/make_models.py models -> `modelconvert convert ... mlx` -> checked by the
// numpy oracle (packed bytes, scales, biases, float tensors, config, index), by MLX -> HF, and by
// `modelconvert check --compare` in the reference runtime.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

const char* kIds = " --ids 1,5,9,42,7,100,3,77,12,200,31,64";

class MlxCli : public ::testing::Test {
 protected:
  void SetUp() override {
    MC_SKIP_UNLESS_TORCH();
    ASSERT_TRUE(fs::exists(modelconvert_binary())) << modelconvert_binary();
  }
  void verify(const fs::path& src, const fs::path& mlx, const fs::path& hf = {}) {
    std::string out;
    EXPECT_EQ(run_python("mlx_oracle.py verify " + q(src) + " " + q(mlx) + (hf.empty() ? "" : " " + q(hf)), &out), 0)
        << out;
  }
  // check --compare; returns the comparison object.
  json check(const fs::path& model, const fs::path& src) {
    auto r = mc_run("check " + q(model) + " --compare " + q(src) + kIds + " --max-new-tokens 8 --json");
    EXPECT_EQ(r.rc, 0) << r.out;
    const auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  TempDir tmp;
};

TEST_F(MlxCli, QuantizedOutputEqualsOracleAndRuns) {
  struct Case {
    const char* arch;
    const char* dtype;
  };
  for (const Case c : {Case{"llama", "bf16"}, Case{"mistral", "f16"}, Case{"qwen2", "f32"}, Case{"minicpm", "bf16"}}) {
    SCOPED_TRACE(c.arch);
    const fs::path src = tmp / (std::string("src-") + c.arch);
    make_model(src, std::string("--arch ") + c.arch + " --dtype " + c.dtype + " --seed 21");
    for (const char* bits : {"8bit", "4bit"}) {
      SCOPED_TRACE(bits);
      const fs::path out = tmp / (std::string(c.arch) + "-" + bits);
      const fs::path hf = tmp / (std::string(c.arch) + "-" + bits + "-hf");
      auto r = mc_run("convert " + q(src) + " mlx --quant " + bits + " --json -o " + q(out));
      ASSERT_EQ(r.rc, 0) << r.out;
      auto back = mc_run("convert " + q(out) + " hf -o " + q(hf));
      ASSERT_EQ(back.rc, 0) << back.out;
      verify(src, out, hf);
      const json cfg = json::parse(slurp(out / "config.json"));
      EXPECT_EQ(cfg["quantization"]["bits"], bits[0] - '0');
      EXPECT_EQ(cfg["quantization"]["group_size"], 64);
      EXPECT_FALSE(json::parse(slurp(hf / "config.json")).contains("quantization"));
      EXPECT_TRUE(fs::exists(out / "tokenizer.json") || !fs::exists(src / "tokenizer.json"));
      auto insp = mc_run("inspect --json " + q(out));
      ASSERT_EQ(insp.rc, 0) << insp.out;
      EXPECT_EQ(json::parse(insp.out)["format"], "mlx");
      EXPECT_EQ(mc_run("validate " + q(out)).rc, 0);
      const json j = check(out, src);
      ASSERT_TRUE(j.contains("comparison")) << j.dump();
      std::printf("[ mlx %s %s %s ] top1 %.3f mean KL %.6f max KL %.6f pass %d\n", c.arch, c.dtype, bits,
                  j["comparison"]["top1_agreement"].get<double>(), j["comparison"]["mean_kl"].get<double>(),
                  j["comparison"]["max_kl"].get<double>(), j["pass"].get<bool>());
      EXPECT_TRUE(j["pass"].get<bool>()) << j.dump();
      if (std::string(bits) == "8bit") {
        // 8-bit must keep the greedy continuation.
        auto a = mc_run(std::string("check ") + q(out) + kIds + " --max-new-tokens 8 --json");
        auto b = mc_run(std::string("check ") + q(src) + kIds + " --max-new-tokens 8 --json");
        ASSERT_EQ(a.rc, 0) << a.out;
        ASSERT_EQ(b.rc, 0) << b.out;
        EXPECT_EQ(json::parse(a.out)["greedy_ids"], json::parse(b.out)["greedy_ids"]);
      }
    }
  }
}

TEST_F(MlxCli, FloatCopyKeepsSourceBitsAndRequantizes) {
  make_model(tmp / "src", "--arch llama --dtype bf16 --seed 22");
  auto r = mc_run("convert " + q(tmp / "src") + " mlx -o " + q(tmp / "f"));
  ASSERT_EQ(r.rc, 0) << r.out;
  verify(tmp / "src", tmp / "f");
  EXPECT_FALSE(json::parse(slurp(tmp / "f" / "config.json")).contains("quantization"));
  auto insp = mc_run("inspect --json " + q(tmp / "f"));
  ASSERT_EQ(insp.rc, 0) << insp.out;
  EXPECT_EQ(json::parse(insp.out)["format"], "mlx") << "float MLX output is recognised by its metadata";
  // MLX float -> MLX 3-bit, group 32: the same bytes as quantizing the source directly.
  auto a = mc_run("convert " + q(tmp / "f") + " mlx --quant-config '{\"bits\": 3, \"group_size\": 32}' -o " + q(tmp / "a"));
  ASSERT_EQ(a.rc, 0) << a.out;
  verify(tmp / "src", tmp / "a");
  // MLX 8-bit -> MLX 6-bit re-quantizes the dequantized weights: valid, and check passes.
  ASSERT_EQ(mc_run("convert " + q(tmp / "src") + " mlx --quant 8bit -o " + q(tmp / "q8")).rc, 0);
  auto b = mc_run("convert " + q(tmp / "q8") + " mlx --quant 6bit -o " + q(tmp / "q6"));
  ASSERT_EQ(b.rc, 0) << b.out;
  EXPECT_EQ(json::parse(slurp(tmp / "q6" / "config.json"))["quantization"]["bits"], 6);
  EXPECT_TRUE(check(tmp / "q6", tmp / "src")["pass"].get<bool>());
}

TEST_F(MlxCli, AliasNoteAndBadArguments) {
  make_model(tmp / "src", "--arch qwen2 --seed 23");
  auto r = mc_run("convert " + q(tmp / "src") + " mlx --quant q4_k_m --json -o " + q(tmp / "a"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("4-bit affine"), std::string::npos) << r.out;
  EXPECT_EQ(json::parse(slurp(tmp / "a" / "config.json"))["quantization"]["bits"], 4);
  auto bad = mc_run("convert " + q(tmp / "src") + " mlx --quant 7bit -o " + q(tmp / "b"));
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.out.find("7bit"), std::string::npos) << bad.out;
  EXPECT_FALSE(fs::exists(tmp / "b"));
  auto group = mc_run("convert " + q(tmp / "src") + " mlx --quant-config '{\"bits\": 4, \"group_size\": 100}' -o " +
                      q(tmp / "c"));
  EXPECT_NE(group.rc, 0);
  EXPECT_NE(group.out.find("group size 100"), std::string::npos) << group.out;
}

TEST_F(MlxCli, ValidateFindsShapeMismatch) {
  make_model(tmp / "src", "--arch llama --seed 24");
  ASSERT_EQ(mc_run("convert " + q(tmp / "src") + " mlx --quant 4bit -o " + q(tmp / "m")).rc, 0);
  // Claim 8 bits: the packed rows now hold half as many values as the scales describe.
  json cfg = json::parse(slurp(tmp / "m" / "config.json"));
  cfg["quantization"]["bits"] = 8;
  std::ofstream(tmp / "m" / "config.json") << cfg.dump(4);
  auto v = mc_run("validate --json " + q(tmp / "m"));
  EXPECT_NE(v.rc, 0);
  EXPECT_NE(v.out.find("expected"), std::string::npos) << v.out;
  auto c = mc_run("convert " + q(tmp / "m") + " hf -o " + q(tmp / "h"));
  EXPECT_NE(c.rc, 0);
  EXPECT_NE(c.out.find("packed words per row do not hold whole groups of 64 at 8 bits"), std::string::npos) << c.out;
}

}  // namespace
}  // namespace mc::test
