// Internals shared by the Megatron reader files (layout discovery, args access, assembly).
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"
#include "formats/engine.h"
#include "formats/megatron/layout.h"
#include "formats/torch/pickle.h"

namespace mc::megatron {

namespace fs = std::filesystem;
using torch::Value;

struct Layout {
  fs::path root;            // the directory given
  fs::path iter_dir;        // folder holding the mp_rank_* folders (root for model.pt)
  int64_t iteration = -1;   // -1: release / unknown
  bool release = false;
  bool single_file = false; // model.pt + metadata.json
  int tp = 1, pp = 1;
  std::vector<fs::path> files;  // index pp_rank * tp + tp_rank
};

Result<Layout> find_layout(const fs::path& path);

// args Namespace fields, with a JSON object (metadata.json) as fallback.
struct ArgsView {
  const Value* ns = nullptr;
  ojson meta = ojson::object();
  const Value* find(std::string_view key) const;
  std::optional<int64_t> i(std::string_view key) const;
  std::optional<double> f(std::string_view key) const;
  std::optional<bool> b(std::string_view key) const;
  std::optional<std::string> s(std::string_view key) const;
};

Result<Hyper> hyper_from_args(const ArgsView& a, const Layout& L, const fs::path& file);

std::span<const std::string_view> carried_names();

struct ReadOutcome {
  Model model;
  ojson info = ojson::object();  // layout, naming, hyper-parameters, vocab source
};
Result<ReadOutcome> read_checkpoint(const fs::path& path, const formats::ReadOptions& opt);

}  // namespace mc::megatron
