// Utf8Stream (text_stream.h): well-formed UTF-8 per Unicode Table 3-7, one U+FFFD per maximal
// subpart of an ill-formed sequence.
#include "tokenizer/text_stream.h"

#include <cstdint>

namespace mc::tok {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the sequence a lead byte starts and the range of its second byte; 0 if it starts none.
struct Lead {
  size_t len;
  uint8_t lo, hi;
};

Lead lead(uint8_t b) {
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing past U+10FFFF
  return {0, 0, 0};
}

}  // namespace

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  size_t i = 0;
  const size_t n = pending_.size();
  while (i < n) {
    const uint8_t b = uint8_t(pending_[i]);
    if (b < 0x80) {
      out.push_back(char(b));
      ++i;
      continue;
    }
    const Lead l = lead(b);
    if (l.len == 0) {
      out.append(kReplacement);
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < l.len && i + k < n; ++k) {
      const uint8_t c = uint8_t(pending_[i + k]);
      const uint8_t lo = k == 1 ? l.lo : 0x80, hi = k == 1 ? l.hi : 0xBF;
      if (c < lo || c > hi) break;
    }
    if (k == l.len) {
      out.append(pending_, i, l.len);
      i += l.len;
    } else if (i + k == n) {
      break;  // incomplete so far: wait for the next bytes
    } else {
      out.append(kReplacement);  // the maximal subpart [i, i + k) is ill-formed
      i += k;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string Utf8Stream::finish() {
  std::string out;
  if (!pending_.empty()) out.append(kReplacement);
  pending_.clear();
  return out;
}

std::string to_valid_utf8(std::string_view bytes) {
  Utf8Stream s;
  std::string out = s.push(bytes);
  out += s.finish();
  return out;
}

}  // namespace mc::tok
