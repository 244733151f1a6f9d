// The corrupt-file catalogue (formats.md §1.3): one test per rule, each asserting the error code,
// a message fragment and the tensor it names; plus what a valid file yields.
#include <gtest/gtest.h>

#include "formats/safetensors/safetensors.h"
#include "formats/safetensors/st_test_helpers.h"
#include "testutil.h"

namespace mc::safetensors {
namespace {

using test::raw_file;

// A one-tensor header "w": F32 with the given shape and offsets.
std::string w_header(std::string_view shape, std::string_view offsets,
                     std::string_view dtype = "F32") {
  return fmt::format(R"({{"w":{{"dtype":"{}","shape":{},"data_offsets":{}}}}})", dtype, shape,
                     offsets);
}

struct Expect {
  ErrorCode code;
  std::string_view fragment;
  std::string_view tensor = "";
};

void expect_error(const std::vector<std::byte>& file, const Expect& x) {
  auto r = parse_header(file, "bad.safetensors");
  ASSERT_FALSE(r.ok()) << "accepted a file that breaks a rule: " << x.fragment;
  const Error& e = r.error();
  EXPECT_EQ(error_code_name(e.code), error_code_name(x.code)) << e.render();
  EXPECT_NE(e.message.find(x.fragment), std::string::npos) << e.render();
  EXPECT_EQ(e.tensor, x.tensor) << e.render();
  EXPECT_EQ(e.path, "bad.safetensors");
  EXPECT_FALSE(e.hint.empty());
}

TEST(StRead, FileShorterThan8Bytes) {
  std::vector<std::byte> f(5, std::byte{0});
  expect_error(f, {ErrorCode::Truncated, "file is 5 bytes, smaller than the 8-byte"});
}

TEST(StRead, HeaderLengthOverCap) {
  expect_error(raw_file("{}", 0, 100'000'001),
               {ErrorCode::LimitExceeded, "header length 100000001 is over the 100000000 byte cap"});
}

TEST(StRead, HeaderLengthPastEndOfFile) {
  expect_error(raw_file("{}", 6, 1000),
               {ErrorCode::Truncated, "header declares 1000 bytes but only 8 bytes follow"});
}

TEST(StRead, EmptyHeader) {
  expect_error(raw_file("", 0), {ErrorCode::Corrupt, "must start with '{' (0x7B), found an empty"});
}

TEST(StRead, HeaderNotStartingWithBrace) {
  expect_error(raw_file(R"( {"__metadata__":{}})", 0),
               {ErrorCode::Corrupt, "must start with '{' (0x7B), found 0x20"});
  expect_error(raw_file("[1,2]", 0), {ErrorCode::Corrupt, "found 0x5B"});
}

TEST(StRead, HeaderNotJson) {
  auto f = raw_file(R"({"w":{"dtype":"F32",)", 0);
  expect_error(f, {ErrorCode::Corrupt, "not valid UTF-8 JSON"});
  EXPECT_TRUE(parse_header(f).error().offset.has_value());
  expect_error(raw_file("{}garbage", 0), {ErrorCode::Corrupt, "not valid UTF-8 JSON"});
}

TEST(StRead, HeaderNotUtf8) {
  expect_error(raw_file("{\"\xff\xfe\":{}}", 0), {ErrorCode::Corrupt, "not valid UTF-8 JSON"});
}

TEST(StRead, EntryNotAnObject) {
  expect_error(raw_file(R"({"w":[1,2]})", 0), {ErrorCode::Corrupt, "not an object", "w"});
}

TEST(StRead, MissingField) {
  expect_error(raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", 8),
               {ErrorCode::Corrupt, "no 'data_offsets' field", "w"});
}

TEST(StRead, UnknownDtype) {
  expect_error(raw_file(w_header("[2]", "[0,8]", "F17"), 8),
               {ErrorCode::Corrupt, "unknown dtype 'F17'", "w"});
  expect_error(raw_file(R"({"w":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8),
               {ErrorCode::Corrupt, "dtype is number, not a string", "w"});
}

TEST(StRead, ShapeNotIntegers) {
  expect_error(raw_file(w_header("[2.5]", "[0,8]"), 8),
               {ErrorCode::Corrupt, "shape dim 0 is a float (2.5)", "w"});
  expect_error(raw_file(w_header(R"([2,"2"])", "[0,8]"), 8),
               {ErrorCode::Corrupt, "shape dim 1 is string", "w"});
  expect_error(raw_file(w_header("2", "[0,8]"), 8),
               {ErrorCode::Corrupt, "shape is number, not an array", "w"});
}

TEST(StRead, ShapeNegative) {
  expect_error(raw_file(w_header("[-2]", "[0,8]"), 8),
               {ErrorCode::Corrupt, "shape dim 0 is negative (-2)", "w"});
}

TEST(StRead, DataOffsetsMalformed) {
  expect_error(raw_file(w_header("[2]", "[0,8,9]"), 8),
               {ErrorCode::Corrupt, "must be an array [BEGIN, END]", "w"});
  expect_error(raw_file(w_header("[2]", "[-1,8]"), 8),
               {ErrorCode::Corrupt, "two non-negative integers", "w"});
}

TEST(StRead, DataOffsetsReversed) {
  auto f = raw_file(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
      8);
  expect_error(f, {ErrorCode::Corrupt, "data_offsets [8, 4) are reversed", "b"});
}

TEST(StRead, DataOffsetsOverlap) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_error(raw_file(h, 12), {ErrorCode::Corrupt, "[4, 12) overlap 'a', which ends at 8", "b"});
}

TEST(StRead, DataOffsetsHole) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})";
  auto f = raw_file(h, 20);
  expect_error(f, {ErrorCode::Corrupt, "hole of 4 bytes before this tensor", "b"});
  EXPECT_EQ(parse_header(f).error().offset.value(), 8 + h.size() + 12);
}

