// Writer and reader in process: exact config.json / index text, which tensors get quantized,
// lazy dequantization on read, validation errors, detection.
#include <gtest/gtest.h>

#include <fstream>

#include "formats/mlx/affine.h"
#include "formats/mlx/mlx.h"
#include "testutil.h"

namespace mc::mlx {
namespace {

namespace fs = std::filesystem;

using test::slurp;

std::vector<float> ramp(size_t n, float scale, float offset = 0) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = offset + scale * float(int(i * 37 % 101) - 50);
  return v;
}

// A two-module llama-like model: a 64-wide embedding, one 64x64 projection, a 96-wide matrix
// (not divisible by 64: stays float), a norm and rotary buffer (dropped).
Model tiny_model(bool tied) {
  Model m;
  m.config = ojson::parse(R"({"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 4,
    "vocab_size": 32, "rms_norm_eps": 1e-05, "_name_or_path": "x", "torch_dtype": "bfloat16", "title": "caf\u00e9"})");
  m.config["tie_word_embeddings"] = tied;
  m.tensors.put(make_tensor_f32("model.embed_tokens.weight", {32, 64}, ramp(32 * 64, 0.01f), DType::F32));
  m.tensors.put(make_tensor_f32("model.layers.0.self_attn.q_proj.weight", {64, 64}, ramp(64 * 64, 0.002f, 0.01f), DType::F32));
  m.tensors.put(make_tensor_f32("model.layers.0.mlp.odd.weight", {64, 96}, ramp(64 * 96, 0.003f), DType::F32));
  m.tensors.put(make_tensor_f32("model.layers.0.input_layernorm.weight", {64}, ramp(64, 0.001f, 1.0f), DType::F32));
  m.tensors.put(make_tensor_f32("model.layers.0.self_attn.rotary_emb.inv_freq", {8}, ramp(8, 0.1f), DType::F32));
  m.tensors.put(make_tensor_f32("lm_head.weight", {32, 64}, ramp(32 * 64, 0.004f), DType::F32));
  return m;
}

Result<formats::WriteResult> write(const Model& m, const fs::path& out, std::string quant) {
  ThreadPool pool(2);
  formats::WriteOptions o;
  o.pool = &pool;
  o.quant = std::move(quant);
  o.chunk_bytes = 1000;  // many small, unaligned-to-nothing chunks: exercises row-covering reads
  fs::create_directories(out);
  return write_dir(m, out, o);
}

TEST(MlxEngine, WritesMlxLmLayout) {
  test::TempDir tmp;
  auto r = write(tiny_model(/*tied=*/false), tmp / "o", "4bit");
  ASSERT_TRUE(r.ok()) << r.error().render();
  EXPECT_EQ(r->info["quantized_tensors"], 3);  // embed, q_proj, lm_head
  EXPECT_EQ(r->info["float_tensors"], 2);      // odd (96 % 64 != 0), norm
  const std::string cfg = slurp(tmp / "o" / "config.json");
  EXPECT_EQ(cfg.substr(0, 30), "{\n    \"architectures\": [\n     ");
  EXPECT_NE(cfg.find("\"quantization\": {\n        \"group_size\": 64,\n        \"bits\": 4,\n        \"mode\": \"affine\"\n    },\n"
                     "    \"quantization_config\": {\n        \"group_size\": 64,"),
            std::string::npos)
      << cfg;
  EXPECT_NE(cfg.find("\"caf\\u00e9\""), std::string::npos) << "non-ASCII escaped as json.dump does";
  EXPECT_EQ(cfg.find("_name_or_path"), std::string::npos);
  EXPECT_EQ(cfg.back(), '}');
  const auto idx = nlohmann::json::parse(slurp(tmp / "o" / "model.safetensors.index.json"));
  // 64*64 + 32*64*2 + 96*64 + 64 parameters, inv_freq dropped.
  EXPECT_EQ(idx["metadata"]["total_parameters"], 64 * 64 + 2 * 32 * 64 + 96 * 64 + 64);
  // bytes: packed 4-bit (n/2) + bf16 scales+biases (2 * 2 * n/64) per quantized; bf16 floats.
  const uint64_t q = 64 * 64 + 2 * 32 * 64;
  EXPECT_EQ(idx["metadata"]["total_size"], q / 2 + q / 16 + (96 * 64 + 64) * 2);
  EXPECT_EQ(idx["weight_map"].size(), 3u * 3 + 2);
  EXPECT_EQ(idx["weight_map"]["lm_head.scales"], "model.safetensors");
  EXPECT_EQ(detect(tmp / "o"), formats::Confidence::Certain);
  auto v = validate_dir(tmp / "o");
  EXPECT_TRUE(v.ok()) << (v.errors.empty() ? "" : v.errors[0].render());
  EXPECT_EQ(v.info["quantized_tensors"], 3);
}

