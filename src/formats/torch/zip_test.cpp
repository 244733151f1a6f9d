// Container-level tests: hostile archives, storage bounds, byte order, >65535 entries.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "formats/torch/torch_io.h"
#include "formats/torch/torch_test_util.h"
#include "formats/torch/zip.h"
#include "testutil.h"

namespace mc::torch {
namespace {

using testing::make_zip;
using testing::read_bytes;
using testing::write_bytes;
using namespace std::string_literals;

// data.pkl for {name: tensor(shape)} whose storage "0" claims `numel` elements.
std::string tensor_pickle(const std::vector<std::pair<std::string, Shape>>& ts, uint64_t numel,
                          DType dt = DType::F32) {
  Tree t;
  std::vector<TensorEntry> es;
  es.reserve(ts.size());
  Value* d = t.dict();
  for (const auto& [n, s] : ts) {
    es.push_back({n, dt, s, make_owned_data({})});
    d->entries.emplace_back(t.string(n), t.tensor(es.back()));
  }
  auto p = write_pickle(*d, [&](const TensorEntry&) { return StorageAssignment{"0", dt, numel}; });
  EXPECT_TRUE(p.ok());
  return *p;
}

std::string floats(std::vector<float> v, bool big_endian = false) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  if (big_endian)
    for (size_t i = 0; i < s.size(); i += 4) std::swap(s[i], s[i + 3]), std::swap(s[i + 1], s[i + 2]);
  return s;
}

Error open_error(const std::string& path) {
  auto f = open_torch_file(path);
  EXPECT_FALSE(f.ok());
  return f.ok() ? Error{} : f.error();
}

uint32_t u32_at(const std::string& s, size_t off) {
  uint32_t v;
  std::memcpy(&v, s.data() + off, 4);
  return v;
}
void put_u32(std::string& s, size_t off, uint32_t v) { std::memcpy(s.data() + off, &v, 4); }

class ZipFiles : public ::testing::Test {
 protected:
  std::string p(const std::string& n) { return (dir_ / n).string(); }
  // A small valid file written by our writer, and its central directory offset.
  std::string valid(size_t* cd_off) {
    TensorStore s;
    s.put(make_tensor_f32("a", {2}, std::vector<float>{1, 2}));
    WriteOptions o;
    o.force = true;
    EXPECT_TRUE(write_torch_file(s, p("ok.bin"), o).ok());
    std::string b = read_bytes(p("ok.bin"));
    *cd_off = u32_at(b, b.size() - 22 + 16);
    return b;
  }
  test::TempDir dir_;
};

TEST_F(ZipFiles, CentralDirectoryPointingOutsideTheFile) {
  size_t cd = 0;
  std::string b = valid(&cd);
  put_u32(b, cd + 42, 0x7FFFFFF0);  // first entry's local header offset
  write_bytes(p("bad.bin"), b);
  Error e = open_error(p("bad.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("no local header at offset 2147483632"), std::string::npos) << e.render();

  b = valid(&cd);
  put_u32(b, cd + 20, 0x7FFFFFF0);  // compressed and uncompressed size of data.pkl
  put_u32(b, cd + 24, 0x7FFFFFF0);
  write_bytes(p("bad2.bin"), b);
  e = open_error(p("bad2.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("lies outside the"), std::string::npos) << e.render();

  b = valid(&cd);
  write_bytes(p("cut.bin"), b.substr(0, b.size() / 2));
  e = open_error(p("cut.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("no zip end-of-central-directory record"), std::string::npos) << e.render();
}

TEST_F(ZipFiles, UnsafeOrForeignEntryNames) {
  const std::string pkl = tensor_pickle({}, 0);
  write_bytes(p("dotdot.bin"), make_zip({{"arch/data.pkl", pkl}, {"arch/../evil", "x"}, {"arch/version", "3\n"}}));
  Error e = open_error(p("dotdot.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("unsafe entry name 'arch/../evil'"), std::string::npos) << e.render();

  write_bytes(p("abs.bin"), make_zip({{"/etc/data.pkl", pkl}}));
  e = open_error(p("abs.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("unsafe entry name '/etc/data.pkl'"), std::string::npos) << e.render();

  write_bytes(p("other.bin"), make_zip({{"arch/data.pkl", pkl}, {"other/version", "3\n"}}));
  e = open_error(p("other.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("entry 'other/version' is not under the archive folder 'arch/'"), std::string::npos);
}

TEST_F(ZipFiles, StorageExtentsPastTheStorage) {
  // A [10] tensor on a storage of 4 elements, and a [2, 3] view with strides reaching past it.
  write_bytes(p("oob.bin"), make_zip({{"arch/data.pkl", tensor_pickle({{"w", {10}}, {"v", {2, 2}}}, 4)},
                                      {"arch/data/0", floats({1, 2, 3, 4})},
                                      {"arch/version", "3\n"}}));
  Error e = open_error(p("oob.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_EQ(e.tensor, "w");
  EXPECT_NE(e.message.find("reaches element 9 of storage '0' which has 4 elements"), std::string::npos) << e.render();
  // validate reports every bad tensor, not just the first ("v" fits: 2x2 = 4 elements).
  write_bytes(p("oob2.bin"), make_zip({{"arch/data.pkl", tensor_pickle({{"w", {10}}, {"x", {5}}}, 4)},
                                       {"arch/data/0", floats({1, 2, 3, 4})},
                                       {"arch/version", "3\n"}}));
  auto errs = validate_torch_file(p("oob2.bin"));
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].tensor, "w");
  EXPECT_EQ(errs[1].tensor, "x");
  EXPECT_EQ(errs[1].code, ErrorCode::Corrupt);

  // The storage record holds fewer bytes than its declared element count.
  write_bytes(p("short.bin"), make_zip({{"arch/data.pkl", tensor_pickle({{"w", {4}}}, 4)},
                                        {"arch/data/0", floats({1, 2})},
                                        {"arch/version", "3\n"}}));
  e = open_error(p("short.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("storage '0' declares 4 elements of 4 bytes but holds 8 bytes"), std::string::npos);
}

TEST_F(ZipFiles, HostilePickleInsideAnArchiveIsNotExecuted) {
  const std::string marker = p("pwned");
  const std::string cmd = "touch " + marker;
  std::string pkl = "\x80\x02" "cposix\nsystem\nX"s;
  const uint32_t n = uint32_t(cmd.size());
  pkl.append(reinterpret_cast<const char*>(&n), 4);
  pkl += cmd + "\x85R."s;
  write_bytes(p("evil.pt"), make_zip({{"evil/data.pkl", pkl}, {"evil/version", "3\n"}}));
  // Parsed as data and refused: the root is a call record, not a state dict.
  auto f = open_torch_file(p("evil.pt"));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ErrorCode::Corrupt);
  EXPECT_NE(f.error().message.find("not a state dict"), std::string::npos) << f.error().render();
  EXPECT_NE(f.error().message.find("posix.system"), std::string::npos) << f.error().render();
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(ZipFiles, StructuralRefusals) {
  const std::string pkl = tensor_pickle({}, 0);
  write_bytes(p("nover.bin"), make_zip({{"a/data.pkl", pkl}}));
  Error e = open_error(p("nover.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("no 'version' record"), std::string::npos);

  write_bytes(p("ts.pt"), make_zip({{"a/data.pkl", pkl}, {"a/constants.pkl", pkl}, {"a/version", "3\n"}}));
  e = open_error(p("ts.pt"));
  EXPECT_EQ(e.code, ErrorCode::Unsupported);
  EXPECT_NE(e.message.find("TorchScript"), std::string::npos);

  // data.pkl marked deflated (method 8) in both headers.
  std::string z = make_zip({{"a/data.pkl", pkl}, {"a/version", "3\n"}});
  const size_t cd = u32_at(z, z.size() - 22 + 16);
  z[8] = 8;
  z[cd + 10] = 8;
  write_bytes(p("deflate.bin"), z);
  e = open_error(p("deflate.bin"));
  EXPECT_EQ(e.code, ErrorCode::Unsupported);
  EXPECT_NE(e.message.find("entry 'a/data.pkl' is compressed (method 8)"), std::string::npos) << e.render();

  write_bytes(p("junk.bin"), std::string(100, 'j'));
  e = open_error(p("junk.bin"));
  EXPECT_EQ(e.code, ErrorCode::Corrupt);
  EXPECT_NE(e.message.find("not a torch checkpoint"), std::string::npos);

  std::string tar(1024, '\0');
  std::memcpy(tar.data() + 257, "ustar", 5);
  write_bytes(p("tar.bin"), tar);
  e = open_error(p("tar.bin"));
  EXPECT_EQ(e.code, ErrorCode::Unsupported);
  EXPECT_NE(e.message.find("tar-based legacy"), std::string::npos);
}

TEST_F(ZipFiles, BigEndianStoragesAreSwapped) {
  write_bytes(p("be.bin"), make_zip({{"a/data.pkl", tensor_pickle({{"w", {3}}}, 3)},
                                     {"a/byteorder", "big"},
                                     {"a/data/0", floats({1.5f, -2.0f, 3.25f}, true)},
                                     {"a/version", "3\n"}}));
  auto f = open_torch_file(p("be.bin"));
  ASSERT_TRUE(f.ok()) << f.error().render();
  EXPECT_TRUE(f->big_endian);
  auto v = read_f32(*f->tensors.find("w"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
}

TEST_F(ZipFiles, RebuildTensorV3OnUntypedStorage) {
  // What torch 2.x writes for dtypes without a typed storage class: UntypedStorage (numel in
  // bytes) and the element dtype as _rebuild_tensor_v3's 7th argument.
  const std::string pkl =
      "\x80\x02}X\x01\x00\x00\x00w" "ctorch._utils\n_rebuild_tensor_v3\n((X\x07\x00\x00\x00storage"
      "ctorch\nUntypedStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x08tQK\x01K\x03\x85K\x01\x85\x89"
      "ccollections\nOrderedDict\n)Rctorch\nbfloat16\ntRs."s;
  const std::string data = "\x00\x00\x80\x3f\x00\x40\xc0\xc0"s;  // bf16 0, 1, 2, -6
  write_bytes(p("v3.pt"), make_zip({{"a/data.pkl", pkl}, {"a/data/0", data}, {"a/version", "3\n"}}));
  auto f = open_torch_file(p("v3.pt"));
  ASSERT_TRUE(f.ok()) << f.error().render();
  const TensorEntry* w = f->tensors.find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::BF16);
  EXPECT_EQ(w->shape, (Shape{3}));
  EXPECT_EQ(*read_f32(*w), (std::vector<float>{1.0f, 2.0f, -6.0f}));
}

TEST_F(ZipFiles, MoreThan65535EntriesUseZip64EndRecords) {
  TensorStore s;
  for (int i = 0; i < 70000; ++i) s.put(make_tensor_f32("t" + std::to_string(i), {1}, std::vector<float>{float(i)}));
  ASSERT_TRUE(write_torch_file(s, p("many.bin")).ok());
  const std::string b = read_bytes(p("many.bin"));
  uint16_t classic_count;
  std::memcpy(&classic_count, b.data() + b.size() - 22 + 10, 2);
  EXPECT_EQ(classic_count, 0xFFFF);
  auto f = open_torch_file(p("many.bin"), ReadOptions{{}, true});
  ASSERT_TRUE(f.ok()) << f.error().render();
  ASSERT_EQ(f->tensors.size(), 70000u);
  EXPECT_EQ(read_f32(*f->tensors.find("t69999"))->at(0), 69999.0f);
  // Every storage's data is 64-byte aligned, as torch writes it.
  for (const auto& [k, sb] : f->storages) ASSERT_EQ(sb.file_offset % 64, 0u) << k;
}

TEST_F(ZipFiles, Crc32CombineMatchesOnePass) {
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = char(i * 131 % 251);
  const auto all = crc32_update(0, testing::as_span(data));
  const auto a = crc32_update(0, testing::as_span(data).first(33333));
  const auto c = crc32_update(0, testing::as_span(data).subspan(33333));
  EXPECT_EQ(crc32_combine_parts(a, c, data.size() - 33333), all);
  EXPECT_EQ(crc32_update(0, testing::as_span("123456789"s)), 0xCBF43926u);  // the standard check value
}

TEST_F(ZipFiles, WriterRefusesUnsupportedDtypeAndExistingOutput) {
  TensorStore s;
  s.put(TensorEntry{"q", DType::Q4_0, {32}, make_owned_data(std::vector<std::byte>(18))});
  auto st = write_torch_file(s, p("q.bin"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Unsupported);
  EXPECT_EQ(st.error().tensor, "q");
  EXPECT_FALSE(std::filesystem::exists(p("q.bin")));
  size_t cd;
  (void)valid(&cd);
  TensorStore t;
  t.put(make_tensor_f32("a", {1}, std::vector<float>{1}));
  st = write_torch_file(t, p("ok.bin"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Exists);
}

}  // namespace
}  // namespace mc::torch
