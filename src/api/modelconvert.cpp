#include "api/modelconvert.h"

#include "converter/registry.h"

namespace mc::api {

std::string_view version() { return "0.1.0"; }

Result<ConvertReport> convert(const ConvertRequest& req) {
  if (req.input.empty()) return make_error(ErrorCode::InvalidArgument, "no input given");
  if (req.output_format.empty()) return make_error(ErrorCode::InvalidArgument, "no output format given");
  if (req.write.dtype && !dtype_info(*req.write.dtype).is_float) {
    return make_error(ErrorCode::InvalidArgument, "--dtype must be a float type, got {}",
                      dtype_name(*req.write.dtype))
        .with_hint("use fp32, fp16 or bf16");
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
  std::vector<QuantRow> rows;
  std::string casts;
  for (const auto& e : formats::engines())
    if (e.write && e.caps.dtype) casts += (casts.empty() ? "" : " ") + std::string(e.id);
  rows.push_back({"fp32 fp16 bf16", casts, "--dtype: float cast, bit-exact with torch's .to(dtype)"});
  for (const auto& e : formats::engines()) {
    if (!e.write || e.caps.quant.empty()) continue;
    std::string names;
    for (auto n : e.caps.quant) names += (names.empty() ? "" : " ") + std::string(n);
    rows.push_back({names, std::string(e.id),
                    std::string("--quant") + (e.caps.quant_config ? " / --quant-config JSON" : "") + ": " +
                        std::string(e.caps.quant_help)});
  }
  return rows;
}

std::vector<ArchitectureRow> list_architectures() {
  std::vector<ArchitectureRow> rows;
  for (const auto& f : arch::families()) {
    ArchitectureRow r{std::string(f.model_type), std::string(f.hf_architecture), std::string(f.gguf_arch), {}};
    for (const auto& e : formats::engines()) {
      if (!e.read && !e.write) continue;
      const bool takes = !e.takes_family || e.takes_family(f);
      ArchitectureRow::FormatSupport s{std::string(e.id), e.read && takes, e.write && takes, {}};
      if (s.write)
        for (auto n : e.caps.quant) s.quantizations.emplace_back(n);
      r.formats.push_back(std::move(s));
    }
    rows.push_back(std::move(r));
  }
  return rows;
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
