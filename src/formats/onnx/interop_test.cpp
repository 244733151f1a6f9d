// Interop with the real consumers of our ONNX exports (ctest label: interop). Every family's tiny
// random HF model and its independent torch forward (tests/py/onnx_oracle.py: make_models.py +
// ref_forward.py, one process per test) are exported with `modelconvert convert ... onnx`;
//   - Debian's python3-onnx checker (full check, shape inference) accepts the file;
//   - onnxruntime (npm onnxruntime-node, tests/js/onnx_ort.mjs) runs it on the whole prompt,
//     incrementally with present.* fed back, and on a left-padded batch of two plus one cached
//     step, each within 1e-4 of the torch forward (fp16 weights: 1e-2 x the logit range);
//   - torch.onnx.export's files (optimum's naming) read back to weights that run exactly as the
//     source's;
//   - Transformers.js (npm @huggingface/transformers, tests/js/onnx_tfjs.mjs) loads the directory
//     offline: forward logits and greedy generate() equal the source's, its AutoTokenizer on the
//     tokenizer.json converted from tokenizer.model gives SentencePiece's ids, and the fp16
//     export stays within 1e-2 of the logit range.
// Skips with a message when node_modules, node, python3-torch or python3-onnx are missing.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <fstream>

#include "testutil.h"

namespace mc::onnx {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kIds = "1,5,9,33,100,7,250,3,64,12,77,200";
constexpr const char* kIds2 = "4,8,15,16,23";
constexpr const char* kStep = "42";

std::string skip_reason() {
  const auto root = test::repo_root();
  if (!fs::exists(root / "node_modules" / "onnxruntime-node" / "package.json") ||
      !fs::exists(root / "node_modules" / "@huggingface" / "transformers" / "package.json"))
    return "node_modules missing (run `npm ci` at the repository root): interop test skipped";
  if (test::run_command("node --version") != 0) return "node not installed: interop test skipped";
  if (!test::have_torch()) return "python3-torch not installed: interop test skipped";
  if (test::run_command("/usr/bin/python3 -c 'import onnx'") != 0)
    return "python3-onnx not installed: interop test skipped";
  return "";
}

double max_diff(const json& a, const json& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].size(), b[i].size());
    for (size_t j = 0; j < std::min(a[i].size(), b[i].size()); ++j)
      m = std::max(m, std::abs(a[i][j].get<double>() - b[i][j].get<double>()));
  }
  return m;
}

double range(const json& rows) {
  double lo = 1e30, hi = -1e30;
  for (const auto& r : rows)
    for (const auto& v : r) {
      lo = std::min(lo, v.get<double>());
      hi = std::max(hi, v.get<double>());
    }
  return hi - lo;
}

struct Case {
  std::string name, make_args, convert_args;
  std::string source;  // another case's source model to export ("" = its own)
  const std::string& src() const { return source.empty() ? name : source; }
};

class OnnxInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = skip_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
  }

  // The source models and their torch reference (one python process), then each exported.
  json make_and_export(const std::vector<Case>& cases, const std::string& extra_oracle_args = "") {
    std::string args = test::q(dir_.path()) + " --ids " + kIds + " --ids " + kIds2 + " --ids " + kIds + "," + kStep +
                       " --ids " + kIds2 + "," + kStep + " " + extra_oracle_args;
    for (const auto& c : cases)
      if (c.source.empty()) args += " " + test::q(c.name + "=" + c.make_args);
    std::string out;
    EXPECT_EQ(test::run_python("onnx_oracle.py " + args, &out), 0) << out;
    const json ref = test::last_json_line(out).value_or(json::object());
    for (const auto& c : cases) {
      const auto r = test::mc_run("convert " + test::q(dir_ / c.src()) + " onnx -o " + test::q(exported(c)) + " --quiet " +
                                  c.convert_args);
      EXPECT_EQ(r.rc, 0) << c.name << ": " << r.out;
    }
    return ref;
  }
  fs::path exported(const Case& c) const { return dir_ / (c.name + "-onnx"); }

  test::TempDir dir_;
};

