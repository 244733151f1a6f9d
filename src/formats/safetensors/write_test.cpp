// Writer: golden bytes, round trips over random dtypes/shapes, sharding and the index,
// determinism across thread counts, and the validator on good and broken directories.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "formats/safetensors/safetensors.h"
#include "formats/safetensors/st_test_helpers.h"
#include "testutil.h"

namespace mc::safetensors {
namespace {

using test::owned;
using test::read_bytes;

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int x : v) out.push_back(std::byte(x));
  return out;
}

TEST(StWrite, GoldenBytes) {
  TensorStore s;
  s.put(owned("a", DType::F16, {3}, bytes_of({0x00, 0x3C, 0x00, 0x38, 0x00, 0x80})));  // 1, .5, -0
  s.put(owned("cc", DType::U8, {}, bytes_of({7})));
  s.put(owned("b", DType::F32, {2}, bytes_of({0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0})));  // 1, -2
  mc::test::TempDir dir;
  WriteOpts opt;
  opt.single_file = true;
  auto files = write(s, dir / "x.safetensors", opt);
  ASSERT_TRUE(files.ok()) << files.error().render();
  EXPECT_EQ(files.value(), std::vector<std::string>{"x.safetensors"});

  // F32 first, then F16, then U8 (descending alignment); 193 bytes of JSON + 7 spaces = 200.
  const std::string json =
      R"({"__metadata__":{"format":"pt"},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},)"
      R"("cc":{"dtype":"U8","shape":[],"data_offsets":[14,15]}})"
      "       ";
  std::vector<std::byte> expect = bytes_of({200, 0, 0, 0, 0, 0, 0, 0});
  for (char c : json) expect.push_back(std::byte(c));
  for (int b : {0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0, 0x00, 0x3C, 0x00, 0x38, 0x00, 0x80, 7})
    expect.push_back(std::byte(b));
  ASSERT_EQ(json.size(), 200u);
  EXPECT_EQ(read_bytes(dir / "x.safetensors"), expect);
}

// Bytes of one value that log their name when first read.
class LoggingData final : public TensorData {
 public:
  LoggingData(std::string name, std::vector<std::byte> b, std::vector<std::string>* log)
      : name_(std::move(name)), b_(std::move(b)), log_(log) {}
  Status read(uint64_t offset, std::span<std::byte> dst) const override {
    if (offset == 0) log_->push_back(name_);
    std::memcpy(dst.data(), b_.data() + offset, dst.size());
    return {};
  }

 private:
  std::string name_;
  std::vector<std::byte> b_;
  std::vector<std::string>* log_;
};

// The pull order decides when each tensor is made (store order by default), never where it
// goes: the file is the golden one above either way; an order that is not a permutation of the
// store is refused.
TEST(StWrite, PullOrderDecidesWhenNotWhere) {
  std::vector<std::string> log;
  TensorStore s;
  auto put = [&](std::string name, DType t, Shape shape, std::vector<std::byte> b) {
    s.put(TensorEntry{name, t, std::move(shape), std::make_shared<LoggingData>(name, std::move(b), &log)});
  };
  put("a", DType::F16, {3}, bytes_of({0x00, 0x3C, 0x00, 0x38, 0x00, 0x80}));
  put("cc", DType::U8, {}, bytes_of({7}));
  put("b", DType::F32, {2}, bytes_of({0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0}));
  mc::test::TempDir dir;
  WriteOpts opt;
  opt.single_file = true;
  ASSERT_TRUE(write(s, dir / "golden.safetensors", opt).ok());
  EXPECT_EQ(log, (std::vector<std::string>{"a", "cc", "b"})) << "store order, not file order (b a cc)";
  log.clear();
  opt.pull_order = {1, 2, 0};
  ASSERT_TRUE(write(s, dir / "x.safetensors", opt).ok());
  EXPECT_EQ(log, (std::vector<std::string>{"cc", "b", "a"}));
  EXPECT_EQ(read_bytes(dir / "x.safetensors"), read_bytes(dir / "golden.safetensors"));
  for (const auto& bad : {std::vector<size_t>{0, 0, 1}, std::vector<size_t>{0, 1}, std::vector<size_t>{0, 1, 3}}) {
    opt.pull_order = bad;
    auto r = write(s, dir / "y.safetensors", opt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::Internal) << r.error().render();
  }
}

