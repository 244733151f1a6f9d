// cast / scale wrappers: exact bits (round to nearest even), chunked and unaligned reads,
// untouched integers, config torch_dtype, and agreement with torch's Tensor.to.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "testutil.h"
#include "transforms/transforms.h"

namespace mc::transforms {
namespace {

std::vector<uint16_t> read_u16(const TensorEntry& e) {
  auto bytes = read_all(e);
  EXPECT_TRUE(bytes.ok());
  std::vector<uint16_t> out(bytes->size() / 2);
  std::memcpy(out.data(), bytes->data(), bytes->size());
  return out;
}

TEST(Cast, F32ToF16AndBf16RoundToNearestEven) {
  // 1 + 2^-11 is exactly halfway between two f16 values: ties go to the even mantissa (1.0);
  // 1 + 3·2^-11 is halfway too and goes up to the even 1 + 2^-9.
  const std::vector<float> v = {1.0f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65504.0f, 65520.0f, -2.5f, 0.0f};
  auto t = make_tensor_f32("w", {7}, v);
  auto h = cast_tensor(t, DType::F16);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->dtype, DType::F16);
  EXPECT_EQ(read_u16(*h), (std::vector<uint16_t>{0x3C00, 0x3C00, 0x3C02, 0x7BFF, 0x7C00, 0xC100, 0x0000}));

  const std::vector<float> b = {1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f};
  auto bt = cast_tensor(make_tensor_f32("b", {4}, b), DType::BF16);
  ASSERT_TRUE(bt.ok());
  EXPECT_EQ(read_u16(*bt), (std::vector<uint16_t>{0x3F80, 0x3F80, 0x3F82, 0xC020}));
}

TEST(Cast, ChunkedAndUnalignedReadsEqualWholeRead) {
  // More elements than one internal step (2^18) so the wrapper has to loop.
  const size_t n = 300'000;
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::sin(float(i) * 0.001f) * 3.0f;
  auto h = cast_tensor(make_tensor_f32("w", {int64_t(n)}, v), DType::BF16);
  ASSERT_TRUE(h.ok());
  auto whole = read_all(*h);
  ASSERT_TRUE(whole.ok());
  std::vector<std::byte> expect(n * 2);
  from_f32(v.data(), DType::BF16, expect.data(), n);
  EXPECT_EQ(*whole, expect);
  // A range that starts and ends inside elements, across the internal step boundary.
  const uint64_t off = (uint64_t(1) << 19) - 3, len = 11;
  std::vector<std::byte> part(len);
  ASSERT_TRUE(h->data->read(off, part).ok());
  EXPECT_EQ(0, std::memcmp(part.data(), expect.data() + off, len));
  // Out of range is an error, not a crash.
  std::vector<std::byte> big(8);
  EXPECT_EQ(h->data->read(n * 2 - 4, big).error().code, ErrorCode::Internal);
}

TEST(Cast, ModelKeepsIntsAndUpdatesConfig) {
  Model m;
  m.config = ojson::parse(R"({"model_type":"llama","torch_dtype":"float32","hidden_size":4})");
  m.tensors.put(make_tensor_f32("a", {2}, std::vector<float>{0.5f, -1.0f}));
  TensorEntry ids{"ids", DType::I64, {2}, make_owned_data(std::vector<std::byte>(16, std::byte{7}))};
  m.tensors.put(ids);
  auto out = cast(m, DType::F16);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->tensors.find("a")->dtype, DType::F16);
  EXPECT_EQ(out->tensors.find("ids")->dtype, DType::I64);
  EXPECT_EQ(out->tensors.find("ids")->data, m.tensors.find("ids")->data);  // same source, untouched
  EXPECT_EQ(out->config["torch_dtype"], "float16");
  EXPECT_EQ(out->config.begin().key(), "model_type");  // key order kept
  EXPECT_TRUE(out->config_modified);
  EXPECT_FALSE(m.config_modified);
  auto bf = cast(m, DType::BF16);
  ASSERT_TRUE(bf.ok());
  EXPECT_EQ(bf->config["torch_dtype"], "bfloat16");
  // Casting f16 back to f32 is exact.
  auto back = cast(*out, DType::F32);
  ASSERT_TRUE(back.ok());
  auto f = read_f32(*back->tensors.find("a"));
  EXPECT_EQ(*f, (std::vector<float>{0.5f, -1.0f}));

