// torch.save reader (formats.md §3.1 archive, §3.3 objects, §3.6 legacy stream).
// Zip layout: <name>/data.pkl (the object), <name>/data/<key> (raw storages), <name>/version,
// optional <name>/byteorder. Legacy layout: five pickles (magic int, protocol 1001, sys info,
// object, storage key list) then, per key, an int64 LE element count and the raw storage.
// Tensors are element views into storages: element (i..) = storage[offset + sum i_d * stride_d].
#include <cstring>

#include <nlohmann/json.hpp>

#include "formats/torch/torch_io.h"
#include "formats/torch/zip.h"

namespace mc::torch {

namespace {

// A strided and/or byte-swapped view of a storage, gathered element by element on read().
class StridedData final : public TensorData {
 public:
  StridedData(io::MappedFilePtr owner, const std::byte* storage, uint32_t es, uint64_t offset, Shape sizes,
              std::vector<int64_t> strides, bool swap)
      : owner_(std::move(owner)), base_(storage), es_(es), offset_(offset), sizes_(std::move(sizes)),
        strides_(std::move(strides)), swap_(swap) {
    numel_ = 1;
    for (int64_t d : sizes_) numel_ *= uint64_t(d);
  }
  uint64_t chunk_align() const override { return es_; }

  Status read(uint64_t off, std::span<std::byte> dst) const override {
    if (off > numel_ * es_ || dst.size() > numel_ * es_ - off)
      return make_error(ErrorCode::Internal, "read [{}, +{}) past a {}-byte tensor", off, dst.size(), numel_ * es_);
    if (dst.empty()) return {};
    const size_t rank = sizes_.size();
    uint64_t el = off / es_;
    size_t skip = size_t(off % es_);
    std::vector<uint64_t> idx(rank);
    uint64_t rest = el;
    for (size_t d = rank; d-- > 0;) {
      idx[d] = rest % uint64_t(sizes_[d]);
      rest /= uint64_t(sizes_[d]);
    }
    uint64_t src = offset_;
    for (size_t d = 0; d < rank; ++d) src += idx[d] * uint64_t(strides_[d]);
    std::byte tmp[16];
    size_t w = 0;
    while (w < dst.size()) {
      const std::byte* p = base_ + src * es_;
      if (swap_) {
        for (uint32_t k = 0; k < es_; ++k) tmp[k] = p[es_ - 1 - k];
        p = tmp;
      }
      const size_t n = std::min<size_t>(es_ - skip, dst.size() - w);
      std::memcpy(dst.data() + w, p + skip, n);
      w += n;
      skip = 0;
      // next element: bump the last index, carrying into earlier dims
      for (size_t d = rank; d-- > 0;) {
        if (++idx[d] < uint64_t(sizes_[d])) {
          src += uint64_t(strides_[d]);
          break;
        }
        src -= (idx[d] - 1) * uint64_t(strides_[d]);
        idx[d] = 0;
      }
    }
    return {};
  }