TEST(StWrite, EmptyStoreAndCustomMetadata) {
  mc::test::TempDir dir;
  WriteOpts opt;
  opt.metadata = {{"format", "mlx"}, {"note", "x"}};
  auto files = write(TensorStore{}, dir.path(), opt);
  ASSERT_TRUE(files.ok()) << files.error().render();
  EXPECT_EQ(files.value(), std::vector<std::string>{"model.safetensors"});
  const std::string json = R"({"__metadata__":{"format":"mlx","note":"x"}})";  // 44 + 4 spaces
  std::vector<std::byte> expect = bytes_of({48, 0, 0, 0, 0, 0, 0, 0});
  for (char c : json + "    ") expect.push_back(std::byte(c));
  EXPECT_EQ(read_bytes(dir / "model.safetensors"), expect);
}

TEST(StWrite, QuantizedTensorIsUnsupported) {
  TensorStore s;
  s.put(owned("q", DType::Q4_0, {32}, std::vector<std::byte>(18)));
  mc::test::TempDir dir;
  auto r = write(s, dir.path(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
  EXPECT_EQ(r.error().tensor, "q");
  EXPECT_NE(r.error().message.find("q4_0"), std::string::npos);
}

TEST(StWrite, ReservedOrInvalidNames) {
  TensorStore s;
  s.put(owned("__metadata__", DType::U8, {1}, bytes_of({1})));
  auto r = plan_write(s, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  TensorStore t;
  t.put(owned("bad\xff", DType::U8, {1}, bytes_of({1})));
  auto r2 = plan_write(t, {});
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().tensor, "bad\xff");
  EXPECT_NE(r2.error().message.find("UTF-8"), std::string::npos);
}

// Random store: every plain dtype, shapes with scalars and zero-size dims, random bytes.
TensorStore random_store(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  const DType kTypes[] = {DType::F64, DType::F32,  DType::F16, DType::BF16, DType::F8_E4M3,
                          DType::F8_E5M2, DType::I64, DType::I32, DType::I16, DType::I8,
                          DType::U64, DType::U32, DType::U16, DType::U8, DType::Bool};
  TensorStore s;
  for (size_t i = 0; i < n; ++i) {
    const DType t = kTypes[rng() % std::size(kTypes)];
    Shape shape;
    const size_t rank = rng() % 4;
    for (size_t d = 0; d < rank; ++d) shape.push_back(int64_t(rng() % 6));
    if (i == 0) shape = {};        // scalar
    if (i == 1) shape = {3, 0, 2};  // zero elements
    const uint64_t nb = shape_numel(shape).value() * dtype_size(t);
    std::vector<std::byte> b(nb);
    for (auto& x : b) x = std::byte(rng());
    s.put(owned(fmt::format("layer.{}.w{}", rng() % 50, i), t, shape, std::move(b)));
  }
  return s;
}

void expect_same(const TensorStore& a, const TensorStore& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& t : a) {
    const TensorEntry* u = b.find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(u->dtype, t.dtype) << t.name;
    EXPECT_EQ(u->shape, t.shape) << t.name;
    EXPECT_EQ(test::tensor_bytes(*u), test::tensor_bytes(t)) << t.name;
  }
}

TEST(StWrite, RoundTripRandomSingleFile) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const TensorStore s = random_store(seed, 12);
    mc::test::TempDir dir;
    WriteOpts opt;
    opt.single_file = true;
    ASSERT_TRUE(write(s, dir / "r.safetensors", opt).ok());
    auto f = open_file(dir / "r.safetensors");
    ASSERT_TRUE(f.ok()) << f.error().render();
    expect_same(s, f->tensors);
    EXPECT_EQ(f->metadata.at("format"), "pt");
    // Every tensor starts aligned to its element size (the reason for the dtype order).
    for (const auto& t : f->tensors)
      if (t.nbytes() > 0) {
        const auto off = t.data->view()->data() - f->map->bytes().data();
        EXPECT_EQ(size_t(off) % dtype_size(t.dtype), 0u) << t.name;
      }
    EXPECT_TRUE(validate_path(dir / "r.safetensors").ok());
  }
}

TEST(StWrite, RoundTripRandomSharded) {
  for (uint32_t seed = 100; seed < 105; ++seed) {
    const TensorStore s = random_store(seed, 30);
    mc::test::TempDir dir;
    WriteOpts opt;
    opt.max_shard_bytes = 64;
    auto files = write(s, dir.path(), opt);
    ASSERT_TRUE(files.ok()) << files.error().render();
    auto set = open_path(dir.path());
    ASSERT_TRUE(set.ok()) << set.error().render();
    EXPECT_TRUE(set->warnings.empty());
    expect_same(s, set->tensors);
    EXPECT_EQ(set->index_total_size.value_or(0), s.total_bytes());
    auto rep = validate_path(dir.path());
    EXPECT_TRUE(rep.ok()) << (rep.errors.empty() ? "" : rep.errors[0].render());
  }
}

