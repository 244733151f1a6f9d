// llama-quantize's file types and per-tensor type choice (formats.md §2.6), written from
// src/llama-quant.cpp (llama_tensor_get_type, llama_tensor_get_type_impl, tensor_type_fallback,
// tensor_allows_quantization, llama_ftype_get_default_type) of llama.cpp commit
// 80fb11ac73e66d89eae2c6a91d8a77428fa733ed (the one node-llama-cpp 3.21.1 bundles). Only the
// file types in FileType are covered; no imatrix, no --pure, no user overrides.
#include <algorithm>
#include <array>
#include <cctype>

#include "quant/ggml.h"

namespace mc::quant {
namespace {

struct FileTypeInfo {
  FileType ft;
  std::string_view name;
  int id;              // LLAMA_FTYPE_* (general.file_type)
  DType default_type;  // llama_ftype_get_default_type
};

constexpr std::array<FileTypeInfo, size_t(FileType::Count)> kFileTypes = {{
    {FileType::F32, "f32", 0, DType::F32},
    {FileType::F16, "f16", 1, DType::F16},
    {FileType::BF16, "bf16", 32, DType::BF16},
    {FileType::Q8_0, "q8_0", 7, DType::Q8_0},
    {FileType::Q4_0, "q4_0", 2, DType::Q4_0},
    {FileType::Q4_1, "q4_1", 3, DType::Q4_1},
    {FileType::Q5_0, "q5_0", 8, DType::Q5_0},
    {FileType::Q5_1, "q5_1", 9, DType::Q5_1},
    {FileType::Q2_K, "q2_k", 10, DType::Q2_K},
    {FileType::Q3_K_S, "q3_k_s", 11, DType::Q3_K},
    {FileType::Q3_K_M, "q3_k_m", 12, DType::Q3_K},
    {FileType::Q3_K_L, "q3_k_l", 13, DType::Q3_K},
    {FileType::Q4_K_S, "q4_k_s", 14, DType::Q4_K},
    {FileType::Q4_K_M, "q4_k_m", 15, DType::Q4_K},
    {FileType::Q5_K_S, "q5_k_s", 16, DType::Q5_K},
    {FileType::Q5_K_M, "q5_k_m", 17, DType::Q5_K},
    {FileType::Q6_K, "q6_k", 18, DType::Q6_K},
}};

const FileTypeInfo& info(FileType f) { return kFileTypes[size_t(f)]; }

constexpr bool file_types_in_enum_order() {
  for (size_t i = 0; i < kFileTypes.size(); ++i)
    if (size_t(kFileTypes[i].ft) != i) return false;
  return true;
}
static_assert(file_types_in_enum_order(), "kFileTypes rows must follow the FileType enum order");

constexpr auto kFileTypeNames = [] {
  std::array<std::string_view, size_t(FileType::Count)> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = kFileTypes[i].name;
  return out;
}();

// tensor_get_category: broad roles, tested in this order (attn_qkv before attn_v, ...).
enum class Category { Output, TokenEmbd, AttnQkv, AttnKvB, AttnV, AttnK, AttnQ, AttnOutput,
                      FfnUp, FfnGate, FfnDown, Other };

bool contains(std::string_view s, std::string_view sub) { return s.find(sub) != s.npos; }

Category category_of(std::string_view name) {
  if (name == "output.weight") return Category::Output;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::TokenEmbd;
  static constexpr std::pair<std::string_view, Category> kBySubstring[] = {
      {"attn_qkv.weight", Category::AttnQkv},       {"attn_kv_b.weight", Category::AttnKvB},
      {"attn_v.weight", Category::AttnV},           {"attn_k.weight", Category::AttnK},
      {"attn_q.weight", Category::AttnQ},           {"attn_output.weight", Category::AttnOutput},
      {"ffn_up", Category::FfnUp},                  {"ffn_gate", Category::FfnGate},
      {"ffn_down", Category::FfnDown},
  };
  for (const auto& [sub, cat] : kBySubstring)
    if (contains(name, sub)) return cat;
  return Category::Other;
}

bool is_attn_v_like(Category c) {
  return c == Category::AttnV || c == Category::AttnQkv || c == Category::AttnKvB;
}

// Substrings that keep a tensor out of quantization (tensor_allows_quantization); exact names
// are checked separately.
constexpr std::string_view kNeverQuantized[] = {
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
    "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
    "indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
    "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
    "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
    "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd",
    "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook",
    "mm.a.code_embd"};

// Tensors convert_hf_to_gguf always writes as F32 (and llama-quantize then leaves alone).
bool stored_as_f32(const TensorQuantContext& c) {
  const std::string_view n = c.gguf_name;
  return c.n_dims < 2 || !n.ends_with("weight") || contains(n, "_norm.weight") ||
         contains(n, "ffn_gate_inp.weight") || n == "position_embd.weight" ||
         n == "token_types.weight" || contains(n, "ssm_conv1d");
}

bool use_more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// sscanf(name, "blk.%d.", &layer): -1 when the name has no block number.
int64_t block_number(std::string_view name) {
  if (!name.starts_with("blk.")) return -1;
  size_t p = 4;
  bool neg = false;
  if (p < name.size() && (name[p] == '-' || name[p] == '+')) neg = name[p++] == '-';
  if (p >= name.size() || !std::isdigit(static_cast<unsigned char>(name[p]))) return -1;
  int64_t v = 0;
  while (p < name.size() && std::isdigit(static_cast<unsigned char>(name[p])) && v < (1 << 30))
    v = v * 10 + (name[p++] - '0');
  return neg ? -v : v;
}

// LLM_TYPE_70B for the arches whose loaders assign it (models/{llama,qwen2,olmo,deci,jais2}.cpp).
bool is_70b(const TensorQuantContext& c) {
  if (c.arch == "llama") return c.n_layers == 80 && c.n_experts != 8 && c.n_heads != c.n_kv_heads;
  if (c.arch == "qwen2" || c.arch == "olmo" || c.arch == "deci") return c.n_layers == 80;
  if (c.arch == "jais2") return c.n_layers == 68;
  return false;
}

// ggml_blck_size for the types the rules can produce.
int64_t block_elems(DType t) { return dtype_info(t).block_elems; }

// llama_tensor_get_type_impl for the file types we support (the IQ/TQ/MXFP4 branches cannot
// trigger). `t` starts as the ftype's default type.
DType mixture_type(FileType ft, DType t, Category cat, const TensorQuantContext& c, QuantState& s) {
  const bool falcon = c.arch == "falcon";
  // hparams.n_gqa(); a missing KV head count means no GQA (the loader defaults it to n_head).
  const int64_t n_kv = c.n_kv_heads > 0 ? c.n_kv_heads : c.n_heads;
  const int64_t gqa = n_kv > 0 ? c.n_heads / n_kv : 0;
  const int64_t n_expert = std::max<int64_t>(1, c.n_experts);
  // Layer index of an ffn tensor: the running counter, or the block number for MoE models
  // (expert tensors are not in layer order there).
  auto layer = [&](int64_t counter) { return n_expert > 1 ? block_number(c.gguf_name) : counter; };

  if (cat == Category::Output || (c.output_tied && cat == Category::TokenEmbd)) {
    if (falcon || c.row_len % block_elems(t) != 0) return DType::Q8_0;
    return t != DType::Q8_0 ? DType::Q6_K : t;
  }
  if (cat == Category::TokenEmbd) return t;  // untied: the default type
  if (is_attn_v_like(cat)) {
    if (s.n_attention_wv == 0) s.n_attention_wv = c.n_layers;  // state not prepared: dense guess
    const int64_t i = s.i_attention_wv, n = s.n_attention_wv;
    if (ft == FileType::Q2_K) t = gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (ft == FileType::Q3_K_M) t = i < 2 ? DType::Q5_K : DType::Q4_K;
    else if (ft == FileType::Q3_K_L) t = DType::Q5_K;
    else if ((ft == FileType::Q4_K_M || ft == FileType::Q5_K_M) && use_more_bits(i, n)) t = DType::Q6_K;
    else if (ft == FileType::Q4_K_S && i < 4) t = DType::Q5_K;
    if (is_70b(c) && (t == DType::Q3_K || t == DType::Q4_K)) t = DType::Q5_K;
    if (c.n_experts == 8) t = DType::Q8_0;
    ++s.i_attention_wv;
    return t;
  }
  switch (cat) {
    case Category::AttnK:
      return c.n_experts == 8 ? DType::Q8_0 : t;
    case Category::FfnDown: {
      if (s.n_ffn_down == 0) s.n_ffn_down = c.n_layers;
      const int64_t i = layer(s.i_ffn_down), n = s.n_ffn_down;
      if (ft == FileType::Q2_K) t = DType::Q3_K;
      else if (ft == FileType::Q3_K_M)
        // Non-Falcon models get Q4_K for every layer past n/16 (the use_more_bits test only
        // matters for Falcon).
        t = i < n / 16 ? DType::Q5_K : (!falcon || use_more_bits(i, n)) ? DType::Q4_K : DType::Q3_K;
      else if (ft == FileType::Q3_K_L) t = falcon ? DType::Q4_K : DType::Q5_K;
      else if (ft == FileType::Q4_K_M) {
        if (falcon)
          t = i < n / 16 ? DType::Q6_K : use_more_bits(i, n) ? DType::Q5_K : DType::Q4_K;
        else if (use_more_bits(i, n))
          t = DType::Q6_K;
      } else if (ft == FileType::Q5_K_M && use_more_bits(i, n)) t = DType::Q6_K;
      else if (ft == FileType::Q4_K_S && !falcon && i < n / 8) t = DType::Q5_K;
      ++s.i_ffn_down;
      return t;
    }
    case Category::AttnOutput:
      if (falcon) return ft == FileType::Q3_K_L ? DType::Q4_K : t;
      if (c.n_experts == 8) {
        const bool bump = ft == FileType::Q2_K || ft == FileType::Q3_K_S ||
                          ft == FileType::Q3_K_M || ft == FileType::Q4_K_S || ft == FileType::Q4_K_M;
        return bump ? DType::Q5_K : t;
      }
      if (ft == FileType::Q2_K) return DType::Q3_K;
      if (ft == FileType::Q3_K_M) return DType::Q4_K;
      if (ft == FileType::Q3_K_L) return DType::Q5_K;
      return t;
    case Category::FfnGate:
      if (s.n_ffn_gate == 0) s.n_ffn_gate = c.n_layers;
      ++s.i_ffn_gate;  // only IQ3_XS uses the index
      return t;
    case Category::FfnUp:
      if (s.n_ffn_up == 0) s.n_ffn_up = c.n_layers;
      ++s.i_ffn_up;
      return t;
    default:
      return t;
  }
}

// tensor_type_fallback: a type whose block does not divide the row is swapped for a 32-block one,
// and F16 when even that does not fit.
DType fallback_type(DType t, int64_t row_len) {
  if (row_len % block_elems(t) == 0) return t;
  DType r = t;
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K: r = DType::Q4_0; break;
    case DType::Q4_K: r = DType::Q5_0; break;
    case DType::Q5_K: r = DType::Q5_1; break;
    case DType::Q6_K: r = DType::Q8_0; break;
    default: break;  // already a 32-block type
  }
  return row_len % block_elems(r) == 0 ? r : DType::F16;
}

}  // namespace

