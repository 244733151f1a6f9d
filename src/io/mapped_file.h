// Read-only memory maps of input files. Inputs are opened O_RDONLY and mapped PROT_READ: nothing
// we do can modify them.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "core/error.h"

namespace mc::io {

class MappedFile {
 public:
  // Maps the whole file (empty files give an empty span).
  static Result<std::shared_ptr<const MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // The open descriptor (read-only), for pread/copy_file_range of large ranges: on some kernels
  // (notably paravirtualised guests) faulting pages into a mapping costs several times more CPU
  // than the copy a read() makes. Valid while this object lives.
  int fd() const { return fd_; }
  // Hint the kernel that [offset, offset+n) will be read sequentially soon.
  void will_need(size_t offset, size_t n) const;

 private:
  MappedFile() = default;
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;
};

using MappedFilePtr = std::shared_ptr<const MappedFile>;

// Ok when `path` is a regular file we may read. Otherwise, naming the file: NotFound when nothing
// is there or it is a link to nothing ("a link to 'X', which does not exist"), Corrupt when it is
// a directory, FIFO, socket or device ("not a regular file (a FIFO)"), Io when the system refuses
// to open it (no permission). Never opens anything that could block (FIFOs are only stat'ed).
Status check_regular_file(const std::string& path);

// Reads a whole (small) regular file into a string: configs, tokenizer files. A name ending in
// ".json" must also nest arrays/objects at most kMaxJsonDepth deep (check_json_depth).
Result<std::string> read_text_file(const std::string& path, size_t max_bytes = size_t(1) << 30);

// JSON nesting cap: no config or tokenizer file nests nearly this deep, and deeper documents
// would make every recursive walk over them (copies, comparisons, dumps) overflow the stack.
inline constexpr size_t kMaxJsonDepth = 128;
// LimitExceeded naming `path` and the byte offset where `text` nests deeper than `max_depth`
// arrays/objects (strings are skipped; the rest of the syntax is the parser's business).
Status check_json_depth(std::string_view text, const std::string& path, size_t max_depth = kMaxJsonDepth);

}  // namespace mc::io
