#include "formats/hf/weights.h"

#include "formats/safetensors/safetensors.h"
#include "formats/torch/torch_io.h"

namespace mc::hf {

namespace {
constexpr uint64_t kDefaultShardBytes = 5'000'000'000;  // huggingface_hub's max_shard_size
}  // namespace

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
  if (dir) {
    w.tensors = MC_TRY(torch::open_hf_torch_dir(path.string()));
    std::error_code ec;
    if (fs::exists(path / "pytorch_model.bin.index.json", ec)) {
      w.files.push_back("pytorch_model.bin.index.json");
    } else {
      w.files.push_back("pytorch_model.bin");
    }
  } else {
    auto f = MC_TRY(torch::open_torch_file(path.string()));
    w.tensors = std::move(f.tensors);
    w.files.push_back(path.filename().string());
  }
  w.format = "bin";
  return w;
}

Result<std::vector<std::string>> write_weights(const TensorStore& tensors, const fs::path& out,
                                               const std::string& format, const formats::WriteOptions& opt) {
  if (format == "safetensors") {
    safetensors::WriteOpts so;
    so.pool = opt.pool;
    if (opt.max_shard_bytes) so.max_shard_bytes = *opt.max_shard_bytes;
    so.sink = opt.progress;
    so.single_file = opt.single_file;
    so.chunk_bytes = opt.chunk_bytes;
    return safetensors::write(tensors, out, so);
  }
  torch::WriteOptions to;
  to.pool = opt.pool;
  to.chunk_bytes = opt.chunk_bytes;
  to.sink = opt.progress;
  to.atomic = false;  // the converter already writes under a temporary path
  to.force = true;
  if (opt.single_file) {
    MC_CHECK(torch::write_torch_file(tensors, out, to));
    return std::vector<std::string>{out.filename().string()};
  }
  return torch::write_torch_shards(tensors, out, opt.max_shard_bytes.value_or(kDefaultShardBytes), to);
}

void validate_weights(const fs::path& path, formats::ValidationReport& report) {
  const bool dir = is_dir(path);
  if ((dir && safetensors::find_weight_files(path).empty()) || (!dir && is_bin_file(path))) {
    std::vector<fs::path> files;
    if (!dir) {
      files.push_back(path);
    } else {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(path, ec))
        if (e.path().extension() == ".bin" && e.path().filename().string().rfind("pytorch_model", 0) == 0)
          files.push_back(e.path());
    }
    if (files.empty()) {
      report.errors.push_back(
          make_error(ErrorCode::NotFound, "no weights found (no *.safetensors, no pytorch_model*.bin)")
              .with_path(path.string()));
    }
    for (const auto& f : files)
      for (auto& e : torch::validate_torch_file(f.string())) report.errors.push_back(std::move(e));
    if (report.errors.empty() && dir) {
      // Index consistency: every weight_map entry must be found (open_hf_torch_dir checks it).
      if (auto st = torch::open_hf_torch_dir(path.string()); !st) report.errors.push_back(st.error());
    }
    return;
  }
  auto r = safetensors::validate_path(path);
  for (auto& e : r.errors) report.errors.push_back(std::move(e));
  for (auto& w : r.warnings) report.warnings.push_back(std::move(w));
}

}  // namespace mc::hf
