#include "converter/converter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <map>

#include "arch/config.h"
#include "converter/check.h"
#include "converter/input_checks.h"
#include "converter/output_estimate.h"
#include "converter/pipeline_transforms.h"
#include "converter/registry.h"
#include "io/mapped_file.h"
#include "io/output.h"
#include "io/probe.h"

namespace mc::converter {

namespace {

fs::path strip_slash(fs::path p) {
  if (p.filename().empty()) p = p.parent_path();
  return p;
}

Error unsupported_engine(const formats::Engine& e, std::string_view what) {
  return make_error(ErrorCode::Unsupported, "{} '{}' is not supported yet", what, e.id)
      .with_hint("run `modelconvert list formats` to see what can be read and written today");
}

// A config.json alone: a model with no tensors (for --fake-weight).
Result<Model> read_config_only(const fs::path& p) {
  Model m;
  m.source_format = "config";
  m.source_path = p.string();
  m.config_text = MC_TRY(io::read_text_file(p.string(), 64u << 20));
  m.config = ojson::parse(m.config_text, nullptr, false);
  if (m.config.is_discarded() || !m.config.is_object()) {
    return make_error(ErrorCode::Corrupt, "not a JSON object").with_path(p.string());
  }
  std::error_code ec;
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                           "special_tokens_map.json", "added_tokens.json", "generation_config.json",
                           "vocab.json", "merges.txt", "chat_template.jinja"})
    if (fs::is_regular_file(dir / name, ec)) m.extra_files.push_back({name, dir / name, std::nullopt});
  return m;
}

// A temporary HF directory beside the output for a writer that hands one to an outside tool
// (caps.hf_dir_input); removed when the conversion ends, whatever happens.
class StagedDir {
 public:
  explicit StagedDir(const fs::path& output) {
    const fs::path out = strip_slash(fs::absolute(output).lexically_normal());
    path_ = out.parent_path() / (".mc-stage-" + std::to_string(::getpid()) + "-" + out.filename().string());
  }
  ~StagedDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The input can be handed over as it is only when it is an HF directory no transform changed.
bool needs_staging(const Model& m, const ConvertRequest& req) {
  return m.source_format != "hf" || !io::is_dir(m.source_path) || req.fake_weight || req.mup2llama ||
         req.write.dtype.has_value() || m.config_modified;
}

// Writes the model as an HF directory at `dir` (with the source's *.py model code, which the
// outside tool may need to load it) and reads it back from there.
Result<Model> stage_as_hf(Model model, const fs::path& dir, const formats::ReadOptions& ro, ThreadPool& pool) {
  const formats::Engine* hf = formats::find_engine("hf");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::Io, "cannot create a staging folder: {}", ec.message()).with_path(dir.string());
  formats::WriteOptions wo;
  wo.pool = &pool;
  wo.quiet = true;
  MC_TRY(hf->write(model, dir, wo));
  const fs::path src = io::is_dir(model.source_path) ? fs::path(model.source_path) : fs::path(model.source_path).parent_path();
  for (const auto& e : fs::directory_iterator(src.empty() ? fs::path(".") : src, ec))
    if (e.path().extension() == ".py" && !fs::exists(dir / e.path().filename(), ec))
      MC_CHECK(io::copy_file(e.path(), dir / e.path().filename()));
  return read_input(dir, "hf", ro);
}

// Refuses an output that would replace the input or a part of it: -o naming the input, a folder
// holding it, or (when it exists) something inside an input folder. The output's last component
// is not resolved (a link there is replaced, not followed); everything else is.
Status refuse_output_over_input(const fs::path& input, const fs::path& output) {
  std::error_code ec;
  const fs::path in = fs::weakly_canonical(fs::absolute(input), ec);
  if (ec) return {};
  const fs::path abs_out = strip_slash(fs::absolute(output).lexically_normal());
  const fs::path out = fs::weakly_canonical(abs_out.parent_path(), ec) / abs_out.filename();
  if (ec) return {};
  auto under = [](const fs::path& p, const fs::path& root) {
    const fs::path rel = p.lexically_relative(root);
    return !rel.empty() && *rel.begin() != "..";
  };
  struct stat st {};
  const bool out_exists = ::lstat(out.c_str(), &st) == 0;
  if (under(in, out) || (out_exists && io::is_dir(in) && under(out, in))) {
    return make_error(ErrorCode::InvalidArgument, "the output {} would replace the input {}",
                      output.string(), input.string())
        .with_path(output.string())
        .with_hint("choose an -o outside the input (the input is never modified)");
  }
  return {};
}

}  // namespace

