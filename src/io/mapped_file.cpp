#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mc::io {

namespace {
Error os_error(const std::string& path, std::string_view what) {
  return make_error(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Io, "{}: {}", what,
                    std::strerror(errno))
      .with_path(path);
}
}  // namespace

Result<std::shared_ptr<const MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return os_error(path, "cannot open");
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    auto e = os_error(path, "cannot stat");
    ::close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::InvalidArgument, "not a regular file").with_path(path);
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

Result<std::string> read_text_file(const std::string& path, size_t max_bytes) {
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
  return s;
}

}  // namespace mc::io
