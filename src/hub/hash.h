// SHA-256 and SHA-1 (FIPS 180-4), streaming. The hub names a cached blob by its ETag: the
// SHA-256 of the content for LFS files, the git blob id (SHA-1 of "blob <size>\0" + content)
// for files stored in git; both are checked before a download enters the cache.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "core/error.h"

namespace mc::hub {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::byte> data);
  void update(std::string_view s) { update(std::as_bytes(std::span(s.data(), s.size()))); }
  std::string hex();  // finishes; the object is spent afterwards

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

class Sha1 {
 public:
  Sha1();
  void update(std::span<const std::byte> data);
  void update(std::string_view s) { update(std::as_bytes(std::span(s.data(), s.size()))); }
  std::string hex();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 5> h_;
  std::array<uint8_t, 64> buf_{};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

// Hex digests of a whole file, read in 1 MiB pieces.
Result<std::string> sha256_file(const std::filesystem::path& p);
// The git blob id of a file's content: sha1("blob <size>\0" + content).
Result<std::string> git_blob_sha1_file(const std::filesystem::path& p);

}  // namespace mc::hub
