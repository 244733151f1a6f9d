// GGUF tokenizer metadata (formats.md §2.7) <-> Vocab, through the plain GgufTokenizerKV struct
// so this area does not depend on the GGUF reader/writer. Absent keys get llama.cpp's defaults
// (llama-vocab.cpp load): "llama" bos 1 / eos 2 / unk 0, add_bos, add_space_prefix; "gpt2"
// bos = eos = 11; Llama-3 family pre-tokenizers add BOS and ignore merges for whole-word tokens.
#include "tokenizer/loaders.h"

namespace mc::tok {

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
      v.add_bos = true;
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
  if (kv.add_space_prefix) v.add_space_prefix = *kv.add_space_prefix;
  if (kv.remove_extra_whitespaces) v.remove_extra_whitespaces = *kv.remove_extra_whitespaces;
  for (size_t i = 0; i < n && v.kind == ModelKind::SpmBpe; ++i) {
    if (v.types[i] == kTokByte) v.byte_fallback = true;
  }
  MC_CHECK(v.validate());
  return v;
}

GgufTokenizerKV vocab_to_gguf_kv(const Vocab& v) {
  GgufTokenizerKV kv;
  kv.model = std::string(model_kind_gguf_name(v.kind));
  kv.pre = v.pre.empty() ? std::string("default") : v.pre;
  kv.tokens = v.tokens;
  if (!v.scores.empty()) kv.scores = v.scores;
  kv.token_types = v.types;
  if (!v.merges.empty() || v.kind == ModelKind::ByteLevelBpe) kv.merges = v.merges;
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
  if (!v.chat_template.empty()) kv.chat_template = v.chat_template;
  return kv;
}

}  // namespace mc::tok
