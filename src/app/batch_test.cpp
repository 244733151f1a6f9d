// batch: good, failing and retried tasks on a worker pool, the report, shards that split a file
// disjointly and completely, the disk-space estimate, job files refused before anything runs.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "app/app_test_util.h"
#include "app/batch.h"

namespace mc::test {
namespace {

using json = nlohmann::json;

class Batch : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(modelconvert_binary()));
    Sandbox::write_config(sb / "m" / "config.json");
    cfg = q(sb / "m" / "config.json");
    // A stand-in MTK toolkit that fails the first time it runs (a busy licence server: an I/O
    // error, retried) and writes a .tflite the second time.
    fs::create_directories(sb / "tk");
    std::ofstream(sb / "tk" / "run_example_llm_cybertron.sh") << R"SH(
n=$(cat "$MC_COUNTER" 2>/dev/null || echo 0); echo $((n+1)) > "$MC_COUNTER"
if [ "$n" = 0 ]; then echo "licence server busy"; exit 1; fi
printf '\x18\x00\x00\x00TFL3\x00\x00\x00\x00' > "$OUTPUT_DIR/model.tflite"
)SH";
  }
  std::string counter_env() const { return "MC_COUNTER=" + q(sb / "counter") + " "; }
  Sandbox sb;
  std::string cfg;
};

TEST_F(Batch, GoodFailingAndRetriedTasksAndTheirReport) {
  const std::string c = (sb / "m" / "config.json").string();
  std::ofstream(sb / "jobs.yaml") << "tasks:\n"
      << "  - {name: st, model_path: " << c << ", output_format: safetensors, output_path: " << (sb / "o" / "st").string()
      << ", fake_weight: true, dtype: fp16}\n"
      << "  - {name: q8, model_path: " << c << ", output_format: gguf, output_path: " << (sb / "o" / "q8.gguf").string()
      << ", quantization: q8_0, fake_weight: true}\n"
      << "  - {name: missing, model_path: " << (sb / "nope").string() << ", output_format: gguf, output_path: "
      << (sb / "o" / "x.gguf").string() << "}\n"
      << "  - {name: badquant, model_path: " << c << ", output_format: gguf, quantization: q9_9, fake_weight: true, output_path: "
      << (sb / "o" / "y.gguf").string() << "}\n"
      << "  - name: npu\n    model_path: " << c << "\n    output_format: mtk\n    output_path: " << (sb / "o" / "npu").string()
      << "\n    model_type: text-generation\n    fake_weight: true\n    quantization_config:\n      mtk_cloud_path: "
      << (sb / "tk").string() << "\n      platform: MT6897\n";
  auto r = sb.run_split("batch " + q(sb / "jobs.yaml") + " --max-workers 2 --max-retries 2 --report " + q(sb / "report.json") +
                            " --json",
                        counter_env());
  EXPECT_EQ(r.rc, 1) << "some tasks failed: exit 1, never 70\n" << r.out << r.err;
  const json rep = json::parse(r.out);  // one JSON document on stdout
  EXPECT_EQ(json::parse(slurp(sb / "report.json")), rep);
  EXPECT_EQ(rep["succeeded"], 3);
  EXPECT_EQ(rep["failed"], 2);
  ASSERT_EQ(rep["tasks"].size(), 5u);
  std::map<std::string, json> t;
  for (const auto& x : rep["tasks"]) t[x["name"]] = x;
  EXPECT_EQ(t["st"]["status"], "succeeded");
  EXPECT_EQ(t["st"]["attempts"], 1);
  EXPECT_TRUE(t["st"]["error"].is_null());
  EXPECT_EQ(t["st"]["output"], (sb / "o" / "st").string());
  EXPECT_EQ(t["q8"]["status"], "succeeded");
  EXPECT_EQ(t["missing"]["status"], "failed");
  EXPECT_EQ(t["missing"]["attempts"], 1) << "a missing input is not transient";
  EXPECT_EQ(t["missing"]["exit_code"], 4);
  EXPECT_EQ(t["badquant"]["attempts"], 1) << "a bad argument is never retried";
  EXPECT_EQ(t["badquant"]["exit_code"], 2);
  EXPECT_NE(t["badquant"]["error"].get<std::string>().find("q9_9"), std::string::npos);
  EXPECT_EQ(t["npu"]["status"], "succeeded");
  EXPECT_EQ(t["npu"]["attempts"], 2) << "the first toolkit run failed (I/O), the retry passed";
  EXPECT_EQ(slurp(sb / "counter"), "2\n");
  for (const auto& x : rep["tasks"]) EXPECT_GE(x["seconds"].get<double>(), 0.0);
  // The outputs: valid where the task succeeded, absent where it failed.
  EXPECT_EQ(sb.run("validate " + q(sb / "o" / "st")).rc, 0);
  EXPECT_EQ(sb.run("validate " + q(sb / "o" / "q8.gguf")).rc, 0);
  EXPECT_EQ(sb.run("validate " + q(sb / "o" / "npu")).rc, 0);
  EXPECT_FALSE(fs::exists(sb / "o" / "x.gguf"));
  EXPECT_FALSE(fs::exists(sb / "o" / "y.gguf"));
  // The estimate covered every task; the missing input is the one not known.
  EXPECT_EQ(rep["estimate"]["tasks"].size(), 5u);
  EXPECT_EQ(rep["estimate"]["unknown"], 2) << rep["estimate"].dump();
  uint64_t sum = 0;
  for (const auto& row : rep["estimate"]["tasks"])
    if (!row["bytes"].is_null()) sum += row["bytes"].get<uint64_t>();
  EXPECT_EQ(rep["estimate"]["total_bytes"], sum);
  // A task's estimate is the converter's own plan of that output (--quant, --dtype included), as
  // `convert --dry-run` gives it, and the q8_0 GGUF plans about half the fp16 safetensors' bytes.
  std::map<std::string, uint64_t> est;
  for (const auto& row : rep["estimate"]["tasks"])
    if (!row["bytes"].is_null()) est[row["name"]] = row["bytes"].get<uint64_t>();
  auto planned = [&](const std::string& args) -> uint64_t {
    auto d = sb.run_split("convert " + q(sb / "m" / "config.json") + " " + args + " --fake-weight --dry-run --json -o " +
                          q(sb / "dry" / "x"));
    EXPECT_EQ(d.rc, 0) << d.out << d.err;
    return json::parse(d.out)["info"]["plan"]["planned_output_bytes"].get<uint64_t>();
  };
  EXPECT_EQ(est["st"], planned("safetensors --dtype fp16"));
  EXPECT_EQ(est["q8"], planned("gguf --quant q8_0"));
  EXPECT_LT(est["q8"], est["st"] * 6 / 10);
  EXPECT_GT(est["q8"], est["st"] * 4 / 10);
  // One history record per task, with its attempts.
  auto h = sb.history();
  ASSERT_EQ(h.size(), 5u);
  std::map<std::string, json> byname;
  for (const auto& x : h) byname[x["task"]] = x;
  EXPECT_EQ(byname["npu"]["attempts"], 2);
  EXPECT_EQ(byname["npu"]["command"], "batch");
  EXPECT_EQ(byname["missing"]["status"], "failed");
  EXPECT_EQ(byname["st"]["batch"], (sb / "jobs.yaml").string());
}

