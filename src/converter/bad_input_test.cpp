// Bad input gets an input error code naming the file, found before anything is written: JSON
// nested deeper than any config (config.json, tokenizer.json), hyper-parameters over the hard
// limits (a GGUF or a config saying 10^9 layers fails at once instead of allocating), configs a
// family cannot be built from, and configs the weights disagree with (tensors missing: exit 4). Each case: the exit code,
// the file named, nothing at the output, the input unchanged, and well under a second.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli_fixture.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

const char* kBadConfig = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512,
  "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "torch_dtype": "float32"})";

std::string nested(size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

class BadInput : public ConfigFixture {
 protected:
  BadInput() : ConfigFixture(kBadConfig) {}
  // Runs `args`, expects exit `code` with `file` named in the output, and fast.
  void expect_fails(const std::string& args, int code, const std::string& file) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = mc_run(args);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.rc, code) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(file), std::string::npos) << args << "\n" << r.out;
    EXPECT_LT(s, 5.0) << args;
  }
};

TEST_F(BadInput, DeeplyNestedConfigIsRefused) {
  // A config alone (--fake-weight): an unknown key 50,000 arrays deep.
  json cfg = json::parse(kBadConfig);
  std::string text = cfg.dump();
  text.insert(text.size() - 1, ", \"junk\": " + nested(50000));
  put(config_path(), text);
  expect_fails("convert " + q(config_path()) + " safetensors --fake-weight -o " + q(tmp / "o"), 6,
               "config.json");
  EXPECT_FALSE(fs::exists(tmp / "o"));
  // An HF directory whose config nests a known key 100,000 deep: inspect, validate, convert.
  put(config_path(), kBadConfig);
  const fs::path src = make("hf", "src");
  std::string deep = slurp(src / "config.json");
  deep.insert(deep.rfind('}'), ", \"rope_scaling\": " + nested(100000, "{}"));
  put(src / "config.json", deep);
  const auto before = snapshot(src);
  expect_fails("inspect " + q(src), 6, "config.json");
  expect_fails("validate " + q(src), 6, "config.json");
  expect_fails("convert " + q(src) + " gguf -o " + q(tmp / "o.gguf"), 6, "config.json");
  auto r = mc_run("validate " + q(src));
  EXPECT_NE(r.out.find("nested more than 128 levels"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "o.gguf"));
  EXPECT_EQ(snapshot(src), before);
  // Depth 100 is fine (a legitimate, if odd, config).
  std::string ok = slurp(config_path());
  ok.insert(ok.size() - 1, ", \"junk\": " + nested(100));
  put(config_path(), ok);
  EXPECT_EQ(mc_run("convert " + q(config_path()) + " safetensors --fake-weight -o " + q(tmp / "o")).rc, 0);
}

TEST_F(BadInput, DeeplyNestedTokenizerJsonIsRefused) {
  const fs::path tj = tmp / "tokenizer.json";
  put(tj, R"({"version": "1.0", "added_tokens": [], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": )" +
              nested(100000, "\"a b\"") + "}}");
  expect_fails("tokenize " + q(tj) + " --text hello", 6, "tokenizer.json");
}

TEST_F(BadInput, BillionLayerGgufFailsFastWithoutAllocating) {
  const fs::path g = make("gguf", "m.gguf");
  std::string bytes = slurp(g);
  const std::string key = "llama.block_count";
  const size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  // key, then the value type (u32 = 4) and the value.
  const size_t v = at + key.size() + 4;
  ASSERT_EQ(uint8_t(bytes[at + key.size()]), 4u);
  const uint32_t billion = 1000000000u;
  for (int i = 0; i < 4; ++i) bytes[v + size_t(i)] = char((billion >> (8 * i)) & 0xff);
  put(g, bytes);
  for (const std::string& args : {"validate " + q(g), "check " + q(g) + " --ids 1,2",
                                  "convert " + q(g) + " hf -o " + q(tmp / "out")}) {
    expect_fails(args, 6, "m.gguf");
    auto r = mc_run(args);
    EXPECT_NE(r.out.find("1000000000, over the limit of 1024"), std::string::npos) << args << "\n" << r.out;
  }
  // inspect still describes the file (as it does any GGUF it cannot convert) and says why.
  auto r = mc_run("inspect " + q(g));
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("'num_hidden_layers' is 1000000000, over the limit of 1024"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "out"));
  EXPECT_EQ(slurp(g), bytes);
}

