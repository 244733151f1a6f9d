// The one table of format engines (style.md T2): detection, `list formats`, the conversion
// matrix and the converter all iterate it.
#pragma once

#include <span>
#include <string_view>

#include "formats/engine.h"

namespace mc::formats {

std::span<const Engine> engines();
const Engine* find_engine(std::string_view id);  // accepts aliases ("hf2megatron" -> megatron)

struct Detection {
  const Engine* engine = nullptr;  // nullptr: nothing recognised
  Confidence confidence = Confidence::No;
  std::string note;                // why (for inspect)
};
// Asks every engine; the most confident wins (ties: table order).
Detection detect(const fs::path& path);

// Output formats a model read from `from` can be written to (the conversion matrix).
std::vector<std::string_view> targets_for(const Engine& from);

}  // namespace mc::formats
