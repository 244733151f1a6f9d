// OpenBLAS opened on first use: its idle pool is stopped as it loads (it spins on a core a
// conversion needs), and comes back by itself for the calibrated quantizers' multi-threaded
// calls, which still compute the right thing.
#include "quant/blas_threads.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <vector>

namespace mc::quant {
namespace {

int thread_count() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (const dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
  }
  return n;
}

TEST(BlasThreads, LoadedOnFirstUseWithItsIdlePoolStoppedAndBackForThreadedCalls) {
  ASSERT_EQ(thread_count(), 1) << "this test's process should have no other thread yet";
  ASSERT_TRUE(blas::load());
  EXPECT_EQ(thread_count(), 1) << "OpenBLAS's pool threads are running after load";
  ASSERT_TRUE(blas::load());  // twice is the same answer
  EXPECT_EQ(thread_count(), 1);

  // A product large enough for OpenBLAS to split it across threads: C = A B with A all ones and
  // B's column j all j, so every C[i][j] = n * j.
  const int n = 512;
  std::vector<float> a(size_t(n) * n, 1.f), b(size_t(n) * n), c(size_t(n) * n, -1.f);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) b[size_t(i) * n + size_t(j)] = float(j);
  {
    BlasThreads two(2);
    blas::api().sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f,
                      c.data(), n);
    // OpenBLAS restarts the pool it was built with: none when it started single-threaded (one
    // core, or OPENBLAS_NUM_THREADS=1).
    if (blas::api().get_num_threads() > 1) {
      EXPECT_GT(thread_count(), 1) << "the pool did not come back";
    }
  }
  for (int i = 0; i < n; i += 37)
    for (int j = 0; j < n; j += 29) ASSERT_EQ(c[size_t(i) * n + size_t(j)], float(n) * float(j)) << i << "," << j;
}

}  // namespace
}  // namespace mc::quant
