// mlx-lm directory writer (formats.md §8), laid out as mlx_lm.convert's `save` does:
//   config.json                   top-level keys sorted, indent 4, ASCII-escaped (json.dump), with
//                                 "quantization": {"group_size", "bits", "mode"} and the same
//                                 object under "quantization_config" when quantized
//   model.safetensors | model-0000K-of-0000N.safetensors   __metadata__ {"format": "mlx"},
//                                 shards of at most 5 GiB (mlx-lm's MAX_FILE_SIZE_GB << 30)
//   model.safetensors.index.json  always; indent 4; metadata.total_size (bytes of all tensors)
//                                 and metadata.total_parameters (parameters before packing);
//                                 weight_map sorted by name
//   tokenizer / generation files  carried from the input unchanged
// Names stay HF's (the MLX model classes mirror HF module names); `*.rotary_emb.inv_freq` is
// dropped, and `lm_head.weight` too when the config ties the embeddings. Every 2-D `*.weight`
// (the Linear and Embedding modules of the supported families) whose last dimension divides by
// the group size becomes `weight` (uint32, packed), `scales` and `biases` (the float dtype);
// norms and biases stay float. All tensors are lazy: the stream writer pulls rows in parallel,
// each module's scales and biases a few modules after its weight (module_pull_order).
#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "arch/config.h"
#include "formats/mlx/affine.h"
#include "formats/mlx/mlx.h"
#include "formats/mlx/module_quant.h"
#include "transforms/rows.h"
#include "formats/safetensors/safetensors.h"
#include "io/output.h"

namespace mc::mlx {

namespace {

namespace fs = std::filesystem;

// mlx-lm: MAX_FILE_SIZE_GB = 5, compared against max_file_size_gb << 30.
constexpr uint64_t kMlxShardBytes = uint64_t(5) << 30;

bool is_float_like(DType t) { return dtype_info(t).is_float || is_quantized(t); }

// The dtype mlx-lm stores float tensors in: --dtype, else config torch_dtype (or "dtype") when
// it is one of float16/bfloat16/float32, else each tensor keeps its own.
Result<std::optional<DType>> target_dtype(const Model& m, const formats::WriteOptions& opt) {
  if (opt.dtype) {
    if (*opt.dtype != DType::F16 && *opt.dtype != DType::BF16 && *opt.dtype != DType::F32)
      return make_error(ErrorCode::InvalidArgument, "MLX stores floats as f16, bf16 or f32, not {}", dtype_name(*opt.dtype)).with_hint("pass --dtype f16, bf16 or f32");
    return std::optional<DType>(*opt.dtype);
  }
  for (const char* key : {"torch_dtype", "dtype"}) {
    auto it = m.config.find(key);
    if (it == m.config.end() || !it->is_string()) continue;
    const std::string s = it->get<std::string>();
    if (s == "float16") return std::optional<DType>(DType::F16);
    if (s == "bfloat16") return std::optional<DType>(DType::BF16);
    if (s == "float32") return std::optional<DType>(DType::F32);
    return std::optional<DType>();
  }
  return std::optional<DType>();
}

DType float_dtype_for(DType src, std::optional<DType> target) {
  if (target) return *target;
  if (src == DType::F16 || src == DType::BF16 || src == DType::F32) return src;
  return is_quantized(src) ? DType::F16 : DType::F32;
}

// A float tensor converted to `to`, row by row.
TensorEntry cast_entry(const TensorEntry& e, DType to) {
  auto reader = std::make_shared<transforms::F32Rows>(e, std::nullopt);
  const int64_t cols = reader->cols();
  const uint64_t row_bytes = uint64_t(cols) * dtype_size(to);
  TensorEntry out{e.name, to, e.shape, nullptr};
  out.data = transforms::make_rows_data(
      reader->rows(), row_bytes,
      [reader, cols, to, row_bytes](int64_t r0, int64_t n, std::byte* dst) -> Status {
        const int64_t batch = std::max<int64_t>(1, transforms::kBatchElems / std::max<int64_t>(cols, 1));
        std::vector<float> buf;
        for (int64_t b = 0; b < n; b += batch) {
          const int64_t k = std::min(batch, n - b);
          buf.resize(size_t(k * cols));
          MC_CHECK(reader->read(r0 + b, k, buf.data()));
          from_f32(buf.data(), to, dst + uint64_t(b) * row_bytes, buf.size());
        }
        return {};
      });
  return out;
}

// config.json as mlx_lm.utils.save_config writes it.
Result<std::string> config_text(const Model& m, const std::optional<QuantSpec>& q) {
  ojson cfg = m.config;
  cfg.erase("_name_or_path");
  cfg.erase("vision_config");
  cfg.erase("quantization");
  cfg.erase("quantization_config");
  if (q) {
    ojson qj = ojson::object();
    qj["group_size"] = q->group_size;
    qj["bits"] = q->bits;
    qj["mode"] = "affine";
    cfg["quantization"] = qj;
    cfg["quantization_config"] = qj;
  }
  std::vector<std::string> keys;
  for (auto it = cfg.begin(); it != cfg.end(); ++it) keys.push_back(it.key());
  std::sort(keys.begin(), keys.end());
  ojson sorted = ojson::object();
  for (const auto& k : keys) sorted[k] = cfg[k];
  try {
    return sorted.dump(4, ' ', /*ensure_ascii=*/true, ojson::error_handler_t::replace);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::InvalidArgument, "cannot encode config.json: {}", e.what());
  }
}

// --quant names: MLX's own, then the GGUF names users bring along (plain affine at those bits).
struct QuantName {
  std::string_view name;
  int bits;
  bool gguf_alias;
};
constexpr QuantName kQuantNames[] = {
    {"2bit", 2, false},   {"3bit", 3, false},   {"4bit", 4, false}, {"5bit", 5, false},
    {"6bit", 6, false},   {"8bit", 8, false},   {"q4_k_m", 4, true}, {"q5_k_m", 5, true},
    {"q8_0", 8, true},
};
constexpr auto kQuantNameList = [] {
  std::array<std::string_view, std::size(kQuantNames)> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = kQuantNames[i].name;
  return out;
}();

}  // namespace

