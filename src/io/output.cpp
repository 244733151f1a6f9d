#include "io/output.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>

namespace mc::io {

namespace {
std::atomic<bool> g_sync_on_close{false};

// Out of space: the disk is full, the user's quota is spent, or a file size limit (RLIMIT_FSIZE,
// the file system's largest file) is reached; all say "not enough free disk space" (exit 9).
bool no_space(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }

Error os_error(const fs::path& path, std::string_view what, int err = errno) {
  Error e = make_error(no_space(err)   ? ErrorCode::NoSpace
                       : err == ENOENT ? ErrorCode::NotFound
                                       : ErrorCode::Io,
                       "{}: {}", what, std::strerror(err));
  e.path = path.string();
  if (no_space(err)) e.hint = "free some disk space or write the output elsewhere (-o)";
  return e;
}

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
}

// lstat(2): a dangling symlink exists too (it names something that must not be clobbered).
bool lexists(const fs::path& p, struct stat* st = nullptr) {
  struct stat s {};
  const bool ok = ::lstat(p.c_str(), &s) == 0;
  if (st) *st = s;
  return ok;
}

// The PID in a name left by a run of ours, or 0: ".mc-tmp-PID-x", ".mc-stage-PID-x", ".x.mc-old-PID".
long leftover_pid(const std::string& name) {
  auto digits = [](std::string_view s) -> long {
    size_t n = 0;
    while (n < s.size() && n < 9 && s[n] >= '0' && s[n] <= '9') ++n;
    if (n == 0) return 0;
    long v = 0;
    for (size_t i = 0; i < n; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  for (std::string_view prefix : {".mc-tmp-", ".mc-stage-"}) {
    if (name.rfind(prefix, 0) != 0) continue;
    std::string_view rest = std::string_view(name).substr(prefix.size());
    const size_t dash = rest.find('-');
    if (dash == std::string_view::npos || dash == 0) return 0;
    const long pid = digits(rest.substr(0, dash));
    return std::to_string(pid).size() == dash ? pid : 0;
  }
  const size_t at = name.rfind(".mc-old-");
  if (name.size() > 1 && name[0] == '.' && at != std::string::npos && at > 0) {
    std::string_view tail = std::string_view(name).substr(at + 8);
    const long pid = digits(tail);
    return pid > 0 && std::to_string(pid).size() == tail.size() ? pid : 0;
  }
  return 0;
}

bool pid_alive(long pid) { return ::kill(pid_t(pid), 0) == 0 || errno != ESRCH; }
}  // namespace

std::vector<fs::path> remove_stale_temporaries(const fs::path& dir) {
  std::vector<fs::path> removed;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const long pid = leftover_pid(name);
    if (pid <= 0 || pid == long(getpid()) || pid_alive(pid)) continue;
    struct stat st {};
    if (!lexists(it->path(), &st) || st.st_uid != geteuid()) continue;
    std::error_code rec;
    fs::remove_all(it->path(), rec);
    if (!rec) removed.push_back(it->path());
  }
  return removed;
}

Result<uint64_t> free_bytes(const fs::path& dir) {
  // Tests stand in a free-space figure here (the check before writing, not the writes).
  if (const char* v = std::getenv("MC_TEST_FREE_BYTES"); v && *v) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (end && *end == '\0') return uint64_t(n);
  }
  struct statvfs s {};
  if (statvfs(dir.c_str(), &s) != 0) return os_error(dir, "cannot stat file system");
  return uint64_t(s.f_bavail) * uint64_t(s.f_frsize);
}

Result<PendingOutput> PendingOutput::begin(const fs::path& final_path, bool is_dir, bool force,
                                           uint64_t expected_bytes) {
  PendingOutput out;
  out.final_ = fs::absolute(final_path).lexically_normal();
  if (out.final_.filename().empty()) out.final_ = out.final_.parent_path();
  out.is_dir_ = is_dir;
  out.force_ = force;
  std::error_code ec;
  if (lexists(out.final_) && !force) {
    return make_error(ErrorCode::Exists, "output already exists")
        .with_path(final_path.string())
        .with_hint("pass --force to replace it, or choose another -o");
  }
  const fs::path parent = out.final_.parent_path();
  fs::create_directories(parent, ec);
  if (ec) {
    return make_error(ErrorCode::Io, "cannot create directory: {}", ec.message()).with_path(parent.string());
  }
  out.removed_stale_ = remove_stale_temporaries(parent);
  auto free = MC_TRY(free_bytes(parent));
  const uint64_t need = expected_bytes + expected_bytes / 100 + (1u << 20);
  if (free < need) {
    return make_error(ErrorCode::NoSpace, "the output needs about {} MB, {} MB are free", need >> 20,
                      free >> 20)
        .with_path(parent.string())
        .with_hint("free some disk space or write the output elsewhere (-o)");
  }
  // Hidden, PID-tagged, and keeping the final name's extension (engines look at it).
  out.tmp_ = parent / (".mc-tmp-" + std::to_string(getpid()) + "-" + out.final_.filename().string());
  remove_quietly(out.tmp_);
  if (is_dir) {
    fs::create_directory(out.tmp_, ec);
    if (ec) {
      return make_error(ErrorCode::Io, "cannot create directory: {}", ec.message())
          .with_path(out.tmp_.string());
    }
  }
  return out;
}

