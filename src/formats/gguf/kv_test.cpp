// KV values and headers: every value type round-trips through the writer and the reader, and the
// writer's bytes are pinned for a small header.
#include <gtest/gtest.h>

#include <limits>

#include "formats/gguf/file.h"

namespace mc::gguf {
namespace {

KvStore every_type() {
  KvStore kv;
  kv.set("u8", Value::u8(200));
  kv.set("i8", Value::i8(-100));
  kv.set("u16", Value::u16(60000));
  kv.set("i16", Value::i16(-30000));
  kv.set("u32", Value::u32(4000000000u));
  kv.set("i32", Value::i32(-2000000000));
  kv.set("f32", Value::f32(1.5e-5f));
  kv.set("bool", Value::boolean(true));
  kv.set("string", Value::string("héllo ▁world"));
  kv.set("u64", Value::u64(std::numeric_limits<uint64_t>::max()));
  kv.set("i64", Value::i64(std::numeric_limits<int64_t>::min()));
  kv.set("f64", Value::f64(-2.25));
  const uint8_t a_u8[] = {1, 2, 255};
  const int8_t a_i8[] = {-1, 0, 1};
  const uint16_t a_u16[] = {0, 65535};
  const int16_t a_i16[] = {-32768, 32767};
  const uint32_t a_u32[] = {7, 8, 9};
  const int32_t a_i32[] = {-7, 1, 6, 3};
  const float a_f32[] = {0.0f, -1000.0f, 3.25f};
  const uint8_t a_bool[] = {1, 0, 1};
  const uint64_t a_u64[] = {1ull << 40};
  const int64_t a_i64[] = {-(1ll << 40), 5};
  const double a_f64[] = {1e300, -0.5};
  kv.set("a.u8", Value::array<uint8_t>(ValueType::U8, a_u8));
  kv.set("a.i8", Value::array<int8_t>(ValueType::I8, a_i8));
  kv.set("a.u16", Value::array<uint16_t>(ValueType::U16, a_u16));
  kv.set("a.i16", Value::array<int16_t>(ValueType::I16, a_i16));
  kv.set("a.u32", Value::array<uint32_t>(ValueType::U32, a_u32));
  kv.set("a.i32", Value::array<int32_t>(ValueType::I32, a_i32));
  kv.set("a.f32", Value::array<float>(ValueType::F32, a_f32));
  kv.set("a.bool", Value::array<uint8_t>(ValueType::Bool, a_bool));
  kv.set("a.u64", Value::array<uint64_t>(ValueType::U64, a_u64));
  kv.set("a.i64", Value::array<int64_t>(ValueType::I64, a_i64));
  kv.set("a.f64", Value::array<double>(ValueType::F64, a_f64));
  kv.set("a.str", Value::strings({"a b", "", "<0x0A>", "ĠĠ"}));
  kv.set("a.empty", Value::strings({}));
  return kv;
}

TEST(GgufKv, EveryTypeRoundTrips) {
  const KvStore kv = every_type();
  auto lay = plan_layout(kv, {});
  ASSERT_TRUE(lay.ok()) << lay.error().render();
  auto f = parse(lay->header, nullptr, "mem");
  ASSERT_TRUE(f.ok()) << f.error().render();
  ASSERT_EQ(f->kv.size(), kv.size());
  auto it = f->kv.begin();
  for (const auto& [k, v] : kv) {
    EXPECT_EQ(it->first, k);
    EXPECT_TRUE(it->second == v) << k << ": " << it->second.display() << " vs " << v.display();
    ++it;
  }
  EXPECT_EQ(f->kv.get_int("i8"), -100);
  EXPECT_EQ(f->kv.get_u32("u32"), 4000000000u);
  EXPECT_FALSE(f->kv.get_int("u64").has_value());  // does not fit int64
  EXPECT_FLOAT_EQ(float(*f->kv.get_float("f32")), 1.5e-5f);
  EXPECT_EQ(f->kv.get_bool("bool"), true);
  EXPECT_EQ(f->kv.get_string("string"), "héllo ▁world");
  const Value* s = f->kv.get_array("a.str", ValueType::String);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->string_items()[3], "ĠĠ");
  const Value* i32 = f->kv.get_array("a.i32", ValueType::I32);
  ASSERT_NE(i32, nullptr);
  EXPECT_EQ(i32->int_at(0), -7);
  EXPECT_EQ(f->kv.get_array("a.f64", ValueType::F64)->float_at(0), 1e300);
  EXPECT_EQ(f->kv.get_array("a.bool", ValueType::Bool)->int_at(1), 0);
  EXPECT_EQ(f->kv.get_array("a.u32", ValueType::I32), nullptr);  // element type must match
}

TEST(GgufKv, HeaderBytesArePinned) {
  KvStore kv;
  kv.set_u32("general.alignment", 32);
  std::vector<float> vals{1.0f, 2.0f};
  std::vector<TensorEntry> ts{make_tensor_f32("w", {2}, vals)};
  auto lay = plan_layout(kv, ts);
  ASSERT_TRUE(lay.ok());
  const std::vector<uint8_t> want = {
      'G', 'G', 'U', 'F', 3, 0, 0, 0,              // magic, version 3
      1, 0, 0, 0, 0, 0, 0, 0,                      // tensor_count
      1, 0, 0, 0, 0, 0, 0, 0,                      // kv_count
      17, 0, 0, 0, 0, 0, 0, 0,                     // key length
      'g', 'e', 'n', 'e', 'r', 'a', 'l', '.', 'a', 'l', 'i', 'g', 'n', 'm', 'e', 'n', 't',
      4, 0, 0, 0, 32, 0, 0, 0,                     // UINT32 32
      1, 0, 0, 0, 0, 0, 0, 0, 'w',                 // name
      1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,          // n_dims 1, ne[0] = 2
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,          // F32, offset 0
  };
  ASSERT_EQ(lay->header.size(), 96u);  // 84 bytes padded to 32
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(uint8_t(lay->header[i]), want[i]) << "byte " << i;
  for (size_t i = want.size(); i < 96; ++i) EXPECT_EQ(uint8_t(lay->header[i]), 0);
  EXPECT_EQ(lay->offsets[0], 96u);
  EXPECT_EQ(lay->file_size, 96u + 32u);
}

TEST(GgufKv, WriterRejectsBadTensors) {
  std::vector<float> vals(40, 1.0f);
  std::vector<TensorEntry> dup{make_tensor_f32("a", {2}, std::span(vals).first(2)),
                               make_tensor_f32("a", {2}, std::span(vals).first(2))};
  auto r = plan_layout({}, dup);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("duplicate"), std::string::npos);
  TensorEntry q{"q", DType::Q8_0, {40}, nullptr};
  r = plan_layout({}, std::span(&q, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a multiple of the q8_0 block size 32"), std::string::npos);
  TensorEntry longname{std::string(64, 'x'), DType::F32, {1}, nullptr};
  EXPECT_FALSE(plan_layout({}, std::span(&longname, 1)).ok());
}

}  // namespace
}  // namespace mc::gguf