std::string_view file_type_name(FileType f) {
  return f < FileType::Count ? info(f).name : std::string_view("?");
}

std::span<const std::string_view> file_type_names() { return kFileTypeNames; }

std::optional<FileType> file_type_from_name(std::string_view name) {
  std::string lower(name);
  for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  for (const auto& e : kFileTypes)
    if (e.name == lower) return e.ft;
  return std::nullopt;
}

std::optional<FileType> file_type_from_id(int id) {
  for (const auto& e : kFileTypes)
    if (e.id == id) return e.ft;
  return std::nullopt;
}

int file_type_id(FileType f) { return f < FileType::Count ? info(f).id : -1; }

DType file_type_default_type(FileType f) {
  return f < FileType::Count ? info(f).default_type : DType::F32;
}

bool tensor_allows_quantization(const TensorQuantContext& c) {
  const std::string_view n = c.gguf_name;
  if (c.n_dims < 2 || !n.ends_with("weight")) return false;
  for (const auto sub : kNeverQuantized)
    if (contains(n, sub)) return false;
  return n != "position_embd.weight" && n != "token_types.weight";
}

QuantState make_quant_state(std::span<const std::string> gguf_names, int64_t n_layers) {
  QuantState s;
  for (const auto& n : gguf_names)
    if (is_attn_v_like(category_of(n))) ++s.n_attention_wv;
  s.n_ffn_down = s.n_ffn_gate = s.n_ffn_up = n_layers;
  return s;
}

