#include <gtest/gtest.h>

#include <filesystem>

#include "formats/torch/pickle.h"
#include "formats/torch/torch_test_util.h"
#include "testutil.h"

namespace mc::torch {
namespace {

using testing::as_span;
using namespace std::string_literals;

std::string from_hex(std::string_view h) {
  std::string out;
  for (size_t k = 0; k + 1 < h.size(); k += 2) out.push_back(char(std::stoi(std::string(h.substr(k, 2)), nullptr, 16)));
  return out;
}

Result<Value*> parse(Tree& t, const std::string& bytes, const Limits& lim = {}) {
  auto r = parse_pickle(as_span(bytes), t, lim);
  if (!r) return std::move(r).error();
  return r->value;
}

TEST(Pickle, ParsesPlainValuesOfProtocol2) {
  // pickle.dumps({'a': 1, 'b': [True, None, 2.5, -7, 70000, 2**40], 'c': ('x', b'\x00\xff')}, protocol=2)
  const std::string p = from_hex(
      "80027d71002858010000006171014b0158010000006271025d710328884e4740040000000000004af9ffffff4a70110100"
      "8a060000000000016558010000006371045801000000787105635f636f646563730a656e636f64650a7106580300000000"
      "c3bf710758060000006c6174696e31710886710952710a86710b752e");
  Tree t;
  auto v = parse(t, p);
  ASSERT_TRUE(v.ok()) << v.error().render();
  const Value& d = **v;
  ASSERT_EQ(d.kind, Kind::Dict);
  EXPECT_EQ(d.get("a")->i, 1);
  const Value* b = d.get("b");
  ASSERT_EQ(b->items.size(), 6u);
  EXPECT_TRUE(b->items[0]->b);
  EXPECT_EQ(b->items[1]->kind, Kind::None);
  EXPECT_DOUBLE_EQ(b->items[2]->f, 2.5);
  EXPECT_EQ(b->items[3]->i, -7);
  EXPECT_EQ(b->items[4]->i, 70000);
  EXPECT_EQ(b->items[5]->i, int64_t(1) << 40);
  const Value* c = d.get("c");
  ASSERT_EQ(c->kind, Kind::Tuple);
  EXPECT_EQ(c->items[0]->str, "x");
  ASSERT_EQ(c->items[1]->kind, Kind::Bytes);
  EXPECT_EQ(c->items[1]->str, std::string("\x00\xff", 2));
}

TEST(Pickle, OsSystemIsInertDataAndFlaggedByWeightsOnlyCheck) {
  namespace fs = std::filesystem;
  mc::test::TempDir dir;
  const std::string marker = (dir / "pwned").string();
  const std::string cmd = "touch " + marker;
  std::string p = "\x80\x02" "cposix\nsystem\nq\x00X"s;
  const uint32_t n = uint32_t(cmd.size());
  p.append(reinterpret_cast<const char*>(&n), 4);
  p += cmd + "q\x01\x85q\x02Rq\x03."s;
  Tree t;
  auto v = parse(t, p);
  ASSERT_TRUE(v.ok()) << v.error().render();
  ASSERT_EQ((*v)->kind, Kind::Object);
  EXPECT_TRUE((*v)->callable->is_global("posix", "system"));
  EXPECT_EQ((*v)->args->items[0]->str, cmd);
  EXPECT_FALSE(fs::exists(marker));
  auto st = check_weights_only(**v);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Unsupported);
  EXPECT_NE(st.error().message.find("posix.system"), std::string::npos) << st.error().message;
}

TEST(Pickle, UnknownOpcodeIsCorruptWithOffset) {
  Tree t;
  auto v = parse(t, std::string("\x80\x02N\xff", 4));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::Corrupt);
  EXPECT_EQ(v.error().offset, 3u);
  EXPECT_NE(v.error().message.find("unknown pickle opcode 0xff at byte 3"), std::string::npos) << v.error().message;
}

TEST(Pickle, TruncatedStream) {
  Tree t;
  auto v = parse(t, std::string("\x80\x02X\x10\x00\x00\x00" "abc", 10));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::Truncated);
  EXPECT_NE(v.error().message.find("pickle ends inside opcode 0x58"), std::string::npos) << v.error().message;
  auto w = parse(t, std::string("\x80\x02N", 3));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ErrorCode::Truncated);
  EXPECT_NE(w.error().message.find("without a STOP"), std::string::npos);
}

