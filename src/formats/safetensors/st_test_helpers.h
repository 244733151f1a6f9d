// Helpers shared by the safetensors tests: raw files forged byte by byte.
#pragma once

#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace mc::safetensors::test {

// 8-byte length (the header's own length unless `n` overrides it) + header + `data_bytes` bytes.
inline std::vector<std::byte> raw_file(std::string_view header, size_t data_bytes,
                                       std::optional<uint64_t> n = std::nullopt) {
  const uint64_t len = n.value_or(header.size());
  std::vector<std::byte> out(8 + header.size() + data_bytes);
  std::memcpy(out.data(), &len, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = std::byte(i * 7 + 1);
  return out;
}

inline void write_bytes(const std::string& path, std::span<const std::byte> b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

inline std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

inline TensorEntry owned(std::string name, DType t, Shape shape, std::vector<std::byte> bytes) {
  TensorEntry e{std::move(name), t, std::move(shape), nullptr};
  e.data = make_owned_data(std::move(bytes));
  return e;
}

// A tensor's bytes. Zero-size tensors are not read: core's read() would memcpy from a null
// pointer (harmless, but UBSan rejects it).
inline std::vector<std::byte> tensor_bytes(const TensorEntry& t) {
  if (t.nbytes() == 0) return {};
  return read_all(t).value();
}

}  // namespace mc::safetensors::test