TensorStore sized_store(std::initializer_list<std::pair<const char*, size_t>> tensors) {
  TensorStore s;
  for (const auto& [name, n] : tensors)
    s.put(owned(name, DType::U8, {int64_t(n)}, std::vector<std::byte>(n, std::byte(n))));
  return s;
}

TEST(StWrite, SplitShardsLikeHuggingfaceHub) {
  const auto s = sized_store({{"t0", 10}, {"t1", 200}, {"t2", 10}, {"t3", 10}});
  // t1 exceeds the limit: it gets a shard of its own, emitted before the shard being filled.
  using V = std::vector<std::vector<size_t>>;
  EXPECT_EQ(split_shards(s, 50), (V{{1}, {0, 2, 3}}));
  // Exact fit stays in one shard; one byte less splits.
  const auto e = sized_store({{"x", 40}, {"y", 40}, {"z", 20}});
  EXPECT_EQ(split_shards(e, 80), (V{{0, 1}, {2}}));
  EXPECT_EQ(split_shards(e, 79), (V{{0}, {1, 2}}));
  EXPECT_EQ(split_shards(e, 100), (V{{0, 1, 2}}));
  EXPECT_EQ(split_shards(TensorStore{}, 10), V{});
}

TEST(StWrite, ShardFilesAndIndexContent) {
  const auto s = sized_store({{"t0", 10}, {"t1", 200}, {"t2", 10}, {"t3", 10}});
  mc::test::TempDir dir;
  WriteOpts opt;
  opt.max_shard_bytes = 50;
  auto files = write(s, dir.path(), opt);
  ASSERT_TRUE(files.ok()) << files.error().render();
  EXPECT_EQ(files.value(),
            (std::vector<std::string>{"model-00001-of-00002.safetensors",
                                      "model-00002-of-00002.safetensors", std::string(kIndexName)}));
  const std::string expect_index = R"({
  "metadata": {
    "total_size": 230
  },
  "weight_map": {
    "t0": "model-00002-of-00002.safetensors",
    "t1": "model-00001-of-00002.safetensors",
    "t2": "model-00002-of-00002.safetensors",
    "t3": "model-00002-of-00002.safetensors"
  }
}
)";
  const auto idx = read_bytes(dir / std::string(kIndexName));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(idx.data()), idx.size()), expect_index);
  auto one = open_file(dir / "model-00001-of-00002.safetensors");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->tensors.size(), 1u);
  EXPECT_EQ(one->tensors[0].name, "t1");
  // Exactly one shard: model.safetensors and no index.
  mc::test::TempDir d2;
  opt.max_shard_bytes = 230;
  EXPECT_EQ(write(s, d2.path(), opt).value(), std::vector<std::string>{"model.safetensors"});
  EXPECT_FALSE(fs::exists(d2 / std::string(kIndexName)));
}

TEST(StWrite, SameBytesWithOneAndTwoThreads) {
  TensorStore s;
  std::mt19937 rng(7);
  for (int i = 0; i < 6; ++i) {
    const int64_t n = 300'000 + i * 1234;
    std::vector<std::byte> b(size_t(n) * 2);
    for (auto& x : b) x = std::byte(rng());
    s.put(owned(fmt::format("w{}", i), DType::F16, {n}, std::move(b)));
  }
  mc::test::TempDir dir;
  ThreadPool p1(1), p2(2);
  WriteOpts opt;
  opt.max_shard_bytes = 1'500'000;
  opt.chunk_bytes = 4096 + 8;  // many small chunks, finishing out of order
  opt.pool = &p1;
  auto f1 = write(s, dir / "one", opt);
  opt.pool = &p2;
  auto f2 = write(s, dir / "two", opt);
  ASSERT_TRUE(f1.ok() && f2.ok());
  ASSERT_EQ(f1.value(), f2.value());
  ASSERT_GT(f1->size(), 2u) << fmt::format("{}", fmt::join(f1.value(), ","));
  for (const auto& name : f1.value())
    EXPECT_EQ(read_bytes(dir / "one" / name), read_bytes(dir / "two" / name)) << name;
}

TEST(StWrite, ProgressReportsAllBytes) {
  const auto s = sized_store({{"a", 1000}, {"b", 3000}});
  mc::test::TempDir dir;
  std::atomic<uint64_t> last{0};
  WriteOpts opt;
  opt.chunk_bytes = 512;
  opt.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, 4000u);
    uint64_t prev = last.load();
    while (done > prev && !last.compare_exchange_weak(prev, done)) {
    }
  };
  ASSERT_TRUE(write(s, dir.path(), opt).ok());
  EXPECT_EQ(last.load(), 4000u);
}

}  // namespace
}  // namespace mc::safetensors
