#include "formats/gguf/tokenizer_kv.h"

#include "io/mapped_file.h"
#include "tokenizer/loaders.h"

namespace mc::gguf {
namespace {

Result<std::string> extra_text(const ExtraFile& f) {
  if (f.content) return *f.content;
  return io::read_text_file(f.source.string(), size_t(1) << 30);
}

template <typename T>
void put_opt(KvStore& kv, const char* key, const std::optional<T>& v) {
  if (!v) return;
  if constexpr (std::is_same_v<T, uint32_t>) kv.set_u32(key, *v);
  else if constexpr (std::is_same_v<T, bool>) kv.set_bool(key, *v);
  else kv.set_string(key, *v);
}

}  // namespace

void put_vocab(KvStore& kv, tok::Vocab v) {
  tok::GgufTokenizerKV t = tok::vocab_to_gguf_kv(std::move(v));
  kv.set_string(tok::kGgufKeyModel, t.model);
  put_opt(kv, tok::kGgufKeyPre, t.pre);
  kv.set(tok::kGgufKeyTokens, Value::strings(std::move(t.tokens)));
  if (t.scores) kv.set(tok::kGgufKeyScores, Value::array<float>(ValueType::F32, *t.scores));
  if (t.token_types)
    kv.set(tok::kGgufKeyTokenType, Value::array<int32_t>(ValueType::I32, *t.token_types));
  if (t.merges) kv.set(tok::kGgufKeyMerges, Value::strings(std::move(*t.merges)));
  put_opt(kv, tok::kGgufKeyBos, t.bos_id);
  put_opt(kv, tok::kGgufKeyEos, t.eos_id);
  put_opt(kv, tok::kGgufKeyUnk, t.unk_id);
  put_opt(kv, tok::kGgufKeyPad, t.pad_id);
  put_opt(kv, tok::kGgufKeySep, t.sep_id);
  put_opt(kv, tok::kGgufKeyEot, t.eot_id);
  put_opt(kv, tok::kGgufKeyMask, t.mask_id);
  put_opt(kv, tok::kGgufKeyAddBos, t.add_bos);
  put_opt(kv, tok::kGgufKeyAddEos, t.add_eos);
  put_opt(kv, tok::kGgufKeyAddSep, t.add_sep);
  put_opt(kv, tok::kGgufKeyAddSpacePrefix, t.add_space_prefix);
  put_opt(kv, tok::kGgufKeyRemoveExtraWs, t.remove_extra_whitespaces);
  put_opt(kv, tok::kGgufKeyLowercase, t.lowercase);
  put_opt(kv, tok::kGgufKeyStripAccents, t.strip_accents);
  put_opt(kv, tok::kGgufKeyChatTemplate, t.chat_template);
}

Result<tok::Vocab> vocab_from_kv(const KvStore& kv) {
  tok::GgufTokenizerKV t;
  auto model = kv.get_string(tok::kGgufKeyModel);
  const Value* toks = kv.get_array(tok::kGgufKeyTokens, ValueType::String);
  if (!model || !toks) return make_error(ErrorCode::NotFound, "the file has no tokenizer.ggml.model/tokens");
  t.model = *model;
  t.pre = kv.get_string(tok::kGgufKeyPre);
  t.tokens = toks->string_items();
  if (const Value* s = kv.get_array(tok::kGgufKeyScores, ValueType::F32)) {
    std::vector<float> sc(s->size());
    std::memcpy(sc.data(), s->raw().data(), sc.size() * sizeof(float));
    t.scores = std::move(sc);
  }
  if (const Value* s = kv.find(tok::kGgufKeyTokenType); s && s->is_array()) {
    std::vector<int32_t> ty(s->size());
    for (uint64_t i = 0; i < s->size(); ++i) ty[i] = int32_t(s->int_at(i).value_or(0));
    t.token_types = std::move(ty);
  }
  if (const Value* s = kv.get_array(tok::kGgufKeyMerges, ValueType::String)) t.merges = s->string_items();
  auto id = [&](const char* k) -> std::optional<uint32_t> { return kv.get_u32(k); };
  t.bos_id = id(tok::kGgufKeyBos);
  t.eos_id = id(tok::kGgufKeyEos);
  t.unk_id = id(tok::kGgufKeyUnk);
  t.pad_id = id(tok::kGgufKeyPad);
  t.sep_id = id(tok::kGgufKeySep);
  t.eot_id = id(tok::kGgufKeyEot);
  t.mask_id = id(tok::kGgufKeyMask);
  t.add_bos = kv.get_bool(tok::kGgufKeyAddBos);
  t.add_eos = kv.get_bool(tok::kGgufKeyAddEos);
  t.add_sep = kv.get_bool(tok::kGgufKeyAddSep);
  t.lowercase = kv.get_bool(tok::kGgufKeyLowercase);
  t.strip_accents = kv.get_bool(tok::kGgufKeyStripAccents);
  t.model_name = kv.get_string("general.name");
  t.architecture = kv.get_string("general.architecture");
  t.add_space_prefix = kv.get_bool(tok::kGgufKeyAddSpacePrefix);
  t.remove_extra_whitespaces = kv.get_bool(tok::kGgufKeyRemoveExtraWs);
  t.chat_template = kv.get_string(tok::kGgufKeyChatTemplate);
  return tok::vocab_from_gguf_kv(t);
}

Status pad_vocab(tok::Vocab& v, int64_t n) {
  if (n < 0) return {};
  if (int64_t(v.tokens.size()) > n)
    return make_error(ErrorCode::Mismatch,
                      "the tokenizer has {} tokens but the embedding only {} rows", v.tokens.size(), n);
  const bool spm = v.kind == tok::ModelKind::SpmBpe || v.kind == tok::ModelKind::SpmUnigram;
  if (v.types.size() < v.tokens.size()) v.types.resize(v.tokens.size(), tok::kTokNormal);
  if (!v.scores.empty() && v.scores.size() < v.tokens.size()) v.scores.resize(v.tokens.size(), 0.0f);
  for (int64_t i = int64_t(v.tokens.size()); i < n; ++i) {
    v.tokens.push_back(fmt::format("[PAD{}]", i));
    v.types.push_back(tok::kTokUnused);
    if (spm || !v.scores.empty()) v.scores.push_back(-1000.0f);
  }
  return {};
}

Status add_tokenizer_metadata(const Model& m, Plan& plan) {
  if (m.source_format == "gguf" && !m.source_path.empty()) {
    // Same vocabulary as the source file, key for key.
    auto src = open(m.source_path);
    if (src) {
      for (const auto& [k, v] : src->kv)
        if (k.starts_with("tokenizer.")) plan.kv.set(k, v);
      return {};
    }
  }
  const ExtraFile* spm = m.find_extra("tokenizer.model");
  const ExtraFile* tj = m.find_extra("tokenizer.json");
  const ExtraFile* vj = m.find_extra("vocab.json");
  const ExtraFile* mt = m.find_extra("merges.txt");
  std::optional<tok::Vocab> v;
  auto context = [](Error e, const ExtraFile& f) {
    return std::move(e).with_path(f.source.empty() ? f.name : f.source.string());
  };
  if (spm) {
    // A file is mapped, not read into memory: the bytes then are the page cache's.
    auto r = spm->content ? tok::parse_sentencepiece_model(*spm->content, spm->source.string())
                          : tok::load_sentencepiece_model(spm->source.string());
    if (!r) return context(std::move(r).error(), *spm);
    v = std::move(*r);
  } else if (tj) {
    auto text = extra_text(*tj);
    if (!text) return context(std::move(text).error(), *tj);
    auto r = tok::parse_tokenizer_json(*text, tj->source.string());
    if (!r) return context(std::move(r).error(), *tj);
    v = std::move(*r);
  } else if (vj && mt && !vj->content && !mt->content) {
    auto r = tok::load_vocab_merges(vj->source.string(), mt->source.string());
    if (!r) return context(std::move(r).error(), *vj);
    v = std::move(*r);
  } else {
    return {};  // no tokenizer: a weights-only GGUF (llama.cpp needs --vocab from elsewhere)
  }
  if (spm) {
    if (const ExtraFile* at = m.find_extra("added_tokens.json")) {
      auto text = extra_text(*at);
      if (!text) return context(std::move(text).error(), *at);
      MC_CHECK(tok::apply_added_tokens_json(*v, *text, at->source.string()));
    }
  }
  if (const ExtraFile* tc = m.find_extra("tokenizer_config.json")) {
    auto text = extra_text(*tc);
    if (!text) return context(std::move(text).error(), *tc);
    MC_CHECK(tok::apply_tokenizer_config(*v, *text, tc->source.string()));
  }
  if (const ExtraFile* ct = m.find_extra("chat_template.jinja")) {
    auto text = extra_text(*ct);
    if (!text) return context(std::move(text).error(), *ct);
    v->chat_template = *text;
  }
  int64_t rows = -1;
  for (const auto& t : plan.tensors)
    if (t.name == "token_embd.weight" && !t.shape.empty()) rows = t.shape[0];
  MC_CHECK(pad_vocab(*v, rows));
  put_vocab(plan.kv, std::move(*v));
  return {};
}

Status attach_tokenizer_files(const File& f, Model& m) {
  auto v = vocab_from_kv(f.kv);
  if (!v) {
    if (v.error().code == ErrorCode::NotFound) return {};
    return std::move(v).error().with_path(f.path);
  }
  auto files = tok::vocab_to_hf(*v);
  if (!files) {
    if (files.error().code == ErrorCode::Unsupported) return {};
    return std::move(files).error().with_path(f.path);
  }
  m.set_extra({"tokenizer.json", {}, std::move(files->tokenizer_json)});
  m.set_extra({"tokenizer_config.json", {}, std::move(files->tokenizer_config_json)});
  return {};
}

}  // namespace mc::gguf
