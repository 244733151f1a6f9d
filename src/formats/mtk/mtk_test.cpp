// MTK through a stand-in for MediaTek's mtk_cloud toolkit written by the tests: shell scripts
// named as the real ones that record the environment they got, print, and write .tflite files
// (or fail) as told by MC_STANDIN_MODE. The real toolkit is proprietary.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "formats/mtk/mtk.h"
#include "testutil.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

// The bytes every stand-in .tflite has: a FlatBuffer root offset, then the "TFL3" identifier.
const std::string kTflite("\x18\x00\x00\x00TFL3\x00\x00\x00\x00", 12);

void write_toolkit(const fs::path& dir, const std::string& label, bool with_vlm = true) {
  fs::create_directories(dir);
  for (std::string kind : {"llm", "vlm"}) {
    if (kind == "vlm" && !with_vlm) continue;
    std::ofstream(dir / ("run_example_" + kind + "_cybertron.sh")) << R"SH(#!/bin/bash
# stand-in for MediaTek's script: records its environment, prints, writes .tflite files or fails
KIND=)SH" << kind << "\nLABEL=" << label << R"SH(
echo "stand-in $KIND from $LABEL"
{ echo "SCRIPT=$KIND"; echo "TOOLKIT=$LABEL"; echo "PWD=$(pwd)"; echo "MODEL_FILES=$(ls "$MODEL_PATH" | tr '\n' ' ')";
  env | grep -E '^(MODEL_PATH|PLATFORM|MODEL_SIZE|WEIGHT_BIT|MODEL_KIND|OUTPUT_DIR|CLEN|PLEN|CLOUD_WEIGHT_NUM|CLOUD_ACT_NUM|MTK_BATCH_SIZE|DISABLE_PGPTQ|IS_LLAMA|RATE|SKIP_ENV_SETUP|USE_OPTIMIZED_CONVERT|CONDA_ENV|GPTQ_MODELPATH)=' ; } > "${MC_TEST_RECORD:-/dev/null}"
case "${MC_STANDIN_MODE:-ok}" in
  fail) echo "loading model"; echo "error: out of memory on the NPU compiler"; exit 3;;
  notflite) echo "nothing to do"; exit 0;;
  badtflite) echo "this is not a flatbuffer" > "$OUTPUT_DIR/model.tflite"; exit 0;;
  flaky) n=$(cat "$MC_STANDIN_COUNTER" 2>/dev/null || echo 0); echo $((n+1)) > "$MC_STANDIN_COUNTER"
         if [ "$n" = 0 ]; then echo "license server busy"; exit 1; fi;;
  wait) echo "waiting for go"; for i in $(seq 1 200); do [ -f "$MC_STANDIN_GO" ] && break; sleep 0.1; done
        [ -f "$MC_STANDIN_GO" ] || { echo "no go"; exit 9; };;
esac
test -f "$MODEL_PATH/config.json" || { echo "MODEL_PATH has no config.json"; exit 5; }
mkdir -p "$OUTPUT_DIR/chunks"
printf '\x18\x00\x00\x00TFL3\x00\x00\x00\x00' > "$OUTPUT_DIR/chunks/${KIND}_0.tflite"
echo "stand-in $KIND: done"
)SH";
  }
}

