// stories260K (a trained llama2.c model, fixtures/llama2c) through llama.cpp (ctest label:
// interop): `modelconvert convert stories260K.bin gguf --tokenizer T` to GGUF f32, then the greedy
// continuation of fixed prompts in llama.cpp (node-llama-cpp, tests/js/gguf_greedy.mjs) equals,
// token for token, our reference runtime's (`modelconvert check --dump-logits`) on the same GGUF
// and on the .bin itself, and the run.c-style forward of tests/py/llama2c_ref.py on the .bin.
// The tokenizer is llama2c/tok512.model when the fixtures have it; otherwise a 512-piece
// SentencePiece model with tok512's id layout (tests/py/gguf_ref_spm512.py): the comparison is
// over ids, the vocabulary only has to be valid and of the model's size for llama.cpp to load.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/gguf/file.h"
#include "testutil.h"

namespace mc::gguf {
namespace {

using json = nlohmann::json;

constexpr int kGreedy = 32;
// BOS alone (how llama2.c starts a story), and BOS followed by arbitrary ids.
const char* const kPrompts[] = {"1", "1,300,400,450,260,270,13,283"};

using test::q;

class Stories260KInterop : public ::testing::TestWithParam<const char*> {
 protected:
  static void SetUpTestSuite() {
    const auto root = test::repo_root();
    if (!fs::exists(root / "node_modules" / "node-llama-cpp" / "package.json"))
      reason_ = "node_modules missing (run `npm ci` at the repository root): interop test skipped";
    else if (test::run_command("node --version") != 0)
      reason_ = "node not installed: interop test skipped";
    else if (!test::fixture("llama2c/stories260K.bin"))
      reason_ = "fixture llama2c/stories260K.bin not available";
    else if (!fs::exists(test::modelconvert_binary()))
      reason_ = "modelconvert binary not built: interop test skipped";
    if (!reason_.empty()) return;
    dir_ = std::make_unique<test::TempDir>();
    fs::path tok;
    if (auto t = test::fixture("llama2c/tok512.model")) {
      tok = *t;
    } else {
      tok = *dir_ / "tok512.model";
      std::string out;
      if (test::run_python("gguf_ref_spm512.py " + q(tok), &out) != 0) {
        reason_ = "could not write the 512-piece tokenizer: " + out;
        return;
      }
    }
    gguf_ = *dir_ / "stories260K.gguf";
    std::string log;
    if (test::run_command(q(test::modelconvert_binary()) + " convert " + q(*test::fixture("llama2c/stories260K.bin")) +
                              " gguf --quiet --quant f32 --tokenizer " + q(tok) + " -o " + q(gguf_), &log) != 0)
      convert_error_ = log.empty() ? "convert failed" : log;
  }
  static void TearDownTestSuite() { dir_.reset(); }
  void SetUp() override {
    if (!reason_.empty()) GTEST_SKIP() << reason_;
    ASSERT_TRUE(convert_error_.empty()) << convert_error_;
  }

  // Our runtime on `model`: greedy ids and log-softmax of the prompt logits.
  static std::optional<json> ours(const fs::path& model, const std::string& ids, const std::string& tag) {
    const fs::path dump = *dir_ / (tag + ".json");
    std::string log;
    EXPECT_EQ(test::run_command(q(test::modelconvert_binary()) + " check " + q(model) + " --ids " + ids +
                                    " --max-new-tokens " + std::to_string(kGreedy) + " --dump-logits " + q(dump), &log),
              0) << log;
    return test::read_json_file(dump);
  }

  static inline std::string reason_, convert_error_;
  static inline std::unique_ptr<test::TempDir> dir_;
  static inline fs::path gguf_;
};

TEST_P(Stories260KInterop, LlamaCppGreedyEqualsOurRuntime) {
  const std::string ids = GetParam();
  auto f = open(gguf_);
  ASSERT_TRUE(f.ok()) << f.error().render();
  EXPECT_EQ(f->kv.get_string("general.architecture"), "llama");
  EXPECT_EQ(f->kv.get_int("llama.block_count"), 5);
  EXPECT_EQ(f->kv.get_int("llama.attention.head_count_kv"), 4);

  std::string out;
  ASSERT_EQ(test::run_command("node tests/js/gguf_greedy.mjs " + q(gguf_) + " " + ids + " " + std::to_string(kGreedy) +
                                  " 20", &out), 0) << out;
  auto lc = test::last_json_line(out);
  ASSERT_TRUE(lc.has_value()) << out;
  const auto lc_greedy = (*lc)["greedy"].get<std::vector<int>>();
  ASSERT_EQ(lc_greedy.size(), size_t(kGreedy));

  auto ours_gguf = ours(gguf_, ids, "gguf");
  ASSERT_TRUE(ours_gguf.has_value());
  EXPECT_EQ((*ours_gguf)["greedy_ids"].get<std::vector<int>>(), lc_greedy) << "our runtime on the GGUF vs llama.cpp";
  auto ours_bin = ours(*test::fixture("llama2c/stories260K.bin"), ids, "bin");
  ASSERT_TRUE(ours_bin.has_value());
  EXPECT_EQ((*ours_bin)["greedy_ids"].get<std::vector<int>>(), lc_greedy) << "our runtime on the .bin vs llama.cpp";

  // Log-probs of llama.cpp's top candidates at the prompt positions vs our runtime (f32 both).
  const auto& logits = (*ours_gguf)["logits_all"];
  ASSERT_EQ(logits.size(), (*lc)["positions"].size());
  double worst = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const auto row = logits[i].get<std::vector<double>>();
    double m = row[0], s = 0;
    for (double x : row) m = std::max(m, x);
    for (double x : row) s += std::exp(x - m);
    const double lse = m + std::log(s);
    for (const auto& t : (*lc)["positions"][i]["top"]) {
      if (!std::isfinite(t[1].get<double>())) continue;
      worst = std::max(worst, std::abs(t[1].get<double>() - (row[t[0].get<size_t>()] - lse)));
    }
  }
  EXPECT_LE(worst, 1e-3) << "largest log-prob difference";
  std::cout << "prompt " << ids << ": greedy agrees over " << kGreedy << " tokens; max |dlogprob| " << worst << "\n";

  // Third opinion: llama2.c's run.c forward (numpy/torch port) on the .bin.
  if (!test::have_torch()) return;
  const fs::path ref = *dir_ / "runc.json";
  ASSERT_EQ(test::run_python("llama2c_ref.py " + q(*test::fixture("llama2c/stories260K.bin")) + " --ids " + ids +
                                 " --greedy " + std::to_string(kGreedy) + " --out " + q(ref), &out), 0) << out;
  auto r = test::read_json_file(ref);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["greedy_ids"].get<std::vector<int>>(), lc_greedy) << "run.c-style reference vs llama.cpp";
}

INSTANTIATE_TEST_SUITE_P(Prompts, Stories260KInterop, ::testing::ValuesIn(kPrompts));

}  // namespace
}  // namespace mc::gguf
