// Reading a batch job file (format in app/batch.h).
#include <algorithm>
#include <array>

#include "app/batch.h"
#include "app/units.h"
#include "app/yaml_json.h"

namespace mc::app {

namespace {

constexpr std::array<std::string_view, 4> kIgnoredSeedKeys = {"device", "use_large_calibration", "postprocess", "platform"};

struct Reader {
  const ojson& spec;
  std::string where;  // "task 3 (name)"
  std::vector<std::string> used;

  const ojson* find(std::initializer_list<const char*> names) {
    const ojson* hit = nullptr;
    for (const char* n : names) {
      used.emplace_back(n);
      if (spec.contains(n) && !spec[n].is_null()) hit = hit ? hit : &spec[n];
    }
    return hit;
  }
  Error bad(std::string_view key, std::string_view what) const {
    return make_error(ErrorCode::InvalidArgument, "{}: {} must be {}", where, key, what);
  }
  Result<std::string> str(std::initializer_list<const char*> names, bool required = false) {
    const ojson* v = find(names);
    if (!v) {
      if (required) return make_error(ErrorCode::InvalidArgument, "{}: {} is missing", where, *names.begin());
      return std::string();
    }
    if (!v->is_string() || v->get<std::string>().empty()) return bad(*names.begin(), "a non-empty string");
    return v->get<std::string>();
  }
  Result<bool> flag(const char* name) {
    const ojson* v = find({name});
    if (!v) return false;
    if (!v->is_boolean()) return bad(name, "true or false");
    return v->get<bool>();
  }
  Result<std::optional<int64_t>> integer(const char* name, int64_t lo, int64_t hi) {
    const ojson* v = find({name});
    if (!v) return std::optional<int64_t>();
    if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > hi)
      return bad(name, fmt::format("a whole number from {} to {}", lo, hi));
    return std::optional<int64_t>(v->get<int64_t>());
  }
};

Result<BatchTask> read_task(const ojson& spec, size_t index, const std::string& key_name) {
  BatchTask t;
  t.index = index;
  Reader r{spec, fmt::format("task {}", index + 1), {}};
  if (!spec.is_object()) return make_error(ErrorCode::InvalidArgument, "{}: a task must be a map of options", r.where);
  t.name = MC_TRY(r.str({"name"}));
  if (t.name.empty()) t.name = key_name.empty() ? fmt::format("task-{}", index + 1) : key_name;
  r.where = fmt::format("task {} ({})", index + 1, t.name);
  t.input = MC_TRY(r.str({"model_path", "input"}, true));
  t.req.input = t.input;
  t.preset = MC_TRY(r.str({"preset"}));
  t.req.output_format = MC_TRY(r.str({"output_format", "to"}, t.preset.empty()));
  if (auto o = MC_TRY(r.str({"output_path", "output"})); !o.empty()) t.req.output = o;
  if (auto m = MC_TRY(r.str({"model_type"})); !m.empty()) t.model_type = m;
  t.req.write.quant = MC_TRY(r.str({"quantization", "quant"}));
  if (const ojson* qc = r.find({"quantization_config", "quant_config"})) {
    if (qc->is_string()) {
      t.req.write.quant_config = ojson::parse(qc->get<std::string>(), nullptr, false);
      if (t.req.write.quant_config.is_discarded()) return r.bad("quantization_config", "a map or a JSON object");
    } else if (qc->is_object()) {
      t.req.write.quant_config = *qc;
    } else {
      return r.bad("quantization_config", "a map or a JSON object");
    }
  }
  if (auto d = MC_TRY(r.str({"dtype"})); !d.empty()) {
    auto dt = dtype_from_name(d);
    if (!dt) return r.bad("dtype", "fp32, fp16 or bf16");
    t.req.write.dtype = dt;
  }
  t.req.fake_weight = MC_TRY(r.flag("fake_weight"));
  t.req.mup2llama = MC_TRY(r.flag("mup2llama"));
  t.req.force = MC_TRY(r.flag("force"));
  if (auto f = MC_TRY(r.str({"fake_weight_config"})); !f.empty()) t.req.fake_weight_config = f;
  if (auto f = MC_TRY(r.str({"fake_weight_init"})); !f.empty()) t.req.fake_weight_init = f;
  if (auto s = MC_TRY(r.integer("seed", 0, INT64_MAX))) t.req.seed = uint64_t(*s);
  if (const ojson* s = r.find({"max_shard_size"})) {
    std::optional<uint64_t> bytes;
    if (s->is_number_unsigned() || (s->is_number_integer() && s->get<int64_t>() > 0)) bytes = s->get<uint64_t>();
    else if (s->is_string()) bytes = parse_size(s->get<std::string>());
    if (!bytes || *bytes == 0) return r.bad("max_shard_size", "a size like 2GB");
    t.req.write.max_shard_bytes = bytes;
  }
  t.req.write.weights_format = MC_TRY(r.str({"weights_format"}));
  if (auto tp = MC_TRY(r.integer("tp", 1, 512))) t.req.write.tensor_parallel = int(*tp);
  if (auto pp = MC_TRY(r.integer("pp", 1, 512))) t.req.write.pipeline_parallel = int(*pp);
  t.req.write.naming = MC_TRY(r.str({"megatron_format"}));
  if (auto f = MC_TRY(r.str({"from"})); !f.empty()) t.req.input_format = f;
  if (auto f = MC_TRY(r.str({"tokenizer"})); !f.empty()) t.req.tokenizer = f;
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    const std::string& k = it.key();
    if (std::find(r.used.begin(), r.used.end(), k) != r.used.end()) continue;
    if (std::find(kIgnoredSeedKeys.begin(), kIgnoredSeedKeys.end(), k) != kIgnoredSeedKeys.end()) {
      t.warnings.push_back(fmt::format("{}: '{}' is ignored (modelconvert runs on the CPU it is started on)", r.where, k));
      continue;
    }
    return make_error(ErrorCode::InvalidArgument, "{}: unknown key '{}'", r.where, k)
        .with_hint("a task takes model_path, output_format, output_path, model_type, quantization, "
                   "quantization_config, dtype, fake_weight, name, preset and the convert options (see the README)");
  }
  return t;
}

}  // namespace

