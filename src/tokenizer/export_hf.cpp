// Vocab -> Hugging Face tokenizer.json + tokenizer_config.json (the GGUF -> HF direction),
// in the shapes transformers writes (formats.md §11.2): byte-level BPE with a ByteLevel
// pre-tokenizer (or Split + ByteLevel for the Llama-3 / Qwen2 expressions), and SentencePiece
// BPE as BPE{byte_fallback, fuse_unk} with the legacy Prepend/Replace normalizer.
#include <algorithm>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "tokenizer/loaders.h"

namespace mc::tok {

namespace {
using json = nlohmann::ordered_json;

// tokenizers (and Transformers.js) add BOS/EOS through the post_processor, not through
// tokenizer_config.json's add_bos_token: the TemplateProcessing transformers' LlamaConverter
// writes ("<s> $A", pairs "<s> $A <s> $B"; EOS likewise when added), null when neither is added.
// A SentencePiece vocabulary has it alone, a byte-level one after its ByteLevel step.
json special_template(const Vocab& v) {
  const bool bos = v.add_bos && v.bos_id >= 0, eos = v.add_eos && v.eos_id >= 0;
  if (!bos && !eos) return nullptr;
  json specials = json::object();
  auto special = [&](int32_t id, int type) {
    const std::string& t = v.tokens[static_cast<size_t>(id)];
    specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
    return json{{"SpecialToken", {{"id", t}, {"type_id", type}}}};
  };
  auto seq = [](const char* id, int type) { return json{{"Sequence", {{"id", id}, {"type_id", type}}}}; };
  json single = json::array();
  if (bos) single.push_back(special(v.bos_id, 0));
  single.push_back(seq("A", 0));
  if (eos) single.push_back(special(v.eos_id, 0));
  json pair = single;
  if (bos) pair.push_back(special(v.bos_id, 1));
  pair.push_back(seq("B", 1));
  if (eos) pair.push_back(special(v.eos_id, 1));
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

json split_then_bytelevel(const std::string& re) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           json::array({{{"type", "Split"},
                         {"pattern", {{"Regex", re}}},
                         {"behavior", "Isolated"},
                         {"invert", false}},
                        {{"type", "ByteLevel"},
                         {"add_prefix_space", false},
                         {"trim_offsets", true},
                         {"use_regex", false}}})}};
}
// The expression a tokenizer.json of that family carries (the (?i:...) original form).
std::optional<std::string> pre_regex_for_hf(const std::string& pre) {
  const std::string head = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|";
  const std::string tail = "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3" || pre == "dbrx" ||
      pre == "smaug-bpe" || pre == "falcon3") {
    return head + "\\p{N}{1,3}" + tail;
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2") {
    return head + "\\p{N}" + tail;
  }
  return std::nullopt;
}
// A SentencePiece model has no merge list; like transformers' SentencePieceExtractor, every
// split of a normal piece into two pieces becomes a merge, ordered by the merged piece's score
// (then by the ids of the parts).
std::vector<std::pair<size_t, size_t>> spm_merges(const Vocab& v) {
  std::unordered_map<std::string_view, size_t> ids;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.types[i] == kTokNormal) ids.emplace(v.tokens[i], i);
  }
  struct M {
    size_t merged, l, r;
  };
  std::vector<M> ms;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.types[i] != kTokNormal) continue;
    const std::string_view t = v.tokens[i];
    for (size_t k = 1; k < t.size(); ++k) {
      auto a = ids.find(t.substr(0, k));
      auto b = ids.find(t.substr(k));
      if (a != ids.end() && b != ids.end()) ms.push_back({i, a->second, b->second});
    }
  }
  std::stable_sort(ms.begin(), ms.end(), [&](const M& x, const M& y) {
    const float sx = v.score_of(int32_t(x.merged)), sy = v.score_of(int32_t(y.merged));
    if (sx != sy) return sx > sy;
    if (x.merged != y.merged) return x.merged < y.merged;
    if (x.l != y.l) return x.l < y.l;
    return x.r < y.r;
  });
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(ms.size());
  for (const M& m : ms) out.emplace_back(m.l, m.r);
  return out;
}
}  // namespace

