// Internal: the parsed model.safetensors.index.json, shared by the reader and the validator.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "core/error.h"

namespace mc::safetensors {

struct IndexJson {
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name
  std::set<std::string> shards;                   // distinct shard names, sorted
  std::optional<uint64_t> total_size;             // metadata.total_size
  std::optional<std::string> total_size_invalid;  // the JSON text when it is not a byte count
};

// Reads and checks the index (size cap, JSON shape, shard names stay inside the directory).
Result<IndexJson> read_index_json(const std::filesystem::path& index_path);

}  // namespace mc::safetensors
