// UTF-8 helpers shared by the tokenizer code. Decoding is lenient the same way llama.cpp's
// unicode.cpp is: a lead byte whose continuation bytes are missing or malformed yields U+FFFD and
// consumes one byte, so any byte string can be pre-tokenized.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mc::tok {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// Byte length of a UTF-8 sequence from its lead byte (1 for continuation/invalid bytes).
inline size_t utf8_len(char lead) {
  const uint8_t hi = uint8_t(lead) >> 4;
  if (hi < 0xC) return 1;
  if (hi < 0xE) return 2;
  if (hi == 0xE) return 3;
  return 4;
}

inline std::string utf8_encode(uint32_t cp) {
  std::string s;
  if (cp <= 0x7F) {
    s.push_back(char(cp));
  } else if (cp <= 0x7FF) {
    s.push_back(char(0xC0 | (cp >> 6)));
    s.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp <= 0xFFFF) {
    s.push_back(char(0xE0 | (cp >> 12)));
    s.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp <= 0x10FFFF) {
    s.push_back(char(0xF0 | (cp >> 18)));
    s.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    return utf8_encode(kReplacementChar);
  }
  return s;
}

// Decodes the code point at *pos and advances *pos (by 1 on malformed input).
inline uint32_t utf8_next(std::string_view s, size_t* pos) {
  const size_t i = *pos;
  const uint8_t b0 = uint8_t(s[i]);
  auto cont = [&](size_t k) { return i + k < s.size() && (uint8_t(s[i + k]) & 0xC0) == 0x80; };
  if (b0 < 0x80) {
    *pos = i + 1;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0 && cont(1)) {
    *pos = i + 2;
    return (uint32_t(b0 & 0x1F) << 6) | (uint8_t(s[i + 1]) & 0x3F);
  }
  if ((b0 & 0xF0) == 0xE0 && cont(1) && cont(2)) {
    *pos = i + 3;
    return (uint32_t(b0 & 0x0F) << 12) | (uint32_t(uint8_t(s[i + 1]) & 0x3F) << 6) |
           (uint8_t(s[i + 2]) & 0x3F);
  }
  if ((b0 & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
    *pos = i + 4;
    return (uint32_t(b0 & 0x07) << 18) | (uint32_t(uint8_t(s[i + 1]) & 0x3F) << 12) |
           (uint32_t(uint8_t(s[i + 2]) & 0x3F) << 6) | (uint8_t(s[i + 3]) & 0x3F);
  }
  *pos = i + 1;
  return kReplacementChar;
}

inline std::vector<uint32_t> utf8_decode_all(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) out.push_back(utf8_next(s, &pos));
  return out;
}

}  // namespace mc::tok
