// The command line's contract: argument errors exit 2, options a writer does not take are refused
// before anything is written, the progress line appears on a terminal only, and the lists are
// generated from the engine and family tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

class CliContract : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(modelconvert_binary())) << modelconvert_binary();
    std::ofstream(tmp / "config.json")
        << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512,
              "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "torch_dtype": "float32"})";
  }
  std::string cfg() const { return q(tmp / "config.json"); }
  TempDir tmp;
};

TEST_F(CliContract, EveryArgumentErrorExitsTwoWithAUsageHint) {
  for (const char* args : {"convert --no-such-option x gguf", "convert", "convert only-input",
                           "", "frobnicate", "check", "list", "list nonsense",
                           "convert x gguf --tp notanumber", "convert x megatron --tp 0"}) {
    auto r = mc_run(args);
    EXPECT_EQ(r.rc, 2) << "modelconvert " << args << "\n" << r.out;
    EXPECT_NE(r.out.find("--help"), std::string::npos) << r.out;
  }
  auto j = mc_run("convert --no-such-option x gguf --json");
  EXPECT_EQ(j.rc, 2);
  const json parsed = json::parse(j.out, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << j.out;
  EXPECT_EQ(parsed["error"]["exit_code"], 2);
  EXPECT_EQ(mc_run("--help").rc, 0);
  EXPECT_EQ(mc_run("convert --help").rc, 0);
}

TEST_F(CliContract, OptionsAWriterDoesNotTakeAreRefusedBeforeWriting) {
  struct Case {
    std::string args, option, takers;
  };
  const Case cases[] = {
      {"hf --quant q4_k_m", "--quant", "gguf, mlx"},
      {"safetensors --quant q8_0", "--quant", "gguf, mlx"},
      {"megatron --quant 4bit", "--quant", "gguf, mlx"},
      {"gguf --tp 2", "--tp", "megatron"},
      {"gguf --pp 2", "--pp", "megatron"},
      {"hf --megatron-format legacy", "--megatron-format", "megatron"},
      {"gguf --max-shard-size 1GB", "--max-shard-size", "hf, safetensors, pytorch, mlx"},
      {"gguf --weights-format bin", "--weights-format", "hf"},
      {"hf --quant-config {\\\"bits\\\":4}", "--quant-config", "mlx"},
  };
  for (const auto& c : cases) {
    const fs::path out = tmp / "out";
    auto r = mc_run("convert " + cfg() + " " + c.args + " --fake-weight -o " + q(out));
    EXPECT_EQ(r.rc, 2) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.option + " is not taken"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.takers), std::string::npos) << c.args << ": " << r.out;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  // A name the target does not know is refused with the target's names.
  auto r = mc_run("convert " + cfg() + " gguf --quant 4bit --fake-weight -o " + q(tmp / "m.gguf"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("q4_k_m"), std::string::npos) << r.out;
  // The same options go through where they are taken.
  r = mc_run("convert " + cfg() + " gguf --quant Q8_0 --fake-weight -o " + q(tmp / "m.gguf"));
  EXPECT_EQ(r.rc, 0) << r.out;
  r = mc_run("convert " + cfg() + " megatron --tp 2 --fake-weight -o " + q(tmp / "meg"));
  EXPECT_EQ(r.rc, 0) << r.out;
}

TEST_F(CliContract, ProgressLineOnlyOnATerminal) {
  if (run_command("command -v script") != 0) GTEST_SKIP() << "util-linux `script` not installed";
  const std::string conv = modelconvert_binary().string() + " convert " + cfg() +
                           " gguf --fake-weight --threads 1 --force -o " + q(tmp / "p.gguf");
  // Under a pseudo-terminal: redrawn lines ("\r") with bytes done/total and a percentage, erased
  // at the end (the last thing on stderr before the result is a run of blanks and "\r").
  std::string out;
  ASSERT_EQ(run_command("script -qfec " + q(conv) + " /dev/null", &out), 0) << out;
  EXPECT_NE(out.find("\rwriting "), std::string::npos) << out;
  EXPECT_NE(out.find("%"), std::string::npos) << out;
  EXPECT_NE(out.find("MB / "), std::string::npos) << out;
  const auto wrote = out.find("wrote gguf");
  ASSERT_NE(wrote, std::string::npos) << out;
  const auto blank = out.rfind("\r", wrote - 1);
  ASSERT_NE(blank, std::string::npos);
  EXPECT_EQ(blank, wrote - 1) << "the line is erased before the result";
  const auto drawn = out.rfind("\rwriting", wrote);
  ASSERT_NE(drawn, std::string::npos);
  const auto erase_start = out.find('\r', drawn + 1);
  EXPECT_EQ(out.find_first_not_of(' ', erase_start + 1), blank) << "only blanks between the last line and the result";
  // Through a pipe: nothing but the result.
  ASSERT_EQ(run_command(conv + " 2>&1 | cat", &out), 0) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  // --quiet and --json silence it on a terminal too; --progress forces it through a pipe.
  ASSERT_EQ(run_command("script -qfec " + q(conv + " --quiet") + " /dev/null", &out), 0) << out;
  EXPECT_EQ(out.find("writing"), std::string::npos) << out;
  ASSERT_EQ(run_command(conv + " --progress 2>&1 | cat", &out), 0) << out;
  EXPECT_NE(out.find("\rwriting "), std::string::npos) << out;
  // check counts tokens.
  ASSERT_EQ(run_command(modelconvert_binary().string() + " check " + q(tmp / "p.gguf") +
                            " --ids 1,2,3 --max-new-tokens 4 --progress 2>&1 | cat",
                        &out),
            0)
      << out;
  EXPECT_NE(out.find("\rcheck "), std::string::npos) << out;
  EXPECT_NE(out.find("/ 6 tokens"), std::string::npos) << out;
}

TEST_F(CliContract, ListsComeFromTheTables) {
  auto r = mc_run("list architectures --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  const json rows = json::parse(r.out);
  std::vector<std::string> types;
  for (const auto& row : rows) types.push_back(row["model_type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"llama", "mistral", "qwen2", "minicpm", "gpt2", "qwen3", "phi3",
                                             "gemma"}));
  for (const auto& row : rows) {
    const std::string t = row["model_type"];
    EXPECT_TRUE(row["formats"]["hf"]["write"]) << t;
    EXPECT_TRUE(row["formats"]["gguf"]["write"]) << t;
    EXPECT_EQ(row["formats"]["mlx"]["write"], t != "gpt2") << t;
    const bool megatron = t == "llama" || t == "mistral" || t == "qwen2" || t == "minicpm" || t == "qwen3";
    EXPECT_EQ(row["formats"]["megatron"]["write"], megatron) << t;
    EXPECT_EQ(row["formats"]["llama2c"]["read"], t == "llama") << t;
    EXPECT_FALSE(row["formats"]["llama2c"]["write"]) << t;
  }
  const auto& gguf = rows[0]["formats"]["gguf"]["quantizations"];
  EXPECT_NE(std::find(gguf.begin(), gguf.end(), "q4_k_m"), gguf.end());
  EXPECT_EQ(rows[1]["gguf_arch"], "llama");  // mistral runs as llama in llama.cpp

  r = mc_run("list quantizations --json");
  ASSERT_EQ(r.rc, 0) << r.out;
  bool gguf_row = false, mlx_row = false;
  for (const auto& row : json::parse(r.out)) {
    gguf_row |= row["formats"] == "gguf" && row["names"].get<std::string>().find("q5_k_s") != std::string::npos;
    mlx_row |= row["formats"] == "mlx" && row["names"].get<std::string>().find("3bit") != std::string::npos;
  }
  EXPECT_TRUE(gguf_row && mlx_row) << r.out;
}

}  // namespace
}  // namespace mc::test
