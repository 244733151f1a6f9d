// HF-form Model -> GGUF plan (formats.md §2.6-2.9), following convert_hf_to_gguf.py (c392e50):
// names per §2.8, q/k rows permuted for NORM-RoPE arches, GPT-2 Conv1D weights transposed and
// token_embd duplicated as output.weight, 1-D tensors / norms / biases / position_embd stored as
// F32 and the other weights in the output type. A llama-quantize file type picks each tensor's
// type with quant::choose_tensor_type in llama.cpp's tensor order (block number, then name),
// quantizing from the source values widened to f32 — i.e. what `convert_hf_to_gguf --outtype f32`
// followed by `llama-quantize` produces.
#include <algorithm>
#include <cctype>
#include <numeric>

#include "transforms/rows.h"
#include "formats/gguf/mapping.h"
#include "quant/ggml.h"

namespace mc::gguf {

using transforms::gather_rows;
using transforms::row_view;
using transforms::rows_as;
using transforms::RowSource;
using transforms::transposed;
namespace {

struct Item {
  std::string name;
  const TensorEntry* src = nullptr;
  RowSource rows;
  Shape shape;
  bool transformed = false;
};

// llama.cpp changes the special tokens of a vocabulary whose model name contains "phi-3"/"phi3"
// (llama-vocab.cpp) and fails to load when one of these tokens is missing.
constexpr std::string_view kPhi3NameTokens[] = {"</s>", "<unk>", "<s>", "<|endoftext|>"};

bool names_phi3(std::string_view name) {
  std::string lower(name);
  for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return lower.find("phi-3") != std::string::npos || lower.find("phi3") != std::string::npos;
}

}  // namespace

std::string safe_general_name(std::string name, const std::vector<std::string>& tokens, std::string* note) {
  if (!names_phi3(name)) return name;
  for (auto t : kPhi3NameTokens)
    if (std::find(tokens.begin(), tokens.end(), t) == tokens.end()) {
      std::string out;
      for (size_t i = 0; i < name.size(); ++i) {  // "phi3"/"phi-3" in any case -> "phi_3"
        std::string_view rest(name.data() + i, name.size() - i);
        auto lower3 = [&](size_t n) {
          std::string s(rest.substr(0, n));
          for (auto& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
          return s;
        };
        if (rest.size() >= 5 && lower3(5) == "phi-3") {
          out += std::string(rest.substr(0, 3)) + "_3";
          i += 4;
        } else if (rest.size() >= 4 && lower3(4) == "phi3") {
          out += std::string(rest.substr(0, 3)) + "_3";
          i += 3;
        } else {
          out += name[i];
        }
      }
      if (note)
        *note = fmt::format("general.name '{}' written as '{}': llama.cpp treats a name containing phi3/phi-3 "
                            "as Phi-3 and fails to load a vocabulary without the token {}",
                            name, out, t);
      return out;
    }
  return name;
}

namespace {

std::string model_name(const Model& m, const ToGgufOptions& opt) {
  if (!opt.name.empty()) return opt.name;
  std::string n;
  if (auto it = m.config.find("_name_or_path"); it != m.config.end() && it->is_string())
    n = it->get<std::string>();
  if (n.empty()) n = m.source_path;
  while (!n.empty() && n.back() == '/') n.pop_back();
  if (auto s = n.rfind('/'); s != n.npos) n = n.substr(s + 1);
  for (std::string_view ext : {".gguf", ".safetensors", ".bin"})
    if (n.ends_with(ext)) n.resize(n.size() - ext.size());
  return n.empty() ? "model" : n;
}

}  // namespace

Result<Plan> plan_from_model(const Model& m, const ToGgufOptions& opt) {
  auto cfg = arch::from_hf_config(m.config);
  if (!cfg) return std::move(cfg).error().with_path(m.source_path);
  const arch::ArchConfig& c = *cfg;
  auto a = gguf_arch_name(c.family);
  if (!a) {
    return make_error(ErrorCode::Unsupported, "model_type '{}' has no GGUF mapping", c.model_type)
        .with_hint("run `modelconvert list architectures` for the families GGUF takes");
  }

  const quant::FileType ft = opt.ftype;
  const bool quantized_file = is_quantized(quant::file_type_default_type(ft));

  Plan plan;
  plan.kv.set_string("general.architecture", std::string(*a));
  plan.kv.set_string("general.name", model_name(m, opt));
  put_arch_metadata(plan.kv, c, *a);
  plan.kv.set_u32("general.file_type", uint32_t(quant::file_type_id(ft)));
  if (quantized_file) plan.kv.set_u32("general.quantization_version", 2);

  std::vector<Item> items;
  // RoPE scalings without a key of their own travel as tensors, first in the file as
  // convert_hf_to_gguf writes them: Llama 3's per-frequency divisors, Phi-3's long/short factors.
  std::vector<TensorEntry> rope_tensors;
  const arch::FamilyInfo& row = arch::family_info(c.family);
  if (row.decoder != arch::Decoder::GPT2) {
    if (row.gguf_rope_factors == arch::GgufRopeFactors::LongShort) {
      auto ls = rope_long_short_factors(c);
      if (!ls) return std::move(ls).error().with_path(m.source_path);
      if (*ls) {
        const int64_t n = int64_t((*ls)->long_factors.size());
        rope_tensors.push_back(make_tensor_f32("rope_factors_long.weight", {n}, (*ls)->long_factors));
        rope_tensors.push_back(make_tensor_f32("rope_factors_short.weight", {n}, (*ls)->short_factors));
      }
    } else {
      auto factors = rope_freq_factors(c);
      if (!factors) return std::move(factors).error().with_path(m.source_path);
      if (*factors) rope_tensors.push_back(make_tensor_f32("rope_freqs.weight", {int64_t((*factors)->size())}, **factors));
    }
  }
  for (const auto& t : rope_tensors) {
    Item it;
    it.name = t.name;
    it.src = &t;
    it.shape = t.shape;
    it.rows = MC_TRY(row_view(t));
    items.push_back(std::move(it));
  }
  for (const auto& e : m.tensors) {
    auto g = gguf_tensor_name(c.family, e.name);
    if (!g) {
      return make_error(ErrorCode::Unsupported, "no GGUF name for this {} tensor", c.model_type)
          .with_tensor(e.name)
          .with_hint("the checkpoint has tensors llama.cpp's architecture does not know");
    }
    if (g->empty()) continue;
    if (*g == "output.weight" && c.tie_word_embeddings) continue;  // llama.cpp reuses token_embd
    Item it;
    it.name = *g;
    it.src = &e;
    it.shape = e.shape;
    const bool q = g->starts_with("blk.") && (g->ends_with(".attn_q.weight") || g->ends_with(".attn_q.bias"));
    const bool k = g->starts_with("blk.") && (g->ends_with(".attn_k.weight") || g->ends_with(".attn_k.bias"));
    auto with_tensor = [&](Error err) { return std::move(err).with_tensor(e.name); };
    if (needs_qk_permutation(c.family) && (q || k)) {
      if (e.shape.empty()) return with_tensor(make_error(ErrorCode::Mismatch, "q/k tensor is 0-d"));
      auto rs = row_view(e, e.shape[0]);
      if (!rs) return with_tensor(std::move(rs).error());
      auto perm = transforms::qk_row_perm(e.shape[0], q ? c.num_heads : c.num_kv_heads,
                                          transforms::QkDirection::HfToPairs);
      if (!perm) return with_tensor(std::move(perm).error());
      it.rows = gather_rows(*rs, std::move(*perm));
      it.transformed = true;
    } else if (is_conv1d_weight(c.family, *g)) {
      auto rs = transposed(e);  // Conv1D stores [in, out]
      if (!rs) return with_tensor(std::move(rs).error());
      it.rows = *rs;
      it.shape = {e.shape[1], e.shape[0]};
      it.transformed = true;
    } else if (row.norm_plus_one && g->ends_with("_norm.weight")) {
      // convert_hf_to_gguf (GemmaModel) stores RMSNorm weights as 1 + w, added in the dtype it
      // holds the tensor in (f16 stays f16, anything else is f32), then written as F32.
      auto rs = row_view(e);
      if (!rs) return with_tensor(std::move(rs).error());
      const bool f16 = e.dtype == DType::F16;
      it.rows = transforms::map_f32(*rs, [f16](float* v, int64_t n) {
        for (int64_t i = 0; i < n; ++i) v[i] = f16 ? f16_to_f32(f32_to_f16(v[i] + 1.0f)) : v[i] + 1.0f;
      });
      it.transformed = true;
    } else {
      auto rs = row_view(e);
      if (!rs) return with_tensor(std::move(rs).error());
      it.rows = *rs;
    }
    items.push_back(it);
    if (row.gguf_output_copy && *g == "token_embd.weight") {
      it.name = "output.weight";
      items.push_back(std::move(it));
    }
  }

  // Output types (quant/ owns the policy: convert_hf_to_gguf's F32 rule, then llama-quantize's
  // mixture). llama-quantize's counters follow its tensor order: sort a copy of the indices.
  std::vector<size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  if (quantized_file) {
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
      return quant::quant_order_less(items[x].name, items[y].name);
    });
  }
  bool has_output = false;
  std::vector<std::string> names;
  for (const auto& it : items) {
    has_output |= it.name == "output.weight";
    names.push_back(it.name);
  }
  quant::QuantState qs = quant::make_quant_state(names, c.num_layers);
  for (size_t idx : order) {
    Item& it = items[idx];
    quant::TensorQuantContext ctx;
    ctx.gguf_name = it.name;
    ctx.n_dims = int64_t(it.shape.size());
    ctx.row_len = it.shape.empty() ? 1 : it.shape.back();
    ctx.n_layers = c.num_layers;
    ctx.n_heads = c.num_heads;
    ctx.n_kv_heads = c.num_kv_heads;
    ctx.arch = std::string(*a);
    ctx.output_tied = !has_output;
    const DType out = quant::gguf_tensor_type(ft, ctx, qs);
    TensorEntry te;
    te.name = it.name;
    te.shape = it.shape;
    te.dtype = out;
    if (!it.transformed && it.src->dtype == out) {
      te.data = it.src->data;  // zero-copy pass-through
    } else {
      auto d = rows_as(it.rows, out);
      if (!d) return std::move(d).error().with_tensor(it.src->name);
      te.data = *d;
    }
    plan.tensors.push_back(std::move(te));
  }
  return plan;
}

}  // namespace mc::gguf
