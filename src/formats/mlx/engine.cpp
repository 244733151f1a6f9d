// MLX engine table entry and detection (formats.md §8): config.json with a "quantization" object,
// or safetensors whose __metadata__ says {"format": "mlx"}.
#include "formats/mlx/mlx.h"

#include <nlohmann/json.hpp>

#include "io/probe.h"

namespace mc::mlx {

namespace fs = std::filesystem;
using formats::Confidence;

Confidence detect(const fs::path& p) {
  if (!io::is_dir(p)) return Confidence::No;
  const std::string text = io::slurp_small(p / "config.json");
  const auto cfg = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (cfg.is_object() && cfg.contains("quantization") && cfg["quantization"].is_object() &&
      cfg["quantization"].contains("group_size"))
    return Confidence::Certain;
  // Unquantized mlx-lm output: safetensors metadata {"format": "mlx"}.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(p, ec)) {
    if (e.path().extension() != ".safetensors") continue;
    const auto pr = io::probe_file(e.path());
    if (pr.ok && pr.head.find("\"format\":\"mlx\"") != std::string::npos) return Confidence::Certain;
    break;
  }
  return Confidence::No;
}

namespace {
Result<Model> read_any(const fs::path& p, const formats::ReadOptions& o) { return read_dir(p, o); }
Result<formats::WriteResult> write_any(const Model& m, const fs::path& out, const formats::WriteOptions& o) {
  return write_dir(m, out, o);
}
}  // namespace

const formats::Engine& engine() {
  static const formats::Engine e{
      .id = "mlx",
      .description = "mlx-lm directory, float or affine-quantized (Apple silicon)",
      .detect = detect,
      .read = read_any,
      .write = write_any,
      .validate = validate_dir,
      .caps = {.quant = quant_names(),
               .quant_help = "MLX affine groups (bits 2-8, group_size 32/64/128), mlx-lm layout; "
                             "q4_k_m/q5_k_m/q8_0 mean 4/5/8 bits",
               .quant_config = true,
               .shard_size = true},
      .takes_family = [](const arch::FamilyInfo& f) { return f.mlx; },
  };
  return e;
}

}  // namespace mc::mlx
