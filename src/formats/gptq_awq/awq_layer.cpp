// AWQ over one decoder layer (AutoAWQ's AwqQuantizer.quantize):
//  1. the float layer runs on every calibration sequence, keeping each Linear's input and the
//     layer's output (the next layer's input: AWQ propagates through the float model);
//  2. per scaling group of the family (below), the grid search: for ratio k/n_grid the candidate
//     scales s, the group's Linears replaced by Q(W * s) / s, the inspected module run on every
//     sequence, loss = mean squared error against the float output; the best s wins;
//  3. all groups' scales are applied: the previous op divided by s (a norm's weight, or the last
//     len(s) output rows and bias of a previous Linear), the group's Linears multiplied by s per
//     input column, their recorded inputs divided by s;
//  4. the clipping search on every Linear but q/k, on 512 strided input tokens;
//  5. each Linear quantized (zero point, 4 bits, groups along the input).
// For a group that inspects only its own Linear (v -> o, up -> down) the loss is computed from
// the inputs' Gram matrix instead of re-running the tokens (the same number, fewer FLOPs).
// Scaling groups of the llama-like decoder (AutoAWQ's LlamaAWQForCausalLM, also used for
// Mistral, Qwen2 and MiniCPM): input_layernorm -> [q, k, v] inspected through the attention
// block up to o_proj; v_proj -> [o_proj] only when their shapes match (no GQA);
// post_attention_layernorm -> [gate, up] inspected through the MLP; up_proj -> [down_proj].
// A norm that scales by (1 + w) (Gemma) is scaled as a whole, as AutoAWQ does for GemmaRMSNorm.

#include <algorithm>
#include <cmath>

#include "formats/gptq_awq/driver.h"
#include "quant/awq.h"
#include "quant/blas_threads.h"

namespace mc::gptq_awq {

namespace {

struct ScalingGroup {
  std::string_view prev;  // module before the group (a norm, or a Linear)
  bool prev_is_norm;
  std::vector<std::string_view> linears;
  std::string_view inspect_last;  // the inspected module ends with this Linear
  bool only_if_square;            // prev Linear's output must match the group's input
};

const std::vector<ScalingGroup>& llama_like_groups() {
  static const std::vector<ScalingGroup> kGroups = {
      {"input_layernorm", true, {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}, "self_attn.o_proj", false},
      {"self_attn.v_proj", false, {"self_attn.o_proj"}, "self_attn.o_proj", true},
      {"post_attention_layernorm", true, {"mlp.gate_proj", "mlp.up_proj"}, "mlp.down_proj", false},
      {"mlp.up_proj", false, {"mlp.down_proj"}, "mlp.down_proj", false},
      // Fused projections (Phi-3, AutoAWQ's Phi3AWQForCausalLM): no qkv -> o group; the up half
      // of gate_up_proj (its last rows) is the previous op of down_proj.
      {"input_layernorm", true, {"self_attn.qkv_proj"}, "self_attn.o_proj", false},
      {"post_attention_layernorm", true, {"mlp.gate_up_proj"}, "mlp.down_proj", false},
      {"mlp.gate_up_proj", false, {"mlp.down_proj"}, "mlp.down_proj", false},
  };
  return kGroups;
}

struct Lin {
  size_t op = 0;
  int64_t out = 0, in = 0;
  std::vector<float> w;  // [out][in], as scaled so far
};

// Sum over sequences of ||a - b||^2.
double sq_err(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - double(b[i]);
    e += d * d;
  }
  return e;
}

}  // namespace