TEST_F(BadInput, BillionLayerConfigFailsFast) {
  json cfg = json::parse(kBadConfig);
  cfg["num_hidden_layers"] = 1000000000;
  put(config_path(), cfg.dump());
  expect_fails("convert " + q(config_path()) + " safetensors --fake-weight -o " + q(tmp / "o"), 6,
               "config.json");
  EXPECT_FALSE(fs::exists(tmp / "o"));
  put(config_path(), kBadConfig);
  const fs::path src = make("hf", "src");
  cfg["vocab_size"] = 512;
  cfg["num_hidden_layers"] = 2;
  cfg["hidden_size"] = int64_t(1) << 40;
  put(src / "config.json", cfg.dump());
  for (const std::string& args : {"check " + q(src) + " --ids 1,2", "validate " + q(src),
                                  "convert " + q(src) + " gguf -o " + q(tmp / "o.gguf")}) {
    expect_fails(args, 6, "config.json");
    EXPECT_NE(mc_run(args).out.find("'hidden_size' is 1099511627776, over the limit"), std::string::npos) << args;
  }
  EXPECT_FALSE(fs::exists(tmp / "o.gguf"));
}

TEST_F(BadInput, MlxConfigMissingOrMistypedFieldsAreInputErrors) {
  const fs::path mlx = make("mlx", "mlx");
  const std::string good = slurp(mlx / "config.json");
  for (const std::string edit : {"drop vocab_size", "hidden_size as a string"}) {
    json cfg = json::parse(good);
    if (edit == "drop vocab_size") cfg.erase("vocab_size");
    else cfg["hidden_size"] = "64";
    put(mlx / "config.json", cfg.dump());
    const auto before = snapshot(mlx);
    expect_fails("validate " + q(mlx), 6, "config.json");
    expect_fails("convert " + q(mlx) + " hf -o " + q(tmp / "o"), 6, "config.json");
    auto r = mc_run("convert " + q(mlx) + " hf -o " + q(tmp / "o"));
    EXPECT_NE(r.out.find(edit == "drop vocab_size" ? "'vocab_size' is missing" : "'hidden_size' is not an integer"),
              std::string::npos)
        << r.out;
    EXPECT_FALSE(fs::exists(tmp / "o")) << edit;
    EXPECT_EQ(snapshot(mlx), before);
  }
}

TEST_F(BadInput, ConfigsTheWeightsDisagreeWithAreMissingTensors) {
  const fs::path src = make("hf", "src");
  // More layers in the config than in the weights.
  json cfg = json::parse(slurp(src / "config.json"));
  cfg["num_hidden_layers"] = 3;
  put(src / "config.json", cfg.dump());
  expect_fails("convert " + q(src) + " gguf -o " + q(tmp / "o.gguf"), 4, "config.json");
  auto r = mc_run("convert " + q(src) + " gguf -o " + q(tmp / "o.gguf"));
  EXPECT_NE(r.out.find("model.layers.2.input_layernorm.weight"), std::string::npos) << r.out;
  expect_fails("validate " + q(src), 4, "model.layers.2.input_layernorm.weight");
  EXPECT_FALSE(fs::exists(tmp / "o.gguf"));
  // The final norm missing (renamed in the header: same length, still a valid file).
  cfg["num_hidden_layers"] = 2;
  put(src / "config.json", cfg.dump());
  std::string st = slurp(src / "model.safetensors");
  const size_t at = st.find("\"model.norm.weight\"");
  ASSERT_NE(at, std::string::npos);
  st.replace(at, 19, "\"model.norx.weight\"");
  put(src / "model.safetensors", st);
  const auto before = snapshot(src);
  expect_fails("convert " + q(src) + " mlx -o " + q(tmp / "o"), 4, "config.json");
  r = mc_run("convert " + q(src) + " mlx -o " + q(tmp / "o"));
  EXPECT_NE(r.out.find("'model.norm.weight'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("bug"), std::string::npos) << r.out;
  expect_fails("validate " + q(src), 4, "model.norm.weight");
  EXPECT_FALSE(fs::exists(tmp / "o"));
  EXPECT_EQ(snapshot(src), before);
}

TEST_F(BadInput, ConfigThatIsADirectoryIsNamed) {
  const fs::path src = make("hf", "src");
  fs::remove(src / "config.json");
  fs::create_directories(src / "config.json");
  for (const std::string& args : {"convert " + q(src) + " gguf -o " + q(tmp / "o.gguf"), "validate " + q(src)}) {
    expect_fails(args, 6, "config.json");
    auto r = mc_run(args);
    EXPECT_NE(r.out.find("not a regular file"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("9223372036854775807"), std::string::npos) << r.out;
  }
  EXPECT_FALSE(fs::exists(tmp / "o.gguf"));
}

}  // namespace
}  // namespace mc::test
