// The configuration: precedence (ecosystem variable > MODELCONVERT_<KEY> > file > default) with
// the provenance of each value, typed keys, unknown keys refused, presets, concurrent edits.
#include <gtest/gtest.h>

#include <fstream>

#include "app/app_test_util.h"
#include "app/config.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env.set("XDG_CONFIG_HOME", (sb / "cfg").string());
    for (auto k : {"HF_ENDPOINT", "MTK_CLOUD_PATH", "MODELCONVERT_THREADS", "MODELCONVERT_HF_ENDPOINT",
                   "MODELCONVERT_MTK_CLOUD_PATH", "MODELCONVERT_MAX_WORKERS", "MODELCONVERT_MAX_RETRIES", "MODELCONVERT_HISTORY"})
      env.unset(k);
  }
  void write_file(const std::string& yaml) {
    fs::create_directories(sb / "cfg" / "modelconvert");
    std::ofstream(sb / "cfg" / "modelconvert" / "config.yaml") << yaml;
  }
  app::Setting get(const std::string& key) {
    auto c = app::Config::load();
    EXPECT_TRUE(c) << c.error().render();
    auto s = c->get(key);
    EXPECT_TRUE(s) << s.error().render();
    return *s;
  }
  Sandbox sb;
  EnvGuard env;
};

TEST_F(ConfigTest, EnvironmentOverridesTheFileAndEachValueSaysWhereItCameFrom) {
  EXPECT_EQ(get("threads").value, 0);
  EXPECT_EQ(get("threads").source, "default");
  EXPECT_EQ(get("hf_endpoint").value, "https://huggingface.co");
  EXPECT_TRUE(get("mtk_cloud_path").value.is_null());

  write_file("threads: 3\nhf_endpoint: http://mirror.local\nmtk_cloud_path: /opt/mtk\n");
  const std::string file = "file " + (sb / "cfg" / "modelconvert" / "config.yaml").string();
  EXPECT_EQ(get("threads").value, 3);
  EXPECT_EQ(get("threads").source, file);
  EXPECT_EQ(get("hf_endpoint").value, "http://mirror.local");

  env.set("MODELCONVERT_THREADS", "7");
  env.set("MODELCONVERT_HF_ENDPOINT", "http://ours.local");
  EXPECT_EQ(get("threads").value, 7);
  EXPECT_EQ(get("threads").source, "env MODELCONVERT_THREADS");
  EXPECT_EQ(get("hf_endpoint").value, "http://ours.local");
  // The ecosystem's own variable is what every tool of it obeys: it wins.
  env.set("HF_ENDPOINT", "http://hub.local");
  EXPECT_EQ(get("hf_endpoint").value, "http://hub.local");
  EXPECT_EQ(get("hf_endpoint").source, "env HF_ENDPOINT");
  env.set("MTK_CLOUD_PATH", "/env/mtk");
  EXPECT_EQ(get("mtk_cloud_path").value, "/env/mtk");

  env.set("MODELCONVERT_THREADS", "many");
  auto bad = app::Config::load();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(bad.error().message.find("$MODELCONVERT_THREADS"), std::string::npos) << bad.error().render();
}

