#include "api/modelconvert.h"

#include "formats/registry.h"

namespace mc::api {

std::string_view version() { return "0.1.0"; }

Result<ConvertReport> convert(const ConvertRequest& req) {
  if (req.input.empty()) return make_error(ErrorCode::InvalidArgument, "no input given");
  if (req.output_format.empty()) return make_error(ErrorCode::InvalidArgument, "no output format given");
  if (req.dtype && !dtype_info(*req.dtype).is_float) {
    Error e = make_error(ErrorCode::InvalidArgument, "--dtype must be a float type, got {}", dtype_name(*req.dtype));
    e.hint = "use fp32, fp16 or bf16";
    return e;
  }
  return converter::convert(req);
}

Result<ojson> inspect(const std::string& path, const std::string& input_format) {
  return converter::inspect(path, input_format);
}

Result<formats::ValidationReport> validate(const std::string& path, const std::string& input_format) {
  return converter::validate(path, input_format);
}

Result<converter::CheckReport> check(const converter::CheckRequest& req) { return converter::check(req); }

Result<Tokenized> tokenize(const std::string& path, const std::string& text, bool add_special) {
  auto tk = MC_TRY(converter::tokenizer_from_path(path));
  Tokenized t;
  t.ids = tk.encode(text, add_special);
  for (int32_t id : t.ids) t.pieces.push_back(tk.piece(id));
  return t;
}

std::vector<FormatRow> list_formats() {
  std::vector<FormatRow> rows;
  for (const auto& e : formats::engines())
    rows.push_back({std::string(e.id), std::string(e.description), e.read != nullptr, e.write != nullptr,
                    e.validate != nullptr});
  return rows;
}

std::vector<QuantRow> list_quantizations() {
  return {
      {"fp32 / fp16 / bf16", "all", "--dtype: float cast, bit-exact with torch's .to(dtype)"},
      {"f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1", "gguf", "--quant: ggml block types, llama-quantize's bytes"},
      {"q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k", "gguf",
       "--quant: k-quant file types with llama-quantize's per-tensor mixtures"},
      {"2bit 3bit 4bit 5bit 6bit 8bit (q4_k_m q5_k_m q8_0 = 4/5/8 bit)", "mlx",
       "--quant / --quant-config '{\"bits\":B,\"group_size\":32|64|128}': MLX affine groups, mlx-lm layout"},
  };
}

ojson error_json(const Error& e) {
  ojson j = ojson::object();
  j["code"] = std::string(error_code_name(e.code));
  j["exit_code"] = exit_code_for(e.code);
  j["message"] = e.message;
  if (!e.path.empty()) j["path"] = e.path;
  if (!e.tensor.empty()) j["tensor"] = e.tensor;
  if (e.offset) j["offset"] = *e.offset;
  if (!e.hint.empty()) j["hint"] = e.hint;
  j["text"] = e.render();
  return j;
}

}  // namespace mc::api
