// GGUF for the families that are only rows of the family table: qwen3 (q/k norms), phi3 (fused
// projections, longrope as tensors) and gemma (norms stored as 1 + w). Models are made from the
// family's own parameter table with random weights, so nothing here spells out their tensors.
#include <gtest/gtest.h>

#include "arch/config.h"
#include "formats/gguf/file.h"
#include "formats/gguf/gguf.h"
#include "formats/gguf/mapping.h"
#include "testutil.h"
#include "transforms/transforms.h"

namespace mc::gguf {
namespace {

ojson family_config(const std::string& type) {
  ojson c = {{"architectures", {std::string(arch::family_info(arch::family_from_model_type(type)).hf_architecture)}},
             {"model_type", type},
             {"vocab_size", 64},
             {"hidden_size", 64},
             {"intermediate_size", 96},
             {"num_hidden_layers", 2},
             {"num_attention_heads", 4},
             {"num_key_value_heads", 2},
             {"max_position_embeddings", 128},
             {"rms_norm_eps", 1e-6},
             {"torch_dtype", "float32"}};
  if (type == "qwen3" || type == "gemma") c["head_dim"] = 32;
  if (type == "phi3") c["original_max_position_embeddings"] = 64;
  return c;
}

Model random_model(ojson cfg, std::optional<DType> dtype = std::nullopt) {
  Model m;
  m.source_path = "tiny";
  m.config = std::move(cfg);
  transforms::FakeOptions fo;
  fo.mode = transforms::FakeMode::Random;
  fo.seed = 3;
  fo.dtype = dtype;
  auto r = transforms::fake_weights(m, fo);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().render());
  return std::move(r).value();
}

// Fake weights make every norm weight 1; Gemma's are offsets from 1, so give them spread.
void randomize_norms(Model& m) {
  uint32_t state = 12345;
  for (const auto& e : std::vector<TensorEntry>(m.tensors.begin(), m.tensors.end())) {
    if (!arch::is_norm_param(e.name)) continue;
    std::vector<float> v(e.numel());
    for (auto& x : v) {
      state = state * 1664525u + 1013904223u;
      x = (float(state >> 8) / float(1u << 24) - 0.5f) * 0.4f;  // [-0.2, 0.2)
    }
    m.tensors.put(make_tensor_f32(e.name, e.shape, v, e.dtype));
  }
}

fs::path write(const Model& m, const fs::path& p, const std::string& quant) {
  ThreadPool pool(2);
  formats::WriteOptions wo;
  wo.pool = &pool;
  wo.quant = quant;
  auto r = engine().write(m, p, wo);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().render());
  auto rep = validate_file(p);
  for (const auto& e : rep.errors) ADD_FAILURE() << e.render();
  return p;
}

std::vector<float> values(const TensorEntry& e) {
  auto v = read_f32(e);
  EXPECT_TRUE(v.ok()) << e.name;
  return v.ok() ? *v : std::vector<float>{};
}

class GgufFamilies : public ::testing::TestWithParam<std::string> {};

// HF -> GGUF f32 -> HF gives every tensor back bit for bit. Gemma stores its norms as 1 + w:
// that is exact to undo for a bf16 source (the sum has room for every bit of w), so its model is
// bf16 and compared as values.
TEST_P(GgufFamilies, F32RoundTripIsExact) {
  test::TempDir dir;
  const bool gemma = GetParam() == "gemma";
  Model src = random_model(family_config(GetParam()), gemma ? std::optional(DType::BF16) : std::nullopt);
  randomize_norms(src);
  const fs::path p = write(src, dir / "m.gguf", "f32");
  auto f = open(p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kv.get_string("general.architecture"), GetParam());
  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->tensors.size(), src.tensors.size());
  for (const auto& e : src.tensors) {
    const TensorEntry* b = back->tensors.find(e.name);
    ASSERT_NE(b, nullptr) << e.name;
    EXPECT_EQ(b->shape, e.shape) << e.name;
    EXPECT_EQ(values(*b), values(e)) << e.name;
  }
  auto c = arch::from_hf_config(back->config);
  ASSERT_TRUE(c.ok()) << c.error().render();
  EXPECT_EQ(c->family, arch::family_from_model_type(GetParam()));
  EXPECT_EQ(c->head_dim, GetParam() == "phi3" ? 16 : 32);
  EXPECT_EQ(c->tie_word_embeddings, gemma);
  if (gemma) {
    EXPECT_EQ(c->hidden_act, "gelu_pytorch_tanh");
  }
}

INSTANTIATE_TEST_SUITE_P(Families, GgufFamilies, ::testing::Values("qwen3", "phi3", "gemma"));