 private:
  io::MappedFilePtr owner_;
  const std::byte* base_;
  uint32_t es_;
  uint64_t offset_;
  Shape sizes_;
  std::vector<int64_t> strides_;
  bool swap_;
  uint64_t numel_ = 1;
};

Result<TensorEntry> make_entry(const TorchFile& f, const TensorRef& t, const std::string& name) {
  auto fail = [&](ErrorCode c, std::string msg) {
    Error e;
    e.code = c;
    e.message = std::move(msg);
    e.tensor = name;
    e.path = f.file ? f.file->path() : "";
    return e;
  };
  if (!t.dtype)
    return fail(ErrorCode::Unsupported, fmt::format("tensor dtype '{}' is not supported", t.dtype_name));
  if (!t.storage.dtype)
    return fail(ErrorCode::Unsupported, fmt::format("storage type '{}' is not supported", t.storage.type_name));
  auto it = f.storages.find(t.storage.key);
  if (it == f.storages.end())
    return fail(ErrorCode::Corrupt, fmt::format("storage '{}' is not in the file", t.storage.key));
  const uint64_t ses = dtype_size(*t.storage.dtype), es = dtype_size(*t.dtype);
  const auto& bytes = it->second.bytes;
  if (t.storage.numel > bytes.size() / ses)
    return fail(ErrorCode::Corrupt, fmt::format("storage '{}' declares {} elements of {} bytes but holds {} bytes",
                                                t.storage.key, t.storage.numel, ses, bytes.size()));
  const uint64_t storage_elems = t.storage.numel * ses / es;  // in elements of the tensor dtype
  unsigned __int128 numel = 1, last = t.storage_offset;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    numel *= uint64_t(t.sizes[d]);
    if (t.sizes[d] > 0) last += (unsigned __int128)(uint64_t(t.sizes[d] - 1)) * uint64_t(t.strides[d]);
    if (numel > (unsigned __int128)(UINT64_MAX) || last > (unsigned __int128)(UINT64_MAX))
      return fail(ErrorCode::LimitExceeded, fmt::format("shape {} overflows", shape_str(t.sizes)));
  }
  if (numel > 0 && last >= storage_elems)
    return fail(ErrorCode::Corrupt,
                fmt::format("tensor {} (offset {}, strides {}) reaches element {} of storage '{}' which has {} elements",
                            shape_str(t.sizes), t.storage_offset, shape_str(t.strides), uint64_t(last),
                            t.storage.key, storage_elems));
  TensorEntry e{name, *t.dtype, t.sizes, nullptr};
  bool contiguous = true;
  uint64_t expect = 1;
  for (size_t d = t.sizes.size(); d-- > 0;) {
    if (t.sizes[d] != 1 && uint64_t(t.strides[d]) != expect) contiguous = false;
    expect *= uint64_t(t.sizes[d]);
  }
  const bool swap = f.big_endian && es > 1;
  if (numel == 0) {
    e.data = make_fn_data([](uint64_t, std::span<std::byte>) -> Status { return {}; });
  } else if (contiguous && !swap) {
    e.data = std::make_shared<MemoryData>(f.file, bytes.subspan(t.storage_offset * es, uint64_t(numel) * es), true);
  } else {
    e.data = std::make_shared<StridedData>(f.file, bytes.data(), uint32_t(es), t.storage_offset, t.sizes,
                                           t.strides, swap);
  }
  return e;
}

struct Collector {
  const TorchFile& f;
  std::vector<Error>* errors;
  const Limits& lim;
  TensorStore out;
  uint64_t visits = 0;

