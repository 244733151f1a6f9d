// End-to-end tests of the modelconvert binary: real files made by PyTorch (tests/py), converted
// by us, checked by independent Python code (values, logits) and by the file system (safety).
#include <gtest/gtest.h>

#include <set>

#include <fstream>
#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

json read_json(const fs::path& p) { return json::parse(slurp(p)); }

void expect_python_ok(const std::string& script_args) {
  std::string out;
  EXPECT_EQ(run_python(script_args, &out), 0) << out;
}

class CliE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    MC_SKIP_UNLESS_TORCH();
    ASSERT_TRUE(fs::exists(modelconvert_binary())) << modelconvert_binary();
  }
  TempDir tmp;
};

TEST_F(CliE2E, CastToFp16IsTorchsCastAndKeepsTheRest) {
  make_model(tmp / "src", "--arch llama --dtype f32 --seed 1");
  auto r = mc_run("convert " + q(tmp / "src") + " safetensors --dtype fp16 -o " + q(tmp / "out"));
  ASSERT_EQ(r.rc, 0) << r.out;
  expect_python_ok("compare_models.py " + q(tmp / "src") + " " + q(tmp / "out") + " --mode cast:f16");
  json a = read_json(tmp / "src" / "config.json"), b = read_json(tmp / "out" / "config.json");
  EXPECT_EQ(b["torch_dtype"], "float16");
  a.erase("torch_dtype");
  b.erase("torch_dtype");
  EXPECT_EQ(a, b) << "config keys other than torch_dtype must be kept";
  EXPECT_EQ(slurp(tmp / "src" / "generation_config.json"), slurp(tmp / "out" / "generation_config.json"));
  auto v = mc_run("validate " + q(tmp / "out"));
  EXPECT_EQ(v.rc, 0) << v.out;
}

TEST_F(CliE2E, Bf16ToFp16MatchesTorch) {
  make_model(tmp / "src", "--arch mistral --dtype bf16 --seed 2");
  auto r = mc_run("convert " + q(tmp / "src") + " safetensors --dtype fp16 -o " + q(tmp / "out"));
  ASSERT_EQ(r.rc, 0) << r.out;
  expect_python_ok("compare_models.py " + q(tmp / "src") + " " + q(tmp / "out") + " --mode cast:f16");
}

