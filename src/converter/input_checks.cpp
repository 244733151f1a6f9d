#include "converter/input_checks.h"

#include <algorithm>

#include "arch/config.h"
#include "io/mapped_file.h"
#include "io/probe.h"
#include "tokenizer/loaders.h"

namespace mc::converter {

namespace fs = std::filesystem;

std::string config_source(const Model& m) {
  const fs::path src(m.source_path);
  std::error_code ec;
  if (io::is_dir(src) && fs::exists(src / "config.json", ec)) return (src / "config.json").string();
  return m.source_path;
}

Status check_input_path(const fs::path& input) {
  std::error_code ec;
  const auto st = fs::symlink_status(input, ec);
  if (!fs::exists(st)) return make_error(ErrorCode::NotFound, "input does not exist").with_path(input.string());
  if (io::is_dir(input)) return {};
  return io::check_regular_file(input.string());
}

Status check_has_tensors(const Model& m) {
  if (!m.tensors.empty() || m.source_format == "config") return {};
  std::string where = m.source_path;
  if (m.weight_files.size() == 1 && io::is_dir(m.source_path)) where = (fs::path(m.source_path) / m.weight_files[0]).string();
  return make_error(ErrorCode::NotFound, "the input holds no tensors")
      .with_path(where)
      .with_hint("the weights file is empty or incomplete: re-download it (a config.json alone converts with "
                 "--fake-weight)");
}

namespace {
bool is_norm(const std::string& name) {
  return name.find("norm") != std::string::npos || name.find("ln_") != std::string::npos;
}
}  // namespace

Status check_tokenizer_files(const Model& m) {
  for (const auto& f : m.extra_files) {
    if (f.content || (f.name != "tokenizer.json" && f.name != "tokenizer.model")) continue;
    // The vocabulary is kept for the writer's parse of the same file.
    Status v = f.name == "tokenizer.json" ? tok::check_tokenizer_json(f.source.string())
                                          : tok::check_sentencepiece_model(f.source.string());
    if (v) continue;
    // A tokenizer of a kind we do not load is carried as it is; a broken one is not.
    const ErrorCode c = v.error().code;
    if (c == ErrorCode::Unsupported) continue;
    Error e = std::move(v).error();
    if (e.path.empty()) e.path = f.source.string();
    if (c != ErrorCode::Io && c != ErrorCode::LimitExceeded) e.code = ErrorCode::Corrupt;
    if (e.hint.empty()) e.hint = "the tokenizer file is damaged: re-download it (it would be copied into the output)";
    return e;
  }
  return {};
}

Status check_input(const Model& m, bool check_weights) {
  MC_CHECK(check_tokenizer_files(m));
  if (m.config.empty()) return {};
  auto ac = arch::from_hf_config(m.config);
  if (!ac) return std::move(ac).error().with_path(config_source(m));
  if (ac->family == arch::Family::Unknown) return {};
  if (ac->info()->decoder == arch::Decoder::LlamaLike && ac->head_dim % 2 != 0) {
    return make_error(ErrorCode::Corrupt, "head size {} is odd: rotary embeddings rotate pairs of dimensions",
                      ac->head_dim)
        .with_path(config_source(m))
        .with_hint("fix head_dim (or hidden_size / num_attention_heads) in config.json");
  }
  if (!m.config.contains("head_dim") && ac->num_heads > 0 && ac->hidden_size % ac->num_heads != 0) {
    return make_error(ErrorCode::Corrupt, "hidden size {} is not a multiple of the {} attention heads",
                      ac->hidden_size, ac->num_heads)
        .with_path(config_source(m))
        .with_hint("fix hidden_size or num_attention_heads in config.json (or give head_dim)");
  }
  if (!check_weights || m.tensors.empty()) return {};
  auto specs = arch::hf_param_specs(*ac);
  if (!specs) return {};  // a family without a parameter table: nothing to compare
  // Only weights named as transformers names them can be compared (quantized or foreign layouts
  // keep their norms under these names too, so norms are what is checked).
  bool any = false;
  for (const auto& s : *specs) any = any || m.tensors.contains(s.name);
  if (!any) return {};
  for (const auto& s : *specs) {
    // An empty matrix where the config implies rows and columns (e.g. lm_head [0, hidden]).
    const TensorEntry* t = m.tensors.find(s.name);
    if (t && t->numel() == 0 && std::find(s.shape.begin(), s.shape.end(), 0) == s.shape.end()) {
      return make_error(ErrorCode::Mismatch, "the tensor is empty (shape {}) but the config implies {}",
                        shape_str(t->shape), shape_str(s.shape))
          .with_path(m.weight_files.size() == 1 && io::is_dir(m.source_path)
                         ? (fs::path(m.source_path) / m.weight_files[0]).string()
                         : m.source_path)
          .with_tensor(s.name)
          .with_hint("the weights are damaged or belong to another model");
    }
  }
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
