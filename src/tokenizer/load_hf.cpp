// Hugging Face tokenizer files -> Vocab (formats.md §11.2 tokenizer.json, §11.4
// tokenizer_config.json). Layout handled:
//   tokenizer.json: {"added_tokens":[{id,content,special,...}], "pre_tokenizer":{...},
//                    "model":{"type":"BPE"|"Unigram", "vocab":..., "merges":[...],
//                             "byte_fallback":bool, "ignore_merges":bool, "unk_token"/"unk_id"}}
//   BPE merges come as "a b" strings or ["a","b"] pairs; rank = index.
// Token types follow convert_hf_to_gguf: added tokens CONTROL when special or looking special,
// otherwise USER_DEFINED; <0xXX> pieces of a byte_fallback model BYTE; the unk token UNKNOWN.
#include <filesystem>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "tokenizer/loaders.h"
#include "tokenizer/parse_memo.h"

namespace mc::tok {

namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;

Error corrupt(const std::string& path, std::string msg) {
  return make_error(ErrorCode::Corrupt, "{}", msg).with_path(path);
}

// Merges may hold literal spaces inside tokens only in the array form; GGUF stores those as
// U+0120 so that "a b" stays splittable (gguf-py does the same).
std::string merge_from_pair(const std::string& a, const std::string& b) {
  auto enc = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == ' ') o += "\xC4\xA0";
      else o += c;
    }
    return o;
  };
  return enc(a) + " " + enc(b);
}

Status read_merges(const json& merges, Vocab& v, const std::string& path) {
  if (!merges.is_array()) return corrupt(path, "model.merges is not a list");
  v.merges.reserve(merges.size());
  for (const auto& m : merges) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      if (s.rfind("#version", 0) == 0) continue;
      v.merges.push_back(s);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      v.merges.push_back(merge_from_pair(m[0].get<std::string>(), m[1].get<std::string>()));
    } else {
      return corrupt(path, fmt::format("merge #{} is neither \"a b\" nor [\"a\", \"b\"]",
                                       v.merges.size()));
    }
  }
  return ok_status();
}

// Places token strings by id; ids must be dense after added tokens are placed too.
Status place(Vocab& v, size_t id, const std::string& text, int32_t type,
             const std::string& path) {
  if (id >= kMaxVocabTokens) {
    return make_error(ErrorCode::LimitExceeded, "token id {} over the cap {}", id, kMaxVocabTokens)
        .with_path(path);
  }
  if (id >= v.tokens.size()) {
    v.tokens.resize(id + 1);
    v.types.resize(id + 1, kTokUndefined);
  }
  v.tokens[id] = text;
  v.types[id] = type;
  return ok_status();
}

// Fills holes the way convert_hf_to_gguf does ([PADn], UNUSED).
void fill_holes(Vocab& v) {
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.types[i] == kTokUndefined && v.tokens[i].empty()) {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
      v.types[i] = kTokUnused;
    }
  }
  if (!v.scores.empty()) v.scores.resize(v.tokens.size(), -1000.0f);
}

// Names llama.cpp gives the pre-tokenizers we can recognise from the tokenizer.json itself.
std::string detect_pre(const json& pre) {
  if (!pre.is_object()) return "default";
  const std::string type = pre.value("type", "");
  if (type == "ByteLevel") return pre.value("use_regex", true) ? "gpt-2" : "default";
  if (type != "Sequence" || !pre.contains("pretokenizers")) return "default";
  for (const auto& p : pre["pretokenizers"]) {
    if (p.value("type", "") != "Split" || !p.contains("pattern")) continue;
    const auto& pat = p["pattern"];
    if (!pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string()) continue;
    const std::string re = pat["Regex"].get<std::string>();
    const std::string l3 =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const std::string q2 =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    if (re == l3) return "llama-bpe";
    if (re == q2) return "qwen2";
  }
  return "default";
}

