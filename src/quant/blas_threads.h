// OpenBLAS's thread count for the duration of one call. The reference runtime pins OpenBLAS to
// one thread (it splits work itself); the calibrated quantizers' large SYRK/GEMM calls want
// every core.
#pragma once

#include <algorithm>

#include "quant/blas.h"

namespace mc::quant {

class BlasThreads {
 public:
  explicit BlasThreads(int n) : old_(blas::api().get_num_threads()) { blas::api().set_num_threads(std::max(1, n)); }
  ~BlasThreads() { blas::api().set_num_threads(old_); }
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int old_;
};

}  // namespace mc::quant
