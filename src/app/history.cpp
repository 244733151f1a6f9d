#include "app/history.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>

namespace mc::app {

fs::path history_path() {
  const char* x = std::getenv("XDG_STATE_HOME");
  const char* h = std::getenv("HOME");
  const fs::path base = x && *x ? fs::path(x) : fs::path(h && *h ? h : "/") / ".local" / "state";
  return base / "modelconvert" / "history.jsonl";
}

std::string utc_now_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status append_history(ojson record) {
  if (!record.contains("time")) record["time"] = utc_now_iso8601();
  const fs::path p = history_path();
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  const int fd = ::open(p.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::Io, "cannot open the history: {}", std::strerror(errno)).with_path(p.string());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  while (::flock(fd, LOCK_EX) != 0)
    if (errno != EINTR) return make_error(ErrorCode::Io, "cannot lock the history: {}", std::strerror(errno)).with_path(p.string());
  std::string line = record.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n";
  // A writer killed mid-line left no newline: start ours on a line of its own.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') line.insert(line.begin(), '\n');
  }
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(ErrorCode::Io, "cannot write the history: {}", std::strerror(errno)).with_path(p.string());
    off += size_t(n);
  }
  return {};
}

Result<HistoryList> read_history(size_t limit) {
  HistoryList out;
  out.path = history_path();
  std::ifstream f(out.path, std::ios::binary);
  if (!f) return out;
  std::vector<ojson> all;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto j = ojson::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++out.damaged;
      continue;
    }
    all.push_back(std::move(j));
  }
  out.total = all.size();
  const size_t n = limit == 0 ? all.size() : std::min(limit, all.size());
  for (size_t i = 0; i < n; ++i) out.records.push_back(std::move(all[all.size() - 1 - i]));
  return out;
}

}  // namespace mc::app
