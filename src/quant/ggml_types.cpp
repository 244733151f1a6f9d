#include "quant/ggml_types.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace mc::quant {
namespace {

// Block geometry from the static_asserts of ggml-common.h (QK_K = 256) for the ggml types that
// have no DType.
constexpr GgmlType kForeign[] = {
    {9, "Q8_1", 32, 36, std::nullopt},      {15, "Q8_K", 256, 292, std::nullopt},
    {16, "IQ2_XXS", 256, 66, std::nullopt}, {17, "IQ2_XS", 256, 74, std::nullopt},
    {18, "IQ3_XXS", 256, 98, std::nullopt}, {19, "IQ1_S", 256, 50, std::nullopt},
    {20, "IQ4_NL", 32, 18, std::nullopt},   {21, "IQ3_S", 256, 110, std::nullopt},
    {22, "IQ2_S", 256, 82, std::nullopt},   {23, "IQ4_XS", 256, 136, std::nullopt},
    {29, "IQ1_M", 256, 56, std::nullopt},   {34, "TQ1_0", 256, 54, std::nullopt},
    {35, "TQ2_0", 256, 66, std::nullopt},   {39, "MXFP4", 32, 17, std::nullopt},
};

struct Table {
  std::vector<std::string> names;  // storage for the upper-cased DType names
  std::vector<GgmlType> types;     // sorted by id
};

const Table& table() {
  static const Table t = [] {
    Table out;
    out.names.reserve(size_t(DType::Count));
    for (size_t i = 0; i < size_t(DType::Count); ++i) {
      const DTypeInfo& info = dtype_info(DType(i));
      if (info.ggml_type < 0) continue;
      std::string n(info.name);
      for (auto& c : n) c = char(std::toupper(static_cast<unsigned char>(c)));
      out.names.push_back(std::move(n));
      out.types.push_back(
          {uint32_t(info.ggml_type), out.names.back(), info.block_elems, info.block_bytes, info.dtype});
    }
    out.types.insert(out.types.end(), std::begin(kForeign), std::end(kForeign));
    std::sort(out.types.begin(), out.types.end(),
              [](const GgmlType& a, const GgmlType& b) { return a.id < b.id; });
    return out;
  }();
  return t;
}

}  // namespace

const GgmlType* find_ggml_type(uint32_t id) {
  for (const auto& t : table().types)
    if (t.id == id) return &t;
  return nullptr;
}

std::optional<DType> dtype_for_ggml(uint32_t id) {
  const GgmlType* g = find_ggml_type(id);
  return g ? g->dtype : std::nullopt;
}

std::optional<uint32_t> ggml_for_dtype(DType t) {
  const int id = dtype_info(t).ggml_type;
  if (id < 0) return std::nullopt;
  return uint32_t(id);
}

}  // namespace mc::quant
