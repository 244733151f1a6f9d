// Sharded safetensors (formats.md §1.5): model.safetensors.index.json maps each tensor name to
// the shard file that holds it:
//   {"metadata": {"total_size": <sum of tensor bytes>, ...},
//    "weight_map": {"<tensor>": "model-00001-of-00002.safetensors", ...}}
// Each shard is an ordinary safetensors file. We open every shard once, in file-name order (the
// 1-based "-0000i-of-0000n" suffix sorts correctly), and keep each shard's data_offsets order.
// Shard names must be plain relative paths inside the directory ("..", absolute paths refused).
#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "formats/safetensors/index_json.h"
#include "formats/safetensors/safetensors.h"

namespace mc::safetensors {

namespace {

Error index_error(ErrorCode code, const fs::path& path, std::string msg, std::string hint) {
  Error e;
  e.code = code;
  e.path = path.string();
  e.message = std::move(msg);
  e.hint = std::move(hint);
  return e;
}

bool is_safe_relative(const std::string& name) {
  if (name.empty()) return false;
  const fs::path p(name);
  if (p.is_absolute()) return false;
  for (const auto& part : p)
    if (part == ".." || part == ".") return false;
  return true;
}

}  // namespace

Result<IndexJson> read_index_json(const fs::path& index_path) {
  const std::string text = MC_TRY(io::read_text_file(index_path.string(), kMaxIndexBytes));
  constexpr std::string_view hint = "the shard index is damaged: re-download it";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return index_error(ErrorCode::Corrupt, index_path,
                       fmt::format("index is not valid JSON: {}", e.what()), std::string(hint));
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    return index_error(ErrorCode::Corrupt, index_path,
                       "index has no \"weight_map\" object mapping tensor names to shard files",
                       std::string(hint));
  IndexJson idx;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string() || !is_safe_relative(file.get<std::string>())) {
      Error e = index_error(ErrorCode::Corrupt, index_path,
                            fmt::format("weight_map value {} is not a shard file name inside the "
                                        "model directory",
                                        file.dump()),
                            std::string(hint));
      e.tensor = name;
      return e;
    }
    idx.weight_map.emplace(name, file.get<std::string>());
  }
  if (auto m = j.find("metadata"); m != j.end() && m->is_object()) {
    if (auto ts = m->find("total_size"); ts != m->end()) {
      if (ts->is_number_unsigned())
        idx.total_size = ts->get<uint64_t>();
      else if (ts->is_number_integer() && ts->get<int64_t>() >= 0)
        idx.total_size = uint64_t(ts->get<int64_t>());
      else
        idx.total_size_invalid = ts->dump();
    }
  }
  for (const auto& [name, file] : idx.weight_map) idx.shards.insert(file);
  return idx;
}

Result<StSet> open_index(const fs::path& dir_or_index) {
  std::error_code ec;
  const fs::path index_path = fs::is_directory(dir_or_index, ec)
                                  ? dir_or_index / std::string(kIndexName)
                                  : dir_or_index;
  const IndexJson idx = MC_TRY(read_index_json(index_path));
  StSet set;
  set.dir = index_path.parent_path();
  set.index_total_size = idx.total_size;
  if (idx.total_size_invalid)  // as `validate` says: the index is not one transformers wrote
    return index_error(ErrorCode::Corrupt, index_path,
                       fmt::format("metadata.total_size is {}, not a byte count", *idx.total_size_invalid),
                       "set it to the sum of the tensor byte sizes, or re-download the index");
  uint64_t sum = 0;
  for (const auto& shard : idx.shards) {
    const fs::path sp = set.dir / shard;
    auto f = open_file(sp);
    if (!f) {
      Error e = std::move(f).error();
      if (e.code == ErrorCode::NotFound)
        e.hint = fmt::format("the index {} lists this shard: download the missing file",
                             index_path.filename().string());
      return e;
    }
    for (const auto& t : f->tensors) {
      auto it = idx.weight_map.find(t.name);
      if (it == idx.weight_map.end()) {
        set.warnings.push_back(fmt::format("{}: tensor '{}' is not listed in {}", sp.string(),
                                           t.name, index_path.filename().string()));
      } else if (it->second != shard) {
        continue;  // listed for another shard; that shard must hold it (checked below)
      }
      if (set.tensors.contains(t.name)) {
        Error e = index_error(ErrorCode::Mismatch, sp,
                              "tensor appears in more than one shard",
                              "remove the stray copy or re-export the model");
        e.tensor = t.name;
        return e;
      }
      sum += t.nbytes();
      set.tensors.put(t);
    }
    set.files.push_back(shard);
    set.maps.push_back(f->map);
    if (set.files.size() == 1) set.metadata = f->metadata;
  }
  for (const auto& [name, shard] : idx.weight_map) {
    if (!set.tensors.contains(name)) {
      // The shard is there: the index and the shard disagree (Mismatch, as `validate` says).
      Error e = index_error(ErrorCode::Mismatch, set.dir / shard,
                            fmt::format("the index lists this tensor in {}, but the shard does "
                                        "not contain it",
                                        shard),
                            "the shard and the index do not belong together: re-download both");
      e.tensor = name;
      return e;
    }
  }
  if (idx.total_size && *idx.total_size != sum)
    set.warnings.push_back(fmt::format("{}: metadata.total_size is {}, the tensors hold {} bytes",
                                       index_path.string(), *idx.total_size, sum));
  return set;
}

std::vector<fs::path> find_weight_files(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (path.filename() == kIndexName || path.extension() == ".safetensors") return {path};
    return {};
  }
  if (!fs::is_directory(path, ec)) return {};
  // Whatever sits at a weight file's name counts (a directory, FIFO or dangling link there too),
  // so that opening it says what is wrong with it instead of "no weights".
  auto present = [&](const fs::path& p) { return fs::exists(fs::symlink_status(p, ec)); };
  if (present(path / std::string(kIndexName))) return {path / std::string(kIndexName)};
  if (present(path / std::string(kSingleName))) return {path / std::string(kSingleName)};
  std::vector<fs::path> found;
  for (const auto& de : fs::directory_iterator(path, ec))
    if (!de.is_directory(ec) && de.path().extension() == ".safetensors") found.push_back(de.path());
  std::sort(found.begin(), found.end());
  return found;
}

Result<StSet> open_path(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return make_error(ErrorCode::NotFound, "no such file or directory").with_path(path.string());
  }
  const auto files = find_weight_files(path);
  if (files.empty()) {
    return make_error(ErrorCode::NotFound, "no .safetensors weights found")
        .with_path(path.string())
        .with_hint(
            "expected model.safetensors, model.safetensors.index.json + shards, or one "
            "*.safetensors file");
  }
  if (files.size() > 1) {
    std::string names;
    for (const auto& f : files) names += (names.empty() ? "" : ", ") + f.filename().string();
    return make_error(ErrorCode::InvalidArgument,
                      "{} .safetensors files ({}) and no {}: cannot tell how they combine", files.size(),
                      names, kIndexName)
        .with_path(path.string())
        .with_hint("pass one of the files, or add the shard index");
  }
  if (files[0].filename() == kIndexName) return open_index(files[0]);
  auto f = MC_TRY(open_file(files[0]));
  StSet set;
  set.dir = files[0].parent_path();
  set.files.push_back(files[0].filename().string());
  set.tensors = std::move(f.tensors);
  set.metadata = std::move(f.metadata);
  set.maps.push_back(std::move(f.map));
  return set;
}

}  // namespace mc::safetensors
