// Names, layout and the row gatherer of the Megatron engine (formats.md §9.1-§9.5).
#include "formats/megatron/layout.h"

#include <algorithm>
#include <charconv>
#include <span>

#include <fmt/format.h>

namespace mc::megatron {

std::string_view naming_name(Naming n) { return n == Naming::Legacy ? "legacy" : "mcore"; }

int64_t padded_vocab_size(int64_t vocab, int64_t divisible_by, int tp) {
  const int64_t m = std::max<int64_t>(1, divisible_by) * std::max(1, tp);
  return (vocab + m - 1) / m * m;
}

std::string iter_dir_name(int64_t iteration) {
  return iteration < 0 ? std::string("release") : fmt::format("iter_{:07d}", iteration);
}

std::string rank_dir_name(int tp_rank, int pp_rank, int pp) {
  return pp > 1 ? fmt::format("mp_rank_{:02d}_{:03d}", tp_rank, pp_rank) : fmt::format("mp_rank_{:02d}", tp_rank);
}

namespace {

struct SuffixRow {
  std::string_view suffix;
  Part part;
};

// Per-layer suffixes, both styles; the first entry of each part per style is what we write.
constexpr SuffixRow kLegacyLayer[] = {
    {"input_norm.weight", Part::InNorm},
    {"self_attention.query_key_value.weight", Part::Qkv},
    {"self_attention.query_key_value.bias", Part::QkvBias},
    {"self_attention.dense.weight", Part::Proj},
    {"post_attention_norm.weight", Part::PostNorm},
    {"mlp.dense_h_to_4h.weight", Part::Fc1},
    {"mlp.dense_4h_to_h.weight", Part::Fc2},
    // Names used before Sept 2023.
    {"input_layernorm.weight", Part::InNorm},
    {"post_attention_layernorm.weight", Part::PostNorm},
};
constexpr SuffixRow kMcoreLayer[] = {
    {"input_layernorm.weight", Part::InNorm},
    {"self_attention.linear_qkv.weight", Part::Qkv},
    {"self_attention.linear_qkv.bias", Part::QkvBias},
    {"self_attention.linear_proj.weight", Part::Proj},
    // qk_layernorm (local and Transformer Engine specs name them alike).
    {"self_attention.q_layernorm.weight", Part::QNorm},
    {"self_attention.k_layernorm.weight", Part::KNorm},
    {"pre_mlp_layernorm.weight", Part::PostNorm},
    {"mlp.linear_fc1.weight", Part::Fc1},
    {"mlp.linear_fc2.weight", Part::Fc2},
    // Transformer Engine spec: the norms are fused into the following linear layer.
    {"self_attention.linear_qkv.layer_norm_weight", Part::InNorm},
    {"mlp.linear_fc1.layer_norm_weight", Part::PostNorm},
};

std::string_view layer_suffix(Naming n, Part p) {
  const auto rows = n == Naming::Legacy ? std::span<const SuffixRow>(kLegacyLayer) : std::span<const SuffixRow>(kMcoreLayer);
  for (const auto& r : rows)
    if (r.part == p) return r.suffix;
  return {};
}

bool parse_layer(std::string_view key, std::string_view prefix, int64_t* layer, std::string_view* rest) {
  if (!key.starts_with(prefix)) return false;
  key.remove_prefix(prefix.size());
  const auto dot = key.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  int64_t v = 0;
  const auto r = std::from_chars(key.data(), key.data() + dot, v);
  if (r.ec != std::errc() || r.ptr != key.data() + dot || v < 0) return false;
  *layer = v;
  *rest = key.substr(dot + 1);
  return true;
}

}  // namespace

bool has_part(Naming n, Part p) {
  switch (p) {
    case Part::Embedding:
    case Part::Output:
    case Part::OutputCopy:
    case Part::FinalNorm: return true;
    default: return !layer_suffix(n, p).empty();
  }
}

std::string megatron_key(Naming n, Part p, int64_t l) {
  if (n == Naming::Legacy) {
    switch (p) {
      case Part::Embedding: return "language_model.embedding.word_embeddings.weight";
      case Part::Output: return "language_model.output_layer.weight";
      case Part::OutputCopy: return "word_embeddings_for_head.weight";
      case Part::FinalNorm: return "language_model.encoder.final_norm.weight";
      default: return fmt::format("language_model.encoder.layers.{}.{}", l, layer_suffix(n, p));
    }
  }
  switch (p) {
    case Part::Embedding: return "embedding.word_embeddings.weight";
    case Part::Output:
    case Part::OutputCopy: return "output_layer.weight";
    case Part::FinalNorm: return "decoder.final_layernorm.weight";
    default: return fmt::format("decoder.layers.{}.{}", l, layer_suffix(n, p));
  }
}

Result<std::optional<LocalName>> parse_megatron_key(std::string_view key, Naming* seen) {
  using R = std::optional<LocalName>;
  if (key.ends_with("_extra_state")) return R{};  // Transformer Engine FP8 metadata
  auto global = [&](Naming n, Part p) -> Result<R> {
    if (seen) *seen = n;
    return R{LocalName{p, -1}};
  };
  if (key == "language_model.embedding.word_embeddings.weight") return global(Naming::Legacy, Part::Embedding);
  if (key == "language_model.output_layer.weight") return global(Naming::Legacy, Part::Output);
  if (key == "word_embeddings_for_head.weight") return global(Naming::Legacy, Part::OutputCopy);
  for (std::string_view enc : {"language_model.encoder.", "language_model.transformer."})
    for (std::string_view fin : {"final_norm.weight", "final_layernorm.weight"})
      if (key.size() == enc.size() + fin.size() && key.starts_with(enc) && key.ends_with(fin))
        return global(Naming::Legacy, Part::FinalNorm);
  if (key == "embedding.word_embeddings.weight") return global(Naming::Mcore, Part::Embedding);
  if (key == "output_layer.weight") return global(Naming::Mcore, Part::Output);
  if (key == "decoder.final_layernorm.weight" || key == "decoder.final_norm.weight")
    return global(Naming::Mcore, Part::FinalNorm);

  int64_t layer = -1;
  std::string_view rest;
  std::optional<Naming> style;
  if (parse_layer(key, "language_model.encoder.layers.", &layer, &rest) ||
      parse_layer(key, "language_model.transformer.layers.", &layer, &rest))
    style = Naming::Legacy;
  else if (parse_layer(key, "decoder.layers.", &layer, &rest))
    style = Naming::Mcore;
  if (style) {
    const auto& rows = *style == Naming::Legacy ? std::span<const SuffixRow>(kLegacyLayer)
                                                : std::span<const SuffixRow>(kMcoreLayer);
    for (const auto& r : rows)
      if (r.suffix == rest) {
        if (seen) *seen = *style;
        return R{LocalName{r.part, layer}};
      }
  }
  return make_error(ErrorCode::Unsupported, "unknown Megatron state-dict key")
      .with_tensor(std::string(key))
      .with_hint(
          "only dense GPT (Llama-like) models without linear biases are supported (no MoE, no learned "
          "positions)");
}

namespace {

class GatherData final : public TensorData {
 public:
  GatherData(uint64_t rows, uint64_t row_bytes, std::function<void(uint64_t, std::vector<Segment>&)> map,
             std::vector<TensorDataPtr> keep, std::function<void(uint64_t, std::vector<Segment>&)> release_map)
      : rows_(rows), row_bytes_(row_bytes), map_(std::move(map)), release_map_(std::move(release_map)),
        keep_(std::move(keep)) {}

