#include "io/shards.h"

namespace mc::io {

std::vector<std::vector<size_t>> plan_shards(std::span<const uint64_t> sizes, uint64_t max_shard_bytes) {
  std::vector<std::vector<size_t>> shards;
  std::vector<size_t> cur;
  uint64_t cur_bytes = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const uint64_t n = sizes[i];
    if (n > max_shard_bytes) {
      shards.push_back({i});
      continue;
    }
    if (!cur.empty() && cur_bytes + n > max_shard_bytes) {
      shards.push_back(std::move(cur));
      cur.clear();
      cur_bytes = 0;
    }
    cur.push_back(i);
    cur_bytes += n;
  }
  if (!cur.empty()) shards.push_back(std::move(cur));
  return shards;
}

}  // namespace mc::io
