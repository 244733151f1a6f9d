#include "io/stream_writer.h"

#include <algorithm>
#include <vector>

namespace mc::io {

namespace {
// Bytes made and written in one step within a task: fits a core's L2 cache.
constexpr uint64_t kPieceBytes = uint64_t(256) << 10;
// Made pieces a thread may hold while the file is busy (memory: threads x this x kPieceBytes).
constexpr uint64_t kPendingPieces = 4;

struct Task {
  const WriteItem* item;
  uint64_t begin, end;  // byte range within the tensor
};
}  // namespace

Status write_tensors(std::span<const WriteItem> items, ThreadPool& pool, const StreamOptions& opt) {
  std::vector<Task> tasks;
  uint64_t total = 0;
  for (const auto& it : items) {
    const uint64_t n = it.tensor->nbytes();
    total += n;
    if (!it.tensor->data)
      return make_error(ErrorCode::Internal, "tensor '{}' has no data source", it.tensor->name);
    uint64_t chunk = std::max<uint64_t>(opt.chunk_bytes, 1);
    if (const uint64_t a = it.tensor->data->chunk_align(); a > 1)
      chunk = std::max<uint64_t>(a, chunk / a * a);
    if (n == 0) continue;
    for (uint64_t b = 0; b < n; b += chunk) tasks.push_back({&it, b, std::min(n, b + chunk)});
  }
  if (opt.sink) opt.sink->add_total(total);
  std::atomic<uint64_t> done{0};
  return pool.parallel_for(tasks.size(), 1, [&](size_t b, size_t e) -> Status {
    thread_local std::vector<std::byte> buf;
    for (size_t i = b; i < e; ++i) {
      const Task& t = tasks[i];
      const TensorEntry& tensor = *t.item->tensor;
      const uint64_t len = t.end - t.begin;
      // Unchanged bytes: from an input file, copied file to file by the kernel as cp does
      // (the mapping is not touched); else written straight from memory, whose pages then leave
      // our RSS (release below).
      auto span = tensor.data->file_span();
      if (span && span->size != tensor.nbytes()) span.reset();
      std::optional<std::span<const std::byte>> v = tensor.data->memory_view();
      if (span || (v && v->size() == tensor.nbytes())) {
        bool copied = false;
        if (span) {
          auto c = t.item->file->copy_from(span->fd, span->offset + t.begin, t.item->offset + t.begin, len);
          if (!c) return std::move(c).error().with_tensor(tensor.name);
          copied = *c;
        }
        if (!copied) {
          if (!v) v = tensor.data->view();
          if (!v || v->size() != tensor.nbytes())
            return make_error(ErrorCode::Internal, "tensor '{}' lies in a file but not in memory", tensor.name);
          MC_CHECK(t.item->file->pwrite(t.item->offset + t.begin, v->subspan(t.begin, len)));
        }
      } else {
        // Made a piece at a time, so the input piece is still in the core's cache when it is
        // converted (and, when written, the output piece when the kernel copies it into the page
        // cache: measured 10-20% less CPU than making the whole chunk first; the other threads
        // take the file lock in between).
        const uint64_t a = std::max<uint64_t>(tensor.data->chunk_align(), 1);
        const uint64_t piece = std::max<uint64_t>(a, kPieceBytes / a * a);
        const uint64_t cap = std::min(len, piece * kPendingPieces);
        if (buf.size() < cap) buf.resize(cap);
        auto st = detail::write_pieces(*tensor.data, t.begin, len, piece, *t.item->file, t.item->offset + t.begin,
                                       std::span(buf.data(), cap));
        if (!st) return std::move(st).error().with_tensor(tensor.name);
      }
      tensor.data->release(t.begin, len);
      const uint64_t d = done.fetch_add(len) + len;
      if (opt.progress) opt.progress(d, total);
      if (opt.sink) opt.sink->add_done(len);
    }
    return {};
  });
}

}  // namespace mc::io
