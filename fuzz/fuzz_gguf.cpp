// libFuzzer target: the GGUF reader (header, key/values, tensor infos) over a file image, then
// every tensor as an entry and the hyper-parameters as an architecture config.
#include <cstddef>
#include <cstdint>
#include <span>

#include "formats/gguf/file.h"
#include "formats/gguf/mapping.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto f = mc::gguf::parse(bytes, nullptr, "fuzz.gguf");
  if (!f) return 0;
  for (const auto& t : f->tensors) {
    auto e = f->entry(t);
    if (e) (void)e->nbytes();
  }
  (void)mc::gguf::arch_from_file(*f);
  return 0;
}
