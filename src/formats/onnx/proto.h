// The few pieces of the protobuf wire format (proto2) that ONNX files need, written by hand:
//   message = sequence of fields; field = key varint (number << 3 | wire type), then
//   wire type 0: varint (int32/int64/enum/bool; negative int64 as 10-byte two's complement)
//   wire type 1: 8 bytes little-endian (fixed64/double)
//   wire type 2: length varint + that many bytes (string, bytes, sub-message, packed repeated)
//   wire type 5: 4 bytes little-endian (fixed32/float)
//   (3/4 = groups, unused by ONNX: refused)
// The encoder builds a message as bytes plus "holes": length-delimited fields whose content (a
// tensor's raw_data) is streamed into the file later at an offset known in advance, so a model
// with inline weights is written without holding the weights in memory. The decoder reads a
// message in place (a span of an mmap), with every length bounds-checked against its parent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace mc::onnx::pb {

enum class Wire : uint8_t { Varint = 0, Fixed64 = 1, Len = 2, Fixed32 = 5 };

// ---- encoder ---------------------------------------------------------------------------------

class Msg {
 public:
  struct Hole {
    uint64_t at;    // position in bytes() before which the hole's content goes
    uint64_t size;  // content bytes
    uint64_t id;    // caller's tag (which tensor)
  };

  void varint(uint32_t field, uint64_t v);
  void int64(uint32_t field, int64_t v) { varint(field, static_cast<uint64_t>(v)); }
  void f32(uint32_t field, float v);
  void bytes(uint32_t field, std::string_view s);
  void message(uint32_t field, const Msg& m);
  // A length-delimited field of `size` bytes whose content is written later (see holes()).
  void hole(uint32_t field, uint64_t size, uint64_t id);

  uint64_t size() const;  // serialized size, holes included
  const std::string& bytes() const { return buf_; }
  const std::vector<Hole>& holes() const { return holes_; }

 private:
  void key(uint32_t field, Wire w);
  std::string buf_;
  std::vector<Hole> holes_;
  uint64_t hole_bytes_ = 0;
};

void put_varint(std::string& out, uint64_t v);

// Where each piece of a serialized message lands in a file that starts with it at `base`.
struct Placed {
  struct Span {
    uint64_t file_offset;
    std::string_view bytes;  // a piece of Msg::bytes()
  };
  std::vector<Span> pieces;                 // the encoded bytes, in order
  std::vector<std::pair<uint64_t, uint64_t>> holes;  // (id, file offset) of each hole
};
Placed place(const Msg& m, uint64_t base = 0);

// ---- decoder ---------------------------------------------------------------------------------

struct Field {
  uint32_t number = 0;
  Wire wire = Wire::Varint;
  uint64_t value = 0;                // varint / fixed value
  std::span<const std::byte> data;   // Len payload
  uint64_t offset = 0;               // file offset of the field's key
  uint64_t data_offset = 0;          // file offset of the Len payload
};

// Iterates the fields of one message. `base` is the file offset of data[0] (for errors).
class Reader {
 public:
  Reader(std::span<const std::byte> data, uint64_t base) : data_(data), base_(base) {}
  // Next field into `f`; false at the end; Corrupt/Truncated errors carry the byte offset.
  Result<bool> next(Field& f);

 private:
  Result<uint64_t> read_varint();
  std::span<const std::byte> data_;
  uint64_t base_ = 0, pos_ = 0;
};

// Field payload helpers.
inline std::string_view as_string(const Field& f) {
  return {reinterpret_cast<const char*>(f.data.data()), f.data.size()};
}
inline int64_t as_int64(const Field& f) { return static_cast<int64_t>(f.value); }
float as_float(const Field& f);  // fixed32
// A repeated int64 field given packed (Len) or one value (Varint): appends to `out`.
Status append_int64s(const Field& f, std::vector<int64_t>& out);

}  // namespace mc::onnx::pb