ojson ConvertReport::to_json() const {
  ojson j = ojson::object();
  j["ok"] = validation.ok();
  j["output"] = output.string();
  j["input_format"] = input_format;
  j["output_format"] = output_format;
  j["files"] = files;
  j["tensors"] = tensors;
  j["tensor_bytes"] = tensor_bytes;
  j["seconds"] = seconds;
  j["dry_run"] = dry_run;
  j["validation"] = {{"ok", validation.ok()}, {"warnings", validation.warnings}};
  j["info"] = info;
  return j;
}

fs::path default_output_path(const fs::path& input, const formats::Engine& to, const std::string& quant) {
  fs::path in = strip_slash(fs::absolute(input).lexically_normal());
  std::string base = io::is_dir(in) ? in.filename().string() : in.stem().string();
  if (!io::is_dir(in) && in.filename() == "config.json") base = in.parent_path().filename().string();
  const std::string suffix = quant.empty() ? "" : "-" + quant;
  fs::path parent = in.parent_path();
  // A single-file target gets its extension (model.gguf, model.pt); a directory target a suffix.
  if (!to.out_is_dir && !to.caps.single_file_exts.empty())
    return parent / (base + suffix + std::string(to.caps.single_file_exts.front()));
  return parent / (base + "-" + std::string(to.id) + suffix);
}

Result<Model> read_input(const fs::path& input, const std::string& input_format,
                         const formats::ReadOptions& opt, const formats::Engine** engine_out) {
  MC_CHECK(check_input_path(input));
  if (input_format == "auto" && input.extension() == ".json" && (!io::is_dir(input) || !formats::detect(input).engine)) {
    if (engine_out) *engine_out = nullptr;
    return read_config_only(input);
  }
  const formats::Engine* eng = nullptr;
  if (input_format != "auto") {
    eng = formats::find_engine(input_format);
    if (!eng) {
      return make_error(ErrorCode::InvalidArgument, "unknown input format '{}'", input_format)
          .with_hint("run `modelconvert list formats`");
    }
  } else {
    eng = formats::detect(input).engine;
    if (!eng) {
      return make_error(ErrorCode::Unsupported, "cannot tell which model format this is")
          .with_path(input.string())
          .with_hint("pass --from FORMAT, or check that the path points at a model");
    }
  }
  if (engine_out) *engine_out = eng;
  if (!eng->read) return unsupported_engine(*eng, "reading").with_path(input.string());
  auto m = MC_TRY(eng->read(input, opt));
  if (m.source_format.empty()) m.source_format = std::string(eng->id);
  return m;
}

namespace {

// The formats whose writer takes an option, for the refusal message.
std::string formats_taking(bool (*takes)(const formats::WriteCaps&)) {
  std::string out;
  for (const auto& e : formats::engines())
    if (e.write && takes(e.caps)) out += (out.empty() ? "" : ", ") + std::string(e.id);
  return out.empty() ? "none yet" : out;
}

Error refuse(std::string_view option, const formats::Engine& to, bool (*takes)(const formats::WriteCaps&)) {
  return make_error(ErrorCode::InvalidArgument, "{} is not taken by the '{}' writer", option, to.id)
      .with_hint(fmt::format("formats that take {}: {}; drop the option or pick one of them", option,
                             formats_taking(takes)));
}

}  // namespace

