// The catalogue of malformed GGUF files: one hand-made file per rule of the reader, each
// asserting the error code, a message fragment and (where it is meaningful) the byte offset.
#include <gtest/gtest.h>

#include <fstream>

#include "formats/gguf/file.h"
#include "formats/gguf/gguf.h"
#include "testutil.h"

namespace mc::gguf {
namespace {

struct Raw {
  std::vector<std::byte> b;
  template <typename T>
  Raw& put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  Raw& u32(uint32_t v) { return put(v); }
  Raw& u64(uint64_t v) { return put(v); }
  Raw& str(std::string_view s) {
    u64(s.size());
    for (char c : s) b.push_back(std::byte(c));
    return *this;
  }
  Raw& pad(size_t align) {
    while (b.size() % align) b.push_back(std::byte{0});
    return *this;
  }
  Raw& zeros(size_t n) {
    b.resize(b.size() + n);
    return *this;
  }
  // A tensor info: name, dims (ggml order), type, offset.
  Raw& tensor(std::string_view name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (int64_t d : ne) put(d);
    return u32(type).u64(offset);
  }
};

Raw head(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Raw r;
  r.u32(kMagic).u32(version).u64(n_tensors).u64(n_kv);
  return r;
}

Error parse_error(const Raw& r) {
  auto f = parse(r.b, nullptr, "bad.gguf");
  EXPECT_FALSE(f.ok());
  return f.ok() ? Error{} : f.error();
}

void expect_error(const Raw& r, ErrorCode code, std::string_view fragment) {
  Error e = parse_error(r);
  EXPECT_EQ(e.code, code) << e.render();
  EXPECT_NE(e.message.find(fragment), std::string::npos) << e.render();
  EXPECT_EQ(e.path, "bad.gguf");
}

TEST(GgufCorrupt, ValidMinimalFileParses) {
  Raw r = head(1, 1);
  r.str("general.architecture").u32(8).str("llama");
  r.tensor("t", {4}, 0, 0).pad(32).zeros(16);
  auto f = parse(r.b, nullptr, "ok.gguf");
  ASSERT_TRUE(f.ok()) << f.error().render();
  EXPECT_EQ(f->tensors[0].nbytes, 16u);
  EXPECT_EQ(f->data_offset % 32, 0u);
}

TEST(GgufCorrupt, BadMagic) {
  Raw r;
  r.u32(0x58554747).u32(3).u64(0).u64(0);
  expect_error(r, ErrorCode::Corrupt, "bad magic");
  EXPECT_EQ(parse_error(r).offset, 0u);
}

TEST(GgufCorrupt, Version1) { expect_error(head(0, 0, 1), ErrorCode::Unsupported, "version 1 is not supported"); }
TEST(GgufCorrupt, Version4) { expect_error(head(0, 0, 4), ErrorCode::Unsupported, "version 4 is not supported"); }
TEST(GgufCorrupt, Version2Accepted) { EXPECT_TRUE(parse(head(0, 0, 2).b, nullptr, "v2").ok()); }

TEST(GgufCorrupt, BigEndian) {
  Raw r;
  r.u32(kMagic).u32(0x03000000).u64(0).u64(0);
  expect_error(r, ErrorCode::Unsupported, "big-endian");
}

TEST(GgufCorrupt, TruncatedKvValue) {
  Raw r = head(0, 1);
  r.str("k").u32(4);  // UINT32 value follows ...
  r.b.push_back(std::byte{1});  // ... but only one byte of it
  expect_error(r, ErrorCode::Truncated, "needs 4 bytes, 1 left");
  EXPECT_EQ(parse_error(r).offset, 24u + 9u + 4u);
}

TEST(GgufCorrupt, KvCountLargerThanFile) {
  expect_error(head(0, 1000), ErrorCode::Truncated, "kv count 1000 cannot fit");
}

TEST(GgufCorrupt, StringLengthPastEnd) {
  Raw r = head(0, 1);
  r.u64(1000).str("short");
  expect_error(r, ErrorCode::Truncated, "declares 1000 bytes but only 13 are left");
  EXPECT_EQ(parse_error(r).offset, 24u);
}

TEST(GgufCorrupt, ArrayCountOverflow) {
  Raw r = head(0, 1);
  r.str("arr").u32(9).u32(4).u64(uint64_t(1) << 62);
  expect_error(r, ErrorCode::LimitExceeded, "over the cap");
  Raw s = head(0, 1);
  s.str("arr").u32(9).u32(4).u64(1000).u32(1);
  expect_error(s, ErrorCode::Truncated, "declares 1000 items of at least 4 bytes");
  Raw t = head(0, 1);  // strings: at least 8 bytes each
  t.str("arr").u32(9).u32(8).u64(3).str("a");
  expect_error(t, ErrorCode::Truncated, "declares 3 items of at least 8 bytes");
}

TEST(GgufCorrupt, NestedArrayAndBadType) {
  Raw r = head(0, 1);
  r.str("arr").u32(9).u32(9).u64(0);
  expect_error(r, ErrorCode::Corrupt, "nested arrays");
  Raw s = head(0, 1);
  s.str("k").u32(13).u32(0);
  expect_error(s, ErrorCode::Corrupt, "value type 13");
}

TEST(GgufCorrupt, DuplicateKeyAndBadAlignment) {
  Raw r = head(0, 2);
  r.str("k").u32(4).u32(1).str("k").u32(4).u32(2);
  expect_error(r, ErrorCode::Corrupt, "duplicate key 'k'");
  Raw s = head(0, 1);
  s.str("general.alignment").u32(4).u32(24);
  expect_error(s, ErrorCode::Corrupt, "power of two");
}

TEST(GgufCorrupt, TensorOffsetNotAligned) {
  Raw r = head(1, 0);
  r.tensor("t", {4}, 0, 4).pad(32).zeros(64);
  expect_error(r, ErrorCode::Corrupt, "data offset 4 is not a multiple of the alignment 32");
  EXPECT_EQ(parse_error(r).tensor, "t");
}

TEST(GgufCorrupt, TensorOutOfBounds) {
  Raw r = head(1, 0);
  r.tensor("t", {8, 2}, 0, 0).pad(32).zeros(60);  // needs 64 bytes
  expect_error(r, ErrorCode::Truncated, "data [0, 64) of the data section lies past its end (60 bytes)");
}

TEST(GgufCorrupt, TooManyDims) {
  Raw r = head(1, 0);
  r.tensor("t", {1, 1, 1, 1, 1}, 0, 0).pad(32).zeros(32);
  expect_error(r, ErrorCode::Corrupt, "n_dims 5 > 4");
}

TEST(GgufCorrupt, DuplicateTensorNames) {
  Raw r = head(2, 0);
  r.tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).pad(32).zeros(64);
  expect_error(r, ErrorCode::Corrupt, "duplicate tensor name");
}

TEST(GgufCorrupt, RowNotWholeBlocks) {
  Raw r = head(1, 0);
  r.tensor("q", {33, 2}, 2, 0).pad(32).zeros(64);
  expect_error(r, ErrorCode::Corrupt, "ne[0] = 33 is not a multiple of the Q4_0 block size 32");
}

TEST(GgufCorrupt, NegativeDimAndUnknownType) {
  Raw r = head(1, 0);
  r.tensor("t", {-4}, 0, 0).pad(32);
  expect_error(r, ErrorCode::Corrupt, "ne[0] = -4 is negative");
  Raw s = head(1, 0);
  s.tensor("t", {4}, 77, 0).pad(32).zeros(32);
  expect_error(s, ErrorCode::Unsupported, "unknown ggml type 77");
}

TEST(GgufCorrupt, ValidateReportsEveryProblem) {
  Raw r = head(3, 0);
  r.tensor("a", {8}, 0, 4).tensor("a", {8}, 0, 32).tensor("b", {64}, 0, 64).pad(32).zeros(96);
  test::TempDir dir;
  const auto p = dir / "bad.gguf";
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(r.b.data()), std::streamsize(r.b.size()));
  auto rep = validate_file(p);
  ASSERT_FALSE(rep.ok());
  std::string all;
  for (const auto& e : rep.errors) all += e.message + "\n";
  EXPECT_NE(all.find("data offset 4 is not a multiple"), std::string::npos) << all;
  EXPECT_NE(all.find("duplicate tensor name"), std::string::npos) << all;
  EXPECT_NE(all.find("lies past its end"), std::string::npos) << all;
  EXPECT_NE(all.find("general.architecture"), std::string::npos) << all;
  EXPECT_GE(rep.errors.size(), 4u);
  EXPECT_EQ(detect(p), formats::Confidence::Certain);
  EXPECT_EQ(detect(dir / "missing.gguf"), formats::Confidence::No);
}

}  // namespace
}  // namespace mc::gguf
