// GGUF tokenizer metadata (formats.md §2.7) <-> Vocab, through the plain GgufTokenizerKV struct
// so this area does not depend on the GGUF reader/writer. Absent keys get llama.cpp's defaults
// (llama-vocab.cpp load): "llama" bos 1 / eos 2 / unk 0, add_bos, add_space_prefix; "gpt2"
// bos = eos = 11; Llama-3 family pre-tokenizers add BOS and ignore merges for whole-word tokens.
#include <cctype>
#include <initializer_list>
#include <string_view>

#include "tokenizer/loaders.h"

namespace mc::tok {
namespace {

bool contains_any(std::string_view s, std::initializer_list<std::string_view> parts) {
  for (auto p : parts)
    if (s.find(p) != std::string_view::npos) return true;
  return false;
}

// What llama.cpp's vocabulary loader (llama-vocab.cpp, load) does to token attributes after
// reading the file, since GGUF has no key for them:
//  - tokens whose text names an end of turn/generation or a fill-in-the-middle marker are made
//    CONTROL even when stored otherwise (e.g. phi-3's "</s>" is USER_DEFINED);
//  - a model named like phi-3 gets rstrip on every special token (CONTROL, USER_DEFINED or
//    UNKNOWN) and on "</s>", but not on "<unk>", "<s>", "<|endoftext|>";
//  - jina-v2 and modern-bert vocabularies get lstrip on their mask token.
// llama.cpp takes only the first match of each FIM list; a vocabulary holding two spellings of
// one marker is not handled here. Its gpt-oss/solar-open special cases are not reproduced.
void apply_llama_cpp_token_rules(Vocab& v, std::string model_name, std::string_view arch) {
  static const std::initializer_list<std::string_view> kControlTexts = {
      // end of turn / generation
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
      "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<｜end▁of▁sentence｜>",
      "<end_of_utterance>", "<|eom_id|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
      "</s>", "<eos>", "<turn|>", "<|tool_response>", "[e~[",
      // fill in the middle
      "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>",
      "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>",
      "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>",
      "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
      "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>",
      "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>",
      "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
      "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>"};
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string& t = v.tokens[i];
    if (t.size() < 3 || t.size() > 40) continue;  // the texts above are 3..27 bytes
    if (v.types[i] == kTokControl) continue;
    for (auto c : kControlTexts) {
      if (t == c) {
        v.set_attr(int32_t(i), kAttrControl, true);
        break;
      }
    }
  }
  for (auto& ch : model_name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  auto set_by_text = [&](std::string_view text, uint8_t bit, bool on) {
    const int32_t id = v.find(text);
    if (id != kNoToken) v.set_attr(id, bit, on);
  };
  if (contains_any(v.pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains_any(arch, {"nomic-bert-moe", "jina-bert-v3"})) {
    set_by_text("<mask>", kAttrLstrip, true);
  } else if (contains_any(model_name, {"phi-3", "phi3"})) {
    for (size_t i = 0; i < v.size(); ++i)
      if (v.is_special(int32_t(i))) v.set_attr(int32_t(i), kAttrRstrip, true);
    set_by_text("</s>", kAttrRstrip, true);
    for (auto t : {"<unk>", "<s>", "<|endoftext|>"}) set_by_text(t, kAttrRstrip, false);
  } else if (contains_any(model_name, {"modern-bert"})) {
    set_by_text("[MASK]", kAttrLstrip, true);
  }
}

}  // namespace

Result<Vocab> vocab_from_gguf_kv(const GgufTokenizerKV& kv) {
  auto kind = model_kind_from_gguf_name(kv.model);
  if (!kind) {
    return make_error(ErrorCode::Unsupported, "tokenizer.ggml.model '{}' is not supported",
                      kv.model)
        .with_hint("supported: llama (SentencePiece), gpt2 (byte-level BPE), t5, bert");
  }
  const size_t n = kv.tokens.size();
  if (n > kMaxVocabTokens) {
    return make_error(ErrorCode::LimitExceeded, "{} tokens, over the cap {}", n, kMaxVocabTokens);
  }
  Vocab v;
  v.kind = *kind;
  v.tokens = kv.tokens;
  if (kv.scores) {
    if (kv.scores->size() < n) {
      return make_error(ErrorCode::Mismatch, "{} scores for {} tokens", kv.scores->size(), n);
    }
    v.scores.assign(kv.scores->begin(), kv.scores->begin() + ptrdiff_t(n));
  }
  if (kv.token_types) {
    if (kv.token_types->size() < n) {
      return make_error(ErrorCode::Mismatch, "{} token types for {} tokens",
                        kv.token_types->size(), n);
    }
    v.types.assign(kv.token_types->begin(), kv.token_types->begin() + ptrdiff_t(n));
  } else {
    v.types.assign(n, kTokNormal);
  }
  for (size_t i = 0; i < n; ++i) {  // llama.cpp renames empty tokens
    if (v.tokens[i].empty()) v.tokens[i] = "[EMPTY_" + std::to_string(i) + "]";
  }
  if (kv.merges) v.merges = *kv.merges;
  v.pre = kv.pre.value_or("default");
  v.chat_template = kv.chat_template.value_or("");

  switch (v.kind) {
    case ModelKind::SpmBpe:
      v.bos_id = 1, v.eos_id = 2, v.unk_id = 0;
      v.add_bos = true, v.add_space_prefix = true;
      break;
    case ModelKind::ByteLevelBpe:
      v.bos_id = 11, v.eos_id = 11;
      if (v.pre == "llama3" || v.pre == "llama-v3" || v.pre == "llama-bpe" ||
          v.pre == "falcon3" || v.pre == "falcon-h1" || v.pre == "pixtral" ||
          v.pre == "midm-2.0" || v.pre == "lfm2") {
        v.add_bos = true;
        v.ignore_merges = true;
      }
      break;
    case ModelKind::SpmUnigram:
      v.eos_id = 1, v.unk_id = 2, v.pad_id = 0;
      v.add_eos = true, v.add_space_prefix = true;
      break;
    case ModelKind::WordPiece:
      v.bos_id = 101, v.unk_id = 100, v.sep_id = 102, v.pad_id = 0, v.mask_id = 103;
      v.add_bos = true, v.add_sep = true;
      break;
  }
  // Defaults that point outside the vocabulary are dropped, as llama.cpp does.
  for (int32_t* id : {&v.bos_id, &v.eos_id, &v.unk_id, &v.pad_id, &v.sep_id, &v.mask_id}) {
    if (*id != kNoToken && size_t(*id) >= n) *id = kNoToken;
  }
  const std::pair<const std::optional<uint32_t>*, int32_t*> ids[] = {
      {&kv.bos_id, &v.bos_id}, {&kv.eos_id, &v.eos_id}, {&kv.unk_id, &v.unk_id},
      {&kv.pad_id, &v.pad_id}, {&kv.sep_id, &v.sep_id}, {&kv.eot_id, &v.eot_id},
      {&kv.mask_id, &v.mask_id}};
  for (const auto& [src, dst] : ids) {
    if (*src && *(*src) < n) *dst = int32_t(*(*src));  // out-of-range ids keep the default
  }
  if (kv.add_bos) v.add_bos = *kv.add_bos;
  if (kv.add_eos) v.add_eos = *kv.add_eos;
  if (kv.add_sep) v.add_sep = *kv.add_sep;
  if (kv.lowercase) v.lowercase = *kv.lowercase;
  v.strip_accents = kv.strip_accents.value_or(v.lowercase);  // llama.cpp's default
  if (kv.add_space_prefix) v.add_space_prefix = *kv.add_space_prefix;
  if (kv.remove_extra_whitespaces) v.remove_extra_whitespaces = *kv.remove_extra_whitespaces;
  for (size_t i = 0; i < n && v.kind == ModelKind::SpmBpe; ++i) {
    if (v.types[i] == kTokByte) v.byte_fallback = true;
  }
  apply_llama_cpp_token_rules(v, kv.model_name.value_or(""), kv.architecture.value_or(""));
  MC_CHECK(v.validate());
  return v;
}

GgufTokenizerKV vocab_to_gguf_kv(Vocab v) {
  GgufTokenizerKV kv;
  kv.model = std::string(model_kind_gguf_name(v.kind));
  kv.pre = v.pre.empty() ? std::string("default") : v.pre;
  kv.tokens = std::move(v.tokens);
  if (!v.scores.empty()) kv.scores = std::move(v.scores);
  kv.token_types = std::move(v.types);
  if (!v.merges.empty() || v.kind == ModelKind::ByteLevelBpe) kv.merges = std::move(v.merges);
  auto opt = [](int32_t id) -> std::optional<uint32_t> {
    return id == kNoToken ? std::nullopt : std::optional<uint32_t>(uint32_t(id));
  };
  kv.bos_id = opt(v.bos_id);
  kv.eos_id = opt(v.eos_id);
  kv.unk_id = opt(v.unk_id);
  kv.pad_id = opt(v.pad_id);
  kv.sep_id = opt(v.sep_id);
  kv.eot_id = opt(v.eot_id);
  kv.mask_id = opt(v.mask_id);
  kv.add_bos = v.add_bos;
  kv.add_eos = v.add_eos;
  if (v.kind == ModelKind::SpmBpe || v.kind == ModelKind::SpmUnigram) {
    kv.add_space_prefix = v.add_space_prefix;
  }
  if (v.kind == ModelKind::WordPiece) {
    kv.add_sep = v.add_sep;
    kv.lowercase = v.lowercase;
    kv.strip_accents = v.strip_accents;
  }
  if (!v.chat_template.empty()) kv.chat_template = std::move(v.chat_template);
  return kv;
}

}  // namespace mc::tok
