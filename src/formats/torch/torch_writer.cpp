// torch.save-compatible writer (formats.md §3.5): zip entries <name>/data.pkl, <name>/byteorder,
// <name>/data/<k>, <name>/version ("3\n"), stored, data 64-byte aligned. The layout is fixed
// before any byte is written (header sizes follow from names and sizes), storages then stream
// through io::write_tensors with positional writes, and the local headers and central directory
// (which carry the CRCs) are written last. Peak memory: the pickle + threads x chunk.
#include <algorithm>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "formats/torch/torch_io.h"
#include "io/shards.h"
#include "formats/torch/zip.h"
#include "io/output.h"
#include "io/stream_writer.h"

namespace mc::torch {

namespace {

// Passes a tensor's bytes through and keeps the CRC-32 of every chunk read (see zip.cpp).
class CrcData final : public TensorData {
 public:
  explicit CrcData(const TensorEntry& src) : src_(src) {}
  Status read(uint64_t off, std::span<std::byte> dst) const override {
    MC_CHECK(src_.data->read(off, dst));
    const uint32_t c = crc32_update(0, dst);
    std::lock_guard lock(mu_);
    parts_.push_back({off, dst.size(), c});
    return {};
  }
  uint64_t chunk_align() const override { return src_.data->chunk_align(); }
  void release(uint64_t off, uint64_t n) const override { src_.data->release(off, n); }

  Result<uint32_t> crc(uint64_t total) const {
    std::lock_guard lock(mu_);
    std::sort(parts_.begin(), parts_.end(), [](const Part& a, const Part& b) { return a.off < b.off; });
    uint32_t c = 0;
    uint64_t at = 0;
    for (const Part& p : parts_) {
      if (p.off != at) return make_error(ErrorCode::Internal, "chunks of '{}' do not tile its bytes", src_.name);
      c = crc32_combine_parts(c, p.crc, p.len);
      at += p.len;
    }
    if (at != total) return make_error(ErrorCode::Internal, "only {} of {} bytes of '{}' were written", at, total, src_.name);
    return c;
  }

