// The user's configuration: $XDG_CONFIG_HOME/modelconvert/config.yaml (default ~/.config), a YAML
// map of the keys below plus `presets:` (named sets of convert options). The environment
// overrides the file: a value comes from the ecosystem's own variable where one exists
// (HF_ENDPOINT, MTK_CLOUD_PATH: what every tool of that ecosystem obeys), else MODELCONVERT_<KEY>,
// else the file, else the built-in default; each value remembers where it came from.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"

namespace mc::app {

namespace fs = std::filesystem;

enum class KeyType : uint8_t { Count, Url, Path, Bool };  // Count: a whole number >= 0

struct ConfigKey {
  std::string_view name;
  KeyType type;
  std::string_view fallback;   // built-in default ("" = unset)
  std::string_view env_alias;  // the ecosystem's variable ("" = none)
  std::string_view description;
};
// The one table of keys.
std::span<const ConfigKey> config_keys();

struct Setting {
  std::string key;
  ojson value;         // null when unset
  std::string source;  // "default" | "file PATH" | "env NAME"
};

struct Preset {
  std::string name;
  ojson fields;  // output_format, quantization, quantization_config, dtype, model_type, description
  std::string source;  // "built-in" | "file PATH"
};

// $XDG_CONFIG_HOME/modelconvert/config.yaml.
fs::path config_file_path();

class Config {
 public:
  // Reads the file (absent = empty) and the environment. Fails on a file that is not YAML, a
  // value of the wrong type (InvalidArgument naming the file or variable).
  static Result<Config> load();

  const fs::path& file() const { return file_; }
  // InvalidArgument for an unknown key (listing the known ones).
  Result<Setting> get(std::string_view key) const;
  std::vector<Setting> all() const;
  std::vector<Preset> presets() const;  // built-in first; the file's replace same-named ones
  Result<Preset> preset(std::string_view name) const;
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Typed access to keys known to exist.
  uint64_t count(std::string_view key) const;
  std::string text(std::string_view key) const;  // "" when unset
  bool flag(std::string_view key) const;

 private:
  fs::path file_;
  ojson file_presets_ = ojson::object();
  std::map<std::string, Setting, std::less<>> values_;
  std::vector<std::string> warnings_;
};

// `config set KEY VALUE`: checks the key and the value's type, then rewrites the file (under a
// lock, through a rename). KEY may be preset.NAME with VALUE a JSON or YAML map of options.
Status config_set(std::string_view key, std::string_view value);
// `config unset KEY` (or preset.NAME): removes it from the file.
Status config_unset(std::string_view key);

// Checks a preset's fields (known option names, output_format present).
Status check_preset(std::string_view name, const ojson& fields);

}  // namespace mc::app
