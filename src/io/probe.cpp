#include "io/probe.h"

#include "io/mapped_file.h"

#include <fstream>

namespace mc::io {

bool is_dir(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}

Probe probe_file(const std::filesystem::path& p) {
  Probe pr;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return pr;
  pr.size = std::filesystem::file_size(p, ec);
  if (ec) return pr;
  std::ifstream f(p, std::ios::binary);
  if (!f) return pr;
  constexpr uint64_t kProbe = 64 * 1024;
  pr.head.resize(std::min(pr.size, kProbe));
  f.read(pr.head.data(), std::streamsize(pr.head.size()));
  const uint64_t tail_n = std::min(pr.size, kProbe);
  pr.tail.resize(tail_n);
  f.seekg(std::streamoff(pr.size - tail_n));
  f.read(pr.tail.data(), std::streamsize(tail_n));
  pr.ok = bool(f);
  return pr;
}

bool is_zip(const Probe& p) { return p.head.size() >= 4 && p.head.compare(0, 4, "PK\x03\x04") == 0; }

std::string slurp_small(const std::filesystem::path& p) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return {};
  if (std::filesystem::file_size(p, ec) > (16u << 20)) return {};
  std::ifstream f(p, std::ios::binary);
  std::string s(std::istreambuf_iterator<char>(f), {});
  // A JSON file nested deeper than any config is treated as unreadable (see check_json_depth).
  if (p.extension() == ".json" && !check_json_depth(s, p.string())) return {};
  return s;
}

}  // namespace mc::io