TEST(GgufFamilies, TensorLayoutsFollowConvertHfToGguf) {
  test::TempDir dir;
  {  // qwen3: q/k norms of head_dim, explicit head size in the keys
    auto f = open(write(random_model(family_config("qwen3")), dir / "q.gguf", "f16"));
    ASSERT_TRUE(f.ok());
    ASSERT_NE(f->find_tensor("blk.1.attn_k_norm.weight"), nullptr);
    EXPECT_EQ(f->find_tensor("blk.1.attn_k_norm.weight")->shape(), Shape{32});
    EXPECT_EQ(f->find_tensor("blk.1.attn_k_norm.weight")->ggml_type, 0u);  // norms stay F32
    EXPECT_EQ(f->kv.get_int("qwen3.attention.key_length"), 32);
  }
  {  // phi3: fused projections kept fused; the original context and window always written
    auto f = open(write(random_model(family_config("phi3")), dir / "p.gguf", "q8_0"));
    ASSERT_TRUE(f.ok());
    ASSERT_NE(f->find_tensor("blk.0.attn_qkv.weight"), nullptr);
    EXPECT_EQ(f->find_tensor("blk.0.attn_qkv.weight")->shape(), (Shape{(4 + 2 * 2) * 16, 64}));
    EXPECT_EQ(f->find_tensor("blk.0.ffn_up.weight")->shape(), (Shape{2 * 96, 64}));
    EXPECT_EQ(f->kv.get_int("phi3.rope.scaling.original_context_length"), 64);
    EXPECT_EQ(f->kv.get_int("phi3.attention.sliding_window"), 0);
  }
  {  // gemma: 1 + w, computed in f32 for bf16 and f32 sources, in f16 for an f16 source
    for (DType dt : {DType::F32, DType::F16}) {
      Model src = random_model(family_config("gemma"), dt);
      randomize_norms(src);
      auto f = open(write(src, dir / "g.gguf", "f16"));
      ASSERT_TRUE(f.ok());
      EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
      const auto w = values(**src.tensors.require("model.layers.1.post_attention_layernorm.weight"));
      const TensorInfo* t = f->find_tensor("blk.1.ffn_norm.weight");
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->ggml_type, 0u);
      const auto stored = values(*f->entry(*t));
      ASSERT_EQ(stored.size(), w.size());
      for (size_t i = 0; i < w.size(); ++i) {
        const float want = dt == DType::F16 ? f16_to_f32(f32_to_f16(w[i] + 1.0f)) : w[i] + 1.0f;
        ASSERT_EQ(stored[i], want) << i;
      }
    }
  }
}

TEST(GgufFamilies, Phi3LongropeTravelsAsLongAndShortFactors) {
  test::TempDir dir;
  ojson cfg = family_config("phi3");
  cfg["max_position_embeddings"] = 256;  // 4x the original 64: attention factor sqrt(1 + ln 4 / ln 64)
  ojson sf = ojson::array(), lf = ojson::array();
  for (int i = 0; i < 8; ++i) {
    sf.push_back(1.0 + 0.25 * i);
    lf.push_back(2.0 + 0.5 * i);
  }
  cfg["rope_scaling"] = {{"type", "longrope"}, {"short_factor", sf}, {"long_factor", lf}};
  const fs::path p = write(random_model(cfg), dir / "l.gguf", "f32");
  auto f = open(p);
  ASSERT_TRUE(f.ok());
  auto lt = f->find_tensor("rope_factors_long.weight"), st = f->find_tensor("rope_factors_short.weight");
  ASSERT_TRUE(lt && st);
  EXPECT_EQ(f->tensors[0].name, "rope_factors_long.weight");  // first, as convert_hf_to_gguf writes them
  EXPECT_EQ(values(*f->entry(*lt)), lf.get<std::vector<float>>());
  EXPECT_EQ(values(*f->entry(*st)), sf.get<std::vector<float>>());
  const double attn = std::sqrt(1.0 + std::log(4.0) / std::log(64.0));
  EXPECT_NEAR(f->kv.get_float("phi3.rope.scaling.attn_factor").value_or(0), attn, 1e-6);
  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  auto c = arch::from_hf_config(back->config);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rope_scaling["rope_type"], "longrope");
  EXPECT_EQ(c->rope_scaling["short_factor"].get<std::vector<float>>(), sf.get<std::vector<float>>());
  EXPECT_EQ(c->rope_scaling["long_factor"].get<std::vector<float>>(), lf.get<std::vector<float>>());
  EXPECT_EQ(c->rope_scaling["original_max_position_embeddings"], 64);
  EXPECT_EQ(back->config["original_max_position_embeddings"], 64);
  // A scaling the phi3 architecture cannot carry is refused, not dropped.
  cfg["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  ThreadPool pool(1);
  formats::WriteOptions wo;
  wo.pool = &pool;
  auto r = engine().write(random_model(cfg), dir / "d.gguf", wo);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
  EXPECT_NE(r.error().message.find("dynamic"), std::string::npos) << r.error().render();
}

TEST(GgufFamilies, Phi3NamesNeedPhi3Tokens) {
  std::string note;
  EXPECT_EQ(safe_general_name("Phi-3-mini-4k", {"<unk>", "<s>", "</s>"}, &note), "Phi_3-mini-4k");
  EXPECT_NE(note.find("<|endoftext|>"), std::string::npos) << note;
  note.clear();
  EXPECT_EQ(safe_general_name("tiny-PHI3", {"<s>"}, &note), "tiny-PHI_3");
  EXPECT_EQ(safe_general_name("Phi-3-mini", {"<unk>", "<s>", "</s>", "<|endoftext|>"}, &note), "Phi-3-mini");
  EXPECT_EQ(safe_general_name("llama", {}, &note), "llama");
}

}  // namespace
}  // namespace mc::gguf
