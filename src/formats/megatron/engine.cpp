// Registry entry of the Megatron engine and its detector (formats.md §9.1).
#include "formats/megatron/megatron.h"

#include "io/probe.h"

namespace mc::megatron {

namespace fs = std::filesystem;
using formats::Confidence;

namespace {

bool has_entry_starting(const fs::path& dir, std::string_view prefix) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().starts_with(prefix)) return true;
  return false;
}

}  // namespace

Confidence detect(const fs::path& p) {
  if (!io::is_dir(p)) return Confidence::No;
  std::error_code ec;
  if (fs::exists(p / "latest_checkpointed_iteration.txt", ec)) return Confidence::Certain;
  if (fs::exists(p / "model.pt", ec) && fs::exists(p / "metadata.json", ec)) return Confidence::Certain;
  if (has_entry_starting(p, "iter_") || fs::exists(p / "release", ec) || has_entry_starting(p, "mp_rank_"))
    return Confidence::Likely;
  return Confidence::No;
}

const formats::Engine& engine() {
  static const formats::Engine e{
      .id = "megatron",
      .description = "Megatron-LM checkpoint (legacy or Megatron-Core names, TP/PP)",
      .detect = detect,
      .read = read,
      .write = write,
      .validate = validate,
      .describe = describe,
      .caps = {.parallel = true},
      .takes_family = [](const arch::FamilyInfo& f) { return f.megatron; },
  };
  return e;
}

}  // namespace mc::megatron
