// The public entry points of modelconvert (architecture.md "api/"). The CLI calls these and
// nothing else. Each says what it costs.
#pragma once

#include <string>
#include <vector>

#include "converter/check.h"
#include "converter/converter.h"

namespace mc::api {

using converter::ConvertReport;
using converter::ConvertRequest;

std::string_view version();  // "0.1.0"

// Reads, transforms, writes to a temporary sibling, validates, renames into place.
Result<ConvertReport> convert(const ConvertRequest& req);
// Headers only; never reads tensor data.
Result<ojson> inspect(const std::string& path, const std::string& input_format = "auto");
// Static checks of a file or directory; reports every problem found.
Result<formats::ValidationReport> validate(const std::string& path, const std::string& input_format = "auto");

// Runs the model in the reference runtime (and its source with --compare). Reads the weights.
Result<converter::CheckReport> check(const converter::CheckRequest& req);
// Token ids and pieces of `text` with the tokenizer of `path` (model, tokenizer.json/.model).
struct Tokenized {
  std::vector<int32_t> ids;
  std::vector<std::string> pieces;
};
Result<Tokenized> tokenize(const std::string& path, const std::string& text, bool add_special);

struct FormatRow {
  std::string id, description;
  bool readable, writable, validates;
};
std::vector<FormatRow> list_formats();
// One row per writer that takes --quant (from the engines' WriteCaps), plus the --dtype casts.
struct QuantRow {
  std::string name, formats, description;
};
std::vector<QuantRow> list_quantizations();

// One row per model family (from the arch table) with what each format does with it.
struct ArchitectureRow {
  std::string model_type, hf_architecture, gguf_arch;
  struct FormatSupport {
    std::string format;
    bool read = false, write = false;
    std::vector<std::string> quantizations;  // --quant names the writer takes
  };
  std::vector<FormatSupport> formats;
};
std::vector<ArchitectureRow> list_architectures();

// Error -> JSON object (for --json output).
ojson error_json(const Error& e);

}  // namespace mc::api