TEST_F(Batch, TheSummaryTableAndTheSeedsModelsMapInJson) {
  json doc = {{"models",
               {{"first", {{"input", (sb / "m" / "config.json").string()}, {"output_format", "hf"}, {"fake_weight", true},
                           {"output_path", (sb / "a").string()}, {"device", "cpu"}}},
                {"second", {{"model_path", (sb / "m" / "config.json").string()}, {"preset", "gguf-q8_0"}, {"fake_weight", true},
                            {"output_path", (sb / "b.gguf").string()}}}}}};
  std::ofstream(sb / "jobs.json") << doc.dump(2);
  auto r = sb.run_split("batch " + q(sb / "jobs.json"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("first"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 succeeded, 0 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("'device' is ignored"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("estimated output:"), std::string::npos) << r.err;
  EXPECT_EQ(sb.run("validate " + q(sb / "b.gguf")).rc, 0);
}

TEST_F(Batch, ShardsAreDisjointAndComplete) {
  std::ofstream f(sb / "jobs.yaml");
  f << "tasks:\n";
  for (int i = 0; i < 7; ++i)
    f << "  - {model_path: " << (sb / "m" / "config.json").string() << ", output_format: safetensors, fake_weight: true, "
      << "output_path: " << (sb / ("s" + std::to_string(i))).string() << "}\n";
  f.close();
  std::set<int> all;
  for (int i = 1; i <= 3; ++i) {
    auto r = sb.run_split("batch " + q(sb / "jobs.yaml") + " --shard " + std::to_string(i) + "/3 --json");
    ASSERT_EQ(r.rc, 0) << r.out << r.err;
    const json rep = json::parse(r.out);
    EXPECT_EQ(rep["shard"]["index"], i);
    EXPECT_EQ(rep["tasks_in_file"], 7);
    for (const auto& t : rep["tasks"]) {
      const int idx = t["index"];
      EXPECT_EQ(idx % 3, i - 1) << "shard " << i << " ran task " << idx;
      EXPECT_TRUE(all.insert(idx).second) << "task " << idx << " ran twice";
      EXPECT_EQ(t["name"], "task-" + std::to_string(idx + 1));
    }
  }
  EXPECT_EQ(all, (std::set<int>{0, 1, 2, 3, 4, 5, 6}));
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(fs::exists(sb / ("s" + std::to_string(i)) / "model.safetensors")) << i;
  for (const char* bad : {"4/3", "x"}) {
    auto r = sb.run("batch " + q(sb / "jobs.yaml") + " --shard " + bad);
    EXPECT_EQ(r.rc, 2) << bad << "\n" << r.out;
  }
}

TEST_F(Batch, BadJobFilesAreRefusedBeforeAnythingRuns) {
  const std::string c = (sb / "m" / "config.json").string(), out = (sb / "never").string();
  const std::pair<std::string, std::string> cases[] = {
      {"tasks:\n  - {model_path: " + c + ", output_format: hf, fake_weight: true, output_path: " + out + "}\n"
       "  - {model_path: " + c + ", output_format: hf, outptu_path: x}\n", "unknown key 'outptu_path'"},
      {"tasks:\n  - {output_format: hf}\n", "model_path is missing"},
      {"tasks:\n  - {model_path: " + c + "}\n", "output_format is missing"},
      {"jobs: []\n", "no `tasks` or `models`"},
      {"tasks: []\n", "no tasks"},
      {"tasks:\n  - {name: a, model_path: x, output_format: hf}\n  - {name: a, model_path: y, output_format: hf}\n", "both named 'a'"},
      {"tasks:\n  - {model_path: " + c + ", output_format: hf, fake_weight: yes please}\n", "fake_weight must be true or false"},
      {"tasks: [ {model_path: x\n", "YAML error"},
  };
  for (const auto& [yaml, why] : cases) {
    std::ofstream(sb / "bad.yaml") << yaml;
    auto r = app::load_batch_file(sb / "bad.yaml");
    ASSERT_FALSE(r) << yaml;
    EXPECT_TRUE(r.error().code == ErrorCode::InvalidArgument || r.error().code == ErrorCode::Corrupt) << r.error().render();
    EXPECT_NE(r.error().render().find(why), std::string::npos) << why << "\n" << r.error().render();
  }
  // Through the program: exit 2, and no task of the file ran (the first one was good).
  std::ofstream(sb / "bad.yaml") << cases[0].first;
  auto r = sb.run("batch " + q(sb / "bad.yaml"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("task 2 (task-2): unknown key 'outptu_path'"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out)) << "a task ran from a refused file";
  EXPECT_EQ(sb.run("batch " + q(sb / "no-such.yaml")).rc, 4);
  EXPECT_TRUE(sb.history().empty());
}

TEST_F(Batch, NotEnoughDiskStopsTheBatchBeforeItStarts) {
  // About 9 trillion fake parameters: nothing is allocated for the estimate (a dry run), and no
  // disk here has the ~36 TB the output would take.
  Sandbox::write_config(sb / "huge" / "config.json", 65536, 4000000, 160);
  std::ofstream(sb / "jobs.yaml") << "tasks:\n  - {model_path: " << (sb / "huge" / "config.json").string()
                                   << ", output_format: safetensors, fake_weight: true, output_path: "
                                   << (sb / "huge-out").string() << "}\n";
  auto r = sb.run_split("batch " + q(sb / "jobs.yaml") + " --json");
  EXPECT_EQ(r.rc, 9) << r.out << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["error"]["exit_code"], 9);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("needs about"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(sb / "huge-out"));
  EXPECT_TRUE(sb.history().empty()) << "no task ran";
}

TEST(BatchEstimate, TransientErrorsAreIoOnly) {
  EXPECT_TRUE(app::is_transient(make_error(ErrorCode::Io, "x")));
  EXPECT_FALSE(app::is_transient(make_error(ErrorCode::InvalidArgument, "x")));
  EXPECT_FALSE(app::is_transient(make_error(ErrorCode::NotFound, "x")));
}

}  // namespace
}  // namespace mc::test
