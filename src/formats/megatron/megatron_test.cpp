// Unit tests of the Megatron engine without Python: names, padding, and in-memory round trips
// HF -> Megatron (TP x PP x naming) -> HF compared byte for byte, plus the error paths.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "core/thread_pool.h"
#include "formats/megatron/layout.h"
#include "formats/megatron/megatron.h"
#include "formats/megatron/vocab.h"
#include "testutil.h"

namespace mc::megatron {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

TEST(MegatronLayout, PaddedVocabFollowsDivisibleByTimesTp) {
  EXPECT_EQ(padded_vocab_size(32000, 128, 1), 32000);
  EXPECT_EQ(padded_vocab_size(32001, 128, 2), 32256);
  EXPECT_EQ(padded_vocab_size(250, 128, 4), 512);
  EXPECT_EQ(padded_vocab_size(256, 128, 2), 256);
  EXPECT_EQ(padded_vocab_size(151936, 128, 8), 152576);
}

TEST(MegatronLayout, RankAndIterationNames) {
  EXPECT_EQ(iter_dir_name(1), "iter_0000001");
  EXPECT_EQ(iter_dir_name(-1), "release");
  EXPECT_EQ(rank_dir_name(1, 0, 1), "mp_rank_01");
  EXPECT_EQ(rank_dir_name(3, 1, 2), "mp_rank_03_001");
}

TEST(MegatronLayout, KeysRoundTripInBothStyles) {
  for (Naming n : {Naming::Legacy, Naming::Mcore})
    for (Part p : {Part::Embedding, Part::FinalNorm, Part::InNorm, Part::PostNorm, Part::Qkv, Part::QkvBias,
                   Part::Proj, Part::Fc1, Part::Fc2}) {
      const std::string k = megatron_key(n, p, 3);
      Naming seen = n == Naming::Legacy ? Naming::Mcore : Naming::Legacy;
      auto r = parse_megatron_key(k, &seen);
      ASSERT_TRUE(r.ok()) << k;
      ASSERT_TRUE(r->has_value()) << k;
      EXPECT_EQ((*r)->part, p) << k;
      if ((*r)->layer >= 0) {
        EXPECT_EQ((*r)->layer, 3) << k;
      }
      EXPECT_EQ(seen, n) << k;
    }
  EXPECT_EQ(megatron_key(Naming::Legacy, Part::Qkv, 0), "language_model.encoder.layers.0.self_attention.query_key_value.weight");
  EXPECT_EQ(megatron_key(Naming::Mcore, Part::Fc1, 5), "decoder.layers.5.mlp.linear_fc1.weight");
  EXPECT_EQ(megatron_key(Naming::Mcore, Part::OutputCopy, -1), "output_layer.weight");
  EXPECT_EQ(megatron_key(Naming::Legacy, Part::OutputCopy, -1), "word_embeddings_for_head.weight");
  // Megatron-Core's qk_layernorm weights; legacy names have no place for them.
  EXPECT_EQ(megatron_key(Naming::Mcore, Part::QNorm, 2), "decoder.layers.2.self_attention.q_layernorm.weight");
  EXPECT_EQ(megatron_key(Naming::Mcore, Part::KNorm, 0), "decoder.layers.0.self_attention.k_layernorm.weight");
  for (Part p : {Part::QNorm, Part::KNorm}) {
    EXPECT_TRUE(has_part(Naming::Mcore, p));
    EXPECT_FALSE(has_part(Naming::Legacy, p));
    auto r = parse_megatron_key(megatron_key(Naming::Mcore, p, 3), nullptr);
    ASSERT_TRUE(r.ok() && r->has_value());
    EXPECT_EQ((*r)->part, p);
    EXPECT_EQ((*r)->layer, 3);
  }
  EXPECT_TRUE(has_part(Naming::Legacy, Part::Qkv));
}

TEST(MegatronLayout, OlderAndTransformerEngineNames) {
  auto part_of = [](std::string_view k) { return (*parse_megatron_key(k, nullptr))->part; };
  EXPECT_EQ(part_of("language_model.encoder.layers.1.input_layernorm.weight"), Part::InNorm);
  EXPECT_EQ(part_of("language_model.transformer.final_layernorm.weight"), Part::FinalNorm);
  EXPECT_EQ(part_of("decoder.layers.0.self_attention.linear_qkv.layer_norm_weight"), Part::InNorm);
  EXPECT_EQ(part_of("decoder.layers.0.mlp.linear_fc1.layer_norm_weight"), Part::PostNorm);
  auto extra = parse_megatron_key("decoder.layers.0.self_attention.linear_qkv._extra_state", nullptr);
  ASSERT_TRUE(extra.ok());
  EXPECT_FALSE(extra->has_value());
  auto moe = parse_megatron_key("decoder.layers.0.mlp.router.weight", nullptr);
  ASSERT_FALSE(moe.ok());
  EXPECT_EQ(moe.error().code, ErrorCode::Unsupported);
  EXPECT_EQ(moe.error().tensor, "decoder.layers.0.mlp.router.weight");
}

// ---- in-memory models ---------------------------------------------------------------------------

struct Spec {
  std::string type = "llama";
  int64_t vocab = 250, hidden = 32, heads = 8, kv = 4, ffn = 48, layers = 4;
  bool tied = false;
  int64_t head_dim = 0;  // 0: hidden/heads (qwen3 states its own)
};

Model make_model(const Spec& s, uint32_t seed = 7) {
  Model m;
  const char* cls = s.type == "minicpm" ? "MiniCPMForCausalLM" : s.type == "qwen3" ? "Qwen3ForCausalLM" : "LlamaForCausalLM";
  ojson c = {{"architectures", ojson::array({cls})},
             {"model_type", s.type},         {"hidden_size", s.hidden},     {"intermediate_size", s.ffn},
             {"num_attention_heads", s.heads}, {"num_key_value_heads", s.kv}, {"num_hidden_layers", s.layers},
             {"vocab_size", s.vocab},        {"rms_norm_eps", 1e-5},        {"rope_theta", 500000.0},
             {"max_position_embeddings", 256}, {"hidden_act", "silu"},       {"tie_word_embeddings", s.tied}};
  if (s.type == "minicpm") {
    c["scale_emb"] = 12;
    c["scale_depth"] = 1.4;
    c["dim_model_base"] = 16;
  }
  if (s.head_dim) c["head_dim"] = s.head_dim;
  m.config_text = c.dump(2) + "\n";
  m.config = c;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto put = [&](const std::string& n, Shape shape) {
    uint64_t count = 1;
    for (auto d : shape) count *= uint64_t(d);
    std::vector<float> v(count);
    for (auto& x : v) x = nd(rng);
    m.tensors.put(make_tensor_f32(n, shape, v));
  };
  const int64_t hd = s.head_dim ? s.head_dim : s.hidden / s.heads;
  put("model.embed_tokens.weight", {s.vocab, s.hidden});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    put(p + "self_attn.q_proj.weight", {s.heads * hd, s.hidden});
    put(p + "self_attn.k_proj.weight", {s.kv * hd, s.hidden});
    put(p + "self_attn.v_proj.weight", {s.kv * hd, s.hidden});
    put(p + "self_attn.o_proj.weight", {s.hidden, s.heads * hd});
    if (s.type == "qwen3") {
      put(p + "self_attn.q_norm.weight", {hd});
      put(p + "self_attn.k_norm.weight", {hd});
    }
    put(p + "mlp.gate_proj.weight", {s.ffn, s.hidden});
    put(p + "mlp.up_proj.weight", {s.ffn, s.hidden});
    put(p + "mlp.down_proj.weight", {s.hidden, s.ffn});
    put(p + "input_layernorm.weight", {s.hidden});
    put(p + "post_attention_layernorm.weight", {s.hidden});
  }
  put("model.norm.weight", {s.hidden});
  if (!s.tied) put("lm_head.weight", {s.vocab, s.hidden});
  m.extra_files.push_back({"tokenizer_config.json", {}, std::string("{\"model_max_length\": 256}\n")});
  return m;
}

