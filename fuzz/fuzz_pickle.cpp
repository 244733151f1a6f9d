// libFuzzer target: the inert pickle reader (never executes anything) and the checks run on
// what it builds (unsafe globals, weights-only rules, the debug printer).
#include <cstddef>
#include <cstdint>
#include <span>

#include "formats/torch/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  mc::torch::Tree tree;
  auto r = mc::torch::parse_pickle(bytes, tree);
  if (!r || !r->value) return 0;
  if (r->end > size) __builtin_trap();
  (void)mc::torch::find_unsafe_globals(*r->value);
  (void)mc::torch::check_weights_only(*r->value);
  (void)mc::torch::to_debug_string(*r->value);
  return 0;
}