Result<std::vector<BatchTask>> load_batch_file(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    return make_error(ErrorCode::NotFound, "no such job file").with_path(file.string());
  const ojson doc = MC_TRY(read_yaml_or_json_file(file.string()));
  auto fail = [&](std::string_view what) {
    return make_error(ErrorCode::InvalidArgument, "{}", what)
        .with_path(file.string())
        .with_hint("a job file has `tasks:` (a list) or `models:` (name -> task)");
  };
  if (!doc.is_object()) return fail("the job file is not a map");
  std::vector<BatchTask> out;
  if (doc.contains("tasks")) {
    if (!doc["tasks"].is_array()) return fail("`tasks` must be a list");
    for (size_t i = 0; i < doc["tasks"].size(); ++i) {
      auto t = read_task(doc["tasks"][i], i, "");
      if (!t) return std::move(t).error().with_path(file.string());
      out.push_back(std::move(*t));
    }
  } else if (doc.contains("models")) {
    if (!doc["models"].is_object()) return fail("`models` must be a map of name -> task");
    size_t i = 0;
    for (auto it = doc["models"].begin(); it != doc["models"].end(); ++it, ++i) {
      auto t = read_task(it.value(), i, it.key());
      if (!t) return std::move(t).error().with_path(file.string());
      out.push_back(std::move(*t));
    }
  } else {
    return fail("no `tasks` or `models` in the job file");
  }
  if (out.empty()) return fail("the job file has no tasks");
  for (size_t i = 0; i < out.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (out[i].name == out[j].name)
        return make_error(ErrorCode::InvalidArgument, "tasks {} and {} are both named '{}'", j + 1, i + 1, out[i].name)
            .with_path(file.string());
  return out;
}

}  // namespace mc::app
