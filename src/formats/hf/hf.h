// HuggingFace model directories (formats.md §11): config.json, weights in safetensors
// (model.safetensors or sharded with an index) or PyTorch .bin, tokenizer and generation files.
// The `safetensors` and `pytorch` engines are the same directory with the weights format fixed,
// and also accept a lone weights file.
#pragma once

#include "formats/engine.h"

namespace mc::hf {

namespace fs = std::filesystem;

const formats::Engine& hf_engine();
const formats::Engine& safetensors_engine();
const formats::Engine& pytorch_engine();

// Files carried through a conversion when present (tokenizer, generation, chat template).
std::span<const std::string_view> carried_files();

// Reads a directory (or a single weights file) into a Model without reading tensor data.
Result<Model> read_dir(const fs::path& path, const formats::ReadOptions& opt);
// Writes config.json, the weights (opt.weights_format) and carried files into `out` (a directory
// the caller created), or only the weights file when opt.single_file.
Result<formats::WriteResult> write_dir(const Model& m, const fs::path& out,
                                       const formats::WriteOptions& opt);
formats::ValidationReport validate_dir(const fs::path& path);

}  // namespace mc::hf
