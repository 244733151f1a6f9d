// Calibration text -> documents -> token windows, with a byte-level stand-in tokenizer.
#include <gtest/gtest.h>

#include "formats/gptq_awq/gptq_awq.h"

namespace mc::gptq_awq {
namespace {

formats::WriteOptions with_bytes_tokenizer(bool bos) {
  formats::WriteOptions o;
  o.tokenize = [bos](std::string_view text, bool special) -> Result<std::vector<int32_t>> {
    std::vector<int32_t> ids;
    if (special && bos) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(int32_t(c) + 3);
    return ids;
  };
  return o;
}

TEST(GptqAwqCalibration, DocumentsFromTextAndJsonl) {
  auto d = split_documents("first line\nsecond line\n\n\nnext paragraph\r\n  \nlast", "t");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[0], "first line\nsecond line");
  EXPECT_EQ((*d)[1], "next paragraph");
  EXPECT_EQ((*d)[2], "last");
  auto j = split_documents("{\"text\": \"a b\"}\n\n{\"text\": \"c\", \"id\": 3}\n", "t.jsonl");
  ASSERT_TRUE(j);
  EXPECT_EQ(*j, (std::vector<std::string>{"a b", "c"}));
  auto bad = split_documents("{\"text\": \"a\"}\n{\"txt\": \"b\"}\n", "t.jsonl");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(bad.error().message.find("line 2"), std::string::npos);
  EXPECT_FALSE(builtin_corpus().empty());
}

TEST(GptqAwqCalibration, EvenlySpacedWindowsWithBos) {
  QuantSpec s;
  s.samples = 3;
  s.seq_len = 5;
  auto o = with_bytes_tokenizer(true);
  auto cal = load_calibration(o, s);
  ASSERT_TRUE(cal) << cal.error().render();
  EXPECT_EQ(cal->source, "built-in corpus");
  ASSERT_EQ(cal->seqs.size(), 3u);
  for (const auto& q : cal->seqs) {
    ASSERT_EQ(q.size(), 5u);
    EXPECT_EQ(q[0], 1);  // BOS first
  }
  // The first window starts at the text's first byte, the last ends at its last.
  const std::string_view text = builtin_corpus();
  EXPECT_EQ(cal->seqs[0][1], int32_t(static_cast<unsigned char>(text[0])) + 3);
  auto o2 = with_bytes_tokenizer(false);
  s.seq_len = 1 << 30;
  auto too_long = load_calibration(o2, s);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, ErrorCode::InvalidArgument);
}

}  // namespace
}  // namespace mc::gptq_awq