// Debian's onnx checker accepts every family's export, and onnxruntime matches the torch forward
// on the whole prompt, incrementally, and on a left-padded batch with one cached step.
TEST_F(OnnxInterop, OnnxruntimeMatchesTorchForEveryFamily) {
  const std::vector<Case> cases{
      {"llama", "--arch llama --seed 3", ""},
      {"mistral", "--arch mistral --seed 4 --sliding-window 5", ""},  // window shorter than the prompt
      {"qwen2", "--arch qwen2 --seed 5", ""},
      {"minicpm", "--arch minicpm --seed 6", ""},
      {"gpt2", "--arch gpt2 --seed 7", ""},
      {"qwen3", "--arch qwen3 --seed 14", ""},
      {"phi3", "--arch phi3 --seed 15 --sliding-window 5", ""},
      {"gemma", "--arch gemma --seed 16", ""},
      {"llama3-rope", R"(--arch llama --seed 13 --rope-scaling {"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":16})", ""},
      {"llama-fp16", "", "--dtype fp16", "llama"},
      {"llama-ext", "", R"(--quant-config '{"external_data": true}')", "llama"},
  };
  auto file_of = [&](const Case& c) {
    return exported(c) / "onnx" / (c.convert_args == "--dtype fp16" ? "model_fp16.onnx" : "model.onnx");
  };
  const json ref = make_and_export(cases);
  std::string files;
  for (const auto& c : cases) files += " " + test::q(file_of(c));
  std::string o;
  ASSERT_EQ(test::run_python("onnx_check.py" + files, &o), 0) << o;
  std::vector<json> checked;
  for (size_t start = 0; (start = o.find('{', start)) != std::string::npos;) {
    const size_t end = o.find('\n', start);
    checked.push_back(json::parse(o.substr(start, end - start)));
    start = end;
  }
  ASSERT_EQ(checked.size(), cases.size()) << o;
  for (const auto& c : checked) {
    EXPECT_EQ(c["opsets"]["ai.onnx"], 17);
    EXPECT_EQ(c["ir_version"], 8);
    EXPECT_TRUE(c["inputs"]["past_key_values.0.key"]["dims"][1].is_number());
  }
  EXPECT_TRUE(checked.back()["initializers"]["lm_head.weight"]["external"].get<bool>());
  EXPECT_FALSE(checked.back()["initializers"]["const/i64_-1"]["external"].get<bool>());
  for (size_t i = 0; i < cases.size(); ++i)
    if (cases[i].name == "llama-fp16") {
      EXPECT_EQ(checked[i]["initializers"]["lm_head.weight"]["data_type"], 10);  // FLOAT16
    }
  auto cfg = test::read_json_file(exported(cases[3]) / "config.json");
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ((*cfg)["model_type"], "llama");  // minicpm folded
  EXPECT_FALSE(cfg->contains("scale_emb"));

  ASSERT_EQ(test::run_command(fmt::format("node tests/js/onnx_ort.mjs {} {} {}{}", kIds, kIds2, kStep, files), &o), 0) << o;
  const auto ort = test::last_json_line(o);
  ASSERT_TRUE(ort.has_value()) << o;
  for (const auto& c : cases) {
    const json& r = ref["models"][c.src()]["logits"];
    const json& x = (*ort)[file_of(c).string()];
    ASSERT_EQ(r.size(), 4u) << c.name;
    ASSERT_TRUE(x.is_object()) << c.name;
    // f32: 1e-4; f16 weights: 1e-2 x the logit range (the check rule for f16)
    const double tol = c.convert_args == "--dtype fp16" ? 1e-2 * std::max(1.0, range(r[0])) : 1e-4;
    EXPECT_LE(max_diff(x["full"], r[0]), tol) << c.name << " full prompt";
    EXPECT_LE(max_diff(x["incremental"], r[0]), tol) << c.name << " incremental";
    EXPECT_LE(max_diff(x["batch"][0], r[2]), tol) << c.name << " batch row 0 + cached step";
    EXPECT_LE(max_diff(x["batch"][1], r[3]), tol) << c.name << " batch row 1 (left-padded) + cached step";
  }
}

