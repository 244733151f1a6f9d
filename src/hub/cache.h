// The Hugging Face hub cache, laid out as huggingface_hub lays it out so that either tool finds
// what the other downloaded:
//
//   <root>/models--ORG--NAME/
//     blobs/<etag>                  file content; etag = sha256 (LFS) or git blob sha1
//     blobs/<etag>.incomplete       a download in progress (resumed by the next run)
//     refs/<revision>               40-hex commit the branch/tag resolved to, no newline
//     snapshots/<commit>/<path>     relative symlink -> ../../blobs/<etag> (one more ../ per folder)
//   <root>/.locks/models--ORG--NAME/<etag>.lock   flock(2) held while a blob is written
//
// Root: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/error.h"

namespace mc::hub {

namespace fs = std::filesystem;

// The cache root from the environment (see above).
fs::path cache_root_from_env();
// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
fs::path hf_home_from_env();
// "org/name" -> "models--org--name".
std::string repo_folder_name(std::string_view repo);
// 40 lower-case hex digits.
bool is_commit_sha(std::string_view s);

class RepoCache {
 public:
  RepoCache(fs::path root, std::string_view repo);

  const fs::path& dir() const { return dir_; }
  fs::path blob_path(std::string_view etag) const { return dir_ / "blobs" / std::string(etag); }
  fs::path snapshot_dir(std::string_view commit) const { return dir_ / "snapshots" / std::string(commit); }
  fs::path lock_path(std::string_view etag) const;

  // The commit refs/<revision> names (nullopt when absent or not a commit sha); a commit sha
  // revision is returned as is.
  std::optional<std::string> read_ref(std::string_view revision) const;
  Status write_ref(std::string_view revision, std::string_view commit) const;
  // Whether snapshots/<commit>/<path> exists and its target is readable.
  bool has_file(std::string_view commit, std::string_view path) const;
  // snapshots/<commit>/<path> -> ../../blobs/<etag> (relative, as huggingface_hub makes it);
  // replaces a link that points elsewhere.
  Status link(std::string_view commit, std::string_view path, std::string_view etag) const;

 private:
  fs::path root_, dir_;
  std::string folder_;
};

// An exclusive flock(2) on a lock file (created with its folders), released on destruction.
class FileLock {
 public:
  static Result<FileLock> acquire(const fs::path& path);
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Writes `content` to `path` through a temporary sibling and a rename.
Status write_file_atomic(const fs::path& path, std::string_view content);

}  // namespace mc::hub