Status awq_layer(LayerContext& c, ValueStore& store) {
  const graph::Graph& g = c.g;
  const int64_t gs = c.spec.group_size;
  // 1. Float pass: every Linear's input and the layer output.
  std::vector<ValueId> keep{c.layer.output};
  for (size_t op : c.layer.matmuls)
    if (std::find(keep.begin(), keep.end(), g.ops[op].inputs[0]) == keep.end()) keep.push_back(g.ops[op].inputs[0]);
  MC_CHECK(run_segment(c.rt, c.cal, c.layer.first, c.layer.last, store, keep));

  // The layer's Linears by module name ("self_attn.q_proj"), and the layer's name prefix.
  std::map<std::string, Lin> lins;
  std::string prefix;
  for (size_t op : c.layer.matmuls) {
    const std::string& wname = g.ops[op].weight;
    for (const auto& grp : llama_like_groups())
      for (auto m : grp.linears) {
        const std::string suffix = std::string(m) + ".weight";
        if (wname.size() > suffix.size() && wname.ends_with("." + suffix)) {
          prefix = wname.substr(0, wname.size() - suffix.size());
          Lin l;
          l.op = op;
          l.w = MC_TRY(linear_weight(c.model, g.ops[op], &l.out, &l.in));
          lins[std::string(m)] = std::move(l);
        }
      }
  }
  if (lins.size() != c.layer.matmuls.size())
    return make_error(ErrorCode::Unsupported, "AWQ knows {} of the {} Linears of layer ops {}..{}", lins.size(),
                      c.layer.matmuls.size(), c.layer.first, c.layer.last)
        .with_hint("AWQ's scaling groups are defined for llama-like decoders");

  // 2. Grid search per scaling group, on the float weights.
  struct Found {
    const ScalingGroup* grp;
    std::vector<float> s;
  };
  std::vector<Found> found;
  for (const auto& grp : llama_like_groups()) {
    bool have = true;
    for (auto m : grp.linears) have = have && lins.count(std::string(m));
    if (!have || !lins.count(std::string(grp.inspect_last))) continue;
    const Lin& first = lins.at(std::string(grp.linears.front()));
    if (!grp.prev_is_norm) {
      if (!lins.count(std::string(grp.prev))) continue;
      if (grp.only_if_square && lins.at(std::string(grp.prev)).out != first.in) continue;
    }
    const ValueId x = g.ops[first.op].inputs[0];
    const int64_t in = first.in;
    const auto& xs = store.at(x);
    std::vector<double> xsum(static_cast<size_t>(in), 0.0);
    int64_t n_tok = 0;
    for (const auto& seq : xs) {
      const int64_t T = static_cast<int64_t>(seq.size()) / in;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < in; ++i) xsum[static_cast<size_t>(i)] += std::fabs(double(seq[static_cast<size_t>(t * in + i)]));
      n_tok += T;
    }
    std::vector<float> x_mean(static_cast<size_t>(in)), w_mean(static_cast<size_t>(in));
    for (int64_t i = 0; i < in; ++i) x_mean[static_cast<size_t>(i)] = static_cast<float>(xsum[static_cast<size_t>(i)] / double(n_tok));
    std::vector<double> wacc;
    int64_t rows = 0;
    for (auto m : grp.linears) {
      const Lin& l = lins.at(std::string(m));
      quant::awq_add_w_scale(l.w.data(), l.out, l.in, gs, wacc);
      rows += l.out;
    }
    for (int64_t i = 0; i < in; ++i) w_mean[static_cast<size_t>(i)] = static_cast<float>(wacc[static_cast<size_t>(i)] / double(rows));

    const size_t span0 = first.op, span1 = lins.at(std::string(grp.inspect_last)).op + 1;
    const ValueId yv = g.ops[span1 - 1].output;
    auto run_all = [&](std::vector<std::vector<float>>* ref, double* loss) -> Status {
      *loss = 0;
      for (size_t s = 0; s < c.cal.seqs.size(); ++s) {
        const std::pair<ValueId, const float*> in_v{x, xs[s].data()};
        auto outs = MC_TRY(c.rt.run_span(span0, span1, c.cal.seqs[s], std::span(&in_v, 1), std::span(&yv, 1)));
        if (ref->size() < c.cal.seqs.size()) ref->push_back(std::move(outs[0]));
        else *loss += sq_err(outs[0], (*ref)[s]);
      }
      return {};
    };
    // A group whose inspected module is its one Linear: the output error of W' is exactly
    // sum_o (W' - W)_o G (W' - W)_o^T with G = sum_t x_t x_t^T, cheaper than running the
    // tokens again when there are more tokens than inputs.
    const bool gram = grp.linears.size() == 1 && span1 == span0 + 1 && n_tok > in;
    std::vector<float> gmat;
    std::vector<std::vector<float>> ref;
    double loss = 0;
    if (gram) {
      quant::BlasThreads blas(c.threads);
      gmat.assign(static_cast<size_t>(in * in), 0.0f);
      for (const auto& seq : xs)
        blas::api().ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(in), static_cast<int>(seq.size() / size_t(in)),
                    1.0f, seq.data(), static_cast<int>(in), 1.0f, gmat.data(), static_cast<int>(in));
      for (int64_t r = 0; r < in; ++r)
        for (int64_t q2 = 0; q2 < r; ++q2) gmat[static_cast<size_t>(r * in + q2)] = gmat[static_cast<size_t>(q2 * in + r)];
    } else {
      MC_CHECK(run_all(&ref, &loss));
    }
    double best = INFINITY;
    std::vector<float> best_s;
    for (int k = 0; k < c.spec.n_grid; ++k) {
      const double ratio = double(k) / double(c.spec.n_grid);
      const auto s = quant::awq_candidate_scales(x_mean, w_mean, ratio, c.spec.duo_scaling);
      for (auto m : grp.linears) {
        const Lin& l = lins.at(std::string(m));
        std::vector<float> w = l.w;
        for (int64_t o = 0; o < l.out; ++o)
          for (int64_t i = 0; i < l.in; ++i) w[static_cast<size_t>(o * l.in + i)] *= s[static_cast<size_t>(i)];
        quant::awq_pseudo_quantize(w.data(), l.out, l.in, gs);
        for (int64_t o = 0; o < l.out; ++o)
          for (int64_t i = 0; i < l.in; ++i) w[static_cast<size_t>(o * l.in + i)] /= s[static_cast<size_t>(i)];
        if (gram) {
          quant::BlasThreads blas(c.threads);
          for (size_t j = 0; j < w.size(); ++j) w[j] -= l.w[j];
          std::vector<float> e(w.size());
          blas::api().ssymm(CblasRowMajor, CblasRight, CblasUpper, static_cast<int>(l.out), static_cast<int>(in), 1.0f,
                      gmat.data(), static_cast<int>(in), w.data(), static_cast<int>(in), 0.0f, e.data(),
                      static_cast<int>(in));
          loss = 0;
          for (size_t j = 0; j < w.size(); ++j) loss += double(w[j]) * e[j];
        } else {
          MC_CHECK(c.rt.set_weight(g.ops[l.op].weight, std::move(w)));
        }
      }
      if (!gram) MC_CHECK(run_all(&ref, &loss));
      if (loss < best) {
        best = loss;
        best_s = s;
      }
    }
    for (auto m : grp.linears) c.rt.restore_weight(g.ops[lins.at(std::string(m)).op].weight);
    if (best_s.empty())
      return make_error(ErrorCode::Internal, "AWQ found no finite loss for the scales of {}", grp.linears.front());
    found.push_back({&grp, std::move(best_s)});
  }

  // 3. Apply the scales.
  for (const auto& f : found) {
    const auto& s = f.s;
    const int64_t n = static_cast<int64_t>(s.size());
    if (f.grp->prev_is_norm) {
      const std::string name = prefix + std::string(f.grp->prev) + ".weight";
      auto it = c.sink.replaced.find(name);
      if (it == c.sink.replaced.end()) {
        const TensorEntry* e = MC_TRY(c.model.tensors.require(name));
        it = c.sink.replaced.emplace(name, MC_TRY(read_f32(*e))).first;
      }
      if (static_cast<int64_t>(it->second.size()) != n)
        return make_error(ErrorCode::Mismatch, "norm of {} values before Linears of {} inputs", it->second.size(), n)
            .with_tensor(name);
      // A norm that scales by (offset + w) (Gemma's 1 + w) is divided as a whole: w' = (offset + w) / s - offset.
      float offset = 0.0f;
      for (const auto& op : g.ops)
        if (op.kind == graph::OpKind::RMSNorm && op.weight == name) offset = op.weight_offset;
      for (int64_t i = 0; i < n; ++i) {
        float& w = it->second[static_cast<size_t>(i)];
        w = (offset + w) / s[static_cast<size_t>(i)] - offset;
      }
    } else {
      Lin& p = lins.at(std::string(f.grp->prev));
      const int64_t r0 = p.out - n;
      for (int64_t r = r0; r < p.out; ++r)
        for (int64_t i = 0; i < p.in; ++i) p.w[static_cast<size_t>(r * p.in + i)] /= s[static_cast<size_t>(r - r0)];
      const std::string bname = prefix + std::string(f.grp->prev) + ".bias";
      if (const TensorEntry* be = c.model.tensors.find(bname)) {
        auto it = c.sink.replaced.find(bname);
        if (it == c.sink.replaced.end()) it = c.sink.replaced.emplace(bname, MC_TRY(read_f32(*be))).first;
        for (int64_t r = r0; r < p.out; ++r) it->second[static_cast<size_t>(r)] /= s[static_cast<size_t>(r - r0)];
      }
    }
    for (auto m : f.grp->linears) {
      Lin& l = lins.at(std::string(m));
      for (int64_t o = 0; o < l.out; ++o)
        for (int64_t i = 0; i < l.in; ++i) l.w[static_cast<size_t>(o * l.in + i)] *= s[static_cast<size_t>(i)];
    }
    const ValueId x = g.ops[lins.at(std::string(f.grp->linears.front())).op].inputs[0];
    for (auto& seq : store.at(x))
      for (size_t j = 0; j < seq.size(); ++j) seq[j] /= s[j % static_cast<size_t>(n)];
  }

  // 4-5. Clip (not q/k), quantize.
  constexpr int64_t kClipTokens = 512;
  for (auto& [name, l] : lins) {
    if (c.spec.clip && name != "self_attn.q_proj" && name != "self_attn.k_proj") {
      const auto& xs = store.at(g.ops[l.op].inputs[0]);
      int64_t total = 0;
      for (const auto& seq : xs) total += static_cast<int64_t>(seq.size()) / l.in;
      const int64_t step = std::max<int64_t>(1, total / kClipTokens);
      std::vector<float> xsamp;
      int64_t t_global = 0, taken = 0;
      for (const auto& seq : xs) {
        const int64_t T = static_cast<int64_t>(seq.size()) / l.in;
        for (int64_t t = 0; t < T; ++t, ++t_global)
          if (t_global % step == 0) {
            xsamp.insert(xsamp.end(), seq.begin() + t * l.in, seq.begin() + (t + 1) * l.in);
            ++taken;
          }
      }
      quant::awq_clip(l.w.data(), l.out, l.in, gs, xsamp.data(), taken, c.threads);
    }
    const quant::GroupQuant q = quant::awq_quantize(l.w.data(), l.out, l.in, gs);
    MC_CHECK(c.sink.put(g.ops[l.op].weight, q));
  }
  for (auto it = store.begin(); it != store.end();)
    it = it->first == c.layer.output ? std::next(it) : store.erase(it);
  return {};
}

}  // namespace mc::gptq_awq