std::span<const std::string_view> quant_names() { return kQuantNameList; }

Result<std::optional<QuantSpec>> parse_quant(const std::string& quant, const ojson& qc) {
  const bool has_cfg = qc.is_object() && !qc.empty();
  if (quant.empty() && !has_cfg) return std::optional<QuantSpec>();
  if (!qc.is_null() && !qc.is_object())
    return make_error(ErrorCode::InvalidArgument, "--quant-config must be a JSON object").with_hint(R"(e.g. --quant-config '{"bits": 4, "group_size": 64}')");
  QuantSpec s;
  std::optional<int> named_bits;
  if (!quant.empty()) {
    const auto it = std::find_if(std::begin(kQuantNames), std::end(kQuantNames),
                                 [&](const QuantName& n) { return n.name == quant; });
    if (it != std::end(kQuantNames)) {
      named_bits = it->bits;
      if (it->gguf_alias)
        s.alias_note = fmt::format(
            "'{}' is a GGUF name; for MLX it means plain {}-bit affine quantization with group size 64 "
            "(MLX has no k-quant mixtures): the same as --quant {}bit",
            quant, it->bits, it->bits);
    } else {
      return make_error(ErrorCode::InvalidArgument, "unknown MLX quantization '{}'", quant).with_hint("use 2bit, 3bit, 4bit, 5bit, 6bit or 8bit (q4_k_m, q5_k_m, q8_0 are accepted as 4, 5, 8 bits), "
                     "or --quant-config '{\"bits\": B, \"group_size\": G}'");
    }
    s.bits = *named_bits;
  }
  if (has_cfg) {
    for (auto it = qc.begin(); it != qc.end(); ++it) {
      const std::string& k = it.key();
      if (k == "bits" || k == "group_size") {
        if (!it->is_number_integer())
          return make_error(ErrorCode::InvalidArgument, "--quant-config \"{}\" must be an integer, got {}", k, it->dump()).with_hint(R"(e.g. --quant-config '{"bits": 4, "group_size": 64}')");
        const int v = it->get<int>();
        if (k == "bits") {
          if (named_bits && *named_bits != v)
            return make_error(ErrorCode::InvalidArgument, "--quant {} asks for {} bits but --quant-config says {}", quant, *named_bits, v).with_hint("give the bits once");
          s.bits = v;
        } else {
          s.group_size = v;
        }
      } else if (k == "mode") {
        if (!it->is_string() || it->get<std::string>() != "affine")
          return make_error(ErrorCode::InvalidArgument, "MLX quantization mode {} is not supported", it->dump()).with_hint("only \"affine\" is written (the mlx-lm default)");
      } else {
        return make_error(ErrorCode::InvalidArgument, "unknown --quant-config key \"{}\" for MLX", k).with_hint("the keys are bits, group_size and mode");
      }
    }
  }
  MC_CHECK(check_params(s.bits, s.group_size));
  return std::optional<QuantSpec>(s);
}