TEST_F(ConfigTest, TheCommandLineSetsGetsAndRefusesUnknownKeys) {
  auto r = sb.run("config set threads 4");
  ASSERT_EQ(r.rc, 0) << r.out;
  r = sb.run("config get threads");
  EXPECT_EQ(r.out, "4\n");
  r = sb.run("config set history false");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto s = sb.run_split("config show --json", "MODELCONVERT_THREADS=9");
  ASSERT_EQ(s.rc, 0) << s.out << s.err;
  const json j = json::parse(s.out);
  EXPECT_EQ(j["values"]["threads"]["value"], 9);
  EXPECT_EQ(j["values"]["threads"]["source"], "env MODELCONVERT_THREADS");
  EXPECT_EQ(j["values"]["history"]["value"], false);
  EXPECT_EQ(j["values"]["history"]["source"].get<std::string>().rfind("file ", 0), 0u);
  EXPECT_EQ(j["values"]["hf_endpoint"]["env"], json({"MODELCONVERT_HF_ENDPOINT", "HF_ENDPOINT"}));
  // The file is YAML another tool (or a person) can read and edit.
  const std::string yaml = slurp(sb / "cfg" / "modelconvert" / "config.yaml");
  EXPECT_NE(yaml.find("threads: 4"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("history: false"), std::string::npos) << yaml;

  for (const char* bad : {"config set nope 1", "config set threads -1"}) {
    auto b = sb.run(bad);
    EXPECT_EQ(b.rc, 2) << bad << "\n" << b.out;
  }
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"nope", "1"}, {"threads", "-1"}, {"threads", "2x"}, {"hf_endpoint", "ftp://x"}, {"history", "maybe"}}) {
    auto st = app::config_set(k, v);
    ASSERT_FALSE(st) << k << "=" << v;
    EXPECT_EQ(st.error().code, ErrorCode::InvalidArgument) << k;
  }
  EXPECT_EQ(app::config_unset("nope").error().code, ErrorCode::InvalidArgument);
  auto j2 = sb.run_split("config get nope --json");
  EXPECT_EQ(j2.rc, 2);
  EXPECT_EQ(json::parse(j2.out)["error"]["exit_code"], 2);
  EXPECT_NE(j2.out.find("threads, hf_endpoint, mtk_cloud_path"), std::string::npos) << j2.out;

  r = sb.run("config unset threads");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(sb.run("config get threads").out, "0\n");
}

TEST_F(ConfigTest, PresetsFromTheTableAndTheFileFillAConvert) {
  auto r = sb.run_split("config list-presets --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  const json listed = json::parse(r.out);
  std::vector<std::string> names;
  for (const auto& p : listed["presets"]) names.push_back(p["name"]);
  EXPECT_NE(std::find(names.begin(), names.end(), "gguf-q4_k_m"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "mtk-mt6991"), names.end());

  auto set = sb.run(R"(config set preset.tiny-q8 '{"output_format": "gguf", "quantization": "q8_0", "description": "mine"}')");
  ASSERT_EQ(set.rc, 0) << set.out;
  EXPECT_EQ(sb.run(R"(config set preset.bad '{"output_format": "gguf", "quantisation": "q8_0"}')").rc, 2);
  EXPECT_EQ(sb.run(R"(config set preset.bad '{"quantization": "q8_0"}')").rc, 2);

  Sandbox::write_config(sb / "m" / "config.json");
  auto conv = sb.run_split("convert " + q(sb / "m" / "config.json") + " --preset tiny-q8 --fake-weight -o " + q(sb / "p.gguf") +
                           " --json");
  ASSERT_EQ(conv.rc, 0) << conv.out << conv.err;
  EXPECT_EQ(json::parse(conv.out)["output_format"], "gguf");
  auto info = sb.run_split("inspect " + q(sb / "p.gguf") + " --json");
  ASSERT_EQ(info.rc, 0) << info.err;
  EXPECT_EQ(json::parse(info.out)["details"]["file_type"], "q8_0") << info.out;
  // Explicit options win over the preset's.
  conv = sb.run_split("convert " + q(sb / "m" / "config.json") + " --preset tiny-q8 --quant q4_0 --fake-weight -o " +
                      q(sb / "p4.gguf") + " --json");
  ASSERT_EQ(conv.rc, 0) << conv.err;
  info = sb.run_split("inspect " + q(sb / "p4.gguf") + " --json");
  EXPECT_EQ(json::parse(info.out)["details"]["file_type"], "q4_0") << info.out;
  EXPECT_EQ(sb.run("convert " + q(sb / "m" / "config.json") + " --preset nope --fake-weight").rc, 2);
  EXPECT_EQ(sb.run("config unset preset.tiny-q8").rc, 0);
  EXPECT_EQ(sb.run("config get preset.tiny-q8").rc, 2);
}

TEST_F(ConfigTest, ConcurrentSetsLoseNothing) {
  std::string cmd;
  for (int i = 0; i < 8; ++i)
    cmd += sb.env() + modelconvert_binary().string() + " config set preset.p" + std::to_string(i) +
           " '{\"output_format\": \"gguf\"}' & ";
  std::string out;
  ASSERT_EQ(run_command(cmd + "wait", &out), 0) << out;
  auto c = app::Config::load();
  ASSERT_TRUE(c) << c.error().render();
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(c->preset("p" + std::to_string(i))) << "p" << i << " was lost\n" << out;
}

}  // namespace
}  // namespace mc::test
