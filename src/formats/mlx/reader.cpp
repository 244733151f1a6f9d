// mlx-lm directory reader and validator (formats.md §8).
// Layout read: config.json with "quantization" {"group_size", "bits", "mode"} (or, from tools
// that wrote only the HF-style copy, "quantization_config" without a quant_method), possibly with
// per-module overrides "<module path>": {...} | false; weights in model*.safetensors (index or
// single file). A quantized module stores X.weight (uint32 [..., in*bits/32], the packed values),
// X.scales and X.biases (float [..., in/group_size]). The Model exposes X.weight as a lazily
// dequantized float tensor [..., in] in the scales' dtype (w = scale*q + bias in fp32, rounded
// once), with HF names, and a config without the quantization entries.
#include <algorithm>
#include <cstring>
#include <set>

#include "formats/mlx/affine.h"
#include "formats/mlx/mlx.h"
#include "transforms/rows.h"
#include "formats/safetensors/safetensors.h"
#include "io/mapped_file.h"
#include "io/probe.h"

namespace mc::mlx {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxConfigBytes = size_t(64) << 20;

// Files carried to the output (what tokenizer.save_pretrained and mlx-lm's save copy).
constexpr std::string_view kCarried[] = {
    "tokenizer.json",      "tokenizer.model",        "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json",   "vocab.json",             "merges.txt",            "generation_config.json",
    "chat_template.jinja", "chat_template.json",     "LICENSE",
};

struct Params {
  int bits = 0;
  int group_size = 0;
  bool quantized = false;
};

// The quantization object of a config (nullptr when the model is not quantized).
const ojson* quant_object(const ojson& cfg) {
  if (auto it = cfg.find("quantization"); it != cfg.end() && it->is_object()) return &*it;
  if (auto it = cfg.find("quantization_config"); it != cfg.end() && it->is_object() &&
      !it->contains("quant_method") && it->contains("bits") && it->contains("group_size"))
    return &*it;
  return nullptr;
}

Result<Params> params_from(const ojson& o, Params base, const std::string& what) {
  if (auto it = o.find("mode"); it != o.end() && (!it->is_string() || it->get<std::string>() != "affine")) {
    return make_error(ErrorCode::Unsupported, "{}: quantization mode {} is not supported", what, it->dump())
        .with_hint("only affine MLX quantization can be read");
  }
  for (const char* k : {"bits", "group_size"}) {
    auto it = o.find(k);
    if (it == o.end()) continue;
    if (!it->is_number_integer())
      return make_error(ErrorCode::Corrupt, "{}: \"{}\" is {}, not an integer", what, k, it->dump());
    (std::string_view(k) == "bits" ? base.bits : base.group_size) = it->get<int>();
  }
  base.quantized = true;
  if (auto st = check_params(base.bits, base.group_size); !st) {
    // The writer's refusal of an option; read from a file, the same values are a corrupt config.
    Error e = std::move(st).error();
    e.code = ErrorCode::Corrupt;
    e.message = what + ": " + e.message;
    e.hint = "config.json's quantization does not describe an MLX model: fix bits/group_size or re-download it";
    return e;
  }
  return base;
}

// bits/group_size for module `prefix`: a per-module entry wins over the global one.
Result<Params> params_for(const ojson* q, const std::string& prefix) {
  Params p{4, 64, false};
  if (!q) return p;
  p = MC_TRY(params_from(*q, p, "config.json quantization"));
  if (auto it = q->find(prefix); it != q->end()) {
    if (it->is_boolean()) {
      p.quantized = it->get<bool>();
      return p;
    }
    if (it->is_object()) return params_from(*it, p, "config.json quantization." + prefix);
  }
  return p;
}

Result<Params> with_config_path(Result<Params> p, const fs::path& dir) {
  if (!p) return std::move(p).error().with_path((dir / "config.json").string());
  return p;
}

Result<int64_t> in_dir(Result<int64_t> r, const fs::path& dir) {
  if (!r) return std::move(r).error().with_path(dir.string());
  return r;
}

Error shape_error(const std::string& tensor, std::string msg) {
  Error e;
  e.code = ErrorCode::Mismatch;
  e.tensor = tensor;
  e.message = std::move(msg);
  e.hint = "the packed weight, scales and biases must agree with bits/group_size in config.json";
  return e;
}

// Checks one quantized module and returns its unpacked input dimension.
Result<int64_t> check_module(const TensorEntry& w, const TensorEntry& s, const TensorEntry& b, Params p) {
  if (w.dtype != DType::U32)
    return shape_error(w.name, fmt::format("a quantized weight must be U32, got {}", dtype_name(w.dtype)));
  if (!dtype_info(s.dtype).is_float || s.dtype != b.dtype)
    return shape_error(s.name, fmt::format("scales ({}) and biases ({}) must share one float dtype",
                                           dtype_name(s.dtype), dtype_name(b.dtype)));
  if (w.shape.size() < 2 || w.shape.back() <= 0)
    return shape_error(w.name, fmt::format("packed weight of shape {} is not a matrix", shape_str(w.shape)));
  const int64_t in = w.shape.back() * 32 / p.bits;
  if (w.shape.back() * 32 % p.bits != 0 || in % p.group_size != 0)
    return shape_error(w.name, fmt::format("{} packed words per row do not hold whole groups of {} at {} bits",
                                           w.shape.back(), p.group_size, p.bits));
  Shape want = w.shape;
  want.back() = in / p.group_size;
  if (s.shape != want)
    return shape_error(s.name, fmt::format("scales have shape {}, expected {} for {} bits, group size {}",
                                           shape_str(s.shape), shape_str(want), p.bits, p.group_size));
  if (b.shape != want)
    return shape_error(b.name, fmt::format("biases have shape {}, expected {} for {} bits, group size {}",
                                           shape_str(b.shape), shape_str(want), p.bits, p.group_size));
  return in;
}

// Bytes [offset, offset+n) of a tensor: a view into the mapping when possible.
const std::byte* bytes_of(const TensorEntry& e, uint64_t offset, uint64_t n, std::vector<std::byte>& buf, Status& st) {
  if (auto v = e.data->view(); v && v->size() >= offset + n) return v->data() + offset;
  buf.resize(n);
  st = e.data->read(offset, buf);
  return buf.data();
}

TensorEntry dequantized_entry(const TensorEntry& w, const TensorEntry& s, const TensorEntry& b, Params p, int64_t in) {
  const DType out = s.dtype;
  TensorEntry e{w.name, out, w.shape, nullptr};
  e.shape.back() = in;
  e.stored_bits = double(p.bits) + 2.0 * 8.0 * double(dtype_size(out)) / double(p.group_size);
  const int64_t rows = int64_t(w.numel() / uint64_t(w.shape.back()));
  const int64_t words = w.shape.back(), groups = in / p.group_size;
  const uint64_t out_row = uint64_t(in) * dtype_size(out);
  const uint64_t w_row = uint64_t(words) * 4, s_row = uint64_t(groups) * dtype_size(out);
  e.data = transforms::make_rows_data(
      rows, out_row,
      [w, s, b, p, in, words, groups, w_row, s_row, out_row, out](int64_t r0, int64_t n,
                                                                  std::byte* dst) -> Status {
        std::vector<std::byte> wb, sb, bb;
        Status st;
        const std::byte* wp = bytes_of(w, uint64_t(r0) * w_row, uint64_t(n) * w_row, wb, st);
        MC_CHECK(std::move(st));
        const std::byte* sp = bytes_of(s, uint64_t(r0) * s_row, uint64_t(n) * s_row, sb, st);
        MC_CHECK(std::move(st));
        const std::byte* bp = bytes_of(b, uint64_t(r0) * s_row, uint64_t(n) * s_row, bb, st);
        MC_CHECK(std::move(st));
        std::vector<uint32_t> packed(static_cast<size_t>(words));
        std::vector<float> sc(static_cast<size_t>(groups)), bi(static_cast<size_t>(groups)),
            row(static_cast<size_t>(in));
        std::vector<uint8_t> scratch(static_cast<size_t>(in));
        for (int64_t r = 0; r < n; ++r) {
          std::memcpy(packed.data(), wp + uint64_t(r) * w_row, w_row);
          to_f32(out, sp + uint64_t(r) * s_row, sc.data(), sc.size());
          to_f32(out, bp + uint64_t(r) * s_row, bi.data(), bi.size());
          dequantize_row(packed.data(), sc.data(), bi.data(), in, p.bits, p.group_size, row.data(),
                         scratch.data());
          from_f32(row.data(), out, dst + uint64_t(r) * out_row, row.size());
        }
        w.data->release(uint64_t(r0) * w_row, uint64_t(n) * w_row);
        return {};
      });
  return e;
}

Result<ojson> read_config(const fs::path& dir, std::string* text) {
  const fs::path p = dir / "config.json";
  *text = MC_TRY(io::read_text_file(p.string(), kMaxConfigBytes));
  ojson cfg = ojson::parse(*text, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object()) {
    return make_error(ErrorCode::Corrupt, "config.json is not a JSON object")
        .with_path(p.string())
        .with_hint("fix or re-download config.json");
  }
  return cfg;
}

// The model's weights in MLX terms, with each quantized module checked.
struct Loaded {
  safetensors::StSet set;
  bool has_weights = false;
};

Result<Loaded> load(const fs::path& dir) {
  Loaded l;
  if (safetensors::find_weight_files(dir).empty()) return l;
  l.set = MC_TRY(safetensors::open_path(dir));
  l.has_weights = true;
  return l;
}

}  // namespace

