// Reference runtime vs independent torch forwards (tests/py/ref_forward.py, tests/py/rt_oracle.py)
// on tiny random models written by tests/py/make_models.py; plus the runtime's own invariants
// (KV cache == recompute, thread count does not change a bit, dtype paths).
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "graph/compare.h"
#include "graph/runtime.h"
#include "graph/test_support.h"
#include "quant/ggml.h"

namespace mc::graph {
namespace {

using test::load_hf_dir;
using test::max_abs_diff;
using test::read_oracle;
namespace fs = std::filesystem;

const std::vector<int32_t> kPrompt = {1, 5, 9, 200, 33, 7, 64, 128, 3, 250, 17, 42};
constexpr double kF32Tol = 1e-4;

struct Case {
  std::string name;
  ojson spec;
};

// All models and oracle answers, made by one Python run the first time a test asks.
class Models {
 public:
  static Models& get() {
    static Models m;
    return m;
  }
  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  fs::path dir(const std::string& name) const { return tmp_.path() / name; }

 private:
  Models() {
    if (!mc::test::have_torch()) {
      why_ = "python3-torch not installed: oracle tests skipped";
      return;
    }
    const ojson prompt = kPrompt;
    auto c = [&](std::string name, ojson extra) {
      ojson j = {{"dir", (tmp_.path() / name).string()}, {"ids", prompt}, {"greedy", 6}, {"seed", 1}};
      for (auto& [k, v] : extra.items()) j[k] = v;
      cases_.push_back(j);
    };
    c("llama", {{"arch", "llama"}});
    c("mistral", {{"arch", "mistral"}, {"sliding_window", 4}});
    c("mistral_nowin", {{"arch", "mistral"}});
    c("qwen2", {{"arch", "qwen2"}});
    c("minicpm", {{"arch", "minicpm"}});
    c("gpt2", {{"arch", "gpt2"}});
    c("llama_f16", {{"arch", "llama"}, {"dtype", "f16"}});
    c("llama_bf16", {{"arch", "llama"}, {"dtype", "bf16"}});
    c("gpt2_bf16", {{"arch", "gpt2"}, {"dtype", "bf16"}});
    c("llama_llama3", {{"arch", "llama"},
                       {"config_patch", {{"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0},
                                                           {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                                                           {"original_max_position_embeddings", 16}}}}}});
    c("llama_linear", {{"arch", "llama"},
                       {"config_patch", {{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}}}});
    ojson sf = ojson::array();
    for (int i = 0; i < 8; ++i) sf.push_back(1.0 + 0.5 * i);
    c("minicpm_longrope", {{"arch", "minicpm"}, {"oracle", "rt"},
                           {"config_patch", {{"rope_scaling", {{"rope_type", "longrope"}, {"short_factor", sf},
                                                               {"long_factor", sf},
                                                               {"original_max_position_embeddings", 64}}}}}});
    c("qwen3", {{"arch", "qwen3"}});
    c("phi3", {{"arch", "phi3"}});
    c("phi3_swa", {{"arch", "phi3"}, {"sliding_window", 4}});
    c("gemma", {{"arch", "gemma"}});
    c("gemma_bf16", {{"arch", "gemma"}, {"dtype", "bf16"}});
    // The new era reads hidden_act: "gelu" is the exact (erf) GELU there.
    c("gemma_gelu", {{"arch", "gemma"},
                     {"config_patch", {{"hidden_act", "gelu"}, {"-hidden_activation", nullptr},
                                       {"transformers_version", "4.50.0"}}}});
    c("qwen2_swa", {{"arch", "qwen2"}, {"oracle", "rt"},
                    {"config_patch", {{"use_sliding_window", true}, {"sliding_window", 3}, {"max_window_layers", 1}}}});
    const fs::path jobs = tmp_.path() / "cases.json";
    std::ofstream(jobs) << cases_.dump();
    std::string out;
    if (mc::test::run_python("rt_cases.py " + jobs.string(), &out) != 0) {
      why_ = "rt_cases.py failed: " + out;
      return;
    }
    ok_ = true;
  }
  mc::test::TempDir tmp_;
  ojson cases_ = ojson::array();
  bool ok_ = false;
  std::string why_;
};

#define REQUIRE_MODELS()                                          \
  do {                                                            \
    if (!mc::test::have_torch()) GTEST_SKIP() << Models::get().why(); \
    ASSERT_TRUE(Models::get().ok()) << Models::get().why();       \
  } while (0)

Runtime load(const std::string& name, size_t threads = 2, bool lazy = false) {
  Model m = load_hf_dir(Models::get().dir(name), lazy);
  auto rt = Runtime::load(m, threads);
  EXPECT_TRUE(rt.ok()) << (rt.ok() ? "" : rt.error().render());
  return std::move(rt).value();
}

class ArchOracle : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchOracle, LogitsOfEveryPositionMatchTorch) {
  REQUIRE_MODELS();
  Runtime rt = load(GetParam());
  const auto want = read_oracle(Models::get().dir(GetParam()));
  auto got = rt.forward_all(kPrompt);
  ASSERT_TRUE(got.ok()) << got.error().render();
  ASSERT_EQ(got->size(), kPrompt.size());
  EXPECT_LE(max_abs_diff(*got, want.logits), kF32Tol);
  // The logits are not degenerate: a wrong op would move them by far more than the tolerance.
  auto cmp = compare_logits(want.logits, *got);
  ASSERT_TRUE(cmp.ok());
  EXPECT_GT(cmp->source_max - cmp->source_min, 0.5);
  EXPECT_EQ(cmp->top1_agreement, 1.0);
  // Where both oracles apply, they agree with each other (rt_oracle alone covers longrope and
  // qwen2's per-layer window).
  if (!want.rt_logits.empty()) {
    EXPECT_LE(max_abs_diff(want.rt_logits, want.logits), kF32Tol);
  }
}

TEST_P(ArchOracle, GreedyWithKvCacheMatchesTorchAndRecompute) {
  REQUIRE_MODELS();
  Runtime rt = load(GetParam());
  const auto want = read_oracle(Models::get().dir(GetParam()));
  auto got = rt.greedy(kPrompt, 6);
  ASSERT_TRUE(got.ok()) << got.error().render();
  EXPECT_EQ(*got, want.greedy);
  // Same tokens and logits as recomputing the whole sequence at each step.
  std::vector<int32_t> seq = kPrompt;
  auto first = rt.step(kPrompt);  // cache continues from a fresh state below
  rt.reset();
  ASSERT_TRUE(rt.step(kPrompt).ok());
  for (int i = 0; i < 6; ++i) {
    auto full = rt.forward_all(seq);  // resets the cache
    ASSERT_TRUE(full.ok());
    const auto& last = full->back();
    const int32_t tok = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    EXPECT_EQ(tok, (*got)[static_cast<size_t>(i)]) << "step " << i;
    seq.push_back(tok);
  }
  // Incremental logits (one token at a time on the cache) equal the full forward's rows.
  rt.reset();
  std::vector<std::vector<float>> inc;
  for (int32_t id : seq) {
    auto s = rt.step(std::span<const int32_t>(&id, 1));
    ASSERT_TRUE(s.ok());
    inc.push_back(s->front());
  }
  EXPECT_EQ(rt.position(), static_cast<int64_t>(seq.size()));
  auto full = rt.forward_all(seq);
  ASSERT_TRUE(full.ok());
  EXPECT_LE(max_abs_diff(inc, *full), kF32Tol);
}

INSTANTIATE_TEST_SUITE_P(Archs, ArchOracle,
                         ::testing::Values("llama", "mistral", "mistral_nowin", "qwen2", "minicpm", "gpt2",
                                           "llama_llama3", "llama_linear", "minicpm_longrope", "qwen2_swa",
                                           "llama_f16", "llama_bf16", "gpt2_bf16", "qwen3", "phi3", "phi3_swa",
                                           "gemma", "gemma_bf16", "gemma_gelu"));

// f16/bf16 weights against the f32 model they were rounded from: within 1% of the logit range.
TEST(RuntimeDtypes, HalfWeightsCloseToF32) {
  REQUIRE_MODELS();
  for (auto [half, full] : {std::pair{"llama_f16", "llama"}, {"llama_bf16", "llama"}, {"gpt2_bf16", "gpt2"}}) {
    Runtime a = load(full), b = load(half);
    auto la = a.forward_all(kPrompt), lb = b.forward_all(kPrompt);
    ASSERT_TRUE(la.ok() && lb.ok());
    auto cmp = compare_logits(*la, *lb);
    ASSERT_TRUE(cmp.ok());
    EXPECT_LE(cmp->rel_max_abs_diff, 1e-2) << half;
    EXPECT_GT(cmp->max_abs_diff, 0.0) << half << ": the half model must really be rounded";
  }
}

TEST(RuntimeThreads, OneAndTwoThreadsGiveIdenticalBits) {
  REQUIRE_MODELS();
  for (const char* name : {"llama", "gpt2_bf16", "mistral"}) {
    for (bool lazy : {false, true}) {
      Runtime one = load(name, 1, lazy), two = load(name, 2, lazy);
      EXPECT_EQ(one.threads(), 1u);
      EXPECT_EQ(two.threads(), 2u);
      auto a = one.forward_all(kPrompt), b = two.forward_all(kPrompt);
      ASSERT_TRUE(a.ok() && b.ok());
      for (size_t t = 0; t < a->size(); ++t)
        EXPECT_EQ(std::memcmp((*a)[t].data(), (*b)[t].data(), (*a)[t].size() * sizeof(float)), 0)
            << name << " lazy=" << lazy << " position " << t;
      auto ga = one.greedy(kPrompt, 4), gb = two.greedy(kPrompt, 4);
      ASSERT_TRUE(ga.ok() && gb.ok());
      EXPECT_EQ(*ga, *gb);
    }
  }
}

// With a 4-token window, positions 0..3 see everything either way; later ones must differ.
TEST(RuntimeWindow, MistralSlidingWindowChangesLaterPositionsOnly) {
  REQUIRE_MODELS();
  Runtime win = load("mistral"), nowin = load("mistral_nowin");
  ASSERT_NE(win.graph().to_string().find("window=4 ->"), std::string::npos);
  EXPECT_EQ(nowin.graph().to_string().find("window=4 ->"), std::string::npos);
  auto a = win.forward_all(kPrompt), b = nowin.forward_all(kPrompt);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t t = 0; t < kPrompt.size(); ++t) {
    const double d = max_abs_diff({(*a)[t]}, {(*b)[t]});
    if (t < 4) EXPECT_LE(d, 1e-6) << "position " << t;
    else EXPECT_GT(d, 1e-3) << "position " << t;
  }
}

