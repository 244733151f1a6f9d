// Test-only helpers of the TorchScript tests (included by *_test.cpp only): a tiny random model of
// every family built in memory from a config.json (the parameter table is arch::hf_param_specs),
// written as an HF directory (config.json + pytorch_model.bin) when a test needs files; and a
// zip writer that rebuilds an archive from its records (stored or deflated), to make malformed ones.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "arch/config.h"
#include "core/model.h"
#include "formats/torch/torch_io.h"
#include "formats/torch/zip.h"
#include "io/output.h"

namespace mc::torchscript::fixtures {

namespace fs = std::filesystem;

// config.json of a tiny model: hidden 64, 4 heads over 2 kv heads (GPT-2: 4), ffn 128, vocab
// 256, 2 layers, 128 positions, as tests/py/make_models.py writes them.
inline ojson tiny_config(const std::string& family) {
  if (family == "gpt2")
    return ojson{{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"activation_function", "gelu_new"},
                 {"layer_norm_epsilon", 1e-5}, {"n_embd", 64}, {"n_head", 4}, {"n_inner", nullptr}, {"n_layer", 2},
                 {"n_positions", 128}, {"scale_attn_weights", true}, {"vocab_size", 256}};
  ojson c{{"hidden_act", "silu"}, {"hidden_size", 64}, {"intermediate_size", 128}, {"max_position_embeddings", 128},
          {"num_attention_heads", 4}, {"num_hidden_layers", 2}, {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0}, {"vocab_size", 256}, {"model_type", family}, {"tie_word_embeddings", false}};
  if (family == "llama") c["architectures"] = {"LlamaForCausalLM"};
  if (family == "mistral") {
    c["architectures"] = {"MistralForCausalLM"};
    c["sliding_window"] = 5;
  }
  if (family == "qwen2") {
    c["architectures"] = {"Qwen2ForCausalLM"};
    c["rope_theta"] = 1000000.0;
    c["rms_norm_eps"] = 1e-6;
    c["tie_word_embeddings"] = true;
    c["use_sliding_window"] = false;
  }
  if (family == "qwen3") {  // per-head q/k norms, explicit head_dim
    c["architectures"] = {"Qwen3ForCausalLM"};
    c["head_dim"] = 32;
    c["tie_word_embeddings"] = true;
  }
  if (family == "phi3") {  // fused qkv_proj and gate_up_proj
    c["architectures"] = {"Phi3ForCausalLM"};
    c["original_max_position_embeddings"] = 128;
  }
  if (family == "gemma") {  // (1 + w) norms, scaled embeddings, tanh GELU, tied
    c["architectures"] = {"GemmaForCausalLM"};
    c["head_dim"] = 32;
    c["hidden_act"] = "gelu_pytorch_tanh";
    c.erase("tie_word_embeddings");
  }
  if (family == "minicpm") {
    c["architectures"] = {"MiniCPMForCausalLM"};
    c.erase("tie_word_embeddings");  // MiniCPM ties by default
    c["scale_emb"] = 12;
    c["scale_depth"] = 1.4;
    c["dim_model_base"] = 16;
  }
  return c;
}

// Random weights (normal-ish, std ~0.08; norm weights around 1) for every parameter of `config`.
inline Model tiny_model(const ojson& config, DType dtype = DType::F32, uint32_t seed = 1) {
  Model m;
  m.config = config;
  m.config_text = config.dump(2) + "\n";
  const auto ac = arch::from_hf_config(config);
  const auto specs = arch::hf_param_specs(*ac);
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.08f);
  for (const auto& s : *specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= uint64_t(d);
    std::vector<float> v(n);
    const bool norm = arch::is_norm_param(s.name) && s.name.ends_with(".weight");
    for (auto& x : v) x = norm ? 1.0f + nd(rng) : nd(rng);
    m.tensors.put(make_tensor_f32(s.name, s.shape, v, dtype));
  }
  return m;
}

// config.json + pytorch_model.bin (torch.save's layout) in `dir`.
inline Status write_hf_dir(const Model& m, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  MC_CHECK(io::write_small_file(dir / "config.json", m.config_text));
  torch::WriteOptions o;
  o.force = true;
  return torch::write_torch_file(m.tensors, dir / "pytorch_model.bin", o);
}

// Raw deflate of `data` (what zip method 8 stores).
inline std::string deflate_raw(std::string_view data) {
  std::string out(compressBound(uLong(data.size())) + 64, '\0');
  z_stream s{};
  deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = uInt(data.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = uInt(out.size());
  deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

// A plain zip (no alignment, no ZIP64, as Python's zipfile writes) of (name, bytes) records;
// names in `deflated` are compressed (method 8), and `damage` flips a byte of their data.
inline Status write_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& records,
                        const std::vector<std::string>& deflated = {}, bool damage = false) {
  std::string out, dir;
  auto p16 = [](std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); };
  auto p32 = [](std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); };
  for (const auto& [name, bytes] : records) {
    const bool z = std::find(deflated.begin(), deflated.end(), name) != deflated.end();
    std::string body = z ? deflate_raw(bytes) : bytes;
    if (z && damage) body[body.size() / 2] = char(body[body.size() / 2] ^ 0x55);
    const uint32_t crc = torch::crc32_update(0, std::as_bytes(std::span(bytes)));
    const auto at = uint32_t(out.size());
    p32(out, 0x04034b50); p16(out, 20); p16(out, 0); p16(out, z ? 8 : 0); p16(out, 0); p16(out, 0x21);
    p32(out, crc); p32(out, uint32_t(body.size())); p32(out, uint32_t(bytes.size()));
    p16(out, uint16_t(name.size())); p16(out, 0);
    out += name + body;
    p32(dir, 0x02014b50); p16(dir, 20); p16(dir, 20); p16(dir, 0); p16(dir, z ? 8 : 0); p16(dir, 0); p16(dir, 0x21);
    p32(dir, crc); p32(dir, uint32_t(body.size())); p32(dir, uint32_t(bytes.size()));
    p16(dir, uint16_t(name.size())); p16(dir, 0); p16(dir, 0); p16(dir, 0); p16(dir, 0); p32(dir, 0); p32(dir, at);
    dir += name;
  }
  const auto cd = uint32_t(out.size());
  out += dir;
  p32(out, 0x06054b50); p16(out, 0); p16(out, 0); p16(out, uint16_t(records.size())); p16(out, uint16_t(records.size()));
  p32(out, uint32_t(dir.size())); p32(out, cd); p16(out, 0);
  return io::write_small_file(path, out);
}

}  // namespace mc::torchscript::fixtures
