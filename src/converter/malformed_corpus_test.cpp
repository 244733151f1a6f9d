// The malformed-input corpus: tests/py/malformed_corpus.py derives ~150 small broken inputs
// (safetensors, HF directories, sharded indexes, PyTorch zips and pickles, GGUF, MLX, Megatron,
// llama2.c, tokenizer files, configs for --fake-weight) from good tiny models this test writes,
// with the exit code each of convert/inspect/validate must give (its table). For every case and
// command: that exact code (never 70 or a signal), its output naming the broken file, nothing at
// the output path and no temporary left beside it, and the input's bytes unchanged.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

const char* kCorpusConfig = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64,
  "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
  "num_key_value_heads": 1, "max_position_embeddings": 64, "tie_word_embeddings": false, "torch_dtype": "float32"})";

TEST(MalformedCorpus, EveryCaseGetsItsCodeNamesTheFileAndLeavesNothing) {
  ASSERT_TRUE(fs::exists(modelconvert_binary())) << modelconvert_binary();
  TempDir tmp;
  const fs::path base = tmp / "base";
  fs::create_directories(base / "cfg");
  std::ofstream(base / "cfg" / "config.json") << kCorpusConfig;
  // The good models the corpus is derived from (a tokenizer.json beside the HF one).
  const std::string cfg = q(base / "cfg" / "config.json");
  for (const auto& [fmt, out] : std::vector<std::pair<std::string, std::string>>{
           {"hf", "hf"}, {"pytorch", "model.bin"}, {"gguf", "model.gguf"}, {"mlx --quant 4bit", "mlx"},
           {"megatron", "megatron"}}) {
    auto r = mc_run("convert " + cfg + " " + fmt + " --fake-weight --fake-weight-init random -o " + q(base / out));
    ASSERT_EQ(r.rc, 0) << fmt << "\n" << r.out;
  }
  std::ofstream(base / "hf" / "tokenizer.json")
      << R"({"version": "1.0", "model": {"type": "WordLevel", "vocab": {"a": 0, "<unk>": 1}, "unk_token": "<unk>"}})";
  std::string gen;
  ASSERT_EQ(run_python("malformed_corpus.py " + q(base) + " " + q(tmp / "corpus"), &gen), 0) << gen;
  const auto manifest = read_json_file(tmp / "corpus" / "manifest.json");
  ASSERT_TRUE(manifest && manifest->size() >= 100) << gen;

  struct Job {
    json c;
    std::string cmd;
  };
  std::vector<Job> jobs;
  for (const auto& c : *manifest)
    for (const char* cmd : {"convert", "inspect", "validate"})
      if (!c[cmd].is_null()) jobs.push_back({c, cmd});
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::vector<std::string> failures;
  auto worker = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      const auto& [c, cmd] = jobs[i];
      const std::string name = c["name"];
      const fs::path input = tmp / "corpus" / c["input"].get<std::string>();
      const fs::path outdir = tmp / "out" / (name + "-" + cmd);
      fs::create_directories(outdir);
      std::string args = cmd + " " + q(input);
      if (c.contains("from")) args += " --from " + c["from"].get<std::string>();
      if (cmd == "convert") {
        args += " hf -o " + q(outdir / "o");
        for (const auto& a : c["args"]) args += " " + a.get<std::string>();
      }
      const auto before = snapshot(input);
      std::string err;
      // validate's report and inspect's description go to stdout, errors to stderr: both are read.
      const int rc = run_command("timeout 60 " + q(modelconvert_binary()) + " " + args + " 2>&1", &err);
      std::vector<std::string> bad;
      // An open case (a known wrong code, listed in the table with the reason) must still end
      // as an input error of some kind: never success, a bug (70) or a signal.
      const bool open = c.contains("open");
      if (open ? (rc == 0 || rc == 70 || rc > 100) : rc != c[cmd].get<int>())
        bad.push_back("exit " + std::to_string(rc) + ", want " + std::to_string(c[cmd].get<int>()));
      if (c[cmd].get<int>() != 0 && err.find(c["names"].get<std::string>()) == std::string::npos)
        bad.push_back("the output does not name " + c["names"].get<std::string>());
      std::error_code ec;
      if (!fs::is_empty(outdir, ec)) bad.push_back("something was left in the output folder");
      if (snapshot(input) != before) bad.push_back("the input changed");
      if (!bad.empty()) {
        std::string msg = name + " / " + cmd + ":";
        for (const auto& b : bad) msg += " " + b + ";";
        std::lock_guard lk(mu);
        failures.push_back(msg + "\n    " + err);
      }
    }
  };
  std::thread t1(worker), t2(worker);
  t1.join();
  t2.join();
  std::sort(failures.begin(), failures.end());
  std::string all;
  for (const auto& f : failures) all += f + "\n";
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << jobs.size() << " runs failed:\n" << all;
  EXPECT_FALSE(fs::exists(tmp / "corpus" / "cases" / "pwnd")) << "a pickle ran";
}

}  // namespace
}  // namespace mc::test