 private:
  struct Part {
    uint64_t off, len;
    uint32_t crc;
  };
  const TensorEntry& src_;
  mutable std::mutex mu_;
  mutable std::vector<Part> parts_;
};

std::string sanitize_archive_name(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') c = '_';
  if (s.empty() || s == "." || s == "..") s = "archive";
  return s;
}

Status write_archive(const Value& root, const fs::path& path, const WriteOptions& opt) {
  // 1. The pickle; storages are numbered in order of first use, one per distinct data source.
  std::vector<const TensorEntry*> storages;
  std::map<std::tuple<const void*, DType, uint64_t>, std::string> keys;
  std::optional<Error> bad;
  auto storage_of = [&](const TensorEntry& e) -> StorageAssignment {
    if (!bad) {
      if (!e.data) bad = make_error(ErrorCode::InvalidArgument, "tensor has no data source").with_tensor(e.name);
      else if (!storage_class_for(e.dtype) || is_quantized(e.dtype))
        bad = make_error(ErrorCode::Unsupported, "dtype {} cannot be saved in a torch checkpoint", dtype_name(e.dtype))
                  .with_tensor(e.name)
                  .with_hint("convert it to f32/f16/bf16 first");
      else if (!shape_numel(e.shape))
        bad = make_error(ErrorCode::InvalidArgument, "invalid shape {}", shape_str(e.shape)).with_tensor(e.name);
    }
    auto [it, fresh] = keys.try_emplace({e.data.get(), e.dtype, e.nbytes()}, std::to_string(storages.size()));
    if (fresh) storages.push_back(&e);
    return {it->second, e.dtype, e.numel()};
  };
  const std::string pkl = MC_TRY(write_pickle(root, storage_of));
  if (bad) return std::move(*bad).with_path(path.string());

  // 2. Layout.
  const std::string arch = sanitize_archive_name(opt.archive_name.empty() ? path.stem().string() : opt.archive_name);
  const std::string byteorder = "little";
  const std::string& version = opt.version;
  std::vector<ZipOutEntry> entries;
  entries.push_back({arch + "/data.pkl", pkl.size()});
  if (opt.byteorder) entries.push_back({arch + "/byteorder", byteorder.size()});
  const size_t first_storage = entries.size();
  for (size_t k = 0; k < storages.size(); ++k) entries.push_back({arch + "/data/" + std::to_string(k), storages[k]->nbytes()});
  for (const auto& [name, bytes] : opt.records) entries.push_back({arch + "/" + name, bytes.size()});
  entries.push_back({arch + "/version", version.size()});
  const uint64_t cd_off = plan_zip(entries);
  const uint64_t total = cd_off + zip_central_directory(entries, cd_off).size();

  // 3. Output file (a temporary sibling renamed into place when atomic).
  std::optional<io::PendingOutput> pending;
  fs::path target = path;
  if (opt.atomic) {
    pending.emplace(MC_TRY(io::PendingOutput::begin(path, false, opt.force, total)));
    target = pending->tmp_path();
  } else if (std::error_code ec; fs::exists(path, ec) && !opt.force) {
    return make_error(ErrorCode::Exists, "output exists").with_path(path.string()).with_hint("pass --force to replace it");
  }
  io::OutFile out = MC_TRY(io::OutFile::create(target, total));
  auto small = [&](ZipOutEntry& e, std::string_view bytes) -> Status {
    e.crc32 = crc32_update(0, std::as_bytes(std::span(bytes)));
    return out.pwrite(e.data_offset, std::as_bytes(std::span(bytes)));
  };
  MC_CHECK(small(entries[0], pkl));
  if (opt.byteorder) MC_CHECK(small(entries[1], byteorder));
  for (size_t k = 0; k < opt.records.size(); ++k)
    MC_CHECK(small(entries[first_storage + storages.size() + k], opt.records[k].second));
  MC_CHECK(small(entries.back(), version));

  std::vector<std::shared_ptr<CrcData>> crcs;
  std::vector<TensorEntry> wrapped;
  wrapped.reserve(storages.size());
  for (const TensorEntry* s : storages) {
    crcs.push_back(std::make_shared<CrcData>(*s));
    wrapped.push_back({s->name, s->dtype, s->shape, crcs.back()});
  }
  std::vector<io::WriteItem> items;
  for (size_t k = 0; k < wrapped.size(); ++k) items.push_back({&wrapped[k], &out, entries[first_storage + k].data_offset});
  std::optional<ThreadPool> own_pool;
  ThreadPool* pool = opt.pool;
  if (!pool) pool = &own_pool.emplace(0);
  io::StreamOptions so;
  so.chunk_bytes = opt.chunk_bytes;
  so.sink = opt.sink;
  MC_CHECK(io::write_tensors(items, *pool, so));
  for (size_t k = 0; k < wrapped.size(); ++k) entries[first_storage + k].crc32 = MC_TRY(crcs[k]->crc(wrapped[k].nbytes()));

  for (const auto& e : entries) {
    const std::string h = zip_local_header(e);
    MC_CHECK(out.pwrite(e.header_offset, std::as_bytes(std::span(h))));
  }
  const std::string cd = zip_central_directory(entries, cd_off);
  MC_CHECK(out.pwrite(cd_off, std::as_bytes(std::span(cd))));
  MC_CHECK(out.close());
  if (pending) MC_CHECK(pending->commit());
  return {};
}

}  // namespace

Status write_torch_tree(const Value& root, const fs::path& path, const WriteOptions& opt) {
  return write_archive(root, path, opt);
}

Status write_torch_file(const TensorStore& tensors, const fs::path& path, const WriteOptions& opt) {
  Tree t;
  Value* d = t.dict();
  for (const auto& e : tensors) d->entries.emplace_back(t.string(e.name), t.tensor(e));
  return write_archive(*d, path, opt);
}

std::vector<std::vector<size_t>> plan_shards(const TensorStore& tensors, uint64_t max_shard_bytes) {
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) sizes.push_back(t.nbytes());
  auto shards = io::plan_shards(sizes, max_shard_bytes);
  if (shards.empty()) shards.emplace_back();  // an empty state dict is still one file
  return shards;
}

Result<std::vector<std::string>> write_torch_shards(const TensorStore& tensors, const fs::path& dir,
                                                    uint64_t max_shard_bytes, const WriteOptions& opt,
                                                    const std::string& stem) {
  const auto plan = plan_shards(tensors, max_shard_bytes);
  std::vector<std::string> names;
  if (plan.size() == 1) {
    names.push_back(stem + ".bin");
    MC_CHECK(write_torch_file(tensors, dir / names.back(), opt));
    return names;
  }
  nlohmann::json wmap = nlohmann::json::object();
  for (size_t s = 0; s < plan.size(); ++s) {
    names.push_back(fmt::format("{}-{:05d}-of-{:05d}.bin", stem, s + 1, plan.size()));
    TensorStore part;
    for (size_t i : plan[s]) {
      part.put(tensors[i]);
      wmap[tensors[i].name] = names.back();
    }
    MC_CHECK(write_torch_file(part, dir / names.back(), opt));
  }
  nlohmann::json index = {{"metadata", {{"total_size", tensors.total_bytes()}}}, {"weight_map", wmap}};
  names.push_back(stem + ".bin.index.json");
  MC_CHECK(io::write_small_file(dir / names.back(), index.dump(2) + "\n"));
  return names;
}

}  // namespace mc::torch
