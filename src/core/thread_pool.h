// One thread pool owned by a conversion and passed down explicitly (no hidden statics).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace mc {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads = 0);  // 0 = hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }  // helpers + the calling thread

  // Runs fn(begin, end) over [0, n) in chunks of `grain` on the pool and waits. The calling
  // thread works too. Returns the first error (by chunk order), after all chunks finished or
  // were skipped once an error was seen.
  Status parallel_for(size_t n, size_t grain, const std::function<Status(size_t, size_t)>& fn);

 private:
  void worker_loop();
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
};

}  // namespace mc
