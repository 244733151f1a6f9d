// ThreadPool::parallel_for: coverage of [0, n), error order, nesting.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace mc {
namespace {

void expect_each_index_once(size_t threads, size_t n, size_t grain) {
  ThreadPool pool(threads);
  std::vector<std::atomic<int>> hits(n);
  std::atomic<size_t> bad_range{0};
  const Status st = pool.parallel_for(n, grain, [&](size_t b, size_t e) -> Status {
    if (b >= e || e > n || (grain > 0 && e - b > grain)) ++bad_range;
    for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
    return {};
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(bad_range.load(), 0u);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i << " of " << n;
}

TEST(ThreadPool, VisitsEveryIndexOnceWithOneThread) {
  expect_each_index_once(1, 1000, 7);
  expect_each_index_once(1, 5, 100);
  expect_each_index_once(1, 17, 0);  // grain 0 is treated as 1
}

TEST(ThreadPool, VisitsEveryIndexOnceWithManyThreads) {
  expect_each_index_once(4, 100003, 64);
  expect_each_index_once(4, 3, 1);  // fewer chunks than threads
  expect_each_index_once(8, 1, 1);
  ThreadPool pool(3);
  bool called = false;
  EXPECT_TRUE(pool.parallel_for(0, 4, [&](size_t, size_t) -> Status {
                    called = true;
                    return {};
                  }).ok());
  EXPECT_FALSE(called);
}

TEST(ThreadPool, OneThreadReturnsFirstErrorAndSkipsTheRest) {
  ThreadPool pool(1);
  std::vector<size_t> calls;
  const Status st = pool.parallel_for(100, 10, [&](size_t b, size_t) -> Status {
    calls.push_back(b);
    if (b == 30 || b == 70) return make_error(ErrorCode::Corrupt, "chunk at {}", b);
    return {};
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Corrupt);
  EXPECT_EQ(st.error().message, "chunk at 30");
  EXPECT_EQ(calls, (std::vector<size_t>{0, 10, 20, 30}));
}

// Both failing chunks are made to run at the same time (each waits, bounded, for the other to
// start), so both errors are recorded whatever the interleaving; the lower chunk must win.
TEST(ThreadPool, ManyThreadsReturnTheFirstErrorByChunkOrder) {
  ThreadPool pool(4);
  for (int rep = 0; rep < 5; ++rep) {
    std::atomic<bool> low_started{false}, high_started{false};
    auto wait_for = [](const std::atomic<bool>& flag) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!flag.load() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    };
    const Status st = pool.parallel_for(8, 1, [&](size_t b, size_t) -> Status {
      if (b == 2) {
        low_started = true;
        wait_for(high_started);
        return make_error(ErrorCode::Io, "low");
      }
      if (b == 6) {
        high_started = true;
        wait_for(low_started);
        return make_error(ErrorCode::Corrupt, "high");
      }
      return {};
    });
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "low");
    EXPECT_EQ(st.error().code, ErrorCode::Io);
  }
}

TEST(ThreadPool, NestedParallelForDoesNotDeadlock) {
  ThreadPool pool(2);
  std::atomic<size_t> inner_items{0};
  const Status st = pool.parallel_for(16, 1, [&](size_t, size_t) -> Status {
    return pool.parallel_for(100, 3, [&](size_t b, size_t e) -> Status {
      inner_items += e - b;
      return {};
    });
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(inner_items.load(), 1600u);
  // An inner error surfaces through the outer call.
  const Status st2 = pool.parallel_for(4, 1, [&](size_t ob, size_t) -> Status {
    return pool.parallel_for(10, 1, [&](size_t b, size_t) -> Status {
      if (ob == 1 && b == 5) return make_error(ErrorCode::Mismatch, "inner {} {}", ob, b);
      return {};
    });
  });
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.error().message, "inner 1 5");
}

}  // namespace
}  // namespace mc