TEST(Pickle, DeepNestingOverTheCap) {
  Tree t;
  auto marks = parse(t, "\x80\x02" + std::string(600, '(') + "N.");
  ASSERT_FALSE(marks.ok());
  EXPECT_EQ(marks.error().code, ErrorCode::LimitExceeded);
  EXPECT_NE(marks.error().message.find("MARK nesting exceeds the cap of 512"), std::string::npos);
  // Lists nested 600 deep through APPEND (bounded stack, growing depth).
  auto lists = parse(t, "\x80\x02" + std::string(600, ']') + std::string(599, 'a') + ".");
  ASSERT_FALSE(lists.ok());
  EXPECT_EQ(lists.error().code, ErrorCode::LimitExceeded);
  EXPECT_NE(lists.error().message.find("nesting depth 513 exceeds the cap of 512"), std::string::npos)
      << lists.error().message;
}

TEST(Pickle, HugeMemoIndex) {
  Tree t;
  auto put = parse(t, std::string("\x80\x02Nr\xff\xff\xff\xff.", 9));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, ErrorCode::LimitExceeded);
  EXPECT_NE(put.error().message.find("memo index 4294967295 exceeds the cap"), std::string::npos);
  auto get = parse(t, std::string("\x80\x02j\x00\x00\x00\x01.", 8));
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.error().code, ErrorCode::Corrupt);
  EXPECT_NE(get.error().message.find("memo index 16777216 was never stored"), std::string::npos);
}

TEST(Pickle, HugeStringLengthAndStackUnderflow) {
  Tree t;
  Limits lim;
  lim.max_string_bytes = 1024;
  auto s = parse(t, std::string("\x80\x02X\x00\x00\x10\x00", 7), lim);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::LimitExceeded);
  EXPECT_NE(s.error().message.find("1048576 bytes exceeds the cap of 1024"), std::string::npos);
  auto u = parse(t, "\x80\x02t.");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, ErrorCode::Corrupt);
  EXPECT_NE(u.error().message.find("without a MARK"), std::string::npos);
}

TEST(Pickle, SelfReferencingListDoesNotHangWalkers) {
  Tree t;
  auto v = parse(t, "\x80\x02]q\x00h\x00" "a."s);
  ASSERT_TRUE(v.ok()) << v.error().render();
  EXPECT_EQ((*v)->items[0], *v);
  auto bad = find_unsafe_globals(**v);
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->empty());
  EXPECT_FALSE(to_debug_string(**v).empty());
}

TEST(Pickle, WriterRoundTripsTreesAndNamespace) {
  Tree t;
  Value* fields = t.dict();
  fields->entries.emplace_back(t.string("lr"), t.real(0.5));
  fields->entries.emplace_back(t.string("layers"), t.list({t.integer(1), t.integer(-300000), t.integer(int64_t(1) << 40)}));
  Value* root = t.dict();
  root->entries.emplace_back(t.string("args"), t.namespace_object(fields));
  root->entries.emplace_back(t.string("tup"), t.tuple({t.string("a"), t.boolean(false), t.none(), t.bytes(std::string("\x00\x80\xff", 3))}));
  auto bytes = write_pickle(*root, [](const TensorEntry&) { return StorageAssignment{"0", DType::F32, 0}; });
  ASSERT_TRUE(bytes.ok());
  Tree u;
  auto v = parse(u, *bytes);
  ASSERT_TRUE(v.ok()) << v.error().render();
  const Value* args = (*v)->get("args");
  ASSERT_EQ(args->kind, Kind::Object);
  EXPECT_TRUE(args->callable->is_global("argparse", "Namespace"));
  EXPECT_TRUE(args->newobj);
  EXPECT_DOUBLE_EQ(args->state->get("lr")->f, 0.5);
  EXPECT_EQ(args->state->get("layers")->items[1]->i, -300000);
  EXPECT_EQ(args->state->get("layers")->items[2]->i, int64_t(1) << 40);
  const Value* tup = (*v)->get("tup");
  EXPECT_EQ(tup->items[3]->str, std::string("\x00\x80\xff", 3));
  EXPECT_FALSE(check_weights_only(**v).ok());  // argparse.Namespace is not weights_only-safe
}

TEST(Pickle, StorageClassTableBothWays) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64, DType::I32, DType::I16, DType::I8,
                  DType::U8, DType::Bool}) {
    auto name = storage_class_for(d);
    ASSERT_TRUE(name.has_value()) << dtype_name(d);
    EXPECT_EQ(dtype_from_storage_class(*name), d);
  }
  EXPECT_EQ(*storage_class_for(DType::BF16), "BFloat16Storage");
  EXPECT_FALSE(storage_class_for(DType::Q4_0).has_value());
  EXPECT_EQ(dtype_from_torch_name("float8_e4m3fn"), DType::F8_E4M3);
}

}  // namespace
}  // namespace mc::torch
