// Internal helpers for the lazy element-wise and row-wise TensorData wrappers of transforms/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "core/error.h"

namespace mc::transforms::detail {

// Elements produced per step of an element-wise wrapper: bounds the scratch memory of one
// read() call (about 1 MiB of f32) whatever range the writer asks for.
inline constexpr uint64_t kChunkElems = uint64_t(1) << 18;

// Produces `count` elements starting at element `first` into `out` (count * elem_size bytes).
using ProduceFn = std::function<Status(uint64_t first, uint64_t count, std::byte* out)>;

// Fills bytes [offset, offset + dst.size()) of a tensor of `total_elems` elements of
// `elem_size` bytes by calling `produce` on element ranges of at most kChunkElems. Ranges that
// start or end inside an element are served through a small scratch buffer.
Status read_elementwise(uint64_t offset, std::span<std::byte> dst, size_t elem_size,
                        uint64_t total_elems, const ProduceFn& produce);

}  // namespace mc::transforms::detail
