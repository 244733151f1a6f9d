// SentencePiece tokenizer.model -> Vocab (formats.md §11.3). The file is a protobuf ModelProto:
//   1 pieces (repeated message: 1 piece string, 2 score float, 3 type enum)
//   2 trainer_spec (3 model_type: 1 UNIGRAM, 2 BPE; 35 byte_fallback; 40-43 unk/bos/eos/pad id)
//   3 normalizer_spec (3 add_dummy_prefix, default true; 4 remove_extra_whitespaces, default true)
// We read the wire format with a small bounds-checked reader instead of linking libprotobuf or
// libsentencepiece: we need five fields, and every length is checked against the bytes left.
#include "io/mapped_file.h"
#include "tokenizer/loaders.h"
#include "tokenizer/parse_memo.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

namespace mc::tok {

namespace {

class Wire {
 public:
  Wire(std::string_view b, const std::string& path, uint64_t base)
      : b_(b), path_(path), base_(base) {}
  bool done() const { return pos_ >= b_.size(); }

  Result<uint64_t> varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) return trunc("varint");
      const uint8_t c = uint8_t(b_[pos_++]);
      v |= uint64_t(c & 0x7F) << shift;
      if (!(c & 0x80)) return v;
    }
    return bad("varint longer than 10 bytes");
  }
  Result<std::string_view> bytes() {
    const uint64_t n = MC_TRY(varint());
    if (n > b_.size() - pos_) {
      return bad(fmt::format("length {} exceeds the {} bytes left", n, b_.size() - pos_));
    }
    std::string_view s = b_.substr(pos_, size_t(n));
    pos_ += size_t(n);
    return s;
  }
  Result<float> fixed32_float() {
    if (b_.size() - pos_ < 4) return trunc("float");
    float f;
    std::memcpy(&f, b_.data() + pos_, 4);
    pos_ += 4;
    return f;
  }
  Status skip(uint32_t wire_type) {
    switch (wire_type) {
      case 0: MC_TRY(varint()); return ok_status();
      case 1: return advance(8);
      case 2: MC_TRY(bytes()); return ok_status();
      case 5: return advance(4);
      default: return bad(fmt::format("unsupported wire type {}", wire_type));
    }
  }
  uint64_t offset() const { return base_ + pos_; }

 private:
  Status advance(size_t n) {
    if (b_.size() - pos_ < n) return trunc("fixed field");
    pos_ += n;
    return ok_status();
  }
  Error trunc(const char* what) {
    Error e = make_error(ErrorCode::Truncated, "tokenizer.model ends inside a {}", what);
    e.path = path_;
    e.offset = offset();
    return e;
  }
  Error bad(std::string msg) {
    Error e = make_error(ErrorCode::Corrupt, "{}", msg);
    e.path = path_;
    e.offset = offset();
    return std::move(e).with_hint("the file is not a SentencePiece model or is damaged");
  }
  std::string_view b_;
  const std::string& path_;
  uint64_t base_;
  size_t pos_ = 0;
};

}  // namespace

