// Megatron-LM `--ckpt-format torch` checkpoint -> HF-form Model (formats.md §9, torch files §3).
// Layouts read:
//   <dir>/latest_checkpointed_iteration.txt + iter_NNNNNNN|release/mp_rank_TT[_PPP]/model_optim_rng.pt
//   <dir>/iter_NNNNNNN/...  or  <dir> = the iteration folder itself (mp_rank_* inside)
//   <dir>/model.pt (+ metadata.json: JSON object of args, used where the pickled args lack a key)
// TP/PP come from the rank folder names and must agree with args. Every rank's tensors are
// checked against the shapes args imply; HF tensors are lazy gathers over the mapped rank files
// (QKV un-grouped §9.4, [gate_r; up_r] split back, vocab rows cut to the true size §9.5).
// torch_dist / .distcp checkpoints are rejected with a message naming them.
#include <cctype>
#include <charconv>
#include <map>
#include <regex>
#include <set>

#include "arch/config.h"
#include "formats/megatron/layout.h"
#include "formats/megatron/megatron.h"
#include "formats/megatron/reader_impl.h"
#include "formats/megatron/vocab.h"
#include "io/mapped_file.h"
#include "io/mapped_file.h"
#include "io/probe.h"

namespace mc::megatron {

namespace {

constexpr std::string_view kCarried[] = {
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json",     "merges.txt",      "generation_config.json", "chat_template.jinja",   "chat_template.json"};

Error at(Error e, const fs::path& p) { return std::move(e).with_path(p.string()); }

Status reject_distributed(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.ends_with(".distcp")) {
      return make_error(ErrorCode::Unsupported,
                        "this is a Megatron distributed checkpoint (torch_dist, '{}'), which is not read",
                        name)
          .with_path(dir.string())
          .with_hint(
              "convert it to the torch format first with Megatron's `--ckpt-convert-format torch` "
              "(or `--ckpt-format torch` when saving)");
    }
  }
  return {};
}

}  // namespace

Result<Layout> find_layout(const fs::path& path) {
  Layout L;
  L.root = path;
  if (!io::is_dir(path))
    return at(make_error(ErrorCode::InvalidArgument, "a Megatron checkpoint is a directory"), path)
        .with_hint("pass the folder holding latest_checkpointed_iteration.txt (or the iter_* folder)");
  MC_CHECK(reject_distributed(path));
  std::error_code ec;
  if (fs::exists(path / "model.pt", ec)) {
    L.single_file = true;
    L.iter_dir = path;
    L.files = {path / "model.pt"};
    return L;
  }
  fs::path iter;
  if (fs::exists(path / "latest_checkpointed_iteration.txt", ec)) {
    auto text = MC_TRY(io::read_text_file((path / "latest_checkpointed_iteration.txt").string(), 4096));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    if (text == "release") {
      L.release = true;
      L.iteration = -1;
    } else {
      int64_t v = -1;
      const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v < 0)
        return at(make_error(ErrorCode::Corrupt, "latest_checkpointed_iteration.txt holds '{}', not a number or "
                                                 "'release'", text.substr(0, 40)),
                  path / "latest_checkpointed_iteration.txt");
      L.iteration = v;
    }
    iter = path / iter_dir_name(L.iteration);
  } else {
    bool ranks_here = false;
    std::string best;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      const auto n = e.path().filename().string();
      if (n.starts_with("mp_rank_")) ranks_here = true;
      if ((n.starts_with("iter_") || n == "release") && e.is_directory() && (best.empty() || n > best)) best = n;
    }
    iter = ranks_here ? path : path / best;
    if (!ranks_here && best.empty())
      return at(make_error(ErrorCode::NotFound, "no iter_* folder and no mp_rank_* folders"), path)
          .with_hint("pass the Megatron --save directory");
    const auto n = iter.filename().string();
    if (n == "release") L.iteration = -1;
    else if (n.starts_with("iter_")) std::from_chars(n.data() + 5, n.data() + n.size(), L.iteration);
  }
  if (!io::is_dir(iter))
    return at(make_error(ErrorCode::NotFound, "the iteration folder named by latest_checkpointed_iteration.txt "
                                              "is missing"), iter);
  MC_CHECK(reject_distributed(iter));
  L.iter_dir = iter;
  static const std::regex kRank(R"(mp_rank_(\d{2})(?:_(\d{3}))?(_\d{3})?)");
  std::set<int> tps, pps;
  bool with_pp = false, without_pp = false;
  for (const auto& e : fs::directory_iterator(iter, ec)) {
    std::smatch m;
    const auto n = e.path().filename().string();
    if (!std::regex_match(n, m, kRank)) continue;
    if (m[3].matched)
      return at(make_error(ErrorCode::Unsupported, "expert-parallel rank folder '{}' (MoE) is not supported", n), iter);
    tps.insert(std::stoi(m[1].str()));
    if (m[2].matched) {
      with_pp = true;
      pps.insert(std::stoi(m[2].str()));
    } else {
      without_pp = true;
    }
  }
  if (tps.empty())
    return at(make_error(ErrorCode::NotFound, "no mp_rank_* folders"), iter).with_hint("is this a Megatron checkpoint?");
  if (with_pp && without_pp)
    return at(make_error(ErrorCode::Corrupt, "rank folders with and without a pipeline rank are mixed"), iter);
  L.tp = *tps.rbegin() + 1;
  L.pp = with_pp ? *pps.rbegin() + 1 : 1;
  for (int pr = 0; pr < L.pp; ++pr)
    for (int tr = 0; tr < L.tp; ++tr) {
      const fs::path f = iter / rank_dir_name(tr, pr, with_pp ? std::max(L.pp, 2) : 1) / "model_optim_rng.pt";
      // Something there that is not a readable file (a directory, FIFO, dangling link) says what it is.
      if (fs::exists(fs::symlink_status(f, ec)))
        if (auto st = io::check_regular_file(f.string()); !st) return std::move(st).error();
      if (!fs::is_regular_file(f, ec))
        return at(make_error(ErrorCode::NotFound, "rank file missing (tensor rank {}, pipeline rank {} of a {}x{} "
                                                  "layout)", tr, pr, L.tp, L.pp), f)
            .with_hint("copy every mp_rank_* folder of the checkpoint");
      L.files.push_back(f);
    }
  return L;
}