Result<Model> read_dir(const fs::path& path, const formats::ReadOptions&) {
  if (!io::is_dir(path)) {
    return make_error(ErrorCode::InvalidArgument, "an MLX model is a directory")
        .with_path(path.string())
        .with_hint("point at the folder holding config.json and model*.safetensors");
  }
  Model m;
  m.source_format = "mlx";
  m.source_path = path.string();
  std::string text;
  ojson cfg = MC_TRY(read_config(path, &text));
  const ojson* q = quant_object(cfg);
  // The model-wide values are checked even when no module is quantized (as `validate` does).
  if (q) (void)MC_TRY(with_config_path(params_for(q, ""), path));
  auto l = MC_TRY(load(path));
  // A directory with only config.json reads as a model without weights (inspect shows it;
  // convert refuses it as having no weights).
  m.weight_files = l.set.files;
  const TensorStore& st = l.set.tensors;
  std::set<std::string> consumed;
  for (const auto& t : st) {
    if (!t.name.ends_with(".scales")) continue;
    const std::string prefix = t.name.substr(0, t.name.size() - 7);
    const auto* w = st.find(prefix + ".weight");
    const auto* b = st.find(prefix + ".biases");
    if (!w || !b) {
      return make_error(ErrorCode::NotFound, "'{}' has scales but no {}", prefix,
                        w ? "biases" : "packed weight")
          .with_path(path.string())
          .with_tensor(t.name)
          .with_hint("the directory is incomplete: a quantized module needs weight, scales and biases");
    }
    const Params p = MC_TRY(with_config_path(params_for(q, prefix), path));
    if (!p.quantized) {
      return make_error(ErrorCode::Mismatch, "config.json says '{}' is not quantized, but it has scales",
                        prefix)
          .with_path(path.string())
          .with_tensor(t.name);
    }
    const int64_t in = MC_TRY(in_dir(check_module(*w, t, *b, p), path));
    (void)in;
    consumed.insert(prefix);
  }
  for (const auto& t : st) {
    if (t.name.ends_with(".scales") || t.name.ends_with(".biases")) {
      if (consumed.count(t.name.substr(0, t.name.size() - 7))) continue;
    }
    if (t.name.ends_with(".weight")) {
      const std::string prefix = t.name.substr(0, t.name.size() - 7);
      if (consumed.count(prefix)) {
        const auto* s = st.find(prefix + ".scales");
        const auto* b = st.find(prefix + ".biases");
        const Params p = MC_TRY(with_config_path(params_for(q, prefix), path));
        const int64_t in = MC_TRY(in_dir(check_module(t, *s, *b, p), path));
        m.tensors.put(dequantized_entry(t, *s, *b, p, in));
        continue;
      }
      if (t.dtype == DType::U32) {
        return make_error(ErrorCode::NotFound, "'{}' is a packed uint32 weight without scales/biases", t.name)
            .with_path(path.string())
            .with_tensor(t.name)
            .with_hint("the directory is incomplete or not an MLX model");
      }
    }
    m.tensors.put(t);
  }
  cfg.erase("quantization");
  if (auto it = cfg.find("quantization_config"); it != cfg.end() && !(it->is_object() && it->contains("quant_method")))
    cfg.erase("quantization_config");
  m.config_text = std::move(text);
  m.set_config(std::move(cfg));
  std::error_code ec;
  for (auto name : kCarried) {
    const fs::path f = path / name;
    if (fs::is_regular_file(f, ec)) m.extra_files.push_back({std::string(name), f, std::nullopt});
  }
  return m;
}

