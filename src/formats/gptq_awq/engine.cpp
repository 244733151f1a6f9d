// The GPTQ and AWQ engine rows, their detection, and what --quant / --quant-config /
// --calibration-samples / --seq-len may ask for.
//
// GPTQ --quant-config keys: bits (2, 3, 4, 8), group_size (-1 or > 0; default 128), sym (true),
// desc_act (false), static_groups (false), damp_percent (0.01, in (0, 1)), checkpoint_format /
// format ("gptq" for sym; asymmetric checkpoints are written as "gptq_v2", because v1 stores
// zero - 1 and a zero point of 0 cannot be stored: asking for "gptq" with sym false is refused),
// true_sequential (only true).
// AWQ --quant-config keys: bits (4 only), group_size (> 0; 128), zero_point (true only), version
// ("gemm" only), n_grid (20), duo_scaling (true), clip (true).
#include <nlohmann/json.hpp>

#include "formats/gptq_awq/gptq_awq.h"
#include "io/probe.h"

namespace mc::gptq_awq {

namespace {

constexpr std::string_view kGptqQuant[] = {"2bit", "3bit", "4bit", "8bit"};
constexpr std::string_view kAwqQuant[] = {"4bit"};

Error bad(std::string msg, std::string hint) {
  return make_error(ErrorCode::InvalidArgument, "{}", msg).with_hint(std::move(hint));
}

Result<bool> get_bool(const ojson& o, const char* key, bool dflt) {
  auto it = o.find(key);
  if (it == o.end()) return dflt;
  if (!it->is_boolean()) return bad(fmt::format("--quant-config \"{}\" must be true or false, got {}", key, it->dump()), "");
  return it->get<bool>();
}

Result<int64_t> get_int(const ojson& o, const char* key, int64_t dflt) {
  auto it = o.find(key);
  if (it == o.end()) return dflt;
  if (!it->is_number_integer()) return bad(fmt::format("--quant-config \"{}\" must be an integer, got {}", key, it->dump()), "");
  return it->get<int64_t>();
}

std::string quant_method_of(const fs::path& dir) {
  const auto cfg = nlohmann::json::parse(io::slurp_small(dir / "config.json"), nullptr, false);
  if (cfg.is_object())
    if (auto q = cfg.find("quantization_config"); q != cfg.end() && q->is_object())
      if (auto m = q->find("quant_method"); m != q->end() && m->is_string()) return m->get<std::string>();
  std::error_code ec;
  return fs::exists(dir / "quantize_config.json", ec) ? "gptq" : "";
}

}  // namespace

std::string_view method_name(Method m) { return m == Method::Gptq ? "gptq" : "awq"; }

formats::Confidence detect(Method m, const fs::path& p) {
  if (!io::is_dir(p)) return formats::Confidence::No;
  return quant_method_of(p) == method_name(m) ? formats::Confidence::Certain : formats::Confidence::No;
}

Result<QuantSpec> parse_spec(Method m, const formats::WriteOptions& opt) {
  QuantSpec s;
  s.method = m;
  const std::string name(method_name(m));
  if (!opt.quant.empty()) {
    std::string q = opt.quant;
    for (auto& ch : q) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (q.size() != 4 || !q.ends_with("bit") || q[0] < '2' || q[0] > '8')
      return bad(fmt::format("unknown {} quantization '{}'", name, opt.quant),
                 m == Method::Gptq ? "use --quant 2bit, 3bit, 4bit or 8bit" : "use --quant 4bit");
    s.bits = q[0] - '0';
  }
  const ojson qc = opt.quant_config.is_null() ? ojson::object() : opt.quant_config;
  if (!qc.is_object()) return bad("--quant-config must be a JSON object", "e.g. '{\"bits\": 4, \"group_size\": 128}'");
  static const std::vector<std::string_view> kGptqKeys = {"bits", "group_size", "sym", "desc_act", "static_groups",
                                                          "damp_percent", "checkpoint_format", "format",
                                                          "true_sequential", "quant_method"};
  static const std::vector<std::string_view> kAwqKeys = {"bits", "w_bit", "group_size", "q_group_size", "zero_point",
                                                         "version", "n_grid", "duo_scaling", "clip", "quant_method"};
  const auto& keys = m == Method::Gptq ? kGptqKeys : kAwqKeys;
  for (auto it = qc.begin(); it != qc.end(); ++it)
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) {
      std::string list;
      for (auto k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
      return bad(fmt::format("--quant-config key \"{}\" is not a {} setting", it.key(), name), "known keys: " + list);
    }
  if (auto it = qc.find("quant_method"); it != qc.end() && (!it->is_string() || it->get<std::string>() != name))
    return bad(fmt::format("--quant-config quant_method {} does not match the {} writer", it->dump(), name), "");
  for (const char* k : {"bits", "w_bit"}) {
    if (!qc.contains(k)) continue;
    const int64_t b = MC_TRY(get_int(qc, k, s.bits));
    if (!opt.quant.empty() && b != s.bits)
      return bad(fmt::format("--quant {} and --quant-config bits {} disagree", opt.quant, b), "give the bit width once");
    s.bits = static_cast<int>(b);
  }
  for (const char* k : {"group_size", "q_group_size"}) s.group_size = MC_TRY(get_int(qc, k, s.group_size));
  if (m == Method::Gptq) {
    if (s.bits != 2 && s.bits != 3 && s.bits != 4 && s.bits != 8)
      return bad(fmt::format("GPTQ stores 2, 3, 4 or 8 bits, not {}", s.bits), "use bits 2, 3, 4 or 8");
    if (s.group_size == 0 || s.group_size < -1)
      return bad(fmt::format("group_size {} is not valid", s.group_size), "use -1 (one group per row) or a positive size");
    s.sym = MC_TRY(get_bool(qc, "sym", true));
    s.desc_act = MC_TRY(get_bool(qc, "desc_act", false));
    s.static_groups = MC_TRY(get_bool(qc, "static_groups", false));
    if (!MC_TRY(get_bool(qc, "true_sequential", true)))
      return bad("true_sequential false is not supported", "sub-groups are always quantized in order (AutoGPTQ's default)");
    if (auto it = qc.find("damp_percent"); it != qc.end()) {
      if (!it->is_number() || !(it->get<double>() > 0 && it->get<double>() < 1))
        return bad(fmt::format("damp_percent {} must be a number in (0, 1)", it->dump()), "the default is 0.01");
      s.damp_percent = it->get<double>();
    }
    s.checkpoint_format = s.sym ? "gptq" : "gptq_v2";
    for (const char* k : {"checkpoint_format", "format"}) {
      auto it = qc.find(k);
      if (it == qc.end()) continue;
      const std::string f = it->is_string() ? it->get<std::string>() : "";
      if (f != "gptq" && f != "gptq_v2")
        return bad(fmt::format("checkpoint_format {} is not written", it->dump()), "use \"gptq\" or \"gptq_v2\"");
      if (f == "gptq" && !s.sym)
        return bad("asymmetric GPTQ cannot be written as checkpoint_format \"gptq\" (v1): v1 stores zero - 1, and a "
                   "zero point of 0 overflows into the neighbouring values",
                   "drop checkpoint_format (asymmetric models are written as \"gptq_v2\"), or use sym true");
      s.checkpoint_format = f;
    }
  } else {
    if (s.bits != 4) return bad(fmt::format("AWQ (GEMM) stores 4-bit weights only, not {} bits", s.bits), "use --quant 4bit");
    if (s.group_size <= 0)
      return bad(fmt::format("AWQ needs a positive group_size, not {}", s.group_size), "the default is 128");
    if (!MC_TRY(get_bool(qc, "zero_point", true)))
      return bad("zero_point false is not supported", "AutoAWQ's GEMM kernels need zero points");
    if (auto it = qc.find("version"); it != qc.end()) {
      std::string v = it->is_string() ? it->get<std::string>() : "";
      for (auto& ch : v) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      if (v != "gemm") return bad(fmt::format("AWQ version {} is not written", it->dump()), "only \"gemm\" is written");
    }
    const int64_t n_grid = MC_TRY(get_int(qc, "n_grid", 20));
    if (n_grid < 1 || n_grid > 1000) return bad(fmt::format("n_grid {} is outside 1..1000", n_grid), "the default is 20");
    s.n_grid = static_cast<int>(n_grid);
    s.duo_scaling = MC_TRY(get_bool(qc, "duo_scaling", true));
    s.clip = MC_TRY(get_bool(qc, "clip", true));
  }
  if (opt.calibration_samples) s.samples = *opt.calibration_samples;
  if (opt.seq_len) s.seq_len = *opt.seq_len;
  if (s.samples < 1) return bad("--calibration-samples must be at least 1", "");
  if (s.seq_len < 2) return bad("--seq-len must be at least 2", "");
  return s;
}

namespace {
Result<formats::WriteResult> write_gptq(const Model& m, const fs::path& out, const formats::WriteOptions& o) {
  return write_dir(Method::Gptq, m, out, o);
}
Result<formats::WriteResult> write_awq(const Model& m, const fs::path& out, const formats::WriteOptions& o) {
  return write_dir(Method::Awq, m, out, o);
}
bool llama_like(const arch::FamilyInfo& f) { return f.decoder == arch::Decoder::LlamaLike; }
}  // namespace

const formats::Engine& gptq_engine() {
  static const formats::Engine e{
      .id = "gptq",
      .description = "GPTQ-quantized HuggingFace directory (transformers, vLLM, AutoGPTQ, GPTQModel)",
      .detect = [](const fs::path& p) { return detect(Method::Gptq, p); },
      .read = read_dir,
      .write = write_gptq,
      .validate = validate_dir,
      .describe = describe_dir,
      .caps = {.quant = kGptqQuant,
               .quant_help = "GPTQ with calibration (bits 2/3/4/8, group_size 128, sym, desc_act false, damp 0.01)",
               .quant_config = true,
               .dtype = false,
               .shard_size = true,
               .calibration = true},
      .takes_family = llama_like,
  };
  return e;
}

const formats::Engine& awq_engine() {
  static const formats::Engine e{
      .id = "awq",
      .description = "AWQ-quantized HuggingFace directory (AutoAWQ GEMM; transformers, vLLM)",
      .detect = [](const fs::path& p) { return detect(Method::Awq, p); },
      .read = read_dir,
      .write = write_awq,
      .validate = validate_dir,
      .describe = describe_dir,
      .caps = {.quant = kAwqQuant,
               .quant_help = "AWQ with calibration (4 bits, group_size 128, zero point, GEMM layout)",
               .quant_config = true,
               .dtype = false,
               .shard_size = true,
               .calibration = true},
      .takes_family = llama_like,
  };
  return e;
}

}  // namespace mc::gptq_awq
