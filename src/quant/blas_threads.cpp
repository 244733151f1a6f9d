#include "quant/blas_threads.h"

// OpenBLAS's pthread build exports its pool's shutdown (its fork handler calls it); declared weak
// so that a BLAS without it links and the call is skipped.
extern "C" int blas_thread_shutdown_(void) __attribute__((weak));

namespace mc::quant {

void stop_idle_blas_threads() {
  if (blas_thread_shutdown_) blas_thread_shutdown_();
}

}  // namespace mc::quant
