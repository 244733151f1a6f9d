// Interop with the real consumers of our GGUF files (ctest label: interop): llama.cpp through
// node-llama-cpp loads a tiny Llama we wrote (with the Llama 2 tokenizer embedded) and its
// next-token predictions must agree with an independent numpy forward pass over the HF-layout
// weights (tests/py/gguf_ref_llama.py) — which also proves the q/k permutation; and
// @huggingface/gguf must parse the file to the same metadata and tensor infos as our reader.
// Skips with a message when node_modules (npm ci), numpy or the fixtures are missing.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/gguf/file.h"
#include "formats/gguf/gguf.h"
#include "formats/gguf/test_models.h"
#include "testutil.h"

namespace mc::gguf {
namespace {

using json = nlohmann::json;

// "The quick brown fox jumps over the lazy dog" in Llama 2 ids, after BOS.
constexpr const char* kTokens = "1,450,4996,17354,1701,29916,432,17204,975,278,17366,11203";

std::string skip_reason() {
  const auto root = test::repo_root();
  if (!fs::exists(root / "node_modules" / "node-llama-cpp" / "package.json") ||
      !fs::exists(root / "node_modules" / "@huggingface" / "gguf" / "package.json"))
    return "node_modules missing (run `npm ci` at the repository root): interop test skipped";
  if (test::run_command("node --version") != 0) return "node not installed: interop test skipped";
  if (test::run_command("/usr/bin/python3 -c 'import numpy'") != 0)
    return "python3-numpy not installed: interop test skipped";
  if (!test::fixture("tokenizers/llama2-spm/tokenizer.model"))
    return "fixture tokenizers/llama2-spm/tokenizer.model not available";
  return "";
}

Result<json> last_json_line(const std::string& out) {
  size_t end = out.size();
  while (end > 0) {
    size_t start = out.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    std::string line = out.substr(start, end - start);
    if (!line.empty() && line[0] == '{') {
      try {
        return json::parse(line);
      } catch (const std::exception& e) {
        return make_error(ErrorCode::Corrupt, "bad JSON: {}", e.what());
      }
    }
    if (start == 0) break;
    end = start - 1;
  }
  return make_error(ErrorCode::NotFound, "no JSON line in output:\n{}", out);
}

class GgufInterop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reason_ = skip_reason();
    if (!reason_.empty()) return;
    dir_ = std::make_unique<test::TempDir>();
    // hidden 256: K-quant blocks fit the rows, so q4_k_m really uses Q4_K/Q6_K.
    testing::TinySpec s{.vocab = 32000, .hidden = 256, .inter = 512, .layers = 2, .heads = 4,
                        .kv_heads = 2, .positions = 64, .tied = false, .head_scale = 0.15f, .qk_scale = 0.05f, .seed = 7};
    model_ = std::make_unique<Model>(testing::tiny_model(s));
    model_->extra_files.push_back(
        {"tokenizer.model", *test::fixture("tokenizers/llama2-spm/tokenizer.model"), std::nullopt});
    dump(*model_, *dir_ / "ref");
  }
  // HF-layout weights as raw f32 files for the reference forward pass.
  static void dump(const Model& m, const fs::path& ref) {
    fs::create_directories(ref);
    std::ofstream(ref / "config.json") << m.config.dump(2);
    json manifest = json::object();
    for (const auto& e : m.tensors) {
      manifest[e.name] = e.shape;
      auto v = read_f32(e);
      ASSERT_TRUE(v.ok()) << v.error().render();
      std::ofstream(ref / (e.name + ".f32"), std::ios::binary)
          .write(reinterpret_cast<const char*>(v->data()), std::streamsize(v->size() * 4));
    }
    std::ofstream(ref / "manifest.json") << manifest.dump();
  }
  static void TearDownTestSuite() {
    model_.reset();
    dir_.reset();
  }
  void SetUp() override {
    if (!reason_.empty()) GTEST_SKIP() << reason_;
  }