bool quant_order_less(std::string_view a, std::string_view b) {
  const int64_t la = block_number(a), lb = block_number(b);
  if (la != lb) return la < lb;
  return a < b;
}

std::optional<FileType> file_type_for_float(DType t) {
  for (FileType f : {FileType::F32, FileType::F16, FileType::BF16})
    if (info(f).default_type == t) return f;
  return std::nullopt;
}

DType gguf_tensor_type(FileType ft, const TensorQuantContext& ctx, QuantState& state) {
  if (stored_as_f32(ctx)) return DType::F32;
  const DType def = file_type_default_type(ft);
  if (!is_quantized(def)) return def;
  return choose_tensor_type(ft, ctx, state);
}

DType choose_tensor_type(FileType ft, const TensorQuantContext& ctx, QuantState& state) {
  const DType def = file_type_default_type(ft);
  if (!tensor_allows_quantization(ctx)) {
    // llama-quantize keeps the input's type: F32 for what convert_hf_to_gguf stores as F32, else
    // the float type of the source file (taken as F16 for quantized file types).
    if (stored_as_f32(ctx)) return DType::F32;
    return is_quantized(def) ? DType::F16 : def;
  }
  if (!is_quantized(def)) return def;
  return fallback_type(mixture_type(ft, def, category_of(ctx.gguf_name), ctx, state), ctx.row_len);
}

}  // namespace mc::quant
