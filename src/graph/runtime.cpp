// Interpreter of graph.h's IR. Activations are [tokens, width] f32 buffers, freed after their last
// reader. MatMul splits the weight into tiles of output features whose size depends only on the
// shapes; each tile is converted to f32 into per-thread scratch (or used in place when it is
// already f32 in memory) and multiplied with OpenBLAS in the calling thread, so the result is the
// same for any thread count. Attention keeps a per-layer KV cache of every position.
#include "graph/runtime.h"
#include "quant/blas.h"


#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "graph/gemv.h"
#include "graph/weights.h"

namespace mc::graph {

namespace {
constexpr int64_t kTileFloats = 1 << 16;       // 256 KiB of f32 weights per MatMul tile
constexpr int64_t kMaxTokensPerStep = 1 << 16;  // activations are [tokens, width]

struct KvCache {
  std::vector<float> k, v;  // [positions, kv_heads * head_dim]
};

std::vector<float>& scratch() {
  thread_local std::vector<float> buf;
  return buf;
}
}  // namespace

struct RuntimeState {
  Graph graph;
  std::unordered_map<std::string, detail::Weight> weights;
  std::unordered_map<std::string, std::vector<float>> small;  // norms and biases, as f32
  std::vector<const detail::Weight*> op_weight;
  std::vector<const float*> op_wsmall, op_bias;
  std::vector<KvCache> kv;                  // per op (used by Attention ops)
  std::vector<int32_t> last_use;            // per value: index of the last op reading it
  std::vector<std::vector<float>> values;   // per value, live buffers
  std::vector<std::vector<float>> spare;    // freed buffers for reuse
  std::unique_ptr<ThreadPool> pool;
  size_t threads = 1;
  int64_t pos = 0;
  // Calibration: weights replaced by set_weight (the stored Weight, or the norm/bias values, to
  // go back to) and the f32 values in use.
  struct Override {
    detail::Weight stored;
    std::vector<float> stored_small;
    std::shared_ptr<std::vector<float>> values;
  };
  std::unordered_map<std::string, Override> overrides;

  std::vector<float> take(size_t n) {
    std::vector<float> b;
    if (!spare.empty()) {
      b = std::move(spare.back());
      spare.pop_back();
    }
    b.resize(n);
    return b;
  }
  void give(std::vector<float>& b) {
    if (b.capacity() > 0) spare.push_back(std::move(b));
    b = {};
  }

