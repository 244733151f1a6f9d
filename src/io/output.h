// Safe outputs: everything is written under a temporary sibling of the final path and renamed
// into place only after it was written and validated. A crash, kill or full disk leaves at most
// a ".mc-tmp-PID-name" sibling, never something that looks like a finished model; a later run
// writing into the same folder removes such siblings once their PID is dead.
//
// Replacing (--force) is one step at the final path: a file replaces a file with one rename(2);
// when either side is a directory the two are swapped with renameat2(RENAME_EXCHANGE) and the
// old one, now under the temporary name, is deleted. The final path always holds either the old
// or the new output, never nothing.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"

namespace mc::io {

namespace fs = std::filesystem;

class PendingOutput {
 public:
  // Starts an output at `final_path`. Fails with Exists if it exists and !force, with NoSpace if
  // the file system has less than `expected_bytes` (+1%) free. For a directory output the temp
  // directory is created.
  static Result<PendingOutput> begin(const fs::path& final_path, bool is_dir, bool force,
                                     uint64_t expected_bytes);
  PendingOutput(PendingOutput&&) noexcept;
  PendingOutput& operator=(PendingOutput&&) noexcept;
  PendingOutput(const PendingOutput&) = delete;
  ~PendingOutput();  // removes the temporary unless committed

  const fs::path& tmp_path() const { return tmp_; }
  const fs::path& final_path() const { return final_; }
  // Temporaries of dead runs that begin() removed from the output's folder (for a notice).
  const std::vector<fs::path>& removed_stale() const { return removed_stale_; }
  // Renames the temporary into place (replacing an old output when forced, atomically; a
  // failure leaves the old output where it was).
  Status commit();

 private:
  PendingOutput() = default;
  fs::path final_, tmp_;
  std::vector<fs::path> removed_stale_;
  bool is_dir_ = false, force_ = false, committed_ = false;
};

// Chooses the length of each write(2) into the page cache by what writes cost on this machine
// at this moment. Measured on the 2-core development guest (Linux 6.18, ext4, 0.8 GB HF -> GGUF
// f16): most of the time 1 MiB writes beat 128 KiB ones by 15-25% (0.17-0.19 s against
// 0.23-0.25 s), but while the kernel has to split free memory that the hypervisor has taken back
// to make large page-cache folios, they lost 2-4x (0.41-0.86 s against 0.23-0.28 s). Both sizes
// are timed as they are used (the median of each one's last few writes, in ns per byte) and the
// cheaper one is written; the other gets one write per kProbeBytes so its cost stays current.
// Not thread-safe: an OutFile uses it under its write lock.
class WriteSizer {
 public:
  static constexpr size_t kSmall = size_t(128) << 10;
  static constexpr size_t kLarge = size_t(1) << 20;
  static constexpr uint64_t kProbeBytes = uint64_t(32) << 20;

  // Length of the next write of `remaining` bytes (at most kLarge).
  size_t next(size_t remaining);
  // A write of `len` bytes took `ns`. Writes shorter than kSmall (tails) teach nothing.
  void record(size_t len, uint64_t ns);
  // The size written now, when both have been measured (kLarge before that).
  size_t preferred() const;

 private:
  struct Costs {
    std::array<float, 5> ns_per_byte{};
    uint32_t n = 0;
    float median() const;
  };
  Costs costs_[2];  // [0]: kSmall, [1]: kLarge
  uint64_t since_probe_ = 0;
};

// A file written with positional writes from several threads.
class OutFile {
 public:
  static Result<OutFile> create(const fs::path& path, uint64_t size);  // preallocates `size`
  OutFile(OutFile&&) noexcept;
  OutFile& operator=(OutFile&&) noexcept;
  OutFile(const OutFile&) = delete;
  ~OutFile();
  Status pwrite(uint64_t offset, std::span<const std::byte> data) const;  // thread-safe
  // As pwrite, but only when no other thread is writing this file: false, with nothing
  // written, when one is (the caller makes more output and writes it all at its next turn).
  Result<bool> try_pwrite(uint64_t offset, std::span<const std::byte> data) const;
  // Copies `len` bytes at `src_offset` of the open file `src_fd` to `offset`, inside the kernel
  // (copy_file_range, as cp does; a reflink where the file system shares extents). Returns false
  // without an error when the kernel cannot do it for these files (the caller writes instead).
  Result<bool> copy_from(int src_fd, uint64_t src_offset, uint64_t offset, uint64_t len) const;

  Status close();  // fsync + close
  const fs::path& path() const { return path_; }

 private:
  OutFile() = default;
  int fd_ = -1;
  fs::path path_;
  Status pwrite_locked(uint64_t offset, std::span<const std::byte> data) const;  // holding writing_->mu
  // Writers take turns: a buffered write holds the file's inode lock anyway, and a thread that
  // finds it taken spins in the kernel (measured: 30% of a 2-thread HF -> GGUF run); a user
  // space mutex lets the others convert meanwhile (try_pwrite) and, once they must wait, spin
  // for a while before they sleep (pwrite).
  struct Writing {
    std::mutex mu;
    WriteSizer sizer;  // under mu
  };
  std::unique_ptr<Writing> writing_ = std::make_unique<Writing>();
};

// Whether OutFile::close() flushes data to the device (fdatasync). Off by default, as cp,
// save_pretrained and llama.cpp do: the rename-after-validation already guarantees that a
// crash or kill never leaves a partial output at the final path; --sync adds durability
// against power loss at the price of waiting for the disk. Set once by the CLI at start.
void set_sync_on_close(bool on);
bool sync_on_close();


// Removes, in `dir`, what killed runs of this program left (".mc-tmp-PID-*", ".mc-stage-PID-*",
// ".*.mc-old-PID") when that PID is no longer running and the entry is ours (same user).
// Returns what it removed. Entries of live processes (including this one) are kept.
std::vector<fs::path> remove_stale_temporaries(const fs::path& dir);

// Writes a small file in one go (configs, index json) with an fsync.
Status write_small_file(const fs::path& path, std::string_view content);
// Copies a file (tokenizer files carried through).
Status copy_file(const fs::path& from, const fs::path& to);
// Free bytes on the file system that holds `dir`.
Result<uint64_t> free_bytes(const fs::path& dir);

}  // namespace mc::io
