// libFuzzer target: the safetensors header parser (8-byte length, JSON header, data offsets)
// over a whole file image, in both its first-error and collect-all forms.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "formats/safetensors/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  auto h = mc::safetensors::parse_header(file, "fuzz.safetensors");
  if (h) {
    for (const auto& t : h->tensors)
      if (t.end < t.begin || t.end > size) __builtin_trap();  // accepted offsets must be in the file
  }
  std::vector<mc::Error> errors;
  (void)mc::safetensors::check_header(file, "fuzz.safetensors", errors);
  return 0;
}
