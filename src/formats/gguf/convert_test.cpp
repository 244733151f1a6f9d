// HF -> GGUF -> HF on tiny models built in memory: bit-identical f32 round trips, f16 equal to
// the f16 cast, names/metadata/types as convert_hf_to_gguf writes them, the q/k permutation,
// GPT-2's transposition, quantized file types and requantization.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "formats/gguf/file.h"
#include "formats/gguf/gguf.h"
#include "formats/gguf/mapping.h"
#include "formats/gguf/test_models.h"
#include "testutil.h"

namespace mc::gguf {
namespace {

using testing::TinySpec;
using testing::tiny_model;

fs::path write_gguf(const Model& m, const fs::path& p, const std::string& quant, size_t threads = 2) {
  ThreadPool pool(threads);
  formats::WriteOptions wo;
  wo.pool = &pool;
  wo.quant = quant;
  wo.chunk_bytes = 4096;  // many chunks even for tiny tensors
  auto r = engine().write(m, p, wo);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().render());
  return p;
}

std::vector<std::byte> bytes_of(const TensorEntry& e) {
  auto b = read_all(e);
  EXPECT_TRUE(b.ok()) << e.name;
  return b.ok() ? *b : std::vector<std::byte>{};
}

std::vector<std::byte> f16_cast(const TensorEntry& e) {
  auto v = read_f32(e);
  std::vector<std::byte> out(v->size() * 2);
  from_f32(v->data(), DType::F16, out.data(), v->size());
  return out;
}

void expect_valid(const fs::path& p) {
  auto rep = validate_file(p);
  for (const auto& e : rep.errors) ADD_FAILURE() << e.render();
}

TEST(GgufConvert, LlamaF32RoundTripIsBitIdentical) {
  test::TempDir dir;
  Model src = tiny_model({});
  auto p = write_gguf(src, dir / "m.gguf", "f32");
  expect_valid(p);
  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->tensors.size(), src.tensors.size());
  for (const auto& e : src.tensors) {
    const TensorEntry* b = back->tensors.find(e.name);
    ASSERT_NE(b, nullptr) << e.name;
    EXPECT_EQ(b->shape, e.shape) << e.name;
    EXPECT_EQ(b->dtype, DType::F32) << e.name;
    EXPECT_TRUE(bytes_of(*b) == bytes_of(e)) << e.name;
  }
  const auto& c = back->config;
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["hidden_size"], 64);
  EXPECT_EQ(c["num_key_value_heads"], 2);
  EXPECT_EQ(c["num_attention_heads"], 4);
  EXPECT_EQ(c["intermediate_size"], 96);
  EXPECT_EQ(c["tie_word_embeddings"], false);
  EXPECT_NEAR(c["rms_norm_eps"].get<double>(), 1e-5, 1e-12);
}

// Llama 3 RoPE scaling has no GGUF key: it is written as rope_freqs.weight (convert_hf_to_gguf's
// rule; expected values worked out separately in double precision from the config below), and
// read back as the equivalent longrope config. Scalings llama.cpp cannot express are refused.
TEST(GgufConvert, Llama3RopeScalingTravelsAsRopeFreqs) {
  test::TempDir dir;
  Model src = tiny_model({});  // head_dim 16, theta 10000
  src.config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  auto p = write_gguf(src, dir / "m.gguf", "q8_0");
  expect_valid(p);
  auto f = open(p);
  ASSERT_TRUE(f.ok()) << f.error().render();
  const TensorInfo* t = f->find_tensor("rope_freqs.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ggml_type, 0u);  // F32 even in a quantized file
  auto r = read_f32(*f->entry(*t));
  ASSERT_TRUE(r.ok());
  const std::vector<float> want = {1.0f, 1.293975830078125f, 7.667385101318359f, 8, 8, 8, 8, 8};
  ASSERT_EQ(r->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*r)[i], want[i], 2e-6f * want[i]) << i;

  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->tensors.size(), src.tensors.size());  // no HF tensor for the factors
  const auto& rs = back->config["rope_scaling"];
  EXPECT_EQ(rs["rope_type"], "longrope");
  EXPECT_EQ(rs["short_factor"], rs["long_factor"]);
  EXPECT_EQ(rs["attention_factor"], 1.0);
  ASSERT_EQ(rs["short_factor"].size(), 8u);
  EXPECT_EQ(rs["short_factor"][2].get<float>(), (*r)[2]);
  // ... and that form goes back to GGUF as the same factors.
  auto p2 = write_gguf(*back, dir / "again.gguf", "f32");
  auto f2 = open(p2);
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(f2->tensors.front().name, "rope_freqs.weight");  // first, as convert_hf_to_gguf writes it
  EXPECT_EQ(read_f32(*f2->entry(*f2->find_tensor("rope_freqs.weight"))).value(), *r);

  src.config["rope_scaling"] = {{"rope_type", "longrope"}, {"short_factor", std::vector<double>(8, 1.0)},
                                {"long_factor", std::vector<double>(8, 2.0)}};
  ThreadPool pool(1);
  formats::WriteOptions wo;
  wo.pool = &pool;
  wo.quant = "f16";
  auto bad = engine().write(src, dir / "bad.gguf", wo);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::Unsupported);
  EXPECT_NE(bad.error().message.find("short_factor and long_factor differ"), std::string::npos)
      << bad.error().render();
  EXPECT_FALSE(fs::exists(dir / "bad.gguf"));
}

