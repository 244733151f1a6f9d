// safetensors validation (formats.md §1.3, §1.5): every rule of the reference reader for each
// file, plus, for a sharded directory, that the index and the shards agree exactly (each
// weight_map entry in its shard, each shard tensor listed, no tensor in two shards,
// metadata.total_size = sum of tensor bytes). Reports all problems, not only the first.
#include <algorithm>
#include <map>
#include <set>

#include "formats/safetensors/index_json.h"
#include "formats/safetensors/safetensors.h"

namespace mc::safetensors {

namespace {

struct FileFacts {
  std::vector<HeaderTensor> tensors;
  uint64_t tensor_bytes = 0;
};

// Validates one file into `r`; returns its tensors when its header could be read.
std::optional<FileFacts> check_file(const fs::path& path, formats::ValidationReport& r) {
  auto map = io::MappedFile::open(path.string());
  if (!map) {
    r.errors.push_back(map.error());
    return std::nullopt;
  }
  auto h = check_header((*map)->bytes(), path.string(), r.errors);
  if (!h) return std::nullopt;
  FileFacts facts;
  for (const auto& t : h->tensors) {
    if (!t.st_dtype.empty() && !t.dtype)
      r.warnings.push_back(fmt::format("{}: tensor '{}' has dtype {}, valid but not readable here",
                                       path.string(), t.name, t.st_dtype));
    if (t.end >= t.begin) facts.tensor_bytes += t.end - t.begin;
  }
  if (!h->metadata.contains("format"))
    r.warnings.push_back(fmt::format("{}: __metadata__ has no \"format\" entry; transformers "
                                     "expects {{\"format\": \"pt\"}}",
                                     path.string()));
  facts.tensors = std::move(h->tensors);
  return facts;
}

Error dir_error(ErrorCode code, const fs::path& path, std::string tensor, std::string msg,
                std::string hint) {
  Error e;
  e.code = code;
  e.path = path.string();
  e.tensor = std::move(tensor);
  e.message = std::move(msg);
  e.hint = std::move(hint);
  return e;
}

void check_index(const fs::path& index_path, formats::ValidationReport& r) {
  auto idx = read_index_json(index_path);
  if (!idx) {
    r.errors.push_back(idx.error());
    return;
  }
  const fs::path dir = index_path.parent_path();
  std::map<std::string, std::string> found;  // tensor -> shard that holds it
  std::set<std::string> unreadable;  // errors already reported; do not list their tensors
  uint64_t sum = 0;
  size_t n_tensors = 0;
  for (const auto& shard : idx->shards) {
    const fs::path sp = dir / shard;
    auto facts = check_file(sp, r);
    if (!facts) {
      unreadable.insert(shard);
      continue;
    }
    sum += facts->tensor_bytes;
    for (const auto& t : facts->tensors) {
      ++n_tensors;
      if (auto [it, fresh] = found.emplace(t.name, shard); !fresh)
        r.errors.push_back(dir_error(ErrorCode::Mismatch, sp, t.name,
                                     fmt::format("tensor is also stored in {}", it->second),
                                     "keep one copy and fix the index"));
      auto w = idx->weight_map.find(t.name);
      if (w == idx->weight_map.end())
        r.errors.push_back(dir_error(ErrorCode::Mismatch, sp, t.name,
                                     "tensor is not listed in the index weight_map",
                                     "regenerate the index from the shards"));
      else if (w->second != shard)
        r.errors.push_back(dir_error(
            ErrorCode::Mismatch, sp, t.name,
            fmt::format("the index says this tensor is in {}, but it is stored here", w->second),
            "regenerate the index from the shards"));
    }
  }
  for (const auto& [name, shard] : idx->weight_map) {
    if (found.contains(name) || unreadable.contains(shard)) continue;
    r.errors.push_back(dir_error(ErrorCode::Mismatch, dir / shard, name,
                                 fmt::format("the index lists this tensor in {}, which does not "
                                             "contain it",
                                             shard),
                                 "the shard and the index do not belong together"));
  }
  if (idx->total_size_invalid)
    r.errors.push_back(dir_error(ErrorCode::Corrupt, index_path, "",
                                 fmt::format("metadata.total_size is {}, not a byte count",
                                             *idx->total_size_invalid),
                                 "set it to the sum of the tensor byte sizes"));
  else if (!idx->total_size)
    r.warnings.push_back(index_path.string() + ": metadata.total_size is missing");
  else if (*idx->total_size != sum)
    r.errors.push_back(dir_error(ErrorCode::Mismatch, index_path, "",
                                 fmt::format("metadata.total_size is {}, but the shards hold {} "
                                             "tensor bytes",
                                             *idx->total_size, sum),
                                 "set it to the sum of the tensor byte sizes"));
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(dir, ec))
    if (de.path().extension() == ".safetensors" &&
        !idx->shards.contains(de.path().filename().string()))
      r.warnings.push_back(fmt::format("{}: not referenced by {}", de.path().string(),
                                       index_path.filename().string()));
  r.info["files"] = idx->shards.size();
  r.info["tensors"] = n_tensors;
  r.info["tensor_bytes"] = sum;
}

}  // namespace

formats::ValidationReport validate_path(const fs::path& path) {
  formats::ValidationReport r;
  r.format = "safetensors";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    r.errors.push_back(dir_error(ErrorCode::NotFound, path, "", "no such file or directory", ""));
    return r;
  }
  const auto files = find_weight_files(path);
  if (files.empty()) {
    r.errors.push_back(dir_error(ErrorCode::NotFound, path, "", "no .safetensors weights found",
                                 "expected model.safetensors or an index with shards"));
    return r;
  }
  if (files.size() == 1 && files[0].filename() == kIndexName) {
    check_index(files[0], r);
    return r;
  }
  if (files.size() > 1)
    r.warnings.push_back(fmt::format("{}: {} .safetensors files and no {}; each checked alone",
                                     path.string(), files.size(), kIndexName));
  uint64_t bytes = 0;
  size_t tensors = 0;
  for (const auto& f : files)
    if (auto facts = check_file(f, r)) {
      bytes += facts->tensor_bytes;
      tensors += facts->tensors.size();
    }
  r.info["files"] = files.size();
  r.info["tensors"] = tensors;
  r.info["tensor_bytes"] = bytes;
  return r;
}

}  // namespace mc::safetensors
