// Hub ids on the command line, against a stand-in hub on 127.0.0.1: convert and inspect through
// the standard cache, offline reuse, the endpoint from the configuration, missing and private
// repositories (exit 4), and a batch task retried after a transient hub error.
#include <gtest/gtest.h>

#include <fstream>

#include "app/app_test_util.h"
#include "hub/fake_hub_test_util.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

const std::string kCommit = "feedfacefeedfacefeedfacefeedfacefeedface";

class HubCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(modelconvert_binary()));
    sb.make_model(sb / "src");
    json spec = {{"token", "hf_sekrit"}, {"repos", json::array()}};
    for (const auto& [id, extra] : std::vector<std::pair<std::string, json>>{
             {"tiny-org/tiny-llama", json::object()},
             {"tiny-org/private-llama", {{"private", true}}},
             {"tiny-org/busy-llama", {{"fail", {{"model.safetensors", {{"mode", "503"}, {"times", 1}}}}}}}}) {
      json r = {{"id", id}, {"dir", (sb / "src").string()}, {"commit", kCommit}};
      r.update(extra);
      spec["repos"].push_back(r);
    }
    hub = std::make_unique<FakeHub>(spec, sb / "hub");
    ASSERT_TRUE(hub->up());
    endpoint = "HF_ENDPOINT=" + hub->endpoint() + " ";
  }
  size_t file_requests() {
    size_t n = 0;
    for (const auto& e : hub->log()) n += e["path"].get<std::string>().find("/api/") == std::string::npos;
    return n;
  }
  Sandbox sb;
  std::unique_ptr<FakeHub> hub;
  std::string endpoint;
};

TEST_F(HubCli, AHubIdConvertsThroughTheCacheLikeTheLocalFolder) {
  auto r = sb.run_split("convert tiny-org/tiny-llama gguf -o " + q(sb / "m.gguf") + " --json", endpoint);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["info"]["hub"]["commit"], kCommit);
  EXPECT_EQ(j["info"]["hub"]["downloaded"].size(), 2u);  // config.json, model.safetensors
  EXPECT_EQ(sb.run("validate " + q(sb / "m.gguf")).rc, 0);
  // The cache is huggingface_hub's layout (checked by the independent model of it).
  std::string out;
  run_python("hf_cache_oracle.py check " + q(sb / "hf" / "hub") + " tiny-org/tiny-llama main " + kCommit + " " + q(sb / "src") +
                 " config.json model.safetensors",
             &out);
  EXPECT_NE(out.find("\"ok\": true"), std::string::npos) << out;
  // The history names the hub id and the commit.
  EXPECT_EQ(sb.history().back()["input"], "tiny-org/tiny-llama");
  EXPECT_EQ(sb.history().back()["hub"]["commit"], kCommit);

  // Offline: no request at all; the default output goes to the current folder, not the cache.
  hub->clear_log();
  r = sb.run_split("convert hf:tiny-org/tiny-llama safetensors --json", endpoint + "HF_HUB_OFFLINE=1 ");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_TRUE(hub->log().empty());
  EXPECT_EQ(json::parse(r.out)["output"], (sb.work() / "tiny-llama-safetensors").string());
  // The same bytes as converting the folder the hub serves.
  ASSERT_EQ(sb.run("convert " + q(sb / "src") + " safetensors -o " + q(sb / "local")).rc, 0);
  EXPECT_EQ(slurp(sb.work() / "tiny-llama-safetensors" / "model.safetensors"), slurp(sb / "local" / "model.safetensors"));
  EXPECT_EQ(slurp(sb.work() / "tiny-llama-safetensors" / "config.json"), slurp(sb / "src" / "config.json"));
  auto i = sb.run_split("inspect tiny-org/tiny-llama --json", endpoint + "HF_HUB_OFFLINE=1 ");
  ASSERT_EQ(i.rc, 0) << i.err;
  EXPECT_EQ(json::parse(i.out)["hyper_parameters"]["hidden_size"], 64);
  // Online again: the revision is asked for, no file is fetched twice.
  hub->clear_log();
  ASSERT_EQ(sb.run("validate tiny-org/tiny-llama", endpoint).rc, 0);
  EXPECT_EQ(file_requests(), 0u);
  EXPECT_EQ(hub->log().size(), 1u);
}

