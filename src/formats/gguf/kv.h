// GGUF metadata: typed values (formats.md §2.1 value types 0..12, arrays of any non-array type)
// and an ordered key/value store. Order is kept so that writers are deterministic and a file
// read and written again keeps its key order.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.h"

namespace mc::gguf {

static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
  Count
};

std::string_view value_type_name(ValueType t);  // "uint32", "string", ...
// Byte size of a fixed-size type; 0 for String and Array.
size_t value_type_size(ValueType t);
bool is_integer_type(ValueType t);  // U8..I64 (Bool excluded)

class Value {
 public:
  Value() = default;
  static Value u8(uint8_t v) { return scalar(ValueType::U8, v); }
  static Value i8(int8_t v) { return scalar(ValueType::I8, v); }
  static Value u16(uint16_t v) { return scalar(ValueType::U16, v); }
  static Value i16(int16_t v) { return scalar(ValueType::I16, v); }
  static Value u32(uint32_t v) { return scalar(ValueType::U32, v); }
  static Value i32(int32_t v) { return scalar(ValueType::I32, v); }
  static Value f32(float v) { return scalar(ValueType::F32, v); }
  static Value boolean(bool v) { return scalar(ValueType::Bool, uint8_t(v ? 1 : 0)); }
  static Value u64(uint64_t v) { return scalar(ValueType::U64, v); }
  static Value i64(int64_t v) { return scalar(ValueType::I64, v); }
  static Value f64(double v) { return scalar(ValueType::F64, v); }
  static Value string(std::string s);
  static Value strings(std::vector<std::string> items);
  // A fixed-size scalar from its little-endian bytes (value_type_size(t) of them).
  static Value scalar_raw(ValueType t, std::span<const std::byte> bytes) {
    Value out;
    out.type_ = t;
    out.raw_.assign(bytes.begin(), bytes.end());
    return out;
  }
  // A numeric (or bool) array from `count` packed little-endian elements of `elem`.
  static Value array_raw(ValueType elem, std::vector<std::byte> packed, uint64_t count);
  template <typename T>
  static Value array(ValueType elem, std::span<const T> items) {
    std::vector<std::byte> raw(items.size() * sizeof(T));
    if (!raw.empty()) std::memcpy(raw.data(), items.data(), raw.size());
    return array_raw(elem, std::move(raw), items.size());
  }

  ValueType type() const { return type_; }
  ValueType elem_type() const { return elem_; }  // arrays only
  bool is_array() const { return type_ == ValueType::Array; }
  uint64_t size() const { return count_; }  // array element count (1 for scalars)

  // Scalars, converted when the stored type fits (any integer for as_int, F32/F64 for as_float).
  std::optional<int64_t> as_int() const;
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;

  // Array elements (index < size()).
  std::optional<int64_t> int_at(uint64_t i) const;
  std::optional<double> float_at(uint64_t i) const;
  const std::vector<std::string>& string_items() const { return strs_; }
  std::span<const std::byte> raw() const { return raw_; }

  // Short human-readable form for inspect output ("[32000 strings]", "5.0e-06").
  std::string display(size_t max_items = 4) const;

  bool operator==(const Value& o) const = default;

 private:
  template <typename T>
  static Value scalar(ValueType t, T v) {
    Value out;
    out.type_ = t;
    out.raw_.resize(sizeof(T));
    std::memcpy(out.raw_.data(), &v, sizeof(T));
    return out;
  }
  std::optional<int64_t> int_of(ValueType t, const std::byte* p) const;
  std::optional<double> float_of(ValueType t, const std::byte* p) const;

  ValueType type_ = ValueType::U8;
  ValueType elem_ = ValueType::U8;
  uint64_t count_ = 1;
  std::vector<std::byte> raw_;     // scalar bytes, or packed array elements
  std::vector<std::string> strs_;  // the string, or the string array
};

class KvStore {
 public:
  // Adds or replaces (keeping the original position).
  void set(std::string key, Value v);
  bool erase(std::string_view key);
  const Value* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }

  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;  // any integer type
  std::optional<uint32_t> get_u32(std::string_view key) const; // any integer type in range
  std::optional<double> get_float(std::string_view key) const; // F32 or F64
  std::optional<bool> get_bool(std::string_view key) const;
  // An array whose elements are `elem` (nullptr if absent or of another type).
  const Value* get_array(std::string_view key, ValueType elem) const;

  void set_string(std::string key, std::string v) { set(std::move(key), Value::string(std::move(v))); }
  void set_u32(std::string key, uint32_t v) { set(std::move(key), Value::u32(v)); }
  void set_i32(std::string key, int32_t v) { set(std::move(key), Value::i32(v)); }
  void set_f32(std::string key, float v) { set(std::move(key), Value::f32(v)); }
  void set_bool(std::string key, bool v) { set(std::move(key), Value::boolean(v)); }

  size_t size() const { return items_.size(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::pair<std::string, Value>> items_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace mc::gguf
