// `check` and `tokenize`: load any readable model in the reference runtime, run it, and compare
// it with its source (architecture.md "can_infer").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "converter/converter.h"
#include "tokenizer/tokenizer.h"

namespace mc::converter {

struct CheckRequest {
  fs::path model;
  std::optional<fs::path> compare;  // source model to compare against
  std::optional<std::string> prompt;
  std::vector<int32_t> ids;         // used instead of the prompt when given
  int64_t max_new_tokens = 16;
  size_t threads = 0;
  std::optional<fs::path> dump_logits;
  ProgressFn progress;              // tokens run so far / planned (may be empty)
};

struct CheckReport {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> greedy_ids;
  std::string greedy_text;  // when a tokenizer is available
  std::vector<std::vector<float>> logits;
  bool compared = false;
  bool pass = true;
  std::string rule;         // the threshold rule that was applied
  ojson comparison = ojson::object();
  // Wall-clock seconds of the model under check: loading the runtime, the prompt pass, and the
  // generated_steps single-token steps after it ("timings" in to_json).
  double load_seconds = 0, prompt_seconds = 0, generate_seconds = 0;
  int64_t generated_steps = 0;
  ojson to_json() const;
};

// The tokenizer of a model: tokenizer.json, tokenizer.model or a GGUF vocabulary (through the
// files the reader attached), with tokenizer_config.json applied.
Result<tok::Tokenizer> tokenizer_for(const Model& m);
// A tokenizer from a path: a model (directory or file we read), tokenizer.json or tokenizer.model.
Result<tok::Tokenizer> tokenizer_from_path(const fs::path& p);

// Runs the model (and the source when comparing). A failed comparison is not an error: the
// report says pass=false and the CLI exits with CheckFailed's code.
Result<CheckReport> check(const CheckRequest& req);

}  // namespace mc::converter
