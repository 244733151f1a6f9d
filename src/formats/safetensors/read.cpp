// safetensors reader (formats.md §1.1-§1.3).
//
//   [0, 8)        N: u64 LE, byte length of the JSON header (cap 100,000,000, as the reference)
//   [8, 8+N)      UTF-8 JSON object starting with '{', maybe right-padded with spaces:
//                 {"__metadata__": {str: str}, "<name>": {"dtype": "F16", "shape": [..],
//                  "data_offsets": [BEGIN, END]}, ...}
//   [8+N, size)   the byte buffer; offsets are relative to its start
//
// Checks, in the reference reader's order: size >= 8, N <= cap, 8+N <= size, header starts with
// '{', valid UTF-8/JSON, every entry has the right JSON types and a known dtype; then, walking
// the entries sorted by data_offsets, each one starts where the previous ended (no hole, no
// overlap), END >= BEGIN, nelements x bits == 8 x (END-BEGIN) (overflow-checked), and the last
// END lands exactly on the end of the file. Stricter than the reference: duplicate keys (at any
// depth) are rejected, since JSON parsers disagree about which one wins.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "formats/safetensors/safetensors.h"

namespace mc::safetensors {

// The format is little-endian; lengths and offsets are copied with memcpy as-is.
static_assert(std::endian::native == std::endian::little);

namespace {

using json = nlohmann::json;

constexpr std::string_view kTruncHint =
    "the file looks truncated: re-download it or compare its size with the source";
constexpr std::string_view kCorruptHint =
    "the file is not a valid safetensors file: re-export it or re-download it";

// Every dtype string of the format (safetensors `Dtype`) with its bit size. Strings we cannot
// represent still validate; open_file reports them as Unsupported.
struct StDtype {
  std::string_view name;
  uint32_t bits;
};
constexpr StDtype kStDtypes[] = {
    {"BOOL", 8},        {"F4", 4},          {"F6_E2M3", 6},     {"F6_E3M2", 6},
    {"U8", 8},          {"I8", 8},          {"F8_E5M2", 8},     {"F8_E4M3", 8},
    {"F8_E8M0", 8},     {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},
    {"U16", 16},        {"F16", 16},        {"BF16", 16},       {"I32", 32},
    {"U32", 32},        {"F32", 32},        {"C64", 64},        {"F64", 64},
    {"I64", 64},        {"U64", 64},
};

std::optional<uint32_t> st_bits(std::string_view s) {
  for (const auto& d : kStDtypes)
    if (d.name == s) return d.bits;
  return std::nullopt;
}

// Collects errors; in first-error mode `stop()` tells the parser to give up.
class Sink {
 public:
  Sink(const std::string& path, std::vector<Error>* all) : path_(path), all_(all) {}
  template <typename... Args>
  void add(ErrorCode code, std::string tensor, std::optional<uint64_t> offset,
           std::string_view hint, fmt::format_string<Args...> f, Args&&... args) {
    Error e = make_error(code, f, std::forward<Args>(args)...);
    e.path = path_;
    e.tensor = std::move(tensor);
    e.offset = offset;
    e.hint = std::string(hint);
    if (all_) all_->push_back(std::move(e));
    if (!first_) first_ = all_ ? all_->back() : std::move(e);
  }
  bool stop() const { return first_.has_value() && !all_; }
  bool failed() const { return first_.has_value(); }
  const Error& first() const { return *first_; }

