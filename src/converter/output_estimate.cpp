// Planned output size per tensor (see output_estimate.h). Per engine:
//   gguf   --quant <ftype>: 2-D weights at the ftype's default type, plus 2 bits per weight for
//          llama-quantize's mixture below 8 bits (q6_k/q8_0 for attn_v, ffn_down, output), never
//          more than the source; f32/f16/bf16 ftypes: that float size; 1-D tensors always f32.
//   mlx / gptq / awq --quant <N bits>: 2-D weights at N bits + 1 (per-group scales and biases or
//          zeros; group size >= 32); gptq/awq keep embeddings and lm_head in float.
//   onnx   floats at --dtype, fp32 by default (its export's type).
//   others --dtype when given, otherwise the source size.
#include "converter/output_estimate.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

#include "quant/ggml.h"

namespace mc::converter {

namespace {

// The first number in a --quant name or the bits of --quant-config: "4bit", "q4_k_m", "q8_0" -> 4, 4, 8.
std::optional<double> quant_bits(const formats::WriteOptions& opt) {
  if (opt.quant_config.is_object()) {
    const auto it = opt.quant_config.find("bits");
    if (it != opt.quant_config.end() && it->is_number_integer()) return double(it->get<int64_t>());
  }
  const auto& q = opt.quant;
  const auto d = std::find_if(q.begin(), q.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (d == q.end()) return std::nullopt;
  int bits = 0;
  for (auto i = d; i != q.end() && std::isdigit(static_cast<unsigned char>(*i)) && bits < 100; ++i) bits = bits * 10 + (*i - '0');
  if (bits <= 0 || bits > 16) return std::nullopt;
  return double(bits);
}

double bits_per_weight(DType t) {
  const auto& i = dtype_info(t);
  return 8.0 * double(i.block_bytes) / double(std::max<uint32_t>(i.block_elems, 1));
}

bool is_float_type(DType t) { return dtype_info(t).is_float; }

}  // namespace

uint64_t planned_output_bytes(const Model& model, std::string_view engine_id, const formats::WriteOptions& opt) {
  const bool gguf = engine_id == "gguf";
  const bool group_quant = engine_id == "mlx" || engine_id == "gptq" || engine_id == "awq";
  std::optional<double> float_bits;  // bits of float tensors in the output; nullopt: as the source
  if (opt.dtype) float_bits = bits_per_weight(*opt.dtype);
  else if (engine_id == "onnx") float_bits = 32;
  // Bits per weight of the quantized 2-D tensors; nullopt: not quantized.
  std::optional<double> quant_bpw;
  if (gguf && !opt.quant.empty()) {
    if (auto ft = quant::file_type_from_name(opt.quant)) {
      const DType d = quant::file_type_default_type(*ft);
      // Below 8 bits llama-quantize raises some tensors (q6_k, q8_0); q8_0 files stay at q8_0.
      if (is_quantized(d)) quant_bpw = bits_per_weight(d) + (bits_per_weight(d) < 8 ? 2.0 : 0.0);
      else float_bits = bits_per_weight(d);
    }
  } else if (group_quant && (!opt.quant.empty() || opt.quant_config.is_object())) {
    if (auto b = quant_bits(opt)) quant_bpw = *b + 1.0;
  }
  double total = 0;
  for (const auto& e : model.tensors) {
    const double n = double(e.numel());
    const double src = bits_per_weight(e.dtype);
    double bits = src;
    if (is_float_type(e.dtype) && float_bits) bits = *float_bits;
    const bool matrix = e.shape.size() >= 2;
    const bool float_kept = (engine_id == "gptq" || engine_id == "awq") &&
                            (e.name.find("embed") != std::string::npos || e.name.starts_with("lm_head"));
    if (matrix && quant_bpw && !float_kept && (is_float_type(e.dtype) || is_quantized(e.dtype)))
      bits = std::min(src, *quant_bpw);
    if (gguf && !matrix && is_float_type(e.dtype)) bits = 32;
    total += n * bits / 8.0;
  }
  return uint64_t(total) + 1;
}

}  // namespace mc::converter
