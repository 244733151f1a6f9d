// Joins the rank files of a Megatron checkpoint into one HF-form Model (formats.md §9.4-§9.5):
// each rank tensor is shape-checked against what args imply, then every HF tensor becomes a lazy
// gather over the mapped rank files. Also: the true vocabulary size (args -> --vocab-size ->
// tokenizer), config.json reconstruction, tokenizer files carried, and validate/describe.
#include <map>

#include "arch/config.h"
#include "formats/megatron/megatron.h"
#include "formats/megatron/reader_impl.h"
#include "formats/megatron/vocab.h"
#include "formats/torch/torch_io.h"
#include "io/mapped_file.h"
#include "io/probe.h"

namespace mc::megatron {

namespace {

struct Rank {
  torch::TorchFile file;
  std::map<std::pair<int, int64_t>, const TensorEntry*> parts;  // (Part, local layer) -> tensor
};


Result<ojson> read_metadata(const Layout& L) {
  const fs::path p = L.root / "metadata.json";
  std::error_code ec;
  if (!L.single_file || !fs::exists(p, ec)) return ojson::object();
  auto text = MC_TRY(io::read_text_file(p.string(), 16u << 20));
  auto j = ojson::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(ErrorCode::Corrupt, "metadata.json is not a JSON object").with_path(p.string());
  if (auto s = j.find("sharded_backend"); s != j.end())
    return make_error(ErrorCode::Unsupported, "metadata.json names a distributed checkpoint (sharded_backend {})",
                      s->dump())
        .with_path(p.string())
        .with_hint("convert it to the torch format first with Megatron's `--ckpt-convert-format torch`");
  if (auto a = j.find("args"); a != j.end() && a->is_object()) return ojson(*a);
  return j;
}

}  // namespace

Result<ReadOutcome> read_checkpoint(const fs::path& path, const formats::ReadOptions& opt) {
  const Layout L = MC_TRY(find_layout(path));
  std::vector<std::shared_ptr<Rank>> ranks;
  for (const auto& f : L.files) {
    auto r = std::make_shared<Rank>();
    r->file = MC_TRY(torch::open_torch_file(f.string()));
    ranks.push_back(std::move(r));
  }
  const Value* root = ranks[0]->file.tree->root;
  ArgsView args;
  args.ns = root && root->kind == torch::Kind::Dict ? root->get("args") : nullptr;
  if (args.ns && args.ns->kind != torch::Kind::Object) args.ns = nullptr;
  args.meta = MC_TRY(read_metadata(L));
  if (root && root->get("model0"))
    return make_error(ErrorCode::Unsupported, "virtual pipeline stages (model0, model1, ...) are not supported")
        .with_path(L.files[0].string());
  Hyper h = MC_TRY(hyper_from_args(args, L, L.files[0]));
  if (auto it = root ? root->get("iteration") : nullptr; it && it->kind == torch::Kind::Int) h.iteration = it->i;

  // Map every rank's keys to parts; one naming style throughout.
  std::optional<Naming> style;
  for (size_t k = 0; k < ranks.size(); ++k) {
    for (const auto& e : ranks[k]->file.tensors) {
      Naming seen = Naming::Mcore;
      auto ln = MC_TRY([&]() -> Result<std::optional<LocalName>> {
        auto r = parse_megatron_key(e.name, &seen);
        if (!r) return std::move(r).error().with_path(L.files[k].string());
        return r;
      }());
      if (!ln) continue;
      if (style && *style != seen)
        return make_error(ErrorCode::Corrupt, "legacy and Megatron-Core names are mixed")
            .with_path(L.files[k].string())
            .with_tensor(e.name);
      style = seen;
      Part p = ln->part;
      if (p == Part::OutputCopy) p = h.untie ? Part::Output : Part::OutputCopy;
      if (!ranks[k]->parts.emplace(std::make_pair(int(p), ln->layer), &e).second && p != Part::OutputCopy)
        return make_error(ErrorCode::Corrupt, "two tensors map to the same part").with_path(L.files[k].string())
            .with_tensor(e.name);
    }
  }
  if (!style) return make_error(ErrorCode::NotFound, "no model tensors in the checkpoint").with_path(L.files[0].string());
  // q/k norms (qk_layernorm) are known by their tensors too: args of older savers may lack the key.
  for (const auto& r : ranks)
    for (const auto& [key, e] : r->parts)
      if (key.first == int(Part::QNorm) || key.first == int(Part::KNorm)) h.qk_norm = true;

  // Expected shapes per rank (formats.md §9.5).
  const int64_t hd = h.kv_channels, qpg = h.heads / h.groups, per = (qpg + 2) * hd, gpr = h.groups / h.tp;
  const int64_t per_stage = h.num_layers / h.pp, rpr = h.padded_vocab / h.tp, nf = h.ffn / h.tp;
  auto expect = [&](Part p) -> Shape {
    switch (p) {
      case Part::Embedding:
      case Part::Output: return {rpr, h.hidden};
      case Part::Qkv: return {gpr * per, h.hidden};
      case Part::QkvBias: return {gpr * per};
      case Part::Proj: return {h.hidden, h.heads * hd / h.tp};
      case Part::Fc1: return {2 * nf, h.hidden};
      case Part::Fc2: return {h.hidden, nf};
      case Part::QNorm:
      case Part::KNorm: return {hd};
      default: return {h.hidden};
    }
  };
  auto get = [&](int pr, int tr, Part p, int64_t local) -> Result<const TensorEntry*> {
    const size_t k = size_t(pr) * size_t(h.tp) + size_t(tr);
    auto it = ranks[k]->parts.find({int(p), local});
    if (it == ranks[k]->parts.end())
      return make_error(ErrorCode::NotFound, "the rank file lacks {} (tensor rank {}, pipeline rank {})",
                        megatron_key(*style, p, local), tr, pr)
          .with_path(L.files[k].string());
    const Shape want = expect(p);
    if (it->second->shape != want)
      return make_error(ErrorCode::Mismatch, "shape {} but args (TP={}, hidden {}, heads {}, groups {}, ffn {}, padded "
                                             "vocab {}) imply {}", shape_str(it->second->shape), h.tp, h.hidden,
                        h.heads, h.groups, h.ffn, h.padded_vocab, shape_str(want))
          .with_path(L.files[k].string())
          .with_tensor(it->second->name);
    const TensorEntry* first = ranks[size_t(pr) * size_t(h.tp)]->parts.count({int(p), local})
                                   ? ranks[size_t(pr) * size_t(h.tp)]->parts.at({int(p), local})
                                   : nullptr;
    if (first && first->dtype != it->second->dtype)
      return make_error(ErrorCode::Mismatch, "dtype {} differs from tensor rank 0's {}", dtype_name(it->second->dtype),
                        dtype_name(first->dtype))
          .with_path(L.files[k].string())
          .with_tensor(it->second->name);
    return it->second;
  };
  for (int pr = 0; pr < h.pp; ++pr)
    for (int tr = 0; tr < h.tp; ++tr) {
      const auto& parts = ranks[size_t(pr) * size_t(h.tp) + size_t(tr)]->parts;
      for (const auto& [key, e] : parts)
        if (key.second >= per_stage)
          return make_error(ErrorCode::Mismatch, "local layer {} but args give {} layers over {} stages", key.second,
                            h.num_layers, h.pp)
              .with_path(L.files[size_t(pr) * size_t(h.tp) + size_t(tr)].string())
              .with_tensor(e->name);
    }

  // True vocabulary size.
  ReadOutcome out;
  Model& m = out.model;
  std::string vocab_source;
  int64_t vocab = 0;
  std::optional<fs::path> tok_dir = opt.tokenizer;
  if (h.vocab > 0 && h.vocab <= h.padded_vocab) {
    vocab = h.vocab;
    vocab_source = "args.vocab_size";
  } else if (opt.vocab_size) {
    vocab = *opt.vocab_size;
    vocab_source = "--vocab-size";
  } else if (auto tv = tokenizer_vocab_size(opt.tokenizer ? *opt.tokenizer : L.root)) {
    vocab = tv->size;
    vocab_source = "tokenizer (" + tv->file.filename().string() + ")";
  } else {
    vocab = h.padded_vocab;
    vocab_source = "padded_vocab_size (no true size found: pass --vocab-size or --tokenizer)";
  }
  if (vocab <= 0 || vocab > h.padded_vocab)
    return make_error(ErrorCode::InvalidArgument, "vocabulary size {} (from {}) is outside 1..{} (padded_vocab_size)",
                      vocab, vocab_source, h.padded_vocab)
        .with_path(path.string());

  // HF tensors.
  auto vocab_tensor = [&](const std::string& name, Part p) -> Status {
    std::vector<const TensorData*> src;
    std::vector<TensorDataPtr> hold;
    DType dt = DType::F32;
    for (int tr = 0; tr < h.tp; ++tr) {
      const int pr = p == Part::Embedding ? 0 : h.pp - 1;
      const TensorEntry* e = MC_TRY(get(pr, tr, p, -1));
      src.push_back(e->data.get());
      hold.push_back(e->data);
      dt = e->dtype;
    }
    const uint64_t rb = uint64_t(h.hidden) * dtype_size(dt);
    m.tensors.put({name, dt, {vocab, h.hidden},
                   make_gather(uint64_t(vocab), rb, [src, rpr, rb](uint64_t g, std::vector<Segment>& o) {
                     o.push_back({src[g / uint64_t(rpr)], (g % uint64_t(rpr)) * rb, rb});
                   }, hold)});
    return {};
  };
  MC_CHECK(vocab_tensor("model.embed_tokens.weight", Part::Embedding));
  for (int pr = 0; pr < h.pp; ++pr)
    for (int64_t l = 0; l < per_stage; ++l) {
      const std::string pre = fmt::format("model.layers.{}.", pr * per_stage + l);
      std::vector<const TensorEntry*> qkv, qkvb, proj, fc1, fc2;
      for (int tr = 0; tr < h.tp; ++tr) {
        qkv.push_back(MC_TRY(get(pr, tr, Part::Qkv, l)));
        if (h.qkv_bias) qkvb.push_back(MC_TRY(get(pr, tr, Part::QkvBias, l)));
        proj.push_back(MC_TRY(get(pr, tr, Part::Proj, l)));
        fc1.push_back(MC_TRY(get(pr, tr, Part::Fc1, l)));
        fc2.push_back(MC_TRY(get(pr, tr, Part::Fc2, l)));
      }
      auto datas = [](const std::vector<const TensorEntry*>& v) {
        std::pair<std::vector<const TensorData*>, std::vector<TensorDataPtr>> r;
        for (auto* e : v) {
          r.first.push_back(e->data.get());
          r.second.push_back(e->data);
        }
        return r;
      };
      const TensorEntry* in = MC_TRY(get(pr, 0, Part::InNorm, l));
      m.tensors.put({pre + "input_layernorm.weight", in->dtype, in->shape, in->data});
      // Q / K / V out of the grouped layout: [ng][qpg*hd | hd | hd] rows, gpr groups per rank.
      auto unfuse = [&](const std::vector<const TensorEntry*>& v, bool bias) {
        // Named copies, not a structured binding: clang before 16 cannot capture bindings in lambdas.
        const auto sh = datas(v);
        const auto& src = sh.first;
        const auto& hold = sh.second;
        const DType dt = v[0]->dtype;
        const uint64_t rb = bias ? dtype_size(dt) : uint64_t(h.hidden) * dtype_size(dt);
        const char* sfx = bias ? "bias" : "weight";
        auto one = [&](const char* name, int64_t rows, int64_t rows_per_group, int64_t at_in_group) {
          Shape s = bias ? Shape{rows} : Shape{rows, h.hidden};
          m.tensors.put({pre + "self_attn." + name + "." + sfx, dt, s,
                         make_gather(uint64_t(rows), rb, [=](uint64_t r, std::vector<Segment>& o) {
                           const int64_t g = int64_t(r) / rows_per_group, w = int64_t(r) % rows_per_group;
                           const int64_t local = (g % gpr) * per + at_in_group + w;
                           o.push_back({src[size_t(g / gpr)], uint64_t(local) * rb, rb});
                         }, hold)});
        };
        one("q_proj", h.heads * hd, qpg * hd, 0);
        one("k_proj", h.groups * hd, hd, qpg * hd);
        one("v_proj", h.groups * hd, hd, qpg * hd + hd);
      };
      unfuse(qkv, false);
      if (h.qkv_bias) unfuse(qkvb, true);
      if (h.qk_norm)  // replicated over TP: rank 0's copy
        for (auto [part, name] : {std::pair{Part::QNorm, "self_attn.q_norm.weight"},
                                  std::pair{Part::KNorm, "self_attn.k_norm.weight"}}) {
          const TensorEntry* e = MC_TRY(get(pr, 0, part, l));
          m.tensors.put({pre + name, e->dtype, e->shape, e->data});
        }
      // Row-parallel: HF row i = rank 0's row i | rank 1's row i | ...
      auto join_cols = [&](const std::string& name, const std::vector<const TensorEntry*>& v) {
        // Named copies, not a structured binding: clang before 16 cannot capture bindings in lambdas.
        const auto sh = datas(v);
        const auto& src = sh.first;
        const auto& hold = sh.second;
        const DType dt = v[0]->dtype;
        const uint64_t part = uint64_t(v[0]->shape[1]) * dtype_size(dt);
        const int64_t rows = v[0]->shape[0];
        m.tensors.put({name, dt, {rows, v[0]->shape[1] * h.tp},
                       make_gather(uint64_t(rows), part * uint64_t(h.tp), [=](uint64_t r, std::vector<Segment>& o) {
                         for (const TensorData* s : src) o.push_back({s, r * part, part});
                       }, hold)});
      };
      join_cols(pre + "self_attn.o_proj.weight", proj);
      const TensorEntry* post = MC_TRY(get(pr, 0, Part::PostNorm, l));
      m.tensors.put({pre + "post_attention_layernorm.weight", post->dtype, post->shape, post->data});
      {
        // Named copies, not a structured binding: clang before 16 cannot capture bindings in lambdas.
        const auto sh = datas(fc1);
        const auto& src = sh.first;
        const auto& hold = sh.second;
        const DType dt = fc1[0]->dtype;
        const uint64_t rb = uint64_t(h.hidden) * dtype_size(dt);
        for (int half = 0; half < 2; ++half)
          m.tensors.put({pre + (half == 0 ? "mlp.gate_proj.weight" : "mlp.up_proj.weight"), dt, {h.ffn, h.hidden},
                         make_gather(uint64_t(h.ffn), rb, [=](uint64_t r, std::vector<Segment>& o) {
                           const uint64_t local = uint64_t(half) * uint64_t(nf) + r % uint64_t(nf);
                           o.push_back({src[r / uint64_t(nf)], local * rb, rb});
                         }, hold)});
      }
      join_cols(pre + "mlp.down_proj.weight", fc2);
    }
  const TensorEntry* fin = MC_TRY(get(h.pp - 1, 0, Part::FinalNorm, -1));
  m.tensors.put({"model.norm.weight", fin->dtype, fin->shape, fin->data});
  if (h.untie) MC_CHECK(vocab_tensor("lm_head.weight", Part::Output));

  // config.json: ours verbatim when present (the trip back restores it), else rebuilt from args.
  const auto hf_config = args.s("hf_config");
  ojson cfg;
  if (hf_config) {
    cfg = ojson::parse(*hf_config, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object())
      return make_error(ErrorCode::Corrupt, "args.hf_config is not a JSON object").with_path(L.files[0].string());
  }
  arch::Family fam = arch::family_from_model_type(opt.model_type);
  if (fam == arch::Family::Unknown) fam = arch::family_from_model_type(args.s("hf_model_type").value_or(""));
  if (fam == arch::Family::Unknown && hf_config) fam = arch::family_from_model_type(cfg.value("model_type", ""));
  // Megatron-Core's q/k norms are Qwen3's; the families without them cannot take such weights.
  if (fam == arch::Family::Unknown) fam = h.qk_norm ? arch::Family::Qwen3 : arch::Family::Llama;
  if (arch::family_info(fam).qk_norm != h.qk_norm)
    return make_error(ErrorCode::Mismatch, "model type '{}' {} per-head q/k norms but the checkpoint {}",
                      arch::family_name(fam), h.qk_norm ? "has no" : "has",
                      h.qk_norm ? "holds q_layernorm / k_layernorm weights" : "has none (args.qk_layernorm unset)")
        .with_path(path.string())
        .with_hint(h.qk_norm ? "read it as --model-type qwen3" : "pick a --model-type without q/k norms");
  const bool reuse = hf_config && arch::family_from_model_type(cfg.value("model_type", "")) == fam &&
                     cfg.value("vocab_size", int64_t(-1)) == vocab;
  if (reuse) {
    m.config = cfg;
    m.config_text = *hf_config;
  } else {
    arch::ArchConfig ac;
    ac.family = fam;
    ac.model_type = std::string(arch::family_name(fam));
    ac.vocab_size = vocab;
    ac.hidden_size = h.hidden;
    ac.intermediate_size = h.ffn;
    ac.num_layers = h.num_layers;
    ac.num_heads = h.heads;
    ac.num_kv_heads = h.groups;
    ac.head_dim = hd;
    ac.max_position = h.max_pos;
    ac.norm_eps = h.norm_eps;
    ac.rope_theta = h.rotary_base;
    ac.tie_word_embeddings = !h.untie;
    ac.qkv_bias = h.qkv_bias && !arch::family_info(fam).qkv_bias_always;
    ac.scale_emb = args.f("scale_emb").value_or(1.0);
    ac.scale_depth = args.f("scale_depth").value_or(1.0);
    ac.dim_model_base = args.f("dim_model_base").value_or(1.0);
    const DType emb = m.tensors.find("model.embed_tokens.weight")->dtype;
    ac.torch_dtype = emb == DType::F16 || emb == DType::BF16 ? torch_dtype_name(emb) : "float32";
    m.set_config(arch::to_hf_config(ac));
  }
  m.source_format = "megatron";
  m.source_path = path.string();
  for (const auto& f : L.files) m.weight_files.push_back(fs::relative(f, L.root).string());

  // Tokenizer files: beside the checkpoint, replaced by --tokenizer's.
  std::error_code ec;
  auto carry_from = [&](const fs::path& dir) {
    for (auto n : carried_names())
      if (fs::is_regular_file(dir / n, ec)) m.set_extra({std::string(n), dir / n, std::nullopt});
  };
  carry_from(L.root);
  if (opt.tokenizer) {
    if (io::is_dir(*opt.tokenizer)) carry_from(*opt.tokenizer);
    else if (fs::is_regular_file(*opt.tokenizer, ec))
      m.set_extra({opt.tokenizer->filename().string(), *opt.tokenizer, std::nullopt});
    else
      return make_error(ErrorCode::NotFound, "--tokenizer path does not exist").with_path(opt.tokenizer->string());
  }

  out.info = {{"layout", L.single_file ? "model.pt" : "standard"},
              {"iteration", L.release ? ojson("release") : ojson(h.iteration)},
              {"tensor_parallel", h.tp},
              {"pipeline_parallel", h.pp},
              {"naming", std::string(naming_name(*style))},
              {"rank_files", m.weight_files},
              {"num_layers", h.num_layers},
              {"hidden_size", h.hidden},
              {"ffn_hidden_size", h.ffn},
              {"num_attention_heads", h.heads},
              {"num_query_groups", h.groups},
              {"kv_channels", h.kv_channels},
              {"qk_layernorm", h.qk_norm},
              {"max_position_embeddings", h.max_pos},
              {"norm_epsilon", h.norm_eps},
              {"rotary_base", h.rotary_base},
              {"untie_embeddings_and_output_weights", h.untie},
              {"padded_vocab_size", h.padded_vocab},
              {"vocab_size", vocab},
              {"vocab_size_source", vocab_source},
              {"model_type", std::string(arch::family_name(fam))}};
  if (arch::family_info(fam).mup)
    out.info["mup"] = {{"scale_emb", args.f("scale_emb").value_or(1.0)},
                       {"scale_depth", args.f("scale_depth").value_or(1.0)},
                       {"dim_model_base", args.f("dim_model_base").value_or(1.0)}};
  return out;
}

Result<Model> read(const fs::path& path, const formats::ReadOptions& opt) {
  auto r = MC_TRY(read_checkpoint(path, opt));
  return std::move(r.model);
}

Result<ojson> describe(const fs::path& path, const formats::ReadOptions& opt) {
  auto r = MC_TRY(read_checkpoint(path, opt));
  return std::move(r.info);
}

formats::ValidationReport validate(const fs::path& path) {
  formats::ValidationReport rep;
  rep.format = "megatron";
  auto L = find_layout(path);
  if (!L) {
    rep.errors.push_back(L.error());
    return rep;
  }
  for (const auto& f : L->files)
    for (auto& e : torch::validate_torch_file(f.string())) rep.errors.push_back(std::move(e));
  if (!rep.errors.empty()) return rep;
  auto r = read_checkpoint(path, {});
  if (!r) {
    rep.errors.push_back(r.error());
    return rep;
  }
  rep.info = r->info;
  rep.info["tensors"] = r->model.tensors.size();
  rep.info["parameters"] = r->model.tensors.total_params();
  return rep;
}

}  // namespace mc::megatron
