// Tensor names and architecture metadata (formats.md §2.7, §2.8), in both directions.
#include <array>
#include <charconv>
#include <cmath>
#include <numbers>

#include "formats/gguf/mapping.h"

namespace mc::gguf {
namespace {

using arch::Family;

std::optional<std::string_view> lookup(std::span<const arch::NamePair> t, std::string_view key, bool from_hf) {
  for (const auto& p : t)
    if ((from_hf ? p.hf : p.gguf) == key) return from_hf ? p.gguf : p.hf;
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> gguf_arch_name(Family f) {
  const arch::FamilyInfo* row = arch::find_family(f);
  if (!row || row->gguf_arch.empty()) return std::nullopt;
  return row->gguf_arch;
}

bool needs_qk_permutation(Family f) {
  const arch::FamilyInfo* row = arch::find_family(f);
  return row && row->rope_pair_rows;
}

bool is_conv1d_weight(Family f, std::string_view gguf) {
  const arch::FamilyInfo* row = arch::find_family(f);
  return row && row->conv1d && gguf.starts_with("blk.") && gguf.ends_with(".weight") &&
         !gguf.ends_with("_norm.weight");
}

std::optional<std::string> gguf_tensor_name(Family f, std::string_view hf) {
  const arch::FamilyInfo* row = arch::find_family(f);
  if (!row) return std::nullopt;
  if (!row->hf_prefix.empty() && hf.starts_with(row->hf_prefix)) hf.remove_prefix(row->hf_prefix.size());
  for (std::string_view d : row->hf_dropped)
    if (hf.ends_with(d)) return std::string();
  std::string_view stem, suffix;
  if (!arch::split_param_name(hf, &stem, &suffix)) return std::nullopt;
  int64_t n;
  std::string_view rest;
  if (arch::split_layer_name(stem, row->hf_layer_prefix, &n, &rest)) {
    auto g = lookup(row->layer_names, rest, true);
    if (!g) return std::nullopt;
    return fmt::format("blk.{}.{}{}", n, *g, suffix);
  }
  auto g = lookup(row->global_names, stem, true);
  if (!g) return std::nullopt;
  return fmt::format("{}{}", *g, suffix);
}

std::optional<std::string> hf_tensor_name(Family f, std::string_view gguf) {
  const arch::FamilyInfo* row = arch::find_family(f);
  if (!row) return std::nullopt;
  std::string_view stem, suffix;
  if (!arch::split_param_name(gguf, &stem, &suffix)) return std::nullopt;
  int64_t n;
  std::string_view rest;
  if (arch::split_layer_name(stem, "blk.", &n, &rest)) {
    auto h = lookup(row->layer_names, rest, false);
    if (!h) return std::nullopt;
    return fmt::format("{}{}{}.{}{}", row->hf_prefix, row->hf_layer_prefix, n, *h, suffix);
  }
  auto h = lookup(row->global_names, stem, false);
  if (!h) return std::nullopt;
  return fmt::format("{}{}{}", row->hf_prefix, *h, suffix);
}

void put_arch_metadata(KvStore& kv, const arch::ArchConfig& c, std::string_view a) {
  const std::string p(a);
  auto u32 = [](int64_t v) { return uint32_t(std::clamp<int64_t>(v, 0, UINT32_MAX)); };
  kv.set_string("general.architecture", p);
  kv.set_u32(p + ".context_length", u32(c.max_position));
  kv.set_u32(p + ".embedding_length", u32(c.hidden_size));
  kv.set_u32(p + ".block_count", u32(c.num_layers));
  kv.set_u32(p + ".feed_forward_length", u32(c.intermediate_size));
  kv.set_u32(p + ".attention.head_count", u32(c.num_heads));
  const arch::FamilyInfo* row = c.info();
  if (row && row->decoder == arch::Decoder::GPT2) {
    kv.set_f32(p + ".attention.layer_norm_epsilon", float(c.norm_eps));
    return;
  }
  kv.set_u32(p + ".attention.head_count_kv", u32(c.num_kv_heads));
  kv.set_f32(p + ".rope.freq_base", float(c.rope_theta));
  kv.set_f32(p + ".attention.layer_norm_rms_epsilon", float(c.norm_eps));
  kv.set_u32(p + ".rope.dimension_count", u32(c.head_dim));
  if (c.num_heads > 0 && c.head_dim != c.hidden_size / c.num_heads) {
    kv.set_u32(p + ".attention.key_length", u32(c.head_dim));
    kv.set_u32(p + ".attention.value_length", u32(c.head_dim));
  }
  kv.set_u32(p + ".vocab_size", u32(c.vocab_size));
  if (c.rope_scaling.is_object()) {
    const auto& rs = c.rope_scaling;
    std::string type = rs.value("rope_type", rs.value("type", std::string()));
    const double factor = rs.contains("factor") && rs["factor"].is_number() ? rs["factor"].get<double>() : 0.0;
    if ((type == "linear" || type == "yarn") && factor > 0) {
      kv.set_string(p + ".rope.scaling.type", type);
      kv.set_f32(p + ".rope.scaling.factor", float(factor));
      if (auto o = rs.find("original_max_position_embeddings"); o != rs.end() && o->is_number_integer())
        kv.set_u32(p + ".rope.scaling.original_context_length", u32(o->get<int64_t>()));
    }
  }
  if (row && row->gguf_rope_factors == arch::GgufRopeFactors::LongShort) {
    // convert_hf_to_gguf (Phi3MiniModel) always writes the original context, and the attention
    // factor of a longrope scaling (its long/short factors go in as tensors).
    kv.set_u32(p + ".rope.scaling.original_context_length", u32(original_context(c)));
    if (auto ls = rope_long_short_factors(c); ls && *ls) kv.set_f32(p + ".rope.scaling.attn_factor", (*ls)->attn_factor);
  }
  if (row && row->gguf_sliding_window_key) kv.set_u32(p + ".attention.sliding_window", u32(c.sliding_window.value_or(0)));
  if (c.is_mup()) {
    kv.set_f32(p + ".embedding_scale", float(c.scale_emb));
    kv.set_f32(p + ".residual_scale", float(c.scale_depth / std::sqrt(double(c.num_layers))));
    kv.set_f32(p + ".logit_scale", float(double(c.hidden_size) / c.dim_model_base));
  }
}

int64_t original_context(const arch::ArchConfig& c) { return c.original_max_position.value_or(c.max_position); }

Result<std::optional<LongShortFactors>> rope_long_short_factors(const arch::ArchConfig& c) {
  const ojson& rs = c.rope_scaling;
  if (!rs.is_object()) return std::optional<LongShortFactors>();
  const std::string type = rs.value("rope_type", rs.value("type", std::string()));
  if (type.empty() || type == "default") return std::optional<LongShortFactors>();
  auto unsupported = [&](std::string why) -> Error {
    return make_error(ErrorCode::Unsupported, "rope_scaling {}: {}", type, why)
        .with_hint("llama.cpp's phi3 architecture takes a longrope scaling (long and short factors per frequency)");
  };
  if (type != "longrope" && type != "su") return unsupported("not expressible in GGUF for this architecture");
  const int64_t half = c.head_dim / 2;
  LongShortFactors out;
  for (auto [key, dst] : {std::pair{"long_factor", &out.long_factors}, std::pair{"short_factor", &out.short_factors}}) {
    auto it = rs.find(key);
    if (it == rs.end() || !it->is_array() || int64_t(it->size()) != half)
      return unsupported(fmt::format("needs {} with {} entries (head_dim {})", key, half, c.head_dim));
    for (const auto& v : *it) {
      if (!v.is_number()) return unsupported(fmt::format("{} holds a non-number", key));
      dst->push_back(v.get<float>());
    }
  }
  // transformers' longrope attention factor: the config's, else sqrt(1 + ln(s) / ln(orig)).
  const double orig = double(original_context(c));
  const double scale = double(c.max_position) / orig;
  double attn = scale <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(scale) / std::log(orig));
  if (auto a = rs.find("attention_factor"); a != rs.end() && a->is_number()) attn = a->get<double>();
  out.attn_factor = float(attn);
  return std::optional<LongShortFactors>(std::move(out));
}

Result<std::optional<std::vector<float>>> rope_freq_factors(const arch::ArchConfig& c) {
  const ojson& rs = c.rope_scaling;
  if (!rs.is_object()) return std::optional<std::vector<float>>();
  auto num = [&](const char* k, double dflt) {
    auto it = rs.find(k);
    return it != rs.end() && it->is_number() ? it->get<double>() : dflt;
  };
  std::string type = rs.value("rope_type", rs.value("type", std::string()));
  const int64_t half = c.head_dim / 2;
  auto unsupported = [&](std::string why) -> Error {
    return make_error(ErrorCode::Unsupported, "rope_scaling {}: {}", type, why)
        .with_hint("llama.cpp's llama architecture takes one divisor per RoPE frequency "
                   "(rope_freqs.weight) or a linear/yarn factor");
  };
  if (type == "llama3") {
    // convert_hf_to_gguf (LlamaModel.generate_extra_tensors): frequencies in float32, then one
    // factor per frequency: 1 above the high-frequency cut, `factor` below the low one, and a
    // smooth blend between.
    const double factor = num("factor", 8.0), lo = num("low_freq_factor", 1.0),
                 hi = num("high_freq_factor", 4.0), old_ctx = num("original_max_position_embeddings", 8192.0);
    if (!(factor > 0) || !(hi > lo)) return unsupported("needs factor > 0 and high_freq_factor > low_freq_factor");
    const double lo_wl = old_ctx / lo, hi_wl = old_ctx / hi;
    std::vector<float> out(size_t(std::max<int64_t>(half, 0)));
    for (int64_t i = 0; i < half; ++i) {
      const float freq = 1.0f / std::pow(float(c.rope_theta), float(2 * i) / float(c.head_dim));
      const double wl = 2.0 * std::numbers::pi / double(freq);
      double r = 1.0;
      if (wl > lo_wl) r = factor;
      else if (wl >= hi_wl) {
        const double smooth = (old_ctx / wl - lo) / (hi - lo);
        r = 1.0 / ((1.0 - smooth) / factor + smooth);
      }
      out[size_t(i)] = float(r);
    }
    return std::optional<std::vector<float>>(std::move(out));
  }
  if (type == "longrope") {
    auto sf = rs.find("short_factor"), lf = rs.find("long_factor");
    if (sf == rs.end() || lf == rs.end() || !sf->is_array() || *sf != *lf)
      return unsupported("short_factor and long_factor differ");
    if (int64_t(sf->size()) != half) return unsupported(fmt::format("{} factors for head_dim {}", sf->size(), c.head_dim));
    const double orig = num("original_max_position_embeddings", double(c.max_position));
    const double implied = double(c.max_position) / orig <= 1.0 ? 1.0 : 0.0;
    if (num("attention_factor", implied) != 1.0) return unsupported("attention scaling is not 1");
    std::vector<float> out;
    for (const auto& v : *sf) {
      if (!v.is_number()) return unsupported("a factor is not a number");
      out.push_back(v.get<float>());
    }
    return std::optional<std::vector<float>>(std::move(out));
  }
  if (type == "dynamic" || type == "su")
    return unsupported("not expressible in GGUF for this architecture");
  return std::optional<std::vector<float>>();  // default, linear, yarn: keys or nothing
}

Result<arch::ArchConfig> arch_from_file(const File& f) {
  auto fail = [&](ErrorCode code, std::string msg, std::string hint = "") {
    return make_error(code, "{}", msg).with_path(f.path).with_hint(std::move(hint));
  };
  auto a = f.kv.get_string("general.architecture");
  if (!a) return fail(ErrorCode::NotFound, "general.architecture is missing");
  auto fam = arch::family_from_gguf_arch(*a);
  if (!fam)
    return fail(ErrorCode::Unsupported, fmt::format("architecture '{}' cannot be converted", *a),
                "run `modelconvert list architectures` for the families that convert");
  arch::ArchConfig c;
  c.family = *fam;
  c.model_type = std::string(arch::family_name(c.family));
  const std::string p = *a + ".";
  auto need = [&](const char* k) -> Result<int64_t> {
    auto v = f.kv.get_int(p + k);
    if (!v || *v <= 0) return fail(ErrorCode::NotFound, fmt::format("{}{} is missing or not positive", p, k));
    return *v;
  };
  c.hidden_size = MC_TRY(need("embedding_length"));
  c.num_layers = MC_TRY(need("block_count"));
  c.num_heads = MC_TRY(need("attention.head_count"));
  c.num_kv_heads = f.kv.get_int(p + "attention.head_count_kv").value_or(c.num_heads);
  c.intermediate_size = f.kv.get_int(p + "feed_forward_length").value_or(4 * c.hidden_size);
  c.max_position = f.kv.get_int(p + "context_length").value_or(2048);
  c.head_dim = f.kv.get_int(p + "attention.key_length").value_or(c.hidden_size / c.num_heads);
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0)
    return fail(ErrorCode::Corrupt, fmt::format("head_count_kv {} does not divide head_count {}",
                                                c.num_kv_heads, c.num_heads));
  if (auto lim = arch::check_limits(c, "GGUF metadata (as config.json names it)"); !lim) return std::move(lim).error().with_path(f.path);
  const arch::FamilyInfo& row = arch::family_info(c.family);
  if (row.decoder == arch::Decoder::GPT2) {
    c.norm_eps = f.kv.get_float(p + "attention.layer_norm_epsilon").value_or(1e-5);
    c.hidden_act = "gelu_new";
    c.tie_word_embeddings = true;
    c.qkv_bias = c.o_bias = c.mlp_bias = true;
  } else {
    c.norm_eps = f.kv.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-6);
    c.rope_theta = f.kv.get_float(p + "rope.freq_base").value_or(10000.0);
    c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
    c.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr || row.qkv_bias_always;
    c.o_bias = f.find_tensor("blk.0.attn_output.bias") != nullptr;
    c.mlp_bias = f.find_tensor("blk.0.ffn_up.bias") != nullptr;
    if (row.activation == arch::ActivationKey::GemmaEra) c.hidden_act = "gelu_pytorch_tanh";  // llama.cpp's GELU
    if (row.gguf_sliding_window_key)
      if (auto w = f.kv.get_int(p + "attention.sliding_window"); w && *w > 0) c.sliding_window = *w;
    if (row.gguf_rope_factors == arch::GgufRopeFactors::LongShort)
      c.original_max_position = f.kv.get_int(p + "rope.scaling.original_context_length");
    if (auto t = f.kv.get_string(p + "rope.scaling.type"); t && (*t == "linear" || *t == "yarn")) {
      ojson rs = ojson::object();
      rs["type"] = *t;
      rs["rope_type"] = *t;
      rs["factor"] = f.kv.get_float(p + "rope.scaling.factor").value_or(1.0);
      if (auto o = f.kv.get_int(p + "rope.scaling.original_context_length"))
        rs["original_max_position_embeddings"] = *o;
      c.rope_scaling = rs;
    }
    // Per-frequency divisors (Llama 3 style scaling) have no key of their own; as HF config
    // they are a longrope with equal short and long factors and no attention scaling, which
    // computes the same frequencies (base^(-2i/d) / factor_i).
    if (const TensorInfo* t = f.find_tensor("rope_freqs.weight")) {
      auto e = f.entry(*t);
      if (!e) return std::move(e).error().with_tensor(t->name).with_path(f.path);
      auto v = read_f32(*e);
      if (!v) return std::move(v).error().with_tensor(t->name).with_path(f.path);
      if (int64_t(v->size()) != c.head_dim / 2)
        return fail(ErrorCode::Corrupt, fmt::format("rope_freqs.weight has {} values, head_dim {} needs {}",
                                                    v->size(), c.head_dim, c.head_dim / 2));
      ojson rs = ojson::object();
      rs["rope_type"] = "longrope";
      rs["short_factor"] = *v;
      rs["long_factor"] = *v;
      rs["original_max_position_embeddings"] = c.max_position;
      rs["attention_factor"] = 1.0;
      c.rope_scaling = rs;
    }
    // Phi-3's longrope: the long and short factors as tensors, the rest as keys.
    const TensorInfo* lt = f.find_tensor("rope_factors_long.weight");
    const TensorInfo* st = f.find_tensor("rope_factors_short.weight");
    if (lt || st) {
      if (!lt || !st) return fail(ErrorCode::NotFound, "rope_factors_long.weight and rope_factors_short.weight come in pairs");
      ojson rs = ojson::object();
      rs["rope_type"] = "longrope";
      for (auto [t, key] : {std::pair{lt, "long_factor"}, std::pair{st, "short_factor"}}) {
        auto e = f.entry(*t);
        if (!e) return std::move(e).error().with_tensor(t->name).with_path(f.path);
        auto v = read_f32(*e);
        if (!v) return std::move(v).error().with_tensor(t->name).with_path(f.path);
        if (int64_t(v->size()) != c.head_dim / 2)
          return fail(ErrorCode::Corrupt, fmt::format("{} has {} values, head_dim {} needs {}", t->name, v->size(),
                                                      c.head_dim, c.head_dim / 2));
        rs[key] = *v;
      }
      rs["original_max_position_embeddings"] =
          f.kv.get_int(p + "rope.scaling.original_context_length").value_or(c.max_position);
      c.original_max_position = rs["original_max_position_embeddings"].get<int64_t>();
      if (auto a = f.kv.get_float(p + "rope.scaling.attn_factor")) rs["attention_factor"] = *a;
      c.rope_scaling = rs;
    }
  }
  if (row.mup) {
    c.scale_emb = f.kv.get_float(p + "embedding_scale").value_or(1.0);
    c.scale_depth = f.kv.get_float(p + "residual_scale").value_or(1.0) * std::sqrt(double(c.num_layers));
    const double logit = f.kv.get_float(p + "logit_scale").value_or(1.0);
    c.dim_model_base = logit > 0 ? double(c.hidden_size) / logit : 1.0;
  }
  // Vocabulary: the explicit key, else the embedding rows, else the token list.
  if (auto v = f.kv.get_int(p + "vocab_size"); v && *v > 0) c.vocab_size = *v;
  else if (const TensorInfo* t = f.find_tensor("token_embd.weight"); t && t->ne.size() == 2) c.vocab_size = t->ne[1];
  else if (const Value* toks = f.kv.get_array("tokenizer.ggml.tokens", ValueType::String)) c.vocab_size = int64_t(toks->size());
  if (auto b = f.kv.get_int("tokenizer.ggml.bos_token_id")) c.bos_token_id = *b;
  if (auto e = f.kv.get_int("tokenizer.ggml.eos_token_id")) c.eos_token_ids = {*e};
  if (auto pad = f.kv.get_int("tokenizer.ggml.padding_token_id")) c.pad_token_id = *pad;
  return c;
}

}  // namespace mc::gguf