TEST_F(CliE2E, UnchangedConfigIsCopiedVerbatim) {
  make_model(tmp / "src", "--arch qwen2 --seed 3");
  auto r = mc_run("convert " + q(tmp / "src") + " hf -o " + q(tmp / "out"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(slurp(tmp / "src" / "config.json"), slurp(tmp / "out" / "config.json"));
  expect_python_ok("compare_models.py " + q(tmp / "src") + " " + q(tmp / "out") + " --mode equal");
  // Qwen2 test model is tied: no lm_head is written and the config still says tied.
  EXPECT_TRUE(read_json(tmp / "out" / "config.json")["tie_word_embeddings"].get<bool>());
}

TEST_F(CliE2E, ReshardWritesIndexAndKeepsValues) {
  make_model(tmp / "src", "--arch llama --seed 4");
  auto r = mc_run("convert " + q(tmp / "src") + " hf --max-shard-size 100KB -o " + q(tmp / "out"));
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(fs::exists(tmp / "out" / "model.safetensors.index.json"));
  const json idx = read_json(tmp / "out" / "model.safetensors.index.json");
  std::set<std::string> shards;
  for (auto& [k, v] : idx["weight_map"].items()) shards.insert(v.get<std::string>());
  EXPECT_GE(shards.size(), 3u);
  for (const auto& s : shards) {
    EXPECT_TRUE(fs::exists(tmp / "out" / s)) << s;
    EXPECT_NE(s.find("-of-"), std::string::npos);
  }
  expect_python_ok("compare_models.py " + q(tmp / "src") + " " + q(tmp / "out") + " --mode equal");
  EXPECT_EQ(mc_run("validate " + q(tmp / "out")).rc, 0);
}

TEST_F(CliE2E, PytorchBinBothWays) {
  make_model(tmp / "src", "--arch llama --format bin --shards 2 --seed 5");
  auto r = mc_run("convert " + q(tmp / "src") + " safetensors -o " + q(tmp / "st"));
  ASSERT_EQ(r.rc, 0) << r.out;
  expect_python_ok("compare_models.py " + q(tmp / "src") + " " + q(tmp / "st") + " --mode equal");
  r = mc_run("convert " + q(tmp / "st") + " hf --weights-format bin -o " + q(tmp / "bin"));
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(fs::exists(tmp / "bin" / "pytorch_model.bin"));
  // compare_models loads .bin with torch.load(weights_only=True).
  expect_python_ok("compare_models.py " + q(tmp / "src") + " " + q(tmp / "bin") + " --mode equal");
}

TEST_F(CliE2E, SingleSafetensorsFileOutput) {
  make_model(tmp / "src", "--arch gpt2 --seed 6");
  auto r = mc_run("convert " + q(tmp / "src") + " safetensors --dtype bf16 -o " + q(tmp / "w.safetensors"));
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(fs::is_regular_file(tmp / "w.safetensors"));
  expect_python_ok("compare_models.py " + q(tmp / "src") + " " + q(tmp / "w.safetensors") + " --mode cast:bf16");
}

TEST_F(CliE2E, Mup2LlamaPreservesLogits) {
  make_model(tmp / "src", "--arch minicpm --seed 7");
  auto r = mc_run("convert " + q(tmp / "src") + " safetensors --mup2llama -o " + q(tmp / "out"));
  ASSERT_EQ(r.rc, 0) << r.out;
  const json cfg = read_json(tmp / "out" / "config.json");
  EXPECT_EQ(cfg["model_type"], "llama");
  EXPECT_EQ(cfg["architectures"][0], "LlamaForCausalLM");
  EXPECT_FALSE(cfg.contains("scale_emb"));
  EXPECT_FALSE(cfg.contains("dim_model_base"));
  EXPECT_FALSE(cfg["tie_word_embeddings"].get<bool>());
  const std::string ids = " --ids 1,5,9,42,7,100,3,77";
  expect_python_ok("ref_forward.py " + q(tmp / "src") + ids + " --out " + q(tmp / "a.json"));
  expect_python_ok("ref_forward.py " + q(tmp / "out") + ids + " --out " + q(tmp / "b.json"));
  expect_python_ok("logits_close.py " + q(tmp / "a.json") + " " + q(tmp / "b.json") + " --tol 1e-4 --relative");
}

TEST_F(CliE2E, Mup2LlamaRejectsNonMupModels) {
  make_model(tmp / "src", "--arch llama --seed 8");
  auto r = mc_run("convert " + q(tmp / "src") + " safetensors --mup2llama -o " + q(tmp / "out"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("MiniCPM"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

TEST_F(CliE2E, Llama2cStoriesMatchesRunC) {
  auto stories = fixture("llama2c/stories260K.bin");
  if (!stories) GTEST_SKIP() << "../shared/fixtures/llama2c/stories260K.bin absent";
  auto r = mc_run("convert " + q(*stories) + " hf -o " + q(tmp / "stories"));
  ASSERT_EQ(r.rc, 0) << r.out;
  const json cfg = read_json(tmp / "stories" / "config.json");
  EXPECT_EQ(cfg["rms_norm_eps"].get<double>(), 1e-5);
  EXPECT_EQ(cfg["num_key_value_heads"], 4);
  const std::string ids = " --ids 1,403,407,261,378,10,300,275";
  expect_python_ok("llama2c_ref.py " + q(*stories) + ids + " --out " + q(tmp / "a.json"));
  expect_python_ok("ref_forward.py " + q(tmp / "stories") + ids + " --out " + q(tmp / "b.json"));
  expect_python_ok("logits_close.py " + q(tmp / "a.json") + " " + q(tmp / "b.json") + " --tol 1e-4 --relative");
}

TEST_F(CliE2E, FakeWeightFromConfigAloneHasHfNamesAndShapes) {
  for (const char* arch : {"llama", "qwen2", "minicpm", "gpt2", "mistral"}) {
    SCOPED_TRACE(arch);
    const fs::path src = tmp / (std::string("src-") + arch), out = tmp / (std::string("fake-") + arch);
    make_model(src, std::string("--arch ") + arch + " --seed 9");
    auto r = mc_run("convert " + q(src / "config.json") + " safetensors --fake-weight -o " + q(out));
    ASSERT_EQ(r.rc, 0) << r.out;
    expect_python_ok("compare_models.py " + q(src) + " " + q(out) + " --mode shapes");
  }
}

TEST_F(CliE2E, FakeWeightYamlShapes) {
  {
    std::ofstream f(tmp / "shapes.yaml");
    f << "model.embed_tokens.weight: [16, 8]\nlm_head.weight:\n  shape: [16, 8]\n  dtype: f16\n";
  }
  make_model(tmp / "src", "--arch llama --seed 10");
  auto r = mc_run("convert " + q(tmp / "src") + " safetensors --fake-weight --fake-weight-config " +
                  q(tmp / "shapes.yaml") + " --json -o " + q(tmp / "out"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = mc_run("inspect --json " + q(tmp / "out"));
  ASSERT_EQ(j.rc, 0) << j.out;
  const json info = json::parse(j.out);
  ASSERT_EQ(info["tensors"], 2);
  EXPECT_EQ(info["tensor_list"][0]["shape"], json::array({16, 8}));
  EXPECT_EQ(info["dtypes"]["f16"], 128);
}

TEST_F(CliE2E, ExistingOutputNeedsForce) {
  make_model(tmp / "src", "--arch llama --seed 11");
  fs::create_directories(tmp / "out");
  { std::ofstream(tmp / "out" / "keep.txt") << "mine"; }
  auto r = mc_run("convert " + q(tmp / "src") + " hf -o " + q(tmp / "out"));
  EXPECT_EQ(r.rc, 8) << r.out;
  EXPECT_NE(r.out.find("--force"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(tmp / "out" / "keep.txt"), "mine");
  r = mc_run("convert " + q(tmp / "src") + " hf --force -o " + q(tmp / "out"));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "out" / "keep.txt"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "model.safetensors"));
}

TEST_F(CliE2E, CorruptInputLeavesNothingAndInputUntouched) {
  make_model(tmp / "src", "--arch llama --seed 12");
  const fs::path st = tmp / "src" / "model.safetensors";
  fs::resize_file(st, fs::file_size(st) - 100);  // truncated download
  const std::string before = slurp(st);
  auto r = mc_run("convert " + q(tmp / "src") + " safetensors --dtype fp16 -o " + q(tmp / "out"));
  EXPECT_EQ(r.rc, 6) << r.out;
  EXPECT_NE(r.out.find("model.safetensors"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".mc-tmp"), std::string::npos) << e.path();
  EXPECT_EQ(slurp(st), before);
}

TEST_F(CliE2E, InputFilesAreNeverModified) {
  make_model(tmp / "src", "--arch llama --format bin --seed 13");
  const auto t0 = fs::last_write_time(tmp / "src" / "pytorch_model.bin");
  const std::string before = slurp(tmp / "src" / "pytorch_model.bin");
  ASSERT_EQ(mc_run("convert " + q(tmp / "src") + " safetensors --dtype bf16 -o " + q(tmp / "o")).rc, 0);
  EXPECT_EQ(slurp(tmp / "src" / "pytorch_model.bin"), before);
  EXPECT_EQ(fs::last_write_time(tmp / "src" / "pytorch_model.bin"), t0);
}

TEST_F(CliE2E, DefaultOutputPathAndJsonResult) {
  make_model(tmp / "my-llama", "--arch llama --seed 14");
  auto r = mc_run("convert " + q(tmp / "my-llama") + " safetensors --dtype fp16 --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(fs::path(j["output"].get<std::string>()).filename(), "my-llama-safetensors");
  EXPECT_TRUE(fs::exists(tmp / "my-llama-safetensors" / "model.safetensors"));
  // Single-file targets get their extension: <name>[-quant].gguf, <name>.pt.
  for (const auto& [args, name] : {std::pair{"gguf --quant q8_0", "my-llama-q8_0.gguf"}, std::pair{"torchscript", "my-llama.pt"}}) {
    auto s = mc_run("convert " + q(tmp / "my-llama") + " " + args + " --quiet --json");
    ASSERT_EQ(s.rc, 0) << s.out;
    EXPECT_EQ(fs::path(json::parse(s.out)["output"].get<std::string>()).filename(), name);
    EXPECT_EQ(mc_run("validate " + q(tmp / name)).rc, 0) << name;
  }
}

TEST_F(CliE2E, UnsupportedTargetIsAClearError) {
  make_model(tmp / "src", "--arch llama --seed 15");
  for (const char* fmt : {"llama2c"}) {  // read-only: llama2.c checkpoints are inputs
    auto r = mc_run(std::string("convert ") + q(tmp / "src") + " " + fmt + " -o " + q(tmp / fmt));
    EXPECT_EQ(r.rc, 5) << fmt << ": " << r.out;
    EXPECT_NE(r.out.find("not supported yet"), std::string::npos) << r.out;
  }
  auto r = mc_run("convert " + q(tmp / "src") + " nosuchformat");
  EXPECT_EQ(r.rc, 2) << r.out;
}

TEST_F(CliE2E, InspectNamesEveryInputFormat) {
  make_model(tmp / "hf", "--arch llama --seed 16");
  make_model(tmp / "hfbin", "--arch llama --format bin --seed 16");
  // A TorchScript archive and a lone torch.save file, written by PyTorch itself.
  std::string out;
  ASSERT_EQ(run_command("/usr/bin/python3 -c \"import torch; m=torch.jit.script(torch.nn.Linear(2,2)); m.save('" +
                            (tmp / "m.pt").string() + "'); torch.save({'w': torch.ones(2)}, '" +
                            (tmp / "sd.pt").string() + "')\"",
                        &out),
            0)
      << out;
  ASSERT_EQ(mc_run("convert " + q(tmp / "hf") + " hf2megatron --quiet -o " + q(tmp / "meg")).rc, 0);
  fs::create_directories(tmp / "mlx");
  { std::ofstream(tmp / "mlx" / "config.json") << R"({"model_type":"llama","quantization":{"group_size":64,"bits":4}})"; }
  fs::create_directories(tmp / "gptq");
  { std::ofstream(tmp / "gptq" / "config.json") << R"({"model_type":"llama","quantization_config":{"quant_method":"gptq","bits":4}})"; }
  fs::create_directories(tmp / "awq");
  { std::ofstream(tmp / "awq" / "config.json") << R"({"model_type":"llama","quantization_config":{"quant_method":"awq","bits":4}})"; }
  { std::ofstream(tmp / "m.onnx", std::ios::binary) << std::string("\x08\x07\x12\x04test", 8); }
  std::vector<std::pair<fs::path, std::string>> cases = {
      {tmp / "hf", "hf"},          {tmp / "hfbin", "hf"},  {tmp / "hf" / "model.safetensors", "safetensors"},
      {tmp / "sd.pt", "pytorch"},  {tmp / "m.pt", "torchscript"}, {tmp / "meg", "megatron"},
      {tmp / "mlx", "mlx"},        {tmp / "gptq", "gptq"}, {tmp / "awq", "awq"},
      {tmp / "m.onnx", "onnx"},
  };
  if (auto g = fixture("gguf-vocab/ggml-vocab-llama-spm.gguf")) cases.push_back({*g, "gguf"});
  if (auto l = fixture("llama2c/stories260K.bin")) cases.push_back({*l, "llama2c"});
  for (const auto& [path, fmt] : cases) {
    auto r = mc_run("inspect --json " + q(path));
    ASSERT_EQ(r.rc, 0) << path << ": " << r.out;
    EXPECT_EQ(json::parse(r.out)["format"], fmt) << path;
  }
}

// inspect on a GGUF shows what the file stores (not the dequantized view): the llama-quantize
// file type, ggml types with bits per weight, every metadata key; and a GGUF of an architecture
// we cannot convert is still described, with the reason, and exits 0.
TEST_F(CliE2E, InspectGgufShowsStoredTypesAndForeignFiles) {
  make_model(tmp / "hf", "--arch llama --seed 4");
  ASSERT_EQ(mc_run("convert " + q(tmp / "hf") + " gguf --quant q8_0 --quiet -o " + q(tmp / "m.gguf")).rc, 0);
  auto r = mc_run("inspect --json " + q(tmp / "m.gguf"));
  ASSERT_EQ(r.rc, 0) << r.out;
  const json j = json::parse(r.out);
  const json& d = j["details"];
  EXPECT_EQ(d["file_type"], "q8_0");
  EXPECT_EQ(d["gguf_version"], 3);
  EXPECT_EQ(d["metadata"]["general.architecture"], "llama");
  uint64_t tensors = 0, bytes = 0, elems = 0;
  for (const auto& [name, t] : d["types"].items()) {
    EXPECT_TRUE(name == "Q8_0" || name == "F32") << name;
    tensors += t["tensors"].get<uint64_t>();
    bytes += t["bytes"].get<uint64_t>();
    elems += t["elements"].get<uint64_t>();
  }
  EXPECT_EQ(tensors, j["tensors"].get<uint64_t>());
  EXPECT_EQ(elems, j["parameters"].get<uint64_t>());
  // Q8_0 stores 34 bytes per 32 weights; the f32 norms pull the average up a little.
  EXPECT_EQ(d["types"]["Q8_0"]["bytes"].get<uint64_t>() * 32, d["types"]["Q8_0"]["elements"].get<uint64_t>() * 34);
  EXPECT_NEAR(d["bits_per_weight"].get<double>(), 800.0 * double(bytes) / double(elems) / 100.0, 0.006);
  EXPECT_GT(d["bits_per_weight"].get<double>(), 8.5);

  auto falcon = fixture("gguf-vocab/ggml-vocab-falcon.gguf");
  if (!falcon) GTEST_SKIP() << "fixture gguf-vocab absent: the foreign-architecture half skipped";
  auto f = mc_run("inspect --json " + q(*falcon));
  ASSERT_EQ(f.rc, 0) << f.out;
  const json fj = json::parse(f.out);
  EXPECT_EQ(fj["readable"], false);
  EXPECT_NE(fj.value("note", "").find("'falcon' cannot be converted"), std::string::npos) << f.out;
  EXPECT_EQ(fj["details"]["gguf_arch"], "falcon");
  EXPECT_EQ(fj["details"]["embedded_tokenizer"], "gpt2 (65024 tokens, pre falcon)");
  // A family we do convert (phi3) is named by its HF architecture, with its vocabulary.
  auto phi = fixture("gguf-vocab/ggml-vocab-phi-3.gguf");
  ASSERT_TRUE(phi);
  auto p = mc_run("inspect --json " + q(*phi));
  ASSERT_EQ(p.rc, 0) << p.out;
  const json pj = json::parse(p.out);
  EXPECT_EQ(pj["readable"], true);
  EXPECT_EQ(pj["architecture"], "Phi3ForCausalLM");
  EXPECT_EQ(pj["details"]["embedded_tokenizer"], "llama (32064 tokens, pre default)");
}

TEST_F(CliE2E, ListAndVersion) {
  auto r = mc_run("list formats --json");
  ASSERT_EQ(r.rc, 0);
  const json j = json::parse(r.out);
  std::set<std::string> ids;
  for (const auto& row : j) ids.insert(row["id"].get<std::string>());
  for (const char* f : {"hf", "safetensors", "pytorch", "gguf", "onnx", "torchscript", "mlx", "gptq", "awq",
                        "megatron", "mtk", "llama2c"})
    EXPECT_TRUE(ids.count(f)) << f;
  EXPECT_EQ(mc_run("version").rc, 0);
  EXPECT_EQ(mc_run("list quantizations").rc, 0);
}

}  // namespace
}  // namespace mc::test
