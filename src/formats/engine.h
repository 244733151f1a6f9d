// The format engine contract (architecture.md "Engines"): detect, read -> Model, write(Model),
// validate. Engines are registered in one table (formats/registry.cpp); the converter only sees
// formats through it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/thread_pool.h"

namespace mc::formats {

namespace fs = std::filesystem;

enum class Confidence : uint8_t { No = 0, Maybe = 1, Likely = 2, Certain = 3 };

struct ReadOptions {
  std::string model_type = "auto";   // --model-type
  std::optional<fs::path> tokenizer;  // --tokenizer (attach a tokenizer file/dir)
  std::optional<int64_t> vocab_size;  // --vocab-size (true vocabulary of a padded checkpoint)
};

struct WriteOptions {
  ThreadPool* pool = nullptr;               // never null when a writer is called
  uint64_t max_shard_bytes = 5'000'000'000; // HF default 5 GB
  bool single_file = false;                 // -o x.safetensors: only the weights file
  std::string weights_format = "safetensors";  // hf: safetensors | bin
  std::string quant;                        // format-specific quantization name ("" = none)
  ojson quant_config;                       // format-specific extra settings
  std::optional<DType> dtype;               // target float dtype if the format needs one
  uint64_t chunk_bytes = uint64_t(8) << 20; // streaming chunk (memory in flight = threads x this)
  bool quiet = false;
  // Parallel layouts (Megatron): tensor- and pipeline-parallel sizes and the naming style
  // ("legacy" | "mcore"; "" = the engine's default).
  int tensor_parallel = 1;
  int pipeline_parallel = 1;
  std::string naming;
};

struct WriteResult {
  std::vector<std::string> files;  // relative to the output path
  uint64_t tensor_bytes = 0;
  ojson info = ojson::object();    // engine-specific facts for --json
};

struct ValidationReport {
  std::string format;
  std::vector<Error> errors;
  std::vector<std::string> warnings;
  ojson info = ojson::object();
  bool ok() const { return errors.empty(); }
};

struct Engine {
  std::string_view id;           // "hf", "safetensors", "gguf", ...
  std::string_view description;  // one line for `list formats`
  // Looks at the path (file or directory) and says how sure it is; never errors.
  Confidence (*detect)(const fs::path& path) = nullptr;
  // Maps the input into a Model without reading tensor data; nullptr if not readable (yet).
  Result<Model> (*read)(const fs::path& path, const ReadOptions& opt) = nullptr;
  // Writes `model` to `out` (a fresh temporary path the converter renames into place);
  // nullptr if not writable (yet). `out_is_dir` tells the converter what to create.
  Result<WriteResult> (*write)(const Model& model, const fs::path& out, const WriteOptions& opt) = nullptr;
  bool out_is_dir = true;
  // Static validation of a written output; nullptr if none.
  ValidationReport (*validate)(const fs::path& path) = nullptr;
  // Format-specific facts for `inspect` (layout, parallelism, iteration, ...); nullptr if none.
  Result<ojson> (*describe)(const fs::path& path, const ReadOptions& opt) = nullptr;
};

}  // namespace mc::formats
