// safetensors writer (formats.md §1.4, §1.5). The layout is computed from names, dtypes and
// shapes alone, then all tensors are streamed with io::write_tensors, so the bytes do not depend
// on the thread count and memory stays bounded by threads x chunk_bytes.
//
// Inside a file we follow the reference writer (safetensors `prepare`): tensors sorted by
// descending dtype alignment, then by name; contiguous offsets from 0; compact JSON with
// __metadata__ first; header padded with spaces to a multiple of 8 so every tensor starts
// aligned to its element size. Across files we follow huggingface_hub's greedy split in model
// order: a tensor that does not fit closes the current shard, a tensor larger than the limit gets
// a shard of its own (appended at once, before the shard being filled), one shard is written as
// model.safetensors without an index.
#include <algorithm>
#include <bit>
#include <array>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "formats/safetensors/safetensors.h"
#include "io/shards.h"
#include "io/output.h"
#include "io/stream_writer.h"

namespace mc::safetensors {

// The format is little-endian; lengths and offsets are copied with memcpy as-is.
static_assert(std::endian::native == std::endian::little);

namespace {

using ojson = nlohmann::ordered_json;

// The reference `Dtype` enum order (ascending alignment); the writer sorts by it, descending.
constexpr std::array<std::string_view, 20> kAlignOrder = {
    "BOOL", "F4",  "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16",
    "U16",  "F16", "BF16",    "I32",     "U32", "F32", "C64",     "F64",     "I64",     "U64"};

size_t align_rank(DType t) {
  const auto name = dtype_info(t).st_name;
  for (size_t i = 0; i < kAlignOrder.size(); ++i)
    if (kAlignOrder[i] == name) return i;
  return 0;
}

Error tensor_error(ErrorCode code, const std::string& tensor, std::string msg, std::string hint) {
  Error e;
  e.code = code;
  e.tensor = tensor;
  e.message = std::move(msg);
  e.hint = std::move(hint);
  return e;
}

// Checks that a tensor can be written and returns its byte size.
Result<uint64_t> checked_bytes(const TensorEntry& t) {
  if (dtype_info(t.dtype).st_name.empty())
    return tensor_error(ErrorCode::Unsupported, t.name,
                        fmt::format("dtype {} has no safetensors equivalent", dtype_name(t.dtype)),
                        "dequantize it first (e.g. --dtype f16), or write GGUF instead");
  if (t.name == "__metadata__")
    return tensor_error(ErrorCode::InvalidArgument, t.name,
                        "a tensor cannot be named __metadata__ (reserved key of the header)",
                        "rename the tensor");
  auto numel = shape_numel(t.shape);
  if (!numel) return std::move(numel).error().with_tensor(t.name);
  auto nb = dtype_nbytes(t.dtype, *numel);
  if (!nb) return std::move(nb).error().with_tensor(t.name);
  return *nb;
}

Result<std::string> build_header(const TensorStore& store, std::span<const size_t> order,
                                 std::span<const uint64_t> sizes,
                                 const std::map<std::string, std::string>& metadata) {
  ojson h = ojson::object();
  ojson meta = ojson::object();
  for (const auto& [k, v] : metadata) meta[k] = v;
  h["__metadata__"] = std::move(meta);
  uint64_t off = 0;
  for (size_t i : order) {
    const TensorEntry& t = store[i];
    ojson e = ojson::object();
    e["dtype"] = std::string(dtype_info(t.dtype).st_name);
    e["shape"] = t.shape;
    e["data_offsets"] = {off, off + sizes[i]};
    off += sizes[i];
    h[t.name] = std::move(e);
  }
  std::string text;
  try {
    text = h.dump();
  } catch (const nlohmann::json::exception&) {
    // Only invalid UTF-8 makes dump() throw; name the culprit.
    for (size_t i : order) {
      try {
        (void)ojson(store[i].name).dump();
      } catch (const nlohmann::json::exception&) {
        return tensor_error(ErrorCode::InvalidArgument, store[i].name,
                            "tensor name is not valid UTF-8", "rename the tensor");
      }
    }
    return tensor_error(ErrorCode::InvalidArgument, "", "__metadata__ is not valid UTF-8",
                        "fix the metadata strings");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  return out + text;
}

}  // namespace

std::vector<size_t> reference_order(const TensorStore& store, std::span<const size_t> subset) {
  std::vector<size_t> order(subset.begin(), subset.end());
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const size_t ra = align_rank(store[a].dtype), rb = align_rank(store[b].dtype);
    if (ra != rb) return ra > rb;
    return store[a].name < store[b].name;
  });
  return order;
}

std::vector<std::vector<size_t>> split_shards(const TensorStore& store, uint64_t max_shard_bytes) {
  std::vector<uint64_t> sizes;
  for (const auto& t : store) sizes.push_back(t.nbytes());
  return io::plan_shards(sizes, max_shard_bytes);
}

