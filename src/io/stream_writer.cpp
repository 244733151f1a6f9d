#include "io/stream_writer.h"

#include <algorithm>
#include <vector>

namespace mc::io {

namespace {
// Bytes made and written in one step within a task: fits a core's L2 cache.
constexpr uint64_t kPieceBytes = uint64_t(256) << 10;

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
      if (auto v = tensor.data->view(); v && v->size() == tensor.nbytes()) {
        // Unchanged bytes: from an input file, copied file to file by the kernel as cp does;
        // else written straight from memory. Then those pages leave our RSS (release below).
        bool copied = false;
        if (const auto span = tensor.data->file_span()) {
          auto c = t.item->file->copy_from(span->fd, span->offset + t.begin, t.item->offset + t.begin, len);
          if (!c) return std::move(c).error().with_tensor(tensor.name);
          copied = *c;
        }
        if (!copied) MC_CHECK(t.item->file->pwrite(t.item->offset + t.begin, v->subspan(t.begin, len)));
      } else {
        // Made a piece at a time, so the input piece is still in the core's cache when it is
        // converted (and, when written, the output piece when the kernel copies it into the page
        // cache: measured 10-20% less CPU than making the whole chunk first; the other threads
        // take the file lock in between).
        const uint64_t a = std::max<uint64_t>(tensor.data->chunk_align(), 1);
        const uint64_t piece = std::max<uint64_t>(a, kPieceBytes / a * a);
        // One pass where the output can be mapped: converted straight into the page cache.
        auto win = t.item->file->map_window(t.item->offset + t.begin, len);
        if (!win) return std::move(win).error().with_tensor(tensor.name);
        if (std::byte* dst = win->data()) {
          for (uint64_t p = 0; p < len; p += piece) {
            const uint64_t n = std::min(piece, len - p);
            auto st = tensor.data->read(t.begin + p, std::span(dst + p, n));
            if (!st) return std::move(st).error().with_tensor(tensor.name);
          }
        }
        // Otherwise made in a buffer a piece at a time and written.
        const uint64_t left = win->data() ? 0 : len;
        if (buf.size() < std::min(piece, left)) buf.resize(std::min(piece, left));
        for (uint64_t p = 0; p < left; p += piece) {
          const uint64_t n = std::min(piece, len - p);
          auto st = tensor.data->read(t.begin + p, std::span(buf.data(), n));
          if (!st) return std::move(st).error().with_tensor(tensor.name);
          MC_CHECK(t.item->file->pwrite(t.item->offset + t.begin + p, std::span(buf.data(), n)));
        }
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
