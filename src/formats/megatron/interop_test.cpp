// Megatron files against the real PyTorch: models made by tests/py/megatron_models.py, written by
// us, loaded with torch.load and rebuilt by tests/py/megatron_oracle.py (written from formats.md
// §9), read back and compared byte for byte; checkpoints written the way Megatron's own saver
// does are read too (true vocabulary from --vocab-size or the tokenizer). One CLI round trip.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/thread_pool.h"
#include "formats/megatron/megatron.h"
#include "formats/safetensors/safetensors.h"
#include "io/mapped_file.h"
#include "testutil.h"

namespace mc::megatron {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

using test::q;

void python_ok(const std::string& args) {
  std::string out;
  ASSERT_EQ(test::run_python(args, &out), 0) << args << "\n" << out;
}

// An HF directory read with the safetensors reader (the hf engine is another area).
Model load_hf(const fs::path& dir) {
  Model m;
  auto text = io::read_text_file((dir / "config.json").string());
  EXPECT_TRUE(text.ok());
  m.config_text = *text;
  m.config = ojson::parse(m.config_text);
  auto st = safetensors::open_path(dir);
  EXPECT_TRUE(st.ok()) << st.error().render();
  m.tensors = std::move(st->tensors);
  m.extra_files.push_back({"generation_config.json", dir / "generation_config.json", std::nullopt});
  return m;
}

Status write_meg(const Model& m, const fs::path& out, int tp, int pp, const std::string& naming) {
  static ThreadPool pool(2);
  formats::WriteOptions o;
  o.pool = &pool;
  o.tensor_parallel = tp;
  o.pipeline_parallel = pp;
  o.naming = naming;
  fs::create_directories(out);
  auto r = write(m, out, o);
  if (!r) return r.error();
  return {};
}

void expect_same(const Model& a, const Model& b, const std::string& what) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size()) << what;
  for (const auto& t : a.tensors) {
    const TensorEntry* u = b.tensors.find(t.name);
    ASSERT_NE(u, nullptr) << what << " " << t.name;
    ASSERT_EQ(u->shape, t.shape) << what << " " << t.name;
    auto x = read_all(t), y = read_all(*u);
    ASSERT_TRUE(x.ok() && y.ok());
    ASSERT_TRUE(*x == *y) << what << ": " << t.name << " differs";
  }
}

class MegatronInterop : public ::testing::Test {
 protected:
  void SetUp() override { MC_SKIP_UNLESS_TORCH(); }
  TempDir tmp;
};

TEST_F(MegatronInterop, TorchLoadsEveryRankAndTheOracleRebuildsTheWeights) {
  struct Case {
    const char* arch;
    int tp, pp;
    const char* naming;
  };
  // llama: every layout; mistral and minicpm (tied): the most split ones.
  std::vector<Case> cases;
  for (int tp : {1, 2, 4})
    for (int pp : {1, 2})
      for (const char* n : {"legacy", "mcore"}) cases.push_back({"llama", tp, pp, n});
  cases.push_back({"mistral", 4, 2, "legacy"});
  cases.push_back({"mistral", 2, 1, "mcore"});
  cases.push_back({"minicpm", 4, 2, "mcore"});
  cases.push_back({"minicpm", 2, 2, "legacy"});
  cases.push_back({"minicpm", 1, 1, "legacy"});
  for (const char* arch : {"llama", "mistral", "minicpm"})
    python_ok("megatron_models.py " + q(tmp / arch) + " --arch " + arch + " --layers 4 --seed 3");
  std::string oracle = "megatron_oracle.py check";
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string what = std::string(c.arch) + " tp" + std::to_string(c.tp) + " pp" + std::to_string(c.pp) + " " +
                             c.naming;
    const Model src = load_hf(tmp / c.arch);
    const fs::path out = tmp / ("meg" + std::to_string(i));
    auto w = write_meg(src, out, c.tp, c.pp, c.naming);
    ASSERT_TRUE(w.ok()) << what << ": " << w.error().render();
    auto back = read(out, {});
    ASSERT_TRUE(back.ok()) << what << ": " << back.error().render();
    expect_same(src, *back, what);
    EXPECT_EQ(back->config_text, src.config_text) << what;
    oracle += " " + q(out) + "," + q(tmp / c.arch) + "," + std::to_string(c.tp) + "," + std::to_string(c.pp) + "," +
              c.naming;
  }
  python_ok(oracle);
}

TEST_F(MegatronInterop, ReadsCheckpointsWrittenLikeMegatronsSaver) {
  python_ok("megatron_models.py " + q(tmp / "hf") + " --arch llama --layers 4 --seed 5");
  const Model src = load_hf(tmp / "hf");
  for (const bool te : {false, true}) {
    const fs::path meg = tmp / (te ? "te" : "local");
    python_ok("megatron_oracle.py foreign " + q(tmp / "hf") + " " + q(meg) + " --tp 2 --pp 2" + (te ? " --te" : ""));
    // No true vocabulary anywhere: the padded table comes back, and says so.
    auto d = describe(meg);
    ASSERT_TRUE(d.ok()) << d.error().render();
    EXPECT_EQ((*d)["iteration"], 7);
    EXPECT_EQ((*d)["naming"], "mcore");
    EXPECT_EQ((*d)["vocab_size"], 256);
    EXPECT_NE((*d)["vocab_size_source"].get<std::string>().find("padded_vocab_size"), std::string::npos);
    formats::ReadOptions ro;
    ro.vocab_size = 250;
    auto back = read(meg, ro);
    ASSERT_TRUE(back.ok()) << back.error().render();
    expect_same(src, *back, te ? "te" : "local");
    EXPECT_EQ(back->config["vocab_size"], 250);
    EXPECT_EQ(back->config["num_key_value_heads"], 4);
    EXPECT_EQ(back->config["model_type"], "llama");
    EXPECT_EQ(back->config["tie_word_embeddings"], false);
    EXPECT_EQ(back->config["rope_theta"], 10000.0);
  }
  // The true size from a tokenizer beside the checkpoint.
  std::ofstream(tmp / "local" / "tokenizer.json") << R"({"model":{"type":"BPE","vocab":{"a":0,"b":249}},"added_tokens":[]})";
  auto d = describe(tmp / "local");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)["vocab_size"], 250);
  EXPECT_EQ((*d)["vocab_size_source"], "tokenizer (tokenizer.json)");
  auto back = read(tmp / "local", {});
  ASSERT_TRUE(back.ok());
  EXPECT_NE(back->find_extra("tokenizer.json"), nullptr);
}

