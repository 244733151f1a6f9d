// Weights of an HF directory in either format, behind one small interface (hf.cpp uses it).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/engine.h"

namespace mc::hf {

struct LoadedWeights {
  TensorStore tensors;
  std::string format;               // "safetensors" | "bin"
  std::vector<std::string> files;   // weight files read (relative to the dir)
};

// Finds and opens the weights of a directory (safetensors preferred) or a lone weights file.
Result<LoadedWeights> load_weights(const std::filesystem::path& path);
// Writes `tensors` into `out` as `format` ("safetensors"|"bin"), sharded per opt.max_shard_bytes
// (or into the single file `out` when opt.single_file). Returns the files written.
Result<std::vector<std::string>> write_weights(const TensorStore& tensors, const std::filesystem::path& out,
                                               const std::string& format, const formats::WriteOptions& opt);
// Validates the weights of a directory (or a lone file); appends to `report`.
void validate_weights(const std::filesystem::path& path, formats::ValidationReport& report);

}  // namespace mc::hf
