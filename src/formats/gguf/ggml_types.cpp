#include "formats/gguf/ggml_types.h"

#include <array>

namespace mc::gguf {
namespace {

// Block geometry from the static_asserts of ggml-common.h (QK_K = 256).
constexpr std::array<GgmlType, 32> kTypes{{
    {0, "F32", 1, 4},        {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},     {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},  {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74}, {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},        {25, "I16", 1, 2},
    {26, "I32", 1, 4},       {27, "I64", 1, 8},        {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},  {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17},
}};

}  // namespace

const GgmlType* find_ggml_type(uint32_t id) {
  for (const auto& t : kTypes)
    if (t.id == id) return &t;
  return nullptr;
}

std::optional<DType> dtype_for_ggml(uint32_t id) {
  if (id > uint32_t(INT32_MAX)) return std::nullopt;
  auto d = dtype_from_ggml(int(id));
  if (!d) return std::nullopt;
  // Cross-check the shared dtype table against ours: a disagreement would corrupt every read.
  const GgmlType* g = find_ggml_type(id);
  const auto& info = dtype_info(*d);
  if (!g || g->block_elems != info.block_elems || g->block_bytes != info.block_bytes)
    return std::nullopt;
  return d;
}

std::optional<uint32_t> ggml_for_dtype(DType t) {
  const int id = dtype_info(t).ggml_type;
  if (id < 0) return std::nullopt;
  return uint32_t(id);
}

}  // namespace mc::gguf