// Qwen3 (head_dim 32 while hidden/heads is 8; tied): q/k norms as Megatron-Core's q_layernorm /
// k_layernorm. Our files checked by torch + the oracle; files written the way Megatron-Core's saver
// does (Transformer Engine names, no HF config) read back as qwen3; legacy naming refused.
TEST_F(MegatronInterop, Qwen3QkLayernormBothWays) {
  python_ok("megatron_models.py " + q(tmp / "hf") + " --arch qwen3 --layers 4 --seed 4");
  const Model src = load_hf(tmp / "hf");
  ASSERT_NE(src.tensors.find("model.layers.0.self_attn.q_norm.weight"), nullptr);
  std::string oracle = "megatron_oracle.py check";
  for (int tp : {1, 2})
    for (int pp : {1, 2}) {
      const std::string what = "qwen3 tp" + std::to_string(tp) + " pp" + std::to_string(pp);
      const fs::path out = tmp / ("meg" + std::to_string(tp) + std::to_string(pp));
      auto w = write_meg(src, out, tp, pp, "mcore");
      ASSERT_TRUE(w.ok()) << what << ": " << w.error().render();
      auto back = read(out, {});
      ASSERT_TRUE(back.ok()) << what << ": " << back.error().render();
      expect_same(src, *back, what);
      EXPECT_EQ(back->config_text, src.config_text) << what;
      oracle += " " + q(out) + "," + q(tmp / "hf") + "," + std::to_string(tp) + "," + std::to_string(pp) + ",mcore";
    }
  python_ok(oracle);

  python_ok("megatron_oracle.py foreign " + q(tmp / "hf") + " " + q(tmp / "te") + " --tp 2 --pp 2 --te");
  formats::ReadOptions ro;
  ro.vocab_size = 250;
  auto back = read(tmp / "te", ro);
  ASSERT_TRUE(back.ok()) << back.error().render();
  expect_same(src, *back, "te");
  EXPECT_EQ(back->config["model_type"], "qwen3");
  EXPECT_EQ(back->config["architectures"][0], "Qwen3ForCausalLM");
  EXPECT_EQ(back->config["head_dim"], 32);
  EXPECT_EQ(back->config["num_key_value_heads"], 4);
  EXPECT_EQ(back->config["tie_word_embeddings"], true);

  const std::string bin = test::modelconvert_binary().string();
  std::string out;
  EXPECT_EQ(test::run_command(bin + " convert " + q(tmp / "hf") + " megatron --megatron-format legacy -o " +
                                  q(tmp / "legacy") + " 2>&1", &out), 2) << out;
  EXPECT_NE(out.find("q/k norms"), std::string::npos) << out;
  EXPECT_NE(out.find("mcore"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp / "legacy"));
}

TEST_F(MegatronInterop, CommandLineRoundTrip) {
  ASSERT_TRUE(fs::exists(test::modelconvert_binary())) << test::modelconvert_binary();
  python_ok("megatron_models.py " + q(tmp / "hf") + " --arch minicpm --layers 4 --seed 9");
  const std::string bin = test::modelconvert_binary().string();
  std::string out;
  ASSERT_EQ(test::run_command(bin + " convert " + q(tmp / "hf") + " hf2megatron --tp 2 --pp 2 --megatron-format legacy -o " +
                                  q(tmp / "meg"), &out), 0) << out;
  ASSERT_EQ(test::run_command(bin + " convert " + q(tmp / "meg") + " hf -o " + q(tmp / "back"), &out), 0) << out;
  // inspect shows the layout it found (Engine::describe).
  ASSERT_EQ(test::run_command(bin + " inspect --json " + q(tmp / "meg"), &out), 0) << out;
  const auto insp = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_EQ(insp["format"], "megatron");
  EXPECT_EQ(insp["details"]["tensor_parallel"], 2) << out;
  EXPECT_EQ(insp["details"]["pipeline_parallel"], 2) << out;
  EXPECT_EQ(insp["details"]["naming"], "legacy") << out;
  const Model a = load_hf(tmp / "hf"), b = load_hf(tmp / "back");
  expect_same(a, b, "cli");
  std::ifstream f1(tmp / "hf" / "config.json"), f2(tmp / "back" / "config.json");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(f1), {}), std::string(std::istreambuf_iterator<char>(f2), {}));
  EXPECT_TRUE(fs::exists(tmp / "back" / "generation_config.json"));
}

}  // namespace
}  // namespace mc::megatron