// What optimum writes comes from torch.onnx.export: Linear weights transposed into
// "onnx::MatMul_N" read by "/model/layers.0/self_attn/q_proj/MatMul", a tied head as a transposed
// copy of the embedding. Read back, the weights must run exactly as the source's (check
// --compare at the f32 rule) for a Llama and a Qwen2 (biases, tied embeddings).
TEST_F(OnnxInterop, ReadsTorchExportedOnnxBackToHfWeights) {
  std::string pairs;
  for (const char* f : {"llama", "qwen2"}) {
    test::make_model(dir_ / f, fmt::format("--arch {} --seed 12", f));
    pairs += " " + test::q(dir_ / f) + " " + test::q(dir_ / (std::string(f) + "-torch"));
  }
  std::string o;
  ASSERT_EQ(test::run_python("torch_onnx_export.py" + pairs, &o), 0) << o;
  for (const char* f : {"llama", "qwen2"}) {
    const fs::path exp = dir_ / (std::string(f) + "-torch"), back = dir_ / (std::string(f) + "-back");
    auto r = test::mc_run("convert " + test::q(exp / "model.onnx") + " safetensors --quiet -o " + test::q(back));
    ASSERT_EQ(r.rc, 0) << r.out;
    r = test::mc_run("check " + test::q(back) + " --compare " + test::q(dir_ / f) + " --ids 1,2,3,4,5,6 --json");
    EXPECT_EQ(r.rc, 0) << f << ": " << r.out;
    const json j = json::parse(r.out.substr(r.out.find('{')), nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_EQ(j["comparison"]["max_abs_diff"], 0.0) << r.out;
  }
}

// Transformers.js loads each family's directory offline (MiniCPM as llama): fp32 forward logits
// and greedy generate() equal torch's, fp16 stays within 1e-2 of the logit range; on a Llama with
// the Llama 2 SentencePiece tokenizer, AutoTokenizer on the tokenizer.json we converted from
// tokenizer.model gives SentencePiece's ids after the BOS; on a GPT-2 with vocab.json +
// merges.txt, ours gives the ids of GPT-2's own tokenizer.json (same engine, HF's file).
TEST_F(OnnxInterop, TransformersJsLoadsOfflineGeneratesAndTokenizes) {
  const auto spm = test::fixture("tokenizers/llama2-spm/tokenizer.model");
  std::vector<Case> cases;
  for (const std::string f : {"llama", "mistral", "qwen2", "minicpm", "gpt2", "qwen3", "phi3", "gemma"}) {
    cases.push_back({f, "--arch " + f + " --seed 11", ""});
    cases.push_back({f + "-fp16", "", "--dtype fp16", f});
  }
  // External data: Transformers.js finds model.onnx_data (config's transformers.js_config).
  cases.push_back({"llama-ext", "", R"(--quant-config '{"external_data": true}')", "llama"});
  const std::vector<std::string> texts{"Hello world", "The quick brown fox jumps over the lazy dog.",
                                       "  two leading spaces\nand a newline", "naïve café 日本語 🙂", "pi is 3.14159"};
  std::ofstream(dir_ / "texts.json") << json(texts).dump();
  std::string extra = " --texts " + test::q(dir_ / "texts.json");
  const auto bpe = test::fixture("tokenizers/gpt2/tokenizer.json");
  if (bpe) {
    cases.push_back({"bpe", "--arch gpt2 --seed 9 --vocab 50257", ""});
    extra += " --bpe " + test::q(bpe->parent_path());
  }
  if (spm) {
    cases.push_back({"spm", "--arch llama --seed 8 --vocab 32000", ""});
    extra += " --spm " + test::q(*spm);
  }
  const json ref = make_and_export(cases, extra);
  std::string specs;
  for (const auto& c : cases)
    specs += " " + test::q(fs::absolute(exported(c)).string() + (c.convert_args == "--dtype fp16" ? ":fp16" : ":fp32"));
  if (bpe) specs += " " + test::q(fs::absolute(bpe->parent_path()).string() + ":tokenizer");
  std::string o;
  ASSERT_EQ(test::run_command(fmt::format("node tests/js/onnx_tfjs.mjs {} 8 {}{}", kIds, test::q(dir_ / "texts.json"), specs), &o), 0) << o;
  const auto tj = test::last_json_line(o);
  ASSERT_TRUE(tj.has_value()) << o;
  for (const auto& c : cases) {
    const bool fp16 = c.convert_args == "--dtype fp16";
    const json& x = (*tj)[fs::absolute(exported(c)).string() + (fp16 ? ":fp16" : ":fp32")];
    ASSERT_TRUE(x.is_object()) << c.name;
    const json& r = ref["models"][c.src()];
    const std::string family = c.src() == "minicpm" || c.src() == "spm" ? "llama" : c.src() == "bpe" ? "gpt2" : c.src();
    EXPECT_EQ(x["model_type"], family) << c.name;
    const double d = max_diff(x["logits"], r["logits"][0]);
    if (fp16) {
      EXPECT_LE(d, 1e-2 * std::max(1.0, range(r["logits"][0]))) << c.name;
    } else {
      EXPECT_LE(d, 1e-4) << c.name;
      // generate() runs with min_new_tokens, which masks EOS (id 2 in the test models) until the
      // end: the continuations agree up to the first EOS of the reference.
      std::vector<int> want = r["greedy"].get<std::vector<int>>(), got = x["generated"].get<std::vector<int>>();
      if (auto eos = std::find(want.begin(), want.end(), 2); eos != want.end() && c.src() != "gpt2" && c.src() != "bpe") {
        want.erase(eos, want.end());
        got.resize(std::min(got.size(), want.size()));
      }
      EXPECT_FALSE(want.empty()) << c.name;
      EXPECT_EQ(got, want) << c.name;
    }
  }
  if (bpe) {
    const json& ours = (*tj)[fs::absolute(exported({"bpe", "", ""})).string() + ":fp32"]["tokens"];
    const json& hf = (*tj)[fs::absolute(bpe->parent_path()).string() + ":tokenizer"]["tokens"];
    EXPECT_EQ(ours.size(), texts.size());
    EXPECT_EQ(ours, hf);
    EXPECT_EQ(hf[0], json::array({15496, 995}));  // "Hello world" in GPT-2
  }
  if (!spm) GTEST_SKIP() << "fixture tokenizers/llama2-spm/tokenizer.model not available: tokenizer part skipped";
  const fs::path out = exported(cases.back());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const json& got = (*tj)[fs::absolute(out).string() + ":fp32"]["tokens"];
  ASSERT_EQ(got.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    json want = json::array({1});
    for (const auto& id : ref["spm_ids"][i]) want.push_back(id);
    EXPECT_EQ(got[i], want) << texts[i];
  }
}

}  // namespace
}  // namespace mc::onnx
