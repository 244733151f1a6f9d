// OpenBLAS, opened with dlopen when a computation first needs it (the reference runtime behind
// `check`, GPTQ/AWQ calibration), not linked: loading and relocating it (and libgfortran) and
// starting its thread pool took ~8 ms of every run, most of which never multiply a matrix.
// Right after loading, its idle pool is stopped: its threads spin (sched_yield) for ~2^28 cycles
// before sleeping, taking a core from our workers, and OpenBLAS restarts them by itself at the
// next multi-threaded call (the path it takes after fork(), where it stops them the same way).
#pragma once

#include <cblas.h>

#include "core/error.h"

namespace mc::blas {

// The CBLAS calls this project makes, with CBLAS's own signatures.
struct Api {
  decltype(&::cblas_sgemm) sgemm;
  decltype(&::cblas_sgemv) sgemv;
  decltype(&::cblas_ssymm) ssymm;
  decltype(&::cblas_ssyrk) ssyrk;
  decltype(&::openblas_get_num_threads) get_num_threads;
  decltype(&::openblas_set_num_threads) set_num_threads;
  // LAPACK's Cholesky factor and inverse (Fortran calling convention), also in OpenBLAS.
  void (*dpotrf)(const char* uplo, const int* n, double* a, const int* lda, int* info);
  void (*dpotri)(const char* uplo, const int* n, double* a, const int* lda, int* info);
};

// Loads OpenBLAS once per process; Unsupported naming the library and its Debian package when
// it cannot be loaded. Callers check this first, then use api().
Status load();
// The loaded entry points (loads if needed; throws std::runtime_error if OpenBLAS cannot be
// loaded, which load() reports properly).
const Api& api();

}  // namespace mc::blas
