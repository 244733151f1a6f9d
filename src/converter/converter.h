// The conversion pipeline: detect -> read -> transforms -> write (to a temporary sibling) ->
// validate -> rename into place. Formats are reached only through the engine table.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "core/model.h"
#include "formats/engine.h"

namespace mc::converter {

namespace fs = std::filesystem;

struct ConvertRequest {
  fs::path input;
  std::string output_format;             // engine id or alias ("hf2megatron")
  std::optional<fs::path> output;        // -o; derived from input + format when absent
  std::string input_format = "auto";     // --from
  std::optional<DType> dtype;            // --dtype
  std::string model_type = "auto";       // --model-type
  size_t threads = 0;                    // 0 = all cores
  bool force = false;
  bool quiet = false;
  bool dry_run = false;                  // plan only: print what would be written
  uint64_t max_shard_bytes = 5'000'000'000;
  std::string weights_format;            // hf: safetensors | bin
  std::string quant;                     // --quant
  ojson quant_config;                    // --quant-config
  bool fake_weight = false;
  std::optional<fs::path> fake_weight_config;  // shapes (JSON or YAML)
  std::string fake_weight_init = "zeros";      // zeros | random
  uint64_t seed = 0;
  bool mup2llama = false;
  std::optional<fs::path> tokenizer;     // --tokenizer
  std::optional<int64_t> vocab_size;     // --vocab-size (unpadded vocabulary when reading)
  int tp = 1, pp = 1;                    // --tp/--pp (Megatron output)
  std::string naming;                    // --megatron-format legacy | mcore
  uint64_t chunk_bytes = uint64_t(8) << 20;
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct ConvertReport {
  fs::path output;
  std::string input_format, output_format;
  std::vector<std::string> files;
  uint64_t tensor_bytes = 0;
  uint64_t tensors = 0;
  double seconds = 0;
  bool dry_run = false;
  formats::ValidationReport validation;
  ojson info = ojson::object();
  ojson to_json() const;
};

// Derives the output path when -o is absent (next to the input).
fs::path default_output_path(const fs::path& input, const formats::Engine& to, const std::string& quant);

// Reads an input (any detected or named format; a config.json alone gives a weightless model
// that --fake-weight fills).
Result<Model> read_input(const fs::path& input, const std::string& input_format,
                         const formats::ReadOptions& opt, const formats::Engine** engine_out = nullptr);

Result<ConvertReport> convert(const ConvertRequest& req);

// Headers only: format, architecture, dtypes, parameters, shards, tokenizer files, targets.
Result<ojson> inspect(const fs::path& input, const std::string& input_format = "auto");

// Static validation by the engine of the detected (or named) format.
Result<formats::ValidationReport> validate(const fs::path& input, const std::string& input_format = "auto");

}  // namespace mc::converter
