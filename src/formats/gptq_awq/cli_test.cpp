// GPTQ / AWQ through the command line: requests the layouts cannot hold are refused with exit 2
// before any work; every llama-like family converts, validates, reads back (the packed tensors
// checked by the independent numpy unpacker in tests/py/gptq_awq_tiny.py against our own
// dequantization) and runs in `check` within its bits' threshold.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

const char* kIds = " --ids 1,5,9,42,7,100,3,77,12,200,31,64";
// Small calibration: the random test models have 2 layers of width 64.
const char* kCalib = " --calibration-samples 8 --seq-len 64";

// A llama config whose widths break the packings: hidden 72 (head_dim 18), ffn 100.
void write_odd_config(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 72, "intermediate_size": 100, "num_attention_heads": 4, "num_key_value_heads": 4,
    "num_hidden_layers": 1, "vocab_size": 300, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
    "hidden_act": "silu", "tie_word_embeddings": false, "torch_dtype": "float32"})";
}

TEST(GptqAwqCli, BadRequestsExitTwoBeforeAnyWork) {
  TempDir tmp;
  write_odd_config(tmp / "odd");
  const fs::path cfg = tmp / "odd" / "config.json";
  struct Case {
    std::string args, fragment;
  };
  const Case cases[] = {
      {"awq --quant 8bit", "unknown awq quantization '8bit'"},
      {"awq --quant-config '{\"bits\": 3}'", "4-bit weights only"},
      {"awq --quant-config '{\"zero_point\": false}'", "zero_point false"},
      {"gptq --quant 5bit", "unknown gptq quantization"},
      {"gptq --quant-config '{\"group_size\": 48}'", "group_size 48 does not divide in_features 72"},
      {"gptq --quant-config '{\"group_size\": 4}'", "packs 32/4 values per int32"},
      {"awq --quant-config '{\"group_size\": 4}'", "out_features 100 is not a multiple of 8"},
      {"gptq --quant-config '{\"sym\": false, \"checkpoint_format\": \"gptq\"}'", "cannot be written as checkpoint_format"},
      {"gptq --quant-config '{\"damp\": 0.1}'", "\"damp\" is not a gptq setting"},
      {"gptq --quant-config '{\"damp_percent\": 1.5}'", "must be a number in (0, 1)"},
      {"gptq --dtype fp16", "--dtype is not taken by the 'gptq' writer"},
      {"safetensors --calibration x.txt", "--calibration is not taken by the 'safetensors' writer"},
      {"hf --seq-len 64", "--seq-len is not taken"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const fs::path out = tmp / "out";
    const auto t0 = std::chrono::steady_clock::now();
    auto r = mc_run("convert " + q(cfg) + " " + c.args + " --fake-weight --fake-weight-init random -o " + q(out));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find(c.fragment), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_LT(s, 5.0);
  }
}

class GptqAwqModels : public ::testing::Test {
 protected:
  void SetUp() override {
    MC_SKIP_UNLESS_TORCH();
    auto spm = fixture("tokenizers/llama2-spm/tokenizer.model");
    if (!spm) GTEST_SKIP() << "../shared/fixtures absent: the calibration text needs a tokenizer";
    tokenizer_ = *spm;
  }
  // A random test model with the Llama 2 tokenizer attached.
  fs::path model(const std::string& arch) {
    const fs::path dir = tmp / ("src-" + arch);
    make_model(dir, "--arch " + arch + " --vocab 32000 --seed 7");
    fs::copy_file(tokenizer_, dir / "tokenizer.model");
    return dir;
  }
  // Converts, validates, reads back, unpacks independently, and runs check --compare.
  json roundtrip(const fs::path& src, const std::string& name, const std::string& args) {
    const fs::path out = tmp / name, dense = tmp / (name + "-hf");
    auto r = mc_run("convert " + q(src) + " " + args + kCalib + " --json -o " + q(out));
    EXPECT_EQ(r.rc, 0) << r.out;
    if (r.rc != 0) return {};
    EXPECT_TRUE(fs::exists(out / "tokenizer.model"));
    EXPECT_FALSE(fs::exists(out / ".quant-spill.bin"));
    EXPECT_EQ(mc_run("validate " + q(out)).rc, 0);
    auto back = mc_run("convert " + q(out) + " hf -o " + q(dense));
    EXPECT_EQ(back.rc, 0) << back.out;
    EXPECT_FALSE(json::parse(slurp(dense / "config.json")).contains("quantization_config"));
    unpack_ += " " + q(out) + " " + q(dense);
    auto c = mc_run("check " + q(out) + " --compare " + q(src) + kIds + " --max-new-tokens 4 --json");
    EXPECT_EQ(c.rc, 0) << c.out;
    const json j = json::parse(c.out, nullptr, false);
    if (j.is_discarded() || !j.contains("comparison")) {
      ADD_FAILURE() << c.out;
      return {};
    }
    std::printf("[ %s ] mean KL %.5f top1 %.3f (%s)\n", name.c_str(), j["comparison"]["mean_kl"].get<double>(),
                j["comparison"]["top1_agreement"].get<double>(), j["rule"].get<std::string>().c_str());
    EXPECT_TRUE(j["pass"].get<bool>()) << j.dump();
    return j;
  }
  // The independent unpacking of every output so far (one python run: torch starts slowly).
  void TearDown() override {
    if (unpack_.empty()) return;
    std::string py;
    EXPECT_EQ(run_python("gptq_awq_tiny.py unpack" + unpack_, &py), 0) << py;
    auto j = last_json_line(py);
    ASSERT_TRUE(j.has_value()) << py;
    EXPECT_EQ((*j)["ok"], true) << py;
  }
  TempDir tmp;
  fs::path tokenizer_;
  std::string unpack_;
};

TEST_F(GptqAwqModels, EveryLlamaLikeFamilyRoundTrips) {
  for (const char* arch : {"llama", "mistral", "qwen2", "minicpm", "qwen3", "phi3", "gemma"}) {
    SCOPED_TRACE(arch);
    const fs::path src = model(arch);
    const json g = roundtrip(src, std::string(arch) + "-gptq", "gptq --quant 4bit --quant-config '{\"group_size\": 32}'");
    const json cfg = json::parse(slurp(tmp / (std::string(arch) + "-gptq") / "config.json"));
    EXPECT_EQ(cfg["quantization_config"]["quant_method"], "gptq");
    EXPECT_EQ(cfg["quantization_config"]["checkpoint_format"], "gptq");
    EXPECT_EQ(cfg["torch_dtype"], "float16");
    const json qc = json::parse(slurp(tmp / (std::string(arch) + "-gptq") / "quantize_config.json"));
    EXPECT_EQ(qc["bits"], 4);
    EXPECT_EQ(qc["group_size"], 32);
    if (std::string(arch) == "mistral") continue;  // AWQ treats it as llama (the window is wider than the tokens)
    roundtrip(src, std::string(arch) + "-awq", "awq --quant-config '{\"group_size\": 32}'");
    const json acfg = json::parse(slurp(tmp / (std::string(arch) + "-awq") / "config.json"));
    EXPECT_EQ(acfg["quantization_config"]["version"], "gemm");
    EXPECT_EQ(acfg["quantization_config"]["zero_point"], true);
  }
}

TEST_F(GptqAwqModels, GptqBitWidthsActOrderAndAsymmetric) {
  const fs::path src = model("llama");
  for (const char* bits : {"2", "3", "8"})
    roundtrip(src, std::string("g") + bits, std::string("gptq --quant-config '{\"bits\": ") + bits + ", \"group_size\": 32}'");
  roundtrip(src, "g4-act", "gptq --quant-config '{\"group_size\": 32, \"desc_act\": true}'");
  roundtrip(src, "g4-static", "gptq --quant-config '{\"group_size\": 32, \"desc_act\": true, \"static_groups\": true}'");
  roundtrip(src, "g4-row", "gptq --quant-config '{\"group_size\": -1}'");
  roundtrip(src, "g4-asym", "gptq --quant-config '{\"group_size\": 32, \"sym\": false}'");
  const json cfg = json::parse(slurp(tmp / "g4-asym" / "config.json"));
  EXPECT_EQ(cfg["quantization_config"]["checkpoint_format"], "gptq_v2");
  // Act-order's g_idx is not monotonic; static groups keep i / group_size.
  auto insp = mc_run("inspect --json " + q(tmp / "g4-act"));
  ASSERT_EQ(insp.rc, 0) << insp.out;
  EXPECT_EQ(json::parse(insp.out)["format"], "gptq");
  // A JSONL calibration file.
  std::ofstream(tmp / "cal.jsonl") << R"({"text": "The river begins as a thin thread of water high in the hills, where snow lingers."})" << "\n"
                                    << R"({"text": "Bread needs only flour, water, salt and time, and a baker who waits."})" << "\n";
  auto r = mc_run("convert " + q(src) + " gptq --quant-config '{\"group_size\": 32}' --calibration " +
                  q(tmp / "cal.jsonl") + " --calibration-samples 4 --seq-len 16 --json -o " + q(tmp / "jsonl"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["info"]["calibration"]["source"], (tmp / "cal.jsonl").string());
  auto bad = mc_run("convert " + q(src) + " gptq --quant-config '{\"group_size\": 32}' --calibration " +
                    q(tmp / "cal.jsonl") + " --seq-len 4096 -o " +
                    q(tmp / "too-long"));
  EXPECT_EQ(bad.rc, 2) << bad.out;
  EXPECT_NE(bad.out.find("fewer than --seq-len 4096"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace mc::test
