// The ONNX format engine (formats.md §5): export of the runtime's decoder graph with a KV cache as
// the directory Transformers.js and onnxruntime load, and reading ONNX models back into HF-named
// weights. Output layout:
//   config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
//   special_tokens_map.json (+ other tokenizer files carried from the source)
//   onnx/model.onnx        (fp32; model_fp16.onnx for --dtype fp16, Transformers.js' names)
//   onnx/model.onnx_data   external weights (past 2 GB, or when asked), 4096-aligned offsets
#pragma once

#include <filesystem>
#include <optional>

#include "formats/engine.h"
#include "formats/onnx/model_proto.h"
#include "io/mapped_file.h"

namespace mc::onnx {

namespace fs = std::filesystem;

const formats::Engine& engine();
formats::Confidence detect(const fs::path& path);

// A serialized ModelProto may not exceed 2 GiB - 1 (protobuf's limit); past it weights go to
// external data.
inline constexpr uint64_t kProtoLimit = 2147483647;
inline constexpr uint64_t kExternalAlign = 4096;

// The .onnx file a path names: the file itself, or in a directory onnx/model.onnx, model.onnx,
// onnx/model_fp16.onnx, model_fp16.onnx, else the only .onnx file of onnx/ or of the directory.
Result<fs::path> find_model_file(const fs::path& path);

// A decoded model with its file mapped.
struct OpenModel {
  fs::path path;
  io::MappedFilePtr file;
  ModelIn model;
};
Result<OpenModel> open_model(const fs::path& onnx_file);
// Every initializer as a lazy tensor under its ONNX name, sizes and external data bounds checked.
Result<TensorStore> initializer_tensors(const OpenModel& om);

// Engine entry points (reader.cpp, writer.cpp, validate.cpp).
Result<Model> read_model(const fs::path& path, const formats::ReadOptions& opt);
Result<formats::WriteResult> write_dir(const Model& m, const fs::path& out, const formats::WriteOptions& opt);
formats::ValidationReport validate(const fs::path& path);
Result<ojson> describe(const fs::path& path, const formats::ReadOptions& opt);

}  // namespace mc::onnx
