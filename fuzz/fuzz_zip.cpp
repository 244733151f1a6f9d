// libFuzzer target: the ZIP central-directory reader of torch.save archives. It reads a mapped
// file, so each input is written to one scratch file first.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "formats/torch/zip.h"
#include "io/mapped_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/mc-fuzz-zip-" + std::to_string(getpid()) + ".bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto m = mc::io::MappedFile::open(path);
  if (!m) return 0;
  auto z = mc::torch::ZipReader::open(*m);
  if (!z) return 0;
  for (const auto& e : z->entries()) {
    if (e.data_offset > size) __builtin_trap();
    auto d = z->data(e);
    if (d) (void)z->verify_crc(e);
  }
  return 0;
}
