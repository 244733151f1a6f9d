#include "arch/config.h"

#include <cstdio>

#include <fmt/format.h>

namespace mc::arch {

namespace {

template <typename T>
std::optional<T> get_opt(const ojson& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  try {
    return it->get<T>();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Error field_error(const char* key, std::string_view what) {
  return make_error(ErrorCode::Corrupt, "config.json: '{}' {}", key, what)
      .with_hint("fix config.json or pass --model-type");
}

// transformers_version "4.38.0.dev0" -> (4, 38); nullopt when absent or unreadable.
std::optional<std::pair<int, int>> transformers_version(const ojson& j) {
  auto v = get_opt<std::string>(j, "transformers_version");
  if (!v) return std::nullopt;
  int major = 0, minor = 0;
  if (std::sscanf(v->c_str(), "%d.%d", &major, &minor) != 2) return std::nullopt;
  return std::pair{major, minor};
}

bool same_activation(const std::string& a, const std::string& b) {
  auto tanh_like = [](const std::string& s) {
    return s == "gelu_pytorch_tanh" || s == "gelu_new" || s == "gelu_fast";
  };
  return a == b || (tanh_like(a) && tanh_like(b));
}

// Gemma's activation (formats.md; transformers PR 29402): 4.38-4.47 read `hidden_activation`
// (absent or null: tanh GELU) and ignored `hidden_act`; 4.48 on read `hidden_act`. The
// config's own transformers_version picks the era; two explicit keys that disagree are refused.
Result<std::string> gemma_activation(const ojson& j) {
  const auto ha = get_opt<std::string>(j, "hidden_activation");
  const auto act = get_opt<std::string>(j, "hidden_act");
  if (ha && act && !same_activation(*ha, *act))
    return make_error(ErrorCode::Mismatch, "config.json: 'hidden_activation' is \"{}\" but 'hidden_act' is \"{}\"",
                      *ha, *act)
        .with_hint("transformers versions disagree on which key Gemma reads; make both name the same "
                   "activation (Gemma was trained with gelu_pytorch_tanh)");
  const auto v = transformers_version(j);
  const bool old_era = v && (v->first < 4 || (v->first == 4 && v->second < 48));
  if (old_era) return ha.value_or("gelu_pytorch_tanh");
  return act ? *act : ha.value_or("gelu_pytorch_tanh");
}

Result<int64_t> require_int(const ojson& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return field_error(key, "is missing");
  if (!it->is_number_integer()) return field_error(key, "is not an integer");
  const int64_t v = it->get<int64_t>();
  if (v <= 0) return field_error(key, "must be positive");
  return v;
}
}  // namespace

Status check_limits(const ArchConfig& c, std::string_view source) {
  const struct {
    const char* key;
    int64_t value, limit;
  } checks[] = {
      {"num_hidden_layers", c.num_layers, Limits::kLayers},
      {"hidden_size", c.hidden_size, Limits::kHidden},
      {"head_dim", c.head_dim, Limits::kHidden},
      {"intermediate_size", c.intermediate_size, Limits::kIntermediate},
      {"vocab_size", c.vocab_size, Limits::kVocab},
      {"num_attention_heads", c.num_heads, Limits::kHeads},
      {"num_key_value_heads", c.num_kv_heads, Limits::kHeads},
      {"max_position_embeddings", c.max_position, Limits::kPositions},
  };
  for (const auto& k : checks)
    if (k.value > k.limit || k.value < 0)
      return make_error(ErrorCode::LimitExceeded, "{}: '{}' is {}, over the limit of {}", source, k.key, k.value, k.limit)
          .with_hint("no real model is this large: the file is damaged or hostile (see README, Limits and reliability)");
  return {};
}

Result<ArchConfig> from_hf_config(const ojson& j) {
  ArchConfig c;
  if (!j.is_object()) return field_error("(root)", "is not a JSON object");
  c.model_type = get_opt<std::string>(j, "model_type").value_or("");
  if (auto a = j.find("architectures"); a != j.end() && a->is_array() && !a->empty() &&
                                        (*a)[0].is_string())
    c.architecture = (*a)[0].get<std::string>();
  c.family = family_from_model_type(c.model_type);
  if (c.family == Family::Unknown) c.family = family_from_hf_architecture(c.architecture);
  c.torch_dtype = get_opt<std::string>(j, "torch_dtype").value_or(get_opt<std::string>(j, "dtype").value_or(""));
  c.bos_token_id = get_opt<int64_t>(j, "bos_token_id");
  c.pad_token_id = get_opt<int64_t>(j, "pad_token_id");
  if (auto e = j.find("eos_token_id"); e != j.end()) {
    if (e->is_number_integer()) c.eos_token_ids.push_back(e->get<int64_t>());
    if (e->is_array())
      for (const auto& v : *e)
        if (v.is_number_integer()) c.eos_token_ids.push_back(v.get<int64_t>());
  }
  const FamilyInfo* row = find_family(c.family);
  if (!row) return c;

  if (row->decoder == Decoder::GPT2) {
    c.vocab_size = MC_TRY(require_int(j, "vocab_size"));
    c.hidden_size = MC_TRY(require_int(j, "n_embd"));
    c.num_layers = MC_TRY(require_int(j, "n_layer"));
    c.num_heads = MC_TRY(require_int(j, "n_head"));
    c.num_kv_heads = c.num_heads;
    c.intermediate_size = get_opt<int64_t>(j, "n_inner").value_or(4 * c.hidden_size);
    c.max_position = get_opt<int64_t>(j, "n_positions").value_or(1024);
    c.norm_eps = get_opt<double>(j, "layer_norm_epsilon").value_or(1e-5);
    c.hidden_act = get_opt<std::string>(j, "activation_function").value_or("gelu_new");
    c.tie_word_embeddings = get_opt<bool>(j, "tie_word_embeddings").value_or(true);
    c.qkv_bias = c.o_bias = c.mlp_bias = true;
    c.head_dim = c.hidden_size / c.num_heads;
    MC_CHECK(check_limits(c));
    return c;
  }

  c.vocab_size = MC_TRY(require_int(j, "vocab_size"));
  c.hidden_size = MC_TRY(require_int(j, "hidden_size"));
  c.intermediate_size = MC_TRY(require_int(j, "intermediate_size"));
  c.num_layers = MC_TRY(require_int(j, "num_hidden_layers"));
  c.num_heads = MC_TRY(require_int(j, "num_attention_heads"));
  c.num_kv_heads = get_opt<int64_t>(j, "num_key_value_heads").value_or(c.num_heads);
  c.head_dim = get_opt<int64_t>(j, "head_dim").value_or(row->default_head_dim > 0 ? row->default_head_dim
                                                                                 : c.hidden_size / c.num_heads);
  if (c.head_dim <= 0) return field_error("head_dim", "must be positive");
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0)
    return field_error("num_key_value_heads", "must divide num_attention_heads");
  c.max_position = get_opt<int64_t>(j, "max_position_embeddings").value_or(2048);
  c.norm_eps = get_opt<double>(j, "rms_norm_eps").value_or(row->default_norm_eps);
  if (row->activation == ActivationKey::GemmaEra) c.hidden_act = MC_TRY(gemma_activation(j));
  else c.hidden_act = get_opt<std::string>(j, "hidden_act").value_or("silu");
  if (auto p = get_opt<double>(j, "partial_rotary_factor"); p && *p != 1.0)
    return make_error(ErrorCode::Unsupported, "config.json: partial_rotary_factor {} (RoPE on part of each head) is not supported", *p)
        .with_hint("only models whose RoPE covers the whole head convert today");
  c.rope_theta = get_opt<double>(j, "rope_theta").value_or(10000.0);
  if (auto rs = j.find("rope_scaling"); rs != j.end() && rs->is_object()) c.rope_scaling = *rs;
  // transformers v5: rope_parameters {rope_type, rope_theta, ...}
  if (auto rp = j.find("rope_parameters"); rp != j.end() && rp->is_object()) {
    if (auto t = rp->find("rope_theta"); t != rp->end() && t->is_number()) c.rope_theta = t->get<double>();
    auto type = rp->find("rope_type");
    if (type != rp->end() && type->is_string() && type->get<std::string>() != "default") c.rope_scaling = *rp;
  }
  // Phi-3 keeps the original context of its longrope scaling at the top level of config.json;
  // transformers reads it from there when rope_scaling does not say.
  c.original_max_position = get_opt<int64_t>(j, "original_max_position_embeddings");
  if (c.rope_scaling.is_object()) {
    if (auto o = c.rope_scaling.find("original_max_position_embeddings"); o != c.rope_scaling.end() && o->is_number_integer())
      c.original_max_position = o->get<int64_t>();
    else if (c.original_max_position)
      c.rope_scaling["original_max_position_embeddings"] = *c.original_max_position;
  }
  c.tie_word_embeddings = get_opt<bool>(j, "tie_word_embeddings").value_or(row->tie_by_default);
  c.mlp_bias = get_opt<bool>(j, "mlp_bias").value_or(false);
  if (row->qkv_bias_always) c.qkv_bias = true;
  else c.qkv_bias = c.o_bias = get_opt<bool>(j, "attention_bias").value_or(false);
  if (row->sliding == SlidingWindow::Key ||
      (row->sliding == SlidingWindow::Flagged && get_opt<bool>(j, "use_sliding_window").value_or(false)))
    c.sliding_window = get_opt<int64_t>(j, "sliding_window");
  if (row->mup) {
    c.scale_emb = get_opt<double>(j, "scale_emb").value_or(1.0);
    c.scale_depth = get_opt<double>(j, "scale_depth").value_or(1.0);
    c.dim_model_base = get_opt<double>(j, "dim_model_base").value_or(1.0);
  }
  MC_CHECK(check_limits(c));
  return c;
}

ojson to_hf_config(const ArchConfig& c) {
  ojson j = ojson::object();
  const FamilyInfo* row = find_family(c.family);
  std::string_view arch = c.architecture;
  if (arch.empty() && row) arch = row->hf_architecture;
  j["architectures"] = ojson::array({std::string(arch)});
  j["model_type"] = std::string(family_name(c.family));
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;
  if (row && row->decoder == Decoder::GPT2) {
    j["vocab_size"] = c.vocab_size;
    j["n_embd"] = c.hidden_size;
    j["n_layer"] = c.num_layers;
    j["n_head"] = c.num_heads;
    j["n_inner"] = c.intermediate_size;
    j["n_positions"] = c.max_position;
    j["layer_norm_epsilon"] = c.norm_eps;
    j["activation_function"] = c.hidden_act;
    j["tie_word_embeddings"] = c.tie_word_embeddings;
  } else {
    j["hidden_act"] = c.hidden_act;
    if (row && row->activation == ActivationKey::GemmaEra) j["hidden_activation"] = c.hidden_act;
    j["hidden_size"] = c.hidden_size;
    j["intermediate_size"] = c.intermediate_size;
    j["max_position_embeddings"] = c.max_position;
    j["num_attention_heads"] = c.num_heads;
    j["num_hidden_layers"] = c.num_layers;
    j["num_key_value_heads"] = c.num_kv_heads;
    // An unknown family may carry no head count (num_heads 0): head_dim is then written as it is.
    if (c.num_heads <= 0 || c.head_dim != c.hidden_size / c.num_heads || (row && row->default_head_dim > 0))
      j["head_dim"] = c.head_dim;
    j["rms_norm_eps"] = c.norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = c.rope_scaling;
    if (row && row->gguf_rope_factors == GgufRopeFactors::LongShort && c.original_max_position)
      j["original_max_position_embeddings"] = *c.original_max_position;
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    if (row && row->bias_keys) {
      j["attention_bias"] = c.qkv_bias;
      j["mlp_bias"] = c.mlp_bias;
    }
    if (row && row->sliding != SlidingWindow::None) {
      if (c.sliding_window) j["sliding_window"] = *c.sliding_window; else j["sliding_window"] = nullptr;
    }
    if (row && row->mup) {
      j["scale_emb"] = c.scale_emb;
      j["scale_depth"] = c.scale_depth;
      j["dim_model_base"] = c.dim_model_base;
    }
    j["vocab_size"] = c.vocab_size;
  }
  if (!c.torch_dtype.empty()) j["torch_dtype"] = c.torch_dtype;
  return j;
}

}  // namespace mc::arch