// ---- args ---------------------------------------------------------------------------------------

const Value* ArgsView::find(std::string_view key) const {
  if (ns && ns->state && ns->state->kind == torch::Kind::Dict)
    if (const Value* v = ns->state->get(key); v && v->kind != torch::Kind::None) return v;
  return nullptr;
}

std::optional<int64_t> ArgsView::i(std::string_view key) const {
  if (const Value* v = find(key)) {
    if (v->kind == torch::Kind::Int) return v->i;
    if (v->kind == torch::Kind::Bool) return v->b ? 1 : 0;
  }
  if (auto it = meta.find(std::string(key)); it != meta.end() && it->is_number_integer()) return it->get<int64_t>();
  return std::nullopt;
}
std::optional<double> ArgsView::f(std::string_view key) const {
  if (const Value* v = find(key)) {
    if (v->kind == torch::Kind::Float) return v->f;
    if (v->kind == torch::Kind::Int) return double(v->i);
  }
  if (auto it = meta.find(std::string(key)); it != meta.end() && it->is_number()) return it->get<double>();
  return std::nullopt;
}
std::optional<bool> ArgsView::b(std::string_view key) const {
  if (const Value* v = find(key)) {
    if (v->kind == torch::Kind::Bool) return v->b;
    if (v->kind == torch::Kind::Int) return v->i != 0;
  }
  if (auto it = meta.find(std::string(key)); it != meta.end() && it->is_boolean()) return it->get<bool>();
  return std::nullopt;
}
std::optional<std::string> ArgsView::s(std::string_view key) const {
  if (const Value* v = find(key)) {
    if (v->kind == torch::Kind::String) return v->str;
    if (v->kind == torch::Kind::Global) return v->name;  // torch.bfloat16 -> "bfloat16"
  }
  if (auto it = meta.find(std::string(key)); it != meta.end() && it->is_string()) return it->get<std::string>();
  return std::nullopt;
}

