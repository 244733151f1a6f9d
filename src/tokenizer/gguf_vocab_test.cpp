// The GGUF vocabulary files of llama.cpp loaded through vocab_from_gguf_kv and checked against
// their test vectors. The GGUF parsing here is TEST-ONLY (header + KV section, formats.md §2.1);
// the real reader belongs to the GGUF area.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "testutil.h"
#include "tokenizer/loaders.h"
#include "tokenizer/tokenizer.h"

namespace mc::tok {
int run_vectors_for_test(const Tokenizer& t, const std::string& name);  // vectors_test.cpp
namespace {

// ---- test-only GGUF KV parser -------------------------------------------------------------
struct KvReader {
  std::string b;
  size_t pos = 0;
  bool ok = true;
  template <typename T>
  T get() {
    T v{};
    if (b.size() - pos < sizeof(T)) {
      ok = false;
      return v;
    }
    std::memcpy(&v, b.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = get<uint64_t>();
    if (!ok || n > b.size() - pos) {
      ok = false;
      return {};
    }
    std::string s = b.substr(pos, size_t(n));
    pos += size_t(n);
    return s;
  }
  // Reads one scalar as double/str; arrays into the given vectors.
  void value(uint32_t type, std::string* s, double* d) {
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    switch (type) {
      case 0: *d = get<uint8_t>(); break;
      case 1: *d = get<int8_t>(); break;
      case 2: *d = get<uint16_t>(); break;
      case 3: *d = get<int16_t>(); break;
      case 4: *d = get<uint32_t>(); break;
      case 5: *d = get<int32_t>(); break;
      case 6: *d = get<float>(); break;
      case 7: *d = get<uint8_t>(); break;
      case 8: *s = str(); break;
      case 10: *d = double(get<uint64_t>()); break;
      case 11: *d = double(get<int64_t>()); break;
      case 12: *d = get<double>(); break;
      default: ok = false;
    }
    (void)sizes;
  }
};

std::optional<GgufTokenizerKV> read_gguf_tokenizer(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  KvReader r{ss.str()};
  if (r.b.size() < 24 || r.b.compare(0, 4, "GGUF") != 0) return std::nullopt;
  r.pos = 4;
  if (r.get<uint32_t>() != 3) return std::nullopt;
  r.get<uint64_t>();  // tensor count
  const uint64_t nkv = r.get<uint64_t>();
  GgufTokenizerKV kv;
  for (uint64_t i = 0; i < nkv && r.ok; ++i) {
    const std::string key = r.str();
    const uint32_t type = r.get<uint32_t>();
    if (type == 9) {
      const uint32_t et = r.get<uint32_t>();
      const uint64_t n = r.get<uint64_t>();
      if (n > (uint64_t(1) << 24)) return std::nullopt;
      std::vector<std::string> ss_;
      std::vector<double> ds;
      for (uint64_t k = 0; k < n && r.ok; ++k) {
        std::string s;
        double d = 0;
        r.value(et, &s, &d);
        if (et == 8) ss_.push_back(std::move(s));
        else ds.push_back(d);
      }
      if (key == kGgufKeyTokens) kv.tokens = std::move(ss_);
      else if (key == kGgufKeyMerges) kv.merges = std::move(ss_);
      else if (key == kGgufKeyScores) kv.scores = std::vector<float>(ds.begin(), ds.end());
      else if (key == kGgufKeyTokenType) kv.token_types = std::vector<int32_t>(ds.begin(), ds.end());
      continue;
    }
    std::string s;
    double d = 0;
    r.value(type, &s, &d);
    if (key == kGgufKeyModel) kv.model = s;
    else if (key == kGgufKeyPre) kv.pre = s;
    else if (key == kGgufKeyChatTemplate) kv.chat_template = s;
    else if (key == kGgufKeyBos) kv.bos_id = uint32_t(d);
    else if (key == kGgufKeyEos) kv.eos_id = uint32_t(d);
    else if (key == kGgufKeyUnk) kv.unk_id = uint32_t(d);
    else if (key == kGgufKeyPad) kv.pad_id = uint32_t(d);
    else if (key == kGgufKeySep) kv.sep_id = uint32_t(d);
    else if (key == kGgufKeyAddBos) kv.add_bos = d != 0;
    else if (key == kGgufKeyAddEos) kv.add_eos = d != 0;
    else if (key == kGgufKeyAddSpacePrefix) kv.add_space_prefix = d != 0;
  }
  if (!r.ok) return std::nullopt;
  return kv;
}
// ---- end of test-only parser --------------------------------------------------------------

Result<Tokenizer> load_gguf_vocab(const std::string& name, GgufTokenizerKV* kv_out = nullptr) {
  auto p = test::fixture("gguf-vocab/ggml-vocab-" + name + ".gguf");
  if (!p) return make_error(ErrorCode::NotFound, "fixture absent");
  auto kv = read_gguf_tokenizer(*p);
  if (!kv) return make_error(ErrorCode::Corrupt, "test parser failed on {}", p->string());
  if (kv_out) *kv_out = *kv;
  auto v = MC_TRY(vocab_from_gguf_kv(*kv));
  return Tokenizer::create(std::move(v));
}

class GgufVocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufVocabVectors, MatchHfIds) {
  const std::string name = GetParam();
  if (!test::fixture("gguf-vocab/ggml-vocab-" + name + ".gguf")) {
    GTEST_SKIP() << "fixture gguf-vocab absent: test skipped";
  }
  auto t = load_gguf_vocab(name);
  ASSERT_TRUE(t.ok()) << t.error().render();
  EXPECT_EQ(run_vectors_for_test(*t, name), 0);
}

INSTANTIATE_TEST_SUITE_P(All, GgufVocabVectors,
                         ::testing::Values("gpt-2", "llama-spm", "falcon", "mpt", "starcoder",
                                           "deepseek-coder", "bert-bge"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// Vocabularies without vectors: they must load, and encode/decode must round-trip.
class GgufVocabLoads : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufVocabLoads, RoundTrip) {
  const std::string name = GetParam();
  if (!test::fixture("gguf-vocab/ggml-vocab-" + name + ".gguf")) {
    GTEST_SKIP() << "fixture gguf-vocab absent: test skipped";
  }
  GgufTokenizerKV kv;
  auto t = load_gguf_vocab(name, &kv);
  ASSERT_TRUE(t.ok()) << t.error().render();
  for (const std::string text : {"Hello world", " two  spaces\tand\nnewline", "3333 digits 42",
                                 "\xC3\xA9t\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\xA6\x99!"}) {
    const auto ids = t->encode(text, false);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(t->decode(ids), text) << name;
  }
  // The KV view survives a Vocab round trip unchanged.
  const GgufTokenizerKV back = vocab_to_gguf_kv(t->vocab());
  EXPECT_EQ(back.model, kv.model);
  EXPECT_EQ(back.tokens, kv.tokens);
  if (kv.merges) { EXPECT_EQ(back.merges, kv.merges); }
  if (kv.token_types) { EXPECT_EQ(back.token_types, kv.token_types); }
  if (kv.bos_id) { EXPECT_EQ(back.bos_id, kv.bos_id); }
}

INSTANTIATE_TEST_SUITE_P(All, GgufVocabLoads,
                         ::testing::Values("refact", "deepseek-llm", "gpt-neox", "phi-3",
                                           "baichuan"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

}  // namespace
}  // namespace mc::tok
