// The GGUF format engine (formats/engine.h): detect by magic, read -> HF-form Model, write a
// Model as a GGUF file (f32/f16/bf16 or a llama-quantize file type), validate a file.
#pragma once

#include "formats/engine.h"

namespace mc::gguf {

const formats::Engine& engine();

formats::Confidence detect(const std::filesystem::path& path);
Result<Model> read_model(const std::filesystem::path& path, const formats::ReadOptions& opt);
// WriteOptions.quant names the file type ("f16" when empty, or WriteOptions.dtype's f32/bf16).
Result<formats::WriteResult> write_model(const Model& m, const std::filesystem::path& out,
                                         const formats::WriteOptions& opt);
formats::ValidationReport validate_file(const std::filesystem::path& path);

}  // namespace mc::gguf
