#include "converter/input_checks.h"

#include "arch/config.h"
#include "io/probe.h"

namespace mc::converter {

namespace fs = std::filesystem;

std::string config_source(const Model& m) {
  const fs::path src(m.source_path);
  std::error_code ec;
  if (io::is_dir(src) && fs::exists(src / "config.json", ec)) return (src / "config.json").string();
  return m.source_path;
}

namespace {
bool is_norm(const std::string& name) {
  return name.find("norm") != std::string::npos || name.find("ln_") != std::string::npos;
}
}  // namespace

Status check_input(const Model& m, bool check_weights) {
  if (m.config.empty()) return {};
  auto ac = arch::from_hf_config(m.config);
  if (!ac) return std::move(ac).error().with_path(config_source(m));
  if (ac->family == arch::Family::Unknown || !check_weights || m.tensors.empty()) return {};
  auto specs = arch::hf_param_specs(*ac);
  if (!specs) return {};  // a family without a parameter table: nothing to compare
  // Only weights named as transformers names them can be compared (quantized or foreign layouts
  // keep their norms under these names too, so norms are what is checked).
  bool any = false;
  for (const auto& s : *specs) any = any || m.tensors.contains(s.name);
  if (!any) return {};
  for (const auto& s : *specs) {
    if (!is_norm(s.name) || m.tensors.contains(s.name)) continue;
    return make_error(ErrorCode::NotFound,
                      "the weights have no '{}', which the config ({} layers, {}) implies", s.name,
                      ac->num_layers, ac->model_type.empty() ? std::string(arch::family_name(ac->family)) : ac->model_type)
        .with_path(config_source(m))
        .with_hint("the config and the weights are from different models, or the weights are incomplete");
  }
  return {};
}

}  // namespace mc::converter
