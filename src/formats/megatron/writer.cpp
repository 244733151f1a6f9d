// HF (Llama-like) Model -> Megatron-LM `--ckpt-format torch` checkpoint (formats.md §9):
//   <out>/latest_checkpointed_iteration.txt                 "1"
//   <out>/iter_0000001/mp_rank_TT[_PPP]/model_optim_rng.pt  {args, checkpoint_version, iteration, model}
//   <out>/<tokenizer files, generation_config.json>          carried beside the checkpoint
// Every rank tensor is a lazy gather over the source tensors (fused QKV in grouped order §9.4,
// [gate_r; up_r] per rank, vocab padded with copies of the last row §9.5), so one rank file is
// streamed at a time through the torch writer's thread pool. Qwen3's q_norm / k_norm become
// Megatron-Core's replicated q_layernorm / k_layernorm (args.qk_layernorm); legacy names refuse them.
#include <deque>

#include "arch/config.h"
#include "formats/megatron/megatron.h"
#include "formats/megatron/layout.h"
#include "formats/torch/torch_io.h"
#include "io/output.h"

namespace mc::megatron {

namespace fs = std::filesystem;
using torch::Value;

namespace {

struct Source {
  const TensorEntry* emb = nullptr;
  const TensorEntry* lm_head = nullptr;
  const TensorEntry* norm = nullptr;
};

// Torch dtype object name for args.params_dtype: Megatron trains in f32, f16 or bf16.
std::string_view params_dtype_name(DType t) {
  return t == DType::F16 || t == DType::BF16 ? torch_dtype_name(t) : "float32";
}

Value* build_args(torch::Tree& t, const Hyper& h, const arch::ArchConfig& ac, const Model& m, Naming naming) {
  Value* d = t.dict();
  auto put = [&](const char* k, Value* v) { d->entries.emplace_back(t.string(k), v); };
  put("num_layers", t.integer(h.num_layers));
  put("hidden_size", t.integer(h.hidden));
  put("ffn_hidden_size", t.integer(h.ffn));
  put("num_attention_heads", t.integer(h.heads));
  put("num_query_groups", t.integer(h.groups));
  put("group_query_attention", t.boolean(h.groups != h.heads));
  put("kv_channels", t.integer(h.kv_channels));
  put("max_position_embeddings", t.integer(h.max_pos));
  put("seq_length", t.integer(h.seq_length));
  put("position_embedding_type", t.string("rope"));
  put("use_rotary_position_embeddings", t.boolean(true));
  put("add_position_embedding", t.boolean(false));
  put("rotary_base", h.rotary_base == double(int64_t(h.rotary_base)) ? t.integer(int64_t(h.rotary_base))
                                                                      : t.real(h.rotary_base));
  put("rotary_percent", t.real(1.0));
  put("rotary_interleaved", t.boolean(false));
  put("normalization", t.string("RMSNorm"));
  put("norm_epsilon", t.real(h.norm_eps));
  put("swiglu", t.boolean(true));
  put("untie_embeddings_and_output_weights", t.boolean(h.untie));
  put("add_bias_linear", t.boolean(false));
  put("add_qkv_bias", t.boolean(h.qkv_bias));
  put("qk_layernorm", t.boolean(h.qk_norm));
  put("apply_query_key_layer_scaling", t.boolean(false));
  put("attention_dropout", t.real(0.0));
  put("hidden_dropout", t.real(0.0));
  put("make_vocab_size_divisible_by", t.integer(h.make_divisible_by));
  put("padded_vocab_size", t.integer(h.padded_vocab));
  put("vocab_size", t.integer(h.vocab));
  put("tokenizer_type", t.string("HuggingFaceTokenizer"));
  put("tensor_model_parallel_size", t.integer(h.tp));
  put("pipeline_model_parallel_size", t.integer(h.pp));
  put("virtual_pipeline_model_parallel_size", t.none());
  put("expert_model_parallel_size", t.integer(1));
  put("params_dtype", t.global("torch", std::string(params_dtype_name(h.dtype))));
  put("fp16", t.boolean(h.dtype == DType::F16));
  put("bf16", t.boolean(h.dtype == DType::BF16));
  put("use_mcore_models", t.boolean(naming == Naming::Mcore));
  put("transformer_impl", t.string("local"));
  put("ckpt_format", t.string("torch"));
  put("iteration", t.integer(h.iteration));
  put("consumed_train_samples", t.integer(0));
  put("consumed_valid_samples", t.integer(0));
  // Not Megatron's: what the trip back to HF needs (model family, muP factors, the config).
  put("hf_model_type", t.string(std::string(arch::family_name(ac.family))));
  if (ac.is_mup()) {
    put("scale_emb", t.real(ac.scale_emb));
    put("scale_depth", t.real(ac.scale_depth));
    put("dim_model_base", t.real(ac.dim_model_base));
  }
  put("hf_config", t.string(m.config_modified || m.config_text.empty() ? m.config.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n" : m.config_text));
  return t.namespace_object(d);
}

// Builds the rank tensors of one (tp, pp) file. `store` keeps the entries alive (pointer-stable).
struct RankBuilder {
  const Model& m;
  const Hyper& h;
  const Source& src;
  Naming naming;
  int tr, pr;
  std::deque<TensorEntry>& store;
  std::vector<std::pair<std::string, const TensorEntry*>> out;  // megatron key -> entry

  uint64_t es(const TensorEntry& e) const { return dtype_size(e.dtype); }

  void add(Part p, int64_t local_layer, DType dt, Shape shape, TensorDataPtr data) {
    store.push_back({megatron_key(naming, p, local_layer), dt, std::move(shape), std::move(data)});
    out.emplace_back(store.back().name, &store.back());
  }

  // Vocab-parallel: rows [tr*rpr, (tr+1)*rpr) of the padded table; pad rows repeat the last row.
  void vocab_rows(Part p, const TensorEntry& e) {
    const int64_t rpr = h.padded_vocab / h.tp, v = e.shape[0];
    const uint64_t rb = uint64_t(e.shape[1]) * es(e);
    const TensorData* s = e.data.get();
    const int64_t first = tr * rpr;
    add(p, -1, e.dtype, {rpr, e.shape[1]},
        make_gather(uint64_t(rpr), rb, [=](uint64_t j, std::vector<Segment>& o) {
          const int64_t g = std::min<int64_t>(first + int64_t(j), v - 1);
          o.push_back({s, uint64_t(g) * rb, rb});
        }, {e.data}));
  }

  void qkv(int64_t local, const TensorEntry& q, const TensorEntry& k, const TensorEntry& v, bool bias) {
    const int64_t hd = h.kv_channels, qpg = h.heads / h.groups, per = (qpg + 2) * hd, gpr = h.groups / h.tp;
    const uint64_t rb = bias ? es(q) : uint64_t(h.hidden) * es(q);
    const TensorData *qs = q.data.get(), *ks = k.data.get(), *vs = v.data.get();
    const int64_t g0 = tr * gpr;
    Shape shape = bias ? Shape{gpr * per} : Shape{gpr * per, h.hidden};
    add(bias ? Part::QkvBias : Part::Qkv, local, q.dtype, shape,
        make_gather(uint64_t(gpr * per), rb, [=](uint64_t j, std::vector<Segment>& o) {
          const int64_t g = g0 + int64_t(j) / per, w = int64_t(j) % per;
          if (w < qpg * hd) o.push_back({qs, uint64_t(g * qpg * hd + w) * rb, rb});
          else if (w < qpg * hd + hd) o.push_back({ks, uint64_t(g * hd + w - qpg * hd) * rb, rb});
          else o.push_back({vs, uint64_t(g * hd + w - qpg * hd - hd) * rb, rb});
        }, {q.data, k.data, v.data}));
  }

  void fc1(int64_t local, const TensorEntry& gate, const TensorEntry& up) {
    const int64_t n = h.ffn / h.tp;
    const uint64_t rb = uint64_t(h.hidden) * es(gate);
    const TensorData *gs = gate.data.get(), *us = up.data.get();
    const int64_t first = tr * n;
    add(Part::Fc1, local, gate.dtype, {2 * n, h.hidden},
        make_gather(uint64_t(2 * n), rb, [=](uint64_t j, std::vector<Segment>& o) {
          const int64_t jj = int64_t(j);
          if (jj < n) o.push_back({gs, uint64_t(first + jj) * rb, rb});
          else o.push_back({us, uint64_t(first + jj - n) * rb, rb});
        }, {gate.data, up.data}));
  }

  // Row-parallel: rank tr keeps input features [tr*c/tp, (tr+1)*c/tp) of every row.
  void row_parallel(Part p, int64_t local, const TensorEntry& e) {
    const int64_t c = e.shape[1] / h.tp;
    const uint64_t full = uint64_t(e.shape[1]) * es(e), part = uint64_t(c) * es(e);
    const TensorData* s = e.data.get();
    const uint64_t at = uint64_t(tr) * part;
    add(p, local, e.dtype, {e.shape[0], c},
        make_gather(uint64_t(e.shape[0]), part, [=](uint64_t j, std::vector<Segment>& o) {
          o.push_back({s, j * full + at, part});
        }, {e.data}, [=](uint64_t j, std::vector<Segment>& o) {
          // Whole source rows: a column slice never covers a page; later ranks refault them
          // from the page cache.
          o.push_back({s, j * full, full});
        }));
  }

  void replicated(Part p, int64_t local, const TensorEntry& e) {
    const uint64_t n = e.nbytes();
    const TensorData* s = e.data.get();
    add(p, local, e.dtype, e.shape, make_gather(1, n, [=](uint64_t, std::vector<Segment>& o) {
          o.push_back({s, 0, n});
        }, {e.data}));
  }

  Status build() {
    const int64_t per_stage = h.num_layers / h.pp;
    if (pr == 0) vocab_rows(Part::Embedding, *src.emb);
    for (int64_t l = 0; l < per_stage; ++l) {
      const std::string p = fmt::format("model.layers.{}.", pr * per_stage + l);
      auto need = [&](const char* n) { return m.tensors.require(p + n); };
      replicated(Part::InNorm, l, *MC_TRY(need("input_layernorm.weight")));
      const auto* q = MC_TRY(need("self_attn.q_proj.weight"));
      const auto* k = MC_TRY(need("self_attn.k_proj.weight"));
      const auto* v = MC_TRY(need("self_attn.v_proj.weight"));
      qkv(l, *q, *k, *v, false);
      if (h.qkv_bias)
        qkv(l, *MC_TRY(need("self_attn.q_proj.bias")), *MC_TRY(need("self_attn.k_proj.bias")),
            *MC_TRY(need("self_attn.v_proj.bias")), true);
      if (h.qk_norm) {
        replicated(Part::QNorm, l, *MC_TRY(need("self_attn.q_norm.weight")));
        replicated(Part::KNorm, l, *MC_TRY(need("self_attn.k_norm.weight")));
      }
      row_parallel(Part::Proj, l, *MC_TRY(need("self_attn.o_proj.weight")));
      replicated(Part::PostNorm, l, *MC_TRY(need("post_attention_layernorm.weight")));
      fc1(l, *MC_TRY(need("mlp.gate_proj.weight")), *MC_TRY(need("mlp.up_proj.weight")));
      row_parallel(Part::Fc2, l, *MC_TRY(need("mlp.down_proj.weight")));
    }
    if (pr == h.pp - 1) {
      replicated(Part::FinalNorm, -1, *src.norm);
      if (h.untie) vocab_rows(Part::Output, *src.lm_head);
      else if (h.pp > 1) vocab_rows(Part::OutputCopy, *src.emb);  // Megatron's copy on the last stage
    }
    return {};
  }
};

// Legacy state dicts nest: model.language_model.{embedding.word_embeddings, encoder, output_layer};
// the encoder holds flat "layers.N.*" keys. Megatron-Core's is flat.
void insert_nested(torch::Tree& t, Value* root, Naming n, const std::string& key, Value* leaf) {
  std::vector<std::string> path;
  std::string_view k = key;
  const std::string_view enc = "language_model.encoder.";
  if (n == Naming::Mcore) {
    path.emplace_back(k);
  } else {
    if (k.starts_with(enc)) {
      path = {"language_model", "encoder", std::string(k.substr(enc.size()))};
    } else {
      size_t s = 0;
      for (size_t d; (d = k.find('.', s)) != std::string_view::npos; s = d + 1) path.emplace_back(k.substr(s, d - s));
      path.emplace_back(k.substr(s));
    }
  }
  Value* cur = root;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    Value* next = nullptr;
    for (auto& [kk, vv] : cur->entries)
      if (kk->is_str(path[i])) next = vv;
    if (!next) {
      next = t.dict(true);
      cur->entries.emplace_back(t.string(path[i]), next);
    }
    cur = next;
  }
  cur->entries.emplace_back(t.string(path.back()), leaf);
}

}  // namespace

Result<formats::WriteResult> write(const Model& m, const fs::path& out, const formats::WriteOptions& opt) {
  const auto ac = MC_TRY(arch::from_hf_config(m.config));
  if (!ac.info() || !ac.info()->megatron)
    return make_error(ErrorCode::InvalidArgument, "model type '{}' cannot be written as a Megatron GPT checkpoint", ac.model_type).with_hint("run `modelconvert list architectures` for the families Megatron takes");
  if (ac.o_bias || ac.mlp_bias)
    return make_error(ErrorCode::Unsupported, "attention output / MLP biases are not supported in the Megatron writer")
        .with_hint("only Llama-style models without linear biases are supported");
  if (ac.hidden_act != "silu")
    return make_error(ErrorCode::Unsupported, "hidden_act '{}' is not SwiGLU", ac.hidden_act);
  Hyper h;
  h.num_layers = ac.num_layers;
  h.hidden = ac.hidden_size;
  h.ffn = ac.intermediate_size;
  h.heads = ac.num_heads;
  h.groups = ac.num_kv_heads;
  h.kv_channels = ac.head_dim;
  h.max_pos = h.seq_length = ac.max_position;
  h.vocab = ac.vocab_size;
  h.norm_eps = ac.norm_eps;
  h.rotary_base = ac.rope_theta;
  h.untie = !ac.tie_word_embeddings;
  h.qkv_bias = ac.qkv_bias;
  h.qk_norm = ac.info()->qk_norm;
  h.tp = std::max(1, opt.tensor_parallel);
  h.pp = std::max(1, opt.pipeline_parallel);
  h.padded_vocab = padded_vocab_size(h.vocab, h.make_divisible_by, h.tp);
  Naming naming = Naming::Mcore;
  if (opt.naming == "legacy") naming = Naming::Legacy;
  else if (!opt.naming.empty() && opt.naming != "mcore")
    return make_error(ErrorCode::InvalidArgument, "unknown Megatron naming '{}'", opt.naming).with_hint("use --megatron-format legacy or mcore");
  if (h.qk_norm && !has_part(naming, Part::QNorm))
    return make_error(ErrorCode::InvalidArgument,
                      "model type '{}' has per-head q/k norms, which legacy Megatron names cannot store",
                      ac.model_type)
        .with_hint("use --megatron-format mcore (Megatron-Core's q_layernorm / k_layernorm)");

  if (h.groups % h.tp != 0)
    return make_error(ErrorCode::InvalidArgument, "--tp {} does not divide the {} query groups (num_key_value_heads)", h.tp, h.groups).with_hint("pick a tensor-parallel size that divides num_key_value_heads");
  if (h.ffn % h.tp != 0)
    return make_error(ErrorCode::InvalidArgument, "--tp {} does not divide intermediate_size {}", h.tp, h.ffn).with_hint("pick another --tp");
  if (h.num_layers % h.pp != 0)
    return make_error(ErrorCode::InvalidArgument, "--pp {} does not divide the {} layers", h.pp, h.num_layers).with_hint("pick a pipeline-parallel size that divides num_hidden_layers");

  Source src;
  src.emb = MC_TRY(m.tensors.require("model.embed_tokens.weight"));
  src.norm = MC_TRY(m.tensors.require("model.norm.weight"));
  if (h.untie) src.lm_head = MC_TRY(m.tensors.require("lm_head.weight"));
  h.dtype = src.emb->dtype;
  for (const TensorEntry* e : {src.emb, src.lm_head})
    if (e && (e->shape.size() != 2 || e->shape[0] != h.vocab || e->shape[1] != h.hidden))
      return make_error(ErrorCode::Mismatch, "shape {} does not match vocab_size {} x hidden_size {}",
                        shape_str(e->shape), h.vocab, h.hidden).with_tensor(e->name);
  const int64_t hd = h.kv_channels;
  for (int64_t l = 0; l < h.num_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    const std::pair<const char*, Shape> want[] = {
        {"self_attn.q_proj.weight", {h.heads * hd, h.hidden}}, {"self_attn.k_proj.weight", {h.groups * hd, h.hidden}},
        {"self_attn.v_proj.weight", {h.groups * hd, h.hidden}}, {"self_attn.o_proj.weight", {h.hidden, h.heads * hd}},
        {"mlp.gate_proj.weight", {h.ffn, h.hidden}},            {"mlp.up_proj.weight", {h.ffn, h.hidden}},
        {"mlp.down_proj.weight", {h.hidden, h.ffn}},            {"input_layernorm.weight", {h.hidden}},
        {"post_attention_layernorm.weight", {h.hidden}}};
    std::vector<std::pair<const char*, Shape>> all(std::begin(want), std::end(want));
    if (h.qk_norm) {
      all.push_back({"self_attn.q_norm.weight", {hd}});
      all.push_back({"self_attn.k_norm.weight", {hd}});
    }
    for (const auto& [n, s] : all) {
      const auto* e = MC_TRY(m.tensors.require(p + n));
      if (e->shape != s)
        return make_error(ErrorCode::Mismatch, "shape {} where the config implies {}", shape_str(e->shape), shape_str(s))
            .with_tensor(e->name);
    }
  }

  formats::WriteResult res;
  const std::string iter = iter_dir_name(h.iteration);
  std::error_code ec;
  torch::WriteOptions to;
  to.pool = opt.pool;
  to.chunk_bytes = opt.chunk_bytes;
  to.sink = opt.progress;
  to.atomic = false;
  to.archive_name = "model_optim_rng";
  for (int pr = 0; pr < h.pp; ++pr)
    for (int tr = 0; tr < h.tp; ++tr) {
      std::deque<TensorEntry> store;
      RankBuilder b{m, h, src, naming, tr, pr, store, {}};
      MC_CHECK(b.build());
      torch::Tree t;
      Value* root = t.dict();
      Value* model = t.dict(true);
      for (const auto& [k, e] : b.out) {
        insert_nested(t, model, naming, k, t.tensor(*e));
        res.tensor_bytes += e->nbytes();
      }
      root->entries.emplace_back(t.string("args"), build_args(t, h, ac, m, naming));
      root->entries.emplace_back(t.string("checkpoint_version"), t.real(3.0));
      root->entries.emplace_back(t.string("iteration"), t.integer(h.iteration));
      root->entries.emplace_back(t.string("model"), model);
      const std::string rel = iter + "/" + rank_dir_name(tr, pr, h.pp) + "/model_optim_rng.pt";
      fs::create_directories(out / iter / rank_dir_name(tr, pr, h.pp), ec);
      if (ec)
        return make_error(ErrorCode::Io, "cannot create directory: {}", ec.message()).with_path((out / rel).string());
      MC_CHECK(torch::write_torch_tree(*root, out / rel, to));
      res.files.push_back(rel);
    }
  MC_CHECK(io::write_small_file(out / "latest_checkpointed_iteration.txt", std::to_string(h.iteration)));
  res.files.push_back("latest_checkpointed_iteration.txt");
  for (const auto& f : m.extra_files) {
    if (f.content) MC_CHECK(io::write_small_file(out / f.name, *f.content));
    else MC_CHECK(io::copy_file(f.source, out / f.name));
    res.files.push_back(f.name);
  }
  res.info = {{"tensor_parallel", h.tp},           {"pipeline_parallel", h.pp},
              {"naming", std::string(naming_name(naming))}, {"iteration", h.iteration},
              {"padded_vocab_size", h.padded_vocab}, {"vocab_size", h.vocab}};
  return res;
}

}  // namespace mc::megatron
