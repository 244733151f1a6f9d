#include "app/config.h"

#include <algorithm>
#include <array>
#include <cstdlib>

#include "app/yaml_json.h"
#include "hub/cache.h"
#include "io/mapped_file.h"

namespace mc::app {

namespace {

constexpr std::array<ConfigKey, 6> kKeys{{
    {"threads", KeyType::Count, "0", "", "worker threads of convert and check (0: all cores)"},
    {"hf_endpoint", KeyType::Url, "https://huggingface.co", "HF_ENDPOINT", "the Hugging Face hub that hub ids are downloaded from"},
    {"mtk_cloud_path", KeyType::Path, "", "MTK_CLOUD_PATH", "MediaTek's mtk_cloud toolkit folder (mtk output)"},
    {"max_workers", KeyType::Count, "1", "", "batch: tasks run at the same time"},
    {"max_retries", KeyType::Count, "1", "", "batch: retries of a task that failed with a transient error"},
    {"history", KeyType::Bool, "true", "", "record every conversion in the history file"},
}};

struct BuiltinPreset {
  std::string_view name, json;
};
constexpr std::array<BuiltinPreset, 7> kPresets{{
    {"gguf-f16", R"({"description": "GGUF for llama.cpp, f16 weights", "output_format": "gguf"})"},
    {"gguf-q4_k_m", R"({"description": "GGUF, llama-quantize Q4_K_M", "output_format": "gguf", "quantization": "q4_k_m"})"},
    {"gguf-q8_0", R"({"description": "GGUF, llama-quantize Q8_0", "output_format": "gguf", "quantization": "q8_0"})"},
    {"mlx-4bit", R"({"description": "mlx-lm, 4-bit affine groups of 64", "output_format": "mlx", "quantization": "4bit"})"},
    {"hf-fp16", R"({"description": "HF directory, float16 safetensors", "output_format": "hf", "dtype": "fp16"})"},
    {"megatron-tp2", R"({"description": "Megatron-Core checkpoint, tensor parallel 2", "output_format": "megatron", "tp": 2})"},
    {"mtk-mt6991", R"({"description": "MediaTek MT6991 LLM through mtk_cloud, 4-bit weights", "output_format": "mtk",
                       "model_type": "text-generation", "quantization_config": {"platform": "MT6991", "weight_bit": 4}})"},
}};

constexpr std::array<std::string_view, 8> kPresetFields = {"description", "output_format", "quantization",
                                                           "quantization_config", "dtype", "model_type", "tp", "pp"};

std::string env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  return v ? std::string(v) : std::string();
}

fs::path home_dir() {
  const std::string h = env("HOME");
  return h.empty() ? fs::path("/") : fs::path(h);
}

std::string env_name(std::string_view key) {
  std::string s = "MODELCONVERT_";
  for (char c : key) s += char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

const ConfigKey* find_key(std::string_view name) {
  for (const auto& k : kKeys)
    if (k.name == name) return &k;
  return nullptr;
}

Error unknown_key(std::string_view key) {
  std::string names;
  for (const auto& k : kKeys) names += (names.empty() ? "" : ", ") + std::string(k.name);
  return make_error(ErrorCode::InvalidArgument, "unknown config key '{}'", key)
      .with_hint("the keys are " + names + ", and preset.NAME; see `modelconvert config show`");
}

// A value given as text (command line, environment) in the key's type.
Result<ojson> typed(const ConfigKey& k, const ojson& v, std::string_view where) {
  auto bad = [&](std::string_view what) {
    return make_error(ErrorCode::InvalidArgument, "{}: {} must be {}, got {}", where, k.name, what,
                      v.is_string() ? "'" + v.get<std::string>() + "'" : v.dump());
  };
  switch (k.type) {
    case KeyType::Count: {
      if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) return ojson(v.get<uint64_t>());
      if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (!s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
          return ojson(uint64_t(std::stoull(s)));
      }
      return bad("a whole number >= 0");
    }
    case KeyType::Bool: {
      if (v.is_boolean()) return v;
      if (v.is_string()) {
        std::string s = v.get<std::string>();
        for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
        if (s == "true" || s == "1" || s == "yes" || s == "on") return ojson(true);
        if (s == "false" || s == "0" || s == "no" || s == "off") return ojson(false);
      }
      return bad("true or false");
    }
    case KeyType::Url: {
      if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0) return v;
      }
      return bad("an http:// or https:// URL");
    }
    case KeyType::Path:
      if (v.is_string() && !v.get<std::string>().empty()) return v;
      return bad("a path");
  }
  return bad("valid");
}

