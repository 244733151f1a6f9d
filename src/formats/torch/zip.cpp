// ZIP reader/writer for torch.save archives (formats.md §3.1; record layouts from the ZIP
// APPNOTE: local header 30 bytes + name + extra, central header 46 bytes + name + extra +
// comment, end record 22 bytes + comment, ZIP64 end record 56 bytes located by a 20-byte
// locator just before the end record, ZIP64 extra field id 0x0001 holding the 8-byte values of
// the header fields that read 0xFFFFFFFF, in the order usize, csize, header offset).
//
// CRC-32 design: torch's reader does not check CRCs (torch 1.13 loads a file whose data bytes
// no longer match), but other zip tools do, so the writer computes them. Storages are written in
// parallel chunks by io::write_tensors; each chunk's CRC is taken from the bytes being written
// and the per-entry CRC is assembled with crc32_combine, so no extra pass over the data is made.
#include "formats/torch/zip.h"

#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstring>

namespace mc::torch {

namespace {
constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;
constexpr uint32_t kMax32 = 0xFFFFFFFFu;

template <typename T>
T rd(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

Error zerr(ErrorCode c, uint64_t off, std::string msg) {
  Error e;
  e.code = c;
  e.offset = off;
  e.message = std::move(msg);
  return e;
}

bool unsafe_name(std::string_view n) {
  if (n.empty() || n.front() == '/' || n.find('\\') != std::string_view::npos ||
      n.find('\0') != std::string_view::npos)
    return true;
  size_t b = 0;
  while (b <= n.size()) {
    size_t e = n.find('/', b);
    if (e == std::string_view::npos) e = n.size();
    if (n.substr(b, e - b) == "..") return true;
    b = e + 1;
  }
  return false;
}
}  // namespace

Result<ZipReader> ZipReader::open(io::MappedFilePtr file, const ZipLimits& lim) {
  const auto bytes = file->bytes();
  const uint64_t n = bytes.size();
  const std::byte* b = bytes.data();
  if (n < 22) return zerr(ErrorCode::Corrupt, 0, fmt::format("{} bytes is too small for a zip archive", n));
  // The end record sits in the last 22 + 65535 bytes (its comment is at most 65535 bytes).
  uint64_t eocd = UINT64_MAX;
  const uint64_t lowest = n > 22 + 65535 ? n - 22 - 65535 : 0;
  for (uint64_t p = n - 22;; --p) {
    if (rd<uint32_t>(b + p) == kEndSig && p + 22 + rd<uint16_t>(b + p + 20) <= n) {
      eocd = p;
      break;
    }
    if (p == lowest) break;
  }
  if (eocd == UINT64_MAX)
    return zerr(ErrorCode::Corrupt, 0, "no zip end-of-central-directory record (not a zip, or truncated)");
  uint64_t count = rd<uint16_t>(b + eocd + 10);
  uint64_t cd_size = rd<uint32_t>(b + eocd + 12);
  uint64_t cd_off = rd<uint32_t>(b + eocd + 16);
  if (eocd >= 20 && rd<uint32_t>(b + eocd - 20) == kLocator64Sig) {
    const uint64_t z64 = rd<uint64_t>(b + eocd - 20 + 8);
    if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || rd<uint32_t>(b + z64) != kEnd64Sig)
      return zerr(ErrorCode::Corrupt, eocd - 20,
                  fmt::format("ZIP64 locator points to {} where there is no ZIP64 end record", z64));
    count = rd<uint64_t>(b + z64 + 32);
    cd_size = rd<uint64_t>(b + z64 + 40);
    cd_off = rd<uint64_t>(b + z64 + 48);
  } else if (count == 0xFFFF || cd_size == kMax32 || cd_off == kMax32) {
    return zerr(ErrorCode::Corrupt, eocd, "end record asks for ZIP64 values but there is no ZIP64 locator");
  }
  if (cd_off > n || cd_size > n - cd_off)
    return zerr(ErrorCode::Corrupt, eocd,
                fmt::format("central directory [{}, +{}) lies outside the {}-byte file", cd_off, cd_size, n));
  if (count > lim.max_entries)
    return zerr(ErrorCode::LimitExceeded, eocd,
                fmt::format("{} zip entries exceed the cap of {}", count, lim.max_entries));
  if (count > cd_size / 46)
    return zerr(ErrorCode::Corrupt, eocd,
                fmt::format("{} entries cannot fit a {}-byte central directory", count, cd_size));

