#include "converter/check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>

#include "converter/input_checks.h"
#include "converter/registry.h"
#include "graph/compare.h"
#include "graph/runtime.h"
#include "io/mapped_file.h"
#include "tokenizer/loaders.h"
#include "tokenizer/text_stream.h"

namespace mc::converter {

namespace {

Result<std::string> extra_text(const ExtraFile& f) {
  if (f.content) return *f.content;
  return io::read_text_file(f.source.string(), size_t(256) << 20);
}

// The weakest stored type among the matrices decides the comparison rule (issue thresholds).
enum class Precision { F32, Half, Quantized };
struct Weakest {
  Precision precision = Precision::F32;
  double bits_per_weight = 32;  // of the lowest-bit quantized matrix
};
Weakest weakest(const Model& m) {
  Weakest w;
  for (const auto& t : m.tensors) {
    if (t.shape.size() < 2) continue;
    const auto& info = dtype_info(t.dtype);
    if (t.stored_bits > 0 && t.stored_bits < 16) {
      w.precision = Precision::Quantized;
      w.bits_per_weight = std::min(w.bits_per_weight, t.stored_bits);
    } else if (is_quantized(t.dtype)) {
      w.precision = Precision::Quantized;
      w.bits_per_weight = std::min(w.bits_per_weight, 8.0 * info.block_bytes / info.block_elems);
    } else if (!info.is_float || info.block_bytes < 4) {
      if (w.precision == Precision::F32) w.precision = Precision::Half;
    }
  }
  return w;
}

// Quantized rules, set from measurements (README "check thresholds"): on the trained
// stories260K model with 8 fixed ids, q8_0 gave mean KL 0.002 and top-1 0.875, q5_k_m/q4_k_m
// 0.04-0.06, q3_k_m/q2_k 0.28-0.43; on random test models all are below 0.02. 6+ bits must keep
// the greedy token at most positions; below that only the distribution distance is bounded.
struct QuantRule {
  double min_bits;
  double max_mean_kl;
  double min_top1;
};
constexpr QuantRule kQuantRules[] = {
    {6.0, 0.02, 0.75},  // q8_0, q6_k
    {4.0, 0.15, 0.0},   // q4_*, q5_*, q4_k, q5_k
    {0.0, 0.75, 0.0},   // q2_k, q3_k
};
}  // namespace

ojson CheckReport::to_json() const {
  ojson j = ojson::object();
  j["prompt_ids"] = prompt_ids;
  j["greedy_ids"] = greedy_ids;
  j["timings"] = {{"load_s", load_seconds},
                  {"prompt_s", prompt_seconds},
                  {"prompt_tokens", prompt_ids.size()},
                  {"generate_s", generate_seconds},
                  {"generated_steps", generated_steps}};
  if (!greedy_text.empty()) j["greedy_text"] = greedy_text;
  if (compared) {
    j["comparison"] = comparison;
    j["rule"] = rule;
    j["pass"] = pass;
  }
  return j;
}

Result<tok::Tokenizer> tokenizer_for(const Model& m) {
  std::optional<tok::Vocab> v;
  if (const auto* f = m.find_extra("tokenizer.json")) {
    auto text = MC_TRY(extra_text(*f));
    v = MC_TRY(tok::parse_tokenizer_json(text, f->source.string()));
  } else if (const auto* f2 = m.find_extra("tokenizer.model")) {
    auto text = MC_TRY(extra_text(*f2));
    v = MC_TRY(tok::parse_sentencepiece_model(text, f2->source.string()));
  } else {
    return make_error(ErrorCode::NotFound,
                      "the model has no tokenizer (tokenizer.json, tokenizer.model or a GGUF vocabulary)")
        .with_path(m.source_path)
        .with_hint("pass token ids with --ids");
  }
  if (const auto* c = m.find_extra("tokenizer_config.json")) {
    auto text = MC_TRY(extra_text(*c));
    MC_CHECK(tok::apply_tokenizer_config(*v, text, c->source.string()));
  }
  return tok::Tokenizer::create(std::move(*v));
}

Result<tok::Tokenizer> tokenizer_from_path(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) {
    if (p.filename() == "tokenizer.json" || (p.extension() == ".json" && p.filename() != "config.json")) {
      auto v = MC_TRY(tok::load_tokenizer_json(p.string()));
      const fs::path cfg = p.parent_path() / "tokenizer_config.json";
      if (fs::is_regular_file(cfg, ec)) {
        auto text = MC_TRY(io::read_text_file(cfg.string()));
        MC_CHECK(tok::apply_tokenizer_config(v, text, cfg.string()));
      }
      return tok::Tokenizer::create(std::move(v));
    }
    if (p.extension() == ".model") return tok::Tokenizer::create(MC_TRY(tok::load_sentencepiece_model(p.string())));
    // A file that stores its own vocabulary (GGUF): only that is needed, so vocabulary-only
    // files and architectures we do not convert (falcon, mpt, ...) tokenize too.
    const formats::Detection d = formats::detect(p);
    if (d.engine && d.engine->embedded_vocab && d.confidence >= formats::Confidence::Likely)
      return tok::Tokenizer::create(MC_TRY(d.engine->embedded_vocab(p)));
  }
  formats::ReadOptions ro;
  auto m = MC_TRY(read_input(p, "auto", ro));
  return tokenizer_for(m);
}

