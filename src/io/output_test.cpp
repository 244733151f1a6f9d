// Safe outputs (io/output.h): --force replaces in one step (a watcher never sees the final path
// missing), links at the final path are never followed or clobbered without --force, and
// temporaries of dead runs are removed while those of live ones are kept.
#include "io/output.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>
#include <tuple>

#include "io/stream_writer.h"
#include "testutil.h"

namespace mc::io {
namespace {

using mc::test::slurp;
using mc::test::TempDir;

void put(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A PID that was just in use and is not any more (a child that exited and was reaped).
long dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  int st = 0;
  waitpid(pid, &st, 0);
  return long(pid);
}

std::vector<std::string> hidden_siblings(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(".mc-", 0) == 0 || e.path().filename().string().find(".mc-old") != std::string::npos)
      out.push_back(e.path().filename().string());
  return out;
}

// Replaces `final` `rounds` times (a directory or a file each time) while another thread
// lstat()s it as fast as it can; returns how often the thread found nothing there.
int misses_while_replacing(const fs::path& final, bool is_dir, int rounds) {
  std::atomic<bool> stop{false};
  std::atomic<int> misses{0};
  std::thread watcher([&] {
    struct stat st {};
    while (!stop) if (::lstat(final.c_str(), &st) != 0) ++misses;
  });
  for (int i = 0; i < rounds; ++i) {
    auto p = PendingOutput::begin(final, is_dir, true, 0);
    EXPECT_TRUE(p.ok()) << p.error().render();
    if (!p) break;
    put(is_dir ? p->tmp_path() / "w.bin" : p->tmp_path(), "round " + std::to_string(i));
    auto c = p->commit();
    EXPECT_TRUE(c.ok()) << c.error().render();
  }
  stop = true;
  watcher.join();
  return misses;
}

TEST(OutputTest, ForceReplacesADirectoryInOneStep) {
  TempDir tmp;
  const fs::path out = tmp / "model";
  fs::create_directories(out);
  put(out / "old.txt", "old");
  EXPECT_EQ(misses_while_replacing(out, true, 150), 0);
  EXPECT_FALSE(fs::exists(out / "old.txt"));
  EXPECT_EQ(slurp(out / "w.bin"), "round 149");
  EXPECT_TRUE(hidden_siblings(tmp.path()).empty());
}

TEST(OutputTest, ForceReplacesAFileInOneStep) {
  TempDir tmp;
  const fs::path out = tmp / "model.gguf";
  put(out, "old");
  EXPECT_EQ(misses_while_replacing(out, false, 150), 0);
  EXPECT_EQ(slurp(out), "round 149");
  EXPECT_TRUE(hidden_siblings(tmp.path()).empty());
}

TEST(OutputTest, AFileReplacesADirectoryAndBack) {
  TempDir tmp;
  const fs::path out = tmp / "out";
  fs::create_directories(out);
  put(out / "old.txt", "old");
  auto p = PendingOutput::begin(out, false, true, 0);
  ASSERT_TRUE(p.ok());
  put(p->tmp_path(), "file");
  ASSERT_TRUE(p->commit().ok());
  EXPECT_EQ(slurp(out), "file");
  auto d = PendingOutput::begin(out, true, true, 0);
  ASSERT_TRUE(d.ok());
  put(d->tmp_path() / "x", "dir");
  ASSERT_TRUE(d->commit().ok());
  EXPECT_EQ(slurp(out / "x"), "dir");
  EXPECT_TRUE(hidden_siblings(tmp.path()).empty());
}

TEST(OutputTest, DanglingLinkIsNotReplacedWithoutForce) {
  TempDir tmp;
  const fs::path out = tmp / "m.gguf";
  fs::create_symlink(tmp / "nowhere", out);
  auto p = PendingOutput::begin(out, false, false, 0);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::Exists);
  EXPECT_TRUE(fs::is_symlink(out));
  // A link that appears while we write is not clobbered either.
  const fs::path out2 = tmp / "n.gguf";
  auto q = PendingOutput::begin(out2, false, false, 0);
  ASSERT_TRUE(q.ok());
  put(q->tmp_path(), "new");
  fs::create_symlink(tmp / "nowhere", out2);
  auto c = q->commit();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::Exists);
  EXPECT_TRUE(fs::is_symlink(out2));
  // With force the link itself is replaced; its target is never created.
  auto f = PendingOutput::begin(out, false, true, 0);
  ASSERT_TRUE(f.ok());
  put(f->tmp_path(), "new");
  ASSERT_TRUE(f->commit().ok());
  EXPECT_FALSE(fs::is_symlink(out));
  EXPECT_EQ(slurp(out), "new");
  EXPECT_FALSE(fs::exists(tmp / "nowhere"));
}

