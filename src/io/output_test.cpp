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
#include <fstream>
#include <thread>

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

// Converted tensors written through a mapping of the output (MC_WRITE_MODE=mmap) and with pwrite
// give the same file: unaligned offsets, pieces across pages and a tensor of several chunks, from
// two threads; the bytes are checked against the generator.
TEST(OutputTest, MappedWritesEqualPwrite) {
  TempDir dir;
  auto byte_at = [](uint64_t tensor, uint64_t i) { return std::byte((i * 131 + tensor * 7 + (i >> 9)) & 0xFF); };
  std::vector<TensorEntry> tensors;
  const uint64_t sizes[] = {3 << 20, 4099, 1 << 16};
  for (uint64_t t = 0; t < 3; ++t) {
    TensorEntry e{"t" + std::to_string(t), DType::U8, {int64_t(sizes[t])}, nullptr};
    e.data = make_fn_data([t, byte_at](uint64_t off, std::span<std::byte> dst) -> Status {
      for (size_t i = 0; i < dst.size(); ++i) dst[i] = byte_at(t, off + i);
      return {};
    });
    tensors.push_back(std::move(e));
  }
  std::string files[2];
  for (int mapped = 0; mapped < 2; ++mapped) {
    set_mapped_writes(mapped == 1);
    const fs::path p = dir.path() / ("out" + std::to_string(mapped));
    const uint64_t base = 13;  // unaligned start
    uint64_t off = base;
    std::vector<uint64_t> offsets;
    for (const auto& e : tensors) {
      offsets.push_back(off);
      off += e.nbytes() + 5;
    }
    auto f = OutFile::create(p, off);
    ASSERT_TRUE(f) << f.error().message;
    {
      auto w = f->map_window(base, 10);  // the mapped path is really taken (or really not)
      ASSERT_TRUE(w);
      EXPECT_EQ(w->data() != nullptr, mapped == 1);
    }
    std::vector<WriteItem> items;
    for (size_t i = 0; i < tensors.size(); ++i) items.push_back({&tensors[i], &*f, offsets[i]});
    ThreadPool pool(2);
    StreamOptions opt;
    opt.chunk_bytes = uint64_t(1) << 20;
    ASSERT_TRUE(write_tensors(items, pool, opt));
    ASSERT_TRUE(f->close());
    files[mapped] = slurp(p);
    ASSERT_EQ(files[mapped].size(), off);
    for (size_t t = 0; t < tensors.size(); ++t)
      for (uint64_t i = 0; i < sizes[t]; i += 997)
        ASSERT_EQ(std::byte(files[mapped][offsets[t] + i]), byte_at(t, i)) << "tensor " << t << " byte " << i;
  }
  set_mapped_writes(false);
  EXPECT_TRUE(files[0] == files[1]);
}

}  // namespace
}  // namespace mc::io
