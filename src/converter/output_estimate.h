// The disk space a conversion's output will take, planned from the target format and options
// (--quant, --dtype) per tensor instead of the input's size: a q8_0 GGUF or a 4-bit MLX output
// of a 16-bit model needs about a half or a quarter of the input. The estimate is meant to be an
// upper bound (free-space check before writing), not an exact figure.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/model.h"
#include "formats/engine.h"

namespace mc::converter {

// Bytes of tensor data the engine `engine_id` writes for `model` with `opt` (headers, config
// and tokenizer files are covered by the margin the output check adds).
uint64_t planned_output_bytes(const Model& model, std::string_view engine_id, const formats::WriteOptions& opt);

}  // namespace mc::converter