class Mtk : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(modelconvert_binary())) << modelconvert_binary();
    std::ofstream(tmp / "config.json")
        << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 256, "hidden_size": 64,
              "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "torch_dtype": "float32"})";
    write_toolkit(tmp / "tk", "A");
  }
  // modelconvert with a private state and config folder and no toolkit from the environment.
  CliRun run(const std::string& args, const std::string& env = "") {
    CliRun r;
    r.rc = run_command("env -u MTK_CLOUD_PATH -u MODELCONVERT_MTK_CLOUD_PATH XDG_STATE_HOME=" + q(tmp / "state") +
                           " XDG_CONFIG_HOME=" + q(tmp / "cfg") + " MC_TEST_RECORD=" + q(tmp / "record") + " " + env + " " +
                           modelconvert_binary().string() + " " + args,
                       &r.out);
    return r;
  }
  std::string tk_config(const std::string& extra = "") {
    return "'{\"mtk_cloud_path\": \"" + (tmp / "tk").string() + "\"" + extra + "}'";
  }
  std::map<std::string, std::string> record() {
    std::map<std::string, std::string> m;
    std::ifstream f(tmp / "record");
    std::string line;
    while (std::getline(f, line))
      if (auto eq = line.find('='); eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
    return m;
  }
  // Names in `dir` that a conversion must never leave behind.
  std::vector<std::string> leftovers() {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(tmp.path())) {
      const std::string n = e.path().filename().string();
      if (n.rfind(".mc-", 0) == 0) out.push_back(n);
    }
    return out;
  }
  void make_hf_model(const fs::path& dir) {
    auto r = run("convert " + q(tmp / "config.json") + " hf --fake-weight --fake-weight-init random -o " + q(dir));
    ASSERT_EQ(r.rc, 0) << r.out;
  }
  TempDir tmp;
};

TEST_F(Mtk, TheLlmScriptGetsTheSeedsEnvironmentAndItsOutputLandsAtO) {
  make_hf_model(tmp / "model");
  std::string out;
  const int rc = run_command(
      "( env -u MTK_CLOUD_PATH XDG_STATE_HOME=" + q(tmp / "state") + " XDG_CONFIG_HOME=" + q(tmp / "cfg") +
          " MC_TEST_RECORD=" + q(tmp / "record") + " " + modelconvert_binary().string() + " convert " + q(tmp / "model") +
          " mtk --model-type text-generation --quantization-config " +
          tk_config(", \"platform\": \"MT6989\", \"model_size\": \"0_5B\", \"weight_bit\": 8") + " -o " + q(tmp / "out") +
          " --json 2>" + q(tmp / "stderr") + " )",
      &out);
  ASSERT_EQ(rc, 0) << out << slurp(tmp / "stderr");
  const json j = json::parse(out);  // exactly one JSON document on stdout
  EXPECT_EQ(j["output_format"], "mtk");
  EXPECT_EQ(j["info"]["model_kind"], "llm");
  EXPECT_EQ(j["info"]["platform"], "MT6989");
  EXPECT_EQ(j["info"]["toolkit_from"], "--quant-config mtk_cloud_path");
  auto env = record();
  EXPECT_EQ(env["SCRIPT"], "llm");
  EXPECT_EQ(env["PWD"], (tmp / "tk").string()) << "the script runs in the toolkit's folder";
  EXPECT_EQ(env["MODEL_PATH"], (tmp / "model").string()) << "an untouched HF directory is handed over as is";
  EXPECT_EQ(env["PLATFORM"], "MT6989");
  EXPECT_EQ(env["MODEL_SIZE"], "0_5B");
  EXPECT_EQ(env["WEIGHT_BIT"], "8");
  EXPECT_EQ(env["MODEL_KIND"], "word");
  const std::map<std::string, std::string> fixed = {
      {"CLEN", "512"},      {"PLEN", "128"},           {"CLOUD_WEIGHT_NUM", "1024"},    {"CLOUD_ACT_NUM", "256"},
      {"MTK_BATCH_SIZE", "2"}, {"DISABLE_PGPTQ", "false"}, {"IS_LLAMA", "false"},        {"RATE", "0"},
      {"SKIP_ENV_SETUP", "true"}, {"USE_OPTIMIZED_CONVERT", "true"}, {"CONDA_ENV", "SKIP_CONDA_ACTIVATION"}};
  for (const auto& [k, v] : fixed) EXPECT_EQ(env[k], v) << k;
  EXPECT_EQ(env.count("GPTQ_MODELPATH"), 0u) << "no hard-coded GPTQ_MODELPATH (a bug of the original)";
  // OUTPUT_DIR is our temporary sibling of -o, renamed to -o after the check.
  const fs::path outdir = env["OUTPUT_DIR"];
  EXPECT_EQ(outdir.parent_path(), tmp.path());
  EXPECT_EQ(outdir.filename().string().rfind(".mc-tmp-", 0), 0u) << outdir;
  EXPECT_EQ(slurp(tmp / "out" / "chunks" / "llm_0.tflite"), kTflite);
  EXPECT_TRUE(leftovers().empty());
  // The script's output went to stderr as it ran, prefixed.
  EXPECT_NE(slurp(tmp / "stderr").find("  | stand-in llm from A"), std::string::npos) << slurp(tmp / "stderr");
  auto v = run("validate " + q(tmp / "out") + " --json");
  EXPECT_EQ(v.rc, 0) << v.out;
  EXPECT_NE(v.out.find("chunks/llm_0.tflite"), std::string::npos) << v.out;
}