Result<formats::WriteResult> write_to(const Model& m, const fs::path& out, int tp, int pp, const std::string& naming) {
  static ThreadPool pool(2);
  formats::WriteOptions o;
  o.pool = &pool;
  o.tensor_parallel = tp;
  o.pipeline_parallel = pp;
  o.naming = naming;
  o.chunk_bytes = 4096;  // several chunks per tensor: exercises partial-row reads
  std::error_code ec;
  fs::create_directories(out, ec);
  return write(m, out, o);
}

void expect_same_tensors(const Model& a, const Model& b, const std::string& what) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size()) << what;
  for (const auto& t : a.tensors) {
    const TensorEntry* u = b.tensors.find(t.name);
    ASSERT_NE(u, nullptr) << what << ": " << t.name;
    ASSERT_EQ(u->shape, t.shape) << what << ": " << t.name;
    ASSERT_EQ(u->dtype, t.dtype) << what << ": " << t.name;
    auto x = read_all(t), y = read_all(*u);
    ASSERT_TRUE(x.ok() && y.ok()) << what;
    ASSERT_TRUE(*x == *y) << what << ": " << t.name << " differs";
  }
}

TEST(MegatronRoundTrip, EveryLayoutGivesBackTheSameBytes) {
  for (const Spec& s : {Spec{}, Spec{"minicpm", 300, 32, 8, 4, 48, 4, true}, Spec{"llama", 256, 32, 4, 4, 64, 2, true}})
    for (int tp : {1, 2, 4})
      for (int pp : {1, 2})
        for (const char* naming : {"legacy", "mcore"}) {
          const std::string what = s.type + (s.tied ? " tied" : "") + " tp" + std::to_string(tp) + " pp" +
                                   std::to_string(pp) + " " + naming;
          const Model m = make_model(s);
          TempDir tmp;
          auto w = write_to(m, tmp.path(), tp, pp, naming);
          ASSERT_TRUE(w.ok()) << what << ": " << w.error().render();
          EXPECT_EQ(w->files.size(), size_t(tp * pp + 2)) << what;  // ranks + latest + tokenizer_config
          auto rep = validate(tmp.path());
          ASSERT_TRUE(rep.ok()) << what << ": " << rep.errors[0].render();
          EXPECT_EQ(rep.info["naming"], naming) << what;
          EXPECT_EQ(rep.info["tensor_parallel"], tp) << what;
          EXPECT_EQ(rep.info["pipeline_parallel"], pp) << what;
          auto back = read(tmp.path(), {});
          ASSERT_TRUE(back.ok()) << what << ": " << back.error().render();
          expect_same_tensors(m, *back, what);
          EXPECT_EQ(back->config_text, m.config_text) << what;
          ASSERT_NE(back->find_extra("tokenizer_config.json"), nullptr) << what;
        }
}

