// GGUF v2/v3 files (formats.md §2.1): the parsed header of a file (reader.cpp) and the streaming
// writer (writer.cpp). Tensor infos keep ggml's dims (`ne`, fastest first); shape() reverses them
// to PyTorch order, the only place where that happens.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/gguf/kv.h"

namespace mc::gguf {

namespace fs = std::filesystem;

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" as u32 LE
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr uint32_t kMaxDims = 4;          // GGML_MAX_DIMS
inline constexpr size_t kMaxNameBytes = 63;      // GGML_MAX_NAME - 1 (names are NUL-terminated there)

// Caps on counts and lengths read from a file, checked before anything is allocated.
struct Limits {
  uint64_t max_kv = uint64_t(1) << 16;
  uint64_t max_tensors = uint64_t(1) << 20;
  uint64_t max_string_bytes = uint64_t(1) << 28;   // a chat template or a token: far less
  uint64_t max_array_items = uint64_t(1) << 28;    // vocabularies have < 2^18 entries
};

struct TensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<int64_t> ne;    // ggml order: ne[0] is the fastest-varying dim
  uint64_t offset = 0;        // relative to the data section
  uint64_t nbytes = 0;
  uint64_t info_offset = 0;   // file offset of this tensor_info (for messages)

  Shape shape() const { return Shape(ne.rbegin(), ne.rend()); }  // PyTorch order
};

struct File {
  std::string path;
  uint32_t version = 3;
  uint32_t alignment = kDefaultAlignment;
  KvStore kv;
  std::vector<TensorInfo> tensors;
  uint64_t data_offset = 0;   // file offset of the data section
  std::span<const std::byte> bytes;
  std::shared_ptr<const void> owner;  // keeps `bytes` alive (the mmap)

  const TensorInfo* find_tensor(std::string_view name) const;
  std::span<const std::byte> tensor_bytes(const TensorInfo& t) const {
    return bytes.subspan(data_offset + t.offset, t.nbytes);
  }
  // The tensor as a TensorEntry: GGUF name, PyTorch-order shape, DType, zero-copy data.
  // Unsupported for ggml types without a DType (IQ*, TQ*, ...).
  Result<TensorEntry> entry(const TensorInfo& t) const;
};

struct ParseOptions {
  Limits limits;
  // When set, problems of single tensors (alignment, bounds, duplicates, block size) are
  // appended here and parsing goes on; otherwise the first one is returned.
  std::vector<Error>* problems = nullptr;
};

// Parses a GGUF image held in memory (`owner` keeps it alive).
Result<File> parse(std::span<const std::byte> bytes, std::shared_ptr<const void> owner,
                   std::string path, const ParseOptions& opt = {});
// Maps and parses a file (zero-copy: tensor data stays in the mapping).
Result<File> open(const fs::path& path, const ParseOptions& opt = {});

// ---- writer ---------------------------------------------------------------------------------

struct Layout {
  std::vector<std::byte> header;   // magic .. tensor infos, padded to the alignment
  std::vector<uint64_t> offsets;   // file offset of each tensor's data
  uint64_t file_size = 0;
};

// Computes the whole header from names, types and shapes (tensor data is not touched). The
// alignment is general.alignment when present (must be a u32 power of two), else 32.
Result<Layout> plan_layout(const KvStore& kv, std::span<const TensorEntry> tensors);

struct FileWriteOptions {
  uint64_t chunk_bytes = uint64_t(8) << 20;
  std::function<void(uint64_t, uint64_t)> progress;
  Progress* sink = nullptr;  // see io::StreamOptions
};

// Writes a GGUF v3 file: header first, then every tensor streamed in parallel from its lazy
// source at its padded offset. Deterministic: the bytes depend only on the inputs.
Result<uint64_t> write_file(const fs::path& path, const KvStore& kv,
                            std::span<const TensorEntry> tensors, ThreadPool& pool,
                            const FileWriteOptions& opt = {});

}  // namespace mc::gguf
