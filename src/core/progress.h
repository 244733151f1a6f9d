// Progress of long steps (writing tensors, running a model). Producers add work and completed
// work from any thread; the receiver (the CLI's progress line) is called on every change and
// decides itself how often to draw.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace mc {

struct ProgressEvent {
  std::string_view step;  // "writing", "source", "model", ...
  uint64_t done = 0;
  uint64_t total = 0;     // 0: unknown
  bool bytes = true;      // units are bytes (else items: tokens, layers, tasks)
  std::string_view unit = "tokens";  // what the items are when !bytes
};
using ProgressFn = std::function<void(const ProgressEvent&)>;

// A counter of one step. Totals may grow while the step runs (a writer announces each file's
// bytes when it starts it).
class Progress {
 public:
  Progress(std::string step, bool bytes, ProgressFn fn, std::string unit = "tokens")
      : step_(std::move(step)), bytes_(bytes), fn_(std::move(fn)), unit_(std::move(unit)) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add_total(uint64_t n) {
    total_.fetch_add(n, std::memory_order_relaxed);
    notify();
  }
  void add_done(uint64_t n) {
    done_.fetch_add(n, std::memory_order_relaxed);
    notify();
  }
  uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  uint64_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  void notify() const {
    if (fn_) fn_({step_, done(), total(), bytes_, unit_});
  }
  std::string step_;
  bool bytes_;
  ProgressFn fn_;
  std::string unit_;
  std::atomic<uint64_t> done_{0}, total_{0};
};

}  // namespace mc