// Qwen3: q/k norms as replicated q_layernorm / k_layernorm, head_dim (kv_channels) 16 while
// hidden/heads is 4, so every QKV / o_proj shape depends on kv_channels, not hidden/heads.
TEST(MegatronRoundTrip, Qwen3ThroughMegatronCoreNames) {
  for (const bool tied : {false, true})
    for (int tp : {1, 2})
      for (int pp : {1, 2}) {
        Spec s{"qwen3", 250, 32, 8, 4, 48, 4, tied, 16};
        const std::string what = std::string("qwen3") + (tied ? " tied" : "") + " tp" + std::to_string(tp) + " pp" +
                                 std::to_string(pp);
        const Model m = make_model(s, 11);
        TempDir tmp;
        auto w = write_to(m, tmp.path(), tp, pp, "mcore");
        ASSERT_TRUE(w.ok()) << what << ": " << w.error().render();
        auto d = describe(tmp.path());
        ASSERT_TRUE(d.ok()) << what << ": " << d.error().render();
        EXPECT_EQ((*d)["model_type"], "qwen3") << what;
        EXPECT_EQ((*d)["qk_layernorm"], true) << what;
        EXPECT_EQ((*d)["kv_channels"], 16) << what;
        auto back = read(tmp.path(), {});
        ASSERT_TRUE(back.ok()) << what << ": " << back.error().render();
        expect_same_tensors(m, *back, what);
        EXPECT_EQ(back->config_text, m.config_text) << what;
        ASSERT_NE(back->tensors.find("model.layers.3.self_attn.k_norm.weight"), nullptr) << what;
        // Read as a family without q/k norms, the weights would be dropped: refused instead.
        formats::ReadOptions ro;
        ro.model_type = "llama";
        auto wrong = read(tmp.path(), ro);
        ASSERT_FALSE(wrong.ok()) << what;
        EXPECT_EQ(wrong.error().code, ErrorCode::Mismatch) << what;
        EXPECT_NE(wrong.error().message.find("q_layernorm"), std::string::npos) << wrong.error().message;
      }
  // A llama checkpoint read as qwen3 lacks the norms.
  TempDir tmp;
  ASSERT_TRUE(write_to(make_model(Spec{}), tmp.path(), 1, 1, "mcore").ok());
  formats::ReadOptions ro;
  ro.model_type = "qwen3";
  auto r = read(tmp.path(), ro);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Mismatch);
}