  ZipReader z;
  z.file_ = file;
  z.entries_.reserve(count);
  uint64_t p = cd_off;
  const uint64_t cd_end = cd_off + cd_size;
  for (uint64_t k = 0; k < count; ++k) {
    if (cd_end - p < 46 || rd<uint32_t>(b + p) != kCentralSig)
      return zerr(ErrorCode::Corrupt, p, fmt::format("central directory entry {} is missing or damaged", k));
    ZipEntry e;
    const uint16_t flags = rd<uint16_t>(b + p + 8);
    e.method = rd<uint16_t>(b + p + 10);
    e.crc32 = rd<uint32_t>(b + p + 16);
    e.compressed_size = rd<uint32_t>(b + p + 20);
    e.size = rd<uint32_t>(b + p + 24);
    const uint16_t nlen = rd<uint16_t>(b + p + 28), elen = rd<uint16_t>(b + p + 30),
                   clen = rd<uint16_t>(b + p + 32);
    e.header_offset = rd<uint32_t>(b + p + 42);
    if (cd_end - p - 46 < uint64_t(nlen) + elen + clen)
      return zerr(ErrorCode::Corrupt, p, fmt::format("central directory entry {} runs past the directory", k));
    if (nlen > lim.max_name_bytes)
      return zerr(ErrorCode::LimitExceeded, p, fmt::format("entry name of {} bytes", nlen));
    e.name.assign(reinterpret_cast<const char*>(b + p + 46), nlen);
    // ZIP64 extra: 8-byte values for the fields that hold 0xFFFFFFFF, in a fixed order.
    const std::byte* x = b + p + 46 + nlen;
    for (uint32_t q = 0; q + 4 <= elen;) {
      const uint16_t id = rd<uint16_t>(x + q), len = rd<uint16_t>(x + q + 2);
      if (q + 4 + len > elen) return zerr(ErrorCode::Corrupt, p, "extra field runs past its header");
      if (id == 1) {
        uint32_t r = 0;
        auto next = [&](uint64_t& field) -> bool {
          if (r + 8 > len) return false;
          field = rd<uint64_t>(x + q + 4 + r);
          r += 8;
          return true;
        };
        if ((e.size == kMax32 && !next(e.size)) || (e.compressed_size == kMax32 && !next(e.compressed_size)) ||
            (e.header_offset == kMax32 && !next(e.header_offset)))
          return zerr(ErrorCode::Corrupt, p, fmt::format("ZIP64 extra field of '{}' is too short", e.name));
      }
      q += 4 + len;
    }
    p += 46 + uint64_t(nlen) + elen + clen;

    if (unsafe_name(e.name))
      return zerr(ErrorCode::Corrupt, e.header_offset, fmt::format("unsafe entry name '{}'", e.name))
          .with_hint("the archive may try to escape its folder; it was not extracted");
    if (k == 0) {
      const size_t slash = e.name.find('/');
      if (slash == std::string::npos || slash == 0)
        return zerr(ErrorCode::Corrupt, e.header_offset,
                    fmt::format("first entry '{}' is not inside a top-level folder", e.name));
      z.prefix_ = e.name.substr(0, slash + 1);
    }
    if (!e.name.starts_with(z.prefix_) || e.name.size() == z.prefix_.size())
      return zerr(ErrorCode::Corrupt, e.header_offset,
                  fmt::format("entry '{}' is not under the archive folder '{}'", e.name, z.prefix_));
    if (flags & 1)
      return zerr(ErrorCode::Unsupported, e.header_offset, fmt::format("entry '{}' is encrypted", e.name));
    // The local header is read with pread, not through the mapping: touching one byte of a
    // tensor's page maps the whole page-cache folio it lies in (up to megabytes on kernels with
    // large folios), which then counts in our RSS (a 1.7 GB .bin: 161 MB for ~150 headers).
    std::array<std::byte, 30> lh{};
    if (e.header_offset > n || n - e.header_offset < 30 ||
        ::pread(file->fd(), lh.data(), lh.size(), off_t(e.header_offset)) != ssize_t(lh.size()) ||
        rd<uint32_t>(lh.data()) != kLocalSig)
      return zerr(ErrorCode::Corrupt, e.header_offset,
                  fmt::format("entry '{}': no local header at offset {}", e.name, e.header_offset));
    const uint64_t lnlen = rd<uint16_t>(lh.data() + 26), lelen = rd<uint16_t>(lh.data() + 28);
    e.data_offset = e.header_offset + 30 + lnlen + lelen;
    if (e.data_offset > n || e.compressed_size > n - e.data_offset)
      return zerr(ErrorCode::Corrupt, e.header_offset,
                  fmt::format("entry '{}': data [{}, +{}) lies outside the {}-byte file", e.name,
                              e.data_offset, e.compressed_size, n));
    if (e.method == 0 && e.compressed_size != e.size)
      return zerr(ErrorCode::Corrupt, e.header_offset,
                  fmt::format("stored entry '{}' has size {} but compressed size {}", e.name, e.size,
                              e.compressed_size));
    std::string rel = e.name.substr(z.prefix_.size());
    if (!z.index_.emplace(rel, z.entries_.size()).second)
      return zerr(ErrorCode::Corrupt, e.header_offset, fmt::format("duplicate entry '{}'", e.name));
    z.entries_.push_back(std::move(e));
  }
  if (z.entries_.empty()) return zerr(ErrorCode::Corrupt, cd_off, "zip archive has no entries");
  return z;
}

const ZipEntry* ZipReader::find(std::string_view rel) const {
  auto it = index_.find(std::string(rel));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Result<std::span<const std::byte>> ZipReader::data(const ZipEntry& e) const {
  if (e.method != 0)
    return zerr(ErrorCode::Unsupported, e.header_offset,
                fmt::format("entry '{}' is compressed (method {}); torch.save stores entries uncompressed",
                            e.name, e.method))
        .with_hint("re-save the checkpoint with torch.save, or unzip and re-zip it with 'zip -0'");
  return file_->bytes().subspan(e.data_offset, e.size);
}

Status ZipReader::verify_crc(const ZipEntry& e) const {
  auto d = MC_TRY(data(e));
  const uint32_t c = crc32_update(0, d);
  if (c != e.crc32)
    return zerr(ErrorCode::Corrupt, e.data_offset,
                fmt::format("entry '{}': CRC-32 {:08x} does not match the recorded {:08x}", e.name, c, e.crc32));
  return {};
}

uint32_t crc32_update(uint32_t crc, std::span<const std::byte> data) {
  uLong c = crc;
  const auto* p = reinterpret_cast<const Bytef*>(data.data());
  size_t left = data.size();
  while (left > 0) {  // zlib takes 32-bit lengths
    const uInt step = uInt(std::min<size_t>(left, size_t(1) << 30));
    c = ::crc32(c, p, step);
    p += step;
    left -= step;
  }
  return uint32_t(c);
}

uint32_t crc32_combine_parts(uint32_t a, uint32_t b, uint64_t len_b) {
  return uint32_t(::crc32_combine64(a, b, z_off64_t(len_b)));
}

// ---- writer -----------------------------------------------------------------------------------

namespace {
void put16(std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); }
void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
bool needs64(const ZipOutEntry& e) { return e.size >= kMax32; }
constexpr uint16_t kDosDate = 0x21;  // 1980-01-01: fixed so outputs are reproducible
}  // namespace

uint64_t plan_zip(std::vector<ZipOutEntry>& entries) {
  uint64_t off = 0;
  for (auto& e : entries) {
    e.header_offset = off;
    const uint64_t base = off + 30 + e.name.size() + (needs64(e) ? 20 : 0) + 4;
    e.data_offset = base + (kZipAlignment - base % kZipAlignment) % kZipAlignment;
    off = e.data_offset + e.size;
  }
  return off;
}

std::string zip_local_header(const ZipOutEntry& e) {
  const bool z64 = needs64(e);
  const uint64_t fixed = 30 + e.name.size() + (z64 ? 20 : 0) + 4;
  const auto pad = uint16_t(e.data_offset - e.header_offset - fixed);
  std::string s;
  put32(s, kLocalSig);
  put16(s, z64 ? 45 : 20);
  put16(s, 0);  // flags
  put16(s, 0);  // stored
  put16(s, 0);
  put16(s, kDosDate);
  put32(s, e.crc32);
  put32(s, z64 ? kMax32 : uint32_t(e.size));
  put32(s, z64 ? kMax32 : uint32_t(e.size));
  put16(s, uint16_t(e.name.size()));
  put16(s, uint16_t((z64 ? 20 : 0) + 4 + pad));
  s += e.name;
  if (z64) {
    put16(s, 1);
    put16(s, 16);
    put64(s, e.size);
    put64(s, e.size);
  }
  s += "FB";
  put16(s, pad);
  s.append(pad, 'Z');
  return s;
}

std::string zip_central_directory(const std::vector<ZipOutEntry>& entries, uint64_t cd_offset) {
  std::string s;
  for (const auto& e : entries) {
    const bool big = needs64(e), far = e.header_offset >= kMax32;
    std::string extra;
    if (big || far) {
      put16(extra, 1);
      put16(extra, uint16_t((big ? 16 : 0) + (far ? 8 : 0)));
      if (big) {
        put64(extra, e.size);
        put64(extra, e.size);
      }
      if (far) put64(extra, e.header_offset);
    }
    put32(s, kCentralSig);
    put16(s, 0x0300 | 45);  // made by: unix, spec 4.5
    put16(s, big || far ? 45 : 20);
    put16(s, 0);
    put16(s, 0);
    put16(s, 0);
    put16(s, kDosDate);
    put32(s, e.crc32);
    put32(s, big ? kMax32 : uint32_t(e.size));
    put32(s, big ? kMax32 : uint32_t(e.size));
    put16(s, uint16_t(e.name.size()));
    put16(s, uint16_t(extra.size()));
    put16(s, 0);  // comment
    put16(s, 0);  // disk
    put16(s, 0);  // internal attributes
    put32(s, 0);  // external attributes
    put32(s, far ? kMax32 : uint32_t(e.header_offset));
    s += e.name;
    s += extra;
  }
  const uint64_t cd_size = s.size(), n = entries.size(), end64 = cd_offset + cd_size;
  // Like torch, always end with ZIP64 records; the classic end record saturates its fields.
  put32(s, kEnd64Sig);
  put64(s, 44);
  put16(s, 0x0300 | 45);
  put16(s, 45);
  put32(s, 0);
  put32(s, 0);
  put64(s, n);
  put64(s, n);
  put64(s, cd_size);
  put64(s, cd_offset);
  put32(s, kLocator64Sig);
  put32(s, 0);
  put64(s, end64);
  put32(s, 1);
  put32(s, kEndSig);
  put16(s, 0);
  put16(s, 0);
  put16(s, uint16_t(std::min<uint64_t>(n, 0xFFFF)));
  put16(s, uint16_t(std::min<uint64_t>(n, 0xFFFF)));
  put32(s, uint32_t(std::min<uint64_t>(cd_size, kMax32)));
  put32(s, uint32_t(std::min<uint64_t>(cd_offset, kMax32)));
  put16(s, 0);
  return s;
}

}  // namespace mc::torch