Result<ojson> read_file_tree(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return ojson::object();
  auto t = MC_TRY(read_yaml_or_json_file(p.string()));
  if (t.is_null()) return ojson::object();
  if (!t.is_object())
    return make_error(ErrorCode::InvalidArgument, "the config file must be a map of keys").with_path(p.string());
  return t;
}

}  // namespace

std::span<const ConfigKey> config_keys() { return kKeys; }

fs::path config_file_path() {
  const std::string x = env("XDG_CONFIG_HOME");
  return (x.empty() ? home_dir() / ".config" : fs::path(x)) / "modelconvert" / "config.yaml";
}

Status check_preset(std::string_view name, const ojson& fields) {
  if (name.empty()) return make_error(ErrorCode::InvalidArgument, "a preset needs a name");
  if (!fields.is_object())
    return make_error(ErrorCode::InvalidArgument, "preset '{}' must be a map of options", name)
        .with_hint(R"(e.g. {"output_format": "gguf", "quantization": "q4_k_m"})");
  for (auto it = fields.begin(); it != fields.end(); ++it)
    if (std::find(kPresetFields.begin(), kPresetFields.end(), it.key()) == kPresetFields.end()) {
      std::string names;
      for (auto f : kPresetFields) names += (names.empty() ? "" : ", ") + std::string(f);
      return make_error(ErrorCode::InvalidArgument, "preset '{}': unknown option '{}'", name, it.key())
          .with_hint("a preset may set " + names);
    }
  if (!fields.contains("output_format") || !fields["output_format"].is_string())
    return make_error(ErrorCode::InvalidArgument, "preset '{}' has no output_format", name);
  return {};
}

Result<Config> Config::load() {
  Config c;
  c.file_ = config_file_path();
  const ojson tree = MC_TRY(read_file_tree(c.file_));
  for (auto it = tree.begin(); it != tree.end(); ++it) {
    if (it.key() == "presets") {
      if (!it.value().is_object())
        return make_error(ErrorCode::InvalidArgument, "presets must be a map of name -> options").with_path(c.file_.string());
      c.file_presets_ = it.value();
      continue;
    }
    if (!find_key(it.key())) c.warnings_.push_back(fmt::format("{}: unknown key '{}' ignored", c.file_.string(), it.key()));
  }
  for (const auto& k : kKeys) {
    Setting s{std::string(k.name), nullptr, "default"};
    if (!k.fallback.empty()) s.value = MC_TRY(typed(k, std::string(k.fallback), "built-in default"));
    if (tree.contains(k.name) && !tree[std::string(k.name)].is_null()) {
      s.value = MC_TRY(typed(k, tree[std::string(k.name)], c.file_.string()));
      s.source = "file " + c.file_.string();
    }
    // Later wins: MODELCONVERT_<KEY> over the file, the ecosystem's own variable over both (it
    // is what every other tool of that ecosystem obeys too).
    for (const std::string& var : {env_name(k.name), std::string(k.env_alias)}) {
      if (var.empty()) continue;
      const std::string v = env(var);
      if (v.empty()) continue;
      s.value = MC_TRY(typed(k, v, "$" + var));
      s.source = "env " + var;
    }
    c.values_[s.key] = std::move(s);
  }
  return c;
}

