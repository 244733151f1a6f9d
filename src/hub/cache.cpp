#include "hub/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace mc::hub {

namespace {

// A name for a temporary sibling that no other process or thread uses at the same time.
std::string unique_tmp(const fs::path& target) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format(".mc-tmp-{}-{}-{}", ::getpid(), counter.fetch_add(1), target.filename().string());
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

fs::path home_dir() {
  const std::string h = env("HOME");
  return h.empty() ? fs::path("/") : fs::path(h);
}

}  // namespace

fs::path hf_home_from_env() {
  if (auto h = env("HF_HOME"); !h.empty()) return h;
  if (auto x = env("XDG_CACHE_HOME"); !x.empty()) return fs::path(x) / "huggingface";
  return home_dir() / ".cache" / "huggingface";
}

fs::path cache_root_from_env() {
  if (auto c = env("HF_HUB_CACHE"); !c.empty()) return c;
  return hf_home_from_env() / "hub";
}

std::string repo_folder_name(std::string_view repo) {
  std::string out = "models--";
  for (char c : repo) {
    if (c == '/') out += "--";
    else out += c;
  }
  return out;
}

bool is_commit_sha(std::string_view s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

RepoCache::RepoCache(fs::path root, std::string_view repo)
    : root_(std::move(root)), dir_(root_ / repo_folder_name(repo)), folder_(repo_folder_name(repo)) {}

fs::path RepoCache::lock_path(std::string_view etag) const {
  return root_ / ".locks" / folder_ / (std::string(etag) + ".lock");
}

std::optional<std::string> RepoCache::read_ref(std::string_view revision) const {
  if (is_commit_sha(revision)) return std::string(revision);
  std::ifstream f(dir_ / "refs" / std::string(revision), std::ios::binary);
  if (!f) return std::nullopt;
  std::string s((std::istreambuf_iterator<char>(f)), {});
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (!is_commit_sha(s)) return std::nullopt;
  return s;
}

Status RepoCache::write_ref(std::string_view revision, std::string_view commit) const {
  if (is_commit_sha(revision)) return {};
  return write_file_atomic(dir_ / "refs" / std::string(revision), commit);
}

bool RepoCache::has_file(std::string_view commit, std::string_view path) const {
  std::error_code ec;
  return fs::is_regular_file(snapshot_dir(commit) / std::string(path), ec);  // follows the link
}

Status RepoCache::link(std::string_view commit, std::string_view path, std::string_view etag) const {
  const fs::path dst = snapshot_dir(commit) / std::string(path);
  std::error_code ec;
  fs::create_directories(dst.parent_path(), ec);
  if (ec) return make_error(ErrorCode::Io, "cannot create folder: {}", ec.message()).with_path(dst.parent_path().string());
  // huggingface_hub: os.path.relpath(blob, start=dirname(link)).
  const fs::path target = blob_path(etag).lexically_relative(dst.parent_path());
  if (fs::is_symlink(dst, ec) && fs::read_symlink(dst, ec) == target) return {};
  const fs::path tmp = dst.parent_path() / unique_tmp(dst);
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) return make_error(ErrorCode::Io, "cannot create symlink: {}", ec.message()).with_path(tmp.string());
  fs::rename(tmp, dst, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return make_error(ErrorCode::Io, "cannot rename symlink into place").with_path(dst.string());
  }
  return {};
}

Result<FileLock> FileLock::acquire(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::Io, "cannot open lock file: {}", std::strerror(errno)).with_path(path.string());
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd);
    return make_error(ErrorCode::Io, "cannot lock: {}", std::strerror(err)).with_path(path.string());
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

Status write_file_atomic(const fs::path& path, std::string_view content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const fs::path tmp = path.parent_path() / unique_tmp(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::Io, "cannot create: {}", std::strerror(errno)).with_path(tmp.string());
  size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(ErrorCode::Io, "write failed: {}", std::strerror(err)).with_path(tmp.string());
    }
    off += size_t(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return make_error(ErrorCode::Io, "cannot rename into place: {}", std::strerror(err)).with_path(path.string());
  }
  return {};
}

}  // namespace mc::hub
