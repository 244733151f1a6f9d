// safetensors engine (formats.md §1): a strict reader that maps tensors zero-copy out of an mmap,
// sharded directories (model.safetensors.index.json + shards), a deterministic streaming writer
// that lays out files like the reference writer and shards like huggingface_hub, and a
// validator that reports every violation it finds.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/engine.h"
#include "io/mapped_file.h"

namespace mc::safetensors {

namespace fs = std::filesystem;

// Reference reader's MAX_HEADER_SIZE (safetensors tensor.rs); bigger headers are rejected.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Cap for model.safetensors.index.json (real ones are a few hundred KB).
inline constexpr size_t kMaxIndexBytes = size_t(64) << 20;
inline constexpr std::string_view kIndexName = "model.safetensors.index.json";
inline constexpr std::string_view kSingleName = "model.safetensors";

// One tensor entry of a parsed header, in the file's own terms.
struct HeaderTensor {
  std::string name;
  std::string st_dtype;        // dtype string as written ("F16", "C64", ...)
  std::optional<DType> dtype;  // ours, if we support it
  Shape shape;
  uint64_t begin = 0, end = 0;  // data_offsets, relative to the byte buffer
};

struct Header {
  uint64_t header_len = 0;  // N: the JSON header's byte length
  uint64_t data_start = 0;  // 8 + N
  std::map<std::string, std::string> metadata;  // __metadata__
  std::vector<HeaderTensor> tensors;            // sorted by data_offsets
};

// Parses and validates (formats.md §1.3) the header of a whole file held in memory; returns the
// first violation. `path` only labels errors. Reads no tensor data.
Result<Header> parse_header(std::span<const std::byte> file, const std::string& path = "");
// Same checks, but collects every violation into `errors`; returns the header when its JSON
// could be read at all (its tensors may still be inconsistent).
std::optional<Header> check_header(std::span<const std::byte> file, const std::string& path,
                                   std::vector<Error>& errors);

// A single opened file: tensors (data_offsets order) point into `map` (zero copy).
struct StFile {
  TensorStore tensors;
  std::map<std::string, std::string> metadata;
  io::MappedFilePtr map;
  uint64_t header_len = 0;
};

// Maps and validates one .safetensors file. Errors carry path, tensor and byte offset.
Result<StFile> open_file(const fs::path& path);

// A set of files making one model (a single file or index + shards).
struct StSet {
  fs::path dir;                                  // folder holding `files`
  std::vector<std::string> files;                // file names, in the order tensors were added
  TensorStore tensors;                           // shard order, data_offsets order inside a shard
  std::map<std::string, std::string> metadata;   // __metadata__ of the first file
  std::optional<uint64_t> index_total_size;      // metadata.total_size of the index, if any
  std::vector<std::string> warnings;             // tolerated oddities (unlisted tensors, ...)
  std::vector<io::MappedFilePtr> maps;
};

// Reads model.safetensors.index.json (given the directory or the json itself), opens each
// shard once and checks every weight_map entry against its shard. A tensor present in a shard
// but absent from weight_map is kept and noted in `warnings`.
Result<StSet> open_index(const fs::path& dir_or_index);
// The safetensors weights of `path`, whatever the layout: a .safetensors file, a directory with
// an index + shards, a directory with model.safetensors, or a directory with one lone
// *.safetensors file.
Result<StSet> open_path(const fs::path& path);
// Which weight files open_path would read (empty if none); never errors. For detection.
std::vector<fs::path> find_weight_files(const fs::path& dir);

struct WriteOpts {
  ThreadPool* pool = nullptr;                // nullptr: one thread
  uint64_t max_shard_bytes = 5'000'000'000;  // huggingface_hub default
  bool single_file = false;                  // `out` is the file to write (never sharded)
  std::string stem = "model";                // shard names: <stem>-00001-of-00003.safetensors
  std::map<std::string, std::string> metadata;  // __metadata__; "format": "pt" added if absent
  uint64_t chunk_bytes = uint64_t(8) << 20;
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
  Progress* sink = nullptr;  // see io::StreamOptions
  // The order tensors are made in (store indices, each once); empty: store order, which for a
  // conversion is the input's byte order. The layout in the files does not depend on it.
  std::vector<size_t> pull_order;
};

struct PlannedFile {
  std::string name;              // relative to the output directory (or the file name)
  std::string header;            // the 8-byte length + padded JSON, ready to write
  std::vector<size_t> tensors;   // indices into the store, in data_offsets order
  std::vector<uint64_t> offsets; // absolute file offset of each of `tensors`
  uint64_t size = 0;             // whole file size
};

struct WritePlan {
  std::vector<PlannedFile> files;
  std::string index_json;  // empty when one file suffices
  uint64_t tensor_bytes = 0;
  uint64_t file_bytes = 0;  // all files + index
};

// Computes names, headers and offsets without touching the disk (also: expected output size).
Result<WritePlan> plan_write(const TensorStore& store, const WriteOpts& opt);
// Tensor order inside one file as the reference writer: descending dtype alignment, then name.
std::vector<size_t> reference_order(const TensorStore& store, std::span<const size_t> subset);
// huggingface_hub's greedy split (store order); returns store indices per shard.
std::vector<std::vector<size_t>> split_shards(const TensorStore& store, uint64_t max_shard_bytes);

// Writes `store` into `out` (a directory, or the file itself with single_file) and returns the
// written file names (relative to `out`'s directory). Streams: memory stays threads x chunk.
Result<std::vector<std::string>> write(const TensorStore& store, const fs::path& out,
                                       const WriteOpts& opt);

// Checks a file or a directory (every shard, the index, total_size) and reports every problem.
formats::ValidationReport validate_path(const fs::path& path);

}  // namespace mc::safetensors
