// OpenBLAS's thread count for the duration of one call. The reference
// runtime pins OpenBLAS to one thread (it splits work itself); the calibrated quantizers' large
// SYRK/GEMM calls want every core.
#pragma once

#include <cblas.h>

#include <algorithm>

namespace mc::quant {

// Stops the worker threads OpenBLAS starts when it is loaded. They spin (sched_yield) for about
// 2^28 cycles before sleeping: on a 2-core machine one of them takes a core from a conversion's
// workers for its first ~0.1 s, and under a tight `ulimit -v` they retry a failed buffer
// allocation forever. OpenBLAS starts them again by itself at the next multi-threaded call (the
// same path it takes after fork(), where it shuts them down the same way). No-op with a BLAS that
// has no such pool.
void stop_idle_blas_threads();

class BlasThreads {
 public:
  explicit BlasThreads(int n) : old_(openblas_get_num_threads()) { openblas_set_num_threads(std::max(1, n)); }
  ~BlasThreads() { openblas_set_num_threads(old_); }
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int old_;
};

}  // namespace mc::quant
