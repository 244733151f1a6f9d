#include "core/thread_pool.h"

#include <atomic>
#include <memory>
#include <optional>

namespace mc {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = std::max<size_t>(1, std::thread::hardware_concurrency());
  // The caller participates in parallel_for, so threads-1 helpers give `threads` workers.
  for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  if (threads > 1) workers_.shrink_to_fit();
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_ && queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

Status ThreadPool::parallel_for(size_t n, size_t grain,
                                const std::function<Status(size_t, size_t)>& fn) {
  if (n == 0) return {};
  if (grain == 0) grain = 1;
  const size_t chunks = (n + grain - 1) / grain;
  struct Shared {
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Error> first_error;
    size_t first_error_chunk = SIZE_MAX;
  };
  auto sh = std::make_shared<Shared>();
  auto run = [sh, n, grain, chunks, &fn] {
    for (;;) {
      const size_t c = sh->next.fetch_add(1);
      if (c >= chunks) return;
      if (!sh->failed.load()) {
        const size_t b = c * grain, e = std::min(n, b + grain);
        Status st = fn(b, e);
        if (!st) {
          std::lock_guard lk(sh->mu);
          if (c < sh->first_error_chunk) {
            sh->first_error_chunk = c;
            sh->first_error = std::move(st).error();
          }
          sh->failed = true;
        }
      }
      if (sh->done.fetch_add(1) + 1 == chunks) {
        std::lock_guard lk(sh->mu);
        sh->cv.notify_all();
      }
    }
  };
  const size_t helpers = std::min(workers_.size(), chunks - 1);
  if (helpers > 0) {
    {
      std::lock_guard lk(mu_);
      for (size_t i = 0; i < helpers; ++i) queue_.emplace_back(run);
    }
    cv_.notify_all();
  }
  run();
  {
    std::unique_lock lk(sh->mu);
    sh->cv.wait(lk, [&] { return sh->done.load() == chunks; });
  }
  if (sh->first_error) return std::move(*sh->first_error);
  return {};
}

}  // namespace mc