TEST(StRead, DataOffsetsFirstTensorNotAtZero) {
  expect_error(raw_file(w_header("[2]", "[4,12]"), 12),
               {ErrorCode::Corrupt, "hole of 4 bytes", "w"});
}

TEST(StRead, DataOutOfBounds) {
  expect_error(raw_file(w_header("[4]", "[0,16]"), 8),
               {ErrorCode::Truncated, "[0, 16) need 16 bytes, but only 8 bytes follow", "w"});
}

TEST(StRead, TrailingBytes) {
  expect_error(raw_file(w_header("[2]", "[0,8]"), 12),
               {ErrorCode::Corrupt, "4 trailing bytes after the last tensor"});
}

TEST(StRead, ElementCountMismatch) {
  expect_error(raw_file(w_header("[3]", "[0,8]"), 8),
               {ErrorCode::Mismatch, "shape [3] of F32 needs 12 bytes, but data_offsets [0, 8) "
                                     "span 8 bytes",
                "w"});
}

TEST(StRead, ElementBitsNotWholeBytes) {
  expect_error(raw_file(w_header("[3]", "[0,1]", "F4"), 1),
               {ErrorCode::Mismatch, "holds 12 bits, not a whole number of bytes", "w"});
}

TEST(StRead, ElementCountOverflow) {
  expect_error(raw_file(w_header("[4611686018427387904,4]", "[0,8]"), 8),
               {ErrorCode::LimitExceeded, "overflows 64 bits", "w"});
}

TEST(StRead, MetadataValueNotString) {
  expect_error(raw_file(R"({"__metadata__":{"format":"pt","n":1}})", 0),
               {ErrorCode::Corrupt, "__metadata__ value of 'n' is number"});
  expect_error(raw_file(R"({"__metadata__":["pt"]})", 0),
               {ErrorCode::Corrupt, "__metadata__ is array"});
}

TEST(StRead, DuplicateKeys) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_error(raw_file(h, 8), {ErrorCode::Corrupt, "duplicate key 'w'", "w"});
  expect_error(raw_file(R"({"w":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})",
                        8),
               {ErrorCode::Corrupt, "duplicate key 'dtype'"});
}

