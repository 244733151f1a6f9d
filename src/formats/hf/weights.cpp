#include "formats/hf/weights.h"

#include "formats/safetensors/safetensors.h"

namespace mc::hf {

namespace fs = std::filesystem;

namespace {
bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
bool is_bin_file(const fs::path& p) { return p.extension() == ".bin" || p.extension() == ".pt" || p.extension() == ".pth"; }
}  // namespace

Result<LoadedWeights> load_weights(const fs::path& path) {
  LoadedWeights w;
  const bool dir = is_dir(path);
  if ((dir && !safetensors::find_weight_files(path).empty()) || (!dir && !is_bin_file(path))) {
    auto set = MC_TRY(safetensors::open_path(path));
    w.tensors = std::move(set.tensors);
    w.files = std::move(set.files);
    w.format = "safetensors";
    return w;
  }
  Error e = make_error(ErrorCode::Unsupported, "PyTorch .bin weights are not readable yet");
  e.path = path.string();
  return e;
}

Result<std::vector<std::string>> write_weights(const TensorStore& tensors, const fs::path& out,
                                               const std::string& format, const formats::WriteOptions& opt) {
  if (format == "safetensors") {
    safetensors::WriteOpts so;
    so.pool = opt.pool;
    so.max_shard_bytes = opt.max_shard_bytes;
    so.single_file = opt.single_file;
    so.chunk_bytes = opt.chunk_bytes;
    return safetensors::write(tensors, out, so);
  }
  Error e = make_error(ErrorCode::Unsupported, "writing PyTorch .bin weights is not available yet");
  e.path = out.string();
  return e;
}

void validate_weights(const fs::path& path, formats::ValidationReport& report) {
  auto r = safetensors::validate_path(path);
  for (auto& e : r.errors) report.errors.push_back(std::move(e));
  for (auto& w : r.warnings) report.warnings.push_back(std::move(w));
}

}  // namespace mc::hf
