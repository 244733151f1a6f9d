// HF-form Model -> GGUF plan (formats.md §2.6-2.9), following convert_hf_to_gguf.py (c392e50):
// names per §2.8, q/k rows permuted for NORM-RoPE arches, GPT-2 Conv1D weights transposed and
// token_embd duplicated as output.weight, 1-D tensors / norms / biases / position_embd stored as
// F32 and the other weights in the output type. A llama-quantize file type picks each tensor's
// type with quant::choose_tensor_type in llama.cpp's tensor order (block number, then name),
// quantizing from the source values widened to f32 — i.e. what `convert_hf_to_gguf --outtype f32`
// followed by `llama-quantize` produces.
#include <algorithm>
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
  // Llama 3 style RoPE scaling travels as a tensor, first in the file as convert_hf_to_gguf
  // writes it.
  std::optional<TensorEntry> rope_freqs;
  const arch::FamilyInfo& row = arch::family_info(c.family);
  if (row.decoder != arch::Decoder::GPT2) {
    auto factors = rope_freq_factors(c);
    if (!factors) return std::move(factors).error().with_path(m.source_path);
    if (*factors) {
      rope_freqs = make_tensor_f32("rope_freqs.weight", {int64_t((*factors)->size())}, **factors);
      Item it;
      it.name = rope_freqs->name;
      it.src = &*rope_freqs;
      it.shape = rope_freqs->shape;
      it.rows = MC_TRY(row_view(*rope_freqs));
      items.push_back(std::move(it));
    }
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