TEST(OutputTest, TemporariesOfDeadRunsAreRemovedLiveOnesKept) {
  TempDir tmp;
  const long dead = dead_pid();
  const std::string d = std::to_string(dead), live = std::to_string(getpid());
  fs::create_directories(tmp / (".mc-tmp-" + d + "-big"));
  put(tmp / (".mc-tmp-" + d + "-big") / "model.safetensors", std::string(4096, 'x'));
  put(tmp / (".mc-tmp-" + d + "-m.gguf"), "partial");
  fs::create_directories(tmp / (".mc-stage-" + d + "-m"));
  put(tmp / (".m.mc-old-" + d), "old");
  put(tmp / (".mc-tmp-" + live + "-mine.gguf"), "live");
  put(tmp / ".mc-tmp-notapid-x", "keep");
  put(tmp / ".mc-tmp-12x-x", "keep");
  put(tmp / "model.gguf", "user's file");
  auto p = PendingOutput::begin(tmp / "new.gguf", false, false, 0);
  ASSERT_TRUE(p.ok()) << p.error().render();
  std::vector<std::string> removed;
  for (const auto& r : p->removed_stale()) removed.push_back(r.filename().string());
  std::sort(removed.begin(), removed.end());
  const std::vector<std::string> want = {".m.mc-old-" + d, ".mc-stage-" + d + "-m", ".mc-tmp-" + d + "-big",
                                         ".mc-tmp-" + d + "-m.gguf"};
  EXPECT_EQ(removed, want);
  for (const auto& n : want) EXPECT_FALSE(fs::exists(fs::symlink_status(tmp / n))) << n;
  EXPECT_EQ(slurp(tmp / (".mc-tmp-" + live + "-mine.gguf")), "live");
  EXPECT_EQ(slurp(tmp / ".mc-tmp-notapid-x"), "keep");
  EXPECT_EQ(slurp(tmp / ".mc-tmp-12x-x"), "keep");
  EXPECT_EQ(slurp(tmp / "model.gguf"), "user's file");
}

// A file stand-in for detail::write_pieces: try_pwrite finds the file busy as `busy` says, and
// every write lands in `bytes`; writes are logged as (offset, size, blocking).
struct FakeFile {
  std::function<bool(int call)> busy;
  mutable std::string bytes = std::string(400, '.');
  mutable int tries = 0;
  mutable std::vector<std::tuple<uint64_t, size_t, bool>> writes;
  Status pwrite(uint64_t offset, std::span<const std::byte> d) const {
    std::memcpy(bytes.data() + offset, d.data(), d.size());
    writes.emplace_back(offset, d.size(), true);
    return {};
  }
  Result<bool> try_pwrite(uint64_t offset, std::span<const std::byte> d) const {
    if (busy(tries++)) return false;
    std::memcpy(bytes.data() + offset, d.data(), d.size());
    writes.emplace_back(offset, d.size(), false);
    return true;
  }
};

TEST(OutputTest, PiecesWaitWhileTheFileIsBusyAndLandWhereTheyBelong) {
  // Bytes 5..242 of a generated tensor (237 bytes, pieces of 10: 24 pieces) go to offset 100.
  const auto gen = [](uint64_t i) { return char('A' + (i * 7 + i / 13) % 26); };
  const auto data = make_fn_data([&](uint64_t off, std::span<std::byte> dst) -> Status {
    for (size_t i = 0; i < dst.size(); ++i) dst[i] = std::byte(gen(off + i));
    return {};
  });
  const auto expect = [&] {
    std::string s(400, '.');
    for (uint64_t i = 0; i < 237; ++i) s[100 + i] = gen(5 + i);
    return s;
  }();
  std::vector<std::byte> buf(40);  // four pieces
  struct Case {
    const char* name;
    std::function<bool(int)> busy;
    size_t writes, blocking, largest;
  };
  const Case cases[] = {
      // Never busy: each piece is written as soon as it is made (the last one blocking).
      {"free", [](int) { return false; }, 24, 1, 10},
      // Always busy: the buffer fills (4 pieces), is written waiting, and so on; the last 7 bytes
      // join 3 waiting pieces.
      {"busy", [](int) { return true; }, 6, 6, 40},
      // Busy two tries in three: pieces gather in threes.
      {"mixed", [](int i) { return i % 3 != 2; }, 8, 1, 30},
  };
  for (const auto& c : cases) {
    FakeFile f;
    f.busy = c.busy;
    ASSERT_TRUE(detail::write_pieces(*data, 5, 237, 10, f, 100, buf)) << c.name;
    EXPECT_EQ(f.bytes, expect) << c.name;
    size_t blocking = 0, largest = 0;
    uint64_t next = 100;
    for (const auto& [off, n, waited] : f.writes) {
      EXPECT_EQ(off, next) << c.name << ": writes follow each other";
      next = off + n;
      blocking += waited;
      largest = std::max(largest, n);
    }
    EXPECT_EQ(f.writes.size(), c.writes) << c.name;
    EXPECT_EQ(blocking, c.blocking) << c.name;
    EXPECT_EQ(largest, c.largest) << c.name;
    EXPECT_LE(largest, buf.size()) << c.name;
  }
  // A buffer smaller than a piece is a caller's bug, reported, not overrun.
  FakeFile f;
  f.busy = [](int) { return false; };
  auto st = detail::write_pieces(*data, 0, 100, 64, f, 0, std::span(buf.data(), 40));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Internal);
}