  auto bad = cast(m, DType::I32);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
}

TEST(Scale, ComputedInF32AndRoundedOnce) {
  auto t = make_tensor_f32("w", {3}, std::vector<float>{1.0f, -2.0f, 0.25f}, DType::BF16);
  auto s = scale_tensor(t, 1.4f);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dtype, DType::BF16);
  EXPECT_EQ(read_u16(*s), (std::vector<uint16_t>{f32_to_bf16(1.4f), f32_to_bf16(-2.8f), f32_to_bf16(0.35f)}));
  auto ints = scale_tensor(TensorEntry{"i", DType::I32, {1}, make_owned_data(std::vector<std::byte>(4))}, 2.0f);
  EXPECT_EQ(ints.error().code, ErrorCode::Unsupported);
}

TEST(Cast, MatchesTorch) {
  MC_SKIP_UNLESS_TORCH();
  test::TempDir dir;
  const size_t n = 4096;
  std::vector<float> v(n);
  uint32_t s = 12345;
  for (size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    const float mant = float(s >> 8) / float(1u << 24);
    v[i] = (mant - 0.5f) * std::ldexp(1.0f, int(i % 40) - 20);  // many binades incl. f16 subnormals
  }
  {
    std::ofstream f(dir / "in.f32", std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(n * 4));
  }
  const std::string cmd = "/usr/bin/python3 -c \"import numpy as np, torch; a=torch.from_numpy(np.fromfile('" +
                          (dir / "in.f32").string() +
                          "', dtype=np.float32)); a.to(torch.float16).numpy().tofile('" + (dir / "h").string() +
                          "'); a.to(torch.bfloat16).view(torch.int16).numpy().tofile('" + (dir / "b").string() +
                          "')\"";
  std::string out;
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
  auto t = make_tensor_f32("w", {int64_t(n)}, v);
  for (auto [dt, file] : {std::pair{DType::F16, "h"}, std::pair{DType::BF16, "b"}}) {
    std::ifstream f(dir / file, std::ios::binary);
    std::vector<uint16_t> ref(n);
    f.read(reinterpret_cast<char*>(ref.data()), std::streamsize(n * 2));
    auto c = cast_tensor(t, dt);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(read_u16(*c), ref) << dtype_name(dt);
  }
}

// Wrappers nest (a cast of a scaled cast) over a source that has no view, so each level reads its
// input into a buffer: the levels must not share one. The innermost level reads 4-byte elements
// where the one above it reads 2-byte ones, so a shared per-thread buffer would grow (move) under
// the upper level's feet: heap corruption, seen on MiniCPM -> ONNX fp16. Reads of growing and
// shrinking sizes, checked value by value (all values exact in bf16 and f16).
TEST(Cast, NestedWrappersOverAnUnmappedSourceKeepTheirOwnBuffers) {
  const uint64_t n = 300000;  // more than one batch of read_elementwise
  auto value = [](uint64_t i) { return float(int64_t(i % 511) - 255) / 64.0f; };
  TensorEntry src{"w", DType::F32, {int64_t(n)}, make_fn_data([&](uint64_t off, std::span<std::byte> dst) -> Status {
                    for (size_t k = 0; k < dst.size() / 4; ++k) {
                      const float f = value(off / 4 + k);
                      std::memcpy(dst.data() + 4 * k, &f, 4);
                    }
                    return {};
                  })};
  auto b = cast_tensor(src, DType::BF16);
  ASSERT_TRUE(b.ok());
  auto scaled = scale_tensor(*b, 0.5f);
  ASSERT_TRUE(scaled.ok());
  auto h = cast_tensor(*scaled, DType::F16);
  ASSERT_TRUE(h.ok());
  for (uint64_t len : {uint64_t(8), uint64_t(262144 * 2 + 6), uint64_t(64), uint64_t(n * 2)}) {
    std::vector<std::byte> out(len);
    ASSERT_TRUE(h->data->read(0, out).ok()) << len;
    for (uint64_t i = 0; i < len / 2; ++i) {
      uint16_t got;
      std::memcpy(&got, out.data() + 2 * i, 2);
      ASSERT_EQ(got, f32_to_f16(value(i) * 0.5f)) << "element " << i << " of a read of " << len;
    }
  }
}

}  // namespace
}  // namespace mc::transforms
