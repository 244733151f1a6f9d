// A conversion as the tool runs it, around the converter: the preset and the configuration fill
// what the request leaves open, --model-type may name a task, a hub id is resolved to the hub
// cache (downloading what is missing), and the outcome is appended to the history.
#pragma once

#include <functional>
#include <string>

#include "app/config.h"
#include "converter/converter.h"

namespace mc::app {

struct RunOptions {
  const Config* config = nullptr;  // required
  bool threads_given = false;      // --threads was given (else the config's `threads`)
  std::string preset;              // --preset NAME ("" = none)
  std::string model_type = "auto";  // --model-type as given (family, task or auto)
  ProgressFn download_progress;    // hub downloads (may be empty)
  std::function<void(const std::string&)> note;  // one-line notices for the user (may be empty)
  std::string command = "convert";  // recorded in the history
  ojson history_extra = ojson::object();  // more fields for the history record (batch, task)
  bool quiet_toolkit = false;      // passed to writers as WriteOptions::quiet for their own output
};

// The request with the preset, --model-type and the configuration applied (no input
// resolution, no file touched). InvalidArgument on an unknown preset or model type.
Result<converter::ConvertRequest> prepare(converter::ConvertRequest req, const RunOptions& o);

// A local path, or a hub id resolved to the hub cache (downloading when allowed).
struct Input {
  fs::path path;
  bool from_hub = false;
  std::string hub_id;  // "hf:org/name[/file][@rev]"
  std::string commit;
  std::vector<std::string> downloaded;
  uint64_t downloaded_bytes = 0;
};
Result<Input> resolve_input(const std::string& input, const Config& config, const ProgressFn& progress,
                            const std::function<void(const std::string&)>& note);

// resolve_input + converter::convert for a prepared request (no history record). `used` gets the
// request as it ran (the input resolved, the default output of a hub input).
Result<converter::ConvertReport> convert_prepared(const converter::ConvertRequest& req, const RunOptions& o,
                                                  converter::ConvertRequest* used = nullptr);

// prepare + convert_prepared + a history record (also for failures).
Result<converter::ConvertReport> convert(converter::ConvertRequest req, const RunOptions& o);

// The history record of one conversion.
ojson history_record(const std::string& command, const converter::ConvertRequest& req, const std::string& input_text,
                     const Result<converter::ConvertReport>& result, double seconds, const ojson& extra);

}  // namespace mc::app
