#include "core/tensor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace mc {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

Result<uint64_t> shape_numel(const Shape& s) {
  uint64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) return make_error(ErrorCode::Corrupt, "negative dimension in shape {}", shape_str(s));
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / uint64_t(d))
      return make_error(ErrorCode::LimitExceeded, "shape {} overflows 64 bits", shape_str(s));
    n *= uint64_t(d);
  }
  return n;
}

uint64_t TensorEntry::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return n;
}

uint64_t TensorEntry::nbytes() const {
  const auto& info = dtype_info(dtype);
  return numel() / info.block_elems * info.block_bytes;
}

void TensorStore::put(TensorEntry e) {
  auto it = index_.find(e.name);
  if (it != index_.end()) {
    entries_[it->second] = std::move(e);
    return;
  }
  index_.emplace(e.name, entries_.size());
  entries_.push_back(std::move(e));
}

bool TensorStore::erase(std::string_view name) {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) return false;
  entries_.erase(entries_.begin() + ptrdiff_t(it->second));
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].name, i);
  return true;
}

const TensorEntry* TensorStore::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Result<const TensorEntry*> TensorStore::require(std::string_view name) const {
  if (const auto* e = find(name)) return e;
  return make_error(ErrorCode::NotFound, "tensor is missing from the model").with_tensor(std::string(name));
}

uint64_t TensorStore::total_bytes() const {
  uint64_t n = 0;
  for (const auto& e : entries_) n += e.nbytes();
  return n;
}

uint64_t TensorStore::total_params() const {
  uint64_t n = 0;
  for (const auto& e : entries_) n += e.numel();
  return n;
}

MemoryData::MemoryData(std::shared_ptr<const io::MappedFile> file, std::span<const std::byte> bytes,
                       bool mmapped)
    : bytes_(bytes), mmapped_(mmapped) {
  if (file && file->fd() >= 0 && !bytes.empty() && bytes.data() >= file->bytes().data() &&
      bytes.data() + bytes.size() <= file->bytes().data() + file->size()) {
    fd_ = file->fd();
    file_offset_ = uint64_t(bytes.data() - file->bytes().data());
  }
  owner_ = std::move(file);
}

Status MemoryData::read(uint64_t offset, std::span<std::byte> dst) const {
  if (offset > bytes_.size() || dst.size() > bytes_.size() - offset)
    return make_error(ErrorCode::Internal, "read [{}, {}) past the {} bytes of a tensor", offset,
                      offset + dst.size(), bytes_.size());
  if (dst.empty()) return {};
  if (fd_ >= 0) {
    size_t done = 0;
    while (done < dst.size()) {
      const uint64_t at = file_offset_ + offset + done;
      const ssize_t n = ::pread(fd_, dst.data() + done, dst.size() - done, off_t(at));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Error e = make_error(ErrorCode::Io, "read failed: {}", std::strerror(errno));
        e.offset = at;
        return e;
      }
      if (n == 0) {
        Error e = make_error(ErrorCode::Truncated, "the file ends early: it changed while being read");
        e.offset = at;
        return e;
      }
      done += size_t(n);
    }
    return {};
  }
  std::memcpy(dst.data(), bytes_.data() + offset, dst.size());
  return {};
}

std::optional<std::span<const std::byte>> MemoryData::view() const {
  if (fd_ >= 0 && !viewed_.load(std::memory_order_relaxed)) viewed_.store(true, std::memory_order_relaxed);
  return bytes_;
}

std::optional<TensorData::FileSpan> MemoryData::file_span() const {
  if (fd_ < 0) return std::nullopt;
  return FileSpan{fd_, file_offset_, bytes_.size()};
}

void MemoryData::release(uint64_t offset, uint64_t n) const {
  if (!mmapped_ || n == 0) return;
  if (fd_ >= 0 && !viewed_.load(std::memory_order_relaxed)) return;  // read with pread only
  // Drop whole pages inside the range from our mapping (they stay in the page cache), so the
  // resident set does not grow with the model. Advisory: failures are harmless.
  static const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  const auto base = reinterpret_cast<uintptr_t>(bytes_.data()) + offset;
  const uintptr_t first = (base + page - 1) & ~(page - 1);
  const uintptr_t last = (base + n) & ~(page - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

namespace {
class OwnedData final : public TensorData {
 public:
  explicit OwnedData(std::vector<std::byte> b) : bytes_(std::move(b)) {}
  Status read(uint64_t offset, std::span<std::byte> dst) const override {
    if (offset > bytes_.size() || dst.size() > bytes_.size() - offset)
      return make_error(ErrorCode::Internal, "read past an owned tensor");
    if (!dst.empty()) std::memcpy(dst.data(), bytes_.data() + offset, dst.size());
    return {};
  }
  std::optional<std::span<const std::byte>> view() const override {
    return std::span<const std::byte>(bytes_);
  }

 private:
  std::vector<std::byte> bytes_;
};

class FnData final : public TensorData {
 public:
  FnData(std::function<Status(uint64_t, std::span<std::byte>)> fn, uint64_t align,
         std::function<void(uint64_t, uint64_t)> release)
      : fn_(std::move(fn)), align_(align), release_(std::move(release)) {}
  Status read(uint64_t offset, std::span<std::byte> dst) const override { return fn_(offset, dst); }
  uint64_t chunk_align() const override { return align_; }
  void release(uint64_t offset, uint64_t n) const override {
    if (release_) release_(offset, n);
  }

 private:
  std::function<Status(uint64_t, std::span<std::byte>)> fn_;
  uint64_t align_;
  std::function<void(uint64_t, uint64_t)> release_;
};
}  // namespace

TensorDataPtr make_owned_data(std::vector<std::byte> bytes) {
  return std::make_shared<OwnedData>(std::move(bytes));
}

TensorDataPtr make_fn_data(std::function<Status(uint64_t, std::span<std::byte>)> fn,
                           uint64_t chunk_align, std::function<void(uint64_t, uint64_t)> release) {
  return std::make_shared<FnData>(std::move(fn), chunk_align, std::move(release));
}

Result<std::vector<std::byte>> read_all(const TensorEntry& e) {
  std::vector<std::byte> out(e.nbytes());
  if (!e.data) return make_error(ErrorCode::Internal, "tensor '{}' has no data source", e.name);
  auto st = e.data->read(0, out);
  if (!st) return std::move(st).error().with_tensor(e.name);
  return out;
}

Result<std::vector<float>> read_f32(const TensorEntry& e) {
  if (is_quantized(e.dtype))
    return make_error(ErrorCode::Unsupported, "tensor '{}' is {}: dequantize it first", e.name,
                      dtype_name(e.dtype));
  auto bytes = MC_TRY(read_all(e));
  std::vector<float> out(e.numel());
  to_f32(e.dtype, bytes.data(), out.data(), out.size());
  return out;
}

TensorEntry make_tensor_f32(std::string name, Shape shape, std::span<const float> values,
                            DType dtype) {
  TensorEntry e{std::move(name), dtype, std::move(shape), nullptr};
  std::vector<std::byte> bytes(values.size() * dtype_size(dtype));
  from_f32(values.data(), dtype, bytes.data(), values.size());
  e.data = make_owned_data(std::move(bytes));
  return e;
}

}  // namespace mc
