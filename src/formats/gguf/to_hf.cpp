// GGUF file -> HF-form Model: the inverse of to_gguf.cpp. config.json is rebuilt from the
// {arch}.* keys with arch::to_hf_config; q/k rows go back to HF's rotate-half order; GPT-2's
// attention/MLP weights go back to Conv1D [in, out]; output.weight is dropped when it only
// duplicates token_embd (GPT-2) and rope_freqs.weight becomes the config's rope_scaling.
// Block-quantized tensors are dequantized to F32 lazily, row chunk by row chunk.
#include "transforms/rows.h"
#include "formats/gguf/mapping.h"

namespace mc::gguf {

using transforms::gather_rows;
using transforms::row_view;
using transforms::rows_as;
using transforms::RowSource;
using transforms::transposed;

Result<Model> model_from_file(const File& f) {
  arch::ArchConfig c = MC_TRY(arch_from_file(f));
  Model m;
  m.source_format = "gguf";
  m.source_path = f.path;

  bool all_f16 = true, all_bf16 = true;
  for (const auto& t : f.tensors) {
    if (t.ne.size() < 2) continue;
    all_f16 &= t.ggml_type == 1;
    all_bf16 &= t.ggml_type == 30;
  }
  c.torch_dtype = all_f16 ? "float16" : all_bf16 ? "bfloat16" : "float32";

  for (const auto& t : f.tensors) {
    auto fail = [&](Error e) { return std::move(e).with_tensor(t.name).with_path(f.path); };
    if (t.name == "rope_freqs.weight" || t.name == "rope_factors_long.weight" || t.name == "rope_factors_short.weight")
      continue;  // in the config's rope_scaling
    if (arch::family_info(c.family).gguf_output_copy && t.name == "output.weight") continue;
    auto hf = hf_tensor_name(c.family, t.name);
    if (!hf)
      return fail(make_error(ErrorCode::Unsupported, "no HF name for this {} tensor", c.model_type));
    auto e = f.entry(t);
    if (!e) return fail(std::move(e).error());
    const bool q = t.name.ends_with(".attn_q.weight") || t.name.ends_with(".attn_q.bias");
    const bool k = t.name.ends_with(".attn_k.weight") || t.name.ends_with(".attn_k.bias");
    const bool conv1d = is_conv1d_weight(c.family, t.name);
    TensorEntry out;
    out.name = *hf;
    out.shape = e->shape;
    out.dtype = is_quantized(e->dtype) ? DType::F32 : e->dtype;
    if (is_quantized(e->dtype)) {
      const auto& qi = dtype_info(e->dtype);
      out.stored_bits = 8.0 * double(qi.block_bytes) / double(qi.block_elems);
    }
    std::optional<RowSource> rows;
    if (needs_qk_permutation(c.family) && (q || k)) {
      auto rs = row_view(*e, e->shape.empty() ? 1 : e->shape[0]);
      if (!rs) return fail(std::move(rs).error());
      auto perm = transforms::qk_row_perm(rs->rows, q ? c.num_heads : c.num_kv_heads,
                                          transforms::QkDirection::PairsToHf);
      if (!perm) return fail(std::move(perm).error());
      rows = gather_rows(*rs, std::move(*perm));
    } else if (arch::family_info(c.family).norm_plus_one && t.name.ends_with("_norm.weight")) {
      // Gemma: GGUF stores 1 + w (to_gguf.cpp); w = stored - 1 in f32 is exact for bf16 sources.
      auto rs = row_view(*e);
      if (!rs) return fail(std::move(rs).error());
      rows = transforms::map_f32(*rs, [](float* v, int64_t n) {
        for (int64_t i = 0; i < n; ++i) v[i] -= 1.0f;
      });
      out.dtype = DType::F32;
    } else if (conv1d) {
      auto rs = transposed(*e);
      if (!rs) return fail(std::move(rs).error());
      rows = *rs;
      out.shape = {e->shape[1], e->shape[0]};
      out.dtype = rs->dtype;
    } else if (is_quantized(e->dtype)) {
      auto rs = row_view(*e);
      if (!rs) return fail(std::move(rs).error());
      rows = *rs;
    }
    if (rows) {
      auto d = rows_as(*rows, out.dtype);
      if (!d) return fail(std::move(d).error());
      out.data = *d;
    } else {
      out.data = e->data;
    }
    m.tensors.put(std::move(out));
  }
  m.set_config(arch::to_hf_config(c));
  // GGUF strings need not be UTF-8 (general.name); config.json gets U+FFFD for what is not.
  m.config_text = m.config.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
  return m;
}

}  // namespace mc::gguf