// Two threads writing one file through write_tensors, with pieces small enough that they meet at
// the file's lock: every byte is where the generator says.
TEST(OutputTest, ContendedWritersLeaveEveryByteInPlace) {
  TempDir dir;
  auto byte_at = [](uint64_t t, uint64_t i) { return std::byte((i * 29 + t * 11 + (i >> 10)) & 0xFF); };
  std::vector<TensorEntry> tensors;
  for (uint64_t t = 0; t < 4; ++t) {
    // 3 MiB + t: pieces of 256 KiB, 12 per tensor, the last one short; chunk_align 3 makes
    // pieces and offsets unaligned.
    const uint64_t n = (uint64_t(3) << 20) + 3 * t;
    TensorEntry e{"t" + std::to_string(t), DType::U8, {int64_t(n)}, nullptr};
    e.data = make_fn_data(
        [t, byte_at](uint64_t off, std::span<std::byte> dst) -> Status {
          for (size_t i = 0; i < dst.size(); ++i) dst[i] = byte_at(t, off + i);
          return {};
        },
        3);
    tensors.push_back(std::move(e));
  }
  uint64_t off = 7;
  std::vector<uint64_t> offsets;
  for (const auto& e : tensors) {
    offsets.push_back(off);
    off += e.nbytes() + 1;
  }
  const fs::path p = dir.path() / "out";
  auto f = OutFile::create(p, off);
  ASSERT_TRUE(f) << f.error().message;
  std::vector<WriteItem> items;
  for (size_t i = 0; i < tensors.size(); ++i) items.push_back({&tensors[i], &*f, offsets[i]});
  ThreadPool pool(4);
  StreamOptions opt;
  opt.chunk_bytes = uint64_t(3) << 20;
  ASSERT_TRUE(write_tensors(items, pool, opt));
  ASSERT_TRUE(f->close());
  std::string want(off, '\0');
  for (size_t t = 0; t < tensors.size(); ++t)
    for (uint64_t i = 0; i < tensors[t].nbytes(); ++i) want[offsets[t] + i] = char(byte_at(t, i));
  const std::string got = slurp(p);
  ASSERT_EQ(got.size(), want.size());
  const auto [a, b] = std::mismatch(got.begin(), got.end(), want.begin());
  EXPECT_TRUE(a == got.end()) << "first wrong byte at offset " << (a - got.begin());
}

// The write size follows what writes cost: with large writes cheaper per byte it writes 1 MiB and
// probes 128 KiB once per kProbeBytes; when large writes turn 4x dearer it moves to 128 KiB within
// a few probes (and back when they recover); a single slow large write (a preemption) moves
// nothing.
TEST(OutputTest, WriteSizerWritesTheSizeThatCostsLeast) {
  WriteSizer s;
  double large_ns_per_byte = 0.2, small_ns_per_byte = 0.3;
  uint64_t bytes[2] = {0, 0};  // written as [small, large]
  const auto write = [&](uint64_t total, uint64_t spike_at = ~uint64_t(0)) {
    bytes[0] = bytes[1] = 0;
    for (uint64_t done = 0; done < total;) {
      const size_t len = s.next(size_t(1) << 30);
      const bool large = len == WriteSizer::kLarge;
      ASSERT_TRUE(large || len == WriteSizer::kSmall) << len;
      double ns = double(len) * (large ? large_ns_per_byte : small_ns_per_byte);
      if (done <= spike_at && spike_at < done + len) ns *= 100;
      s.record(len, uint64_t(ns));
      bytes[large] += len;
      done += len;
    }
  };
  const uint64_t MiB = uint64_t(1) << 20;
  write(512 * MiB);
  EXPECT_EQ(s.preferred(), WriteSizer::kLarge);
  // One 128 KiB probe per 32 MiB, and the one first write of each size.
  EXPECT_LE(bytes[0], 18 * WriteSizer::kSmall);
  EXPECT_GE(bytes[0], 14 * WriteSizer::kSmall);

  write(64 * MiB, 10 * MiB);  // one large write 100x slow: a median of five ignores it
  EXPECT_EQ(s.preferred(), WriteSizer::kLarge);
  EXPECT_LE(bytes[0], 4 * WriteSizer::kSmall);

  large_ns_per_byte = 1.2;  // large folios now wait for the host
  write(256 * MiB);
  EXPECT_EQ(s.preferred(), WriteSizer::kSmall);
  // Three probes of 1 MiB move the median; after that one per 32 MiB.
  EXPECT_GE(bytes[0], 200 * MiB);
  EXPECT_LE(bytes[1], 12 * MiB);

  large_ns_per_byte = 0.2;
  write(256 * MiB);
  EXPECT_EQ(s.preferred(), WriteSizer::kLarge);
  EXPECT_GE(bytes[1], 100 * MiB);

  // Short writes (a tensor's tail) neither count nor break the sizes asked for.
  WriteSizer t;
  EXPECT_EQ(t.next(1000), 1000u);
  t.record(1000, 1'000'000'000);
  EXPECT_EQ(t.next(size_t(1) << 30), WriteSizer::kLarge);
}

}  // namespace
}  // namespace mc::io