PendingOutput::PendingOutput(PendingOutput&& o) noexcept
    : final_(std::move(o.final_)), tmp_(std::move(o.tmp_)), removed_stale_(std::move(o.removed_stale_)),
      is_dir_(o.is_dir_), force_(o.force_), committed_(o.committed_) {
  o.committed_ = true;
}

PendingOutput& PendingOutput::operator=(PendingOutput&& o) noexcept {
  if (this != &o) {
    if (!committed_ && !tmp_.empty()) remove_quietly(tmp_);
    final_ = std::move(o.final_);
    tmp_ = std::move(o.tmp_);
    removed_stale_ = std::move(o.removed_stale_);
    is_dir_ = o.is_dir_;
    force_ = o.force_;
    committed_ = o.committed_;
    o.committed_ = true;
  }
  return *this;
}

PendingOutput::~PendingOutput() {
  if (!committed_ && !tmp_.empty()) remove_quietly(tmp_);
}

Status PendingOutput::commit() {
  struct stat st {};
  const bool exists = lexists(final_, &st);
  if (exists && !force_) {
    return make_error(ErrorCode::Exists, "output appeared while we were writing it")
        .with_path(final_.string())
        .with_hint("pass --force to replace it, or choose another -o");
  }
  if (!exists) {
    // NOREPLACE: something that appears meanwhile (even a dangling link) is never clobbered.
    if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, final_.c_str(), RENAME_NOREPLACE) != 0) {
      const int err = errno;
      if (err == EEXIST) {
        return make_error(ErrorCode::Exists, "output appeared while we were writing it")
            .with_path(final_.string())
            .with_hint("pass --force to replace it, or choose another -o");
      }
      if ((err != EINVAL && err != ENOSYS) || ::rename(tmp_.c_str(), final_.c_str()) != 0)
        return os_error(final_, "cannot rename the finished output into place", err == EINVAL || err == ENOSYS ? errno : err);
    }
  } else if (!S_ISDIR(st.st_mode) && !is_dir_) {
    // A file over a file (or a link): one rename replaces it atomically.
    if (::rename(tmp_.c_str(), final_.c_str()) != 0)
      return os_error(final_, "cannot rename the finished output over the old one");
  } else if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, final_.c_str(), RENAME_EXCHANGE) == 0) {
    // Swapped in one step: the old output now sits at the temporary name.
    committed_ = true;
    remove_quietly(tmp_);
  } else if (errno != EINVAL && errno != ENOSYS) {
    return os_error(final_, "cannot swap the finished output with the old one");
  } else {
    // A file system without RENAME_EXCHANGE: move the old output aside, rename the new one in,
    // and put the old one back if that fails.
    const fs::path old = final_.parent_path() / ("." + final_.filename().string() + ".mc-old-" + std::to_string(getpid()));
    remove_quietly(old);
    if (::rename(final_.c_str(), old.c_str()) != 0) return os_error(final_, "cannot move the old output aside");
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
      const int err = errno;
      if (::rename(old.c_str(), final_.c_str()) != 0) {
        return os_error(final_, "cannot rename the finished output into place, and the old output stayed at " + old.string(), err)
            .with_hint("rename it back by hand");
      }
      return os_error(final_, "cannot rename the finished output into place (the old output is unchanged)", err);
    }
    remove_quietly(old);
  }
  committed_ = true;
  // Make the rename durable.
  if (!g_sync_on_close) return {};
  int dfd = ::open(final_.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<OutFile> OutFile::create(const fs::path& path, uint64_t size) {
  OutFile f;
  f.path_ = path;
  f.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f.fd_ < 0) return os_error(path, "cannot create");
  if (size > 0) {
    const int rc = posix_fallocate(f.fd_, 0, off_t(size));
    if (no_space(rc)) return os_error(path, "cannot reserve space", rc);
    if (rc != 0 && ftruncate(f.fd_, off_t(size)) != 0) return os_error(path, "cannot size");
  }
  return f;
}

