// Calibration text -> token windows (gptq_awq.h). The text is the corpus built into the program
// (corpus/calibration.txt, public domain) or --calibration FILE: plain text (split into
// paragraphs at blank lines) or JSONL, one {"text": "..."} object per line (the layout of the
// calibration sets AutoAWQ and GPTQModel load). Each document is tokenized on its own with the
// model's tokenizer and no special tokens; the token streams are concatenated and `samples`
// windows of `seq_len` tokens are taken at evenly spaced offsets (overlapping when the text is
// short), each led by BOS when the tokenizer adds one.
#include <algorithm>

#include "formats/gptq_awq/gptq_awq.h"
#include "io/mapped_file.h"

namespace mc::gptq_awq {

namespace {

constexpr size_t kMaxCalibrationBytes = size_t(256) << 20;
constexpr size_t kMaxDocumentBytes = size_t(1) << 20;  // longer paragraphs are cut into pieces

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

Result<std::vector<std::string>> split_documents(std::string_view text, const std::string& label) {
  std::vector<std::string> docs;
  const size_t first = text.find_first_not_of(" \t\r\n");
  const bool jsonl = first != std::string_view::npos && text[first] == '{';
  size_t pos = 0, line_no = 0;
  std::string para;
  auto flush = [&] {
    while (para.size() > kMaxDocumentBytes) {
      size_t cut = para.rfind(' ', kMaxDocumentBytes);
      if (cut == std::string::npos || cut == 0) cut = kMaxDocumentBytes;
      docs.push_back(para.substr(0, cut));
      para.erase(0, cut);
    }
    if (!para.empty()) docs.push_back(std::move(para));
    para.clear();
  };
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    ++line_no;
    if (jsonl) {
      if (!blank(line)) {
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
          Error e = make_error(ErrorCode::InvalidArgument, "line {} is not a JSON object with a string \"text\"", line_no);
          e.path = label;
          e.hint = "JSONL calibration files hold one {\"text\": \"...\"} per line; plain text files are also taken";
          return e;
        }
        para = j["text"].get<std::string>();
        flush();
      }
    } else if (blank(line)) {
      flush();
    } else {
      if (!para.empty()) para += '\n';
      para.append(line.substr(0, line.size() - (line.ends_with('\r') ? 1 : 0)));
    }
    if (end == text.size()) break;
    pos = end + 1;
  }
  flush();
  return docs;
}

Result<Calibration> load_calibration(const formats::WriteOptions& opt, const QuantSpec& spec) {
  Calibration cal;
  std::string owned;
  std::string_view text;
  if (opt.calibration) {
    cal.source = opt.calibration->string();
    owned = MC_TRY(io::read_text_file(cal.source, kMaxCalibrationBytes));
    text = owned;
  } else {
    cal.source = "built-in corpus";
    text = builtin_corpus();
  }
  if (!opt.tokenize) {
    return make_error(ErrorCode::Internal, "no tokenizer was handed to the {} writer", method_name(spec.method));
  }
  const auto docs = MC_TRY(split_documents(text, cal.source));
  std::vector<int32_t> stream;
  for (const auto& d : docs) {
    auto ids = MC_TRY(opt.tokenize(d, false));
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  // BOS: what encoding with special tokens puts in front.
  std::optional<int32_t> bos;
  {
    const auto plain = MC_TRY(opt.tokenize("a", false));
    const auto special = MC_TRY(opt.tokenize("a", true));
    if (special.size() > plain.size() && !special.empty() &&
        std::equal(plain.begin(), plain.end(), special.begin() + 1))
      bos = special.front();
  }
  cal.available_tokens = static_cast<int64_t>(stream.size());
  const int64_t body = spec.seq_len - (bos ? 1 : 0);
  if (body <= 0 || static_cast<int64_t>(stream.size()) < body) {
    Error e = make_error(ErrorCode::InvalidArgument, "the calibration text gives {} tokens, fewer than --seq-len {}",
                         stream.size(), spec.seq_len);
    e.path = cal.source;
    e.hint = "pass a longer --calibration text or a smaller --seq-len";
    return e;
  }
  const int64_t span = static_cast<int64_t>(stream.size()) - body;
  for (int64_t k = 0; k < spec.samples; ++k) {
    const int64_t off = spec.samples > 1 ? k * span / (spec.samples - 1) : 0;
    std::vector<int32_t> seq;
    seq.reserve(static_cast<size_t>(spec.seq_len));
    if (bos) seq.push_back(*bos);
    seq.insert(seq.end(), stream.begin() + off, stream.begin() + off + body);
    cal.seqs.push_back(std::move(seq));
  }
  return cal;
}

}  // namespace mc::gptq_awq
