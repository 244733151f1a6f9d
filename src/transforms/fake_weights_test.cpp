// fake_weights: HF names/shapes per architecture from config.json alone (checked against
// hand-written lists), determinism, value statistics, shapes files (JSON and YAML).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "arch/config.h"
#include "testutil.h"
#include "arch/config.h"
#include "transforms/transforms.h"

namespace mc::transforms {
using arch::is_norm_param;
namespace {

using NameShape = std::vector<std::pair<std::string, Shape>>;

NameShape listing(const Model& m) {
  NameShape out;
  for (const auto& e : m.tensors) out.push_back({e.name, e.shape});
  return out;
}

Model config_only(const char* json) {
  Model m;
  m.config = ojson::parse(json);
  return m;
}

constexpr const char* kLlama1 = R"({"model_type":"llama","architectures":["LlamaForCausalLM"],
  "hidden_size":8,"intermediate_size":12,"num_hidden_layers":1,"num_attention_heads":4,
  "num_key_value_heads":2,"vocab_size":10,"tie_word_embeddings":false,"torch_dtype":"bfloat16"})";

TEST(FakeWeights, LlamaNamesShapesFromConfig) {
  auto r = fake_weights(config_only(kLlama1), {});
  ASSERT_TRUE(r.ok()) << r.error().render();
  const NameShape expect = {
      {"model.embed_tokens.weight", {10, 8}},
      {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
      {"model.layers.0.self_attn.k_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.v_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.o_proj.weight", {8, 8}},
      {"model.layers.0.mlp.gate_proj.weight", {12, 8}},
      {"model.layers.0.mlp.up_proj.weight", {12, 8}},
      {"model.layers.0.mlp.down_proj.weight", {8, 12}},
      {"model.layers.0.input_layernorm.weight", {8}},
      {"model.layers.0.post_attention_layernorm.weight", {8}},
      {"model.norm.weight", {8}},
      {"lm_head.weight", {10, 8}},
  };
  EXPECT_EQ(listing(*r), expect);
  for (const auto& e : r->tensors) EXPECT_EQ(e.dtype, DType::BF16) << e.name;  // from torch_dtype
}

TEST(FakeWeights, Qwen2BiasesAndTiedHead) {
  auto r = fake_weights(config_only(R"({"model_type":"qwen2","hidden_size":8,"intermediate_size":12,
      "num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":10,
      "tie_word_embeddings":true})"), {});
  ASSERT_TRUE(r.ok()) << r.error().render();
  const NameShape expect = {
      {"model.embed_tokens.weight", {10, 8}},
      {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
      {"model.layers.0.self_attn.q_proj.bias", {8}},
      {"model.layers.0.self_attn.k_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.k_proj.bias", {4}},
      {"model.layers.0.self_attn.v_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.v_proj.bias", {4}},
      {"model.layers.0.self_attn.o_proj.weight", {8, 8}},
      {"model.layers.0.mlp.gate_proj.weight", {12, 8}},
      {"model.layers.0.mlp.up_proj.weight", {12, 8}},
      {"model.layers.0.mlp.down_proj.weight", {8, 12}},
      {"model.layers.0.input_layernorm.weight", {8}},
      {"model.layers.0.post_attention_layernorm.weight", {8}},
      {"model.norm.weight", {8}},
  };
  EXPECT_EQ(listing(*r), expect);
  EXPECT_EQ(r->tensors[0].dtype, DType::F32);  // no torch_dtype: f32
}

TEST(FakeWeights, Gpt2ConvOneDShapesAndPrefix) {
  auto r = fake_weights(config_only(R"({"model_type":"gpt2","n_embd":8,"n_layer":1,"n_head":2,
      "vocab_size":10,"n_positions":16,"torch_dtype":"float16"})"), {});
  ASSERT_TRUE(r.ok()) << r.error().render();
  const NameShape expect = {
      {"transformer.wte.weight", {10, 8}},   {"transformer.wpe.weight", {16, 8}},
      {"transformer.h.0.ln_1.weight", {8}},  {"transformer.h.0.ln_1.bias", {8}},
      {"transformer.h.0.attn.c_attn.weight", {8, 24}}, {"transformer.h.0.attn.c_attn.bias", {24}},
      {"transformer.h.0.attn.c_proj.weight", {8, 8}},  {"transformer.h.0.attn.c_proj.bias", {8}},
      {"transformer.h.0.ln_2.weight", {8}},  {"transformer.h.0.ln_2.bias", {8}},
      {"transformer.h.0.mlp.c_fc.weight", {8, 32}},    {"transformer.h.0.mlp.c_fc.bias", {32}},
      {"transformer.h.0.mlp.c_proj.weight", {32, 8}},  {"transformer.h.0.mlp.c_proj.bias", {8}},
      {"transformer.ln_f.weight", {8}},      {"transformer.ln_f.bias", {8}},
  };
  EXPECT_EQ(listing(*r), expect);
  // LayerNorm: weight 1, bias 0 in random mode.
  EXPECT_EQ(*read_f32(*r->tensors.find("transformer.h.0.ln_1.weight")), std::vector<float>(8, 1.0f));
  EXPECT_EQ(*read_f32(*r->tensors.find("transformer.ln_f.bias")), std::vector<float>(8, 0.0f));
}

TEST(FakeWeights, MistralAndMiniCpmDefaults) {
  auto mi = fake_weights(config_only(R"({"model_type":"mistral","hidden_size":8,"intermediate_size":12,
      "num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":2,"vocab_size":10,
      "head_dim":6,"sliding_window":4096})"), {});
  ASSERT_TRUE(mi.ok());
  EXPECT_EQ(mi->tensors.size(), 1u + 2 * 9 + 1 + 1);  // untied by default
  EXPECT_EQ(mi->tensors.find("model.layers.1.self_attn.q_proj.weight")->shape, (Shape{12, 8}));
  EXPECT_EQ(mi->tensors.find("model.layers.1.self_attn.o_proj.weight")->shape, (Shape{8, 12}));
  // MiniCPM ties by default (no key in config.json): no lm_head.
  auto cpm = fake_weights(config_only(R"({"model_type":"minicpm","hidden_size":8,"intermediate_size":12,
      "num_hidden_layers":1,"num_attention_heads":2,"vocab_size":10,"scale_emb":12})"), {});
  ASSERT_TRUE(cpm.ok());
  EXPECT_EQ(cpm->tensors.size(), 1u + 9 + 1);
  EXPECT_FALSE(cpm->tensors.contains("lm_head.weight"));
}

TEST(FakeWeights, RealMiniCpm4Config) {
  auto dir = test::fixture("models/minicpm4-0.5b-config");
  if (!dir) GTEST_SKIP() << "fixture models/minicpm4-0.5b-config absent";
  std::ifstream f(*dir / "config.json");
  Model m;
  m.config = ojson::parse(f);
  auto r = fake_weights(m, {.mode = FakeMode::Zeros});
  ASSERT_TRUE(r.ok()) << r.error().render();
  EXPECT_EQ(r->tensors.size(), 1u + 24 * 9 + 1);
  EXPECT_EQ(r->tensors.find("model.embed_tokens.weight")->shape, (Shape{73448, 1024}));
  EXPECT_EQ(r->tensors.find("model.layers.23.self_attn.k_proj.weight")->shape, (Shape{128, 1024}));
  EXPECT_EQ(r->tensors.find("model.layers.0.mlp.down_proj.weight")->shape, (Shape{1024, 4096}));
  EXPECT_EQ(r->tensors[0].dtype, DType::BF16);
  EXPECT_EQ(r->tensors.total_params(), 73448ull * 1024 + 24ull * (1024 * 1024 * 2 + 128 * 1024 * 2 + 3 * 4096 * 1024 + 2 * 1024) + 1024);
  std::vector<std::byte> chunk(4096, std::byte{1});
  ASSERT_TRUE(r->tensors[0].data->read(1000, chunk).ok());
  for (auto b : chunk) ASSERT_EQ(b, std::byte{0});
}

TEST(FakeWeights, RandomIsDeterministicSmallAndChunkIndependent) {
  FakeOptions o{.mode = FakeMode::Random, .seed = 7, .dtype = DType::F32};
  auto a = fake_weights(config_only(kLlama1), o);
  auto b = fake_weights(config_only(kLlama1), o);
  o.seed = 8;
  auto c = fake_weights(config_only(kLlama1), o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const auto* ea = a->tensors.find("model.embed_tokens.weight");
  auto va = *read_f32(*ea);
  EXPECT_EQ(va, *read_f32(*b->tensors.find("model.embed_tokens.weight")));
  EXPECT_NE(va, *read_f32(*c->tensors.find("model.embed_tokens.weight")));
  // Two tensors of the same shape differ (the name is part of the key).
  EXPECT_NE(*read_f32(*a->tensors.find("model.layers.0.mlp.gate_proj.weight")),
            *read_f32(*a->tensors.find("model.layers.0.mlp.up_proj.weight")));
  EXPECT_EQ(*read_f32(*a->tensors.find("model.norm.weight")), std::vector<float>(8, 1.0f));
  // A read at an odd offset returns the same bytes as the whole read.
  std::vector<std::byte> part(13);
  ASSERT_TRUE(ea->data->read(5, part).ok());
  EXPECT_EQ(0, std::memcmp(part.data(), reinterpret_cast<const std::byte*>(va.data()) + 5, 13));

  // Statistics over a large tensor: mean ~ 0, std ~ 0.02 (N = 65536: std error of std ~ 0.3%).
  FakeOptions big{.mode = FakeMode::Random, .seed = 1};
  big.shapes = ojson::parse(R"({"w": [256, 256]})");
  auto r = fake_weights(Model{}, big);
  ASSERT_TRUE(r.ok());
  auto v = *read_f32(r->tensors[0]);
  double s = 0, s2 = 0;
  for (float x : v) s += x, s2 += double(x) * x;
  const double mean = s / double(v.size()), sd = std::sqrt(s2 / double(v.size()) - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.0005);
  EXPECT_NEAR(sd, 0.02, 0.0005);
}

// The exact values against tests/py/fake_random_oracle.py, an independent copy of the
// generator: f32 and bf16 outputs, and elements on both sides of index 2^32 (a 2^33-element
// tensor, of which only those few elements are ever made).
TEST(FakeWeights, RandomValuesMatchIndependentOracle) {
  auto oracle = [](const std::string& name, uint64_t first, uint64_t count) {
    std::string out;
    const int rc = test::run_python("fake_random_oracle.py 7 " + name + " 0.02 " + std::to_string(first) +
                                        " " + std::to_string(count),
                                    &out);
    EXPECT_EQ(rc, 0) << out;
    return nlohmann::json::parse(out);
  };
  FakeOptions o{.mode = FakeMode::Random, .seed = 7};
  o.shapes = ojson::parse(R"({"w": [3, 100], "v": {"shape": [300], "dtype": "bf16"},
                              "huge": [8589934592]})");
  o.dtype = DType::F32;
  auto r = fake_weights(Model{}, o);
  ASSERT_TRUE(r.ok()) << r.error().message;

  const auto w = *read_f32(*r->tensors.find("w"));
  const auto want_w = oracle("w", 0, 300);
  for (size_t i = 0; i < w.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(w[i]), want_w["f32"][i].get<uint32_t>()) << "w element " << i;

  const auto v = *read_all(*r->tensors.find("v"));
  const auto want_v = oracle("v", 0, 300);
  for (size_t i = 0; i < 300; ++i) {
    uint16_t got;
    std::memcpy(&got, v.data() + 2 * i, 2);
    ASSERT_EQ(got, want_v["bf16"][i].get<uint16_t>()) << "v element " << i;
  }

  const uint64_t first = (uint64_t(1) << 32) - 3;
  std::vector<float> h(6);
  ASSERT_TRUE(r->tensors.find("huge")->data->read(first * 4, std::as_writable_bytes(std::span(h))).ok());
  const auto want_h = oracle("huge", first, 6);
  for (size_t i = 0; i < h.size(); ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(h[i]), want_h["f32"][i].get<uint32_t>()) << "huge element " << first + i;
}

TEST(FakeWeights, ExistingModelKeepsNamesShapesDtypes) {
  Model m;
  m.tensors.put(make_tensor_f32("x.weight", {2, 3}, std::vector<float>(6, 5.0f), DType::F16));
  m.tensors.put(TensorEntry{"pos", DType::I64, {2}, make_owned_data(std::vector<std::byte>(16, std::byte{9}))});
  auto r = fake_weights(m, {.mode = FakeMode::Zeros});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->tensors.size(), 2u);
  EXPECT_EQ(r->tensors[0].dtype, DType::F16);
  EXPECT_EQ(*read_f32(r->tensors[0]), std::vector<float>(6, 0.0f));
  EXPECT_EQ(*read_all(r->tensors[1]), std::vector<std::byte>(16, std::byte{0}));
}

TEST(FakeWeights, ShapesFilesJsonAndYaml) {
  test::TempDir dir;
  {
    std::ofstream(dir / "s.json") << R"({"a.weight": [2, 3], "b": {"shape": [4], "dtype": "bf16"}})";
    std::ofstream(dir / "s.yaml") << "a.weight: [2, 3]\nb:\n  shape: [4]\n  dtype: bf16\n";
    std::ofstream(dir / "bad.json") << R"({"a": [2, -1]})";
  }
  for (const char* f : {"s.json", "s.yaml"}) {
    auto j = load_shapes_file((dir / f).string());
    ASSERT_TRUE(j.ok()) << f << ": " << j.error().render();
    auto r = fake_weights(config_only(kLlama1), {.shapes = *j});
    ASSERT_TRUE(r.ok()) << r.error().render();
    ASSERT_EQ(r->tensors.size(), 2u) << f;  // the file is the whole list
    EXPECT_EQ(r->tensors[0].name, "a.weight");
    EXPECT_EQ(r->tensors[0].shape, (Shape{2, 3}));
    EXPECT_EQ(r->tensors[0].dtype, DType::BF16);  // config torch_dtype is the default
    EXPECT_EQ(r->tensors[1].shape, (Shape{4}));
    EXPECT_EQ(r->tensors[1].dtype, DType::BF16);
  }
  auto bad = fake_weights(Model{}, {.shapes = *load_shapes_file((dir / "bad.json").string())});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(bad.error().tensor, "a");
  auto unparsable = parse_shapes_text("{nope", false, "x.json");
  EXPECT_EQ(unparsable.error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(unparsable.error().path, "x.json");
  auto unknown = fake_weights(config_only(R"({"model_type":"bert"})"), {});
  EXPECT_EQ(unknown.error().code, ErrorCode::Unsupported);
}

TEST(ParamNames, NormDetection) {
  EXPECT_TRUE(is_norm_param("model.layers.3.input_layernorm.weight"));
  EXPECT_TRUE(is_norm_param("model.norm.weight"));
  EXPECT_TRUE(is_norm_param("transformer.h.0.ln_2.bias"));
  EXPECT_TRUE(is_norm_param("transformer.ln_f.weight"));
  EXPECT_FALSE(is_norm_param("model.layers.3.mlp.down_proj.weight"));
  EXPECT_FALSE(is_norm_param("lm_head.weight"));
  EXPECT_FALSE(is_norm_param("transformer.h.0.attn.c_attn.weight"));
}

}  // namespace
}  // namespace mc::transforms
