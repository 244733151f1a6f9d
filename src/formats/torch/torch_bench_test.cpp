// Throughput probe for bench/torch_bench.sh (disabled in normal runs; no timing assertions).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "formats/torch/torch_io.h"

namespace mc::torch {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(TorchBench, DISABLED_BenchReadAndCopy) {
  const char* in = std::getenv("MC_TORCH_BENCH_FILE");
  const char* out = std::getenv("MC_TORCH_BENCH_OUT");
  if (!in || !out) GTEST_SKIP() << "set MC_TORCH_BENCH_FILE and MC_TORCH_BENCH_OUT";
  auto t0 = std::chrono::steady_clock::now();
  auto f = open_torch_file(in);
  ASSERT_TRUE(f.ok()) << f.error().render();
  const double t_open = seconds_since(t0);
  ThreadPool pool(0);
  std::vector<std::vector<std::byte>> bufs(pool.size(), std::vector<std::byte>(size_t(8) << 20));
  t0 = std::chrono::steady_clock::now();
  const auto& ts = f->tensors;
  // read() every tensor in 8 MiB chunks, one tensor per task (what a converter does)
  auto st = pool.parallel_for(ts.size(), 1, [&](size_t b, size_t e) -> Status {
    thread_local std::vector<std::byte> buf(size_t(8) << 20);
    for (size_t i = b; i < e; ++i)
      for (uint64_t off = 0; off < ts[i].nbytes(); off += buf.size()) {
        const uint64_t n = std::min<uint64_t>(buf.size(), ts[i].nbytes() - off);
        MC_CHECK(ts[i].data->read(off, std::span(buf.data(), n)));
      }
    return {};
  });
  ASSERT_TRUE(st.ok()) << st.error().render();
  const double t_read = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  WriteOptions wo;
  wo.pool = &pool;
  wo.force = true;
  st = write_torch_file(ts, out, wo);
  ASSERT_TRUE(st.ok()) << st.error().render();
  const double t_write = seconds_since(t0);
  const double gb = double(ts.total_bytes()) / 1e9;
  std::printf("bench open (parse pickle + zip): %.3f s, %zu tensors\n", t_open, ts.size());
  std::printf("bench read all tensors:          %.2f GB/s (%.2f GB in %.3f s, %zu threads)\n", gb / t_read, gb,
              t_read, pool.size());
  std::printf("bench write .bin copy (+CRC):    %.2f GB/s (%.3f s, includes fsync)\n", gb / t_write, t_write);
}

}  // namespace
}  // namespace mc::torch
