// Test helper for the tool's commands: runs the program with private state, config and hub
// cache folders (never the user's), and makes tiny fake-weight models with it.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {

class Sandbox {
 public:
  Sandbox() { fs::create_directories(tmp_ / "work"); }
  const TempDir& tmp() const { return tmp_; }
  fs::path operator/(const std::string& s) const { return tmp_ / s; }
  fs::path work() const { return tmp_ / "work"; }

  // The environment every run gets: private folders, no hub or toolkit settings inherited.
  std::string env() const {
    return "env -u HF_ENDPOINT -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN -u HF_HUB_OFFLINE -u TRANSFORMERS_OFFLINE "
           "-u HF_HUB_CACHE -u MTK_CLOUD_PATH -u MODELCONVERT_THREADS -u MODELCONVERT_HF_ENDPOINT "
           "-u MODELCONVERT_MTK_CLOUD_PATH -u MODELCONVERT_MAX_WORKERS -u MODELCONVERT_MAX_RETRIES "
           "-u MODELCONVERT_HISTORY XDG_STATE_HOME=" +
           q(tmp_ / "state") + " XDG_CONFIG_HOME=" + q(tmp_ / "cfg") + " HF_HOME=" + q(tmp_ / "hf") + " ";
  }
  // `modelconvert ARGS` in the work folder, stdout and stderr together.
  CliRun run(const std::string& args, const std::string& extra_env = "") const {
    CliRun r;
    r.rc = run_command("cd " + q(work()) + " && " + env() + extra_env + " " + modelconvert_binary().string() + " " + args,
                       &r.out);
    return r;
  }
  // The same with stdout alone in `out` (stderr in `err`).
  struct Split {
    int rc = -1;
    std::string out, err;
  };
  Split run_split(const std::string& args, const std::string& extra_env = "") const {
    Split s;
    s.rc = run_command("( cd " + q(work()) + " && " + env() + extra_env + " " + modelconvert_binary().string() + " " + args +
                           " 2>" + q(tmp_ / "stderr.txt") + " )",
                       &s.out);
    s.err = slurp(tmp_ / "stderr.txt");
    return s;
  }
  fs::path history_file() const { return tmp_ / "state" / "modelconvert" / "history.jsonl"; }
  std::vector<nlohmann::json> history() const {
    std::vector<nlohmann::json> out;
    std::ifstream f(history_file());
    std::string line;
    while (std::getline(f, line))
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  // A tiny Llama config.json (256 vocab, 2 layers, hidden 64) at `path`.
  static void write_config(const fs::path& path, int hidden = 64, int vocab = 256, int layers = 2) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << nlohmann::json{{"architectures", {"LlamaForCausalLM"}},
                                          {"model_type", "llama"},
                                          {"vocab_size", vocab},
                                          {"hidden_size", hidden},
                                          {"intermediate_size", hidden * 2},
                                          {"num_hidden_layers", layers},
                                          {"num_attention_heads", 4},
                                          {"num_key_value_heads", 2},
                                          {"torch_dtype", "float32"}}
                               .dump(2);
  }
  // An HF directory with random fake weights, made by the program itself.
  void make_model(const fs::path& dir, int seed = 1) const {
    write_config(tmp_ / "cfg-src" / "config.json");
    auto r = run("convert " + q(tmp_ / "cfg-src" / "config.json") + " hf --fake-weight --fake-weight-init random --seed " +
                 std::to_string(seed) + " -o " + q(dir));
    ASSERT_EQ(r.rc, 0) << r.out;
  }

 private:
  TempDir tmp_;
};

}  // namespace mc::test