Result<Hyper> hyper_from_args(const ArgsView& a, const Layout& L, const fs::path& file) {
  auto need = [&](const char* k) -> Result<int64_t> {
    auto v = a.i(k);
    if (!v || *v <= 0)
      return at(make_error(ErrorCode::NotFound, "args.{} is missing or not a positive integer", k), file)
          .with_hint("the checkpoint's args must carry the model's hyper-parameters");
    return *v;
  };
  Hyper h;
  h.num_layers = MC_TRY(need("num_layers"));
  h.hidden = MC_TRY(need("hidden_size"));
  h.heads = MC_TRY(need("num_attention_heads"));
  h.ffn = a.i("ffn_hidden_size").value_or(4 * h.hidden);
  h.groups = a.b("group_query_attention").value_or(false) ? MC_TRY(need("num_query_groups")) : h.heads;
  h.kv_channels = a.i("kv_channels").value_or(h.hidden / h.heads);
  h.max_pos = a.i("max_position_embeddings").value_or(a.i("seq_length").value_or(2048));
  h.seq_length = a.i("seq_length").value_or(h.max_pos);
  h.padded_vocab = MC_TRY(need("padded_vocab_size"));
  h.vocab = a.i("vocab_size").value_or(0);
  h.make_divisible_by = a.i("make_vocab_size_divisible_by").value_or(128);
  h.norm_eps = a.f("norm_epsilon").value_or(a.f("layernorm_epsilon").value_or(1e-5));
  h.rotary_base = a.f("rotary_base").value_or(10000.0);
  h.untie = a.b("untie_embeddings_and_output_weights").value_or(false);
  h.qkv_bias = a.b("add_qkv_bias").value_or(a.b("add_bias_linear").value_or(false));
  h.qk_norm = a.b("qk_layernorm").value_or(false);  // also set when the rank files hold q/k norms
  h.iteration = L.iteration;
  auto unsupported = [&](std::string what) {
    return at(make_error(ErrorCode::Unsupported, "{}", what), file)
        .with_hint("only Llama-like GPT models (RoPE, RMSNorm, SwiGLU, no linear biases) are converted");
  };
  if (a.b("add_bias_linear").value_or(false)) return unsupported("args.add_bias_linear is set (linear biases)");
  if (!a.b("swiglu").value_or(false)) return unsupported("args.swiglu is not set (the MLP is not SwiGLU)");
  if (auto n = a.s("normalization"); n && *n != "RMSNorm") return unsupported("args.normalization is " + *n);
  if (auto p = a.s("position_embedding_type"); p && *p != "rope")
    return unsupported("args.position_embedding_type is " + *p);
  if (a.i("virtual_pipeline_model_parallel_size").value_or(1) > 1)
    return unsupported("virtual pipeline stages (model0, model1, ...) are not supported");
  if (a.i("num_layers_in_first_pipeline_stage") || a.i("num_layers_in_last_pipeline_stage") ||
      a.i("decoder_first_pipeline_num_layers") || a.i("decoder_last_pipeline_num_layers"))
    return unsupported("uneven pipeline stages are not supported");
  if (a.i("num_experts").value_or(0) > 0) return unsupported("mixture-of-experts models are not supported");
  if (a.b("qk_l2_norm").value_or(false)) return unsupported("args.qk_l2_norm is set (weightless L2 q/k norms)");
  h.tp = L.tp;
  h.pp = L.pp;
  const auto tp = a.i("tensor_model_parallel_size"), pp = a.i("pipeline_model_parallel_size");
  if ((tp && *tp != L.tp) || (pp && *pp != L.pp) )
    return at(make_error(ErrorCode::Mismatch, "args say TP={} PP={} but the rank folders give TP={} PP={}",
                         tp.value_or(1), pp.value_or(1), L.tp, L.pp), L.iter_dir)
        .with_hint("a rank folder is missing or extra");
  if (h.heads % h.groups || h.groups % h.tp || h.ffn % h.tp || h.num_layers % h.pp || h.padded_vocab % h.tp)
    return at(make_error(ErrorCode::Mismatch, "args (heads {}, query groups {}, ffn {}, layers {}, padded vocab {}) "
                                              "cannot be split over TP={} PP={}", h.heads, h.groups, h.ffn,
                         h.num_layers, h.padded_vocab, h.tp, h.pp), file);
  if (auto dt = a.s("params_dtype")) {
    if (*dt == "bfloat16") h.dtype = DType::BF16;
    else if (*dt == "float16" || *dt == "half") h.dtype = DType::F16;
  } else if (a.b("bf16").value_or(false)) {
    h.dtype = DType::BF16;
  } else if (a.b("fp16").value_or(false)) {
    h.dtype = DType::F16;
  }
  return h;
}

std::span<const std::string_view> carried_names() { return kCarried; }

}  // namespace mc::megatron
