// GGUF v2/v3 reader (formats.md §2.1-2.3; ggml docs/gguf.md).
//
//   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv[kv_count]          key: u64 len + bytes; u32 value type; value (arrays: u32 elem type,
//                         u64 count, packed elements; strings: u64 len + bytes, no NUL)
//   tensor_info[count]    name string; u32 n_dims; i64 ne[n_dims]; u32 ggml_type; u64 offset
//   zero padding to general.alignment (default 32), then the data section; each tensor's
//   offset is relative to it and a multiple of the alignment.
//
// Version 2 has the same layout as 3 (version 1 used 32-bit counts: rejected). A big-endian
// file shows its version byte-swapped (e.g. 0x03000000): rejected with a message saying so.
// Every count and length is checked against the bytes left and a cap in Limits before any
// allocation; errors carry the byte offset of the field at fault.
#include "formats/gguf/file.h"

#include <limits>
#include <unordered_set>

#include "quant/ggml_types.h"
#include "io/mapped_file.h"

namespace mc::gguf {

using quant::dtype_for_ggml;
using quant::find_ggml_type;
using quant::ggml_for_dtype;
using quant::GgmlType;
namespace {

constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;           // key len, 1-byte key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 4 + 8;  // name, n_dims, type, offset

class Cursor {
 public:
  Cursor(std::span<const std::byte> b, const std::string& path) : b_(b), path_(path) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return b_.size() - pos_; }

  Error fail(ErrorCode code, uint64_t at, std::string msg, std::string hint = "") const {
    Error e;
    e.code = code;
    e.path = path_;
    e.offset = at;
    e.message = std::move(msg);
    e.hint = hint.empty() && code == ErrorCode::Truncated
                 ? "the file is incomplete: re-download or re-convert it"
                 : std::move(hint);
    return e;
  }

  template <typename T>
  Result<T> read(std::string_view what) {
    if (remaining() < sizeof(T))
      return fail(ErrorCode::Truncated, pos_,
                  fmt::format("{} needs {} bytes, {} left in the file", what, sizeof(T), remaining()));
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  Result<std::string> string(std::string_view what, uint64_t cap) {
    const uint64_t at = pos_;
    const uint64_t n = MC_TRY(read<uint64_t>(what));
    if (n > cap)
      return fail(ErrorCode::LimitExceeded, at,
                  fmt::format("{} declares {} bytes, over the cap of {}", what, n, cap));
    if (n > remaining())
      return fail(ErrorCode::Truncated, at,
                  fmt::format("{} declares {} bytes but only {} are left in the file", what, n,
                              remaining()));
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), size_t(n));
    pos_ += n;
    return s;
  }

  std::span<const std::byte> take(uint64_t n) {
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::byte> b_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t < uint32_t(ValueType::Count); }

Result<Value> read_value(Cursor& c, ValueType t, const std::string& key, const Limits& lim) {
  const std::string what = fmt::format("value of '{}'", key);
  if (t == ValueType::String) return Value::string(MC_TRY(c.string(what, lim.max_string_bytes)));
  if (t != ValueType::Array) {
    const size_t sz = value_type_size(t);
    if (c.remaining() < sz)
      return c.fail(ErrorCode::Truncated, c.pos(),
                    fmt::format("{} ({}) needs {} bytes, {} left in the file", what,
                                value_type_name(t), sz, c.remaining()));
    return Value::scalar_raw(t, c.take(sz));
  }
  const uint64_t at = c.pos();
  const uint32_t et = MC_TRY(c.read<uint32_t>("array element type"));
  if (!valid_value_type(et) || ValueType(et) == ValueType::Array)
    return c.fail(ErrorCode::Corrupt, at,
                  fmt::format("array '{}' has element type {} ({})", key, et,
                              et == uint32_t(ValueType::Array) ? "nested arrays are not allowed"
                                                               : "not a GGUF type"));
  const ValueType elem = ValueType(et);
  const uint64_t count_at = c.pos();
  const uint64_t n = MC_TRY(c.read<uint64_t>("array count"));
  if (n > lim.max_array_items)
    return c.fail(ErrorCode::LimitExceeded, count_at,
                  fmt::format("array '{}' declares {} items, over the cap of {}", key, n,
                              lim.max_array_items));
  const uint64_t min_item = elem == ValueType::String ? 8 : value_type_size(elem);
  if (n > c.remaining() / min_item)
    return c.fail(ErrorCode::Truncated, count_at,
                  fmt::format("array '{}' declares {} items of at least {} bytes but only {} "
                              "bytes are left in the file",
                              key, n, min_item, c.remaining()));
  if (elem == ValueType::String) {
    std::vector<std::string> items;
    items.reserve(size_t(n));
    for (uint64_t i = 0; i < n; ++i)
      items.push_back(MC_TRY(c.string(fmt::format("item {} of '{}'", i, key), lim.max_string_bytes)));
    return Value::strings(std::move(items));
  }
  auto raw = c.take(n * min_item);
  return Value::array_raw(elem, {raw.begin(), raw.end()}, n);
}

}  // namespace

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Result<TensorEntry> File::entry(const TensorInfo& t) const {
  auto dtype = dtype_for_ggml(t.ggml_type);
  if (!dtype) {
    const GgmlType* g = find_ggml_type(t.ggml_type);
    return make_error(ErrorCode::Unsupported, "ggml type {} ({}) cannot be converted", t.ggml_type,
                      g ? g->name : "unknown")
        .with_path(path)
        .with_tensor(t.name)
        .with_hint("requantize the file with llama-quantize to a Q*_0, Q*_K, F16 or F32 type first");
  }
  if (data_offset > bytes.size() || t.offset > bytes.size() - data_offset ||
      t.nbytes > bytes.size() - data_offset - t.offset) {
    return make_error(ErrorCode::Truncated, "data [{}, {}) lies past the end of the file ({} bytes)",
                      data_offset + t.offset, data_offset + t.offset + t.nbytes, bytes.size())
        .with_path(path)
        .with_tensor(t.name);
  }
  TensorEntry out;
  out.name = t.name;
  out.dtype = *dtype;
  out.shape = t.shape();
  out.data = std::make_shared<MemoryData>(owner, tensor_bytes(t), true);
  return out;
}