Result<CheckReport> check(const CheckRequest& req) {
  CheckReport rep;
  formats::ReadOptions ro;
  Model model = MC_TRY(read_input(req.model, "auto", ro));
  MC_CHECK(check_input(model));
  rep.prompt_ids = req.ids;
  std::optional<tok::Tokenizer> tk;
  if (auto t = tokenizer_for(model)) tk = std::move(*t);
  if (rep.prompt_ids.empty()) {
    if (!tk && req.prompt) {
      return make_error(ErrorCode::InvalidArgument, "--prompt needs a tokenizer and the model has none")
          .with_path(req.model.string())
          .with_hint("pass token ids with --ids 1,2,3");
    }
    if (tk) {
      rep.prompt_ids = tk->encode(req.prompt.value_or("Once upon a time"), /*add_special=*/true);
    } else {
      // No tokenizer and no ids: a fixed id sequence still exercises every weight.
      rep.prompt_ids = {1, 2, 3, 4, 5, 6, 7, 8};
    }
  }
  if (rep.prompt_ids.empty()) return make_error(ErrorCode::InvalidArgument, "the prompt gives no tokens");

  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  // Progress in tokens: the prompt, each generated token, and the source's prompt pass.
  const uint64_t n_prompt = rep.prompt_ids.size();
  const uint64_t n_steps = req.max_new_tokens > 1 ? uint64_t(req.max_new_tokens - 1) : 0;
  std::optional<Progress> progress;
  if (req.progress) {
    progress.emplace("check", false, req.progress);
    progress->add_total(n_prompt + n_steps + (req.compare ? n_prompt : 0));
  }
  auto advance = [&](uint64_t n) {
    if (progress) progress->add_done(n);
  };
  auto t0 = Clock::now();
  auto rt = MC_TRY(graph::Runtime::load(model, req.threads));
  rep.load_seconds = seconds_since(t0);
  t0 = Clock::now();
  rep.logits = MC_TRY(rt.forward_all(rep.prompt_ids));
  rep.prompt_seconds = seconds_since(t0);
  advance(n_prompt);
  if (req.max_new_tokens > 0) {
    // Greedy decoding goes on from the prompt already in the KV cache: the same ids as
    // Runtime::greedy (ties pick the lowest id) without a second prompt pass.
    t0 = Clock::now();
    std::vector<float> last = rep.logits.back();
    for (int64_t i = 0; i < req.max_new_tokens; ++i) {
      rep.greedy_ids.push_back(static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
      if (i + 1 == req.max_new_tokens) break;
      auto next = MC_TRY(rt.step(std::span<const int32_t>(&rep.greedy_ids.back(), 1)));
      last = std::move(next.back());
      ++rep.generated_steps;
      advance(1);
    }
    rep.generate_seconds = seconds_since(t0);
    // Byte tokens may split a character or be no UTF-8 at all (random models): a terminal gets
    // whole characters and U+FFFD (tokenizer/text_stream.h).
    if (tk) rep.greedy_text = tok::to_valid_utf8(tk->decode(rep.greedy_ids));
  }

  if (req.compare) {
    Model src = MC_TRY(read_input(*req.compare, "auto", ro));
    MC_CHECK(check_input(src));
    auto srt = MC_TRY(graph::Runtime::load(src, req.threads));
    auto src_logits = MC_TRY(srt.forward_all(rep.prompt_ids));
    advance(n_prompt);
    auto cmp = MC_TRY(graph::compare_logits(src_logits, rep.logits));
    rep.compared = true;
    const double range = std::max(1.0, double(cmp.source_max - cmp.source_min));
    rep.comparison = {{"max_abs_diff", cmp.max_abs_diff},       {"source_logit_range", cmp.source_max - cmp.source_min},
                      {"top1_agreement", cmp.top1_agreement},   {"mean_kl", cmp.mean_kl},
                      {"max_kl", cmp.max_kl},                   {"positions", cmp.positions}};
    const Weakest wa = weakest(model), wb = weakest(src);
    const Precision prec = Precision(std::max(int(wa.precision), int(wb.precision)));
    const double bits = std::min(wa.bits_per_weight, wb.bits_per_weight);
    switch (prec) {
      case Precision::F32:
        rep.rule = "f32: max |dlogit| <= 1e-4 x max(1, source range) and top-1 agreement at every position";
        rep.pass = cmp.max_abs_diff <= 1e-4 * range && cmp.top1_agreement == 1.0;
        break;
      case Precision::Half:
        rep.rule = "f16/bf16: max |dlogit| <= 1e-2 x max(1, source range)";
        rep.pass = cmp.max_abs_diff <= 1e-2 * range;
        break;
      case Precision::Quantized:
        for (const auto& r : kQuantRules) {
          if (bits < r.min_bits) continue;
          rep.rule = fmt::format("quantized ({:.2f} bits/weight): mean KL <= {} nats and top-1 agreement >= {}",
                                 bits, r.max_mean_kl, r.min_top1);
          rep.pass = cmp.mean_kl <= r.max_mean_kl && cmp.top1_agreement >= r.min_top1;
          break;
        }
        break;
    }
  }
  if (req.dump_logits) {
    ojson j = {{"prompt_ids", rep.prompt_ids}, {"logits_all", rep.logits}, {"greedy_ids", rep.greedy_ids}};
    std::ofstream f(*req.dump_logits);
    f << j.dump() << "\n";
    if (!f) {
      return make_error(ErrorCode::Io, "cannot write the logits dump").with_path(req.dump_logits->string());
    }
  }
  return rep;
}

}  // namespace mc::converter