TEST(StRead, CheckHeaderCollectsEveryError) {
  const std::string h = R"({"__metadata__":{"x":2},)"
                        R"("a":{"dtype":"F99","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[3],"data_offsets":[8,16]},)"
                        R"("c":{"dtype":"F32","shape":[2],"data_offsets":[20,28]}})";
  std::vector<Error> errs;
  auto hdr = check_header(raw_file(h, 28), "x.safetensors", errs);
  ASSERT_TRUE(hdr.has_value());
  ASSERT_EQ(errs.size(), 4u);
  EXPECT_NE(errs[0].message.find("__metadata__ value of 'x'"), std::string::npos);
  EXPECT_EQ(errs[1].tensor, "a");  // unknown dtype
  EXPECT_EQ(errs[2].tensor, "b");  // 12 bytes needed, 8 spanned
  EXPECT_EQ(errs[2].code, ErrorCode::Mismatch);
  EXPECT_EQ(errs[3].tensor, "c");  // hole
  EXPECT_NE(errs[3].message.find("hole of 4 bytes"), std::string::npos);
}

TEST(StRead, ValidFileSortedByOffsetsWithPadding) {
  // JSON key order differs from data order; header padded with spaces; scalar and empty tensors.
  const std::string h = R"({"z":{"dtype":"U8","shape":[],"data_offsets":[0,1]},)"
                        R"("a":{"dtype":"I16","shape":[2],"data_offsets":[1,5]},)"
                        R"("e":{"dtype":"F32","shape":[3,0],"data_offsets":[5,5]},)"
                        R"("__metadata__":{"format":"pt"}}   )";
  auto r = parse_header(raw_file(h, 5));
  ASSERT_TRUE(r.ok()) << r.error().render();
  ASSERT_EQ(r->tensors.size(), 3u);
  EXPECT_EQ(r->tensors[0].name, "z");
  EXPECT_TRUE(r->tensors[0].shape.empty());
  EXPECT_EQ(r->tensors[1].name, "a");
  EXPECT_EQ(r->tensors[2].name, "e");
  EXPECT_EQ(r->metadata.at("format"), "pt");
  EXPECT_EQ(r->header_len, h.size());
}

TEST(StRead, OpenFileMapsTensorsZeroCopy) {
  mc::test::TempDir dir;
  const std::string h = R"({"a":{"dtype":"I16","shape":[2],"data_offsets":[2,6]},)"
                        R"("s":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  const auto bytes = raw_file(h, 6);
  test::write_bytes(dir / "m.safetensors", bytes);
  auto f = open_file(dir / "m.safetensors");
  ASSERT_TRUE(f.ok()) << f.error().render();
  ASSERT_EQ(f->tensors.size(), 2u);
  EXPECT_EQ(f->tensors[0].name, "s");  // data_offsets order
  const TensorEntry& a = f->tensors[1];
  EXPECT_EQ(a.dtype, DType::I16);
  EXPECT_EQ(a.shape, (Shape{2}));
  auto v = a.data->view();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->data(), f->map->bytes().data() + 8 + h.size() + 2);
  EXPECT_EQ(read_all(a).value(), std::vector<std::byte>(bytes.begin() + 8 + long(h.size()) + 2,
                                                        bytes.end()));
}

TEST(StRead, OpenFileRejectsDtypeWeCannotRepresent) {
  mc::test::TempDir dir;
  test::write_bytes(dir / "c.safetensors", raw_file(w_header("[1]", "[0,8]", "C64"), 8));
  auto f = open_file(dir / "c.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ErrorCode::Unsupported);
  EXPECT_EQ(f.error().tensor, "w");
  EXPECT_EQ(f.error().path, (dir / "c.safetensors").string());
  EXPECT_NE(f.error().message.find("C64"), std::string::npos);
}

TEST(StRead, OpenFileErrorsCarryPath) {
  mc::test::TempDir dir;
  test::write_bytes(dir / "t.safetensors", raw_file(w_header("[4]", "[0,16]"), 10));
  auto f = open_file(dir / "t.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ErrorCode::Truncated);
  EXPECT_EQ(f.error().path, (dir / "t.safetensors").string());
  EXPECT_NE(f.error().render().find("re-download"), std::string::npos);
  auto missing = open_file(dir / "nope.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
}

}  // namespace
}  // namespace mc::safetensors
