// The MTK engine: settings from --quant-config, the toolkit's location, the script's
// environment, running it, and checking what it wrote (layout and settings in mtk.h).
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "formats/mtk/mtk.h"
#include "formats/mtk/script.h"

namespace mc::mtk {

namespace {

constexpr std::array<std::string_view, 3> kPlatforms = {"MT6991", "MT6989", "MT6897"};
constexpr std::array<std::string_view, 6> kSizes = {"0_5B", "0_9B", "1_2B", "1_6B", "8B", "0_58B"};

// --quant-config keys that become script variables, with the seed's defaults.
enum class Kind : uint8_t { Str, Int, Bool, Path };
struct Setting {
  std::string_view key, env;
  Kind kind;
  std::string_view fallback;  // "" = not set unless given
};
constexpr std::array<Setting, 11> kSettings{{
    {"platform", "PLATFORM", Kind::Str, "MT6991"},
    {"model_size", "MODEL_SIZE", Kind::Str, ""},  // from the model's name, else 1_2B
    {"weight_bit", "WEIGHT_BIT", Kind::Int, "4"},
    {"clen", "CLEN", Kind::Int, "512"},
    {"plen", "PLEN", Kind::Int, "128"},
    {"cloud_weight_num", "CLOUD_WEIGHT_NUM", Kind::Int, "1024"},
    {"cloud_act_num", "CLOUD_ACT_NUM", Kind::Int, "256"},
    {"mtk_batch_size", "MTK_BATCH_SIZE", Kind::Int, "2"},
    {"disable_pgptq", "DISABLE_PGPTQ", Kind::Bool, "false"},
    {"is_llama", "IS_LLAMA", Kind::Bool, "false"},
    {"gptq_modelpath", "GPTQ_MODELPATH", Kind::Path, ""},
}};

// Model size names as they appear in model names ("MiniCPM4-0.5B"), longest first.
constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kSizeNames{{
    {"0.58b", "0_58B"}, {"0_58b", "0_58B"}, {"0.5b", "0_5B"}, {"0_5b", "0_5B"}, {"0.9b", "0_9B"}, {"0_9b", "0_9B"},
    {"1.2b", "1_2B"},   {"1_2b", "1_2B"},   {"1.6b", "1_6B"}, {"1_6b", "1_6B"}, {"8b", "8B"},
}};

// Task names that pick a script; any other task (or none) is decided from config.json.
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kTaskKinds{{
    {"text-generation", "llm"},
    {"image-classification", "vlm"},
}};

constexpr std::string_view kLlmScript = "run_example_llm_cybertron.sh";
constexpr std::string_view kVlmScript = "run_example_vlm_cybertron.sh";

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string join(auto const& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + std::string(i);
  return out;
}

Error bad_setting(std::string_view key, std::string_view why) {
  return make_error(ErrorCode::InvalidArgument, "--quant-config {}: {}", key, why)
      .with_hint("see `modelconvert list quantizations` for the mtk settings");
}

Result<std::string> setting_value(const ojson& v, const Setting& s) {
  switch (s.kind) {
    case Kind::Int:
      if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
      if (v.is_string()) {
        const std::string t = v.get<std::string>();
        if (!t.empty() && std::all_of(t.begin(), t.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
          return t;
      }
      return bad_setting(s.key, "must be a whole number, got " + v.dump());
    case Kind::Bool:
      if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
      if (v.is_string() && (lower(v.get<std::string>()) == "true" || lower(v.get<std::string>()) == "false"))
        return lower(v.get<std::string>());
      return bad_setting(s.key, "must be true or false, got " + v.dump());
    case Kind::Str:
    case Kind::Path:
      if (v.is_string() && !v.get<std::string>().empty()) return v.get<std::string>();
      return bad_setting(s.key, "must be a non-empty string, got " + v.dump());
  }
  return bad_setting(s.key, "unreadable");
}

std::string size_from_name(const std::string& name) {
  const std::string n = lower(name);
  for (const auto& [pat, size] : kSizeNames) {
    for (size_t at = n.find(pat); at != std::string::npos; at = n.find(pat, at + 1)) {
      const bool left_ok = at == 0 || !(std::isdigit(static_cast<unsigned char>(n[at - 1])) || n[at - 1] == '.' || n[at - 1] == '_');
      const size_t end = at + pat.size();
      const bool right_ok = end == n.size() || !std::isalnum(static_cast<unsigned char>(n[end]));
      if (left_ok && right_ok) return std::string(size);
    }
  }
  return {};
}

// LLM or VLM from config.json, as the original decides it.
std::pair<std::string, std::string> kind_from_config(const ojson& cfg) {
  for (const char* k : {"vision_config", "image_size", "image_processor", "vision_tower"})
    if (cfg.is_object() && cfg.contains(k)) return {"vlm", std::string("config.json has ") + k};
  const std::string mt = lower(cfg.is_object() ? cfg.value("model_type", std::string()) : std::string());
  for (const char* w : {"vision", "vlm", "multimodal"})
    if (mt.find(w) != std::string::npos) return {"vlm", "config.json model_type '" + mt + "'"};
  return {"llm", "config.json describes a text model"};
}

Result<std::pair<fs::path, std::string>> find_toolkit(const formats::WriteOptions& opt) {
  std::string value, from;
  std::vector<std::string> looked;
  const ojson& qc = opt.quant_config;
  if (qc.is_object() && qc.contains("mtk_cloud_path")) {
    if (!qc["mtk_cloud_path"].is_string() || qc["mtk_cloud_path"].get<std::string>().empty())
      return bad_setting("mtk_cloud_path", "must be a folder path");
    value = qc["mtk_cloud_path"].get<std::string>();
    from = "--quant-config mtk_cloud_path";
  } else if (opt.settings.is_object() && opt.settings.contains("mtk_cloud_path") &&
             opt.settings["mtk_cloud_path"].value("value", std::string()) != "") {
    value = opt.settings["mtk_cloud_path"]["value"].get<std::string>();
    from = opt.settings["mtk_cloud_path"].value("source", std::string("configuration"));
  } else if (const char* e = std::getenv("MTK_CLOUD_PATH"); e && *e) {
    value = e;
    from = "$MTK_CLOUD_PATH";
  }
  if (value.empty())
    return make_error(ErrorCode::NotFound,
                      "no mtk_cloud toolkit given: looked at --quant-config mtk_cloud_path, $MTK_CLOUD_PATH and the "
                      "config key mtk_cloud_path, all unset")
        .with_hint("get MediaTek's mtk_cloud toolkit and pass --quant-config '{\"mtk_cloud_path\": \"/path/to/mtk_cloud\"}' "
                   "or run `modelconvert config set mtk_cloud_path /path/to/mtk_cloud`");
  std::error_code ec;
  const fs::path p = fs::absolute(value, ec);
  if (!fs::is_directory(p, ec))
    return make_error(ErrorCode::NotFound, "the mtk_cloud toolkit folder (from {}) does not exist", from)
        .with_path(p.string())
        .with_hint("point mtk_cloud_path at a checkout of MediaTek's mtk_cloud");
  return std::pair{p, from};
}

}  // namespace

Result<Plan> plan_settings(const formats::WriteOptions& opt) {
  Plan p;
  const ojson& qc = opt.quant_config;
  if (!qc.is_null() && !qc.is_object()) return bad_setting("(all)", "must be a JSON object");
  // Every key must be known: a misspelt setting would otherwise fall back to a default silently.
  if (qc.is_object()) {
    for (auto it = qc.begin(); it != qc.end(); ++it) {
      const std::string k = it.key();
      if (k == "OUTPUT_DIR" || k == "output_dir")
        return bad_setting(k, "the output folder is -o").with_hint("drop OUTPUT_DIR and pass -o PATH");
      const bool known = k == "mtk_cloud_path" || k == "GPTQ_MODELPATH" ||
                         std::any_of(kSettings.begin(), kSettings.end(), [&](const Setting& s) { return s.key == k; });
      if (!known) {
        std::vector<std::string_view> names{"mtk_cloud_path"};
        for (const auto& s : kSettings) names.push_back(s.key);
        return make_error(ErrorCode::InvalidArgument, "--quant-config: unknown mtk setting '{}'", k)
            .with_hint("the mtk settings are: " + join(names));
      }
    }
  }
  for (const auto& s : kSettings) {
    const ojson* v = nullptr;
    if (qc.is_object() && qc.contains(s.key)) v = &qc[std::string(s.key)];
    else if (s.key == "gptq_modelpath" && qc.is_object() && qc.contains("GPTQ_MODELPATH")) v = &qc["GPTQ_MODELPATH"];
    if (v) {
      p.env[std::string(s.env)] = MC_TRY(setting_value(*v, s));
    } else if (!s.fallback.empty()) {
      p.env[std::string(s.env)] = std::string(s.fallback);
    }
  }
  if (std::find(kPlatforms.begin(), kPlatforms.end(), p.env["PLATFORM"]) == kPlatforms.end())
    return make_error(ErrorCode::InvalidArgument, "unknown MTK platform '{}'", p.env["PLATFORM"])
        .with_hint("use one of " + join(kPlatforms) + " in --quant-config platform");
  auto [toolkit, from] = MC_TRY(find_toolkit(opt));
  p.toolkit = toolkit;
  p.toolkit_from = from;
  return p;
}

Result<Plan> plan(const Model& model, const formats::WriteOptions& opt) {
  Plan p = MC_TRY(plan_settings(opt));
  if (!p.env.count("MODEL_SIZE")) {
    std::string name = model.config.is_object() ? model.config.value("_name_or_path", std::string()) : std::string();
    std::string size = size_from_name(name);
    if (size.empty()) size = size_from_name(fs::path(model.source_path).filename().string());
    if (size.empty()) {
      size = "1_2B";
      p.warnings.push_back("no model_size in --quant-config and none in the model's name: using 1_2B");
    }
    p.env["MODEL_SIZE"] = size;
  }
  if (std::find(kSizes.begin(), kSizes.end(), p.env["MODEL_SIZE"]) == kSizes.end())
    p.warnings.push_back("model_size '" + p.env["MODEL_SIZE"] + "' is not one the toolkit is known to take (" +
                         join(kSizes) + ")");

  // LLM or VLM: a task name decides, else config.json.
  p.kind.clear();
  for (const auto& [task, kind] : kTaskKinds)
    if (opt.task == task) {
      p.kind = std::string(kind);
      p.kind_from = "--model-type " + opt.task;
    }
  if (p.kind.empty()) std::tie(p.kind, p.kind_from) = kind_from_config(model.config);

  std::error_code ec;
  const fs::path model_dir = fs::absolute(model.source_path, ec);
  if (!fs::is_directory(model_dir, ec) || !fs::exists(model_dir / "config.json", ec))
    return make_error(ErrorCode::InvalidArgument, "the MTK toolkit needs an HF model directory with config.json")
        .with_path(model.source_path);
  p.env["MODEL_PATH"] = model_dir.string();
  p.env["MODEL_KIND"] = p.kind == "llm" ? "word" : "multimodal";
  p.env["RATE"] = "0";
  p.env["SKIP_ENV_SETUP"] = "true";
  p.env["USE_OPTIMIZED_CONVERT"] = "true";
  if (!std::getenv("CONDA_ENV")) p.env["CONDA_ENV"] = "SKIP_CONDA_ACTIVATION";

  p.script = p.toolkit / (p.kind == "llm" ? kLlmScript : kVlmScript);
  if (!fs::is_regular_file(p.script, ec))
    return make_error(ErrorCode::NotFound, "the mtk_cloud toolkit (from {}) has no {}", p.toolkit_from,
                      p.script.filename().string())
        .with_path(p.script.string())
        .with_hint("check that mtk_cloud_path points at the toolkit's top folder");
  return p;
}

namespace {

// TFLite models are FlatBuffers whose file identifier (bytes 4..8) is "TFL3".
std::optional<std::string> tflite_problem(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  char head[8] = {};
  in.read(head, 8);
  if (in.gcount() < 8) return "is " + std::to_string(in.gcount()) + " bytes long, too short for a TFLite model";
  if (std::string_view(head + 4, 4) != "TFL3") return "has no TFLite identifier 'TFL3' at byte 4";
  return std::nullopt;
}

std::vector<fs::path> tflite_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->path().extension() == ".tflite" && fs::is_regular_file(it->path(), ec)) out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

Result<formats::WriteResult> write(const Model& model, const fs::path& out, const formats::WriteOptions& opt) {
  Plan p = MC_TRY(plan(model, opt));
  std::error_code ec;
  const fs::path out_abs = fs::absolute(out, ec);
  p.env["OUTPUT_DIR"] = out_abs.string();
  if (!opt.quiet) {
    for (const auto& w : p.warnings) fmt::print(stderr, "warning: {}\n", w);
    fmt::print(stderr, "mtk: running {} ({} from {}; toolkit from {})\n", p.script.string(), p.kind, p.kind_from,
               p.toolkit_from);
  }
  auto echo = [&](std::string_view line) {
    if (!opt.quiet) fmt::print(stderr, "  | {}\n", line);
  };
  const ScriptRun run = MC_TRY(run_script(p.script, p.toolkit, p.env, echo));
  std::string last;
  for (const auto& l : run.tail) last += "\n  " + l;
  if (run.signal || run.exit_status != 0) {
    const std::string how = run.signal ? fmt::format("was killed by signal {}", run.signal)
                                       : fmt::format("exited with status {}", run.exit_status);
    return make_error(ErrorCode::Io, "{} {}; its last lines:{}", p.script.filename().string(), how,
                      last.empty() ? " (none)" : last)
        .with_path(p.script.string())
        .with_hint("nothing was written to -o; fix what the toolkit reports and run again");
  }
  const auto files = tflite_files(out_abs);
  if (files.empty())
    return make_error(ErrorCode::NotFound, "{} exited 0 but wrote no .tflite file into OUTPUT_DIR; its last lines:{}",
                      p.script.filename().string(), last.empty() ? " (none)" : last)
        .with_path(out_abs.string())
        .with_hint("check the toolkit's log above; nothing was written to -o");
  for (const auto& f : files)
    if (auto why = tflite_problem(f))
      return make_error(ErrorCode::Corrupt, "the toolkit's output {}", *why).with_path(f.lexically_relative(out_abs).string());
  formats::WriteResult res;
  for (auto it = fs::recursive_directory_iterator(out_abs, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (fs::is_regular_file(it->path(), ec)) {
      res.files.push_back(it->path().lexically_relative(out_abs).string());
      res.tensor_bytes += fs::file_size(it->path(), ec);
    }
  std::sort(res.files.begin(), res.files.end());
  ojson tfl = ojson::array();
  for (const auto& f : files) tfl.push_back(f.lexically_relative(out_abs).string());
  res.info = {{"script", p.script.filename().string()}, {"toolkit", p.toolkit.string()},
              {"toolkit_from", p.toolkit_from},     {"model_kind", p.kind},
              {"model_kind_from", p.kind_from},     {"platform", p.env["PLATFORM"]},
              {"model_size", p.env["MODEL_SIZE"]},  {"weight_bit", p.env["WEIGHT_BIT"]},
              {"tflite", tfl},                      {"warnings", p.warnings}};
  return res;
}

formats::Confidence detect(const fs::path& p) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "config.json", ec)) return formats::Confidence::No;
    for (const auto& e : fs::directory_iterator(p, ec)) {
      if (e.path().extension() == ".tflite") return formats::Confidence::Likely;
      if (e.is_directory(ec))
        for (const auto& e2 : fs::directory_iterator(e.path(), ec))
          if (e2.path().extension() == ".tflite") return formats::Confidence::Likely;
    }
    return formats::Confidence::No;
  }
  return p.extension() == ".tflite" && !tflite_problem(p) ? formats::Confidence::Likely : formats::Confidence::No;
}

Status check_options(const formats::WriteOptions& opt) {
  if (auto p = plan_settings(opt); !p) return std::move(p).error();
  return {};
}

constexpr std::string_view kQuantHelp =
    "mtk takes no --quant; --quant-config sets MediaTek's toolkit: platform (MT6991 MT6989 MT6897), model_size "
    "(0_5B 0_9B 1_2B 1_6B 8B 0_58B), weight_bit, clen, plen, cloud_weight_num, cloud_act_num, mtk_batch_size, "
    "disable_pgptq, is_llama, gptq_modelpath, mtk_cloud_path";

}  // namespace

formats::ValidationReport validate_dir(const fs::path& path) {
  formats::ValidationReport r;
  r.format = "mtk";
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(path, ec)) files = tflite_files(path);
  else if (path.extension() == ".tflite") files = {path};
  if (files.empty()) {
    r.errors.push_back(make_error(ErrorCode::NotFound, "no .tflite file").with_path(path.string()));
    return r;
  }
  ojson list = ojson::array();
  for (const auto& f : files) {
    if (auto why = tflite_problem(f)) r.errors.push_back(make_error(ErrorCode::Corrupt, "{}", *why).with_path(f.string()));
    list.push_back(f.lexically_relative(fs::is_directory(path, ec) ? path : path.parent_path()).string());
  }
  r.info["tflite"] = list;
  return r;
}

const formats::Engine& engine() {
  static const formats::Engine e{
      .id = "mtk",
      .description = "MediaTek NeuroPilot .tflite package (through MediaTek's mtk_cloud toolkit)",
      .detect = detect,
      .write = write,
      .out_is_dir = true,
      .validate = validate_dir,
      .check_options = check_options,
      .caps = {.quant_help = kQuantHelp, .quant_config = true, .dtype = false, .hf_dir_input = true},
  };
  return e;
}

}  // namespace mc::mtk