// ggml block weights go through quant::dequantize: the runtime on Q8_0 / Q4_K weights equals the
// runtime on the f32 weights those blocks decode to.
TEST(RuntimeDtypes, QuantizedWeightsEqualTheirDequantizedValues) {
  test::LlamaDims d{.vocab = 64, .hidden = 256, .layers = 1, .heads = 4, .kv_heads = 2, .inter = 256};
  const Model src = test::synthetic_llama(d);
  for (DType qt : {DType::Q8_0, DType::Q4_K}) {
    Model q, deq;
    q.config = deq.config = src.config;
    for (const auto& e : src.tensors) {
      if (e.shape.size() != 2 || e.name.find("embed") != std::string::npos) {
        q.tensors.put(e);
        deq.tensors.put(e);
        continue;
      }
      auto f = read_f32(e);
      ASSERT_TRUE(f.ok());
      const int64_t rows = e.shape[0], cols = e.shape[1];
      std::vector<std::byte> bytes(*dtype_nbytes(qt, static_cast<uint64_t>(rows * cols)));
      ASSERT_TRUE(quant::quantize_rows(qt, f->data(), rows, cols, bytes).ok());
      std::vector<float> back(static_cast<size_t>(rows * cols));
      ASSERT_TRUE(quant::dequantize(qt, bytes, back.data(), rows * cols).ok());
      q.tensors.put({e.name, qt, e.shape, make_owned_data(bytes)});
      deq.tensors.put(make_tensor_f32(e.name, e.shape, back));
    }
    auto rq = Runtime::load(q, 2), rd = Runtime::load(deq, 2), rs = Runtime::load(src, 2);
    ASSERT_TRUE(rq.ok()) << rq.error().render();
    ASSERT_TRUE(rd.ok() && rs.ok());
    const std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9, 2, 6};
    auto lq = rq->forward_all(ids), ld = rd->forward_all(ids), ls = rs->forward_all(ids);
    ASSERT_TRUE(lq.ok() && ld.ok() && ls.ok());
    EXPECT_LE(max_abs_diff(*lq, *ld), 1e-5) << dtype_name(qt);
    EXPECT_GT(max_abs_diff(*lq, *ls), 0.0) << dtype_name(qt) << ": quantization must change something";
  }
}

