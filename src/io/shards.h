// The shard planner of every sharded writer (safetensors, PyTorch .bin, MLX): huggingface_hub's
// split_torch_state_dict_into_shards rule — tensors in the given order fill a shard until the
// next one would push it past the limit; a tensor bigger than the limit gets a shard of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mc::io {

// Indices of `sizes` per shard, in order. No tensors: no shards (a writer that must still write
// one file adds it).
std::vector<std::vector<size_t>> plan_shards(std::span<const uint64_t> sizes, uint64_t max_shard_bytes);

}  // namespace mc::io
