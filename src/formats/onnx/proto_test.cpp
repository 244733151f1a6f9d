// The protobuf layer against bytes worked out by hand from the wire format rules (proto.h), and
// the decoder's refusals of malformed input.
#include <gtest/gtest.h>

#include "formats/onnx/model_proto.h"
#include "formats/onnx/proto.h"

namespace mc::onnx {
namespace {

std::string hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

std::span<const std::byte> as_span(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

TEST(OnnxProto, VarintsByHand) {
  std::string s;
  pb::put_varint(s, 0);
  pb::put_varint(s, 1);
  pb::put_varint(s, 127);
  pb::put_varint(s, 128);  // 0x80 0x01
  pb::put_varint(s, 300);  // 0xac 0x02
  EXPECT_EQ(hex(s), "00017f8001ac02");
  std::string neg;
  pb::put_varint(neg, static_cast<uint64_t>(int64_t{-1}));  // ten bytes: nine 0xff then 0x01
  EXPECT_EQ(hex(neg), "ffffffffffffffffff01");
}

TEST(OnnxProto, FieldsByHand) {
  pb::Msg m;
  m.varint(1, 8);          // key (1<<3|0)=0x08, value 0x08
  m.bytes(2, "ab");        // key 0x12, len 2, 'a' 'b'
  m.f32(2, 1.0f);          // key 0x15, 00 00 80 3f
  m.int64(8, -1);          // key 0x40, ten bytes
  EXPECT_EQ(hex(m.bytes()), "0808" "12026162" "150000803f" "40ffffffffffffffffff01");
  pb::Msg outer;
  outer.message(7, m);  // key 0x3a, length 2 + 4 + 5 + 11 = 22 = 0x16
  EXPECT_EQ(hex(outer.bytes()).substr(0, 4), "3a16");
  EXPECT_EQ(outer.size(), 24u);
}

TEST(OnnxProto, HolesArePlacedAfterTheirLength) {
  pb::Msg t;
  t.bytes(8, "w");     // 42 01 77
  t.hole(9, 300, 5);   // 4a ac 02, then 300 bytes later
  t.varint(2, 1);      // 10 01
  pb::Msg g;
  g.varint(1, 3);      // 08 03
  g.message(5, t);     // 2a <len 308 = 0x134 = b4 02> ...
  EXPECT_EQ(t.size(), 3u + 3u + 300u + 2u);
  EXPECT_EQ(hex(g.bytes()), "0803" "2ab402" "420177" "4aac02" "1001");
  const pb::Placed p = pb::place(g, 100);
  ASSERT_EQ(p.holes.size(), 1u);
  EXPECT_EQ(p.holes[0].first, 5u);
  EXPECT_EQ(p.holes[0].second, 100u + 2 + 3 + 3 + 3);  // after 08 03, 2a b4 02, 42 01 77, 4a ac 02
  ASSERT_EQ(p.pieces.size(), 2u);
  EXPECT_EQ(p.pieces[1].file_offset, p.holes[0].second + 300);
  EXPECT_EQ(hex(p.pieces[1].bytes), "1001");
}

TEST(OnnxProto, DecodesWhatItEncodes) {
  pb::Msg m;
  m.varint(1, 300);
  m.bytes(4, "Gemm");
  m.f32(2, -2.5f);
  std::string packed;
  pb::put_varint(packed, 3);
  pb::put_varint(packed, static_cast<uint64_t>(int64_t{-1}));
  m.bytes(8, packed);
  const std::string bytes = m.bytes();
  pb::Reader r(as_span(bytes), 1000);
  pb::Field f;
  ASSERT_TRUE(*r.next(f));
  EXPECT_EQ(f.number, 1u);
  EXPECT_EQ(f.value, 300u);
  EXPECT_EQ(f.offset, 1000u);
  ASSERT_TRUE(*r.next(f));
  EXPECT_EQ(pb::as_string(f), "Gemm");
  EXPECT_EQ(f.data_offset, 1000u + 3 + 2);
  ASSERT_TRUE(*r.next(f));
  EXPECT_EQ(pb::as_float(f), -2.5f);
  ASSERT_TRUE(*r.next(f));
  std::vector<int64_t> v;
  ASSERT_TRUE(pb::append_int64s(f, v).ok());
  EXPECT_EQ(v, (std::vector<int64_t>{3, -1}));
  EXPECT_FALSE(*r.next(f));
}

TEST(OnnxProto, RefusesMalformedBytes) {
  const auto fails = [](const std::string& bytes, ErrorCode code, uint64_t offset) {
    pb::Reader r(as_span(bytes), 0);
    pb::Field f;
    Result<bool> res = true;
    while (res.ok() && *res) res = r.next(f);
    ASSERT_FALSE(res.ok()) << hex(bytes);
    EXPECT_EQ(res.error().code, code) << hex(bytes);
    EXPECT_EQ(res.error().offset, offset) << hex(bytes);
  };
  fails(std::string("\x12\x05" "ab", 4), ErrorCode::Truncated, 0);          // length past the end
  fails(std::string("\x08\x80", 2), ErrorCode::Truncated, 2);               // varint cut
  fails(std::string("\x08\x01\x0b", 3), ErrorCode::Corrupt, 2);             // wire type 3 (group)
  fails(std::string("\x00\x01", 2), ErrorCode::Corrupt, 0);                 // field number 0
  fails(std::string("\x0d\x01\x02", 3), ErrorCode::Truncated, 0);           // fixed32 cut
  fails(std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11), ErrorCode::Corrupt, 10);  // > 64 bits
}

TEST(OnnxProto, ModelRoundTripsThroughEncoderAndDecoder) {
  GraphOut g;
  Node n;
  n.op_type = "Gemm";
  n.name = "/lm_head/Gemm";
  n.inputs = {"x", "w"};
  n.outputs = {"y"};
  n.attrs.push_back({.name = "transB", .kind = Attr::Int, .i = 1});
  n.attrs.push_back({.name = "perm", .kind = Attr::Ints, .ints = {0, 2, 1, 3}});
  g.nodes.push_back(n);
  TensorEntry w = make_tensor_f32("w", {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  g.inits.push_back({.name = "w", .data_type = kFloat, .dims = {2, 3}, .source = &w});
  g.inits.push_back({.name = "c", .data_type = kInt64, .dims = {1}, .inline_bytes = std::string(8, '\x01')});
  g.inputs.push_back({"x", kFloat, {Dim{"batch"}, Dim{int64_t{3}}}});
  g.outputs.push_back({"y", kFloat, {Dim{"batch"}, Dim{int64_t{2}}}});
  const pb::Msg msg = encode_model({}, g, nullptr);
  const pb::Placed p = pb::place(msg);
  std::string file(msg.size(), '\0');
  for (const auto& piece : p.pieces) file.replace(piece.file_offset, piece.bytes.size(), piece.bytes);
  auto wb = read_all(w);
  ASSERT_TRUE(wb.ok());
  file.replace(p.holes.at(0).second, wb->size(), reinterpret_cast<const char*>(wb->data()), wb->size());
  EXPECT_EQ(file[0], '\x08');  // ir_version first: the detector's tag byte
  auto m = decode_model(as_span(file));
  ASSERT_TRUE(m.ok()) << m.error().render();
  EXPECT_EQ(m->ir_version, 8);
  EXPECT_EQ(m->default_opset(), 17);
  ASSERT_EQ(m->nodes.size(), 1u);
  EXPECT_EQ(m->nodes[0].op_type, "Gemm");
  EXPECT_EQ(m->nodes[0].inputs, (std::vector<std::string>{"x", "w"}));
  ASSERT_NE(m->nodes[0].attr("perm"), nullptr);
  EXPECT_EQ(m->nodes[0].attr("perm")->ints, (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_EQ(m->nodes[0].attr("transB")->i, 1);
  ASSERT_EQ(m->inits.size(), 2u);
  EXPECT_EQ(m->inits[0].dims, (Shape{2, 3}));
  ASSERT_EQ(m->inits[0].raw.size(), 24u);
  float third;
  std::memcpy(&third, m->inits[0].raw.data() + 8, 4);
  EXPECT_EQ(third, 3.0f);
  ASSERT_EQ(m->inputs.size(), 1u);
  EXPECT_EQ(std::get<std::string>(m->inputs[0].dims[0]), "batch");
  EXPECT_EQ(std::get<int64_t>(m->inputs[0].dims[1]), 3);
  // Every truncation of the file is refused, never read past its end.
  for (size_t cut : {size_t(1), size_t(5), file.size() / 2, file.size() - 1}) {
    auto bad = decode_model(as_span(file.substr(0, cut)));
    EXPECT_FALSE(bad.ok()) << "cut at " << cut;
  }
}

}  // namespace
}  // namespace mc::onnx
