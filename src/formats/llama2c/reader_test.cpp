// llama2.c reader: the real stories260K fixture (values checked at offsets computed by hand),
// v0/v1/v2 files from tests/py/llama2c_ref.py's writer, malformed headers, tokenizer attachment,
// and logits of the imported model (through ref_forward.py) against llama2c_ref.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "formats/llama2c/llama2c.h"
#include "testutil.h"

namespace mc::llama2c {
namespace {

std::vector<std::byte> file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), {});
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

float raw_f32(const std::vector<std::byte>& b, uint64_t off) {
  float v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

float value_at(const Model& m, const std::string& name, uint64_t index) {
  const auto* e = m.tensors.find(name);
  EXPECT_NE(e, nullptr) << name;
  if (!e) return NAN;
  float v = NAN;
  auto st = e->data->read(index * 4, std::span<std::byte>(reinterpret_cast<std::byte*>(&v), 4));
  EXPECT_TRUE(st.ok());
  return v;
}

// Writes config.json + model.safetensors (f32) of `m` so tests/py/ref_forward.py can run it.
void write_hf_dir(const Model& m, const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << m.config.dump(2);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t off = 0;
  for (const auto& e : m.tensors) {
    header[e.name] = {{"dtype", "F32"}, {"shape", e.shape}, {"data_offsets", {off, off + e.nbytes()}}};
    off += e.nbytes();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::ofstream f(dir / "model.safetensors", std::ios::binary);
  const uint64_t n = h.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << h;
  for (const auto& e : m.tensors) {
    auto bytes = read_all(e);
    ASSERT_TRUE(bytes.ok());
    f.write(reinterpret_cast<const char*>(bytes->data()), std::streamsize(bytes->size()));
  }
}

TEST(Llama2c, Stories260KConfigAndRawValues) {
  auto path = test::fixture("llama2c/stories260K.bin");
  if (!path) GTEST_SKIP() << "fixture llama2c/stories260K.bin absent";
  EXPECT_EQ(detect(*path), formats::Confidence::Likely);
  auto r = read(*path, {});
  ASSERT_TRUE(r.ok()) << r.error().render();
  const Model& m = *r;
  const auto& c = m.config;
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(c["hidden_size"], 64);
  EXPECT_EQ(c["intermediate_size"], 172);
  EXPECT_EQ(c["num_hidden_layers"], 5);
  EXPECT_EQ(c["num_attention_heads"], 8);
  EXPECT_EQ(c["num_key_value_heads"], 4);
  EXPECT_EQ(c["vocab_size"], 512);
  EXPECT_EQ(c["max_position_embeddings"], 512);
  EXPECT_EQ(c["rms_norm_eps"], 1e-5);
  EXPECT_EQ(c["rope_theta"], 10000.0);
  EXPECT_EQ(c["tie_word_embeddings"], true);
  EXPECT_EQ(c["bos_token_id"], 1);
  EXPECT_EQ(c["eos_token_id"], 2);
  EXPECT_EQ(c["torch_dtype"], "float32");
  EXPECT_EQ(m.tensors.size(), 1u + 5 * 9 + 1);
  EXPECT_FALSE(m.tensors.contains("lm_head.weight"));
  EXPECT_EQ(m.tensors.find("model.layers.0.self_attn.k_proj.weight")->shape, (Shape{32, 64}));

  // Offsets by hand (floats after the 28-byte header): embedding 512*64, attention norms 5*64,
  // wq 5*64*64, wk 5*32*64, wv 5*32*64, wo 5*64*64, ffn norms 5*64, w1/w2/w3 5*172*64 each.
  const auto raw = file_bytes(*path);
  const uint64_t emb = 28, att = emb + 4 * 512 * 64, wq = att + 4 * 5 * 64, wk = wq + 4 * 5 * 64 * 64,
                 wv = wk + 4 * 5 * 32 * 64, wo = wv + 4 * 5 * 32 * 64, ffn = wo + 4 * 5 * 64 * 64,
                 w1 = ffn + 4 * 5 * 64, w2 = w1 + 4 * 5 * 172 * 64, w3 = w2 + 4 * 5 * 172 * 64,
                 fin = w3 + 4 * 5 * 172 * 64;
  EXPECT_EQ(fin + 4 * 64 + 2 * 4 * 512 * 4, raw.size());
  EXPECT_EQ(value_at(m, "model.embed_tokens.weight", 3 * 64 + 5), raw_f32(raw, emb + 4 * (3 * 64 + 5)));
  EXPECT_EQ(value_at(m, "model.layers.2.input_layernorm.weight", 7), raw_f32(raw, att + 4 * (2 * 64 + 7)));
  EXPECT_EQ(value_at(m, "model.layers.4.post_attention_layernorm.weight", 63), raw_f32(raw, ffn + 4 * (4 * 64 + 63)));
  EXPECT_EQ(value_at(m, "model.norm.weight", 11), raw_f32(raw, fin + 4 * 11));
  // q (head size 8): HF row 17 = head 2, j = 1 (k % 8 = 1 < 4) -> pair row 2 of head 2 = row 18.
  EXPECT_EQ(value_at(m, "model.layers.1.self_attn.q_proj.weight", 17 * 64 + 9),
            raw_f32(raw, wq + 4 * (1 * 64 * 64 + 18 * 64 + 9)));
  // HF row 21 = head 2, k = 5 (second half, i = 1) -> pair row 2*1 + 1 = 3 of head 2 = row 19.
  EXPECT_EQ(value_at(m, "model.layers.1.self_attn.q_proj.weight", 21 * 64 + 0),
            raw_f32(raw, wq + 4 * (1 * 64 * 64 + 19 * 64 + 0)));
  // k (4 kv heads of 8): HF row 13 = head 1, k = 5 -> row 8 + 3 = 11.
  EXPECT_EQ(value_at(m, "model.layers.0.self_attn.k_proj.weight", 13 * 64 + 63),
            raw_f32(raw, wk + 4 * (11 * 64 + 63)));
  // v and o are not permuted.
  EXPECT_EQ(value_at(m, "model.layers.3.self_attn.v_proj.weight", 13 * 64 + 1), raw_f32(raw, wv + 4 * (3 * 32 * 64 + 13 * 64 + 1)));
  EXPECT_EQ(value_at(m, "model.layers.3.self_attn.o_proj.weight", 40 * 64 + 2), raw_f32(raw, wo + 4 * (3 * 64 * 64 + 40 * 64 + 2)));
  // w1 -> gate, w2 -> down [64, 172], w3 -> up.
  EXPECT_EQ(value_at(m, "model.layers.4.mlp.gate_proj.weight", 100 * 64 + 3), raw_f32(raw, w1 + 4 * (4 * 172 * 64 + 100 * 64 + 3)));
  EXPECT_EQ(value_at(m, "model.layers.4.mlp.down_proj.weight", 10 * 172 + 100), raw_f32(raw, w2 + 4 * (4 * 172 * 64 + 10 * 172 + 100)));
  EXPECT_EQ(value_at(m, "model.layers.0.mlp.up_proj.weight", 171 * 64 + 63), raw_f32(raw, w3 + 4 * (171 * 64 + 63)));
}

TEST(Llama2c, Stories260KTruncatedAndPadded) {
  auto path = test::fixture("llama2c/stories260K.bin");
  if (!path) GTEST_SKIP() << "fixture llama2c/stories260K.bin absent";
  auto raw = file_bytes(*path);
  test::TempDir dir;
  {
    std::ofstream(dir / "short.bin", std::ios::binary).write(reinterpret_cast<const char*>(raw.data()), std::streamsize(raw.size() - 4));
    std::ofstream f(dir / "long.bin", std::ios::binary);
    f.write(reinterpret_cast<const char*>(raw.data()), std::streamsize(raw.size()));
    f.write("\0\0\0\0", 4);
  }
  auto s = read(dir / "short.bin", {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::Truncated);
  EXPECT_NE(s.error().message.find("file has 1056536 bytes"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("implies 1056540"), std::string::npos) << s.error().message;
  EXPECT_EQ(detect(dir / "short.bin"), formats::Confidence::No);
  auto l = read(dir / "long.bin", {});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, ErrorCode::Corrupt);
}

TEST(Llama2c, BadHeaders) {
  std::vector<std::byte> h(256);
  auto put = [&](size_t off, int32_t v) { std::memcpy(h.data() + off, &v, 4); };
  put(0, int32_t(kMagic));
  put(4, 3);
  auto r = parse_header(h, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Corrupt);
  EXPECT_EQ(r.error().offset, 4u);
  // legacy: dim 64, hidden 172, layers 5, heads 0 -> names the field and its offset.
  const int32_t dims[7] = {64, 172, 5, 0, 4, 512, 512};
  std::memcpy(h.data(), dims, 28);
  r = parse_header(h, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().offset, 12u);
  EXPECT_NE(r.error().message.find("n_heads = 0"), std::string::npos);
  const int32_t gqa[7] = {64, 172, 5, 8, 3, 512, 512};
  std::memcpy(h.data(), gqa, 28);
  r = parse_header(h, 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("n_kv_heads 3 does not divide n_heads 8"), std::string::npos);
  const int32_t huge[7] = {64, 172, 5, 8, 4, 2000000000, 512};
  std::memcpy(h.data(), huge, 28);
  EXPECT_EQ(parse_header(h, 1 << 20).error().code, ErrorCode::Corrupt);
  EXPECT_EQ(parse_header(std::span(h).first(10), 10).error().code, ErrorCode::Truncated);
}

class Llama2cPy : public ::testing::Test {
 protected:
  // One interpreter start writes every variant: m{0,1,2}{s,u}.bin (version, shared/unshared).
  static void SetUpTestSuite() {
    if (!test::have_torch()) return;
    dir_ = new test::TempDir();
    std::string out;
    made_ = test::run_python("llama2c_ref.py --make-all " + dir_->path().string() + " --seed 3", &out) == 0;
    EXPECT_TRUE(made_) << out;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!test::have_torch()) GTEST_SKIP() << "python3-torch not installed: interop test skipped";
    ASSERT_TRUE(made_);
  }
  static fs::path make(int version, bool unshared) {
    return dir_->path() / ("m" + std::to_string(version) + (unshared ? "u" : "s") + ".bin");
  }
  static test::TempDir* dir_;
  static bool made_;
};
test::TempDir* Llama2cPy::dir_ = nullptr;
bool Llama2cPy::made_ = false;

TEST_F(Llama2cPy, VersionsReadBackEqual) {
  for (bool unshared : {false, true}) {
    auto p0 = make(0, unshared), p1 = make(1, unshared), p2 = make(2, unshared);
    EXPECT_EQ(detect(p0), formats::Confidence::Likely);
    EXPECT_EQ(detect(p1), formats::Confidence::Certain);
    EXPECT_EQ(detect(p2), formats::Confidence::Certain);
    auto m0 = read(p0, {}), m1 = read(p1, {}), m2 = read(p2, {});
    ASSERT_TRUE(m0.ok()) << m0.error().render();
    ASSERT_TRUE(m1.ok()) << m1.error().render();
    ASSERT_TRUE(m2.ok()) << m2.error().render();
    EXPECT_EQ(m1->config, m0->config);
    EXPECT_EQ(m1->tensors.contains("lm_head.weight"), unshared);
    EXPECT_EQ(m1->config["tie_word_embeddings"], !unshared);
    ASSERT_EQ(m0->tensors.size(), m1->tensors.size());
    ASSERT_EQ(m2->tensors.size(), m1->tensors.size());
    for (size_t i = 0; i < m1->tensors.size(); ++i) {
      const auto& a = m0->tensors[i];
      const auto& b = m1->tensors[i];
      const auto& q = m2->tensors[i];
      ASSERT_EQ(a.name, b.name);
      ASSERT_EQ(q.name, b.name);
      EXPECT_EQ(*read_all(a), *read_all(b)) << b.name;
      // v2: each group of 32 is within half a step (max|w| / 127 / 2) of the fp32 value.
      auto fv = *read_f32(b), qv = *read_f32(q);
      for (size_t g = 0; g < fv.size(); g += 32) {
        float mx = 0;
        for (size_t k = g; k < std::min(fv.size(), g + 32); ++k) mx = std::max(mx, std::fabs(fv[k]));
        for (size_t k = g; k < std::min(fv.size(), g + 32); ++k)
          ASSERT_LE(std::fabs(fv[k] - qv[k]), mx / 127.0f * 0.5001f + 1e-7f) << b.name << " [" << k << "]";
      }
    }
    // v2 by hand: header 256 + f32 norms (2 layers x 64 x 2 + 64) = 1536: the embedding's int8
    // values, then its scales after 96 x 64 values.
    const auto raw = file_bytes(p2);
    int32_t gs;
    std::memcpy(&gs, raw.data() + 37, 4);
    EXPECT_EQ(gs, 32);
    const float expect = float(int8_t(raw[1536 + 70])) * raw_f32(raw, 1536 + 96 * 64 + 4 * (70 / 32));
    EXPECT_EQ(value_at(*m2, "model.embed_tokens.weight", 70), expect);
  }
}

TEST_F(Llama2cPy, ImportedLogitsMatchRunC) {
  // The imported model (HF names, rotate-half q/k) run by ref_forward.py must give the logits
  // llama2c_ref.py (run.c's adjacent-pair RoPE on the raw file) gives.
  std::vector<fs::path> files = {make(1, true), make(2, false)};
  if (auto p = test::fixture("llama2c/stories260K.bin")) files.push_back(*p);
  std::string pairs;
  for (const auto& f : files) {
    auto m = read(f, {});
    ASSERT_TRUE(m.ok()) << m.error().render();
    const fs::path hf = dir_->path() / (f.stem().string() + "-hf");
    write_hf_dir(*m, hf);
    pairs += (pairs.empty() ? "" : ",") + f.string() + "=" + hf.string();
  }
  std::string out;
  ASSERT_EQ(test::run_python("llama2c_ref.py --pairs " + pairs + " --ids 1,7,42,9,3,60", &out), 0) << out;
  auto j = nlohmann::json::parse(out.substr(out.find('[')));
  ASSERT_EQ(j.size(), files.size());
  for (const auto& r : j) {
    auto a = r["ref"].get<std::vector<std::vector<float>>>();
    auto b = r["hf"].get<std::vector<std::vector<float>>>();
    ASSERT_EQ(a.size(), 6u);
    ASSERT_EQ(a.size(), b.size());
    float max_diff = 0, max_abs = 0;
    for (size_t t = 0; t < a.size(); ++t) {
      ASSERT_EQ(a[t].size(), b[t].size());
      for (size_t i = 0; i < a[t].size(); ++i) {
        max_diff = std::max(max_diff, std::fabs(a[t][i] - b[t][i]));
        max_abs = std::max(max_abs, std::fabs(a[t][i]));
      }
    }
    EXPECT_GT(max_abs, 0.1f) << r["file"];  // logits are not degenerate
    EXPECT_LT(max_diff, 1e-4f) << r["file"];
  }
}

TEST(Llama2c, TokenizerAttachment) {
  auto path = test::fixture("llama2c/stories260K.bin");
  auto tok = test::fixture("tokenizers/llama2-spm/tokenizer.model");
  if (!path || !tok) GTEST_SKIP() << "fixtures llama2c/stories260K.bin or tokenizers/llama2-spm absent";
  formats::ReadOptions opt;
  opt.tokenizer = *tok;
  auto r = read(*path, opt);
  ASSERT_TRUE(r.ok()) << r.error().render();
  const auto* tm = r->find_extra("tokenizer.model");
  ASSERT_NE(tm, nullptr);
  EXPECT_EQ(tm->source, *tok);
  const auto* tc = r->find_extra("tokenizer_config.json");
  ASSERT_NE(tc, nullptr);
  auto j = nlohmann::json::parse(*tc->content);
  EXPECT_EQ(j["tokenizer_class"], "LlamaTokenizer");
  EXPECT_EQ(j["add_bos_token"], true);
  EXPECT_EQ(j["model_max_length"], 512);
  // A directory holding tokenizer.model works too; llama2.c's tokenizer.bin is refused.
  opt.tokenizer = tok->parent_path();
  EXPECT_TRUE(read(*path, opt).ok());
  if (auto bin = test::fixture("tokenizers/llama2-spm/tokenizer.bin")) {
    opt.tokenizer = *bin;
    auto b = read(*path, opt);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error().code, ErrorCode::Unsupported);
  }
  opt.tokenizer = fs::path("/nonexistent/tokenizer.model");
  EXPECT_EQ(read(*path, opt).error().code, ErrorCode::NotFound);
}

TEST(Llama2c, EngineEntry) {
  const auto& e = engine();
  EXPECT_EQ(e.id, "llama2c");
  EXPECT_NE(e.read, nullptr);
  EXPECT_EQ(e.write, nullptr);
  EXPECT_EQ(e.detect(fs::path("/nonexistent")), formats::Confidence::No);
}

}  // namespace
}  // namespace mc::llama2c
