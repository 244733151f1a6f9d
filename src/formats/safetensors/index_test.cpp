// Sharded directories: open_index / open_path layouts and their errors, and validate_path
// reporting every problem of a broken directory.
#include <gtest/gtest.h>

#include <algorithm>

#include "formats/safetensors/safetensors.h"
#include "formats/safetensors/st_test_helpers.h"
#include "io/output.h"
#include "testutil.h"

namespace mc::safetensors {
namespace {

using test::owned;

TensorStore three_tensors() {
  TensorStore s;
  for (const char* n : {"emb", "l0.w", "l1.w"})
    s.put(owned(n, DType::U8, {40}, std::vector<std::byte>(40, std::byte(n[1]))));
  return s;
}

// Writes three 40-byte tensors into three shards (limit 50 bytes).
void write_sharded(const fs::path& dir) {
  WriteOpts opt;
  opt.max_shard_bytes = 50;
  ASSERT_TRUE(write(three_tensors(), dir, opt).ok());
}

void put_text(const fs::path& p, const std::string& s) {
  ASSERT_TRUE(io::write_small_file(p, s).ok());
}

bool has_error(const formats::ValidationReport& r, ErrorCode code, std::string_view fragment,
               std::string_view tensor = "") {
  return std::any_of(r.errors.begin(), r.errors.end(), [&](const Error& e) {
    return e.code == code && e.message.find(fragment) != std::string::npos &&
           (tensor.empty() || e.tensor == tensor);
  });
}

TEST(StIndex, OpensShardsInOrder) {
  mc::test::TempDir dir;
  write_sharded(dir.path());
  for (const fs::path& p : {dir.path(), dir / std::string(kIndexName)}) {
    auto set = open_index(p);
    ASSERT_TRUE(set.ok()) << set.error().render();
    EXPECT_EQ(set->files.size(), 3u);
    EXPECT_EQ(set->files[0], "model-00001-of-00003.safetensors");
    ASSERT_EQ(set->tensors.size(), 3u);
    EXPECT_EQ(set->tensors[0].name, "emb");
    EXPECT_EQ(set->tensors[2].name, "l1.w");
    EXPECT_EQ(set->index_total_size, 120u);
    EXPECT_EQ(set->metadata.at("format"), "pt");
    EXPECT_EQ(read_all(set->tensors[1]).value(), std::vector<std::byte>(40, std::byte('0')));
  }
}

TEST(StIndex, MissingTensorInShardIsAnError) {
  mc::test::TempDir dir;
  write_sharded(dir.path());
  put_text(dir / std::string(kIndexName),
           R"({"metadata":{"total_size":120},"weight_map":{)"
           R"("emb":"model-00001-of-00003.safetensors",)"
           R"("l0.w":"model-00001-of-00003.safetensors",)"
           R"("l1.w":"model-00003-of-00003.safetensors"}})");
  auto set = open_index(dir.path());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().code, ErrorCode::Mismatch);  // the shard is there; it and the index disagree
  EXPECT_EQ(set.error().tensor, "l0.w");
  EXPECT_NE(set.error().message.find("model-00001-of-00003.safetensors"), std::string::npos);
}

TEST(StIndex, UnlistedTensorIsAWarning) {
  mc::test::TempDir dir;
  write_sharded(dir.path());
  put_text(dir / std::string(kIndexName),
           R"({"weight_map":{"emb":"model-00001-of-00003.safetensors",)"
           R"("l1.w":"model-00003-of-00003.safetensors"}})");
  auto set = open_index(dir.path());
  ASSERT_TRUE(set.ok()) << set.error().render();
  EXPECT_EQ(set->tensors.size(), 2u);  // shard 2 is not referenced at all
  put_text(dir / std::string(kIndexName),
           R"({"weight_map":{"emb":"model-00001-of-00003.safetensors",)"
           R"("l0.w":"model-00003-of-00003.safetensors"}})");
  auto bad = open_index(dir.path());
  ASSERT_FALSE(bad.ok());  // l0.w is listed in shard 3, which does not hold it
  EXPECT_EQ(bad.error().tensor, "l0.w");
  put_text(dir / std::string(kIndexName),
           R"({"weight_map":{"emb":"model-00001-of-00003.safetensors"}})");
  ASSERT_TRUE(write(three_tensors(), dir / "model-00001-of-00003.safetensors",
                    WriteOpts{.single_file = true})
                  .ok());
  auto warn = open_index(dir.path());
  ASSERT_TRUE(warn.ok()) << warn.error().render();
  EXPECT_EQ(warn->tensors.size(), 3u);
  ASSERT_EQ(warn->warnings.size(), 2u);
  EXPECT_NE(warn->warnings[0].find("'l0.w' is not listed"), std::string::npos);
}

TEST(StIndex, MissingShardAndBadIndex) {
  mc::test::TempDir dir;
  write_sharded(dir.path());
  fs::remove(dir / "model-00002-of-00003.safetensors");
  auto set = open_index(dir.path());
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().code, ErrorCode::NotFound);
  EXPECT_NE(set.error().hint.find("missing"), std::string::npos);

