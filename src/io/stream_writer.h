// The streaming tensor writer shared by every format: the output layout (file, offset) of each
// tensor is computed by the format first; this writes all tensors in parallel, in chunks, with
// at most `threads x chunk_bytes` bytes in flight, so peak memory does not grow with the model.
#pragma once

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

}  // namespace mc::io