// An added token's lstrip/rstrip flags (HF AddedToken): a match takes the white space beside it.
void set_strip_attrs(Vocab& v, int32_t id, const json& a) {
  auto flag = [&](const char* k) { return a.contains(k) && a[k].is_boolean() && a[k].get<bool>(); };
  if (flag("lstrip")) v.set_attr(id, kAttrLstrip, true);
  if (flag("rstrip")) v.set_attr(id, kAttrRstrip, true);
}

int32_t added_type(const json& a, const std::string& content) {
  return (a.value("special", false) || looks_special(content)) ? kTokControl : kTokUserDefined;
}

// The special tokens a post_processor adds around a single text (Vocab::post_first/post_last):
// a TemplateProcessing's leading and trailing SpecialToken when its "single" holds more than the
// text, a RobertaProcessing's cls and sep; a Sequence's processors are read in turn (Llama 3:
// ByteLevel, then TemplateProcessing). Other shapes add nothing.
void read_post_processor(const json& pp, Vocab& v) {
  if (!pp.is_object()) return;
  const std::string type = pp.value("type", "");
  if (type == "Sequence") {
    if (pp.contains("processors") && pp["processors"].is_array())
      for (const auto& p : pp["processors"]) read_post_processor(p, v);
    return;
  }
  auto special = [](const json& item) -> std::string {
    if (!item.is_object() || !item.contains("SpecialToken") || !item["SpecialToken"].is_object()) return {};
    const json& t = item["SpecialToken"];
    return t.contains("id") && t["id"].is_string() ? t["id"].get<std::string>() : std::string();
  };
  if (type == "TemplateProcessing" && pp.contains("single") && pp["single"].is_array() && pp["single"].size() > 1) {
    v.post_first = special(pp["single"].front());
    v.post_last = special(pp["single"].back());
  } else if (type == "RobertaProcessing") {
    auto name = [&](const char* k) {
      return pp.contains(k) && pp[k].is_array() && !pp[k].empty() && pp[k][0].is_string() ? pp[k][0].get<std::string>()
                                                                                         : std::string();
    };
    v.post_first = name("cls");
    v.post_last = name("sep");
  }
}

// add_bos / add_eos from the post_processor's special tokens, as gguf-py's SpecialVocab reads them
// (convert_hf_to_gguf.py). A leading token becomes the BOS unless the config names one, and is
// added unless the config names both a BOS and a cls_token and it is neither. A trailing token
// becomes the EOS and is added; an EOS the config named otherwise becomes the end of turn (when
// none is set). Run once on tokenizer.json alone and again with tokenizer_config.json's names,
// whose add_bos_token / add_eos_token keys are applied after this and win.
void apply_post_processor(Vocab& v, bool bos_named, std::optional<int32_t> cls) {
  if (const int32_t f = v.post_first.empty() ? kNoToken : v.find(v.post_first); f != kNoToken) {
    if (!bos_named) v.bos_id = f;
    v.add_bos = f == v.bos_id || !cls || f == *cls;
  }
  if (const int32_t l = v.post_last.empty() ? kNoToken : v.find(v.post_last); l != kNoToken) {
    if (v.eos_id != kNoToken && v.eos_id != l && v.eot_id == kNoToken) v.eot_id = v.eos_id;
    v.eos_id = l;
    v.add_eos = true;
  }
}