  Status read(uint64_t offset, std::span<std::byte> dst) const override {
    if (row_bytes_ == 0) return {};
    if (offset + dst.size() > rows_ * row_bytes_)
      return make_error(ErrorCode::Internal, "read past the end of a gathered tensor ({} + {} > {})", offset,
                        dst.size(), rows_ * row_bytes_);
    std::vector<Segment> segs;
    uint64_t done = 0;
    while (done < dst.size()) {
      const uint64_t at = offset + done;
      const uint64_t row = at / row_bytes_;
      uint64_t skip = at % row_bytes_;
      segs.clear();
      map_(row, segs);
      for (const Segment& s : segs) {
        if (done == dst.size()) break;
        if (skip >= s.len) {
          skip -= s.len;
          continue;
        }
        const uint64_t n = std::min(s.len - skip, dst.size() - done);
        MC_CHECK(s.src->read(s.offset + skip, dst.subspan(done, n)));
        done += n;
        skip = 0;
      }
      if (skip != 0 || (at == offset + done))
        return make_error(ErrorCode::Internal, "row {} of a gathered tensor is shorter than {} bytes", row, row_bytes_);
    }
    return {};
  }

  // Rows are often shorter than a page and sources need not be page aligned, so the ranges are
  // merged per source before they are released (a mapping only drops whole pages).
  void release(uint64_t offset, uint64_t n) const override {
    if (row_bytes_ == 0) return;
    std::vector<Segment> segs;
    const auto& map = release_map_ ? release_map_ : map_;
    for (uint64_t row = offset / row_bytes_; row * row_bytes_ < offset + n && row < rows_; ++row) map(row, segs);
    std::sort(segs.begin(), segs.end(), [](const Segment& a, const Segment& b) {
      return a.src != b.src ? std::less<const TensorData*>()(a.src, b.src) : a.offset < b.offset;
    });
    for (size_t i = 0; i < segs.size();) {
      Segment run = segs[i++];
      while (i < segs.size() && segs[i].src == run.src && segs[i].offset <= run.offset + run.len) {
        run.len = std::max(run.len, segs[i].offset + segs[i].len - run.offset);
        ++i;
      }
      run.src->release(run.offset, run.len);
    }
  }

  uint64_t chunk_align() const override { return row_bytes_; }

 private:
  uint64_t rows_, row_bytes_;
  std::function<void(uint64_t, std::vector<Segment>&)> map_, release_map_;
  std::vector<TensorDataPtr> keep_;
};

}  // namespace

TensorDataPtr make_gather(uint64_t rows, uint64_t row_bytes, std::function<void(uint64_t, std::vector<Segment>&)> map,
                          std::vector<TensorDataPtr> keep_alive,
                          std::function<void(uint64_t, std::vector<Segment>&)> release_map) {
  return std::make_shared<GatherData>(rows, row_bytes, std::move(map), std::move(keep_alive), std::move(release_map));
}

}  // namespace mc::megatron