Result<Setting> Config::get(std::string_view key) const {
  if (key.rfind("preset.", 0) == 0) {
    auto p = MC_TRY(preset(key.substr(7)));
    return Setting{std::string(key), p.fields, p.source};
  }
  auto it = values_.find(key);
  if (it == values_.end()) return unknown_key(key);
  return it->second;
}

std::vector<Setting> Config::all() const {
  std::vector<Setting> out;
  for (const auto& k : kKeys) out.push_back(values_.find(k.name)->second);
  return out;
}

std::vector<Preset> Config::presets() const {
  std::vector<Preset> out;
  for (const auto& b : kPresets) out.push_back({std::string(b.name), ojson::parse(b.json), "built-in"});
  for (auto it = file_presets_.begin(); it != file_presets_.end(); ++it) {
    Preset p{it.key(), it.value(), "file " + file_.string()};
    auto same = std::find_if(out.begin(), out.end(), [&](const Preset& q) { return q.name == p.name; });
    if (same != out.end()) *same = std::move(p);
    else out.push_back(std::move(p));
  }
  return out;
}

Result<Preset> Config::preset(std::string_view name) const {
  for (auto& p : presets())
    if (p.name == name) {
      MC_CHECK(check_preset(p.name, p.fields));
      return p;
    }
  std::string names;
  for (const auto& p : presets()) names += (names.empty() ? "" : ", ") + p.name;
  return make_error(ErrorCode::InvalidArgument, "unknown preset '{}'", name).with_hint("the presets are " + names);
}

uint64_t Config::count(std::string_view key) const {
  auto it = values_.find(key);
  return it != values_.end() && it->second.value.is_number() ? it->second.value.get<uint64_t>() : 0;
}

std::string Config::text(std::string_view key) const {
  auto it = values_.find(key);
  return it != values_.end() && it->second.value.is_string() ? it->second.value.get<std::string>() : std::string();
}

bool Config::flag(std::string_view key) const {
  auto it = values_.find(key);
  return it != values_.end() && it->second.value.is_boolean() && it->second.value.get<bool>();
}

namespace {

// Read-modify-write of the file under an exclusive lock, so two `config set` never lose one.
Status edit_file(const std::function<Status(ojson&)>& change) {
  const fs::path file = config_file_path();
  auto lock = MC_TRY(hub::FileLock::acquire(file.string() + ".lock"));
  ojson tree = MC_TRY(read_file_tree(file));
  MC_CHECK(change(tree));
  return hub::write_file_atomic(file, to_yaml(tree));
}

}  // namespace

Status config_set(std::string_view key, std::string_view value) {
  if (key.rfind("preset.", 0) == 0) {
    const std::string name(key.substr(7));
    const ojson fields = MC_TRY(parse_yaml(std::string(value), "the preset value"));
    MC_CHECK(check_preset(name, fields));
    return edit_file([&](ojson& t) -> Status {
      if (!t.contains("presets") || !t["presets"].is_object()) t["presets"] = ojson::object();
      t["presets"][name] = fields;
      return {};
    });
  }
  const ConfigKey* k = find_key(key);
  if (!k) return unknown_key(key);
  const ojson v = MC_TRY(typed(*k, std::string(value), "config set"));
  return edit_file([&](ojson& t) -> Status {
    t[std::string(key)] = v;
    return {};
  });
}

Status config_unset(std::string_view key) {
  if (key.rfind("preset.", 0) == 0) {
    const std::string name(key.substr(7));
    return edit_file([&](ojson& t) -> Status {
      if (!t.contains("presets") || !t["presets"].contains(name))
        return make_error(ErrorCode::NotFound, "no preset '{}' in the config file", name).with_path(config_file_path().string());
      t["presets"].erase(name);
      return {};
    });
  }
  if (!find_key(key)) return unknown_key(key);
  return edit_file([&](ojson& t) -> Status {
    t.erase(std::string(key));
    return {};
  });
}

}  // namespace mc::app
