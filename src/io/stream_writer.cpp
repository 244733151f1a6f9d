#include "io/stream_writer.h"

#include <algorithm>
#include <vector>

namespace mc::io {

namespace {
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
        // Zero-copy: write straight from the input mapping, then drop those pages from our RSS.
        MC_CHECK(t.item->file->pwrite(t.item->offset + t.begin, v->subspan(t.begin, len)));
      } else {
        if (buf.size() < len) buf.resize(len);
        auto st = tensor.data->read(t.begin, std::span(buf.data(), len));
        if (!st) return std::move(st).error().with_tensor(tensor.name);
        MC_CHECK(t.item->file->pwrite(t.item->offset + t.begin, std::span(buf.data(), len)));
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
