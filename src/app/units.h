// Sizes as people write them: "2GB", "500MB", "1.5GiB", "1000" (bytes), and back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mc::app {

std::optional<uint64_t> parse_size(std::string s);
std::string human_bytes(uint64_t n);  // "1.2 GB" (powers of 1000)

}  // namespace mc::app
