// Which files of a hub repository a conversion downloads (see select_files in hub/hub.h).
#include <algorithm>
#include <array>

#include "hub/hub.h"

namespace mc::hub {

namespace {

bool ends_with(std::string_view s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

bool starts_with(std::string_view s, std::string_view pre) { return s.rfind(pre, 0) == 0; }

// Files of other frameworks and runtimes: never needed to read a checkpoint.
constexpr std::array<std::string_view, 12> kOtherFrameworks = {
    ".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".tflite", ".mlmodel", ".gguf", ".ggml", ".ckpt", ".pth", ".npz"};
constexpr std::array<std::string_view, 5> kOtherFolders = {"onnx/", "coreml/", "original/", "openvino/", "mlx/"};

bool is_safetensors(std::string_view f) {
  return ends_with(f, ".safetensors") || ends_with(f, ".safetensors.index.json");
}
bool is_torch_weights(std::string_view f) {
  const auto slash = f.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? f : f.substr(slash + 1);
  return ends_with(f, ".pt") || ((starts_with(base, "pytorch_model") || starts_with(base, "model")) &&
                                 (ends_with(f, ".bin") || ends_with(f, ".bin.index.json")));
}

}  // namespace

Result<std::vector<std::string>> select_files(const std::vector<std::string>& siblings, const std::string& repo) {
  const bool has_config = std::find(siblings.begin(), siblings.end(), "config.json") != siblings.end();
  std::vector<std::string> ggufs;
  for (const auto& f : siblings)
    if (ends_with(f, ".gguf")) ggufs.push_back(f);
  if (!has_config && !ggufs.empty()) {
    if (ggufs.size() == 1) return ggufs;
    std::string names;
    for (size_t i = 0; i < ggufs.size() && i < 6; ++i) names += (i ? ", " : "") + ggufs[i];
    if (ggufs.size() > 6) names += ", ...";
    return make_error(ErrorCode::InvalidArgument, "'{}' holds {} GGUF files and no config.json: which one?", repo,
                      ggufs.size())
        .with_hint(fmt::format("name one, e.g. hf:{}/{} (files: {})", repo, ggufs[0], names));
  }
  const bool has_st = std::any_of(siblings.begin(), siblings.end(), [](const std::string& f) {
    return ends_with(f, ".safetensors") && f.find('/') == std::string::npos;
  });
  std::vector<std::string> out;
  for (const auto& f : siblings) {
    if (std::any_of(kOtherFolders.begin(), kOtherFolders.end(), [&](std::string_view d) { return starts_with(f, d); }))
      continue;
    if (std::any_of(kOtherFrameworks.begin(), kOtherFrameworks.end(), [&](std::string_view e) { return ends_with(f, e); }))
      continue;
    if (has_st && is_torch_weights(f)) continue;     // one weights format: safetensors wins
    if (ends_with(f, ".bin") && !is_torch_weights(f)) continue;  // e.g. training_args.bin (a pickle)
    if (is_safetensors(f) && f.find('/') != std::string::npos) continue;  // nested copies (other variants)
    out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mc::hub
