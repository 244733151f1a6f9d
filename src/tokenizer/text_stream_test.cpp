// Utf8Stream: characters split over byte tokens come out whole; ill-formed bytes become U+FFFD,
// one per maximal subpart. Expected strings are Python's bytes.decode("utf-8", "replace").
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/text_stream.h"
#include "tokenizer/vocab.h"

namespace mc::tok {
namespace {

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

TEST(TextStream, ByteTokensAcrossSteps) {
  // "€" (E2 82 AC) and "😀" (F0 9F 98 80) as byte-fallback tokens, one token per step.
  Utf8Stream s;
  std::string shown;
  std::vector<std::string> steps;
  for (const char* piece : {"<0xE2>", "<0x82>", "<0xAC>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "<0x21>"}) {
    auto b = parse_byte_piece(piece);
    ASSERT_TRUE(b);
    const char c = char(*b);
    steps.push_back(s.push(std::string_view(&c, 1)));
    shown += steps.back();
  }
  EXPECT_EQ(steps[0], "");
  EXPECT_EQ(steps[1], "");
  EXPECT_EQ(steps[2], "\xE2\x82\xAC");
  EXPECT_EQ(steps[5], "");
  EXPECT_EQ(steps[6], "\xF0\x9F\x98\x80");
  EXPECT_EQ(steps[7], "!");
  EXPECT_EQ(s.finish(), "");
  EXPECT_EQ(shown, "\xE2\x82\xAC\xF0\x9F\x98\x80!");
}

TEST(TextStream, IllFormedAsPythonReplaces) {
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), R + R);          // overlong lead
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), R + R + R);  // surrogate
  EXPECT_EQ(to_valid_utf8("\xF0\x9F\x98"), R);          // truncated at the end
  EXPECT_EQ(to_valid_utf8("\xE2\x82" "A"), R + "A");    // one U+FFFD for the maximal subpart
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80"), R + R + R + R);  // past U+10FFFF
  EXPECT_EQ(to_valid_utf8("\xE0\x80\xAF"), R + R + R);
  EXPECT_EQ(to_valid_utf8("a\xFF" "b\xDB\xA2"), "a" + R + "b\xDB\xA2");
  EXPECT_EQ(to_valid_utf8("\xF0\x9F\x98\x80\xE2"), "\xF0\x9F\x98\x80" + R);
}

TEST(TextStream, SplitsDoNotChangeTheText) {
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    std::string bytes;
    const int n = int(rng() % 40);
    for (int i = 0; i < n; ++i) {
      const uint32_t r = rng() % 4;  // mostly the bytes UTF-8 is made of
      bytes.push_back(char(r == 0 ? rng() % 0x80 : r == 1 ? 0x80 + rng() % 0x40 : 0xC0 + rng() % 0x40));
    }
    const std::string whole = to_valid_utf8(bytes);
    Utf8Stream s;
    std::string pieces;
    for (size_t i = 0; i < bytes.size();) {
      const size_t k = std::min(bytes.size() - i, size_t(1 + rng() % 3));
      pieces += s.push(std::string_view(bytes).substr(i, k));
      i += k;
    }
    pieces += s.finish();
    EXPECT_EQ(pieces, whole) << "round " << round;
    EXPECT_EQ(to_valid_utf8(whole), whole);  // valid text passes unchanged
  }
}

}  // namespace
}  // namespace mc::tok
