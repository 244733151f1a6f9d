#include "app/run.h"

#include <chrono>

#include "app/history.h"
#include "app/model_type.h"
#include "converter/registry.h"
#include "hub/hub.h"

namespace mc::app {

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Fills what the request leaves open from a preset.
Status apply_preset(converter::ConvertRequest& req, std::string& model_type, const Preset& p) {
  const ojson& f = p.fields;
  if (req.output_format.empty()) req.output_format = f["output_format"].get<std::string>();
  auto str = [&](const char* k) { return f.contains(k) && f[k].is_string() ? f[k].get<std::string>() : std::string(); };
  if (req.write.quant.empty()) req.write.quant = str("quantization");
  if ((req.write.quant_config.is_null() || (req.write.quant_config.is_object() && req.write.quant_config.empty())) &&
      f.contains("quantization_config")) {
    req.write.quant_config = f["quantization_config"];
    if (req.write.quant_config.is_string()) {
      req.write.quant_config = ojson::parse(req.write.quant_config.get<std::string>(), nullptr, false);
      if (req.write.quant_config.is_discarded())
        return make_error(ErrorCode::InvalidArgument, "preset '{}': quantization_config is not JSON", p.name);
    }
  }
  if (!req.write.dtype && !str("dtype").empty()) {
    auto d = dtype_from_name(str("dtype"));
    if (!d) return make_error(ErrorCode::InvalidArgument, "preset '{}': unknown dtype '{}'", p.name, str("dtype"));
    req.write.dtype = d;
  }
  if ((model_type.empty() || model_type == "auto") && !str("model_type").empty()) model_type = str("model_type");
  for (const char* k : {"tp", "pp"}) {
    if (!f.contains(k)) continue;
    if (!f[k].is_number_integer() || f[k].get<int64_t>() < 1 || f[k].get<int64_t>() > 512)
      return make_error(ErrorCode::InvalidArgument, "preset '{}': {} must be a whole number from 1 to 512", p.name, k);
    int& slot = std::string_view(k) == "tp" ? req.write.tensor_parallel : req.write.pipeline_parallel;
    if (slot == 1) slot = int(f[k].get<int64_t>());
  }
  return {};
}

}  // namespace

Result<converter::ConvertRequest> prepare(converter::ConvertRequest req, const RunOptions& o) {
  std::string model_type = o.model_type;
  if (!o.preset.empty()) MC_CHECK(apply_preset(req, model_type, MC_TRY(o.config->preset(o.preset))));
  if (req.output_format.empty())
    return make_error(ErrorCode::InvalidArgument, "no output format given")
        .with_hint("name one (see `modelconvert list formats`) or pass --preset NAME (see `modelconvert config list-presets`)");
  MC_CHECK(apply_model_type(req, model_type));
  if (!o.threads_given) req.threads = size_t(o.config->count("threads"));
  if (auto s = o.config->get("mtk_cloud_path"); s && !s->value.is_null())
    req.write.settings["mtk_cloud_path"] = {{"value", s->value}, {"source", s->source}};
  if (o.quiet_toolkit) req.write.quiet = true;
  return req;
}

Result<Input> resolve_input(const std::string& input, const Config& config, const ProgressFn& progress,
                            const std::function<void(const std::string&)>& note) {
  std::error_code ec;
  const bool exists = fs::exists(fs::path(input), ec);
  auto id = MC_TRY(hub::parse_hub_id(input, exists));
  Input in;
  if (!id) {
    in.path = input;
    return in;
  }
  hub::HubOptions ho = hub::options_from_env();
  ho.endpoint = config.text("hf_endpoint");
  ho.progress = progress;
  ho.note = note;
  auto r = hub::resolve(*id, ho);
  if (!r) {
    Error e = std::move(r).error();
    if (input.rfind("hf:", 0) != 0 && e.code == ErrorCode::NotFound)
      e.message += fmt::format(" (and there is no local path '{}')", input);
    return e;
  }
  in.path = r->path;
  in.from_hub = true;
  in.hub_id = id->text();
  in.commit = r->commit;
  in.downloaded = r->downloaded;
  in.downloaded_bytes = r->downloaded_bytes;
  return in;
}