  Status walk(const Value& v, const std::string& name, uint32_t depth) {
    if (depth > lim.max_depth)
      return make_error(ErrorCode::LimitExceeded, "pickle data nests deeper than {}", lim.max_depth);
    if (++visits > lim.max_items)
      return make_error(ErrorCode::LimitExceeded, "pickle data has more than {} reachable values", lim.max_items);
    auto join = [&](const std::string& k) { return name.empty() ? k : name + "." + k; };
    switch (v.kind) {
      case Kind::Tensor: {
        auto e = make_entry(f, v.tensor, name);
        if (!e) {
          if (!errors) return std::move(e).error();
          errors->push_back(std::move(e).error());
          return {};
        }
        if (out.contains(name)) {
          Error err = make_error(ErrorCode::Corrupt, "two tensors are named '{}'", name);
          if (!errors) return err;
          errors->push_back(std::move(err));
          return {};
        }
        out.put(std::move(e).value());
        return {};
      }
      case Kind::Dict:
        for (const auto& [k, x] : v.entries) {
          std::string key;
          if (k->kind == Kind::String) key = k->str;
          else if (k->kind == Kind::Int) key = std::to_string(k->i);
          else continue;
          MC_CHECK(walk(*x, join(key), depth + 1));
        }
        return {};
      case Kind::List:
      case Kind::Tuple:
        for (size_t k = 0; k < v.items.size(); ++k) MC_CHECK(walk(*v.items[k], join(std::to_string(k)), depth + 1));
        return {};
      default: return {};
    }
  }
};

Status check_version(const ZipReader& z) {
  const ZipEntry* v = z.find(".data/version");
  if (!v) v = z.find("version");
  if (!v)
    return make_error(ErrorCode::Corrupt, "archive has no 'version' record")
        .with_hint("torch.load refuses such files too");
  auto d = MC_TRY(z.data(*v));
  std::string s(reinterpret_cast<const char*>(d.data()), std::min<size_t>(d.size(), 32));
  int64_t ver = 0;
  try {
    ver = std::stoll(s);
  } catch (...) {
    return make_error(ErrorCode::Corrupt, "version record '{}' is not a number", s);
  }
  if (ver < 1 || ver > 10)
    return make_error(ErrorCode::Unsupported, "archive format version {} (torch reads 1..10)", ver);
  return {};
}

Result<TorchFile> open_zip(TorchFile f, const ReadOptions& opt) {
  ZipReader z = MC_TRY(ZipReader::open(f.file));
  f.archive_name = z.prefix().substr(0, z.prefix().size() - 1);
  if (z.find("constants.pkl"))
    return make_error(ErrorCode::Unsupported, "this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
        .with_hint("load it with torch.jit.load and save its state_dict() with torch.save");
  MC_CHECK(check_version(z));
  if (opt.verify_crc)
    for (const auto& e : z.entries()) MC_CHECK(z.verify_crc(e));
  if (const ZipEntry* bo = z.find("byteorder")) {
    auto d = MC_TRY(z.data(*bo));
    const std::string s(reinterpret_cast<const char*>(d.data()), d.size());
    if (s == "big") f.big_endian = true;
    else if (s != "little") return make_error(ErrorCode::Corrupt, "byteorder record reads '{}'", s.substr(0, 16));
  }
  const ZipEntry* pkl = z.find("data.pkl");
  if (!pkl) return make_error(ErrorCode::Corrupt, "archive has no data.pkl");
  auto pbytes = MC_TRY(z.data(*pkl));
  auto root = MC_TRY(parse_pickle(pbytes, *f.tree, opt.limits, pkl->data_offset));
  f.tree->root = root.value;
  const std::string data_prefix = "data/";
  for (const auto& e : z.entries()) {
    std::string_view rel = std::string_view(e.name).substr(z.prefix().size());
    if (!rel.starts_with(data_prefix)) continue;
    f.storages[std::string(rel.substr(data_prefix.size()))] = {MC_TRY(z.data(e)), e.data_offset};
  }
  return f;
}

// Storage refs reachable in a tree (legacy files need their element sizes to find the records).
void collect_storages(const Value* v, uint32_t depth, const Limits& lim,
                      std::unordered_map<std::string, StorageRef>& out, std::unordered_map<const Value*, bool>& seen) {
  if (!v || depth > lim.max_depth || !seen.emplace(v, true).second) return;
  if ((v->kind == Kind::PersistentId && v->b) || v->kind == Kind::Tensor) out.emplace(v->tensor.storage.key, v->tensor.storage);
  for (const Value* c : v->items) collect_storages(c, depth + 1, lim, out, seen);
  for (const auto& [k, x] : v->entries) collect_storages(x, depth + 1, lim, out, seen);
  collect_storages(v->args, depth + 1, lim, out, seen);
  collect_storages(v->state, depth + 1, lim, out, seen);
}

Result<TorchFile> open_legacy(TorchFile f, const ReadOptions& opt) {
  const auto all = f.file->bytes();
  uint64_t pos = 0;
  auto next = [&]() -> Result<Value*> {
    auto r = MC_TRY(parse_pickle(all.subspan(pos), *f.tree, opt.limits, pos));
    pos += r.end;
    return r.value;
  };
  (void)MC_TRY(next());  // magic, checked by the caller
  const Value* proto = MC_TRY(next());
  if (proto->kind != Kind::Int || proto->i != 1001)
    return make_error(ErrorCode::Unsupported, "legacy torch file with protocol {} (expected 1001)",
                      proto->kind == Kind::Int ? proto->i : -1);
  const Value* info = MC_TRY(next());
  if (const Value* le = info->get("little_endian"); le && le->kind == Kind::Bool) f.big_endian = !le->b;
  f.tree->root = MC_TRY(next());
  const Value* keys = MC_TRY(next());
  if (keys->kind != Kind::List) return make_error(ErrorCode::Corrupt, "legacy storage key list is not a list");
  std::unordered_map<std::string, StorageRef> refs;
  std::unordered_map<const Value*, bool> seen;
  collect_storages(f.tree->root, 0, opt.limits, refs, seen);
  for (const Value* k : keys->items) {
    if (k->kind != Kind::String) return make_error(ErrorCode::Corrupt, "legacy storage key is not a string");
    auto it = refs.find(k->str);
    if (it == refs.end() || !it->second.dtype)
      return make_error(ErrorCode::Corrupt, "legacy storage '{}' is not referenced by any tensor", k->str);
    if (all.size() - pos < 8) return make_error(ErrorCode::Truncated, "file ends before storage '{}'", k->str);
    int64_t count;
    std::memcpy(&count, all.data() + pos, 8);
    const uint64_t es = dtype_size(*it->second.dtype);
    if (count < 0 || uint64_t(count) > (all.size() - pos - 8) / es) {
      Error e = make_error(ErrorCode::Truncated, "storage '{}' declares {} elements but the file ends first", k->str, count);
      e.offset = pos;
      return e;
    }
    f.storages[k->str] = {all.subspan(pos + 8, uint64_t(count) * es), pos + 8};
    pos += 8 + uint64_t(count) * es;
  }
  return f;
}

constexpr unsigned char kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                          0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

Result<TorchFile> open_any(const std::string& path, const ReadOptions& opt, std::vector<Error>* errors = nullptr) {
  TorchFile f;
  f.file = MC_TRY(io::MappedFile::open(path));
  f.tree = std::make_shared<Tree>();
  const auto b = f.file->bytes();
  auto starts = [&](const void* m, size_t n) { return b.size() >= n && std::memcmp(b.data(), m, n) == 0; };
  if (starts("PK\x03\x04", 4) || starts("PK\x05\x06", 4)) {
    f = MC_TRY(open_zip(std::move(f), opt));
  } else if (starts(kLegacyMagic, sizeof kLegacyMagic)) {
    f.legacy = true;
    f = MC_TRY(open_legacy(std::move(f), opt));
  } else if (starts("PYTORCH1", 8)) {
    return make_error(ErrorCode::Unsupported, "the 'PYTORCH1' preview format is not supported (torch refuses it too)");
  } else if (b.size() > 262 && std::memcmp(b.data() + 257, "ustar", 5) == 0) {
    return make_error(ErrorCode::Unsupported, "tar-based legacy torch checkpoint (torch < 0.4) is not supported")
        .with_hint("load and re-save it with torch.save in a current torch");
  } else {
    return make_error(ErrorCode::Corrupt, "not a torch checkpoint: neither a zip archive nor a legacy torch stream");
  }
  auto [sd, key] = find_state_dict(*f.tree->root);
  if (sd->kind != Kind::Dict) {
    // torch.save of a model's weights pickles a dict; anything else (a list, a number, a call of
    // some function a hostile file names) is not a checkpoint, and is only ever read as data.
    std::string why;
    if (auto w = check_weights_only(*sd); !w) why = " (" + w.error().message + ")";
    return make_error(ErrorCode::Corrupt, "the pickle holds a {}, not a state dict (a dict of tensors){}",
                      kind_name(sd->kind), why)
        .with_hint("this is not a torch.save checkpoint of a model's weights (nothing in it was run)");
  }
  f.state_dict = sd;
  f.state_dict_key = key;
  f.tensors = MC_TRY(tensors_from_value(f, *sd, "", errors));
  return f;
}

}  // namespace

std::pair<const Value*, std::string> find_state_dict(const Value& root) {
  auto has_tensor = [](const Value& d) {
    for (const auto& [k, v] : d.entries)
      if (v->kind == Kind::Tensor) return true;
    return false;
  };
  if (root.kind != Kind::Dict || has_tensor(root)) return {&root, ""};
  for (const char* key : {"state_dict", "model", "module", "model_state_dict"})
    if (const Value* v = root.get(key); v && v->kind == Kind::Dict) return {v, key};
  return {&root, ""};
}

Result<TensorStore> tensors_from_value(const TorchFile& f, const Value& v, const std::string& prefix,
                                       std::vector<Error>* errors) {
  static const Limits kLimits;
  Collector c{f, errors, kLimits, {}, 0};
  MC_CHECK(c.walk(v, prefix, 0));
  return std::move(c.out);
}

Result<TorchFile> open_torch_file(const std::string& path, const ReadOptions& opt) {
  auto r = open_any(path, opt);
  if (!r) return std::move(r).error().with_path(path);
  return r;
}

Result<TensorStore> open_hf_torch_dir(const std::string& dir, const ReadOptions& opt) {
  const fs::path d(dir);
  const fs::path index = d / "pytorch_model.bin.index.json";
  std::error_code ec;
  if (!fs::exists(index, ec)) {
    if (!fs::exists(d / "pytorch_model.bin", ec))
      return make_error(ErrorCode::NotFound, "no pytorch_model.bin or pytorch_model.bin.index.json").with_path(dir);
    auto f = MC_TRY(open_torch_file((d / "pytorch_model.bin").string(), opt));
    return std::move(f.tensors);
  }
  const std::string text = MC_TRY(io::read_text_file(index.string(), size_t(64) << 20));
  std::vector<std::pair<std::string, std::string>> wmap;
  std::vector<std::string> files;
  try {
    const auto j = nlohmann::json::parse(text);
    for (const auto& [name, file] : j.at("weight_map").items()) {
      const std::string fn = file.get<std::string>();
      if (fn.find('/') != std::string::npos || fn.find("..") != std::string::npos)
        return make_error(ErrorCode::Corrupt, "weight_map names file '{}' outside the directory", fn).with_path(index.string());
      wmap.emplace_back(name, fn);
      if (std::find(files.begin(), files.end(), fn) == files.end()) files.push_back(fn);
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::Corrupt, "bad index json: {}", e.what()).with_path(index.string());
  }
  std::unordered_map<std::string, TensorStore> shards;
  for (const auto& fn : files) {
    auto f = MC_TRY(open_torch_file((d / fn).string(), opt));
    shards.emplace(fn, std::move(f.tensors));
  }
  TensorStore out;
  for (const auto& [name, fn] : wmap) {
    const TensorEntry* e = shards.at(fn).find(name);
    if (!e)
      return make_error(ErrorCode::NotFound, "tensor '{}' listed in the index is not in {}", name, fn)
          .with_path((d / fn).string());
    out.put(*e);
  }
  return out;
}

std::vector<Error> validate_torch_file(const std::string& path, const ReadOptions& opt) {
  std::vector<Error> errs;
  ReadOptions o = opt;
  o.verify_crc = false;  // checked below, entry by entry, so every bad entry is reported
  auto r = open_any(path, o, &errs);
  if (!r) errs.insert(errs.begin(), std::move(r).error());
  for (auto& e : errs)
    if (e.path.empty()) e.path = path;
  if (r && opt.verify_crc && !r->legacy) {
    if (auto z = ZipReader::open(r->file); z)
      for (const auto& e : z->entries())
        if (auto st = z->verify_crc(e); !st) errs.push_back(std::move(st).error().with_path(path));
  }
  return errs;
}

}  // namespace mc::torch