Result<Vocab> parse_tokenizer_json_impl(const json& j, const std::string& path) {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    return corrupt(path, "tokenizer.json has no \"model\" object");
  }
  const json& model = j["model"];
  const std::string mtype = model.value("type", model.contains("merges") ? "BPE" : "");
  Vocab v;
  if (mtype == "BPE") {
    const bool byte_fallback = model.value("byte_fallback", false);
    v.kind = byte_fallback ? ModelKind::SpmBpe : ModelKind::ByteLevelBpe;
    v.byte_fallback = byte_fallback;
    v.ignore_merges = model.value("ignore_merges", false);
    if (!model.contains("vocab") || !model["vocab"].is_object()) {
      return corrupt(path, "model.vocab is not an object of token -> id");
    }
    for (const auto& [tok, id] : model["vocab"].items()) {
      if (!id.is_number_unsigned()) return corrupt(path, "vocab id of '" + tok + "' is not a non-negative integer");
      int32_t type = kTokNormal;
      if (byte_fallback && parse_byte_piece(tok)) type = kTokByte;
      MC_CHECK(place(v, id.get<size_t>(), tok, type, path));
    }
    MC_CHECK(read_merges(model.contains("merges") ? model["merges"] : json::array(), v, path));
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      v.unk_id = v.find(model["unk_token"].get<std::string>());
    }
    if (v.kind == ModelKind::ByteLevelBpe) {
      v.pre = detect_pre(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json());
      if (v.pre == "llama-bpe") v.ignore_merges = true;
    } else {
      // SentencePiece-derived: llama.cpp merges by piece score, so give each piece the score
      // that reproduces the merge order (earlier merge = higher score).
      v.add_space_prefix = true;
      v.scores.assign(v.tokens.size(), 0.0f);
      std::unordered_map<std::string_view, int32_t> ids;
      for (size_t i = 0; i < v.tokens.size(); ++i) ids.emplace(v.tokens[i], int32_t(i));
      for (size_t r = 0; r < v.merges.size(); ++r) {
        auto parts = split_merge(v.merges[r]);
        if (!parts) continue;
        std::string joined(parts->first);
        joined += parts->second;
        for (size_t p = 0; p + 2 <= joined.size(); ++p) {  // spaces were encoded as U+0120
          if (joined.compare(p, 2, "\xC4\xA0") == 0) joined.replace(p, 2, " ");
        }
        auto it = ids.find(joined);
        const int32_t id = it == ids.end() ? kNoToken : it->second;
        if (id != kNoToken && v.scores[size_t(id)] == 0.0f) v.scores[size_t(id)] = -float(r + 1);
      }
      for (size_t i = 0; i < v.tokens.size(); ++i) {  // normal pieces no merge builds: last
        if (v.types[i] == kTokNormal && v.scores[i] == 0.0f) v.scores[i] = -float(v.merges.size() + 1);
      }
    }
  } else if (mtype == "Unigram") {
    v.kind = ModelKind::SpmUnigram;
    v.add_space_prefix = true;
    if (!model.contains("vocab") || !model["vocab"].is_array()) {
      return corrupt(path, "Unigram model.vocab is not a list of [piece, score]");
    }
    for (const auto& e : model["vocab"]) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number()) {
        return corrupt(path, fmt::format("Unigram vocab entry #{} is not [piece, score]",
                                         v.tokens.size()));
      }
      const std::string p = e[0].get<std::string>();
      v.tokens.push_back(p);
      v.scores.push_back(e[1].get<float>());
      v.types.push_back(parse_byte_piece(p) ? kTokByte : kTokNormal);
    }
    if (model.contains("unk_id") && model["unk_id"].is_number_unsigned()) {
      v.unk_id = model["unk_id"].get<int32_t>();
    }
  } else {
    return make_error(ErrorCode::Unsupported, "tokenizer.json model type '{}' is not supported",
                      mtype)
        .with_path(path)
        .with_hint("supported: BPE (byte-level or byte_fallback) and Unigram");
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned() ||
          !a.contains("content") || !a["content"].is_string()) {
        return corrupt(path, "an added_tokens entry lacks id/content");
      }
      const std::string c = a["content"].get<std::string>();
      MC_CHECK(place(v, a["id"].get<size_t>(), c, added_type(a, c), path));
      set_strip_attrs(v, int32_t(a["id"].get<size_t>()), a);
    }
  }
  read_post_processor(j.contains("post_processor") ? j["post_processor"] : json(), v);
  if (!v.scores.empty()) v.scores.resize(v.tokens.size(), 0.0f);
  fill_holes(v);
  apply_post_processor(v, false, std::nullopt);
  if (v.unk_id != kNoToken && size_t(v.unk_id) < v.types.size()) v.types[size_t(v.unk_id)] = kTokUnknown;
  return v;
}

}  // namespace