 private:
  const std::string& path_;
  std::vector<Error>* all_;
  std::optional<Error> first_;
};

std::string json_kind(const json& j) {
  if (j.is_number_float()) return "a float (" + j.dump() + ")";
  if (j.is_number_integer() && !j.is_number_unsigned()) return "negative (" + j.dump() + ")";
  return std::string(j.type_name());
}

// A non-negative JSON integer that fits u64 (floats, negatives and strings refused).
std::optional<uint64_t> as_u64(const json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return uint64_t(j.get<int64_t>());
  return std::nullopt;
}

// Parses one tensor entry; reports every field problem. Returns false if the entry cannot take
// part in the offset walk (its data_offsets are unusable).
bool parse_entry(const std::string& name, const json& v, uint64_t hdr_off, Sink& sink,
                 HeaderTensor& t, bool& size_checkable) {
  t.name = name;
  size_checkable = true;
  if (!v.is_object()) {
    sink.add(ErrorCode::Corrupt, name, hdr_off, kCorruptHint,
             "header entry is {}, not an object with dtype/shape/data_offsets", v.type_name());
    return false;
  }
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) {
      sink.add(ErrorCode::Corrupt, name, hdr_off, kCorruptHint, "header entry has no '{}' field",
               field);
      if (std::string_view(field) == "data_offsets") return false;
      size_checkable = false;
    }
  if (auto it = v.find("dtype"); it != v.end()) {
    if (!it->is_string()) {
      sink.add(ErrorCode::Corrupt, name, hdr_off, kCorruptHint, "dtype is {}, not a string",
               it->type_name());
      size_checkable = false;
    } else {
      t.st_dtype = it->get<std::string>();
      if (!st_bits(t.st_dtype)) {
        sink.add(ErrorCode::Corrupt, name, hdr_off, kCorruptHint,
                 "unknown dtype '{}' (known: BOOL, U8, I8, F8_E4M3, F8_E5M2, I16, U16, F16, "
                 "BF16, I32, U32, F32, F64, I64, U64, C64, F4, F6_*, F8_*)",
                 t.st_dtype);
        size_checkable = false;
      }
      t.dtype = dtype_from_st_name(t.st_dtype);
    }
  }
  if (auto it = v.find("shape"); it != v.end()) {
    if (!it->is_array()) {
      sink.add(ErrorCode::Corrupt, name, hdr_off, kCorruptHint, "shape is {}, not an array",
               it->type_name());
      size_checkable = false;
    } else {
      for (size_t i = 0; i < it->size(); ++i) {
        const auto d = as_u64((*it)[i]);
        if (!d) {
          sink.add(ErrorCode::Corrupt, name, hdr_off, kCorruptHint,
                   "shape dim {} is {}, not a non-negative integer", i, json_kind((*it)[i]));
          size_checkable = false;
        } else if (*d > uint64_t(std::numeric_limits<int64_t>::max())) {
          sink.add(ErrorCode::LimitExceeded, name, hdr_off, kCorruptHint,
                   "shape dim {} = {} does not fit 63 bits", i, *d);
          size_checkable = false;
        } else {
          t.shape.push_back(int64_t(*d));
        }
      }
    }
  }
  if (auto it = v.find("data_offsets"); it != v.end()) {
    if (!it->is_array() || it->size() != 2) {
      sink.add(ErrorCode::Corrupt, name, hdr_off, kCorruptHint,
               "data_offsets must be an array [BEGIN, END], got {}", it->dump());
      return false;
    }
    const auto b = as_u64((*it)[0]), e = as_u64((*it)[1]);
    if (!b || !e) {
      sink.add(ErrorCode::Corrupt, name, hdr_off, kCorruptHint,
               "data_offsets {} must hold two non-negative integers", it->dump());
      return false;
    }
    t.begin = *b;
    t.end = *e;
  }
  return true;
}

std::optional<Header> parse_impl(std::span<const std::byte> file, const std::string& path,
                                 Sink& sink) {
  const uint64_t size = file.size();
  if (size < 8) {
    sink.add(ErrorCode::Truncated, "", 0, kTruncHint,
             "file is {} bytes, smaller than the 8-byte header length field", size);
    return std::nullopt;
  }
  Header h;
  std::memcpy(&h.header_len, file.data(), 8);
  const uint64_t n = h.header_len;
  if (n > kMaxHeaderBytes) {
    sink.add(ErrorCode::LimitExceeded, "", 0, kCorruptHint,
             "header length {} is over the {} byte cap (file is {} bytes)", n, kMaxHeaderBytes,
             size);
    return std::nullopt;
  }
  if (n > size - 8) {
    sink.add(ErrorCode::Truncated, "", 0, kTruncHint,
             "header declares {} bytes but only {} bytes follow the length field", n, size - 8);
    return std::nullopt;
  }
  h.data_start = 8 + n;
  const auto* hp = reinterpret_cast<const char*>(file.data()) + 8;
  if (n == 0 || hp[0] != '{') {
    sink.add(ErrorCode::Corrupt, "", 8, kCorruptHint,
             "header must start with '{{' (0x7B), found {}",
             n == 0 ? std::string("an empty header") : fmt::format("0x{:02X}", uint8_t(hp[0])));
    return std::nullopt;
  }

  // Duplicate keys are found while parsing: one key set per open object.
  std::vector<std::set<std::string>> open_objects;
  std::vector<std::pair<std::string, bool>> duplicates;  // key, at top level
  json root;
  try {
    root = json::parse(
        hp, hp + n,
        [&](int, json::parse_event_t ev, json& parsed) {
          if (ev == json::parse_event_t::object_start) {
            open_objects.emplace_back();
          } else if (ev == json::parse_event_t::object_end) {
            if (!open_objects.empty()) open_objects.pop_back();
          } else if (ev == json::parse_event_t::key && !open_objects.empty()) {
            const auto& k = parsed.get_ref<const std::string&>();
            if (!open_objects.back().insert(k).second)
              duplicates.emplace_back(k, open_objects.size() == 1);
          }
          return true;
        });
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    sink.add(ErrorCode::Corrupt, "", 8 + (e.byte > 0 ? e.byte - 1 : 0), kCorruptHint,
             "header is not valid UTF-8 JSON: {}", what);
    return std::nullopt;
  } catch (const json::exception& e) {
    sink.add(ErrorCode::Corrupt, "", 8, kCorruptHint, "header JSON rejected: {}", e.what());
    return std::nullopt;
  }
  if (!root.is_object()) {
    sink.add(ErrorCode::Corrupt, "", 8, kCorruptHint, "header is a JSON {}, not an object",
             root.type_name());
    return std::nullopt;
  }
  for (const auto& [k, top] : duplicates) {
    sink.add(ErrorCode::Corrupt, top ? k : "", 8, kCorruptHint,
             "duplicate key '{}' in the header (readers disagree on which one wins)", k);
    if (sink.stop()) return std::nullopt;
  }

  struct Walk {
    size_t idx;
    bool size_checkable;
  };
  std::vector<HeaderTensor> all;
  std::vector<Walk> walk;
  for (const auto& [key, v] : root.items()) {
    if (key == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object()) {
        sink.add(ErrorCode::Corrupt, "", 8, kCorruptHint,
                 "__metadata__ is {}, it must be an object of strings", v.type_name());
      } else {
        for (const auto& [mk, mv] : v.items()) {
          if (!mv.is_string())
            sink.add(ErrorCode::Corrupt, "", 8, kCorruptHint,
                     "__metadata__ value of '{}' is {}, only strings are allowed", mk,
                     mv.type_name());
          else
            h.metadata[mk] = mv.get<std::string>();
        }
      }
      if (sink.stop()) return std::nullopt;
      continue;
    }
    HeaderTensor t;
    bool checkable = false;
    const bool walkable = parse_entry(key, v, 8, sink, t, checkable);
    if (sink.stop()) return std::nullopt;
    if (walkable) {
      walk.push_back({all.size(), checkable});
      all.push_back(std::move(t));
    }
  }

