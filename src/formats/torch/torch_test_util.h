// Helpers shared by the torch tests: build zip archives and pickles byte by byte.
#pragma once

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "formats/torch/zip.h"

namespace mc::torch::testing {

// A zip with the given (name, bytes) entries, laid out like our writer (stored, 64-aligned).
inline std::string make_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<ZipOutEntry> es;
  for (const auto& [n, b] : files) es.push_back({n, b.size()});
  const uint64_t cd = plan_zip(es);
  std::string out(cd, '\0');
  for (size_t k = 0; k < es.size(); ++k) {
    es[k].crc32 = crc32_update(0, std::as_bytes(std::span(files[k].second)));
    const std::string h = zip_local_header(es[k]);
    out.replace(es[k].header_offset, h.size(), h);
    out.replace(es[k].data_offset, files[k].second.size(), files[k].second);
  }
  return out + zip_central_directory(es, cd);
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline std::span<const std::byte> as_span(const std::string& s) { return std::as_bytes(std::span(s)); }

}  // namespace mc::torch::testing
