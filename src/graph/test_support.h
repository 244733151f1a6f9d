// Test-only helpers of the graph tests (included by *_test.cpp only): a minimal HF directory
// loader (config.json + model.safetensors, formats.md §1.1) until the hf reader is in place, the
// batch oracle runner, and a synthetic Llama maker for tests and the benchmark.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/model.h"
#include "testutil.h"

namespace mc::graph::test {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Loads config.json + model.safetensors. Tensors view one shared in-memory buffer, or, with
// `lazy_reads`, are served by read() callbacks without a view (the other TensorData path).
inline Model load_hf_dir(const fs::path& dir, bool lazy_reads = false) {
  Model m;
  m.source_path = dir.string();
  m.config_text = slurp(dir / "config.json");
  m.config = ojson::parse(m.config_text);
  auto buf = std::make_shared<std::vector<std::byte>>();
  const std::string raw = slurp(dir / "model.safetensors");
  buf->resize(raw.size());
  std::memcpy(buf->data(), raw.data(), raw.size());
  uint64_t n = 0;
  std::memcpy(&n, buf->data(), 8);
  const auto header = ojson::parse(raw.substr(8, n));
  const size_t base = 8 + n;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    TensorEntry e;
    e.name = name;
    e.dtype = *dtype_from_st_name(info["dtype"].get<std::string>());
    e.shape = info["shape"].get<Shape>();
    const size_t b = info["data_offsets"][0].get<size_t>(), end = info["data_offsets"][1].get<size_t>();
    std::span<const std::byte> bytes(buf->data() + base + b, end - b);
    if (lazy_reads) {
      e.data = make_fn_data([buf, bytes](uint64_t off, std::span<std::byte> dst) -> Status {
        std::memcpy(dst.data(), bytes.data() + off, dst.size());
        return {};
      });
    } else {
      e.data = std::make_shared<MemoryData>(buf, bytes, false);
    }
    m.tensors.put(std::move(e));
  }
  return m;
}

struct OracleResult {
  std::vector<std::vector<float>> logits;
  std::vector<int32_t> greedy;
  std::vector<std::vector<float>> rt_logits;  // rt_oracle.py's answer, when the case has one
};

inline OracleResult read_oracle(const fs::path& dir) {
  const auto j = ojson::parse(slurp(dir / "oracle.json"));
  OracleResult r;
  r.logits = j["logits_all"].get<std::vector<std::vector<float>>>();
  r.greedy = j["greedy_ids"].get<std::vector<int32_t>>();
  if (j.contains("rt_logits_all")) r.rt_logits = j["rt_logits_all"].get<std::vector<std::vector<float>>>();
  return r;
}

inline double max_abs_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double m = 0;
  EXPECT_EQ(a.size(), b.size());
  for (size_t t = 0; t < a.size() && t < b.size(); ++t) {
    EXPECT_EQ(a[t].size(), b[t].size());
    for (size_t i = 0; i < a[t].size() && i < b[t].size(); ++i)
      m = std::max(m, std::fabs(static_cast<double>(a[t][i]) - b[t][i]));
  }
  return m;
}

// A random Llama built in memory (no files): uniform weights scaled by 1/sqrt(fan-in).
struct LlamaDims {
  int64_t vocab = 96, hidden = 32, layers = 2, heads = 4, kv_heads = 2, inter = 48;
};
inline Model synthetic_llama(const LlamaDims& d, DType dtype = DType::F32, uint32_t seed = 1) {
  Model m;
  m.config = ojson{{"model_type", "llama"},
                   {"architectures", {"LlamaForCausalLM"}},
                   {"vocab_size", d.vocab},
                   {"hidden_size", d.hidden},
                   {"intermediate_size", d.inter},
                   {"num_hidden_layers", d.layers},
                   {"num_attention_heads", d.heads},
                   {"num_key_value_heads", d.kv_heads},
                   {"rms_norm_eps", 1e-5},
                   {"max_position_embeddings", 4096},
                   {"tie_word_embeddings", false}};
  std::mt19937 rng(seed);
  auto add = [&](const std::string& name, Shape shape, float scale, float offset = 0.0f) {
    uint64_t n = 1;
    for (auto s : shape) n *= static_cast<uint64_t>(s);
    std::vector<float> v(n);
    std::uniform_real_distribution<float> u(-scale, scale);
    for (auto& x : v) x = offset + u(rng);
    m.tensors.put(make_tensor_f32(name, std::move(shape), v, dtype));
  };
  const int64_t hd = d.hidden / d.heads;
  const float sh = 1.7f / std::sqrt(static_cast<float>(d.hidden)), si = 1.7f / std::sqrt(static_cast<float>(d.inter));
  add("model.embed_tokens.weight", {d.vocab, d.hidden}, 1.0f);
  for (int64_t l = 0; l < d.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {d.hidden}, 0.1f, 1.0f);
    add(p + "self_attn.q_proj.weight", {d.heads * hd, d.hidden}, sh);
    add(p + "self_attn.k_proj.weight", {d.kv_heads * hd, d.hidden}, sh);
    add(p + "self_attn.v_proj.weight", {d.kv_heads * hd, d.hidden}, sh);
    add(p + "self_attn.o_proj.weight", {d.hidden, d.heads * hd}, sh);
    add(p + "post_attention_layernorm.weight", {d.hidden}, 0.1f, 1.0f);
    add(p + "mlp.gate_proj.weight", {d.inter, d.hidden}, sh);
    add(p + "mlp.up_proj.weight", {d.inter, d.hidden}, sh);
    add(p + "mlp.down_proj.weight", {d.hidden, d.inter}, si);
  }
  add("model.norm.weight", {d.hidden}, 0.1f, 1.0f);
  add("lm_head.weight", {d.vocab, d.hidden}, sh);
  return m;
}

}  // namespace mc::graph::test