  // The on-disk key order is not trusted: walk in data_offsets order (ties by name, so the
  // result does not depend on the JSON library's map order).
  std::stable_sort(walk.begin(), walk.end(), [&](const Walk& a, const Walk& b) {
    const auto& x = all[a.idx];
    const auto& y = all[b.idx];
    if (x.begin != y.begin) return x.begin < y.begin;
    if (x.end != y.end) return x.end < y.end;
    return x.name < y.name;
  });
  const uint64_t buffer = size - h.data_start;
  uint64_t start = 0;
  std::string prev;
  for (const auto& w : walk) {
    HeaderTensor& t = all[w.idx];
    const uint64_t at = h.data_start + std::min(t.begin, buffer);
    if (t.begin > start) {
      sink.add(ErrorCode::Corrupt, t.name, at, kCorruptHint,
               "hole of {} bytes before this tensor: data_offsets begin at {}, but {} ends at {}",
               t.begin - start, t.begin, prev.empty() ? "the previous tensor" : "'" + prev + "'",
               start);
    } else if (t.begin < start) {
      sink.add(ErrorCode::Corrupt, t.name, at, kCorruptHint,
               "data_offsets [{}, {}) overlap {}, which ends at {}", t.begin, t.end,
               prev.empty() ? "the previous tensor" : "'" + prev + "'", start);
    }
    if (sink.stop()) return std::nullopt;
    if (t.end < t.begin) {
      sink.add(ErrorCode::Corrupt, t.name, at, kCorruptHint,
               "data_offsets [{}, {}) are reversed: END is before BEGIN", t.begin, t.end);
      if (sink.stop()) return std::nullopt;
      start = std::max(start, t.begin);
      prev = t.name;
      continue;
    }
    if (t.end > buffer) {
      sink.add(ErrorCode::Truncated, t.name, at, kTruncHint,
               "data_offsets [{}, {}) need {} bytes, but only {} bytes follow the header", t.begin,
               t.end, t.end - t.begin, buffer > t.begin ? buffer - t.begin : 0);
      if (sink.stop()) return std::nullopt;
    }
    start = std::max(start, t.end);
    prev = t.name;
    if (!w.size_checkable) continue;
    const uint32_t bits = *st_bits(t.st_dtype);
    uint64_t numel = 1;
    bool overflow = false;
    for (int64_t d : t.shape) {
      if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / uint64_t(d)) overflow = true;
      numel *= uint64_t(d);
    }
    if (overflow || numel > std::numeric_limits<uint64_t>::max() / bits) {
      sink.add(ErrorCode::LimitExceeded, t.name, at, kCorruptHint,
               "shape {} x {} bits overflows 64 bits", shape_str(t.shape), bits);
    } else if ((numel * bits) % 8 != 0) {
      sink.add(ErrorCode::Mismatch, t.name, at, kCorruptHint,
               "shape {} of {} holds {} bits, not a whole number of bytes", shape_str(t.shape),
               t.st_dtype, numel * bits);
    } else if (numel * bits / 8 != t.end - t.begin) {
      sink.add(ErrorCode::Mismatch, t.name, at, kCorruptHint,
               "shape {} of {} needs {} bytes, but data_offsets [{}, {}) span {} bytes",
               shape_str(t.shape), t.st_dtype, numel * bits / 8, t.begin, t.end,
               t.end - t.begin);
    }
    if (sink.stop()) return std::nullopt;
  }
  if (start < buffer) {
    sink.add(ErrorCode::Corrupt, "", h.data_start + start, kCorruptHint,
             "{} trailing bytes after the last tensor (data ends at byte {}, file is {} bytes)",
             buffer - start, h.data_start + start, size);
    if (sink.stop()) return std::nullopt;
  }
  h.tensors.reserve(walk.size());
  for (const auto& w : walk) h.tensors.push_back(std::move(all[w.idx]));
  (void)path;
  return h;
}

}  // namespace

