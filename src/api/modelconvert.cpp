#include "api/modelconvert.h"

#include "converter/registry.h"

namespace mc::api {

namespace fs = std::filesystem;

std::string_view version() { return "0.1.0"; }

namespace {

// A local path for an input that may be a hub id.
Result<std::string> local_input(const std::string& input, const ToolOptions& tool) {
  std::error_code ec;
  if (fs::exists(input, ec)) return input;  // the common case needs no configuration
  const app::Config cfg = MC_TRY(app::Config::load());
  auto in = MC_TRY(app::resolve_input(input, cfg, tool.download_progress, tool.note));
  return in.path.string();
}

}  // namespace

Result<ConvertReport> convert(const ConvertRequest& req, const ToolOptions& tool) {
  if (req.input.empty()) return make_error(ErrorCode::InvalidArgument, "no input given");
  if (req.write.dtype && !dtype_info(*req.write.dtype).is_float) {
    return make_error(ErrorCode::InvalidArgument, "--dtype must be a float type, got {}",
                      dtype_name(*req.write.dtype))
        .with_hint("use fp32, fp16 or bf16");
  }
  const app::Config cfg = MC_TRY(app::Config::load());
  app::RunOptions ro;
  ro.config = &cfg;
  ro.threads_given = tool.threads_given;
  ro.preset = tool.preset;
  ro.model_type = tool.model_type;
  ro.download_progress = tool.download_progress;
  ro.note = tool.note;
  return app::convert(req, ro);
}

Result<ojson> inspect(const std::string& path, const std::string& input_format, const ToolOptions& tool) {
  return converter::inspect(MC_TRY(local_input(path, tool)), input_format);
}

Result<formats::ValidationReport> validate(const std::string& path, const std::string& input_format,
                                           const ToolOptions& tool) {
  return converter::validate(MC_TRY(local_input(path, tool)), input_format);
}

Result<converter::CheckReport> check(converter::CheckRequest req, const ToolOptions& tool) {
  req.model = MC_TRY(local_input(req.model.string(), tool));
  if (req.compare) req.compare = MC_TRY(local_input(req.compare->string(), tool));
  if (!tool.threads_given && req.threads == 0) {
    const app::Config cfg = MC_TRY(app::Config::load());
    req.threads = size_t(cfg.count("threads"));
  }
  return converter::check(req);
}

Result<app::BatchReport> batch(app::BatchOptions opt) {
  const app::Config cfg = MC_TRY(app::Config::load());
  if (!opt.config) opt.config = &cfg;
  return app::run_batch(opt);
}

Result<app::HistoryList> history(size_t limit) { return app::read_history(limit); }

Result<app::Config> load_config() { return app::Config::load(); }

Status config_set(const std::string& key, const std::string& value) { return app::config_set(key, value); }

Status config_unset(const std::string& key) { return app::config_unset(key); }

Result<Tokenized> tokenize(const std::string& path, const std::string& text, bool add_special) {
  auto tk = MC_TRY(converter::tokenizer_from_path(MC_TRY(local_input(path, {}))));
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
    if (e.write && e.caps.quant.empty() && e.caps.quant_config) {  // settings only (mtk)
      rows.push_back({"(--quant-config)", std::string(e.id), std::string(e.caps.quant_help)});
      continue;
    }
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