Status check_write_options(const formats::WriteOptions& o, const formats::Engine& to) {
  if (!o.quant.empty()) {
    if (to.caps.quant.empty()) return refuse("--quant", to, [](const formats::WriteCaps& c) { return !c.quant.empty(); });
    std::string lower = o.quant;
    for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (std::find(to.caps.quant.begin(), to.caps.quant.end(), lower) == to.caps.quant.end()) {
      std::string names;
      for (auto n : to.caps.quant) names += (names.empty() ? "" : ", ") + std::string(n);
      return make_error(ErrorCode::InvalidArgument, "unknown {} quantization '{}'", to.id, o.quant)
          .with_hint(fmt::format("the '{}' writer takes --quant {} (see `modelconvert list quantizations`)", to.id, names));
    }
  }
  if (!o.quant_config.is_null() && !(o.quant_config.is_object() && o.quant_config.empty()) && !to.caps.quant_config)
    return refuse("--quant-config", to, [](const formats::WriteCaps& c) { return c.quant_config; });
  if (o.dtype && !to.caps.dtype) return refuse("--dtype", to, [](const formats::WriteCaps& c) { return c.dtype; });
  if (o.max_shard_bytes && !to.caps.shard_size)
    return refuse("--max-shard-size", to, [](const formats::WriteCaps& c) { return c.shard_size; });
  if (!o.weights_format.empty() && !to.caps.weights_format)
    return refuse("--weights-format", to, [](const formats::WriteCaps& c) { return c.weights_format; });
  if (!to.caps.calibration) {
    auto takes = [](const formats::WriteCaps& c) { return c.calibration; };
    if (o.calibration) return refuse("--calibration", to, takes);
    if (o.calibration_samples) return refuse("--calibration-samples", to, takes);
    if (o.seq_len) return refuse("--seq-len", to, takes);
  }
  if (!to.caps.parallel) {
    auto takes = [](const formats::WriteCaps& c) { return c.parallel; };
    if (o.tensor_parallel != 1) return refuse("--tp", to, takes);
    if (o.pipeline_parallel != 1) return refuse("--pp", to, takes);
    if (!o.naming.empty()) return refuse("--megatron-format", to, takes);
  }
  if (to.check_options) return to.check_options(o);
  return {};
}

