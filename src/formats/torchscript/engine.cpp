// The TorchScript engine's table row and detector (formats.md §4.1): a zip whose central
// directory (in the last 64 KiB, where torch and we put constants.pkl and code/) lists
// `<name>/constants.pkl` or `<name>/code/`. torch.save checkpoints have neither, and the pytorch
// engine's detector refuses archives that list constants.pkl.
#include "formats/torchscript/torchscript.h"

#include "io/probe.h"

namespace mc::torchscript {

formats::Confidence detect(const std::filesystem::path& p) {
  if (io::is_dir(p)) return formats::Confidence::No;
  const auto pr = io::probe_file(p);
  if (!pr.ok || !io::is_zip(pr)) return formats::Confidence::No;
  const bool ts = pr.tail.find("/constants.pkl") != std::string::npos || pr.tail.find("/code/__torch__") != std::string::npos ||
                  pr.head.find("/constants.pkl") != std::string::npos;
  return ts ? formats::Confidence::Certain : formats::Confidence::No;
}

// The extension a default output path gets (torch.jit.save's usual one).
constexpr std::string_view kTsExts[] = {".pt"};

const formats::Engine& engine() {
  static const formats::Engine e{
      .id = "torchscript",
      .description = "TorchScript archive (torch.jit.load): forward(input_ids) -> logits, written from the op graph",
      .detect = detect,
      .read = read_model,
      .write = write_model,
      .out_is_dir = false,
      .validate = validate_archive,
      .describe = describe_archive,
      .caps = {.dtype = true, .single_file_exts = kTsExts},
      .takes_family = [](const arch::FamilyInfo&) { return true; },
  };
  return e;
}

}  // namespace mc::torchscript