Result<HfTokenizerFiles> vocab_to_hf(const Vocab& v) {
  MC_CHECK(v.validate());
  if (v.kind != ModelKind::ByteLevelBpe && v.kind != ModelKind::SpmBpe) {
    return make_error(ErrorCode::Unsupported, "writing tokenizer.json for a {} vocabulary",
                      model_kind_gguf_name(v.kind))
        .with_hint("only SentencePiece BPE (llama) and byte-level BPE (gpt2) are supported");
  }
  json added = json::array();
  // std::map-backed: ordered_json looks keys up linearly, far too slow for 100k tokens.
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 0; i < v.size(); ++i) {
    const int32_t t = v.types[i];
    if (t == kTokControl || t == kTokUserDefined || t == kTokUnknown) {
      added.push_back({{"id", i},
                       {"content", v.tokens[i]},
                       {"single_word", false},
                       {"lstrip", (v.attr_of(int32_t(i)) & kAttrLstrip) != 0},
                       {"rstrip", (v.attr_of(int32_t(i)) & kAttrRstrip) != 0},
                       {"normalized", t == kTokUserDefined},
                       {"special", t != kTokUserDefined}});
    }
    if (t != kTokUserDefined || v.kind == ModelKind::SpmBpe) vocab[v.tokens[i]] = i;
  }
  json merges = json::array();
  if (!v.merges.empty()) {
    for (const auto& m : v.merges) {
      auto p = split_merge(m);
      if (p) merges.push_back(json::array({std::string(p->first), std::string(p->second)}));
    }
  } else if (v.kind == ModelKind::SpmBpe) {
    for (const auto& [l, r] : spm_merges(v)) merges.push_back(json::array({v.tokens[l], v.tokens[r]}));
  }
  json tj;
  tj["version"] = "1.0";
  tj["truncation"] = nullptr;
  tj["padding"] = nullptr;
  tj["added_tokens"] = added;
  const std::string unk = v.unk_id != kNoToken ? v.tokens[size_t(v.unk_id)] : std::string();
  if (v.kind == ModelKind::ByteLevelBpe) {
    tj["normalizer"] = nullptr;
    auto res = pre_regex_for_hf(v.pre);
    if (v.pre == "gpt-2" || v.pre == "default" || v.pre.empty() || !res) {
      tj["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                             {"trim_offsets", true}, {"use_regex", true}};
    } else {
      tj["pre_tokenizer"] = split_then_bytelevel(*res);
    }
    // With BOS/EOS added (Llama 3), the template follows the ByteLevel step in a Sequence, the
    // shape transformers writes for it.
    const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", true},
                             {"trim_offsets", false}, {"use_regex", true}};
    const json tpl = special_template(v);
    tj["post_processor"] = tpl.is_null()
                               ? byte_level
                               : json{{"type", "Sequence"}, {"processors", json::array({byte_level, tpl})}};
    tj["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                     {"use_regex", true}};
    tj["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                   {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                   {"fuse_unk", false}, {"byte_fallback", false},
                   {"ignore_merges", v.ignore_merges}, {"vocab", vocab}, {"merges", merges}};
  } else {
    tj["normalizer"] = {{"type", "Sequence"},
                        {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                                     {{"type", "Replace"},
                                                      {"pattern", {{"String", " "}}},
                                                      {"content", "\xE2\x96\x81"}}})}};
    tj["pre_tokenizer"] = nullptr;
    tj["post_processor"] = special_template(v);
    tj["decoder"] = {{"type", "Sequence"},
                     {"decoders", json::array({{{"type", "Replace"},
                                                {"pattern", {{"String", "\xE2\x96\x81"}}},
                                                {"content", " "}},
                                               {{"type", "ByteFallback"}},
                                               {{"type", "Fuse"}},
                                               {{"type", "Strip"}, {"content", " "},
                                                {"start", 1}, {"stop", 0}}})}};
    tj["model"] = {{"type", "BPE"}, {"dropout", nullptr},
                   {"unk_token", unk.empty() ? json(nullptr) : json(unk)},
                   {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                   {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false},
                   {"vocab", vocab}, {"merges", merges}};
  }
  json cfg;
  cfg["add_bos_token"] = v.add_bos;
  cfg["add_eos_token"] = v.add_eos;
  auto name = [&](int32_t id) { return id == kNoToken ? json(nullptr) : json(v.tokens[size_t(id)]); };
  cfg["bos_token"] = name(v.bos_id);
  cfg["eos_token"] = name(v.eos_id);
  cfg["unk_token"] = name(v.unk_id);
  cfg["pad_token"] = name(v.pad_id);
  json dec = json::object();
  for (const auto& a : added) {
    dec[std::to_string(a["id"].get<size_t>())] = {
        {"content", a["content"]}, {"lstrip", a["lstrip"]}, {"normalized", a["normalized"]},
        {"rstrip", a["rstrip"]}, {"single_word", false}, {"special", a["special"]}};
  }
  cfg["added_tokens_decoder"] = dec;
  cfg["clean_up_tokenization_spaces"] = false;
  if (v.kind == ModelKind::SpmBpe) cfg["legacy"] = true;
  cfg["model_max_length"] = 1000000000000000019884624838656.0;
  cfg["tokenizer_class"] = v.kind == ModelKind::SpmBpe ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast";
  if (!v.chat_template.empty()) cfg["chat_template"] = v.chat_template;
  return HfTokenizerFiles{tj.dump(2), cfg.dump(2)};
}

}  // namespace mc::tok