TEST_F(Mtk, TheTaskOrConfigJsonPicksTheVlmScript) {
  auto r = run("convert " + q(tmp / "config.json") + " mtk --fake-weight --model-type image-classification --quant-config " +
               tk_config(", \"model_size\": \"1_6B\"") + " -o " + q(tmp / "vlm1"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(record()["SCRIPT"], "vlm");
  EXPECT_EQ(record()["MODEL_KIND"], "multimodal");
  EXPECT_EQ(slurp(tmp / "vlm1" / "chunks" / "vlm_0.tflite"), kTflite);

  // No --model-type: config.json decides (vision_config -> VLM); a family name does not pick.
  fs::create_directories(tmp / "v");
  json cfg = json::parse(slurp(tmp / "config.json"));
  cfg["vision_config"] = {{"image_size", 224}};
  std::ofstream(tmp / "v" / "config.json") << cfg.dump();
  r = run("convert " + q(tmp / "v" / "config.json") + " mtk --fake-weight --quant-config " + tk_config() + " -o " + q(tmp / "vlm2"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(record()["SCRIPT"], "vlm");
  r = run("convert " + q(tmp / "config.json") + " mtk --fake-weight --model-type llama --quant-config " + tk_config() + " -o " +
          q(tmp / "llm"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(record()["SCRIPT"], "llm");
  EXPECT_NE(r.out.find("using 1_2B"), std::string::npos) << "no size anywhere: the seed's default, with a warning\n" << r.out;
  EXPECT_EQ(record()["MODEL_SIZE"], "1_2B");
}

TEST_F(Mtk, AFakeWeightModelIsStagedAsAnHfDirectoryAndRemoved) {
  auto r = run("convert " + q(tmp / "config.json") + " mtk --fake-weight --quant-config " + tk_config() + " -o " + q(tmp / "out"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto env = record();
  const fs::path staged = env["MODEL_PATH"];
  EXPECT_EQ(staged.parent_path(), tmp.path());
  EXPECT_EQ(staged.filename().string().rfind(".mc-stage-", 0), 0u) << staged;
  EXPECT_NE(env["MODEL_FILES"].find("config.json"), std::string::npos) << env["MODEL_FILES"];
  EXPECT_NE(env["MODEL_FILES"].find("model.safetensors"), std::string::npos) << env["MODEL_FILES"];
  EXPECT_FALSE(fs::exists(staged));
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(Mtk, BadSettingsStopBeforeAnythingRuns) {
  const std::string base = "convert " + q(tmp / "config.json") + " mtk --fake-weight -o " + q(tmp / "out") + " ";
  for (const char* bad : {R"({"platform": "MT1234"})", R"({"platfrom": "MT6991"})", R"({"OUTPUT_DIR": "/x"})",
                          R"({"weight_bit": "four"})", R"({"disable_pgptq": 3})", R"([1, 2])"}) {
    formats::WriteOptions wo;
    wo.quant_config = ojson::parse(bad);
    if (wo.quant_config.is_object()) wo.quant_config["mtk_cloud_path"] = (tmp / "tk").string();
    auto p = mtk::plan_settings(wo);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().code, ErrorCode::InvalidArgument) << bad;
  }
  auto r = run(base + "--quant-config " + tk_config(", \"platform\": \"MT1234\""));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "record")) << "the script ran";
  EXPECT_FALSE(fs::exists(tmp / "out"));
  EXPECT_NE(r.out.find("unknown MTK platform 'MT1234'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MT6991, MT6989, MT6897"), std::string::npos) << r.out;
  r = run(base + "--dtype fp16 --quant-config " + tk_config());
  EXPECT_EQ(r.rc, 2) << r.out;
  r = run(base + "--model-type no-such-task --quant-config " + tk_config());
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("text-generation"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "record"));
  // An unknown size only warns, as in the original.
  r = run(base + "--quant-config " + tk_config(", \"model_size\": \"3B\""));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("model_size '3B'"), std::string::npos) << r.out;
  EXPECT_EQ(record()["MODEL_SIZE"], "3B");
}

TEST_F(Mtk, TheToolkitComesFromTheOptionThenMtkCloudPathThenTheConfig) {
  write_toolkit(tmp / "tkB", "B");
  write_toolkit(tmp / "tkC", "C");
  fs::create_directories(tmp / "cfg" / "modelconvert");
  std::ofstream(tmp / "cfg" / "modelconvert" / "config.yaml") << "mtk_cloud_path: " << (tmp / "tkC").string() << "\n";
  const std::string conv = "convert " + q(tmp / "config.json") + " mtk --fake-weight --force -o " + q(tmp / "out") + " ";
  const std::string envB = "MTK_CLOUD_PATH=" + q(tmp / "tkB");
  auto r = run(conv + "--quant-config " + tk_config(), envB);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(record()["TOOLKIT"], "A");
  r = run(conv, envB);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(record()["TOOLKIT"], "B");
  r = run(conv + "--json");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(record()["TOOLKIT"], "C");
  EXPECT_NE(r.out.find("file " + (tmp / "cfg" / "modelconvert" / "config.yaml").string()), std::string::npos) << r.out;

  // None anywhere: exit 4 saying where it looked. A folder that is not there: exit 4 naming it.
  fs::remove(tmp / "cfg" / "modelconvert" / "config.yaml");
  r = run(conv);
  EXPECT_EQ(r.rc, 4) << r.out;
  for (const char* where : {"--quant-config mtk_cloud_path", "$MTK_CLOUD_PATH", "config key mtk_cloud_path"})
    EXPECT_NE(r.out.find(where), std::string::npos) << where << "\n" << r.out;
  r = run(conv, "MTK_CLOUD_PATH=" + q(tmp / "missing"));
  EXPECT_EQ(r.rc, 4) << r.out;
  EXPECT_NE(r.out.find((tmp / "missing").string()), std::string::npos) << r.out;
  write_toolkit(tmp / "llm-only", "D", /*with_vlm=*/false);
  r = run(conv + "--model-type image-classification", "MTK_CLOUD_PATH=" + q(tmp / "llm-only"));
  EXPECT_EQ(r.rc, 4) << r.out;
  EXPECT_NE(r.out.find("run_example_vlm_cybertron.sh"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "record") && record()["TOOLKIT"] == "D");
}

TEST_F(Mtk, AFailingScriptLeavesNothingAtO) {
  const std::string conv = "convert " + q(tmp / "config.json") + " mtk --fake-weight -o " + q(tmp / "out") + " --quant-config " + tk_config();
  auto r = run(conv, "MC_STANDIN_MODE=fail");
  EXPECT_EQ(r.rc, 3) << r.out;
  EXPECT_NE(r.out.find("run_example_llm_cybertron.sh exited with status 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("out of memory on the NPU compiler"), std::string::npos) << "its last lines\n" << r.out;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  EXPECT_TRUE(leftovers().empty());
  r = run(conv, "MC_STANDIN_MODE=notflite");
  EXPECT_EQ(r.rc, 4) << r.out;
  EXPECT_NE(r.out.find("wrote no .tflite"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  r = run(conv, "MC_STANDIN_MODE=badtflite");
  EXPECT_EQ(r.rc, 6) << r.out;
  EXPECT_NE(r.out.find("TFL3"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  EXPECT_TRUE(leftovers().empty());
}

TEST_F(Mtk, TheScriptsOutputIsShownWhileItRuns) {
  // The script prints, then waits until the test has seen that line on our stderr: output held
  // back until the script ends would make it time out (exit 9).
  int rc = -1;
  std::thread t([&] {
    rc = run_command("( env -u MTK_CLOUD_PATH XDG_STATE_HOME=" + q(tmp / "state") + " MC_STANDIN_MODE=wait MC_STANDIN_GO=" +
                     q(tmp / "go") + " " + modelconvert_binary().string() + " convert " + q(tmp / "config.json") +
                     " mtk --fake-weight -o " + q(tmp / "out") + " --quant-config " + tk_config() + " 2>" + q(tmp / "log") + " )");
  });
  bool seen = false;
  for (int i = 0; i < 300 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    seen = slurp(tmp / "log").find("  | waiting for go") != std::string::npos;
  }
  std::ofstream(tmp / "go") << "go";
  t.join();
  EXPECT_TRUE(seen) << slurp(tmp / "log");
  EXPECT_EQ(rc, 0) << slurp(tmp / "log");
  EXPECT_EQ(slurp(tmp / "out" / "chunks" / "llm_0.tflite"), kTflite);
}

TEST(MtkPlan, SizeFromTheModelsNameAndTheOriginalsDefaults) {
  TempDir tmp;
  fs::create_directories(tmp / "MiniCPM4-0.5B");
  std::ofstream(tmp / "MiniCPM4-0.5B" / "config.json") << R"({"model_type": "minicpm"})";
  write_toolkit(tmp / "tk", "A");
  Model m;
  m.source_path = (tmp / "MiniCPM4-0.5B").string();
  m.config = ojson::parse(R"({"model_type": "minicpm"})");
  formats::WriteOptions wo;
  wo.quant_config = {{"mtk_cloud_path", (tmp / "tk").string()}, {"gptq_modelpath", "/models/gptq"}};
  auto p = mtk::plan(m, wo);
  ASSERT_TRUE(p) << p.error().render();
  EXPECT_EQ(p->env["MODEL_SIZE"], "0_5B");
  EXPECT_EQ(p->env["PLATFORM"], "MT6991");
  EXPECT_EQ(p->env["WEIGHT_BIT"], "4");
  EXPECT_EQ(p->env["GPTQ_MODELPATH"], "/models/gptq");
  EXPECT_EQ(p->kind, "llm");
  EXPECT_TRUE(p->warnings.empty());
  m.config = ojson::parse(R"({"model_type": "minicpm", "_name_or_path": "openbmb/MiniCPM-V-0.58B"})");
  EXPECT_EQ(mtk::plan(m, wo)->env["MODEL_SIZE"], "0_58B") << "0.58B is not 0.5B or 8B";
  m.config = ojson::parse(R"({"model_type": "minicpmv"})");
  wo.task = "text-generation";
  EXPECT_EQ(mtk::plan(m, wo)->kind, "llm") << "the task decides over config.json";
  wo.task = "";
  m.config = ojson::parse(R"({"model_type": "some-vision-model"})");
  EXPECT_EQ(mtk::plan(m, wo)->kind, "vlm");
  // validate_dir: every .tflite must carry the identifier.
  fs::create_directories(tmp / "o" / "a");
  std::ofstream(tmp / "o" / "a" / "x.tflite", std::ios::binary) << kTflite;
  EXPECT_TRUE(mtk::validate_dir(tmp / "o").ok());
  std::ofstream(tmp / "o" / "y.tflite") << "not a model";
  auto rep = mtk::validate_dir(tmp / "o");
  ASSERT_EQ(rep.errors.size(), 1u);
  EXPECT_EQ(rep.errors[0].code, ErrorCode::Corrupt);
  EXPECT_NE(rep.errors[0].path.find("y.tflite"), std::string::npos);
  EXPECT_FALSE(mtk::validate_dir(tmp / "MiniCPM4-0.5B").ok()) << "no .tflite at all";
}

}  // namespace
}  // namespace mc::test
