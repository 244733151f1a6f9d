// The format engine contract (architecture.md "Engines"): detect, read -> Model, write(Model),
// validate, and what a writer takes. Engines live one folder each under src/formats/ and are
// registered in one table (converter/registry.cpp); the converter only sees formats through it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arch/families.h"
#include "core/model.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "tokenizer/vocab.h"

namespace mc::formats {

namespace fs = std::filesystem;

enum class Confidence : uint8_t { No = 0, Maybe = 1, Likely = 2, Certain = 3 };

struct ReadOptions {
  std::string model_type = "auto";   // --model-type
  std::optional<fs::path> tokenizer;  // --tokenizer (attach a tokenizer file/dir)
  std::optional<int64_t> vocab_size;  // --vocab-size (true vocabulary of a padded checkpoint)
};

// The writer options of a conversion (`convert`'s flags). The converter refuses, before reading
// any weights, an option that the target's WriteCaps do not list.
struct WriteOptions {
  ThreadPool* pool = nullptr;               // never null when a writer is called
  std::optional<uint64_t> max_shard_bytes;  // --max-shard-size (nullopt: the format's default)
  bool single_file = false;                 // -o x.safetensors: only the weights file
  std::string weights_format;               // hf: safetensors | bin ("" = the engine's default)
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
  Progress* progress = nullptr;             // tensor bytes written (may be null)
  // Calibrated quantizers (GPTQ, AWQ): --calibration FILE (text or JSONL {"text": ...}),
  // --calibration-samples, --seq-len (nullopt: the engine's default), the model's own tokenizer
  // (set by the converter for writers whose caps take calibration) and a sink for progress
  // events of steps other than writing (layers calibrated; may be empty).
  std::optional<std::filesystem::path> calibration;
  std::optional<int64_t> calibration_samples;
  std::optional<int64_t> seq_len;
  std::function<Result<std::vector<int32_t>>(std::string_view text, bool add_special)> tokenize;
  ProgressFn events;
  // --model-type when it names a task ("text-generation", "image-classification", ...) rather
  // than a family; a writer that runs a task-specific tool (MTK) reads it. "" = not given.
  std::string task;
  // Values of the user's configuration a writer may use, {key: {"value": ..., "source": "..."}}
  // (e.g. mtk_cloud_path and where it was set); filled above the converter, may be empty.
  ojson settings = ojson::object();
};

// What a writer takes besides the model. A flag the caps do not list is refused with exit 2,
// naming the option and the formats that take it.
struct WriteCaps {
  std::span<const std::string_view> quant;  // --quant names (lower case); empty: no --quant
  std::string_view quant_help;              // one line for `list quantizations`
  bool quant_config = false;                // --quant-config
  bool dtype = true;                        // --dtype
  bool shard_size = false;                  // --max-shard-size
  bool weights_format = false;              // --weights-format
  bool parallel = false;                    // --tp, --pp, --megatron-format
  bool calibration = false;                 // --calibration, --calibration-samples, --seq-len
  // -o NAME.<ext> with one of these writes a single file instead of a directory.
  std::span<const std::string_view> single_file_exts;
  // The writer hands an HF directory (Model::source_path) to an outside tool instead of
  // streaming tensors: the converter first stages a transformed or non-HF model as one.
  bool hf_dir_input = false;
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
  // Checks the format's own settings (quant_config, outside tools) before anything is read;
  // nullptr if the caps say all.
  Status (*check_options)(const WriteOptions& opt) = nullptr;
  // Format-specific facts for `inspect` (layout, parallelism, iteration, ...); nullptr if none.
  Result<ojson> (*describe)(const fs::path& path, const ReadOptions& opt) = nullptr;
  // What write() takes (see WriteCaps).
  WriteCaps caps;
  // Whether the engine reads and writes models of this family; nullptr: every family.
  bool (*takes_family)(const arch::FamilyInfo& family) = nullptr;
  // The tokenizer stored inside the file itself (GGUF's tokenizer.ggml.*), read without the
  // weights or the architecture; nullptr when the format keeps tokenizers in separate files.
  Result<tok::Vocab> (*embedded_vocab)(const fs::path& path) = nullptr;
};

}  // namespace mc::formats
