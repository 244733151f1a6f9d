#include "formats/gguf/kv.h"

#include <array>
#include <limits>

#include <fmt/format.h>

namespace mc::gguf {
namespace {

struct TypeRow {
  ValueType t;
  std::string_view name;
  size_t size;
};
constexpr std::array<TypeRow, size_t(ValueType::Count)> kValueTypes{{
    {ValueType::U8, "uint8", 1},     {ValueType::I8, "int8", 1},
    {ValueType::U16, "uint16", 2},   {ValueType::I16, "int16", 2},
    {ValueType::U32, "uint32", 4},   {ValueType::I32, "int32", 4},
    {ValueType::F32, "float32", 4},  {ValueType::Bool, "bool", 1},
    {ValueType::String, "string", 0}, {ValueType::Array, "array", 0},
    {ValueType::U64, "uint64", 8},   {ValueType::I64, "int64", 8},
    {ValueType::F64, "float64", 8},
}};
static_assert(kValueTypes.size() == 13);

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  return size_t(t) < kValueTypes.size() ? kValueTypes[size_t(t)].name : "invalid";
}

size_t value_type_size(ValueType t) {
  return size_t(t) < kValueTypes.size() ? kValueTypes[size_t(t)].size : 0;
}

bool is_integer_type(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
    case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64:
      return true;
    default:
      return false;
  }
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = ValueType::String;
  v.strs_.push_back(std::move(s));
  return v;
}

Value Value::strings(std::vector<std::string> items) {
  Value v;
  v.type_ = ValueType::Array;
  v.elem_ = ValueType::String;
  v.count_ = items.size();
  v.strs_ = std::move(items);
  return v;
}

Value Value::array_raw(ValueType elem, std::vector<std::byte> packed, uint64_t count) {
  Value v;
  v.type_ = ValueType::Array;
  v.elem_ = elem;
  v.count_ = count;
  v.raw_ = std::move(packed);
  return v;
}

std::optional<int64_t> Value::int_of(ValueType t, const std::byte* p) const {
  switch (t) {
    case ValueType::U8: return load<uint8_t>(p);
    case ValueType::I8: return load<int8_t>(p);
    case ValueType::U16: return load<uint16_t>(p);
    case ValueType::I16: return load<int16_t>(p);
    case ValueType::U32: return load<uint32_t>(p);
    case ValueType::I32: return load<int32_t>(p);
    case ValueType::I64: return load<int64_t>(p);
    case ValueType::U64: {
      const uint64_t u = load<uint64_t>(p);
      if (u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return int64_t(u);
    }
    default: return std::nullopt;
  }
}

std::optional<double> Value::float_of(ValueType t, const std::byte* p) const {
  if (t == ValueType::F32) return load<float>(p);
  if (t == ValueType::F64) return load<double>(p);
  return std::nullopt;
}

std::optional<int64_t> Value::as_int() const {
  if (is_array() || raw_.empty()) return std::nullopt;
  return int_of(type_, raw_.data());
}

std::optional<double> Value::as_float() const {
  if (is_array() || raw_.empty()) return std::nullopt;
  return float_of(type_, raw_.data());
}

std::optional<bool> Value::as_bool() const {
  if (type_ != ValueType::Bool || raw_.empty()) return std::nullopt;
  return load<uint8_t>(raw_.data()) != 0;
}

const std::string* Value::as_string() const {
  return type_ == ValueType::String && !strs_.empty() ? &strs_[0] : nullptr;
}

std::optional<int64_t> Value::int_at(uint64_t i) const {
  const size_t sz = value_type_size(elem_);
  if (!is_array() || sz == 0 || i >= count_) return std::nullopt;
  if (elem_ == ValueType::Bool) return int64_t(load<uint8_t>(raw_.data() + i) != 0);
  return int_of(elem_, raw_.data() + i * sz);
}

std::optional<double> Value::float_at(uint64_t i) const {
  const size_t sz = value_type_size(elem_);
  if (!is_array() || sz == 0 || i >= count_) return std::nullopt;
  return float_of(elem_, raw_.data() + i * sz);
}

std::string Value::display(size_t max_items) const {
  auto one = [&](ValueType t, const std::byte* p) -> std::string {
    if (auto f = float_of(t, p)) return fmt::format("{}", *f);
    if (t == ValueType::Bool) return load<uint8_t>(p) ? "true" : "false";
    if (t == ValueType::U64) return fmt::format("{}", load<uint64_t>(p));
    if (auto i = int_of(t, p)) return fmt::format("{}", *i);
    return "?";
  };
  auto quote = [](const std::string& s) {
    std::string q = s.size() > 60 ? s.substr(0, 57) + "..." : s;
    return fmt::format("\"{}\"", q);
  };
  if (type_ == ValueType::String) return quote(strs_[0]);
  if (!is_array()) return one(type_, raw_.data());
  std::string out = fmt::format("[{} x {}:", count_, value_type_name(elem_));
  for (uint64_t i = 0; i < count_ && i < max_items; ++i) {
    out += i ? ", " : " ";
    out += elem_ == ValueType::String ? quote(strs_[i])
                                      : one(elem_, raw_.data() + i * value_type_size(elem_));
  }
  if (count_ > max_items) out += ", ...";
  return out + "]";
}

void KvStore::set(std::string key, Value v) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    items_[it->second].second = std::move(v);
    return;
  }
  index_.emplace(key, items_.size());
  items_.emplace_back(std::move(key), std::move(v));
}

bool KvStore::erase(std::string_view key) {
  auto it = index_.find(std::string(key));
  if (it == index_.end()) return false;
  items_.erase(items_.begin() + ptrdiff_t(it->second));
  index_.clear();
  for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
  return true;
}

const Value* KvStore::find(std::string_view key) const {
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

std::optional<std::string> KvStore::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v || !v->as_string()) return std::nullopt;
  return *v->as_string();
}

std::optional<int64_t> KvStore::get_int(std::string_view key) const {
  const Value* v = find(key);
  return v ? v->as_int() : std::nullopt;
}

std::optional<uint32_t> KvStore::get_u32(std::string_view key) const {
  auto i = get_int(key);
  if (!i || *i < 0 || *i > int64_t(UINT32_MAX)) return std::nullopt;
  return uint32_t(*i);
}

std::optional<double> KvStore::get_float(std::string_view key) const {
  const Value* v = find(key);
  return v ? v->as_float() : std::nullopt;
}

std::optional<bool> KvStore::get_bool(std::string_view key) const {
  const Value* v = find(key);
  return v ? v->as_bool() : std::nullopt;
}

const Value* KvStore::get_array(std::string_view key, ValueType elem) const {
  const Value* v = find(key);
  return v && v->is_array() && v->elem_type() == elem ? v : nullptr;
}

}  // namespace mc::gguf
