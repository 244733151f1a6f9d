// The ZIP container of torch.save files (formats.md §3.1): a bounds-checked central-directory
// reader (ZIP64 included) that hands out stored entries as spans of the mapped file, and the layout
// half of a writer that stores entries uncompressed with 64-byte aligned data ("FB" extra field).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "io/mapped_file.h"

namespace mc::torch {

struct ZipLimits {
  uint64_t max_entries = uint64_t(1) << 22;
  uint32_t max_name_bytes = 4096;
};

struct ZipEntry {
  std::string name;          // full name inside the archive ("model/data/0")
  uint64_t header_offset = 0;
  uint64_t data_offset = 0;  // first byte of the (stored) data in the file
  uint64_t size = 0;         // uncompressed size
  uint64_t compressed_size = 0;
  uint32_t crc32 = 0;
  uint16_t method = 0;       // 0 stored, 8 deflate
};

class ZipReader {
 public:
  // Parses the central directory; every entry must live under the top-level folder of the first
  // one (torch's rule), with no "..", absolute or backslash names, and data inside the file.
  static Result<ZipReader> open(io::MappedFilePtr file, const ZipLimits& limits = {});

  const std::string& prefix() const { return prefix_; }  // "name/" (with the slash)
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // Entry by name relative to the prefix ("data.pkl", "data/0"); nullptr if absent.
  const ZipEntry* find(std::string_view rel) const;
  // The bytes of a stored entry, without a copy; Unsupported for compressed entries.
  Result<std::span<const std::byte>> data(const ZipEntry& e) const;
  // Recomputes the entry's CRC-32 and compares it with the directory's.
  Status verify_crc(const ZipEntry& e) const;
  const io::MappedFilePtr& file() const { return file_; }

 private:
  io::MappedFilePtr file_;
  std::string prefix_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // relative name -> entry
};

// CRC-32 (zlib's polynomial) of a buffer, continuing from `crc`; and the CRC of A||B from the
// CRCs of A and B and B's length (lets chunks written in parallel be checksummed independently).
uint32_t crc32_update(uint32_t crc, std::span<const std::byte> data);
uint32_t crc32_combine_parts(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

// ---- writing --------------------------------------------------------------------------------

struct ZipOutEntry {
  std::string name;
  uint64_t size = 0;
  uint32_t crc32 = 0;  // filled in after the data was written
  uint64_t header_offset = 0;
  uint64_t data_offset = 0;  // multiple of kZipAlignment
};

inline constexpr uint64_t kZipAlignment = 64;

// Assigns offsets: entries in order, each local header padded (FB extra) so its data starts at a
// multiple of 64. Returns the offset where the central directory starts.
uint64_t plan_zip(std::vector<ZipOutEntry>& entries);
// The local header of an entry, exactly data_offset - header_offset bytes long.
std::string zip_local_header(const ZipOutEntry& e);
// Central directory + ZIP64 end records + end record, to be written at `cd_offset`.
std::string zip_central_directory(const std::vector<ZipOutEntry>& entries, uint64_t cd_offset);

}  // namespace mc::torch