Result<File> parse(std::span<const std::byte> bytes, std::shared_ptr<const void> owner,
                   std::string path, const ParseOptions& opt) {
  File f;
  f.path = std::move(path);
  f.bytes = bytes;
  f.owner = std::move(owner);
  Cursor c(bytes, f.path);
  const Limits& lim = opt.limits;
  auto soft = [&](Error e) -> Status {
    if (!opt.problems) return e;
    opt.problems->push_back(std::move(e));
    return {};
  };

  const uint32_t magic = MC_TRY(c.read<uint32_t>("magic"));
  if (magic != kMagic)
    return c.fail(ErrorCode::Corrupt, 0,
                  fmt::format("bad magic 0x{:08x}: not a GGUF file (expected \"GGUF\")", magic),
                  "check that the path names a .gguf file");
  const uint32_t version = MC_TRY(c.read<uint32_t>("version"));
  if (version != 0 && (version & 0xFFFF) == 0)
    return c.fail(ErrorCode::Unsupported, 4,
                  fmt::format("version field reads 0x{:08x}: a big-endian GGUF file", version),
                  "only little-endian GGUF files are supported; convert it on a little-endian host");
  if (version == 1)
    return c.fail(ErrorCode::Unsupported, 4, "GGUF version 1 is not supported (only 2 and 3)",
                  "re-convert the model with a current llama.cpp");
  if (version == 0 || version > 3)
    return c.fail(ErrorCode::Unsupported, 4,
                  fmt::format("GGUF version {} is not supported (only 2 and 3)", version));
  f.version = version;

  const uint64_t n_tensors = MC_TRY(c.read<uint64_t>("tensor count"));
  const uint64_t n_kv = MC_TRY(c.read<uint64_t>("kv count"));
  if (n_tensors > lim.max_tensors)
    return c.fail(ErrorCode::LimitExceeded, 8,
                  fmt::format("tensor count {} is over the cap of {}", n_tensors, lim.max_tensors));
  if (n_kv > lim.max_kv)
    return c.fail(ErrorCode::LimitExceeded, 16,
                  fmt::format("kv count {} is over the cap of {}", n_kv, lim.max_kv));
  if (n_kv > c.remaining() / kMinKvBytes)
    return c.fail(ErrorCode::Truncated, 16,
                  fmt::format("kv count {} cannot fit in the {} bytes left", n_kv, c.remaining()));

  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t at = c.pos();
    std::string key = MC_TRY(c.string(fmt::format("key of kv pair {}", i), lim.max_string_bytes));
    if (key.empty()) return c.fail(ErrorCode::Corrupt, at, fmt::format("kv pair {} has an empty key", i));
    if (f.kv.contains(key))
      return c.fail(ErrorCode::Corrupt, at, fmt::format("duplicate key '{}'", key));
    const uint64_t type_at = c.pos();
    const uint32_t t = MC_TRY(c.read<uint32_t>("value type"));
    if (!valid_value_type(t))
      return c.fail(ErrorCode::Corrupt, type_at,
                    fmt::format("key '{}' has value type {}, not a GGUF type (0..12)", key, t));
    Value v = MC_TRY(read_value(c, ValueType(t), key, lim));
    f.kv.set(std::move(key), std::move(v));
  }

  if (const Value* a = f.kv.find("general.alignment")) {
    auto n = a->as_int();
    if (a->type() != ValueType::U32 || !n || *n == 0 || (*n & (*n - 1)) != 0)
      return c.fail(ErrorCode::Corrupt, 0,
                    fmt::format("general.alignment must be a uint32 power of two, got {} {}",
                                value_type_name(a->type()), a->display()));
    f.alignment = uint32_t(*n);
  }

  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    return c.fail(ErrorCode::Truncated, 8,
                  fmt::format("tensor count {} cannot fit in the {} bytes left", n_tensors,
                              c.remaining()));
  f.tensors.reserve(size_t(n_tensors));
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.info_offset = c.pos();
    t.name = MC_TRY(c.string(fmt::format("name of tensor {}", i), lim.max_string_bytes));
    auto tensor_err = [&](ErrorCode code, std::string msg) {
      Error e = c.fail(code, t.info_offset, std::move(msg));
      e.tensor = t.name;
      return e;
    };
    if (t.name.empty() || t.name.size() > kMaxNameBytes)
      return tensor_err(ErrorCode::Corrupt,
                        fmt::format("tensor name of {} bytes (must be 1..{})", t.name.size(), kMaxNameBytes));
    const uint32_t n_dims = MC_TRY(c.read<uint32_t>("n_dims"));
    if (n_dims > kMaxDims)
      return tensor_err(ErrorCode::Corrupt, fmt::format("n_dims {} > {}", n_dims, kMaxDims));
    uint64_t numel = 1;
    bool overflow = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const int64_t ne = MC_TRY(c.read<int64_t>("dimension"));
      if (ne < 0) return tensor_err(ErrorCode::Corrupt, fmt::format("ne[{}] = {} is negative", d, ne));
      if (ne != 0 && numel > uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(ne)) overflow = true;
      numel *= uint64_t(ne);
      t.ne.push_back(ne);
    }
    if (overflow) return tensor_err(ErrorCode::Corrupt, "element count overflows 63 bits");
    t.ggml_type = MC_TRY(c.read<uint32_t>("tensor type"));
    t.offset = MC_TRY(c.read<uint64_t>("tensor offset"));

    if (!names.insert(t.name).second)
      MC_CHECK(soft(tensor_err(ErrorCode::Corrupt, "duplicate tensor name")));
    const GgmlType* g = find_ggml_type(t.ggml_type);
    if (!g) {
      MC_CHECK(soft(tensor_err(ErrorCode::Unsupported,
                               fmt::format("unknown ggml type {}", t.ggml_type))));
    } else if (!t.ne.empty() && t.ne[0] % g->block_elems != 0) {
      MC_CHECK(soft(tensor_err(ErrorCode::Corrupt,
                               fmt::format("ne[0] = {} is not a multiple of the {} block size {}",
                                           t.ne[0], g->name, g->block_elems))));
    } else {
      t.nbytes = numel / g->block_elems * g->block_bytes;
    }
    if (t.offset % f.alignment != 0)
      MC_CHECK(soft(tensor_err(ErrorCode::Corrupt,
                               fmt::format("data offset {} is not a multiple of the alignment {}",
                                           t.offset, f.alignment))));
    f.tensors.push_back(std::move(t));
  }

  const uint64_t header_end = c.pos();
  f.data_offset = (header_end + f.alignment - 1) / f.alignment * f.alignment;
  if (n_tensors > 0 && f.data_offset > bytes.size())
    return c.fail(ErrorCode::Truncated, header_end,
                  fmt::format("data section would start at {} but the file has {} bytes",
                              f.data_offset, bytes.size()));
  const uint64_t data_len = n_tensors > 0 ? bytes.size() - f.data_offset : 0;
  for (const auto& t : f.tensors) {
    if (t.offset > data_len || t.nbytes > data_len - t.offset) {
      Error e = c.fail(ErrorCode::Truncated, t.info_offset,
                       fmt::format("data [{}, {}) of the data section lies past its end ({} bytes)",
                                   t.offset, t.offset + t.nbytes, data_len));
      e.tensor = t.name;
      MC_CHECK(soft(std::move(e)));
    }
  }
  return f;
}

Result<File> open(const fs::path& path, const ParseOptions& opt) {
  auto map = MC_TRY(io::MappedFile::open(path.string()));
  auto bytes = map->bytes();
  return parse(bytes, std::shared_ptr<const void>(map, map.get()), path.string(), opt);
}

}  // namespace mc::gguf