TEST(MlxEngine, ReadsBackDequantizedWithHfNames) {
  test::TempDir tmp;
  const Model src = tiny_model(/*tied=*/true);
  ASSERT_TRUE(write(src, tmp / "o", "8bit").ok());
  auto m = read_dir(tmp / "o", {});
  ASSERT_TRUE(m.ok()) << m.error().render();
  EXPECT_FALSE(m->config.contains("quantization"));
  EXPECT_FALSE(m->config.contains("quantization_config"));
  EXPECT_FALSE(m->tensors.contains("lm_head.weight")) << "tied: mlx-lm drops lm_head";
  EXPECT_FALSE(m->tensors.contains("model.embed_tokens.scales"));
  const auto* q = m->tensors.find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, DType::BF16);
  EXPECT_EQ(q->shape, (Shape{64, 64}));
  EXPECT_DOUBLE_EQ(q->stored_bits, 8.5);
  // Expected: the source rounded to bf16, quantized, scales/biases to bf16, w = s*q + b, to bf16.
  auto orig = read_f32(*src.tensors.find("model.layers.0.self_attn.q_proj.weight"));
  std::vector<std::byte> tmpb(orig->size() * 2);
  from_f32(orig->data(), DType::BF16, tmpb.data(), orig->size());
  to_f32(DType::BF16, tmpb.data(), orig->data(), orig->size());
  auto got = read_f32(*q);
  ASSERT_TRUE(got.ok());
  for (int r = 0; r < 64; ++r) {
    std::vector<uint32_t> packed(16);
    float s, b;
    std::vector<uint8_t> scratch(64);
    quantize_row(orig->data() + r * 64, 64, 8, 64, packed.data(), &s, &b, scratch.data());
    uint16_t sb, bb;
    from_f32(&s, DType::BF16, &sb, 1);
    from_f32(&b, DType::BF16, &bb, 1);
    s = bf16_to_f32(sb);
    b = bf16_to_f32(bb);
    std::vector<float> row(64);
    dequantize_row(packed.data(), &s, &b, 64, 8, 64, row.data(), scratch.data());
    for (int c = 0; c < 64; ++c) {
      uint16_t h;
      from_f32(&row[size_t(c)], DType::BF16, &h, 1);
      ASSERT_EQ((*got)[size_t(r * 64 + c)], bf16_to_f32(h)) << r << "," << c;
    }
  }
  // Float tensors are the source rounded to bf16.
  auto norm = read_f32(*m->tensors.find("model.layers.0.input_layernorm.weight"));
  EXPECT_EQ((*norm)[3], bf16_to_f32(f32_to_bf16(1.0f + 0.001f * float(3 * 37 % 101 - 50))));
}

TEST(MlxEngine, ConfigOnlyDirectoryReadsWithoutWeights) {
  test::TempDir tmp;
  fs::create_directories(tmp / "m");
  std::ofstream(tmp / "m" / "config.json") << R"({"model_type":"llama","quantization":{"group_size":64,"bits":4}})";
  EXPECT_EQ(detect(tmp / "m"), formats::Confidence::Certain);
  auto m = read_dir(tmp / "m", {});
  ASSERT_TRUE(m.ok()) << m.error().render();
  EXPECT_TRUE(m->tensors.empty());
}

TEST(MlxEngine, ReaderRejectsInconsistentShapes) {
  test::TempDir tmp;
  ASSERT_TRUE(write(tiny_model(false), tmp / "o", "4bit").ok());
  auto cfg = nlohmann::ordered_json::parse(slurp(tmp / "o" / "config.json"));
  cfg["quantization"]["group_size"] = 32;  // scales were written for 64
  std::ofstream(tmp / "o" / "config.json") << cfg.dump(4);
  auto m = read_dir(tmp / "o", {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::Mismatch);
  EXPECT_NE(m.error().message.find("expected [32, 2] for 4 bits, group size 32"), std::string::npos)
      << m.error().render();
  auto v = validate_dir(tmp / "o");
  EXPECT_FALSE(v.ok());
  // Per-module override back to 64 for every module makes it consistent again.
  for (const char* p : {"model.embed_tokens", "model.layers.0.self_attn.q_proj", "lm_head"})
    cfg["quantization"][p] = {{"group_size", 64}, {"bits", 4}};
  std::ofstream(tmp / "o" / "config.json") << cfg.dump(4);
  EXPECT_TRUE(read_dir(tmp / "o", {}).ok());
  EXPECT_TRUE(validate_dir(tmp / "o").ok());
}

TEST(MlxEngine, BadQuantArgumentsAndGpt2AreRefused) {
  test::TempDir tmp;
  auto r = write(tiny_model(false), tmp / "o", "3bits");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(r.error().hint.find("4bit"), std::string::npos);
  Model g = tiny_model(false);
  g.config["model_type"] = "gpt2";
  g.config["n_embd"] = 64;
  g.config["n_layer"] = 1;
  g.config["n_head"] = 4;
  g.config["n_positions"] = 64;
  auto gr = write(g, tmp / "g", "4bit");
  ASSERT_FALSE(gr.ok());
  EXPECT_EQ(gr.error().code, ErrorCode::Unsupported);
}

}  // namespace
}  // namespace mc::mlx