Result<Vocab> parse_tokenizer_json(const std::string& text, const std::string& path) {
  if (auto v = memo_take(ParserKind::TokenizerJson, text)) return std::move(*v);
  MC_CHECK(io::check_json_depth(text, path));  // also when the text did not come from a file
  try {
    const json j = json::parse(text);
    auto v = MC_TRY(parse_tokenizer_json_impl(j, path));
    MC_CHECK(v.validate());
    return v;
  } catch (const json::exception& e) {
    return corrupt(path, std::string("invalid tokenizer.json: ") + e.what());
  }
}

Result<Vocab> load_tokenizer_json(const std::string& path) {
  const std::string text = MC_TRY(io::read_text_file(path));
  return parse_tokenizer_json(text, path);
}

Status check_tokenizer_json(const std::string& path) {
  auto text = std::make_shared<const std::string>(MC_TRY(io::read_text_file(path)));
  auto v = MC_TRY(parse_tokenizer_json(*text, path));
  memo_keep(ParserKind::TokenizerJson, text, *text, std::move(v));
  return {};
}

Result<Vocab> load_vocab_merges(const std::string& vocab_json, const std::string& merges_txt) {
  const std::string vt = MC_TRY(io::read_text_file(vocab_json));
  const std::string mt = MC_TRY(io::read_text_file(merges_txt));
  Vocab v;
  v.kind = ModelKind::ByteLevelBpe;
  v.pre = "gpt-2";
  try {
    const json j = json::parse(vt);
    if (!j.is_object()) return corrupt(vocab_json, "vocab.json is not an object of token -> id");
    for (const auto& [tok, id] : j.items()) {
      if (!id.is_number_unsigned()) return corrupt(vocab_json, "id of '" + tok + "' is not a non-negative integer");
      MC_CHECK(place(v, id.get<size_t>(), tok, kTokNormal, vocab_json));
    }
  } catch (const json::exception& e) {
    return corrupt(vocab_json, std::string("invalid vocab.json: ") + e.what());
  }
  size_t pos = 0;
  while (pos < mt.size()) {
    size_t end = mt.find('\n', pos);
    if (end == std::string::npos) end = mt.size();
    std::string line = mt.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    if (!split_merge(line)) return corrupt(merges_txt, "merge line without a space: '" + line + "'");
    v.merges.push_back(line);
  }
  fill_holes(v);
  // GPT-2's only special token; tokenizer_config.json may say more.
  const int32_t eot = v.find("<|endoftext|>");
  if (eot != kNoToken) {
    v.types[size_t(eot)] = kTokControl;
    v.bos_id = v.eos_id = eot;
  }
  MC_CHECK(v.validate());
  return v;
}

namespace {
std::optional<std::string> token_name(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return std::nullopt;
  const json& t = cfg[key];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) {
    return t["content"].get<std::string>();
  }
  return std::nullopt;
}
}  // namespace