  Status run_op(size_t i, std::span<const int32_t> ids, int64_t S);
  Status matmul(const Op& op, const detail::Weight& w, const float* bias, const float* x, int64_t M,
                int64_t K, float* y, int64_t N);
  Status attention(const Op& op, KvCache& kv, const float* q, const float* k, const float* v, int64_t S,
                   float* out);
};

Runtime::Runtime(Runtime&&) noexcept = default;
Runtime& Runtime::operator=(Runtime&&) noexcept = default;
Runtime::~Runtime() = default;

const Graph& Runtime::graph() const { return s_->graph; }
size_t Runtime::threads() const { return s_->threads; }
int64_t Runtime::position() const { return s_->pos; }

void Runtime::reset() {
  for (auto& c : s_->kv) {
    c.k.clear();
    c.v.clear();
  }
  s_->pos = 0;
}

Result<Runtime> Runtime::load(const Model& model, size_t threads) {
  Graph g = MC_TRY(build_graph(model));
  return load(std::move(g), model.tensors, threads);
}

Result<Runtime> Runtime::load(Graph graph, const TensorStore& tensors, size_t threads) {
  MC_CHECK(check_weights(graph, tensors));
  // Parallelism is ours (fixed tiles across the pool); OpenBLAS runs each tile single-threaded.
  MC_CHECK(blas::load());
  blas::api().set_num_threads(1);
  auto s = std::make_unique<RuntimeState>();
  s->graph = std::move(graph);
  const Graph& g = s->graph;
  for (const auto& name : g.weight_names()) {
    const TensorEntry* e = tensors.find(name);
    if (!e) return make_error(ErrorCode::NotFound, "tensor '{}' is absent", name);
    s->weights.emplace(name, MC_TRY(detail::make_weight(*e)));
  }
  const size_t n_ops = g.ops.size();
  s->op_weight.assign(n_ops, nullptr);
  s->op_wsmall.assign(n_ops, nullptr);
  s->op_bias.assign(n_ops, nullptr);
  s->kv.resize(n_ops);
  s->last_use.assign(g.values.size(), -1);
  auto small = [&](const std::string& name) -> Result<const float*> {
    auto it = s->small.find(name);
    if (it == s->small.end())
      it = s->small.emplace(name, MC_TRY(detail::read_small(s->weights.at(name)))).first;
    return it->second.data();
  };
  for (size_t i = 0; i < n_ops; ++i) {
    const Op& op = g.ops[i];
    for (ValueId v : op.inputs) {
      if (v < 0 || static_cast<size_t>(v) >= g.values.size() || v == op.output)
        return make_error(ErrorCode::Internal, "op '{}' reads value {} out of range", op.name, v);
      s->last_use[static_cast<size_t>(v)] = static_cast<int32_t>(i);
    }
    const bool norm = op.kind == OpKind::RMSNorm || op.kind == OpKind::LayerNorm;
    if (!op.weight.empty()) {
      const detail::Weight& w = s->weights.at(op.weight);
      s->op_weight[i] = &w;
      if (norm) s->op_wsmall[i] = MC_TRY(small(op.weight));
      if (op.kind == OpKind::MatMul && op.weight_in_out && is_quantized(w.dtype)) {
        return make_error(ErrorCode::Unsupported, "a block-quantized weight stored [in, out]")
            .with_tensor(op.weight)
            .with_hint("transpose Conv1D weights to [out, in] before quantizing");
      }
    }
    if (!op.bias.empty()) s->op_bias[i] = MC_TRY(small(op.bias));
  }
  s->values.resize(g.values.size());
  s->threads = threads == 0 ? std::max<size_t>(1, std::thread::hardware_concurrency()) : threads;
  s->pool = std::make_unique<ThreadPool>(s->threads);
  Runtime rt;
  rt.s_ = std::move(s);
  return rt;
}

Result<std::vector<std::vector<float>>> Runtime::forward_all(std::span<const int32_t> ids) {
  reset();
  return step(ids);
}

Result<std::vector<int32_t>> Runtime::greedy(std::span<const int32_t> ids, int64_t n_new) {
  if (ids.empty()) return make_error(ErrorCode::InvalidArgument, "greedy decoding needs a prompt of at least one token");
  reset();
  std::vector<int32_t> out;
  auto logits = MC_TRY(step(ids));
  for (int64_t i = 0; i < n_new; ++i) {
    const auto& last = logits.back();
    const int32_t tok = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    out.push_back(tok);
    if (i + 1 < n_new) logits = MC_TRY(step(std::span<const int32_t>(&out.back(), 1)));
  }
  return out;
}

Result<std::vector<std::vector<float>>> Runtime::step(std::span<const int32_t> ids) {
  RuntimeState& s = *s_;
  const Graph& g = s.graph;
  const int64_t S = static_cast<int64_t>(ids.size());
  if (S == 0) return std::vector<std::vector<float>>{};
  if (S > kMaxTokensPerStep)
    return make_error(ErrorCode::LimitExceeded, "{} tokens in one step, the limit is {}", S, kMaxTokensPerStep);
  for (int64_t t = 0; t < S; ++t)
    if (ids[static_cast<size_t>(t)] < 0 || ids[static_cast<size_t>(t)] >= g.vocab_size) {
      return make_error(ErrorCode::InvalidArgument,
                        "token id {} at position {} is outside the vocabulary [0, {})",
                        ids[static_cast<size_t>(t)], t, g.vocab_size)
          .with_hint("use ids from this model's tokenizer");
    }
  if (g.max_positions > 0 && s.pos + S > g.max_positions) {
    return make_error(ErrorCode::LimitExceeded, "{} positions requested, the model has {}", s.pos + S,
                      g.max_positions)
        .with_hint("use a shorter prompt or fewer new tokens");
  }
  for (size_t i = 0; i < g.ops.size(); ++i) {
    Status st = s.run_op(i, ids, S);
    if (!st) {  // drop what this step appended, so the cache stays usable
      for (size_t j = 0; j < g.ops.size(); ++j) {
        const AttentionSpec& a = g.ops[j].attn;
        if (g.ops[j].kind != OpKind::Attention) continue;
        const size_t keep = static_cast<size_t>(s.pos * a.n_kv_heads * a.head_dim);
        s.kv[j].k.resize(std::min(keep, s.kv[j].k.size()));
        s.kv[j].v.resize(std::min(keep, s.kv[j].v.size()));
      }
      for (auto& v : s.values) s.give(v);
      return std::move(st).error();
    }
    for (ValueId v : g.ops[i].inputs)
      if (s.last_use[static_cast<size_t>(v)] == static_cast<int32_t>(i)) s.give(s.values[static_cast<size_t>(v)]);
  }
  s.pos += S;
  std::vector<float> logits = std::move(s.values[static_cast<size_t>(g.logits)]);
  for (auto& v : s.values) s.give(v);
  std::vector<std::vector<float>> out(static_cast<size_t>(S));
  const size_t V = static_cast<size_t>(g.vocab_size);
  for (size_t t = 0; t < out.size(); ++t) out[t].assign(logits.begin() + t * V, logits.begin() + (t + 1) * V);
  return out;
}

Status RuntimeState::run_op(size_t i, std::span<const int32_t> ids, int64_t S) {
  const Op& op = graph.ops[i];
  const int64_t W = graph.values[static_cast<size_t>(op.output)].width;
  std::vector<float> out = take(static_cast<size_t>(S * W));
  auto in = [&](size_t k) -> const float* { return values[static_cast<size_t>(op.inputs[k])].data(); };
  auto in_w = [&](size_t k) { return graph.values[static_cast<size_t>(op.inputs[k])].width; };
  float* y = out.data();
  const size_t n = out.size();
  switch (op.kind) {
    case OpKind::Embedding:
    case OpKind::PositionEmbedding: {
      const detail::Weight& w = *op_weight[i];
      for (int64_t t = 0; t < S; ++t) {
        const int64_t row = op.kind == OpKind::Embedding ? ids[static_cast<size_t>(t)] : pos + t;
        MC_CHECK(detail::read_rows(w, row, row + 1, y + t * W));
      }
      break;
    }
    case OpKind::RMSNorm:
    case OpKind::LayerNorm: {
      const float* x = in(0);
      const float* gw = op_wsmall[i];
      const float* b = op_bias[i];
      for (int64_t t = 0; t < S; ++t) {
        const float* xr = x + t * W;
        float* yr = y + t * W;
        if (op.kind == OpKind::RMSNorm) {
          const int64_t G = op.norm_group > 0 ? op.norm_group : W;
          for (int64_t g0 = 0; g0 < W; g0 += G) {
            double ss = 0;
            for (int64_t c = 0; c < G; ++c) ss += static_cast<double>(xr[g0 + c]) * xr[g0 + c];
            const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(G) + op.eps));
            for (int64_t c = 0; c < G; ++c) yr[g0 + c] = (op.weight_offset + gw[c]) * (xr[g0 + c] * r);
          }
        } else {
          double mean = 0, var = 0;
          for (int64_t c = 0; c < W; ++c) mean += xr[c];
          mean /= static_cast<double>(W);
          for (int64_t c = 0; c < W; ++c) var += (xr[c] - mean) * (xr[c] - mean);
          var /= static_cast<double>(W);
          const double r = 1.0 / std::sqrt(var + op.eps);
          for (int64_t c = 0; c < W; ++c)
            yr[c] = static_cast<float>((xr[c] - mean) * r) * gw[c] + (b ? b[c] : 0.0f);
        }
      }
      break;
    }
    case OpKind::MatMul:
      MC_CHECK(matmul(op, *op_weight[i], op_bias[i], in(0), S, in_w(0), y, W));
      break;
    case OpKind::Add: {
      const float *a = in(0), *b = in(1);
      for (size_t j = 0; j < n; ++j) y[j] = a[j] + b[j];
      break;
    }
    case OpKind::Mul: {
      const float *a = in(0), *b = in(1);
      for (size_t j = 0; j < n; ++j) y[j] = a[j] * b[j];
      break;
    }
    case OpKind::Scale: {
      const float* a = in(0);
      const float sc = static_cast<float>(op.scale);
      for (size_t j = 0; j < n; ++j) y[j] = a[j] * sc;
      break;
    }
    case OpKind::Slice: {
      const float* a = in(0);
      const int64_t iw = in_w(0);
      for (int64_t t = 0; t < S; ++t) std::memcpy(y + t * W, a + t * iw + op.begin, static_cast<size_t>(W) * sizeof(float));
      break;
    }
    case OpKind::SiLU: {
      const float* a = in(0);
      for (size_t j = 0; j < n; ++j) y[j] = a[j] / (1.0f + std::exp(-a[j]));
      break;
    }
    case OpKind::SwiGLU: {
      const float *gt = in(0), *up = in(1);
      for (size_t j = 0; j < n; ++j) y[j] = gt[j] / (1.0f + std::exp(-gt[j])) * up[j];
      break;
    }
    case OpKind::GELUTanh: {
      const float* a = in(0);
      const float k0 = 0.7978845608028654f;  // sqrt(2 / pi)
      for (size_t j = 0; j < n; ++j) {
        const float x = a[j];
        y[j] = 0.5f * x * (1.0f + std::tanh(k0 * (x + 0.044715f * x * x * x)));
      }
      break;
    }
    case OpKind::GELU: {
      const float* a = in(0);
      for (size_t j = 0; j < n; ++j) y[j] = 0.5f * a[j] * (1.0f + std::erf(a[j] * 0.7071067811865476f));
      break;
    }
    case OpKind::RoPE: {
      const RopeSpec& r = op.rope;
      if (r.max_position > 0 && pos + S > r.max_position)
        return make_error(ErrorCode::Unsupported, "position {} is past the {}-position range of {} RoPE", pos + S - 1,
                          r.max_position, r.scaling);
      const float* a = in(0);
      const int64_t half = r.head_dim / 2;
      std::vector<float> cs(static_cast<size_t>(2 * half));
      for (int64_t t = 0; t < S; ++t) {
        const float p = static_cast<float>(pos + t);
        for (int64_t f = 0; f < half; ++f) {
          const float ang = p * r.inv_freq[static_cast<size_t>(f)];
          cs[static_cast<size_t>(f)] = static_cast<float>(std::cos(static_cast<double>(ang))) * r.attention_factor;
          cs[static_cast<size_t>(half + f)] = static_cast<float>(std::sin(static_cast<double>(ang))) * r.attention_factor;
        }
        for (int64_t h = 0; h < r.n_heads; ++h) {
          const float* xr = a + t * W + h * r.head_dim;
          float* yr = y + t * W + h * r.head_dim;
          for (int64_t f = 0; f < half; ++f) {
            const float c = cs[static_cast<size_t>(f)], sn = cs[static_cast<size_t>(half + f)];
            yr[f] = xr[f] * c - xr[f + half] * sn;
            yr[f + half] = xr[f + half] * c + xr[f] * sn;
          }
        }
      }
      break;
    }
    case OpKind::Attention:
      MC_CHECK(attention(op, kv[i], in(0), in(1), in(2), S, y));
      break;
  }
  values[static_cast<size_t>(op.output)] = std::move(out);
  return {};
}

