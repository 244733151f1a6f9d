// The streaming tensor writer shared by every format: the output layout (file, offset) of each
// tensor is computed by the format first; this writes all tensors in parallel, in chunks, with
// at most `threads x chunk_bytes` bytes in flight, so peak memory does not grow with the model.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>

#include "core/progress.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "io/output.h"

namespace mc::io {

struct WriteItem {
  const TensorEntry* tensor;  // source of the bytes (its dtype/shape are what gets written)
  const OutFile* file;
  uint64_t offset;            // byte offset of the tensor in `file`
};

struct StreamOptions {
  uint64_t chunk_bytes = uint64_t(8) << 20;  // per task; memory in flight = threads x this
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;  // any thread
  Progress* sink = nullptr;  // gets this call's bytes as total, then each chunk as done
};

Status write_tensors(std::span<const WriteItem> items, ThreadPool& pool,
                     const StreamOptions& opt = {});

namespace detail {

// Bytes [begin, begin + len) of `data`, made `piece` bytes at a time into `buf` and written at
// `at` in `file` (an OutFile, or a stand-in in tests). After each piece everything made so far is
// offered to try_pwrite; while another thread is writing the file, pieces wait in `buf` and this
// thread goes on making them, and only a full `buf` (or the last piece) waits for the file
// (OutFile::pwrite spins a while before it sleeps): sleeping on the file's lock and being woken
// for every piece cost more than the conversion itself (HF -> GGUF f16, 2 threads: 6,000 futex
// calls for 6,000 writes).
template <class File>
Status write_pieces(const TensorData& data, uint64_t begin, uint64_t len, uint64_t piece, const File& file,
                    uint64_t at, std::span<std::byte> buf) {
  if (piece == 0 || buf.size() < std::min(piece, len))
    return make_error(ErrorCode::Internal, "a write buffer of {} bytes for pieces of {}", buf.size(), piece);
  uint64_t filled = 0;  // made, not yet written: bytes [p - filled, p) of the range, in buf[0, filled)
  for (uint64_t p = 0; p < len;) {
    const uint64_t n = std::min(piece, len - p);
    if (filled + n > buf.size()) {
      MC_CHECK(file.pwrite(at + p - filled, buf.first(filled)));
      filled = 0;
    }
    MC_CHECK(data.read(begin + p, buf.subspan(filled, n)));
    filled += n;
    p += n;
    if (p == len) return file.pwrite(at + p - filled, buf.first(filled));
    if (MC_TRY(file.try_pwrite(at + p - filled, buf.first(filled)))) filled = 0;
  }
  return {};
}

}  // namespace detail

}  // namespace mc::io
