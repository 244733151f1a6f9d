// TensorStore: the ordered set of tensors of a Model. Each entry holds metadata and a lazy
// TensorData that yields its bytes on demand (a view into an mmap, or a transform of another
// source). Nothing is read until a writer or the runtime asks for it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "io/mapped_file.h"

namespace mc {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[4096, 11008]"
// Product of dims, checked for negative dims and overflow.
Result<uint64_t> shape_numel(const Shape& s);

// A lazy source of one tensor's bytes, in its dtype, contiguous row-major.
class TensorData {
 public:
  virtual ~TensorData() = default;
  // Copy bytes [offset, offset + dst.size()) of the tensor into dst. Must be thread-safe:
  // writers call it from several threads on disjoint ranges.
  virtual Status read(uint64_t offset, std::span<std::byte> dst) const = 0;
  // The whole tensor without a copy, if it lies contiguous in memory (e.g. an mmap).
  virtual std::optional<std::span<const std::byte>> view() const { return std::nullopt; }
  // Hint: bytes [offset, offset+n) will not be read again (lets mmaps drop pages: flat RSS).
  virtual void release(uint64_t /*offset*/, uint64_t /*n*/) const {}
  // Preferred granularity (bytes) for read() ranges: reads should start and end on multiples of
  // it (0 = any). Row-wise transforms ask for rows, quantized types for blocks.
  virtual uint64_t chunk_align() const { return 0; }
  // Where the bytes lie in an open file, when they do unchanged (writers copy them file to file
  // with copy_file_range, as cp does, without passing them through memory).
  struct FileSpan {
    int fd = -1;
    uint64_t offset = 0;
    uint64_t size = 0;  // bytes there, from offset
  };
  virtual std::optional<FileSpan> file_span() const { return std::nullopt; }
  // view() for bytes that are in memory; nothing for bytes that lie in a file, which are cheaper
  // to read with pread than to fault in through a mapping (and asking view() marks the
  // mapping as used, so release() would then drop its pages with a madvise).
  std::optional<std::span<const std::byte>> memory_view() const {
    if (file_span()) return std::nullopt;
    return view();
  }
};
using TensorDataPtr = std::shared_ptr<const TensorData>;

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  TensorDataPtr data;
  // Bits per weight of the representation the values were decoded from on read (a GGUF block
  // type, MLX affine groups), 0 when `dtype` is how they were stored. Lets `check` judge a
  // dequantized model by the precision it really carries.
  double stored_bits = 0;

  uint64_t numel() const;   // assumes a validated shape
  uint64_t nbytes() const;  // assumes a validated shape/dtype pair
};

class TensorStore {
 public:
  // Adds or replaces (keeping the original position) a tensor.
  void put(TensorEntry e);
  // Removes a tensor; returns false if absent.
  bool erase(std::string_view name);
  const TensorEntry* find(std::string_view name) const;  // nullptr if absent
  Result<const TensorEntry*> require(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  const TensorEntry& operator[](size_t i) const { return entries_[i]; }

  uint64_t total_bytes() const;
  uint64_t total_params() const;

 private:
  std::vector<TensorEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// ---- TensorData implementations used everywhere -------------------------------------------

// Bytes living in memory that some owner keeps alive (an mmap, a buffer).
class MemoryData final : public TensorData {
 public:
  MemoryData(std::shared_ptr<const void> owner, std::span<const std::byte> bytes, bool mmapped)
      : owner_(std::move(owner)), bytes_(bytes), mmapped_(mmapped) {}
  // Bytes inside a mapped input file: read() then uses pread on the file's descriptor instead of
  // copying out of the mapping (no page faults, no page-table work), and file_span() is known.
  MemoryData(std::shared_ptr<const io::MappedFile> file, std::span<const std::byte> bytes, bool mmapped);
  Status read(uint64_t offset, std::span<std::byte> dst) const override;
  std::optional<std::span<const std::byte>> view() const override;
  void release(uint64_t offset, uint64_t n) const override;
  std::optional<FileSpan> file_span() const override;

 private:
  std::shared_ptr<const void> owner_;
  std::span<const std::byte> bytes_;
  bool mmapped_;
  int fd_ = -1;
  uint64_t file_offset_ = 0;
  // Whether anyone was given the mapping (view()): only then can its pages be in our page tables
  // for release() to drop. Bytes read with pread never are, and an madvise per range costs this
  // process a TLB flush on every core it runs on (11% of an HF -> MLX 4-bit run).
  mutable std::atomic<bool> viewed_{false};
};

// Owns a byte vector (tensors made in memory: fake weights, small tests, decoded files).
TensorDataPtr make_owned_data(std::vector<std::byte> bytes);
// Data produced by a function filling [offset, offset+dst.size()). `release` (optional) receives
// the TensorData::release hints, so a function computed from mapped input can drop those pages.
TensorDataPtr make_fn_data(std::function<Status(uint64_t, std::span<std::byte>)> fn,
                           uint64_t chunk_align = 0,
                           std::function<void(uint64_t, uint64_t)> release = {});

// Reads a whole tensor into an owned buffer (one tensor: bounded by the largest tensor).
Result<std::vector<std::byte>> read_all(const TensorEntry& e);
// Reads a whole plain-dtype tensor as f32.
Result<std::vector<float>> read_f32(const TensorEntry& e);

// Convenience: make an entry from f32 values stored as `dtype`.
TensorEntry make_tensor_f32(std::string name, Shape shape, std::span<const float> values,
                            DType dtype = DType::F32);

}  // namespace mc