Status RuntimeState::matmul(const Op& op, const detail::Weight& w, const float* bias, const float* x,
                            int64_t M, int64_t K, float* y, int64_t N) {
  // Output features per tile: a function of the shapes only, never of the thread count.
  int64_t tile = std::max<int64_t>(16, kTileFloats / std::max<int64_t>(K, 1));
  tile = std::min(N, (tile + 15) / 16 * 16);
  const size_t n_tiles = static_cast<size_t>((N + tile - 1) / tile);
  return pool->parallel_for(n_tiles, 1, [&](size_t b, size_t e) -> Status {
    for (size_t ti = b; ti < e; ++ti) {
      const int64_t n0 = static_cast<int64_t>(ti) * tile, nt = std::min(tile, N - n0);
      std::vector<float>& buf = scratch();
      if (!op.weight_in_out && M == 1 && w.mem &&
          detail::gemv_half(w.dtype, w.mem + uint64_t(n0) * w.row_bytes, w.row_bytes, nt, K, x, y + n0)) {
        // one token over f16/bf16 rows in memory: fused convert-and-dot, no f32 copy
      } else if (!op.weight_in_out) {  // W is [N, K]: rows n0..n0+nt
        const float* wp = detail::direct_f32(w, n0);
        if (!wp) {
          buf.resize(static_cast<size_t>(nt * K));
          MC_CHECK(detail::read_rows(w, n0, n0 + nt, buf.data()));
          wp = buf.data();
        }
        if (M == 1)  // one token (generation): a matrix-vector product, no packing
          blas::api().sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(nt), static_cast<int>(K), 1.0f, wp,
                      static_cast<int>(K), x, 1, 0.0f, y + n0, 1);
        else
          blas::api().sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(nt),
                      static_cast<int>(K), 1.0f, x, static_cast<int>(K), wp, static_cast<int>(K), 0.0f, y + n0,
                      static_cast<int>(N));
      } else {  // W is [K, N]: columns n0..n0+nt
        const float* wp = detail::direct_f32(w, 0);
        int64_t ldb = N;
        if (wp) {
          wp += n0;
        } else {
          buf.resize(static_cast<size_t>(K * nt));
          MC_CHECK(detail::read_tile(w, 0, K, n0, n0 + nt, buf.data()));
          wp = buf.data();
          ldb = nt;
        }
        if (M == 1)
          blas::api().sgemv(CblasRowMajor, CblasTrans, static_cast<int>(K), static_cast<int>(nt), 1.0f, wp,
                      static_cast<int>(ldb), x, 1, 0.0f, y + n0, 1);
        else
          blas::api().sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(M), static_cast<int>(nt),
                      static_cast<int>(K), 1.0f, x, static_cast<int>(K), wp, static_cast<int>(ldb), 0.0f, y + n0,
                      static_cast<int>(N));
      }
      if (bias)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t j = 0; j < nt; ++j) y[m * N + n0 + j] += bias[n0 + j];
    }
    return {};
  });
}