TEST(MegatronWrite, LegacyNamesRefuseQkNormsBeforeWriting) {
  TempDir tmp;
  auto r = write_to(make_model(Spec{"qwen3", 250, 32, 8, 4, 48, 2, false, 16}), tmp / "legacy", 2, 1, "legacy");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(r.error().message.find("q/k norms"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().hint.find("mcore"), std::string::npos) << r.error().hint;
  EXPECT_TRUE(fs::is_empty(tmp / "legacy"));  // nothing written
  // A q_norm of the wrong size is named before anything is written too.
  Model m = make_model(Spec{"qwen3", 250, 32, 8, 4, 48, 2, false, 16});
  m.tensors.put(make_tensor_f32("model.layers.1.self_attn.q_norm.weight", {8}, std::vector<float>(8, 1.f)));
  r = write_to(m, tmp / "bad", 1, 1, "mcore");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Mismatch);
  EXPECT_EQ(r.error().tensor, "model.layers.1.self_attn.q_norm.weight");
  EXPECT_TRUE(fs::is_empty(tmp / "bad"));
}

TEST(MegatronRoundTrip, DescribeReportsLayoutAndHyperParameters) {
  TempDir tmp;
  ASSERT_TRUE(write_to(make_model(Spec{"minicpm", 300, 32, 8, 4, 48, 4, true}), tmp.path(), 2, 2, "").ok());
  auto d = describe(tmp.path());
  ASSERT_TRUE(d.ok()) << d.error().render();
  EXPECT_EQ((*d)["iteration"], 1);
  EXPECT_EQ((*d)["naming"], "mcore");  // the default
  EXPECT_EQ((*d)["num_layers"], 4);
  EXPECT_EQ((*d)["num_query_groups"], 4);
  EXPECT_EQ((*d)["padded_vocab_size"], 512);
  EXPECT_EQ((*d)["vocab_size"], 300);
  EXPECT_EQ((*d)["vocab_size_source"], "args.vocab_size");
  EXPECT_EQ((*d)["mup"]["scale_emb"], 12.0);
  EXPECT_EQ((*d)["mup"]["dim_model_base"], 16.0);
  EXPECT_EQ(detect(tmp.path()), formats::Confidence::Certain);
}

TEST(MegatronWrite, RefusesLayoutsThatDoNotDivide) {
  TempDir tmp;
  const Model m = make_model(Spec{});
  auto r = write_to(m, tmp / "a", 8, 1, "mcore");  // 4 query groups
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(r.error().message.find("4 query groups"), std::string::npos) << r.error().message;
  r = write_to(m, tmp / "b", 1, 3, "mcore");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("--pp 3"), std::string::npos) << r.error().message;
  r = write_to(m, tmp / "c", 1, 1, "core");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
}