TEST(RuntimeErrors, BadInputsAreTypedErrors) {
  const Model m = test::synthetic_llama({});
  auto rt = Runtime::load(m, 1);
  ASSERT_TRUE(rt.ok());
  const std::vector<int32_t> bad = {1, 96};
  auto r = rt->forward_all(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(r.error().message.find("token id 96 at position 1"), std::string::npos) << r.error().message;
  EXPECT_FALSE(rt->greedy({}, 3).ok());

  Model missing = m;
  missing.tensors.erase("model.layers.1.mlp.up_proj.weight");
  auto e1 = Runtime::load(missing, 1);
  ASSERT_FALSE(e1.ok());
  EXPECT_EQ(e1.error().code, ErrorCode::NotFound);
  EXPECT_EQ(e1.error().tensor, "model.layers.1.mlp.up_proj.weight");

  Model wrong = m;
  wrong.tensors.put(make_tensor_f32("model.layers.0.self_attn.k_proj.weight", {32, 32}, std::vector<float>(32 * 32)));
  auto e2 = Runtime::load(wrong, 1);
  ASSERT_FALSE(e2.ok());
  EXPECT_EQ(e2.error().code, ErrorCode::Mismatch);
  EXPECT_NE(e2.error().message.find("[16, 32]"), std::string::npos) << e2.error().message;

  Model yarn = m;
  yarn.config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  auto e3 = Runtime::load(yarn, 1);
  ASSERT_FALSE(e3.ok());
  EXPECT_EQ(e3.error().code, ErrorCode::Unsupported);
  EXPECT_NE(e3.error().message.find("yarn"), std::string::npos);

  Model unknown = m;
  unknown.config["model_type"] = "mamba";
  unknown.config["architectures"] = {"MambaForCausalLM"};
  auto e4 = Runtime::load(unknown, 1);
  ASSERT_FALSE(e4.ok());
  EXPECT_EQ(e4.error().code, ErrorCode::Unsupported);
}

// longrope's short factors hold up to original_max_position_embeddings; past it the runtime
// refuses, and a refused step leaves the cache as it was.
TEST(RuntimeErrors, LongRopePastItsRangeIsRefusedAndTheCacheSurvives) {
  Model m = test::synthetic_llama({});
  m.config["rope_scaling"] = {{"rope_type", "longrope"}, {"short_factor", {1.0, 1.5, 2.0, 4.0}},
                              {"long_factor", {1.0, 1.5, 2.0, 4.0}}, {"original_max_position_embeddings", 16}};
  auto rt = Runtime::load(m, 2);
  ASSERT_TRUE(rt.ok()) << rt.error().render();
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  auto full = rt->forward_all(ids);
  ASSERT_TRUE(full.ok());
  const std::vector<int32_t> more(5, 7);
  auto r = rt->step(more);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
  EXPECT_NE(r.error().message.find("16-position range of longrope"), std::string::npos) << r.error().message;
  EXPECT_EQ(rt->position(), 12);
  const int32_t next = 7;
  auto one = rt->step(std::span<const int32_t>(&next, 1));
  ASSERT_TRUE(one.ok());
  std::vector<int32_t> seq = ids;
  seq.push_back(next);
  auto ref = rt->forward_all(seq);
  ASSERT_TRUE(ref.ok());
  EXPECT_LE(max_abs_diff({one->front()}, {ref->back()}), kF32Tol);
}

TEST(RuntimeErrors, Gpt2PositionsPastTheTableAreRefused) {
  REQUIRE_MODELS();
  Runtime rt = load("gpt2", 1);
  std::vector<int32_t> ids(129, 5);  // make_models.py: n_positions = 128
  auto r = rt.forward_all(ids);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::LimitExceeded);
  ids.resize(128);
  EXPECT_TRUE(rt.forward_all(ids).ok());
}

}  // namespace
}  // namespace mc::graph