  put_text(dir / std::string(kIndexName), R"({"weight_map":{"emb":"../x.safetensors"}})");
  auto esc = open_index(dir.path());
  ASSERT_FALSE(esc.ok());
  EXPECT_EQ(esc.error().code, ErrorCode::Corrupt);
  EXPECT_EQ(esc.error().tensor, "emb");
  put_text(dir / std::string(kIndexName), R"({"weight_map":[1]})");
  EXPECT_EQ(open_index(dir.path()).error().code, ErrorCode::Corrupt);
  put_text(dir / std::string(kIndexName), R"({"weight_map":)");
  EXPECT_NE(open_index(dir.path()).error().message.find("not valid JSON"), std::string::npos);
}

TEST(StIndex, OpenPathLayouts) {
  mc::test::TempDir dir;
  // A lone file with another name.
  ASSERT_TRUE(write(three_tensors(), dir / "lone" / "weights.safetensors",
                    WriteOpts{.single_file = true})
                  .ok());
  auto lone = open_path(dir / "lone");
  ASSERT_TRUE(lone.ok()) << lone.error().render();
  EXPECT_EQ(lone->files, std::vector<std::string>{"weights.safetensors"});
  EXPECT_EQ(lone->tensors.size(), 3u);
  // The file itself.
  EXPECT_TRUE(open_path(dir / "lone" / "weights.safetensors").ok());
  // Two loose files and no index: ambiguous.
  ASSERT_TRUE(write(three_tensors(), dir / "lone" / "other.safetensors",
                    WriteOpts{.single_file = true})
                  .ok());
  auto two = open_path(dir / "lone");
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(two.error().message.find("other.safetensors"), std::string::npos);
  // model.safetensors wins over loose files.
  ASSERT_TRUE(write(three_tensors(), dir / "lone", {}).ok());
  auto m = open_path(dir / "lone");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->files, std::vector<std::string>{"model.safetensors"});
  // Nothing there.
  fs::create_directories(dir / "empty");
  EXPECT_EQ(open_path(dir / "empty").error().code, ErrorCode::NotFound);
  EXPECT_EQ(open_path(dir / "nowhere").error().code, ErrorCode::NotFound);
}

TEST(StValidate, GoodDirectory) {
  mc::test::TempDir dir;
  write_sharded(dir.path());
  auto r = validate_path(dir.path());
  EXPECT_TRUE(r.ok()) << r.errors[0].render();
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.info["files"], 3);
  // A shard the index does not reference is worth a warning.
  fs::copy_file(dir / "model-00001-of-00003.safetensors", dir / "stray.safetensors");
  auto w = validate_path(dir.path());
  EXPECT_TRUE(w.ok());
  ASSERT_EQ(w.warnings.size(), 1u);
  EXPECT_NE(w.warnings[0].find("stray.safetensors"), std::string::npos);
  EXPECT_EQ(r.info["tensor_bytes"], 120);
}

TEST(StValidate, ReportsEveryProblem) {
  mc::test::TempDir dir;
  write_sharded(dir.path());
  // Index: wrong total, l0.w unlisted, a ghost tensor listed in shard 2.
  put_text(dir / std::string(kIndexName),
           R"({"metadata":{"total_size":999},"weight_map":{)"
           R"("emb":"model-00001-of-00003.safetensors",)"
           R"("ghost":"model-00002-of-00003.safetensors",)"
           R"("l1.w":"model-00003-of-00003.safetensors"}})");
  // Shard 3 loses its last byte.
  const fs::path s3 = dir / "model-00003-of-00003.safetensors";
  fs::resize_file(s3, fs::file_size(s3) - 1);
  auto r = validate_path(dir.path());
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, ErrorCode::Mismatch, "total_size is 999, but the shards hold 120"));
  EXPECT_TRUE(has_error(r, ErrorCode::Mismatch, "not listed in the index", "l0.w"));
  EXPECT_TRUE(has_error(r, ErrorCode::Mismatch, "does not contain it", "ghost"));
  EXPECT_TRUE(has_error(r, ErrorCode::Truncated, "need 40 bytes, but only 39", "l1.w"));
  EXPECT_EQ(r.errors.size(), 4u);
  EXPECT_TRUE(r.warnings.empty());
  for (const auto& e : r.errors) EXPECT_FALSE(e.path.empty()) << e.render();
}

TEST(StValidate, SingleFileAndMissingFormat) {
  mc::test::TempDir dir;
  const std::string h = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  test::write_bytes(dir / "a.safetensors", test::raw_file(h, 8));
  auto r = validate_path(dir / "a.safetensors");
  EXPECT_TRUE(r.ok());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("\"format\""), std::string::npos);
  test::write_bytes(dir / "b.safetensors", test::raw_file(h, 9));
  auto bad = validate_path(dir / "b.safetensors");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_NE(bad.errors[0].message.find("1 trailing bytes"), std::string::npos);
  EXPECT_EQ(validate_path(dir / "none").errors.at(0).code, ErrorCode::NotFound);
}

}  // namespace
}  // namespace mc::safetensors