Result<formats::WriteResult> write_dir(const Model& m, const fs::path& out, const formats::WriteOptions& opt) {
  const auto q = MC_TRY(parse_quant(opt.quant, opt.quant_config));
  if (m.config.empty() || !m.config.is_object())
    return make_error(ErrorCode::InvalidArgument, "an MLX directory needs a config.json and the input has none").with_hint("convert from a Hugging Face directory, or pass --fake-weight-config / a config");
  const auto ac = MC_TRY(arch::from_hf_config(m.config));
  if (ac.info() && !ac.info()->mlx)
    return make_error(ErrorCode::Unsupported, "writing {} as MLX is not supported", ac.model_type)
        .with_hint("mlx-lm's class for it does not keep the HF names and shapes; run `modelconvert list "
                   "architectures` for the families MLX takes");
  const auto target = MC_TRY(target_dtype(m, opt));

  TensorStore store;
  auto budget = std::make_shared<ParamBudget>(kDefaultParamBudget);
  uint64_t params = 0;
  size_t n_quant = 0, n_float = 0;
  std::optional<DType> scale_dtype;
  for (const auto& e : m.tensors) {
    if (e.name.ends_with(".rotary_emb.inv_freq")) continue;
    if (ac.tie_word_embeddings && e.name == "lm_head.weight") continue;
    params += e.numel();
    if (!is_float_like(e.dtype)) {
      store.put(e);
      continue;
    }
    const DType fdt = float_dtype_for(e.dtype, target);
    if (q && e.shape.size() >= 2 && e.name.ends_with(".weight") && e.shape.back() > 0 &&
        e.shape.back() % q->group_size == 0) {
      for (auto& t : quantized_module(e, fdt, q->bits, q->group_size, budget)) store.put(std::move(t));
      if (!scale_dtype) scale_dtype = fdt;
      ++n_quant;
      continue;
    }
    ++n_float;
    store.put(fdt == e.dtype ? e : cast_entry(e, fdt));
  }

  safetensors::WriteOpts so;
  so.pool = opt.pool;
  so.max_shard_bytes = opt.max_shard_bytes.value_or(kMlxShardBytes);
  so.sink = opt.progress;
  so.metadata = {{"format", "mlx"}};
  so.chunk_bytes = opt.chunk_bytes;
  // More modules apart than threads that may still be making a weight (module_quant.h).
  so.pull_order = module_pull_order(store, (opt.pool ? opt.pool->size() : 1) + 1);
  const auto plan = MC_TRY(safetensors::plan_write(store, so));
  ojson weight_map = ojson::object();
  {
    std::vector<std::pair<std::string, std::string>> names;
    for (const auto& f : plan.files)
      for (size_t i : f.tensors) names.emplace_back(store[i].name, f.name);
    std::sort(names.begin(), names.end());
    for (auto& [t, f] : names) weight_map[t] = f;
  }
  formats::WriteResult res;
  res.files = MC_TRY(safetensors::write(store, out, so));
  ojson index = ojson::object();
  index["metadata"] = {{"total_size", plan.tensor_bytes}, {"total_parameters", params}};
  index["weight_map"] = std::move(weight_map);
  MC_CHECK(io::write_small_file(out / std::string(safetensors::kIndexName), index.dump(4)));
  if (std::find(res.files.begin(), res.files.end(), safetensors::kIndexName) == res.files.end())
    res.files.push_back(std::string(safetensors::kIndexName));
  MC_CHECK(io::write_small_file(out / "config.json", MC_TRY(config_text(m, q))));
  res.files.push_back("config.json");
  for (const auto& f : m.extra_files) {
    if (f.name == "config.json" || f.name == safetensors::kIndexName) continue;
    if (f.content)
      MC_CHECK(io::write_small_file(out / f.name, *f.content));
    else
      MC_CHECK(io::copy_file(f.source, out / f.name));
    res.files.push_back(f.name);
  }
  res.tensor_bytes = plan.tensor_bytes;
  res.info["quantized_tensors"] = n_quant;
  res.info["float_tensors"] = n_float;
  res.info["total_parameters"] = params;
  if (q) {
    res.info["quantization"] = {{"group_size", q->group_size}, {"bits", q->bits}, {"mode", "affine"}};
    if (params > 0) res.info["bits_per_weight"] = double(plan.tensor_bytes) * 8.0 / double(params);
    if (!q->alias_note.empty()) res.info["note"] = q->alias_note;
  }
  if (target) res.info["float_dtype"] = std::string(dtype_name(*target));
  return res;
}

}  // namespace mc::mlx
