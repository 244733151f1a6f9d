// The ggml tensor types a GGUF file may name (formats.md §2.3). The types we compute with are the
// DType table's rows that carry a ggml id (core/dtype.cpp: one table for names, block geometry
// and ids); the others (IQ*, TQ*, MXFP4, Q8_1, Q8_K) are listed here by geometry only, so a
// reader can check the layout of any file and name an unsupported type in its error.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/dtype.h"

namespace mc::quant {

struct GgmlType {
  uint32_t id;
  std::string_view name;  // ggml's spelling: "Q4_K", "BF16", "IQ2_XXS"
  uint32_t block_elems;
  uint32_t block_bytes;
  std::optional<DType> dtype;  // nullopt: a type we cannot convert
};

// nullptr for ids ggml does not define (removed or future types).
const GgmlType* find_ggml_type(uint32_t id);
// The DType for a ggml type id (nullopt for types the rest of the program does not handle).
std::optional<DType> dtype_for_ggml(uint32_t id);
// The ggml id of a DType (nullopt if it has none).
std::optional<uint32_t> ggml_for_dtype(DType t);

}  // namespace mc::quant
