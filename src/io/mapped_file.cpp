#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mc::io {

namespace {
Error os_error(const std::string& path, std::string_view what) {
  return make_error(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Io, "{}: {}", what,
                    std::strerror(errno))
      .with_path(path);
}
const char* kind_name(mode_t m) {
  if (S_ISDIR(m)) return "directory";
  if (S_ISFIFO(m)) return "FIFO";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m) || S_ISBLK(m)) return "device";
  return "special file";
}

Error not_regular(const std::string& path, mode_t m) {
  return make_error(ErrorCode::Corrupt, "not a regular file (a {})", kind_name(m))
      .with_path(path)
      .with_hint("it should be a file: check the path");
}
}  // namespace

Status check_regular_file(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return os_error(path, "cannot open");
  if (S_ISLNK(st.st_mode) && ::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(path, ec);
    errno = err;
    if (err == ENOENT) {
      return make_error(ErrorCode::NotFound, "a link to '{}', which does not exist", target.string())
          .with_path(path)
          .with_hint("the link is dangling: download the file it should point at, or fix the link");
    }
    return os_error(path, "cannot open");
  }
  if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
  if (::access(path.c_str(), R_OK) != 0) return os_error(path, "cannot open");
  return {};
}

Result<std::shared_ptr<const MappedFile>> MappedFile::open(const std::string& path) {
  MC_CHECK(check_regular_file(path));
  // O_NONBLOCK: should the path have turned into a FIFO since the check, open() must not wait.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return os_error(path, "cannot open");
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    auto e = os_error(path, "cannot stat");
    ::close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return not_regular(path, st.st_mode);
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = size_t(st.st_size);
  if (m->size_ > 0) {
    void* p = mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      auto e = os_error(path, "cannot mmap");
      ::close(fd);
      return e;
    }
    m->data_ = static_cast<const std::byte*>(p);
  }
  m->fd_ = fd;
  return std::shared_ptr<const MappedFile>(std::move(m));
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<std::byte*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::will_need(size_t offset, size_t n) const {
  if (!data_ || offset >= size_) return;
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t start = offset & ~(page - 1);
  const size_t end = std::min(size_, offset + n);
  madvise(const_cast<std::byte*>(data_) + start, end - start, MADV_WILLNEED);
}

Status check_json_depth(std::string_view text, const std::string& path, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        Error e = make_error(ErrorCode::LimitExceeded, "JSON nested more than {} levels deep", max_depth);
        e.path = path;
        e.offset = i;
        return std::move(e).with_hint("this is not a model's config or tokenizer file: check where it came from");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return {};
}

Result<std::string> read_text_file(const std::string& path, size_t max_bytes) {
  MC_CHECK(check_regular_file(path));
  std::ifstream f(path, std::ios::binary);
  if (!f) return os_error(path, "cannot open");
  f.seekg(0, std::ios::end);
  const auto size = f.tellg();
  if (size < 0) return os_error(path, "cannot read");
  if (size_t(size) > max_bytes) {
    return make_error(ErrorCode::LimitExceeded, "file of {} bytes is over the {} byte cap", size_t(size),
                      max_bytes)
        .with_path(path);
  }
  f.seekg(0);
  std::string s(size_t(size), '\0');
  f.read(s.data(), size);
  if (!f) return os_error(path, "cannot read");
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) MC_CHECK(check_json_depth(s, path));
  return s;
}

}  // namespace mc::io
