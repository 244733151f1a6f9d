// The history: one line per conversion, newest first, safe with concurrent writers, and intact
// after a writer or a conversion was killed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "app/app_test_util.h"
#include "app/history.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

class History : public ::testing::Test {
 protected:
  void SetUp() override { env.set("XDG_STATE_HOME", (sb / "state").string()); }
  Sandbox sb;
  EnvGuard env;
};

TEST_F(History, NewestFirstWithALimit) {
  EXPECT_EQ(app::history_path(), sb / "state" / "modelconvert" / "history.jsonl");
  auto empty = app::read_history(10);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->records.empty());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(app::append_history({{"command", "convert"}, {"n", i}}));
  auto h = app::read_history(3);
  ASSERT_TRUE(h);
  ASSERT_EQ(h->records.size(), 3u);
  EXPECT_EQ(h->records[0]["n"], 4);
  EXPECT_EQ(h->records[2]["n"], 2);
  EXPECT_EQ(h->total, 5u);
  EXPECT_EQ(h->records[0]["time"].get<std::string>().size(), 20u) << "ISO 8601 UTC, e.g. 2026-12-01T10:00:00Z";
}

TEST_F(History, ATornLastLineFromAKilledWriterHidesNothing) {
  ASSERT_TRUE(app::append_history({{"n", 1}}));
  {  // A writer killed in the middle of its line: no newline at the end of the file.
    std::ofstream f(app::history_path(), std::ios::app);
    f << R"({"n": 2, "input": "/models/ha)";
  }
  ASSERT_TRUE(app::append_history({{"n", 3}}));
  auto h = app::read_history(0);
  ASSERT_TRUE(h);
  ASSERT_EQ(h->records.size(), 2u);
  EXPECT_EQ(h->records[0]["n"], 3);
  EXPECT_EQ(h->records[1]["n"], 1);
  EXPECT_EQ(h->damaged, 1u);
  auto r = sb.run_split("history --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["damaged"], 1);
}

TEST_F(History, ConcurrentWritersLoseNoRecord) {
  constexpr int kProcs = 6, kEach = 40;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Long records (over PIPE_BUF) so a write without the lock could interleave.
      for (int i = 0; i < kEach; ++i)
        if (!app::append_history({{"proc", p}, {"i", i}, {"pad", std::string(6000, char('a' + p))}})) ::_exit(1);
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int st = 0;
    ::waitpid(k, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  auto h = app::read_history(0);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->damaged, 0u);
  ASSERT_EQ(h->records.size(), size_t(kProcs * kEach));
  std::set<std::pair<int, int>> seen;
  for (const auto& r : h->records) {
    seen.insert({r["proc"].get<int>(), r["i"].get<int>()});
    EXPECT_EQ(r["pad"].get<std::string>(), std::string(6000, char('a' + r["proc"].get<int>())));
  }
  EXPECT_EQ(seen.size(), size_t(kProcs * kEach));
}

TEST_F(History, EveryConvertIsRecordedAndAKilledRunDamagesNothing) {
  Sandbox::write_config(sb / "m" / "config.json");
  auto ok = sb.run("convert " + q(sb / "m" / "config.json") + " safetensors --fake-weight --dtype fp16 -o " + q(sb / "a"));
  ASSERT_EQ(ok.rc, 0) << ok.out;
  auto bad = sb.run("convert " + q(sb / "missing") + " gguf -o " + q(sb / "b.gguf"));
  ASSERT_EQ(bad.rc, 4) << bad.out;
  auto h = sb.history();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["command"], "convert");
  EXPECT_EQ(h[0]["status"], "ok");
  EXPECT_EQ(h[0]["format"], "safetensors");
  EXPECT_EQ(h[0]["output"], (sb / "a").string());
  EXPECT_EQ(h[0]["options"]["dtype"], "f16");
  EXPECT_EQ(h[0]["options"]["fake_weight"], true);
  EXPECT_TRUE(h[0]["error"].is_null());
  EXPECT_GT(h[0]["seconds"].get<double>(), 0.0);
  EXPECT_EQ(h[1]["status"], "failed");
  EXPECT_EQ(h[1]["error"]["exit_code"], 4);

  // A later conversion killed while it runs (a stand-in toolkit that waits) adds nothing and
  // breaks nothing; the next one is recorded after the others.
  fs::create_directories(sb / "tk");
  std::ofstream(sb / "tk" / "run_example_llm_cybertron.sh") << "echo started > \"$MC_MARK\"; sleep 30\n";
  const std::string mark = (sb / "mark").string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("XDG_STATE_HOME", (sb / "state").string().c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (sb / "cfg").string().c_str(), 1);
    ::setenv("MC_MARK", mark.c_str(), 1);
    ::setpgid(0, 0);  // its own group: the test kills the program and the toolkit's script
    const std::string bin = modelconvert_binary().string(), cfg = (sb / "m" / "config.json").string(),
                      qc = "{\"mtk_cloud_path\": \"" + (sb / "tk").string() + "\"}", out = (sb / "killed").string();
    ::execl(bin.c_str(), bin.c_str(), "convert", cfg.c_str(), "mtk", "--fake-weight", "--quiet", "--quant-config", qc.c_str(),
            "-o", out.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 500 && !fs::exists(mark); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(fs::exists(mark)) << "the stand-in toolkit never started";
  ::kill(-pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFSIGNALED(st));
  EXPECT_FALSE(fs::exists(sb / "killed")) << "nothing at -o after a kill";
  EXPECT_EQ(sb.history().size(), 2u);
  auto again = sb.run("convert " + q(sb / "m" / "config.json") + " hf --fake-weight -o " + q(sb / "c"));
  ASSERT_EQ(again.rc, 0) << again.out;
  auto r = sb.run_split("history --json --limit 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["records"].size(), 2u);
  EXPECT_EQ(j["records"][0]["output"], (sb / "c").string()) << "newest first";
  EXPECT_EQ(j["records"][1]["status"], "failed");
  EXPECT_EQ(j["total"], 3);
  EXPECT_EQ(j["damaged"], 0);
  // history off: nothing more is recorded.
  ASSERT_EQ(sb.run("config set history false").rc, 0);
  ASSERT_EQ(sb.run("convert " + q(sb / "m" / "config.json") + " hf --fake-weight -o " + q(sb / "d")).rc, 0);
  EXPECT_EQ(sb.history().size(), 3u);
}

}  // namespace
}  // namespace mc::test
