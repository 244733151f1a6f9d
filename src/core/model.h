// Model: the one data type that flows from readers through transforms to writers.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace mc {

using ojson = nlohmann::ordered_json;  // keeps config.json key order when we must rewrite it

// A file carried through a conversion unchanged (tokenizer files, generation_config.json, ...),
// or replaced by `content` when a transform had to change it.
struct ExtraFile {
  std::string name;                   // relative name in the output directory
  std::filesystem::path source;       // where to copy it from (empty if `content` is set)
  std::optional<std::string> content;
};

struct Model {
  std::string source_format;     // format id it was read from ("hf", "safetensors", "gguf", ...)
  std::string source_path;
  // config.json as read (ordered). `config_text` holds the original bytes: a writer copies them
  // verbatim unless `config_modified` says a transform changed something.
  ojson config = ojson::object();
  std::string config_text;
  bool config_modified = false;
  TensorStore tensors;
  std::vector<ExtraFile> extra_files;
  std::vector<std::string> weight_files;  // weight files read, relative to source_path (shards)
  // Names of tensors that share storage with another (tied), e.g. lm_head.weight -> embed.
  std::vector<std::pair<std::string, std::string>> tied;

  const ExtraFile* find_extra(std::string_view name) const {
    for (const auto& f : extra_files)
      if (f.name == name) return &f;
    return nullptr;
  }
  void set_extra(ExtraFile f) {
    for (auto& g : extra_files)
      if (g.name == f.name) {
        g = std::move(f);
        return;
      }
    extra_files.push_back(std::move(f));
  }
  void set_config(ojson c) {
    config = std::move(c);
    config_modified = true;
  }
};

}  // namespace mc