Status apply_tokenizer_config(Vocab& v, const std::string& text, const std::string& path) {
  try {
    const json cfg = json::parse(text);
    if (!cfg.is_object()) return corrupt(path, "tokenizer_config.json is not an object");
    if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
      for (const auto& [key, a] : cfg["added_tokens_decoder"].items()) {
        size_t id = 0;
        try {
          id = std::stoul(key);
        } catch (const std::exception&) {
          return corrupt(path, "added_tokens_decoder key '" + key + "' is not an id");
        }
        if (!a.is_object() || !a.contains("content") || !a["content"].is_string()) continue;
        if (id >= v.tokens.size()) continue;  // convert_hf_to_gguf ignores ids past the vocab
        std::string c = a["content"].get<std::string>();
        const int32_t type = added_type(a, c);
        if (type == kTokUserDefined && v.kind != ModelKind::ByteLevelBpe) {
          size_t p;
          while ((p = c.find("\xE2\x96\x81")) != std::string::npos) c.replace(p, 3, " ");
        }
        v.tokens[id] = c;
        v.types[id] = type;
        set_strip_attrs(v, int32_t(id), a);
      }
    }
    const std::pair<const char*, int32_t*> names[] = {
        {"bos_token", &v.bos_id}, {"eos_token", &v.eos_id}, {"unk_token", &v.unk_id},
        {"pad_token", &v.pad_id}, {"sep_token", &v.sep_id}, {"mask_token", &v.mask_id}};
    for (const auto& [k, dst] : names) {
      if (auto n = token_name(cfg, k)) {
        const int32_t id = v.find(*n);
        if (id != kNoToken) *dst = id;
      }
    }
    std::optional<int32_t> cls;
    if (auto n = token_name(cfg, "cls_token")) cls = v.find(*n);
    apply_post_processor(v, token_name(cfg, "bos_token") && v.bos_id != kNoToken, cls);
    auto bool_key = [&](const char* k, bool* dst) {
      if (cfg.contains(k) && cfg[k].is_boolean()) *dst = cfg[k].get<bool>();
    };
    bool_key("add_bos_token", &v.add_bos);
    bool_key("add_eos_token", &v.add_eos);
    if (cfg.contains("chat_template")) {
      const json& ct = cfg["chat_template"];
      if (ct.is_string()) {
        v.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {
        for (const auto& e : ct) {
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
              e["template"].is_string()) {
            v.chat_template = e["template"].get<std::string>();
          }
        }
      }
    }
  } catch (const json::exception& e) {
    return corrupt(path, std::string("invalid tokenizer_config.json: ") + e.what());
  }
  return ok_status();
}

Status apply_added_tokens_json(Vocab& v, const std::string& text, const std::string& path) {
  try {
    const json j = json::parse(text);
    if (!j.is_object()) return corrupt(path, "added_tokens.json is not an object");
    for (const auto& [tok, id] : j.items()) {
      if (!id.is_number_unsigned()) return corrupt(path, "id of '" + tok + "' is not an integer");
      const size_t i = id.get<size_t>();
      if (i >= kMaxVocabTokens) return corrupt(path, fmt::format("added token id {} too large", i));
      if (i >= v.tokens.size()) {
        // Like a model whose config vocab_size covers the added ids: pad up to them.
        v.tokens.resize(i + 1);
        v.types.resize(i + 1, kTokUndefined);
        if (!v.scores.empty()) v.scores.resize(i + 1, -1000.0f);
      }
      v.tokens[i] = tok;
      v.types[i] = kTokUserDefined;
      if (!v.scores.empty()) v.scores[i] = -1000.0f;
    }
    fill_holes(v);
  } catch (const json::exception& e) {
    return corrupt(path, std::string("invalid added_tokens.json: ") + e.what());
  }
  return ok_status();
}

Result<Vocab> load_hf_tokenizer_dir(const std::string& dir) {
  const fs::path d(dir);
  auto has = [&](const char* f) { return fs::is_regular_file(d / f); };
  Vocab v;
  bool spm = false;
  if (has("tokenizer.json")) {
    v = MC_TRY(load_tokenizer_json((d / "tokenizer.json").string()));
  } else if (has("tokenizer.model")) {
    v = MC_TRY(load_sentencepiece_model((d / "tokenizer.model").string()));
    spm = true;
  } else if (has("vocab.json") && has("merges.txt")) {
    v = MC_TRY(load_vocab_merges((d / "vocab.json").string(), (d / "merges.txt").string()));
  } else {
    return make_error(ErrorCode::NotFound, "no tokenizer files in {}", dir)
        .with_hint("expected tokenizer.json, tokenizer.model, or vocab.json + merges.txt");
  }
  if (spm && has("added_tokens.json")) {
    const std::string p = (d / "added_tokens.json").string();
    MC_CHECK(apply_added_tokens_json(v, MC_TRY(io::read_text_file(p)), p));
  }
  if (has("tokenizer_config.json")) {
    const std::string p = (d / "tokenizer_config.json").string();
    MC_CHECK(apply_tokenizer_config(v, MC_TRY(io::read_text_file(p)), p));
  }
  if (has("chat_template.jinja")) {
    v.chat_template = MC_TRY(io::read_text_file((d / "chat_template.jinja").string()));
  }
  MC_CHECK(v.validate());
  return v;
}

}  // namespace mc::tok