formats::ValidationReport validate_dir(const fs::path& path) {
  formats::ValidationReport r;
  r.format = "mlx";
  std::string text;
  auto cfg = read_config(path, &text);
  if (!cfg) {
    r.errors.push_back(cfg.error());
    return r;
  }
  const ojson* q = quant_object(*cfg);
  if (!safetensors::find_weight_files(path).empty()) {
    auto st = safetensors::validate_path(path);
    for (auto& e : st.errors) r.errors.push_back(std::move(e));
    for (auto& w : st.warnings) r.warnings.push_back(std::move(w));
  } else {
    r.warnings.push_back("no model*.safetensors files");
  }
  if (!r.errors.empty()) return r;
  auto l = load(path);
  if (!l) {
    r.errors.push_back(l.error());
    return r;
  }
  if (q) {
    if (auto p = params_for(q, ""); !p) {
      r.errors.push_back(std::move(p).error().with_path((path / "config.json").string()));
      return r;
    } else {
      r.info["bits"] = p->bits;
      r.info["group_size"] = p->group_size;
    }
  }
  size_t n_quant = 0;
  const TensorStore& st = l->set.tensors;
  for (const auto& t : st) {
    if (t.name.ends_with(".weight") && t.dtype == DType::U32) {
      const std::string prefix = t.name.substr(0, t.name.size() - 7);
      const auto* s = st.find(prefix + ".scales");
      const auto* b = st.find(prefix + ".biases");
      if (!s || !b) {
        r.errors.push_back(
            make_error(ErrorCode::NotFound, "packed weight without {}", s ? "biases" : "scales")
                .with_path(path.string())
                .with_tensor(t.name));
        continue;
      }
      if (!q) {
        r.errors.push_back(
            make_error(ErrorCode::Mismatch, "quantized tensors but config.json has no \"quantization\"")
                .with_path((path / "config.json").string())
                .with_tensor(t.name)
                .with_hint(R"(add "quantization": {"group_size": G, "bits": B} to config.json)"));
        continue;
      }
      auto p = params_for(q, prefix);
      if (!p) {
        r.errors.push_back(std::move(p).error().with_path((path / "config.json").string()).with_tensor(t.name));
        continue;
      }
      if (auto in = check_module(t, *s, *b, *p); !in) r.errors.push_back(std::move(in).error().with_path(path.string()));
      ++n_quant;
    } else if (t.name.ends_with(".scales") && !st.contains(t.name.substr(0, t.name.size() - 7) + ".weight")) {
      r.errors.push_back(make_error(ErrorCode::NotFound, "scales without a packed weight")
                             .with_path(path.string())
                             .with_tensor(t.name));
    }
  }
  r.info["quantized_tensors"] = n_quant;
  r.info["tensors"] = st.size();
  return r;
}

}  // namespace mc::mlx
