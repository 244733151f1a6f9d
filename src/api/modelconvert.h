// The public entry points of modelconvert (architecture.md "api/"). The CLI calls these and
// nothing else. Each says what it costs.
#pragma once

#include <string>
#include <vector>

#include "app/batch.h"
#include "app/config.h"
#include "app/history.h"
#include "app/run.h"
#include "converter/check.h"
#include "converter/converter.h"

namespace mc::api {

using converter::ConvertReport;
using converter::ConvertRequest;

std::string_view version();  // "0.1.0"

// What the tool adds around one request: hub-id inputs (downloads), notices, presets and
// --model-type as given. Every input below may be a hub id ("org/name", "hf:org/name").
struct ToolOptions {
  ProgressFn download_progress;                   // hub downloads (may be empty)
  std::function<void(const std::string&)> note;   // one-line notices (may be empty)
  bool threads_given = false;                     // --threads given (else the config's)
  std::string preset;                             // convert --preset
  std::string model_type = "auto";                // convert --model-type (family, task or auto)
};

// Reads, transforms, writes to a temporary sibling, validates, renames into place; appends a
// record to the history.
Result<ConvertReport> convert(const ConvertRequest& req, const ToolOptions& tool = {});
// Headers only; never reads tensor data.
Result<ojson> inspect(const std::string& path, const std::string& input_format = "auto", const ToolOptions& tool = {});
// Static checks of a file or directory; reports every problem found.
Result<formats::ValidationReport> validate(const std::string& path, const std::string& input_format = "auto",
                                           const ToolOptions& tool = {});

// Runs the model in the reference runtime (and its source with --compare). Reads the weights.
Result<converter::CheckReport> check(converter::CheckRequest req, const ToolOptions& tool = {});

// Runs a job file (app/batch.h); errors only for the batch as a whole.
Result<app::BatchReport> batch(app::BatchOptions opt);
// The newest `limit` conversions (0: all).
Result<app::HistoryList> history(size_t limit);
// The configuration (file + environment), and changes to the file.
Result<app::Config> load_config();
Status config_set(const std::string& key, const std::string& value);
Status config_unset(const std::string& key);
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
