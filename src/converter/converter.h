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
  std::string model_type = "auto";       // --model-type
  size_t threads = 0;                    // 0 = all cores
  bool force = false;
  bool dry_run = false;                  // plan only: print what would be written
  // The writer's options (--dtype, --quant, --quant-config, --max-shard-size, --weights-format,
  // --tp/--pp/--megatron-format, quiet, chunk size). `pool`, `single_file` and `progress` are
  // set by the converter.
  formats::WriteOptions write;
  bool fake_weight = false;
  std::optional<fs::path> fake_weight_config;  // shapes (JSON or YAML)
  std::string fake_weight_init = "zeros";      // zeros | random
  uint64_t seed = 0;
  bool mup2llama = false;
  std::optional<fs::path> tokenizer;     // --tokenizer
  std::optional<int64_t> vocab_size;     // --vocab-size (unpadded vocabulary when reading)
  ProgressFn progress;                   // bytes written so far / planned (may be empty)
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

// Refuses, before anything is read, an option the target engine does not take (InvalidArgument
// naming the option and the formats that take it).
Status check_write_options(const formats::WriteOptions& opt, const formats::Engine& to);

// Headers only: format, architecture, dtypes, parameters, shards, tokenizer files, targets.
Result<ojson> inspect(const fs::path& input, const std::string& input_format = "auto");

// Static validation by the engine of the detected (or named) format.
Result<formats::ValidationReport> validate(const fs::path& input, const std::string& input_format = "auto");

}  // namespace mc::converter