OutFile::OutFile(OutFile&& o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), writing_(std::move(o.writing_)) {
  o.fd_ = -1;
}
OutFile& OutFile::operator=(OutFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    writing_ = std::move(o.writing_);
    o.fd_ = -1;
  }
  return *this;
}
OutFile::~OutFile() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
// A writer whose pieces are all made waits for the file: it spins first, as the writer holding
// the file is running on another core and done within a write or two (a full buffer, 1 MiB, takes
// ~0.2 ms here), and sleeps only after kSpin. Sleeping at once cost the file ~45 ms of idle time
// per 0.8 GB (HF -> GGUF f16, 2 threads: 0.25-0.26 s against 0.21-0.22 s spinning): a woken
// thread starts writing tens of microseconds after the lock was released, in this guest.
constexpr auto kSpin = std::chrono::microseconds(500);

void lock_spinning(std::unique_lock<std::mutex>& lock) {
  if (lock.try_lock()) return;
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 1;; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (lock.try_lock()) return;
    if (i % 64 == 0 && std::chrono::steady_clock::now() > until) break;
  }
  lock.lock();
}
}  // namespace

float WriteSizer::Costs::median() const {
  const size_t k = std::min<size_t>(n, ns_per_byte.size());
  std::array<float, 5> v = ns_per_byte;
  std::nth_element(v.begin(), v.begin() + k / 2, v.begin() + k);
  return v[k / 2];
}

size_t WriteSizer::preferred() const {
  if (costs_[0].n == 0 || costs_[1].n == 0) return kLarge;
  return costs_[0].median() < costs_[1].median() ? kSmall : kLarge;
}

size_t WriteSizer::next(size_t remaining) {
  // Each size is measured once first (large, then small); after that the cheaper one, and the
  // other once per kProbeBytes.
  size_t size = costs_[1].n == 0 ? kLarge : costs_[0].n == 0 ? kSmall : preferred();
  if (costs_[0].n > 0 && costs_[1].n > 0 && since_probe_ >= kProbeBytes) {
    size = size == kSmall ? kLarge : kSmall;
    since_probe_ = 0;
  }
  size = std::min(size, remaining);
  since_probe_ += size;
  return size;
}

void WriteSizer::record(size_t len, uint64_t ns) {
  if (len < kSmall) return;
  Costs& c = costs_[len > kSmall ? 1 : 0];
  c.ns_per_byte[c.n % c.ns_per_byte.size()] = float(double(ns) / double(len));
  ++c.n;
}

Status OutFile::pwrite(uint64_t offset, std::span<const std::byte> data) const {
  std::unique_lock lock(writing_->mu, std::defer_lock);
  lock_spinning(lock);
  return pwrite_locked(offset, data);
}

Result<bool> OutFile::try_pwrite(uint64_t offset, std::span<const std::byte> data) const {
  std::unique_lock lock(writing_->mu, std::try_to_lock);
  if (!lock.owns_lock()) return false;
  MC_CHECK(pwrite_locked(offset, data));
  return true;
}

Status OutFile::pwrite_locked(uint64_t offset, std::span<const std::byte> data) const {
  WriteSizer& sizer = writing_->sizer;
  size_t done = 0;
  while (done < data.size()) {
    const size_t len = sizer.next(data.size() - done);
    const auto t0 = std::chrono::steady_clock::now();
    const ssize_t n = ::pwrite(fd_, data.data() + done, len, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      Error e = os_error(path_, "write failed");
      e.offset = offset + done;
      return e;
    }
    if (size_t(n) == len)
      sizer.record(len, uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - t0)
                                     .count()));
    done += size_t(n);
  }
  return {};
}

Result<bool> OutFile::copy_from(int src_fd, uint64_t src_offset, uint64_t offset, uint64_t len) const {
  std::lock_guard lock(writing_->mu);
  uint64_t done = 0;
  while (done < len) {
    loff_t in = loff_t(src_offset + done), out = loff_t(offset + done);
    const ssize_t n = ::copy_file_range(src_fd, &in, fd_, &out, size_t(len - done), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && done == 0 &&
        (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF))
      return false;  // not supported between these files: nothing written, write instead
    if (n < 0) {
      Error e = os_error(path_, "copy failed");
      e.offset = offset + done;
      return e;
    }
    if (n == 0) {
      Error e = make_error(ErrorCode::Truncated, "the input ended early: it changed while being copied");
      e.path = path_.string();
      e.offset = offset + done;
      return e;
    }
    done += uint64_t(n);
  }
  return true;
}

void set_sync_on_close(bool on) { g_sync_on_close = on; }
bool sync_on_close() { return g_sync_on_close; }

Status OutFile::close() {
  if (fd_ < 0) return {};
  if (g_sync_on_close && fdatasync(fd_) != 0) return os_error(path_, "fsync failed");
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return os_error(path_, "close failed");
  return {};
}

Status write_small_file(const fs::path& path, std::string_view content) {
  auto f = MC_TRY(OutFile::create(path, 0));
  MC_CHECK(f.pwrite(0, std::as_bytes(std::span(content.data(), content.size()))));
  return f.close();
}

Status copy_file(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return os_error(from, "cannot copy to " + to.string(), ec.value());
  return {};
}

}  // namespace mc::io
