// Protobuf wire encoder with streamed holes, and the bounds-checked in-place decoder (proto.h).
#include "formats/onnx/proto.h"

#include <bit>
#include <cstring>

namespace mc::onnx::pb {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}


void Msg::key(uint32_t field, Wire w) {
  put_varint(buf_, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(w));
}

void Msg::varint(uint32_t field, uint64_t v) {
  key(field, Wire::Varint);
  put_varint(buf_, v);
}

void Msg::f32(uint32_t field, float v) {
  key(field, Wire::Fixed32);
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

void Msg::bytes(uint32_t field, std::string_view s) {
  key(field, Wire::Len);
  put_varint(buf_, s.size());
  buf_.append(s);
}

void Msg::message(uint32_t field, const Msg& m) {
  key(field, Wire::Len);
  put_varint(buf_, m.size());
  const uint64_t at = buf_.size();
  buf_.append(m.buf_);
  for (const Hole& h : m.holes_) holes_.push_back({at + h.at, h.size, h.id});
  hole_bytes_ += m.hole_bytes_;
}

void Msg::hole(uint32_t field, uint64_t size, uint64_t id) {
  key(field, Wire::Len);
  put_varint(buf_, size);
  holes_.push_back({buf_.size(), size, id});
  hole_bytes_ += size;
}

uint64_t Msg::size() const { return buf_.size() + hole_bytes_; }

Placed place(const Msg& m, uint64_t base) {
  Placed p;
  uint64_t pos = 0, file = base;
  const std::string& b = m.bytes();
  for (const auto& h : m.holes()) {
    if (h.at > pos) p.pieces.push_back({file, std::string_view(b).substr(pos, h.at - pos)});
    file += h.at - pos;
    pos = h.at;
    p.holes.emplace_back(h.id, file);
    file += h.size;
  }
  if (b.size() > pos) p.pieces.push_back({file, std::string_view(b).substr(pos)});
  return p;
}

// ---- decoder ---------------------------------------------------------------------------------

Result<uint64_t> Reader::read_varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos_ >= data_.size())
      return Error{.code = ErrorCode::Truncated, .offset = base_ + pos_,
                   .message = "protobuf varint runs past the end of its message"};
    const auto b = static_cast<uint8_t>(data_[pos_++]);
    if (shift == 63 && b > 1)
      return Error{.code = ErrorCode::Corrupt, .offset = base_ + pos_ - 1,
                   .message = "protobuf varint longer than 64 bits"};
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  return Error{.code = ErrorCode::Corrupt, .offset = base_ + pos_, .message = "protobuf varint longer than 10 bytes"};
}

Result<bool> Reader::next(Field& f) {
  if (pos_ >= data_.size()) return false;
  f = Field{};
  f.offset = base_ + pos_;
  const uint64_t k = MC_TRY(read_varint());
  const uint64_t number = k >> 3;
  if (number == 0 || number > 536870911)
    return Error{.code = ErrorCode::Corrupt, .offset = f.offset,
                 .message = fmt::format("protobuf field number {} is invalid", number)};
  f.number = static_cast<uint32_t>(number);
  const auto fixed = [&](uint64_t n) -> Status {
    if (data_.size() - pos_ < n)
      return Error{.code = ErrorCode::Truncated, .offset = f.offset,
                   .message = fmt::format("field {} needs {} bytes, {} remain in its message", f.number, n,
                                          data_.size() - pos_)};
    uint64_t v = 0;
    for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    f.value = v;
    pos_ += n;
    return {};
  };
  switch (k & 7) {
    case 0:
      f.wire = Wire::Varint;
      f.value = MC_TRY(read_varint());
      return true;
    case 1:
      f.wire = Wire::Fixed64;
      MC_CHECK(fixed(8));
      return true;
    case 5:
      f.wire = Wire::Fixed32;
      MC_CHECK(fixed(4));
      return true;
    case 2: {
      f.wire = Wire::Len;
      const uint64_t n = MC_TRY(read_varint());
      if (n > data_.size() - pos_)
        return Error{.code = ErrorCode::Truncated, .offset = f.offset,
                     .message = fmt::format("field {} declares {} bytes, only {} remain in its message", f.number,
                                            n, data_.size() - pos_)};
      f.data_offset = base_ + pos_;
      f.data = data_.subspan(pos_, n);
      pos_ += n;
      return true;
    }
    default:
      return Error{.code = ErrorCode::Corrupt, .offset = f.offset,
                   .message = fmt::format("protobuf wire type {} (field {}) is not used by ONNX", k & 7, f.number)};
  }
}

float as_float(const Field& f) { return std::bit_cast<float>(static_cast<uint32_t>(f.value)); }

Status append_int64s(const Field& f, std::vector<int64_t>& out) {
  if (f.wire == Wire::Varint) {
    out.push_back(as_int64(f));
    return {};
  }
  if (f.wire != Wire::Len)
    return Error{.code = ErrorCode::Corrupt, .offset = f.offset,
                 .message = fmt::format("field {} should hold int64 values", f.number)};
  // Packed: the payload is a run of varints.
  uint64_t pos = 0;
  while (pos < f.data.size()) {
    uint64_t v = 0;
    int shift = 0;
    for (;;) {
      if (pos >= f.data.size() || shift > 63)
        return Error{.code = ErrorCode::Corrupt, .offset = f.data_offset + pos,
                     .message = "packed varint runs past its field"};
      const auto b = static_cast<uint8_t>(f.data[pos++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    out.push_back(static_cast<int64_t>(v));
  }
  return {};
}

}  // namespace mc::onnx::pb
