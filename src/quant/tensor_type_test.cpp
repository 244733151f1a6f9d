// choose_tensor_type against llama-quantize's rules (llama-quant.cpp, version in tensor_type.cpp),
// on a Llama-3-8B-like model: 32 layers, 32 heads, 8 KV heads (GQA 4), untied output.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "quant/ggml.h"

namespace mc::quant {
namespace {

struct FakeModel {
  int64_t n_layers = 32, n_heads = 32, n_kv_heads = 8, n_experts = 0;
  std::string arch = "llama";
  bool tied = false;
  int64_t row_len = 4096;

  std::vector<std::string> names() const {
    std::vector<std::string> n = {"token_embd.weight", "output_norm.weight"};
    if (!tied) n.push_back("output.weight");
    for (int64_t i = 0; i < n_layers; ++i)
      for (const char* t : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                            "ffn_gate", "ffn_up", "ffn_down"})
        n.push_back("blk." + std::to_string(i) + "." + t + ".weight");
    return n;
  }

  // Runs every tensor through choose_tensor_type in llama.cpp's order, like llama-quantize.
  std::map<std::string, DType> choose(FileType ft) const {
    auto n = names();
    std::sort(n.begin(), n.end(), quant_order_less);
    QuantState st = make_quant_state(n, n_layers);
    std::map<std::string, DType> out;
    for (const auto& name : n) {
      TensorQuantContext c;
      c.gguf_name = name;
      c.n_dims = name.find("norm") != std::string::npos ? 1 : 2;
      c.row_len = row_len;
      c.n_layers = n_layers;
      c.n_heads = n_heads;
      c.n_kv_heads = n_kv_heads;
      c.n_experts = n_experts;
      c.arch = arch;
      c.output_tied = tied;
      out[name] = choose_tensor_type(ft, c, st);
    }
    return out;
  }
};

std::string blk(int i, const char* t) { return "blk." + std::to_string(i) + "." + t + ".weight"; }

#define EXPECT_TYPE(map, name, want) \
  EXPECT_EQ(dtype_name(map.at(name)), dtype_name(want)) << (name)

// use_more_bits(i, 32): i < 4 || i >= 28 || (i - 4) % 3 == 2  ->  0-3, 6, 9, ..., 27, 28-31.
TEST(TensorType, Q4_K_M) {
  const auto m = FakeModel{}.choose(FileType::Q4_K_M);
  EXPECT_TYPE(m, "token_embd.weight", DType::Q4_K);  // untied: default type
  EXPECT_TYPE(m, "output.weight", DType::Q6_K);
  EXPECT_TYPE(m, "output_norm.weight", DType::F32);
  EXPECT_TYPE(m, blk(0, "attn_norm"), DType::F32);
  EXPECT_TYPE(m, blk(5, "ffn_norm"), DType::F32);
  EXPECT_TYPE(m, blk(0, "attn_v"), DType::Q6_K);
  EXPECT_TYPE(m, blk(1, "attn_v"), DType::Q6_K);
  EXPECT_TYPE(m, blk(6, "attn_v"), DType::Q6_K);   // (6-4)%3 == 2
  EXPECT_TYPE(m, blk(7, "attn_v"), DType::Q4_K);
  EXPECT_TYPE(m, blk(16, "attn_v"), DType::Q4_K);  // (16-4)%3 == 0
  EXPECT_TYPE(m, blk(27, "attn_v"), DType::Q6_K);  // (27-4)%3 == 2
  EXPECT_TYPE(m, blk(31, "attn_v"), DType::Q6_K);
  EXPECT_TYPE(m, blk(0, "ffn_down"), DType::Q6_K);
  EXPECT_TYPE(m, blk(9, "ffn_down"), DType::Q6_K);
  EXPECT_TYPE(m, blk(10, "ffn_down"), DType::Q4_K);
  EXPECT_TYPE(m, blk(16, "ffn_down"), DType::Q4_K);
  EXPECT_TYPE(m, blk(28, "ffn_down"), DType::Q6_K);
  for (const char* t : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
    EXPECT_TYPE(m, blk(16, t), DType::Q4_K);
  int n_q6 = 0;
  for (int i = 0; i < 32; ++i) n_q6 += m.at(blk(i, "attn_v")) == DType::Q6_K;
  EXPECT_EQ(n_q6, 16);  // 0-3, 6, 9, 12, 15, 18, 21, 24, 27, 28-31
}

TEST(TensorType, Q5_K_M) {
  const auto m = FakeModel{}.choose(FileType::Q5_K_M);
  EXPECT_TYPE(m, "token_embd.weight", DType::Q5_K);
  EXPECT_TYPE(m, "output.weight", DType::Q6_K);
  EXPECT_TYPE(m, blk(0, "attn_v"), DType::Q6_K);
  EXPECT_TYPE(m, blk(16, "attn_v"), DType::Q5_K);
  EXPECT_TYPE(m, blk(31, "attn_v"), DType::Q6_K);
  EXPECT_TYPE(m, blk(3, "ffn_down"), DType::Q6_K);
  EXPECT_TYPE(m, blk(4, "ffn_down"), DType::Q5_K);
  EXPECT_TYPE(m, blk(16, "attn_q"), DType::Q5_K);
  EXPECT_TYPE(m, blk(16, "attn_output"), DType::Q5_K);
  EXPECT_TYPE(m, blk(0, "attn_norm"), DType::F32);
}

TEST(TensorType, Q3_K_M) {
  const auto m = FakeModel{}.choose(FileType::Q3_K_M);
  EXPECT_TYPE(m, "token_embd.weight", DType::Q3_K);
  EXPECT_TYPE(m, "output.weight", DType::Q6_K);
  EXPECT_TYPE(m, blk(0, "attn_v"), DType::Q5_K);  // first two attn_v
  EXPECT_TYPE(m, blk(1, "attn_v"), DType::Q5_K);
  EXPECT_TYPE(m, blk(16, "attn_v"), DType::Q4_K);
  EXPECT_TYPE(m, blk(31, "attn_v"), DType::Q4_K);
  EXPECT_TYPE(m, blk(0, "ffn_down"), DType::Q5_K);  // i < 32/16
  EXPECT_TYPE(m, blk(1, "ffn_down"), DType::Q5_K);
  EXPECT_TYPE(m, blk(2, "ffn_down"), DType::Q4_K);  // not Falcon: Q4_K for the rest
  EXPECT_TYPE(m, blk(16, "ffn_down"), DType::Q4_K);
  EXPECT_TYPE(m, blk(16, "attn_output"), DType::Q4_K);
  EXPECT_TYPE(m, blk(16, "attn_q"), DType::Q3_K);
  EXPECT_TYPE(m, blk(16, "ffn_up"), DType::Q3_K);
}

TEST(TensorType, Q2_K) {
  const auto m = FakeModel{}.choose(FileType::Q2_K);
  EXPECT_TYPE(m, "token_embd.weight", DType::Q2_K);
  EXPECT_TYPE(m, "output.weight", DType::Q6_K);
  EXPECT_TYPE(m, blk(0, "attn_v"), DType::Q4_K);  // GQA 32/8 = 4 >= 4
  EXPECT_TYPE(m, blk(16, "attn_v"), DType::Q4_K);
  EXPECT_TYPE(m, blk(0, "ffn_down"), DType::Q3_K);
  EXPECT_TYPE(m, blk(31, "ffn_down"), DType::Q3_K);
  EXPECT_TYPE(m, blk(16, "attn_output"), DType::Q3_K);
  EXPECT_TYPE(m, blk(16, "attn_q"), DType::Q2_K);
  EXPECT_TYPE(m, blk(16, "ffn_gate"), DType::Q2_K);

  FakeModel mha;  // no GQA: attn_v gets Q3_K
  mha.n_kv_heads = 32;
  EXPECT_TYPE(mha.choose(FileType::Q2_K), blk(16, "attn_v"), DType::Q3_K);
}

TEST(TensorType, Q6_KAndQ8_0AndQ4_0AndF16) {
  const auto q6 = FakeModel{}.choose(FileType::Q6_K);
  EXPECT_TYPE(q6, "token_embd.weight", DType::Q6_K);
  EXPECT_TYPE(q6, "output.weight", DType::Q6_K);
  EXPECT_TYPE(q6, blk(0, "attn_v"), DType::Q6_K);
  EXPECT_TYPE(q6, blk(16, "ffn_down"), DType::Q6_K);
  EXPECT_TYPE(q6, blk(16, "attn_q"), DType::Q6_K);
  EXPECT_TYPE(q6, blk(16, "ffn_norm"), DType::F32);

  const auto q8 = FakeModel{}.choose(FileType::Q8_0);
  EXPECT_TYPE(q8, "token_embd.weight", DType::Q8_0);
  EXPECT_TYPE(q8, "output.weight", DType::Q8_0);  // output stays Q8_0, not Q6_K
  EXPECT_TYPE(q8, blk(0, "attn_v"), DType::Q8_0);
  EXPECT_TYPE(q8, blk(0, "ffn_down"), DType::Q8_0);
  EXPECT_TYPE(q8, blk(16, "attn_norm"), DType::F32);

  const auto q4 = FakeModel{}.choose(FileType::Q4_0);
  EXPECT_TYPE(q4, "output.weight", DType::Q6_K);  // every non-Q8_0 ftype gets Q6_K output
  EXPECT_TYPE(q4, "token_embd.weight", DType::Q4_0);
  EXPECT_TYPE(q4, blk(0, "attn_v"), DType::Q4_0);

  const auto f16 = FakeModel{}.choose(FileType::F16);
  EXPECT_TYPE(f16, "output.weight", DType::F16);
  EXPECT_TYPE(f16, blk(0, "attn_v"), DType::F16);
  EXPECT_TYPE(f16, "output_norm.weight", DType::F32);
  const auto bf16 = FakeModel{}.choose(FileType::BF16);
  EXPECT_TYPE(bf16, blk(3, "ffn_up"), DType::BF16);
}

TEST(TensorType, TiedEmbeddingsTakeTheOutputType) {
  FakeModel tied;
  tied.tied = true;
  EXPECT_TYPE(tied.choose(FileType::Q4_K_M), "token_embd.weight", DType::Q6_K);
  EXPECT_TYPE(tied.choose(FileType::Q8_0), "token_embd.weight", DType::Q8_0);
}

TEST(TensorType, FallbackWhenRowsAreNotMultiplesOf256) {
  FakeModel odd;
  odd.row_len = 4000;  // 4000 % 256 = 160, 4000 % 32 = 0
  const auto m = odd.choose(FileType::Q4_K_M);
  EXPECT_TYPE(m, blk(16, "attn_q"), DType::Q5_0);     // Q4_K -> Q5_0
  EXPECT_TYPE(m, blk(0, "attn_v"), DType::Q8_0);      // Q6_K -> Q8_0
  EXPECT_TYPE(m, "output.weight", DType::Q8_0);       // output: ne[0] % 256 -> Q8_0
  EXPECT_TYPE(odd.choose(FileType::Q5_K_S), blk(16, "attn_q"), DType::Q5_1);  // Q5_K -> Q5_1
  EXPECT_TYPE(odd.choose(FileType::Q3_K_S), blk(16, "attn_q"), DType::Q4_0);  // Q3_K -> Q4_0
  EXPECT_TYPE(odd.choose(FileType::Q2_K), blk(16, "attn_q"), DType::Q4_0);    // Q2_K -> Q4_0
  FakeModel tiny;
  tiny.row_len = 100;  // not even a multiple of 32
  EXPECT_TYPE(tiny.choose(FileType::Q4_K_M), blk(16, "attn_q"), DType::F16);
  EXPECT_TYPE(tiny.choose(FileType::Q8_0), blk(16, "attn_q"), DType::F16);
  EXPECT_TYPE(tiny.choose(FileType::Q4_K_M), "output.weight", DType::F16);
}

TEST(TensorType, ArchitectureSpecialCases) {
  FakeModel b70;  // Llama-2/3-70B: 80 layers with GQA
  b70.n_layers = 80;
  b70.n_heads = 64;
  const auto m = b70.choose(FileType::Q4_K_M);
  EXPECT_TYPE(m, blk(10, "attn_v"), DType::Q5_K);  // Q4_K bumped to Q5_K
  EXPECT_TYPE(m, blk(0, "attn_v"), DType::Q6_K);
  EXPECT_TYPE(m, blk(10, "ffn_down"), DType::Q4_K);

  FakeModel falcon;
  falcon.arch = "falcon";
  const auto f = falcon.choose(FileType::Q3_K_L);
  EXPECT_TYPE(f, "output.weight", DType::Q8_0);
  EXPECT_TYPE(f, blk(16, "attn_output"), DType::Q4_K);
  EXPECT_TYPE(f, blk(16, "ffn_down"), DType::Q4_K);

  FakeModel moe;  // Mixtral-like: 8 experts
  moe.n_experts = 8;
  const auto x = moe.choose(FileType::Q4_K_M);
  EXPECT_TYPE(x, blk(16, "attn_v"), DType::Q8_0);
  EXPECT_TYPE(x, blk(16, "attn_k"), DType::Q8_0);
  EXPECT_TYPE(x, blk(16, "attn_output"), DType::Q5_K);
}

TEST(TensorType, NotQuantizedTensors) {
  TensorQuantContext c;
  c.row_len = 4096;
  c.n_layers = 32;
  for (const char* n : {"blk.0.ffn_gate_inp.weight", "position_embd.weight", "blk.3.attn_q.bias",
                        "blk.0.ssm_conv1d.weight"}) {
    c.gguf_name = n;
    EXPECT_FALSE(tensor_allows_quantization(c)) << n;
    QuantState st;
    EXPECT_EQ(choose_tensor_type(FileType::Q4_K_M, c, st), DType::F32) << n;
  }
  c.gguf_name = "blk.0.attn_q.weight";
  c.n_dims = 1;
  EXPECT_FALSE(tensor_allows_quantization(c));
}

TEST(TensorType, FileTypeTable) {
  struct E { FileType f; const char* name; int id; DType def; };
  const E table[] = {
      {FileType::F32, "f32", 0, DType::F32},          {FileType::F16, "f16", 1, DType::F16},
      {FileType::BF16, "bf16", 32, DType::BF16},      {FileType::Q8_0, "q8_0", 7, DType::Q8_0},
      {FileType::Q4_0, "q4_0", 2, DType::Q4_0},       {FileType::Q4_1, "q4_1", 3, DType::Q4_1},
      {FileType::Q5_0, "q5_0", 8, DType::Q5_0},       {FileType::Q5_1, "q5_1", 9, DType::Q5_1},
      {FileType::Q2_K, "q2_k", 10, DType::Q2_K},      {FileType::Q3_K_S, "q3_k_s", 11, DType::Q3_K},
      {FileType::Q3_K_M, "q3_k_m", 12, DType::Q3_K},  {FileType::Q3_K_L, "q3_k_l", 13, DType::Q3_K},
      {FileType::Q4_K_S, "q4_k_s", 14, DType::Q4_K},  {FileType::Q4_K_M, "q4_k_m", 15, DType::Q4_K},
      {FileType::Q5_K_S, "q5_k_s", 16, DType::Q5_K},  {FileType::Q5_K_M, "q5_k_m", 17, DType::Q5_K},
      {FileType::Q6_K, "q6_k", 18, DType::Q6_K},
  };
  ASSERT_EQ(std::size(table), size_t(FileType::Count));
  for (const E& e : table) {
    EXPECT_EQ(file_type_name(e.f), e.name);
    EXPECT_EQ(file_type_id(e.f), e.id) << e.name;
    EXPECT_EQ(file_type_default_type(e.f), e.def) << e.name;
    EXPECT_EQ(file_type_from_name(e.name), e.f);
    EXPECT_EQ(file_type_from_id(e.id), e.f);
  }
  EXPECT_EQ(file_type_from_name("Q4_K_M"), FileType::Q4_K_M);
  EXPECT_FALSE(file_type_from_name("q4_k").has_value());
  EXPECT_FALSE(file_type_from_id(4).has_value());  // removed Q4_1_SOME_F16
}

TEST(TensorType, LlamaCppTensorOrder) {
  std::vector<std::string> n = {"blk.10.attn_v.weight", "output.weight", "blk.2.ffn_down.weight",
                                "blk.2.attn_k.weight", "token_embd.weight", "blk.1.attn_v.weight"};
  std::sort(n.begin(), n.end(), quant_order_less);
  const std::vector<std::string> want = {"output.weight", "token_embd.weight",
                                         "blk.1.attn_v.weight", "blk.2.attn_k.weight",
                                         "blk.2.ffn_down.weight", "blk.10.attn_v.weight"};
  EXPECT_EQ(n, want);
}

}  // namespace
}  // namespace mc::quant