Result<WritePlan> plan_write(const TensorStore& store, const WriteOpts& opt) {
  std::vector<uint64_t> sizes(store.size());
  WritePlan plan;
  for (size_t i = 0; i < store.size(); ++i) {
    sizes[i] = MC_TRY(checked_bytes(store[i]));
    plan.tensor_bytes += sizes[i];
  }
  auto metadata = opt.metadata;
  metadata.try_emplace("format", "pt");

  std::vector<std::vector<size_t>> groups;
  if (opt.single_file) {
    groups.emplace_back(store.size());
    for (size_t i = 0; i < store.size(); ++i) groups[0][i] = i;
  } else {
    if (opt.max_shard_bytes == 0)
      return make_error(ErrorCode::InvalidArgument, "max shard size must be > 0 bytes");
    groups = split_shards(store, opt.max_shard_bytes);
  }
  if (groups.empty()) groups.emplace_back();  // an empty model still gets one (empty) file

  const size_t n = groups.size();
  ojson weight_map = ojson::object();
  std::vector<std::pair<std::string, std::string>> names;
  for (size_t g = 0; g < n; ++g) {
    PlannedFile f;
    f.name = n == 1 ? fmt::format("{}.safetensors", opt.stem)
                    : fmt::format("{}-{:05d}-of-{:05d}.safetensors", opt.stem, g + 1, n);
    f.tensors = reference_order(store, groups[g]);
    f.header = MC_TRY(build_header(store, f.tensors, sizes, metadata));
    uint64_t off = f.header.size();
    for (size_t i : f.tensors) {
      f.offsets.push_back(off);
      off += sizes[i];
      names.emplace_back(store[i].name, f.name);
    }
    f.size = off;
    plan.file_bytes += f.size;
    plan.files.push_back(std::move(f));
  }
  if (n > 1) {
    std::sort(names.begin(), names.end());
    for (auto& [t, file] : names) weight_map[t] = file;
    ojson idx = ojson::object();
    idx["metadata"] = ojson::object({{"total_size", plan.tensor_bytes}});
    idx["weight_map"] = std::move(weight_map);
    try {
      plan.index_json = idx.dump(2) + "\n";
    } catch (const nlohmann::json::exception& e) {
      return make_error(ErrorCode::InvalidArgument, "cannot encode the shard index: {}", e.what());
    }
    plan.file_bytes += plan.index_json.size();
  }
  return plan;
}

Result<std::vector<std::string>> write(const TensorStore& store, const fs::path& out,
                                       const WriteOpts& opt) {
  const WritePlan plan = MC_TRY(plan_write(store, opt));
  std::error_code ec;
  const fs::path dir = opt.single_file ? out.parent_path() : out;
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorCode::Io, "cannot create directory: {}", ec.message()).with_path(dir.string());
  }
  if (!opt.pull_order.empty()) {  // a permutation of the store, checked before any file exists
    std::vector<bool> seen(store.size());
    bool ok = opt.pull_order.size() == store.size();
    for (size_t i : opt.pull_order) {
      ok = ok && i < store.size() && !seen[i];
      if (ok) seen[i] = true;
    }
    if (!ok)
      return make_error(ErrorCode::Internal, "the pull order ({} indices) is not a permutation of the {} tensors",
                        opt.pull_order.size(), store.size());
  }
  std::vector<io::OutFile> files;
  std::vector<std::string> names;
  // Where each store tensor goes; the items are then made in pull order (the input's order by
  // default: the layout is in name order, and pulling in it read the input shards back and
  // forth).
  std::vector<std::optional<io::WriteItem>> at(store.size());
  files.reserve(plan.files.size());  // items point into `files`: no reallocation after this
  for (const auto& pf : plan.files) {
    const fs::path path = opt.single_file ? out : out / pf.name;
    names.push_back(opt.single_file ? out.filename().string() : pf.name);
    files.push_back(MC_TRY(io::OutFile::create(path, pf.size)));
    MC_CHECK(files.back().pwrite(0, std::as_bytes(std::span(pf.header.data(), pf.header.size()))));
    for (size_t k = 0; k < pf.tensors.size(); ++k) {
      const TensorEntry& t = store[pf.tensors[k]];
      if (t.nbytes() == 0) continue;  // zero-size tensors have no bytes and may have no source
      at[pf.tensors[k]] = io::WriteItem{&t, &files.back(), pf.offsets[k]};
    }
  }
  std::vector<io::WriteItem> items;
  for (size_t k = 0; k < store.size(); ++k) {
    const size_t i = opt.pull_order.empty() ? k : opt.pull_order[k];
    if (at[i]) items.push_back(*at[i]);
  }
  std::optional<ThreadPool> own;
  ThreadPool* pool = opt.pool;
  if (!pool) pool = &own.emplace(1);
  io::StreamOptions so;
  so.chunk_bytes = opt.chunk_bytes;
  so.progress = opt.progress;
  so.sink = opt.sink;
  MC_CHECK(io::write_tensors(items, *pool, so));
  for (auto& f : files) MC_CHECK(f.close());
  if (!plan.index_json.empty()) {
    MC_CHECK(io::write_small_file(out / std::string(kIndexName), plan.index_json));
    names.push_back(std::string(kIndexName));
  }
  return names;
}

}  // namespace mc::safetensors
