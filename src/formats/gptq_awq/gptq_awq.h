// GPTQ and AWQ engines (docs/gptq_awq.md): HF directories whose Linear layers are stored as
// GPTQ (AutoGPTQ / GPTQModel, read by transformers and vLLM) or AWQ GEMM (AutoAWQ) integer
// groups. Both are one folder because they share everything but the quantizer and the packing:
// the calibration text, the layer-by-layer driver over the reference runtime, the directory
// writer (config.json with quantization_config, safetensors, tokenizer files) and the reader
// that dequantizes on read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "formats/engine.h"

namespace mc::gptq_awq {

namespace fs = std::filesystem;

enum class Method : uint8_t { Gptq, Awq };
std::string_view method_name(Method m);  // "gptq" | "awq"

const formats::Engine& gptq_engine();
const formats::Engine& awq_engine();

// What --quant / --quant-config / the calibration flags ask for, checked.
struct QuantSpec {
  Method method = Method::Gptq;
  int bits = 4;
  int64_t group_size = 128;  // -1: one group per row (GPTQ only)
  // GPTQ
  bool sym = true;
  bool desc_act = false;
  bool static_groups = false;
  double damp_percent = 0.01;
  std::string checkpoint_format = "gptq";  // "gptq" (v1: zero - 1 stored) | "gptq_v2"
  // AWQ
  int n_grid = 20;
  bool duo_scaling = true;
  bool clip = true;
  // Calibration
  int64_t samples = 64;
  int64_t seq_len = 256;
};
Result<QuantSpec> parse_spec(Method m, const formats::WriteOptions& opt);

// Calibration token sequences (calibration.cpp): the built-in public-domain corpus or
// --calibration FILE (text, or JSONL lines {"text": ...}), tokenized with the model's own
// tokenizer, cut into `samples` windows of `seq_len` tokens at evenly spaced offsets (a BOS
// first when the tokenizer adds one).
struct Calibration {
  std::vector<std::vector<int32_t>> seqs;
  std::string source;           // file path or "built-in corpus"
  int64_t available_tokens = 0;  // tokens the text gave
};
Result<Calibration> load_calibration(const formats::WriteOptions& opt, const QuantSpec& spec);
// The corpus shipped in the program (generated from corpus/calibration.txt at build time).
std::string_view builtin_corpus();
// Splits JSONL ({"text": ...} per line) or plain text into documents (blank-line paragraphs).
Result<std::vector<std::string>> split_documents(std::string_view text, const std::string& label);

// The engines' entry points.
Result<formats::WriteResult> write_dir(Method m, const Model& model, const fs::path& out,
                                       const formats::WriteOptions& opt);
Result<Model> read_dir(const fs::path& path, const formats::ReadOptions& opt);
formats::ValidationReport validate_dir(const fs::path& path);
Result<ojson> describe_dir(const fs::path& path, const formats::ReadOptions& opt);
formats::Confidence detect(Method m, const fs::path& path);

}  // namespace mc::gptq_awq