  fs::path write(const std::string& ftype) {
    const fs::path p = *dir_ / ("tiny-" + ftype + ".gguf");
    if (fs::exists(p)) return p;
    ThreadPool pool(2);
    formats::WriteOptions wo;
    wo.pool = &pool;
    wo.quant = ftype;
    auto r = engine().write(*model_, p, wo);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().render());
    return p;
  }

  // llama.cpp's predictions vs the reference; `tol` bounds the log-prob difference.
  void compare(const std::string& ftype, double tol) {
    const fs::path p = write(ftype);
    std::string out;
    ASSERT_EQ(test::run_command("node tests/js/gguf_eval.mjs " + p.string() + " " + kTokens, &out), 0) << out;
    auto ours = last_json_line(out);
    ASSERT_TRUE(ours.ok()) << ours.error().render();
    fs::path ref_dir = *dir_ / "ref";
    if (ftype != "f32" && ftype != "f16") {
      auto deq = read_model(p, {});
      ASSERT_TRUE(deq.ok()) << deq.error().render();
      ref_dir = *dir_ / ("ref-" + ftype);
      dump(*deq, ref_dir);
    }
    std::string ref_out;
    const std::string args = ref_dir.string() + " " + kTokens + (ftype == "f16" ? " --f16" : "");
    ASSERT_EQ(test::run_python("gguf_ref_llama.py " + args, &ref_out), 0) << ref_out;
    auto ref = last_json_line(ref_out);
    ASSERT_TRUE(ref.ok()) << ref.error().render();
    const auto& a = (*ours)["positions"];
    const auto& b = (*ref)["positions"];
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ((*ours)["bos"], 1);
    EXPECT_NE((*ours)["text"].get<std::string>().find("quick brown fox"), std::string::npos) << (*ours)["text"];
    int same = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const int lt = a[i]["token"], rt = b[i]["token"];
      same += lt == rt;
      EXPECT_NEAR(a[i]["logprob"].get<double>(), b[i]["logprob"].get<double>(), tol) << "position " << i;
      // A differing argmax is only acceptable as a near-tie in the reference.
      if (lt != rt) {
        const auto& top = b[i]["top"];
        bool near_tie = false;
        for (const auto& t : top)
          near_tie |= t[0].get<int>() == lt && t[1].get<double>() > b[i]["logprob"].get<double>() - tol;
        EXPECT_TRUE(near_tie) << "position " << i << ": llama.cpp " << lt << ", reference " << rt;
      }
    }
    EXPECT_GE(same, int(a.size()) - 1) << "greedy next tokens disagree";
  }

  static inline std::string reason_;
  static inline std::unique_ptr<test::TempDir> dir_;
  static inline std::unique_ptr<Model> model_;
};

TEST_F(GgufInterop, LlamaCppF32MatchesReference) { compare("f32", 2e-3); }
TEST_F(GgufInterop, LlamaCppF16MatchesReference) { compare("f16", 5e-2); }
// Quantized files: the reference runs on our own dequantization of the file, so this checks
// that llama.cpp reads our blocks exactly as we wrote them (llama.cpp also quantizes the
// activations to 8 bits (Q8_0 / Q8_K) for these matmuls: ~0.5% noise per matmul, a few
// hundredths in log-prob; a misread block or a wrong row order costs whole units).
TEST_F(GgufInterop, LlamaCppQ8_0MatchesOurDequantization) { compare("q8_0", 0.15); }
TEST_F(GgufInterop, LlamaCppQ4KMMatchesOurDequantization) { compare("q4_k_m", 0.15); }

TEST_F(GgufInterop, HuggingFaceGgufParsesOurFile) {
  const fs::path p = write("f16");
  std::string out;
  ASSERT_EQ(test::run_command("node tests/js/gguf_inspect.mjs " + p.string(), &out), 0) << out;
  auto j = last_json_line(out);
  ASSERT_TRUE(j.ok()) << j.error().render();
  auto f = open(p);
  ASSERT_TRUE(f.ok());
  const auto& meta = (*j)["metadata"];
  EXPECT_EQ(meta["general.architecture"], "llama");
  EXPECT_EQ(meta["llama.block_count"], 2);
  EXPECT_EQ(meta["llama.attention.head_count_kv"], 2);
  EXPECT_EQ(meta["tokenizer.ggml.model"], "llama");
  EXPECT_EQ(meta["tokenizer.ggml.tokens"]["length"], 32000);
  EXPECT_EQ(meta["tokenizer.ggml.tokens"]["head"][1], "<s>");
  EXPECT_EQ((*j)["data_offset"].get<uint64_t>(), f->data_offset);
  const auto& ts = (*j)["tensors"];
  ASSERT_EQ(ts.size(), f->tensors.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(ts[i]["name"], f->tensors[i].name);
    EXPECT_EQ(ts[i]["ne"].get<std::vector<int64_t>>(), f->tensors[i].ne) << f->tensors[i].name;
    EXPECT_EQ(ts[i]["type"].get<uint32_t>(), f->tensors[i].ggml_type) << f->tensors[i].name;
    EXPECT_EQ(ts[i]["offset"].get<uint64_t>(), f->tensors[i].offset) << f->tensors[i].name;
  }
}

}  // namespace
}  // namespace mc::gguf
