// PyTorch checkpoints (.bin / .pt / .pth): read torch.save files (zip, formats.md §3.1-§3.3, and
// the legacy pre-1.6 stream, §3.6) without executing anything, and write files that
// torch.load(..., weights_only=True) accepts (§3.5).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/progress.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/torch/pickle.h"
#include "io/mapped_file.h"

namespace mc::torch {

namespace fs = std::filesystem;

struct ReadOptions {
  Limits limits;
  bool verify_crc = false;  // recompute every entry's CRC-32 (torch itself does not)
};

// One storage's bytes in the mapped file.
struct StorageBytes {
  std::span<const std::byte> bytes;
  uint64_t file_offset = 0;
};

struct TorchFile {
  io::MappedFilePtr file;
  std::shared_ptr<Tree> tree;      // the whole unpickled object (tree->root)
  const Value* state_dict = nullptr;  // the subtree `tensors` was taken from
  std::string state_dict_key;      // where that is: "" (root), "state_dict", "model", ...
  TensorStore tensors;             // tensors of `state_dict`, nested dict keys joined with '.'
  bool legacy = false;             // pre-zip stream format
  bool big_endian = false;         // storages are big-endian (byte-swapped on read)
  std::string archive_name;        // top-level folder of the zip ("" for legacy)
  std::unordered_map<std::string, StorageBytes> storages;  // by storage key
};

// Opens a torch.save file. The tensors are lazy: contiguous ones are zero-copy views of the
// mapping, strided ones are gathered on read().
Result<TorchFile> open_torch_file(const std::string& path, const ReadOptions& opt = {});

// The tensors found under `v` (dicts, lists and tuples; names joined with '.' after `prefix`).
// Each tensor is checked against its storage (dtype known, extent inside the storage).
// With `errors`, problems are collected there and the walk goes on.
Result<TensorStore> tensors_from_value(const TorchFile& f, const Value& v, const std::string& prefix = "",
                                       std::vector<Error>* errors = nullptr);

// Picks the state dict inside common wrappers: the root if it holds tensors directly, else
// root['state_dict'], ['model'], ['module'], ['model_state_dict'] (one level); "" = root.
std::pair<const Value*, std::string> find_state_dict(const Value& root);

// A Hugging Face directory's PyTorch weights: pytorch_model.bin, or the shards listed in
// pytorch_model.bin.index.json (every weight_map entry must be found in its shard).
Result<TensorStore> open_hf_torch_dir(const std::string& dir, const ReadOptions& opt = {});

// Every problem of a file (structure, CRCs, each tensor's storage bounds); empty = valid.
std::vector<Error> validate_torch_file(const std::string& path, const ReadOptions& opt = {});

// ---- writing ----------------------------------------------------------------------------------

struct WriteOptions {
  ThreadPool* pool = nullptr;              // nullptr: a pool of hardware concurrency
  uint64_t chunk_bytes = uint64_t(8) << 20;
  Progress* sink = nullptr;  // see io::StreamOptions
  bool force = false;                      // replace an existing output
  bool atomic = true;                      // write a temporary sibling and rename (single files)
  std::string archive_name;                // top-level zip folder; default: file stem
  // TorchScript archives (formats.md §4.1): more records (name relative to the archive folder,
  // bytes), written after the storages; the `version` record's text; whether to write `byteorder`.
  std::vector<std::pair<std::string, std::string>> records;
  std::string version = "3\n";
  bool byteorder = true;
};

// Writes {name: tensor} as a plain dict (what save_pretrained's torch.save(state_dict) loads as).
// Tensors sharing one TensorData (tied weights) share one storage.
Status write_torch_file(const TensorStore& tensors, const fs::path& path, const WriteOptions& opt = {});
// Writes any tree (nested dicts/lists/tuples, plain values, Namespace objects, Tensor nodes made
// with Tree::tensor) with protocol 2.
Status write_torch_tree(const Value& root, const fs::path& path, const WriteOptions& opt = {});

// Greedy sharding as Hugging Face does: tensors in order, a new shard when the next tensor would
// push the current one past `max_shard_bytes`; a tensor bigger than the limit gets its own shard.
std::vector<std::vector<size_t>> plan_shards(const TensorStore& tensors, uint64_t max_shard_bytes);
// Writes pytorch_model.bin, or pytorch_model-0000i-of-0000n.bin + pytorch_model.bin.index.json
// ({"metadata":{"total_size":N},"weight_map":{...}}) into an existing directory `dir`.
// Returns the file names written.
Result<std::vector<std::string>> write_torch_shards(const TensorStore& tensors, const fs::path& dir,
                                                    uint64_t max_shard_bytes, const WriteOptions& opt = {},
                                                    const std::string& stem = "pytorch_model");

}  // namespace mc::torch
