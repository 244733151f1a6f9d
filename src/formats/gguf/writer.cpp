// GGUF v3 writer (formats.md §2.1). The header (KV pairs and tensor infos) is computed from
// names, types and shapes alone; tensor data is then streamed by io::write_tensors from each
// tensor's lazy source, so memory stays bounded by the chunks in flight. Offsets are padded to
// the alignment exactly as ggml's reader requires (contiguous, in tensor-info order); the gaps
// are zero because the output file is preallocated.
#include <unordered_set>

#include "formats/gguf/file.h"
#include "quant/ggml_types.h"
#include "io/output.h"
#include "io/stream_writer.h"

namespace mc::gguf {

using quant::dtype_for_ggml;
using quant::find_ggml_type;
using quant::ggml_for_dtype;
using quant::GgmlType;
namespace {

// The header's bytes, or with `count_only` only their number: the KV section is counted first
// and the buffer reserved once (grown by doubling, a 32k vocabulary's 0.7 MB header took ~1.4 MB
// of fresh memory, which this kind of machine pays per page).
class Buf {
 public:
  explicit Buf(bool count_only = false) : count_only_(count_only) {}
  template <typename T>
  void put(T v) {
    if (count_only_) {
      n_ += sizeof(T);
      return;
    }
    const size_t at = b_.size();
    b_.resize(at + sizeof(T));
    std::memcpy(b_.data() + at, &v, sizeof(T));
  }
  void put_bytes(std::span<const std::byte> s) {
    if (count_only_) n_ += s.size();
    else b_.insert(b_.end(), s.begin(), s.end());
  }
  void reserve(size_t n) { b_.reserve(n); }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    put_bytes(std::as_bytes(std::span(s.data(), s.size())));
  }
  void pad_to(uint64_t align) {
    while (b_.size() % align) b_.push_back(std::byte{0});
  }
  std::vector<std::byte> take() { return std::move(b_); }
  size_t size() const { return count_only_ ? n_ : b_.size(); }

 private:
  bool count_only_;
  size_t n_ = 0;
  std::vector<std::byte> b_;
};

void put_value(Buf& b, const Value& v) {
  b.put<uint32_t>(uint32_t(v.type()));
  if (v.type() == ValueType::String) return b.put_string(*v.as_string());
  if (!v.is_array()) return b.put_bytes(v.raw());
  b.put<uint32_t>(uint32_t(v.elem_type()));
  b.put<uint64_t>(v.size());
  if (v.elem_type() == ValueType::String)
    for (const auto& s : v.string_items()) b.put_string(s);
  else
    b.put_bytes(v.raw());
}

}  // namespace

Result<Layout> plan_layout(const KvStore& kv, std::span<const TensorEntry> tensors) {
  uint32_t alignment = kDefaultAlignment;
  if (const Value* a = kv.find("general.alignment")) {
    auto n = a->as_int();
    if (a->type() != ValueType::U32 || !n || *n == 0 || (*n & (*n - 1)) != 0)
      return make_error(ErrorCode::InvalidArgument,
                        "general.alignment must be a uint32 power of two, got {}", a->display());
    alignment = uint32_t(*n);
  }
  auto put_kv = [&](Buf& b) {
    b.put<uint32_t>(kMagic);
    b.put<uint32_t>(3);
    b.put<uint64_t>(tensors.size());
    b.put<uint64_t>(kv.size());
    for (const auto& [key, v] : kv) {
      b.put_string(key);
      put_value(b, v);
    }
  };
  for (const auto& [key, v] : kv)
    if (key.empty()) return make_error(ErrorCode::InvalidArgument, "empty metadata key");
  Buf counted(true);
  put_kv(counted);
  Buf b;
  // Tensor infos: name, dims, type and offset, then padding to the alignment.
  size_t infos = 0;
  for (const auto& t : tensors) infos += 8 + t.name.size() + 4 + 8 * std::max<size_t>(t.shape.size(), 1) + 4 + 8;
  b.reserve(counted.size() + infos + alignment);
  put_kv(b);
  Layout out;
  std::unordered_set<std::string_view> names;
  uint64_t rel = 0;
  std::vector<uint64_t> rel_offsets;
  for (const auto& t : tensors) {
    auto fail = [&](ErrorCode code, std::string msg) {
      return make_error(code, "{}", msg).with_tensor(t.name);
    };
    if (t.name.empty() || t.name.size() > kMaxNameBytes)
      return fail(ErrorCode::InvalidArgument,
                  fmt::format("tensor name of {} bytes (GGUF allows 1..{})", t.name.size(), kMaxNameBytes));
    if (!names.insert(t.name).second) return fail(ErrorCode::InvalidArgument, "duplicate tensor name");
    auto gt = ggml_for_dtype(t.dtype);
    if (!gt)
      return fail(ErrorCode::Unsupported,
                  fmt::format("dtype {} has no ggml type", dtype_name(t.dtype)));
    if (t.shape.size() > kMaxDims)
      return fail(ErrorCode::Unsupported,
                  fmt::format("shape {} has more than {} dims", shape_str(t.shape), kMaxDims));
    const auto& info = dtype_info(t.dtype);
    const int64_t ne0 = t.shape.empty() ? 1 : t.shape.back();
    if (ne0 % int64_t(info.block_elems) != 0)
      return fail(ErrorCode::InvalidArgument,
                  fmt::format("last dim {} of shape {} is not a multiple of the {} block size {}",
                              ne0, shape_str(t.shape), info.name, info.block_elems));
    const uint64_t numel = MC_TRY(shape_numel(t.shape));
    const uint64_t nbytes = MC_TRY(dtype_nbytes(t.dtype, numel));
    b.put_string(t.name);
    // A 0-d tensor is written as ne = [1]: ggml has no rank-0 tensors.
    if (t.shape.empty()) {
      b.put<uint32_t>(1);
      b.put<int64_t>(1);
    } else {
      b.put<uint32_t>(uint32_t(t.shape.size()));
      for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) b.put<int64_t>(*it);
    }
    b.put<uint32_t>(*gt);
    b.put<uint64_t>(rel);
    rel_offsets.push_back(rel);
    rel += (nbytes + alignment - 1) / alignment * alignment;
  }
  if (!tensors.empty()) b.pad_to(alignment);
  const uint64_t data_start = b.size();
  for (uint64_t r : rel_offsets) out.offsets.push_back(data_start + r);
  out.file_size = data_start + rel;
  out.header = b.take();
  return out;
}

Result<uint64_t> write_file(const fs::path& path, const KvStore& kv,
                            std::span<const TensorEntry> tensors, ThreadPool& pool,
                            const FileWriteOptions& opt) {
  Layout lay = MC_TRY(plan_layout(kv, tensors));
  auto file = MC_TRY(io::OutFile::create(path, lay.file_size));
  MC_CHECK(file.pwrite(0, lay.header));
  std::vector<io::WriteItem> items;
  items.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) items.push_back({&tensors[i], &file, lay.offsets[i]});
  io::StreamOptions so;
  so.chunk_bytes = opt.chunk_bytes;
  so.progress = opt.progress;
  so.sink = opt.sink;
  auto st = io::write_tensors(items, pool, so);
  if (!st) return std::move(st).error().with_path(path.string());
  MC_CHECK(file.close());
  return lay.file_size;
}

}  // namespace mc::gguf