Result<Vocab> parse_sentencepiece_model(std::string_view data, const std::string& path) {
  if (auto v = memo_take(ParserKind::SentencePiece, data)) return std::move(*v);
  Vocab v;
  int model_type = 1;  // UNIGRAM is the proto default
  int64_t unk = 0, bos = 1, eos = 2, pad = -1;
  bool add_dummy_prefix = true, remove_extra_ws = true, byte_fallback = false;

  {
    // Room for every piece up front: growing the vectors piece by piece moved them to fresh
    // memory a dozen times (a third of the parse of a 32k model). A piece is one top-level
    // field-1 record; a malformed file is left to the parse below to report.
    Wire count(data, path, 0);
    size_t pieces = 0;
    while (!count.done()) {
      auto key = count.varint();
      if (!key) break;
      if ((*key >> 3) == 1 && (*key & 7) == 2) ++pieces;
      if (!count.skip(uint32_t(*key & 7))) break;
    }
    pieces = std::min<size_t>(pieces, kMaxVocabTokens);
    v.tokens.reserve(pieces);
    v.scores.reserve(pieces);
    v.types.reserve(pieces);
  }
  Wire w(data, path, 0);
  while (!w.done()) {
    const uint64_t key = MC_TRY(w.varint());
    const uint32_t field = uint32_t(key >> 3), wt = uint32_t(key & 7);
    if (field == 1 && wt == 2) {
      const uint64_t at = w.offset();
      const std::string_view msg = MC_TRY(w.bytes());
      if (v.tokens.size() >= kMaxVocabTokens) {
        return make_error(ErrorCode::LimitExceeded, "more than {} pieces", kMaxVocabTokens)
            .with_path(path);
      }
      Wire p(msg, path, at);
      std::string piece;
      float score = 0.0f;
      int32_t type = kTokNormal;
      while (!p.done()) {
        const uint64_t k = MC_TRY(p.varint());
        const uint32_t f = uint32_t(k >> 3), t = uint32_t(k & 7);
        if (f == 1 && t == 2) piece = std::string(MC_TRY(p.bytes()));
        else if (f == 2 && t == 5) score = MC_TRY(p.fixed32_float());
        else if (f == 3 && t == 0) type = int32_t(MC_TRY(p.varint()));
        else MC_CHECK(p.skip(t));
      }
      if (type < kTokNormal || type > kTokByte) type = kTokNormal;
      v.tokens.push_back(std::move(piece));
      v.scores.push_back(score);
      v.types.push_back(type);
    } else if ((field == 2 || field == 3) && wt == 2) {
      const uint64_t at = w.offset();
      const std::string_view msg = MC_TRY(w.bytes());
      Wire s(msg, path, at);
      while (!s.done()) {
        const uint64_t k = MC_TRY(s.varint());
        const uint32_t f = uint32_t(k >> 3), t = uint32_t(k & 7);
        if (t != 0) {
          MC_CHECK(s.skip(t));
          continue;
        }
        const uint64_t val = MC_TRY(s.varint());
        const int64_t sval = int64_t(val);  // int32 fields are sign-extended varints
        if (field == 2) {
          if (f == 3) model_type = int(val);
          else if (f == 35) byte_fallback = val != 0;
          else if (f == 40) unk = sval;
          else if (f == 41) bos = sval;
          else if (f == 42) eos = sval;
          else if (f == 43) pad = sval;
        } else {
          if (f == 3) add_dummy_prefix = val != 0;
          else if (f == 4) remove_extra_ws = val != 0;
        }
      }
    } else {
      MC_CHECK(w.skip(wt));
    }
  }
  if (model_type == 2) {
    v.kind = ModelKind::SpmBpe;
  } else if (model_type == 1) {
    v.kind = ModelKind::SpmUnigram;
  } else {
    return make_error(ErrorCode::Unsupported, "SentencePiece model_type {} (WORD/CHAR) is not "
                      "supported", model_type).with_path(path);
  }
  auto id = [&](int64_t x) {
    return (x >= 0 && size_t(x) < v.tokens.size()) ? int32_t(x) : kNoToken;
  };
  v.unk_id = id(unk);
  v.bos_id = id(bos);
  v.eos_id = id(eos);
  v.pad_id = id(pad);
  v.add_space_prefix = add_dummy_prefix;
  v.remove_extra_whitespaces = remove_extra_ws;
  v.byte_fallback = byte_fallback;
  v.add_bos = true;  // llama.cpp's SentencePiece default; tokenizer_config.json may override
  v.pre = "default";
  MC_CHECK(v.validate());
  return v;
}

namespace {
// The file mapped, and its bytes as text.
Result<std::pair<std::shared_ptr<const io::MappedFile>, std::string_view>> map_model(const std::string& path) {
  auto f = MC_TRY(io::MappedFile::open(path));
  const auto b = f->bytes();
  return std::pair{f, std::string_view(reinterpret_cast<const char*>(b.data()), b.size())};
}
}  // namespace

Result<Vocab> load_sentencepiece_model(const std::string& path) {
  const auto [f, data] = MC_TRY(map_model(path));
  return parse_sentencepiece_model(data, path);
}

Status check_sentencepiece_model(const std::string& path) {
  const auto [f, data] = MC_TRY(map_model(path));
  auto v = MC_TRY(parse_sentencepiece_model(data, path));
  memo_keep(ParserKind::SentencePiece, f, data, std::move(v));
  return {};
}

}  // namespace mc::tok