TEST_F(HubCli, TheEndpointComesFromTheConfigurationUnlessHfEndpointIsSet) {
  ASSERT_EQ(sb.run("config set hf_endpoint " + hub->endpoint()).rc, 0);
  auto r = sb.run("inspect tiny-org/tiny-llama");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_FALSE(hub->log().empty());
  // HF_ENDPOINT (pointing nowhere) wins over the file; nothing cached for this repo: exit 3.
  r = sb.run("inspect tiny-org/busy-llama", "HF_ENDPOINT=http://127.0.0.1:9 ");
  EXPECT_EQ(r.rc, 3) << r.out;
  EXPECT_NE(r.out.find("cannot reach http://127.0.0.1:9"), std::string::npos) << r.out;
  // With the network gone, a cached repo is used as it is, with a notice.
  r = sb.run("inspect tiny-org/tiny-llama", "HF_ENDPOINT=http://127.0.0.1:9 ");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("using the cached snapshot feedfacefeed"), std::string::npos) << r.out;
}

TEST_F(HubCli, MissingAndPrivateReposExitFourSayingSo) {
  auto r = sb.run_split("convert tiny-org/nope gguf --json", endpoint);
  EXPECT_EQ(r.rc, 4) << r.out << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["error"]["exit_code"], 4);
  const std::string msg = j["error"]["text"];
  EXPECT_NE(msg.find("repository 'tiny-org/nope' not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no local path 'tiny-org/nope'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HF_TOKEN"), std::string::npos) << msg;

  auto p = sb.run("convert tiny-org/private-llama hf -o " + q(sb / "p"), endpoint);
  EXPECT_EQ(p.rc, 4) << p.out;
  EXPECT_NE(p.out.find("a token"), std::string::npos) << p.out;
  EXPECT_FALSE(fs::exists(sb / "p"));
  hub->clear_log();
  p = sb.run("convert tiny-org/private-llama hf --progress -o " + q(sb / "p"), endpoint + "HF_TOKEN=hf_sekrit ");
  ASSERT_EQ(p.rc, 0) << p.out;
  EXPECT_NE(p.out.find("\rdownloading "), std::string::npos) << "the download shows the progress line\n" << p.out;
  bool sent = false;
  for (const auto& e : hub->log()) sent |= e["authorization"] == "Bearer hf_sekrit";
  EXPECT_TRUE(sent);
  // The token can also come from $HF_HOME/token, as huggingface-cli login leaves it.
  fs::create_directories(sb / "hf");
  std::ofstream(sb / "hf" / "token") << "hf_sekrit\n";
  p = sb.run("convert tiny-org/private-llama hf --force -o " + q(sb / "p"), endpoint);
  EXPECT_EQ(p.rc, 0) << p.out;
}

TEST_F(HubCli, ABatchTaskIsRetriedAfterATransientHubError) {
  std::ofstream(sb / "jobs.yaml") << "tasks:\n  - {name: busy, model_path: tiny-org/busy-llama, output_format: gguf, "
                                   << "output_path: " << (sb / "busy.gguf").string() << "}\n";
  auto r = sb.run_split("batch " + q(sb / "jobs.yaml") + " --max-retries 1 --json --progress", endpoint);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const json rep = json::parse(r.out);
  EXPECT_EQ(rep["tasks"][0]["attempts"], 2);
  EXPECT_NE(r.err.find("HTTP 503"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\rbatch 1 / 1 tasks"), std::string::npos) << r.err;
  EXPECT_EQ(rep["estimate"]["tasks"][0]["note"], "not downloaded yet");
  EXPECT_EQ(sb.run("validate " + q(sb / "busy.gguf")).rc, 0);
}

}  // namespace
}  // namespace mc::test