Status RuntimeState::attention(const Op& op, KvCache& c, const float* q, const float* k, const float* v,
                               int64_t S, float* out) {
  const AttentionSpec& a = op.attn;
  const int64_t hd = a.head_dim, kvw = a.n_kv_heads * hd, qw = a.n_heads * hd;
  const int64_t group = a.n_heads / a.n_kv_heads;
  c.k.insert(c.k.end(), k, k + S * kvw);
  c.v.insert(c.v.end(), v, v + S * kvw);
  const int64_t total = pos + S;
  const float scale = static_cast<float>(a.scale);
  const size_t n_tasks = static_cast<size_t>(a.n_heads * S);
  return pool->parallel_for(n_tasks, 1, [&](size_t b, size_t e) -> Status {
    std::vector<float>& sc = scratch();
    sc.resize(static_cast<size_t>(total));
    for (size_t task = b; task < e; ++task) {
      const int64_t h = static_cast<int64_t>(task) / S, t = static_cast<int64_t>(task) % S;
      const int64_t p = pos + t;  // absolute position of this query
      const int64_t j0 = a.window ? std::max<int64_t>(0, p - *a.window + 1) : 0;
      const int64_t nk = p - j0 + 1;
      const float* kb = c.k.data() + j0 * kvw + (h / group) * hd;
      const float* vb = c.v.data() + j0 * kvw + (h / group) * hd;
      const float* qr = q + t * qw + h * hd;
      float* o = out + t * qw + h * hd;
      blas::api().sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(nk), static_cast<int>(hd), scale, kb,
                  static_cast<int>(kvw), qr, 1, 0.0f, sc.data(), 1);
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < nk; ++j) mx = std::max(mx, sc[static_cast<size_t>(j)]);
      double sum = 0;
      for (int64_t j = 0; j < nk; ++j) {
        sc[static_cast<size_t>(j)] = std::exp(sc[static_cast<size_t>(j)] - mx);
        sum += sc[static_cast<size_t>(j)];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < nk; ++j) sc[static_cast<size_t>(j)] *= inv;
      blas::api().sgemv(CblasRowMajor, CblasTrans, static_cast<int>(nk), static_cast<int>(hd), 1.0f, vb,
                  static_cast<int>(kvw), sc.data(), 1, 0.0f, o, 1);
    }
    return {};
  });
}

}  // namespace mc::graph

