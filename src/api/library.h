// The installed C++ interface of modelconvert (<modelconvert/modelconvert.h>). It needs only the
// standard library: plain structs in, plain structs out, and a failure is thrown as
// mc::api::Failure carrying the command line's exit code (README "Exit codes"). Link with
// modelconvert::modelconvert (CMake) or `pkg-config --libs modelconvert`.
//
//   auto r = mc::api::convert({.input = "./my-llama", .output_format = "gguf", .output = "m.gguf", .quant = "q8_0"});
//
// Each call runs as the command of the same name does (history record, configuration, hub ids as
// inputs); nothing is printed.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace mc::api {

// What `modelconvert convert` takes. `options` holds every other option of the command by its
// long name, with or without the dashes and with '-' or '_' ("max_shard_size": "2GB",
// "tp": "2", "fake_weight": "true"); an unknown name fails with exit code 2.
struct ConvertOptions {
  std::string input;
  std::string output_format;
  std::string output;  // empty: derived from the input and the format
  std::string quant;   // --quant
  std::string dtype;   // --dtype fp32 | fp16 | bf16
  std::map<std::string, std::string> options;
};

struct ConvertResult {
  std::string output, input_format, output_format;
  std::vector<std::string> files;
  uint64_t tensors = 0, tensor_bytes = 0;
  double seconds = 0;
  std::string json;  // the document `convert --json` prints
};

class Failure : public std::runtime_error {
 public:
  Failure(int exit_code, std::string code, const std::string& text)
      : std::runtime_error(text), exit_code_(exit_code), code_(std::move(code)) {}
  int exit_code() const noexcept { return exit_code_; }  // what the command line exits with
  const std::string& code() const noexcept { return code_; }  // "not_found", "corrupt", ...

 private:
  int exit_code_;
  std::string code_;
};

ConvertResult convert(const ConvertOptions& opt);

// The JSON documents `inspect --json`, `validate --json` and `check --json` print. A model that
// fails validation is a result ("ok": false), not a Failure. check's `options` are the command's
// (compare, prompt, ids "1,2,3", max_new_tokens, threads, dump_logits).
std::string inspect_json(const std::string& path, const std::string& input_format = "auto");
std::string validate_json(const std::string& path, const std::string& input_format = "auto");
std::string check_json(const std::string& model, const std::map<std::string, std::string>& options = {});

std::string library_version();  // "0.1.0"

}  // namespace mc::api
