// The installed interface (library.h) over the tool's own entry points (modelconvert.h): option
// names as the command line spells them, Result errors thrown as Failure.
#include "api/library.h"

#include <algorithm>
#include <charconv>

#include "api/modelconvert.h"
#include "app/units.h"
#include "io/output.h"

namespace mc::api {

namespace {

[[noreturn]] void fail(const Error& e) {
  throw Failure(exit_code_for(e.code), std::string(error_code_name(e.code)), e.render());
}

template <class T>
T take(Result<T> r) {
  if (!r) fail(r.error());
  return std::move(*r);
}

[[noreturn]] void bad(const std::string& msg) { fail(make_error(ErrorCode::InvalidArgument, "{}", msg)); }

// "--max_shard-size" -> "max-shard-size"
std::string key_name(std::string k) {
  k.erase(0, k.find_first_not_of('-'));
  std::replace(k.begin(), k.end(), '_', '-');
  return k;
}

bool flag(const std::string& k, const std::string& v) {
  if (v.empty() || v == "1" || v == "true" || v == "True" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "False" || v == "no" || v == "off") return false;
  bad("option '" + k + "' takes true or false, got '" + v + "'");
}

int64_t number(const std::string& k, const std::string& v) {
  int64_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size()) bad("option '" + k + "' takes a number, got '" + v + "'");
  return n;
}

}  // namespace

std::string library_version() { return std::string(version()); }

ConvertResult convert(const ConvertOptions& opt) {
  ConvertRequest req;
  ToolOptions tool;
  req.input = opt.input;
  req.output_format = opt.output_format;
  std::string output = opt.output, dtype = opt.dtype;
  req.write.quant = opt.quant;
  for (const auto& [raw, v] : opt.options) {
    const std::string k = key_name(raw);
    if (k == "output" || k == "o") output = v;
    else if (k == "quant") req.write.quant = v;
    else if (k == "dtype") dtype = v;
    else if (k == "from" || k == "input-format") req.input_format = v;
    else if (k == "model-type") tool.model_type = v;
    else if (k == "threads") {
      req.threads = size_t(std::max<int64_t>(0, number(k, v)));
      tool.threads_given = true;
    } else if (k == "preset") tool.preset = v;
    else if (k == "max-shard-size") {
      auto s = app::parse_size(v);
      if (!s || *s == 0) bad("cannot read --max-shard-size '" + v + "'");
      req.write.max_shard_bytes = *s;
    } else if (k == "weights-format") req.write.weights_format = v;
    else if (k == "quant-config" || k == "quantization-config") {
      req.write.quant_config = ojson::parse(v, nullptr, false);
      if (req.write.quant_config.is_discarded()) bad("--quant-config is not valid JSON");
    } else if (k == "fake-weight") req.fake_weight = flag(k, v);
    else if (k == "fake-weight-config") req.fake_weight_config = v;
    else if (k == "fake-weight-init") req.fake_weight_init = v;
    else if (k == "seed") req.seed = uint64_t(number(k, v));
    else if (k == "mup2llama") req.mup2llama = flag(k, v);
    else if (k == "tokenizer") req.tokenizer = v;
    else if (k == "vocab-size") req.vocab_size = number(k, v);
    else if (k == "calibration") req.write.calibration = v;
    else if (k == "calibration-samples") req.write.calibration_samples = number(k, v);
    else if (k == "seq-len") req.write.seq_len = number(k, v);
    else if (k == "tp") req.write.tensor_parallel = int(number(k, v));
    else if (k == "pp") req.write.pipeline_parallel = int(number(k, v));
    else if (k == "megatron-format") req.write.naming = v;
    else if (k == "force") req.force = flag(k, v);
    else if (k == "dry-run") req.dry_run = flag(k, v);
    else if (k == "quiet") req.write.quiet = flag(k, v);
    else if (k == "sync") io::set_sync_on_close(flag(k, v));
    else bad("convert has no option '" + raw + "'");
  }
  if (req.output_format.empty() && tool.preset.empty()) bad("convert needs an output format or a preset");
  if (!output.empty()) req.output = output;
  if (!dtype.empty()) {
    auto d = dtype_from_name(dtype);
    if (!d) fail(make_error(ErrorCode::InvalidArgument, "unknown --dtype '{}'", dtype).with_hint("use fp32, fp16 or bf16"));
    req.write.dtype = d;
  }
  const ConvertReport r = take(api::convert(req, tool));
  ConvertResult out;
  out.output = r.output.string();
  out.input_format = r.input_format;
  out.output_format = r.output_format;
  out.files = r.files;
  out.tensors = r.tensors;
  out.tensor_bytes = r.tensor_bytes;
  out.seconds = r.seconds;
  out.json = r.to_json().dump(-1, ' ', false, ojson::error_handler_t::replace);
  return out;
}

std::string inspect_json(const std::string& path, const std::string& input_format) {
  return take(api::inspect(path, input_format)).dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string validate_json(const std::string& path, const std::string& input_format) {
  const auto r = take(api::validate(path, input_format));
  ojson errs = ojson::array();
  for (const auto& e : r.errors) errs.push_back(error_json(e));
  return ojson{{"ok", r.ok()}, {"format", r.format}, {"errors", errs}, {"warnings", r.warnings}, {"info", r.info}}
      .dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string check_json(const std::string& model, const std::map<std::string, std::string>& options) {
  converter::CheckRequest req;
  req.model = model;
  ToolOptions tool;
  for (const auto& [raw, v] : options) {
    const std::string k = key_name(raw);
    if (k == "compare") req.compare = v;
    else if (k == "prompt") req.prompt = v;
    else if (k == "ids") {
      size_t i = 0;
      while (i <= v.size()) {
        const size_t j = std::min(v.find(',', i), v.size());
        req.ids.push_back(int32_t(number(k, v.substr(i, j - i))));
        i = j + 1;
      }
    } else if (k == "max-new-tokens") req.max_new_tokens = number(k, v);
    else if (k == "threads") {
      req.threads = size_t(std::max<int64_t>(0, number(k, v)));
      tool.threads_given = true;
    } else if (k == "dump-logits") req.dump_logits = v;
    else bad("check has no option '" + raw + "'");
  }
  return take(api::check(std::move(req), tool)).to_json().dump(-1, ' ', false, ojson::error_handler_t::replace);
}

}  // namespace mc::api