TEST(MegatronRead, MissingRankFileIsNamed) {
  TempDir tmp;
  ASSERT_TRUE(write_to(make_model(Spec{}), tmp.path(), 2, 2, "legacy").ok());
  const fs::path gone = tmp / "iter_0000001/mp_rank_01_001/model_optim_rng.pt";
  fs::remove(gone);
  auto r = read(tmp.path(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::NotFound);
  EXPECT_EQ(r.error().path, gone.string());
  EXPECT_NE(r.error().message.find("tensor rank 1, pipeline rank 1"), std::string::npos) << r.error().message;
  EXPECT_FALSE(validate(tmp.path()).ok());
}

TEST(MegatronRead, InconsistentShapesAreReported) {
  // Write TP=2 files, then relabel them as a TP=1 + TP=1 pair of different checkpoints: take the
  // rank-0 file of a TP=2 checkpoint as the only rank of a TP=1 one (args say TP=2 -> mismatch),
  // and a TP=2 file whose args were written for another hidden size.
  TempDir a, b;
  ASSERT_TRUE(write_to(make_model(Spec{}), a.path(), 2, 1, "mcore").ok());
  Spec wide;
  wide.ffn = 96;
  ASSERT_TRUE(write_to(make_model(wide), b.path(), 2, 1, "mcore").ok());
  // Rank 1 of `a` replaced by rank 1 of `b`: its linear_fc1 has 96 rows, args say 48.
  fs::copy_file(b / "iter_0000001/mp_rank_01/model_optim_rng.pt", a / "iter_0000001/mp_rank_01/model_optim_rng.pt",
                fs::copy_options::overwrite_existing);
  auto r = read(a.path(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Mismatch);
  EXPECT_NE(r.error().message.find("shape [96, 32]"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().path.find("mp_rank_01"), std::string::npos) << r.error().path;
  EXPECT_EQ(r.error().tensor, "decoder.layers.0.mlp.linear_fc1.weight");
  EXPECT_FALSE(validate(a.path()).ok());
  // Removing a rank folder entirely makes the layout TP=1 while args say TP=2.
  fs::remove_all(b / "iter_0000001/mp_rank_01");
  r = read(b.path(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Mismatch);
  EXPECT_NE(r.error().message.find("args say TP=2 PP=1 but the rank folders give TP=1 PP=1"), std::string::npos)
      << r.error().message;
}

TEST(MegatronRead, ModelPtWithMetadataJsonLayout) {
  TempDir tmp;
  const Model m = make_model(Spec{});
  ASSERT_TRUE(write_to(m, tmp / "w", 1, 1, "legacy").ok());
  fs::create_directories(tmp / "single");
  fs::copy_file(tmp / "w/iter_0000001/mp_rank_00/model_optim_rng.pt", tmp / "single/model.pt");
  std::ofstream(tmp / "single/metadata.json") << R"({"args": {"num_layers": 99}})";  // pickled args win
  EXPECT_EQ(detect(tmp / "single"), formats::Confidence::Certain);
  auto back = read(tmp / "single", {});
  ASSERT_TRUE(back.ok()) << back.error().render();
  expect_same_tensors(m, *back, "model.pt");
  auto d = describe(tmp / "single");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)["layout"], "model.pt");
  EXPECT_EQ((*d)["num_layers"], 4);
  std::ofstream(tmp / "single/metadata.json") << R"({"sharded_backend": "torch_dist"})";
  auto r = read(tmp / "single", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
  EXPECT_NE(r.error().message.find("torch_dist"), std::string::npos) << r.error().message;
}

TEST(MegatronRead, DistributedCheckpointIsRejectedByName) {
  TempDir tmp;
  fs::create_directories(tmp / "iter_0000010");
  std::ofstream(tmp / "latest_checkpointed_iteration.txt") << "10\n";
  std::ofstream(tmp / "iter_0000010/__0_0.distcp") << "x";
  std::ofstream(tmp / "iter_0000010/common.pt") << "x";
  auto r = read(tmp.path(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
  EXPECT_NE(r.error().message.find("torch_dist"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("__0_0.distcp"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().hint.find("--ckpt-convert-format torch"), std::string::npos);
}

TEST(MegatronRead, BadIterationFileAndEmptyFolder) {
  TempDir tmp;
  std::ofstream(tmp / "latest_checkpointed_iteration.txt") << "soon";
  auto r = read(tmp.path(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Corrupt);
  TempDir empty;
  fs::create_directories(empty / "iter_0000002");
  r = read(empty.path(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::NotFound);
}

TEST(MegatronVocab, TokenizerJsonAndSentencePieceCounts) {
  TempDir tmp;
  std::ofstream(tmp / "tokenizer.json")
      << R"({"model":{"type":"BPE","vocab":{"a":0,"b":1,"c":2}},"added_tokens":[{"id":7,"content":"<x>"}]})";
  auto v = tokenizer_vocab_size(tmp.path());
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->size, 8);
  // ModelProto with 3 pieces (field 1, length-delimited) and one other field (2).
  const std::string sp = std::string("\x0a\x02\x0a\x00", 4) + std::string("\x0a\x00", 2) + std::string("\x0a\x00", 2) +
                         std::string("\x12\x01\x08", 3);
  std::ofstream(tmp / "sp.model", std::ios::binary) << sp;
  v = tokenizer_vocab_size(tmp / "sp.model");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->size, 3);
  std::ofstream(tmp / "bad.model", std::ios::binary) << std::string("\x0a\x7f", 2);  // length past the end
  EXPECT_FALSE(tokenizer_vocab_size(tmp / "bad.model").has_value());
}

}  // namespace
}  // namespace mc::megatron
