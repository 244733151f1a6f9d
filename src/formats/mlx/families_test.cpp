// MLX for qwen3, phi3 and gemma: mlx-lm's classes for them keep the HF names (q_norm/k_norm,
// fused qkv_proj/gate_up_proj, Gemma's raw norm weights), so HF -> MLX -> HF is exact when not
// quantized, and quantized modules come back within one quantization step.
#include <gtest/gtest.h>

#include <cmath>

#include "arch/config.h"
#include "formats/mlx/mlx.h"
#include "testutil.h"
#include "transforms/transforms.h"

namespace mc::mlx {
namespace fs = std::filesystem;
namespace {

Model random_model(const std::string& type) {
  Model m;
  m.source_path = "tiny";
  m.config = {{"architectures", {std::string(arch::family_info(arch::family_from_model_type(type)).hf_architecture)}},
              {"model_type", type},
              {"vocab_size", 64},
              {"hidden_size", 128},
              {"intermediate_size", 192},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"head_dim", 32},
              {"torch_dtype", "float32"}};
  transforms::FakeOptions fo;
  fo.mode = transforms::FakeMode::Random;
  fo.seed = 5;
  auto r = transforms::fake_weights(m, fo);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().render());
  return std::move(r).value();
}

Result<Model> round_trip(const Model& m, const fs::path& dir, const std::string& quant) {
  ThreadPool pool(2);
  formats::WriteOptions o;
  o.pool = &pool;
  o.quant = quant;
  fs::create_directories(dir);
  MC_TRY(write_dir(m, dir, o));
  auto rep = validate_dir(dir);
  for (const auto& e : rep.errors) ADD_FAILURE() << e.render();
  return read_dir(dir, {});
}

class MlxFamilies : public ::testing::TestWithParam<std::string> {};

TEST_P(MlxFamilies, FloatRoundTripIsBitIdentical) {
  test::TempDir tmp;
  const Model src = random_model(GetParam());
  auto back = round_trip(src, tmp / "o", "");
  ASSERT_TRUE(back.ok()) << back.error().render();
  EXPECT_EQ(back->tensors.size(), src.tensors.size());
  for (const auto& e : src.tensors) {
    const TensorEntry* b = back->tensors.find(e.name);
    ASSERT_NE(b, nullptr) << e.name;
    EXPECT_EQ(b->shape, e.shape);
    EXPECT_EQ(*read_all(*b), *read_all(e)) << e.name;
  }
  EXPECT_EQ(back->config["model_type"], GetParam());
}

TEST_P(MlxFamilies, EightBitModulesComeBackWithinAStep) {
  test::TempDir tmp;
  const Model src = random_model(GetParam());
  auto back = round_trip(src, tmp / "o", "8bit");
  ASSERT_TRUE(back.ok()) << back.error().render();
  size_t quantized = 0;
  for (const auto& e : src.tensors) {
    const TensorEntry* b = back->tensors.find(e.name);
    ASSERT_NE(b, nullptr) << e.name;
    ASSERT_EQ(b->shape, e.shape) << e.name;
    const auto want = *read_f32(e), got = *read_f32(*b);
    if (b->stored_bits == 0) {
      EXPECT_EQ(got, want) << e.name;
      continue;
    }
    ++quantized;
    // Groups of 64: the error of a value stays within one step (range / 255; MLX moves the scale so
    // the group's largest-magnitude value is exact, which can stretch the other end by a fraction).
    const int64_t cols = e.shape.back();
    for (size_t g = 0; g < want.size(); g += 64) {
      float lo = want[g], hi = want[g];
      for (size_t i = g; i < g + 64; ++i) lo = std::min(lo, want[i]), hi = std::max(hi, want[i]);
      for (size_t i = g; i < g + 64; ++i)
        ASSERT_LE(std::abs(got[i] - want[i]), (hi - lo) / 255.0f + 1e-6f) << e.name << " col " << i % cols;
    }
  }
  // Every 2-D weight but the 1-D norms: embed, attention and MLP projections (fused for phi3).
  EXPECT_GE(quantized, GetParam() == "phi3" ? 1 + 2 * 4u : 1 + 2 * 7u);
}

INSTANTIATE_TEST_SUITE_P(Families, MlxFamilies, ::testing::Values("qwen3", "phi3", "gemma"));

}  // namespace
}  // namespace mc::mlx