Result<Header> parse_header(std::span<const std::byte> file, const std::string& path) {
  Sink sink(path, nullptr);
  auto h = parse_impl(file, path, sink);
  if (sink.failed()) return sink.first();
  return std::move(*h);
}

std::optional<Header> check_header(std::span<const std::byte> file, const std::string& path,
                                   std::vector<Error>& errors) {
  Sink sink(path, &errors);
  return parse_impl(file, path, sink);
}

Result<StFile> open_file(const fs::path& path) {
  const std::string p = path.string();
  auto map = MC_TRY(io::MappedFile::open(p));
  auto h = MC_TRY(parse_header(map->bytes(), p));
  StFile f;
  f.metadata = std::move(h.metadata);
  f.header_len = h.header_len;
  for (auto& t : h.tensors) {
    if (!t.dtype) {
      Error e = make_error(ErrorCode::Unsupported,
                           "dtype {} is valid safetensors but has no equivalent here", t.st_dtype);
      e.path = p;
      e.tensor = t.name;
      e.offset = h.data_start + t.begin;
      e.hint = "convert this tensor to a supported dtype (F32, F16, BF16, ...) with its source tool";
      return e;
    }
    const auto bytes = map->bytes().subspan(h.data_start + t.begin, t.end - t.begin);
    TensorEntry e{std::move(t.name), *t.dtype, std::move(t.shape), nullptr};
    e.data = std::make_shared<MemoryData>(map, bytes, true);
    f.tensors.put(std::move(e));
  }
  f.map = std::move(map);
  return f;
}

}  // namespace mc::safetensors
