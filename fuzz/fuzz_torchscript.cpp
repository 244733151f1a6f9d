// libFuzzer target: the TorchScript reader: a torch.jit archive (zip of data.pkl, constants.pkl,
// code/*.py class declarations, data/ storages) opened and its module tree walked, collecting
// rule violations the way `validate` does.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "formats/torchscript/archive.h"
#include "scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto path = mc::fuzz::scratch_dir() / "ts" / "model.pt";
  if (!mc::fuzz::write_scratch(path, data, size)) return 0;
  std::vector<mc::Error> problems;
  auto a = mc::torchscript::open_archive(path, &problems);
  if (a)
    for (const auto& e : a->parameters) (void)e.nbytes();
  return 0;
}
