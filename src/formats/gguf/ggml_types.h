// The ggml tensor types a GGUF file may name (formats.md §2.3), including the ones we cannot
// convert (IQ*, TQ*, MXFP4), so that the reader can check the geometry of any file and name an
// unsupported type in its error instead of failing on the layout.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/dtype.h"

namespace mc::gguf {

struct GgmlType {
  uint32_t id;
  std::string_view name;
  uint32_t block_elems;
  uint32_t block_bytes;
};

// nullptr for ids ggml does not define (removed or future types).
const GgmlType* find_ggml_type(uint32_t id);
// The DType for a ggml type id (nullopt for types the rest of the program does not handle).
std::optional<DType> dtype_for_ggml(uint32_t id);
// The ggml id of a DType (nullopt if it has none).
std::optional<uint32_t> ggml_for_dtype(DType t);

}  // namespace mc::gguf
