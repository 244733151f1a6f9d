// GPTQ and AWQ quality on a trained model, judged on held-out text through the model's outputs
// (GPTQ is worse than round-to-nearest in weight space by design, so weights are not compared).
// tests/py/gptq_awq_tiny.py trains a tiny Llama (hidden 128, ffn 384, 2 layers, 512-piece
// SentencePiece vocabulary) on the built-in corpus minus its last three essays, once per build
// directory; the quantized models calibrate on the training text and are measured on the held-out
// essays by an independent torch forward of an independent numpy unpacking of their files (mean
// KL to the source over 8 windows of 96 tokens). Round-to-nearest at the same bits and group is
// measured in the same run: GPTQ's quantizer without the error feedback (sym, from Python) and
// AWQ's own quantizer without scaling or clipping (our AWQ writer with n_grid 1, no duo scaling,
// no clip: the identity scales).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

json py_json(const std::string& args) {
  std::string out;
  const int rc = run_python("gptq_awq_tiny.py " + args, &out);
  EXPECT_EQ(rc, 0) << out;
  auto j = last_json_line(out);
  EXPECT_TRUE(j.has_value()) << out;
  return j ? *j : json::object();
}

TEST(GptqAwqInterop, TrainedTinyLlamaHeldOutQuality) {
  MC_SKIP_UNLESS_TORCH();
  // Trained once per build directory (the stamp holds a hash of the script and the corpus).
  const fs::path cache = modelconvert_binary().parent_path() / "gptq_awq_tiny";
  const json made = py_json("make " + q(cache) + " --corpus " +
                            q(repo_root() / "src/formats/gptq_awq/corpus/calibration.txt"));
  ASSERT_EQ(made.value("ok", false), true) << made.dump();
  std::printf("[ tiny llama ] %s\n", made.dump().c_str());
  const fs::path src = cache / "model", held = cache / "heldout.json";
  TempDir tmp;
  const std::string calib = " --calibration " + q(cache / "train.txt") + " --calibration-samples 32 --seq-len 128";
  std::string unpack;
  auto quantize = [&](const std::string& name, const std::string& args) {
    auto r = mc_run("convert " + q(src) + " " + args + calib + " --json -o " + q(tmp / name));
    EXPECT_EQ(r.rc, 0) << r.out;
    // The files unpack (independently) to exactly what our reader dequantizes.
    auto back = mc_run("convert " + q(tmp / name) + " hf -o " + q(tmp / (name + "-hf")));
    EXPECT_EQ(back.rc, 0) << back.out;
    unpack += " " + q(tmp / name) + " " + q(tmp / (name + "-hf"));
  };
  quantize("gptq4", "gptq --quant 4bit");
  quantize("gptq4-act", "gptq --quant-config '{\"bits\": 4, \"desc_act\": true}'");
  quantize("gptq8", "gptq --quant 8bit");
  quantize("awq4", "awq --quant 4bit");
  quantize("awq4-rtn", "awq --quant-config '{\"n_grid\": 1, \"duo_scaling\": false, \"clip\": false}'");
  const json u = py_json("unpack" + unpack);
  EXPECT_EQ(u.value("ok", false), true) << u.dump();
  for (const auto& r : u["results"]) EXPECT_EQ(r.value("modules", 0), 14) << r.dump();
  ASSERT_EQ(py_json("rtn " + q(src) + " " + q(tmp.path()) + " --bits 4 8 --group 128").value("ok", false), true);
  std::string models;
  for (const char* m : {"gptq4", "gptq4-act", "gptq8", "rtn4", "rtn8", "awq4", "awq4-rtn"}) models += " " + q(tmp / m);
  const json k = py_json("kl " + q(src) + " " + q(held) + models);
  auto kl = [&](const char* m) { return k["results"].contains(m) ? k["results"][m]["mean_kl"].get<double>() : 1e9; };
  const double g4 = kl("gptq4"), g4a = kl("gptq4-act"), g8 = kl("gptq8");
  const double r4 = kl("rtn4"), r8 = kl("rtn8");
  const double a4 = kl("awq4"), a4r = kl("awq4-rtn");
  std::printf("[ held-out mean KL, 4-bit g128 ] gptq %.5f  gptq desc_act %.5f  rtn (sym) %.5f  awq %.5f  "
              "rtn (zero point) %.5f\n",
              g4, g4a, r4, a4, a4r);
  std::printf("[ held-out mean KL, 8-bit g128 ] gptq %.7f  rtn (sym) %.7f\n", g8, r8);
  EXPECT_LT(g4, 0.7 * r4) << "GPTQ 4-bit must be clearly below round-to-nearest";
  EXPECT_LT(g4a, 0.7 * r4) << "GPTQ desc_act 4-bit must be clearly below round-to-nearest";
  EXPECT_LT(g8, 1e-4) << "8-bit must be near lossless";
  EXPECT_LE(g8, r8 * 1.05);
  EXPECT_LE(a4, a4r * 1.05 + 1e-4) << "AWQ must be no worse than its round-to-nearest";
  EXPECT_LE(a4, r4 * 1.05 + 1e-4);
  // The reference runtime agrees: check --compare passes by the bits rule.
  auto c = mc_run("check " + q(tmp / "gptq4") + " --compare " + q(src) + " --prompt " +
                  q("The harbour lies in the curve of a bay") + " --max-new-tokens 8 --json");
  EXPECT_EQ(c.rc, 0) << c.out;
}

}  // namespace
}  // namespace mc::test
