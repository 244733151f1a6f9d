// The MLX format engine (formats.md §8): mlx-lm directories, float or affine-quantized.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "formats/engine.h"

namespace mc::mlx {

const formats::Engine& engine();

formats::Confidence detect(const std::filesystem::path& path);

// What --quant / --quant-config ask for. `alias_note` explains a seed name (q4_k_m, ...).
struct QuantSpec {
  int bits = 4;
  int group_size = 64;
  std::string alias_note;
};
// The --quant names parse_quant takes.
std::span<const std::string_view> quant_names();
// std::nullopt: no quantization (float copy). Errors are InvalidArgument with a hint.
Result<std::optional<QuantSpec>> parse_quant(const std::string& quant, const ojson& quant_config);

// Engine entry points (reader.cpp, writer.cpp).
Result<Model> read_dir(const std::filesystem::path& path, const formats::ReadOptions& opt);
Result<formats::WriteResult> write_dir(const Model& m, const std::filesystem::path& out,
                                       const formats::WriteOptions& opt);
formats::ValidationReport validate_dir(const std::filesystem::path& path);

}  // namespace mc::mlx