TEST(GgufConvert, LlamaMetadataAndPermutation) {
  test::TempDir dir;
  Model src = tiny_model({});
  auto f = open(write_gguf(src, dir / "m.gguf", "f16"));
  ASSERT_TRUE(f.ok()) << f.error().render();
  const KvStore& kv = f->kv;
  EXPECT_EQ(kv.get_string("general.architecture"), "llama");
  EXPECT_EQ(kv.get_string("general.name"), "tiny-llama");
  auto u32 = [&](const char* k) {
    const Value* v = kv.find(k);
    EXPECT_TRUE(v && v->type() == ValueType::U32) << k;
    return v ? v->as_int().value_or(-1) : -1;
  };
  EXPECT_EQ(u32("llama.context_length"), 128);
  EXPECT_EQ(u32("llama.embedding_length"), 64);
  EXPECT_EQ(u32("llama.block_count"), 2);
  EXPECT_EQ(u32("llama.feed_forward_length"), 96);
  EXPECT_EQ(u32("llama.attention.head_count"), 4);
  EXPECT_EQ(u32("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(u32("llama.rope.dimension_count"), 16);
  EXPECT_EQ(u32("llama.vocab_size"), 64);
  EXPECT_EQ(u32("general.file_type"), 1);
  EXPECT_FALSE(kv.contains("general.quantization_version"));
  EXPECT_FALSE(kv.contains("llama.attention.key_length"));  // head_dim == hidden / heads
  EXPECT_EQ(kv.find("llama.attention.layer_norm_rms_epsilon")->type(), ValueType::F32);
  EXPECT_FLOAT_EQ(float(*kv.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_FLOAT_EQ(float(*kv.get_float("llama.rope.freq_base")), 10000.0f);

  // Types as convert_hf_to_gguf --outtype f16 writes them.
  EXPECT_EQ(f->find_tensor("token_embd.weight")->ggml_type, 1u);
  EXPECT_EQ(f->find_tensor("blk.0.attn_norm.weight")->ggml_type, 0u);
  EXPECT_EQ(f->find_tensor("output_norm.weight")->ggml_type, 0u);
  EXPECT_EQ(f->find_tensor("output.weight")->ggml_type, 1u);
  EXPECT_EQ(f->find_tensor("blk.1.ffn_down.weight")->ne, (std::vector<int64_t>{96, 64}));

  // q rows: GGUF row h*hd + 2i + j is HF row h*hd + j*hd/2 + i (hd = 16); k uses the kv heads.
  for (auto [hf_name, gguf_name, heads] :
       {std::tuple{"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 4},
        std::tuple{"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 2}}) {
    auto hf = f16_cast(**src.tensors.require(hf_name));
    auto g = bytes_of(*f->entry(*f->find_tensor(gguf_name)));
    const size_t rb = 64 * 2;
    ASSERT_EQ(hf.size(), g.size());
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 2; ++j) {
          const size_t gr = size_t(h * 16 + 2 * i + j), hr = size_t(h * 16 + j * 8 + i);
          EXPECT_EQ(0, std::memcmp(g.data() + gr * rb, hf.data() + hr * rb, rb)) << gguf_name << " row " << gr;
        }
  }
  // v is not permuted.
  EXPECT_TRUE(bytes_of(*f->entry(*f->find_tensor("blk.0.attn_v.weight"))) ==
              f16_cast(**src.tensors.require("model.layers.0.self_attn.v_proj.weight")));
}

TEST(GgufConvert, F16RoundTripEqualsTheCast) {
  test::TempDir dir;
  Model src = tiny_model({});
  auto p = write_gguf(src, dir / "m.gguf", "f16");
  expect_valid(p);
  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->config["torch_dtype"], "float16");
  for (const auto& e : src.tensors) {
    const TensorEntry* b = back->tensors.find(e.name);
    ASSERT_NE(b, nullptr) << e.name;
    if (e.shape.size() == 1) {
      EXPECT_EQ(b->dtype, DType::F32);
      EXPECT_TRUE(bytes_of(*b) == bytes_of(e)) << e.name;
    } else {
      EXPECT_EQ(b->dtype, DType::F16);
      EXPECT_TRUE(bytes_of(*b) == f16_cast(e)) << e.name;
    }
  }
}

TEST(GgufConvert, Qwen2BiasesAndTiedOutput) {
  test::TempDir dir;
  Model src = tiny_model({.family = "qwen2", .tied = true});
  auto p = write_gguf(src, dir / "q.gguf", "f32");
  expect_valid(p);
  auto f = open(p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kv.get_string("general.architecture"), "qwen2");
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  const TensorInfo* qb = f->find_tensor("blk.0.attn_q.bias");
  ASSERT_NE(qb, nullptr);
  EXPECT_EQ(qb->ggml_type, 0u);
  // qwen2 uses NEOX RoPE: no permutation, bytes as in HF.
  EXPECT_TRUE(bytes_of(*f->entry(*qb)) == bytes_of(**src.tensors.require("model.layers.0.self_attn.q_proj.bias")));
  EXPECT_TRUE(bytes_of(*f->entry(*f->find_tensor("blk.0.attn_q.weight"))) ==
              bytes_of(**src.tensors.require("model.layers.0.self_attn.q_proj.weight")));
  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->config["model_type"], "qwen2");
  EXPECT_EQ(back->config["tie_word_embeddings"], true);
  EXPECT_EQ(back->tensors.size(), src.tensors.size());
  for (const auto& e : src.tensors)
    EXPECT_TRUE(bytes_of(**back->tensors.require(e.name)) == bytes_of(e)) << e.name;
}

TEST(GgufConvert, Gpt2TransposesConv1DAndDuplicatesOutput) {
  test::TempDir dir;
  Model src = tiny_model({.family = "gpt2", .inter = 256, .heads = 4});
  auto p = write_gguf(src, dir / "g.gguf", "f16");
  expect_valid(p);
  auto f = open(p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kv.get_string("general.architecture"), "gpt2");
  EXPECT_EQ(f->kv.find("gpt2.attention.layer_norm_epsilon")->type(), ValueType::F32);
  EXPECT_EQ(f->kv.get_int("gpt2.feed_forward_length"), 256);
  EXPECT_EQ(f->find_tensor("blk.0.attn.bias"), nullptr);
  EXPECT_EQ(f->find_tensor("position_embd.weight")->ggml_type, 0u);  // always F32
  const TensorInfo* qkv = f->find_tensor("blk.0.attn_qkv.weight");
  ASSERT_NE(qkv, nullptr);
  EXPECT_EQ(qkv->shape(), (Shape{192, 64}));
  // Element [o, i] of the GGUF weight is element [i, o] of the Conv1D weight.
  auto conv = read_f32(**src.tensors.require("transformer.h.0.attn.c_attn.weight"));
  auto g = bytes_of(*f->entry(*qkv));
  for (int o : {0, 5, 191})
    for (int i : {0, 7, 63}) {
      uint16_t h;
      std::memcpy(&h, g.data() + size_t(o * 64 + i) * 2, 2);
      EXPECT_EQ(h, f32_to_f16((*conv)[size_t(i * 192 + o)])) << o << "," << i;
    }
  EXPECT_TRUE(bytes_of(*f->entry(*f->find_tensor("output.weight"))) ==
              bytes_of(*f->entry(*f->find_tensor("token_embd.weight"))));

  auto p32 = write_gguf(src, dir / "g32.gguf", "f32");
  auto back = read_model(p32, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  size_t compared = 0;
  for (const auto& e : src.tensors) {
    if (e.name.ends_with(".attn.bias")) {
      EXPECT_EQ(back->tensors.find(e.name), nullptr);
      continue;
    }
    EXPECT_TRUE(bytes_of(**back->tensors.require(e.name)) == bytes_of(e)) << e.name;
    ++compared;
  }
  EXPECT_EQ(compared, back->tensors.size());
  EXPECT_EQ(back->config["n_inner"], 256);
}

TEST(GgufConvert, MiniCpmKeepsItsScales) {
  test::TempDir dir;
  Model src = tiny_model({.family = "minicpm", .tied = true});
  auto p = write_gguf(src, dir / "c.gguf", "f32");
  expect_valid(p);
  auto f = open(p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kv.get_string("general.architecture"), "minicpm");
  EXPECT_FLOAT_EQ(float(*f->kv.get_float("minicpm.embedding_scale")), 12.0f);
  EXPECT_FLOAT_EQ(float(*f->kv.get_float("minicpm.residual_scale")), float(1.4 / std::sqrt(2.0)));
  EXPECT_FLOAT_EQ(float(*f->kv.get_float("minicpm.logit_scale")), 4.0f);
  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->config["model_type"], "minicpm");
  EXPECT_NEAR(back->config["scale_depth"].get<double>(), 1.4, 1e-6);
  EXPECT_NEAR(back->config["dim_model_base"].get<double>(), 16, 1e-6);
  for (const auto& e : src.tensors)
    EXPECT_TRUE(bytes_of(**back->tensors.require(e.name)) == bytes_of(e)) << e.name;
}

TEST(GgufConvert, ErrorsNameTheProblem) {
  test::TempDir dir;
  Model src = tiny_model({});
  src.tensors.put(make_tensor_f32("model.layers.0.mystery.weight", {2}, std::vector<float>{1, 2}));
  ThreadPool pool(1);
  formats::WriteOptions wo;
  wo.pool = &pool;
  auto r = engine().write(src, dir / "x.gguf", wo);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
  EXPECT_EQ(r.error().tensor, "model.layers.0.mystery.weight");
  wo.quant = "q9_9";
  r = engine().write(tiny_model({}), dir / "y.gguf", wo);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
}

TEST(GgufConvert, ValidateChecksShapesAndKeys) {
  test::TempDir dir;
  Model src = tiny_model({});
  auto plan = plan_from_model(src, {.ftype = quant::FileType::F32});
  ASSERT_TRUE(plan.ok());
  ThreadPool pool(1);
  // A wrong shape for one tensor and a missing required key.
  for (auto& t : plan->tensors)
    if (t.name == "blk.1.ffn_up.weight") t.shape = {48, 128};
  plan->kv.erase("llama.attention.layer_norm_rms_epsilon");
  auto p = dir / "bad.gguf";
  ASSERT_TRUE(write_file(p, plan->kv, plan->tensors, pool).ok());
  auto rep = validate_file(p);
  ASSERT_EQ(rep.errors.size(), 1u);
  EXPECT_NE(rep.errors[0].message.find("layer_norm_rms_epsilon"), std::string::npos);
  plan->kv.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  plan->kv.set_u32("llama.block_count", 2);
  ASSERT_TRUE(write_file(p, plan->kv, plan->tensors, pool).ok());
  rep = validate_file(p);
  ASSERT_EQ(rep.errors.size(), 1u) << rep.errors[0].render();
  EXPECT_EQ(rep.errors[0].code, ErrorCode::Mismatch);
  EXPECT_EQ(rep.errors[0].tensor, "blk.1.ffn_up.weight");
  EXPECT_NE(rep.errors[0].message.find("expected [96, 64]"), std::string::npos);
}

std::vector<std::byte> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string s{std::istreambuf_iterator<char>(in), {}};
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

TEST(GgufConvert, QuantizedTypesFollowLlamaQuantize) {
  test::TempDir dir;
  TinySpec s{.vocab = 96, .hidden = 256, .inter = 512, .layers = 8, .heads = 4, .kv_heads = 2};
  Model src = tiny_model(s);
  auto p = write_gguf(src, dir / "q.gguf", "q4_k_m");
  expect_valid(p);
  auto f = open(p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kv.get_int("general.file_type"), 15);
  EXPECT_EQ(f->kv.find("general.quantization_version")->type(), ValueType::U32);
  EXPECT_EQ(f->kv.get_int("general.quantization_version"), 2);
  auto type = [&](const std::string& n) { return f->find_tensor(n)->ggml_type; };
  EXPECT_EQ(type("output.weight"), 14u);        // Q6_K
  EXPECT_EQ(type("token_embd.weight"), 12u);    // Q4_K
  EXPECT_EQ(type("blk.0.attn_norm.weight"), 0u);
  // use_more_bits(i, 8): layers 0, 7 and (i - 1) % 3 == 2 -> 3, 6.
  for (int i = 0; i < 8; ++i) {
    const bool more = i == 0 || i == 7 || i == 3 || i == 6;
    EXPECT_EQ(type(fmt::format("blk.{}.attn_v.weight", i)), more ? 14u : 12u) << i;
    EXPECT_EQ(type(fmt::format("blk.{}.ffn_down.weight", i)), more ? 14u : 12u) << i;
    EXPECT_EQ(type(fmt::format("blk.{}.attn_q.weight", i)), 12u) << i;
  }
  // llama-quantize order: non-block tensors first, then by block number and name.
  EXPECT_EQ(f->tensors[0].name, "output.weight");
  EXPECT_EQ(f->tensors.back().name, "blk.7.ffn_up.weight");
  // Dequantized read-back stays close to the source.
  auto back = read_model(p, {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  for (const char* n : {"model.layers.3.self_attn.q_proj.weight", "lm_head.weight"}) {
    auto a = read_f32(**src.tensors.require(n));
    auto b = read_f32(**back->tensors.require(n));
    double err = 0, ref = 0;
    for (size_t i = 0; i < a->size(); ++i) {
      err += std::pow((*a)[i] - (*b)[i], 2);
      ref += std::pow((*a)[i], 2);
    }
    EXPECT_LT(std::sqrt(err / ref), 0.08) << n;  // 4/6-bit K-quants: a few percent
  }
  // Bytes do not depend on the thread count.
  auto p1 = write_gguf(src, dir / "q1.gguf", "q4_k_m", 1);
  EXPECT_TRUE(file_bytes(p1) == file_bytes(p));
}

TEST(GgufConvert, RequantizeMatchesQuantizingTheSameValues) {
  // GGUF f16 -> GGUF q8_0 (dequantize, requantize: llama-quantize's path) equals quantizing the
  // f16-rounded HF weights directly.
  test::TempDir dir;
  TinySpec s{.vocab = 64, .hidden = 128, .inter = 256, .layers = 2};
  Model src = tiny_model(s);
  auto p16 = write_gguf(src, dir / "a16.gguf", "f16");
  auto mid = read_model(p16, {});
  ASSERT_TRUE(mid.ok());
  auto pq = write_gguf(*mid, dir / "b.gguf", "q8_0");
  s.dtype = DType::F16;
  Model src16 = tiny_model(s);
  for (const auto& e : src.tensors)  // norms as F32, like the f16 GGUF holds them
    if (e.shape.size() == 1) src16.tensors.put(e);
  auto pd = write_gguf(src16, dir / "c.gguf", "q8_0");
  auto b = open(pq), c = open(pd);
  ASSERT_TRUE(b.ok() && c.ok());
  ASSERT_EQ(b->tensors.size(), c->tensors.size());
  for (size_t i = 0; i < b->tensors.size(); ++i) {
    EXPECT_EQ(b->tensors[i].name, c->tensors[i].name);
    EXPECT_EQ(b->tensors[i].ggml_type, c->tensors[i].ggml_type) << b->tensors[i].name;
    EXPECT_TRUE(std::ranges::equal(b->tensor_bytes(b->tensors[i]), c->tensor_bytes(c->tensors[i])))
        << b->tensors[i].name;
  }
  EXPECT_EQ(b->find_tensor("blk.0.attn_q.weight")->ggml_type, 8u);
}

}  // namespace
}  // namespace mc::gguf
