// Cheap probes shared by the detectors: they read at most the first and last 64 KiB.
#pragma once

#include <filesystem>
#include <string>

namespace mc::io {

struct Probe {
  std::string head;  // first bytes (up to 64 KiB)
  std::string tail;  // last bytes (up to 64 KiB; the zip central directory usually lives here)
  uint64_t size = 0;
  bool ok = false;
};
// True when p is a directory; false on any error (missing, no permission).
bool is_dir(const std::filesystem::path& p);
Probe probe_file(const std::filesystem::path& p);
bool is_zip(const Probe& p);
// Reads a small JSON file's text ("" if missing or over 16 MiB).
std::string slurp_small(const std::filesystem::path& p);

}  // namespace mc::io
