// libFuzzer target: the Megatron reader over a one-rank checkpoint: the input is the rank file
// mp_rank_00/model_optim_rng.pt (torch.save zip: pickled args Namespace, the model's state dict,
// checkpoint_version), read into an HF-form model through the engine's entry point.
#include <cstddef>
#include <cstdint>

#include "formats/megatron/megatron.h"
#include "scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto dir = mc::fuzz::scratch_dir() / "megatron";
  if (!mc::fuzz::write_scratch(dir / "mp_rank_00" / "model_optim_rng.pt", data, size)) return 0;
  auto m = mc::megatron::read(dir, {});
  if (m)
    for (const auto& e : m->tensors) (void)e.nbytes();
  return 0;
}