namespace mc::graph {

Result<std::vector<std::vector<float>>> Runtime::run_span(size_t first, size_t last, std::span<const int32_t> ids,
                                                          std::span<const std::pair<ValueId, const float*>> inputs,
                                                          std::span<const ValueId> outputs, const MatMulHook& hook) {
  RuntimeState& s = *s_;
  const Graph& g = s.graph;
  const int64_t S = static_cast<int64_t>(ids.size());
  if (first > last || last > g.ops.size())
    return make_error(ErrorCode::Internal, "op range [{}, {}) outside the graph's {} ops", first, last, g.ops.size());
  if (S == 0 || S > kMaxTokensPerStep)
    return make_error(ErrorCode::InvalidArgument, "a calibration sequence of {} tokens (1..{})", S, kMaxTokensPerStep);
  for (int64_t t = 0; t < S; ++t)
    if (ids[static_cast<size_t>(t)] < 0 || ids[static_cast<size_t>(t)] >= g.vocab_size)
      return make_error(ErrorCode::InvalidArgument, "token id {} is outside the vocabulary [0, {})",
                        ids[static_cast<size_t>(t)], g.vocab_size);
  reset();
  const std::unordered_set<ValueId> keep(outputs.begin(), outputs.end());
  for (const auto& [v, data] : inputs) {
    if (v < 0 || static_cast<size_t>(v) >= g.values.size())
      return make_error(ErrorCode::Internal, "input value {} out of range", v);
    const size_t n = static_cast<size_t>(S * g.values[static_cast<size_t>(v)].width);
    std::vector<float> b = s.take(n);
    std::memcpy(b.data(), data, n * sizeof(float));
    s.values[static_cast<size_t>(v)] = std::move(b);
  }
  auto cleanup = [&] {
    for (auto& v : s.values) s.give(v);
    reset();
  };
  for (size_t i = first; i < last; ++i) {
    const Op& op = g.ops[i];
    for (ValueId v : op.inputs)
      if (v > g.position_ids && s.values[static_cast<size_t>(v)].empty()) {
        cleanup();
        return make_error(ErrorCode::Internal, "op '{}' reads value '{}', which the span was not given", op.name,
                          g.values[static_cast<size_t>(v)].name);
      }
    if (hook && op.kind == OpKind::MatMul) {
      const ValueId x = op.inputs[0];
      Status st = hook(i, s.values[static_cast<size_t>(x)].data(), S, g.values[static_cast<size_t>(x)].width);
      if (!st) {
        cleanup();
        return std::move(st).error();
      }
    }
    Status st = s.run_op(i, ids, S);
    if (!st) {
      cleanup();
      return std::move(st).error();
    }
    for (ValueId v : op.inputs)
      if (s.last_use[static_cast<size_t>(v)] <= static_cast<int32_t>(i) && !keep.count(v))
        s.give(s.values[static_cast<size_t>(v)]);
  }
  std::vector<std::vector<float>> out;
  out.reserve(outputs.size());
  for (ValueId v : outputs) {
    if (v < 0 || static_cast<size_t>(v) >= g.values.size() || s.values[static_cast<size_t>(v)].empty()) {
      cleanup();
      return make_error(ErrorCode::Internal, "value {} was not computed by ops [{}, {})", v, first, last);
    }
    out.push_back(std::move(s.values[static_cast<size_t>(v)]));
  }
  cleanup();
  return out;
}

Status Runtime::set_weight(const std::string& name, std::vector<float> values) {
  RuntimeState& s = *s_;
  auto w = s.weights.find(name);
  if (w == s.weights.end()) return make_error(ErrorCode::Internal, "the graph reads no weight '{}'", name);
  auto ov = s.overrides.find(name);
  const detail::Weight& stored = ov == s.overrides.end() ? w->second : ov->second.stored;
  if (values.size() != static_cast<size_t>(stored.rows * stored.cols))
    return make_error(ErrorCode::Internal, "weight '{}' has {} x {} values, {} given", name, stored.rows,
                      stored.cols, values.size());
  if (ov == s.overrides.end()) {
    RuntimeState::Override o;
    o.stored = w->second;
    if (auto sm = s.small.find(name); sm != s.small.end()) o.stored_small = sm->second;
    ov = s.overrides.emplace(name, std::move(o)).first;
  }
  if (auto sm = s.small.find(name); sm != s.small.end()) {
    // Norms and biases: the ops hold pointers into these vectors, so copy in place.
    std::copy(values.begin(), values.end(), sm->second.begin());
  }
  auto owned = std::make_shared<std::vector<float>>(std::move(values));
  const auto* bytes = reinterpret_cast<const std::byte*>(owned->data());
  detail::Weight& cur = w->second;
  cur.dtype = DType::F32;
  cur.row_bytes = static_cast<uint64_t>(cur.cols) * sizeof(float);
  cur.data = std::make_shared<MemoryData>(owned, std::span<const std::byte>(bytes, owned->size() * sizeof(float)),
                                          false);
  cur.mem = bytes;
  ov->second.values = std::move(owned);
  return {};
}

void Runtime::restore_weight(const std::string& name) {
  RuntimeState& s = *s_;
  auto ov = s.overrides.find(name);
  if (ov == s.overrides.end()) return;
  s.weights.at(name) = ov->second.stored;
  if (auto sm = s.small.find(name); sm != s.small.end())
    std::copy(ov->second.stored_small.begin(), ov->second.stored_small.end(), sm->second.begin());
  s.overrides.erase(ov);
}

}  // namespace mc::graph