Result<ConvertReport> convert(const ConvertRequest& req) {
  const auto t0 = std::chrono::steady_clock::now();
  const formats::Engine* to = formats::find_engine(req.output_format);
  if (!to) {
    return make_error(ErrorCode::InvalidArgument, "unknown output format '{}'", req.output_format)
        .with_hint("run `modelconvert list formats`");
  }
  if (!to->write) return unsupported_engine(*to, "writing");
  MC_CHECK(check_write_options(req.write, *to));
  const fs::path out_path = req.output ? *req.output : default_output_path(req.input, *to, req.write.quant);
  MC_CHECK(refuse_output_over_input(req.input, out_path));

  formats::ReadOptions ro;
  ro.model_type = req.model_type;
  ro.tokenizer = req.tokenizer;
  ro.vocab_size = req.vocab_size;
  const formats::Engine* from = nullptr;
  Model model = MC_TRY(read_input(req.input, req.input_format, ro, &from));
  if (model.tensors.empty() && !req.fake_weight) {
    MC_CHECK(check_has_tensors(model));
    return make_error(ErrorCode::InvalidArgument, "the input has no weights")
        .with_path(req.input.string())
        .with_hint("pass --fake-weight to make a model from the config alone");
  }
  // Bad input is reported as such here, before anything is written, not by the output's validation.
  MC_CHECK(check_input(model, !req.fake_weight_config));

  model = MC_TRY(apply_transforms(std::move(model), req));

  ConvertReport rep;
  rep.input_format = model.source_format;
  rep.output_format = std::string(to->id);
  rep.output = out_path;
  rep.tensors = model.tensors.size();
  rep.tensor_bytes = model.tensors.total_bytes();

  formats::WriteOptions wo = req.write;
  ThreadPool pool(req.threads);
  wo.pool = &pool;
  bool out_is_dir = to->out_is_dir;
  const std::string ext = rep.output.extension().string();
  const auto& exts = to->caps.single_file_exts;
  if (out_is_dir && std::find(exts.begin(), exts.end(), ext) != exts.end()) {
    wo.single_file = true;
    out_is_dir = false;
  }
  if (to->caps.calibration) {
    // Calibrating writers tokenize text with the model's own tokenizer (made on first use).
    auto tk = std::make_shared<std::optional<tok::Tokenizer>>();
    const Model* src = &model;
    const std::optional<fs::path> attached = req.tokenizer;
    wo.tokenize = [tk, src, attached](std::string_view text, bool add_special) -> Result<std::vector<int32_t>> {
      if (!*tk) {
        auto t = tokenizer_for(*src);
        if (!t && attached) t = tokenizer_from_path(*attached);
        if (!t) {
          Error e = std::move(t).error();
          e.hint = "the calibration text is tokenized with the model's own tokenizer: add its tokenizer files "
                   "or pass --tokenizer FILE";
          return e;
        }
        *tk = std::move(*t);
      }
      return (**tk).encode(text, add_special);
    };
    wo.events = req.progress;
  }
  std::optional<Progress> progress;
  if (req.progress) {
    progress.emplace("writing", true, req.progress);
    wo.progress = &*progress;
  }
  // Free space is judged by what the output will take (--quant, --dtype), not by the input's size.
  const uint64_t planned_bytes = planned_output_bytes(model, to->id, wo);
  if (req.dry_run) {
    rep.dry_run = true;
    rep.info["plan"] = {{"tensors", rep.tensors},
                        {"tensor_bytes", rep.tensor_bytes},
                        {"planned_output_bytes", planned_bytes},
                        {"parameters", model.tensors.total_params()},
                        {"out_is_dir", out_is_dir}};
    return rep;
  }
  std::optional<StagedDir> staged;
  if (to->caps.hf_dir_input && needs_staging(model, req)) {
    staged.emplace(rep.output);
    model = MC_TRY(stage_as_hf(std::move(model), staged->path(), ro, pool));
  }

  auto pending = MC_TRY(io::PendingOutput::begin(rep.output, out_is_dir, req.force, planned_bytes));
  if (!pending.removed_stale().empty() && !req.write.quiet) {
    std::string names;
    for (const auto& p : pending.removed_stale()) names += (names.empty() ? "" : ", ") + p.filename().string();
    std::cerr << "note: removed " << pending.removed_stale().size() << " temporary file(s) left by killed runs in "
              << pending.final_path().parent_path().string() << ": " << names << "\n";
  }
  auto written = to->write(model, pending.tmp_path(), wo);
  if (!written) {
    // The disk filled up (or a file size limit was hit) under the temporary name: say which output.
    Error e = std::move(written).error();
    if (e.code == ErrorCode::NoSpace) e.message = "the output " + rep.output.string() + " does not fit: " + e.message;
    return e;
  }
  auto wr = std::move(*written);
  rep.files = wr.files;
  rep.info = wr.info;
  if (to->validate) {
    rep.validation = to->validate(pending.tmp_path());
    if (req.fake_weight_config) {
      // Shapes the user asked for need not agree with config.json: report, don't refuse.
      auto& errs = rep.validation.errors;
      for (auto it = errs.begin(); it != errs.end();) {
        if (it->code == ErrorCode::Mismatch || it->code == ErrorCode::NotFound) {
          rep.validation.warnings.push_back(it->render());
          it = errs.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (!rep.validation.ok()) {
      Error e = rep.validation.errors.front();
      e.message = "the output failed validation (" + std::to_string(rep.validation.errors.size()) +
                  " problems), nothing was written: " + e.message;
      e.path = rep.output.string();
      if (e.code == ErrorCode::Io || e.code == ErrorCode::NoSpace) {
        // The OS refused to read the output back (a memory limit on mmap, an I/O error): no verdict
        // on the bytes, so not a bug; the output was not kept.
        e.message = "the output could not be read back for validation, nothing was written: " +
                    rep.validation.errors.front().message;
        e.hint = "raise the memory limit (ulimit -v) or free resources, then run again";
        return e;
      }
      e.hint = "this is a bug in modelconvert: please report it with the input's `inspect --json`";
      e.code = ErrorCode::Internal;
      return e;
    }
  }
  MC_CHECK(pending.commit());
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

Result<ojson> inspect(const fs::path& input, const std::string& input_format) {
  ojson j = ojson::object();
  j["path"] = input.string();
  const formats::Engine* eng = nullptr;
  formats::ReadOptions ro;
  auto m = read_input(input, input_format, ro, &eng);
  if (eng) j["format"] = std::string(eng->id);
  if (!m) {
    if (eng && !eng->read) {
      j["readable"] = false;
      j["note"] = "this format is recognised; reading it is not supported yet";
      return j;
    }
    // A file we cannot convert (e.g. a GGUF of another architecture) may still describe itself.
    if (eng && eng->describe) {
      if (auto d = eng->describe(input, ro)) {
        j["readable"] = false;
        j["note"] = m.error().render();
        j["details"] = std::move(*d);
        return j;
      }
    }
    return std::move(m).error();
  }
  if (!eng) j["format"] = m->source_format;
  j["readable"] = true;
  if (eng && eng->describe) {
    auto d = eng->describe(input, ro);
    if (!d) return std::move(d).error();
    j["details"] = std::move(*d);
  }
  if (!m->config.empty()) {
    auto ac = arch::from_hf_config(m->config);
    if (ac) {
      j["architecture"] = ac->architecture.empty() ? std::string(arch::family_name(ac->family)) : ac->architecture;
      j["model_type"] = ac->model_type;
      if (ac->family != arch::Family::Unknown) {
        j["hyper_parameters"] = {{"vocab_size", ac->vocab_size},   {"hidden_size", ac->hidden_size},
                                 {"intermediate_size", ac->intermediate_size},
                                 {"num_layers", ac->num_layers},   {"num_heads", ac->num_heads},
                                 {"num_kv_heads", ac->num_kv_heads}, {"head_dim", ac->head_dim},
                                 {"tie_word_embeddings", ac->tie_word_embeddings}};
      }
    } else {
      j["config_error"] = ac.error().render();
    }
  }
  std::map<std::string, uint64_t> dtypes;
  for (const auto& t : m->tensors) dtypes[std::string(dtype_name(t.dtype))] += t.numel();
  j["dtypes"] = dtypes;
  j["tensors"] = m->tensors.size();
  j["parameters"] = m->tensors.total_params();
  j["tensor_bytes"] = m->tensors.total_bytes();
  ojson files = ojson::array();
  for (const auto& f : m->extra_files) files.push_back(f.name);
  j["carried_files"] = files;
  ojson tok = ojson::array();
  for (const auto& f : m->extra_files)
    if (f.name.find("token") != std::string::npos || f.name == "vocab.json" || f.name == "merges.txt")
      tok.push_back(f.name);
  j["tokenizer_files"] = tok;
  j["shards"] = m->weight_files;
  if (eng) {
    ojson targets = ojson::array();
    for (auto t : formats::targets_for(*eng)) targets.push_back(std::string(t));
    j["targets"] = targets;
  }
  ojson list = ojson::array();
  for (const auto& t : m->tensors)
    list.push_back({{"name", t.name}, {"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape}});
  j["tensor_list"] = list;
  return j;
}

Result<formats::ValidationReport> validate(const fs::path& input, const std::string& input_format) {
  MC_CHECK(check_input_path(input));
  const formats::Engine* eng = input_format == "auto" ? formats::detect(input).engine
                                                       : formats::find_engine(input_format);
  if (!eng) {
    return make_error(ErrorCode::Unsupported, "cannot tell which model format this is")
        .with_path(input.string())
        .with_hint("pass --from FORMAT");
  }
  if (!eng->validate) return unsupported_engine(*eng, "validating");
  auto r = eng->validate(input);
  if (r.format.empty()) r.format = std::string(eng->id);
  // The input checks convert runs: what it would refuse, validate reports. A format we read
  // only in part (an architecture we do not convert) is judged by its own validation alone.
  if (r.ok() && eng->read) {
    auto m = eng->read(input, formats::ReadOptions{});
    if (!m) {
      const ErrorCode c = m.error().code;
      if (c == ErrorCode::Corrupt || c == ErrorCode::Truncated || c == ErrorCode::LimitExceeded ||
          c == ErrorCode::Mismatch)
        r.errors.push_back(std::move(m).error());
    } else if (auto st = check_has_tensors(*m); !st) {
      r.errors.push_back(std::move(st).error());
    } else if (auto st2 = check_input(*m); !st2) {
      r.errors.push_back(std::move(st2).error());
    }
  }
  return r;
}

}  // namespace mc::converter