ojson history_record(const std::string& command, const converter::ConvertRequest& req, const std::string& input_text,
                     const Result<converter::ConvertReport>& result, double seconds, const ojson& extra) {
  ojson opts = ojson::object();
  if (!req.write.quant.empty()) opts["quantization"] = req.write.quant;
  if (!req.write.quant_config.is_null() && !(req.write.quant_config.is_object() && req.write.quant_config.empty()))
    opts["quantization_config"] = req.write.quant_config;
  if (req.write.dtype) opts["dtype"] = std::string(dtype_name(*req.write.dtype));
  if (req.model_type != "auto") opts["model_type"] = req.model_type;
  if (!req.write.task.empty()) opts["task"] = req.write.task;
  if (req.fake_weight) opts["fake_weight"] = true;
  if (req.mup2llama) opts["mup2llama"] = true;
  if (req.write.max_shard_bytes) opts["max_shard_bytes"] = *req.write.max_shard_bytes;
  if (req.write.tensor_parallel != 1) opts["tp"] = req.write.tensor_parallel;
  if (req.write.pipeline_parallel != 1) opts["pp"] = req.write.pipeline_parallel;
  ojson r = {{"time", utc_now_iso8601()}, {"command", command}, {"input", input_text}};
  r["output"] = result ? result->output.string() : req.output ? req.output->string() : std::string();
  r["format"] = req.output_format;
  r["options"] = opts;
  r["status"] = result ? "ok" : "failed";
  r["seconds"] = seconds;
  if (result) {
    r["error"] = nullptr;
    if (result->info.contains("hub")) r["hub"] = result->info["hub"];
  } else {
    r["error"] = {{"code", std::string(error_code_name(result.error().code))},
                  {"exit_code", exit_code_for(result.error().code)},
                  {"message", result.error().render()}};
  }
  for (auto it = extra.begin(); it != extra.end(); ++it) r[it.key()] = it.value();
  return r;
}

Result<converter::ConvertReport> convert_prepared(const converter::ConvertRequest& req, const RunOptions& o,
                                                  converter::ConvertRequest* used_out) {
  converter::ConvertRequest used = req;
  const std::string input_text = req.input.string();
  auto run = [&]() -> Result<converter::ConvertReport> {
    const Input in = MC_TRY(resolve_input(input_text, *o.config, o.download_progress, o.note));
    if (in.from_hub) {
      used.input = in.path;
      // Never next to the input, which is inside the hub cache: in the current folder.
      if (!used.output) {
        if (const auto* to = formats::find_engine(used.output_format)) {
          const std::string base = in.path.filename() == in.commit ? hub::parse_hub_id(in.hub_id, false).value()->repo
                                                                   : in.path.stem().string();
          used.output = converter::default_output_path(fs::current_path() / fs::path(base).filename(), *to, used.write.quant);
        }
      }
    }
    auto rep = MC_TRY(converter::convert(used));
    if (in.from_hub)
      rep.info["hub"] = {{"id", in.hub_id}, {"commit", in.commit}, {"snapshot", in.path.string()},
                         {"downloaded", in.downloaded}, {"downloaded_bytes", in.downloaded_bytes}};
    return rep;
  };
  auto result = run();
  if (used_out) *used_out = used;
  return result;
}

Result<converter::ConvertReport> convert(converter::ConvertRequest req, const RunOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string input_text = req.input.string();
  converter::ConvertRequest used = req;
  auto prepared = prepare(std::move(req), o);
  Result<converter::ConvertReport> result = prepared ? convert_prepared(*prepared, o, &used)
                                                     : Result<converter::ConvertReport>(prepared.error());
  if (!used.dry_run && o.config->flag("history")) {
    used.input = input_text;
    if (auto h = append_history(history_record(o.command, used, input_text, result, since(t0), o.history_extra)); !h && o.note)
      o.note("warning: the conversion was not recorded: " + h.error().render());
  }
  return result;
}

}  // namespace mc::app
