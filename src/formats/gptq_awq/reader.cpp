// GPTQ / AWQ directory reader, validator and describer.
// Read: config.json "quantization_config" (quant_method gptq | awq; bits, group_size,
// checkpoint_format / format; GPTQ directories that only have quantize_config.json too) and the
// safetensors weights. Every module <m> with <m>.qweight becomes a lazily dequantized
// <m>.weight [out, in] in the scales' dtype, with stored_bits = bits + (16 + bits) / group_size,
// so `check` judges the model by the precision it stores:
//   GPTQ: W[o, i] = scales[g, o] * (q[i, o] - z[g, o]), g = g_idx[i] (i / group_size without
//         g_idx), q from qweight [in*bits/32, out] (LSB-first stream down each column), z from
//         qzeros [groups, out*bits/32] (stream along the row) plus 1 for checkpoint_format
//         "gptq" (v1), as stored for "gptq_v2";
//   AWQ:  W[o, i] = scales[i/g, o] * (q[i, o] - z[i/g, o]), q from qweight [in, out/8] and z from
//         qzeros [in/g, out/8], nibble kAwqReverseOrder[o % 8] of word o / 8.
// The other tensors pass through; the config loses quantization_config, so a conversion to any
// float format writes a plain model. Rejected: bits the layout does not have, shapes that do not
// agree with bits/group_size, g_idx entries outside [0, groups).
#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

#include "formats/gptq_awq/gptq_awq.h"
#include "formats/safetensors/safetensors.h"
#include "io/mapped_file.h"
#include "io/probe.h"
#include "quant/pack.h"
#include "transforms/rows.h"

namespace mc::gptq_awq {

namespace {

constexpr size_t kMaxConfigBytes = size_t(64) << 20;
constexpr std::string_view kCarried[] = {
    "tokenizer.json",    "tokenizer.model",       "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json",            "merges.txt",            "generation_config.json",
    "chat_template.jinja", "chat_template.json",  "LICENSE",
};

struct QInfo {
  Method method = Method::Gptq;
  int bits = 4;
  int64_t group_size = 128;
  bool v1 = true;  // GPTQ zeros stored minus one
  ojson fields = ojson::object();
};

Error corrupt(const fs::path& p, std::string msg, std::string hint = "") {
  Error e = make_error(ErrorCode::Corrupt, "{}", msg);
  e.path = p.string();
  e.hint = std::move(hint);
  return e;
}

Result<ojson> read_json(const fs::path& p) {
  const std::string text = MC_TRY(io::read_text_file(p.string(), kMaxConfigBytes));
  ojson j = ojson::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt(p, "not a JSON object", "fix or re-download it");
  return j;
}

Result<QInfo> quant_info(const fs::path& dir, const ojson& cfg) {
  ojson q;
  fs::path where = dir / "config.json";
  if (auto it = cfg.find("quantization_config"); it != cfg.end() && it->is_object()) {
    q = *it;
  } else {
    where = dir / "quantize_config.json";
    q = MC_TRY(read_json(where));
    if (!q.contains("quant_method")) q["quant_method"] = "gptq";
  }
  QInfo qi;
  qi.fields = q;
  const std::string method = q.value("quant_method", std::string());
  if (method == "gptq") qi.method = Method::Gptq;
  else if (method == "awq") qi.method = Method::Awq;
  else return corrupt(where, fmt::format("quant_method {} is neither gptq nor awq", q.value("quant_method", ojson()).dump()));
  for (const char* k : {"bits", "w_bit"})
    if (auto it = q.find(k); it != q.end()) {
      if (!it->is_number_integer()) return corrupt(where, fmt::format("\"{}\" is {}, not an integer", k, it->dump()));
      qi.bits = it->get<int>();
    }
  for (const char* k : {"group_size", "q_group_size"})
    if (auto it = q.find(k); it != q.end()) {
      if (!it->is_number_integer()) return corrupt(where, fmt::format("\"{}\" is {}, not an integer", k, it->dump()));
      qi.group_size = it->get<int64_t>();
    }
  if (qi.method == Method::Gptq) {
    if (!quant::gptq_bits_ok(qi.bits))
      return make_error(ErrorCode::Unsupported, "GPTQ with {} bits is not read", qi.bits)
          .with_path(where.string())
          .with_hint("2, 3, 4 and 8 bits are read");
    if (qi.group_size == 0 || qi.group_size < -1) return corrupt(where, fmt::format("group_size {} is not valid", qi.group_size));
    std::string f = "gptq";
    for (const char* k : {"checkpoint_format", "format"})
      if (auto it = q.find(k); it != q.end() && it->is_string()) f = it->get<std::string>();
    if (f != "gptq" && f != "gptq_v2")
      return make_error(ErrorCode::Unsupported, "GPTQ checkpoint_format \"{}\" is not read", f)
          .with_path(where.string())
          .with_hint("\"gptq\" (v1) and \"gptq_v2\" are read; marlin/bitblas repacked checkpoints are not");
    qi.v1 = f == "gptq";
  } else {
    if (qi.bits != 4) return make_error(ErrorCode::Unsupported, "AWQ with {} bits is not read", qi.bits).with_path(where.string());
    if (qi.group_size <= 0) return corrupt(where, fmt::format("AWQ group_size {} is not valid", qi.group_size));
    std::string v = q.value("version", std::string("gemm"));
    for (auto& ch : v) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (v != "gemm")
      return make_error(ErrorCode::Unsupported, "AWQ version \"{}\" is not read", v)
          .with_path(where.string())
          .with_hint("the GEMM layout is read; GEMV and Marlin repack the weights differently");
  }
  return qi;
}

struct Module {
  std::string prefix;
  const TensorEntry *qweight = nullptr, *qzeros = nullptr, *scales = nullptr, *g_idx = nullptr;
  int64_t in = 0, out = 0, groups = 0;
};

Error mismatch(const std::string& tensor, std::string msg) {
  Error e = make_error(ErrorCode::Mismatch, "{}", msg);
  e.tensor = tensor;
  e.hint = "qweight, qzeros, scales and g_idx must agree with bits and group_size in quantization_config";
  return e;
}

Result<Module> module_of(const QInfo& qi, const TensorStore& st, const std::string& prefix) {
  Module m;
  m.prefix = prefix;
  m.qweight = st.find(prefix + ".qweight");
  m.qzeros = st.find(prefix + ".qzeros");
  m.scales = st.find(prefix + ".scales");
  m.g_idx = st.find(prefix + ".g_idx");
  for (auto [t, n] : {std::pair{m.qzeros, ".qzeros"}, std::pair{m.scales, ".scales"}})
    if (!t)
      return make_error(ErrorCode::NotFound, "'{}' has a qweight but no {}", prefix, n + 1)
          .with_tensor(prefix + n)
          .with_hint("the directory is incomplete: re-download it");
  const TensorEntry &w = *m.qweight, &z = *m.qzeros, &s = *m.scales;
  if (w.dtype != DType::I32 && w.dtype != DType::U32) return mismatch(w.name, fmt::format("qweight is {}, not int32", dtype_name(w.dtype)));
  if (z.dtype != DType::I32 && z.dtype != DType::U32) return mismatch(z.name, fmt::format("qzeros is {}, not int32", dtype_name(z.dtype)));
  if (!dtype_info(s.dtype).is_float) return mismatch(s.name, fmt::format("scales are {}, not a float dtype", dtype_name(s.dtype)));
  if (w.shape.size() != 2 || z.shape.size() != 2 || s.shape.size() != 2)
    return mismatch(w.name, "qweight, qzeros and scales must be matrices");
  if (qi.method == Method::Gptq) {
    m.out = w.shape[1];
    m.in = w.shape[0] * 32 / qi.bits;
    if (w.shape[0] * 32 % qi.bits != 0) return mismatch(w.name, "qweight rows do not hold whole values");
  } else {
    m.in = w.shape[0];
    m.out = w.shape[1] * 8;
  }
  const int64_t g = qi.group_size < 0 ? m.in : qi.group_size;
  if (m.in <= 0 || m.out <= 0 || m.in % g != 0)
    return mismatch(w.name, fmt::format("{} inputs do not split into groups of {}", m.in, g));
  m.groups = m.in / g;
  const int64_t zcols = qi.method == Method::Gptq ? m.out * qi.bits / 32 : m.out / 8;
  if (m.out * (qi.method == Method::Gptq ? qi.bits : 4) % 32 != 0 || z.shape != Shape{m.groups, zcols})
    return mismatch(z.name, fmt::format("qzeros has shape {}, expected [{}, {}]", shape_str(z.shape), m.groups, zcols));
  if (s.shape != Shape{m.groups, m.out})
    return mismatch(s.name, fmt::format("scales have shape {}, expected [{}, {}]", shape_str(s.shape), m.groups, m.out));
  if (m.g_idx && (m.g_idx->shape != Shape{m.in} || (m.g_idx->dtype != DType::I32 && m.g_idx->dtype != DType::I64)))
    return mismatch(m.g_idx->name, fmt::format("g_idx is {} {}, expected int32 [{}]", dtype_name(m.g_idx->dtype),
                                               shape_str(m.g_idx->shape), m.in));
  return m;
}

// A whole small-ish tensor into an aligned buffer of T.
template <typename T>
Status load_as(const TensorEntry& e, std::vector<T>& dst) {
  dst.resize(static_cast<size_t>(e.nbytes() / sizeof(T)));
  return e.data->read(0, std::span(reinterpret_cast<std::byte*>(dst.data()), dst.size() * sizeof(T)));
}

// The module with its tensors copied (the store they came from may go away; the data sources
// are shared).
struct OwnedModule {
  Module m;
  TensorEntry qweight, qzeros, scales, g_idx;
  explicit OwnedModule(const Module& src) : m(src), qweight(*src.qweight), qzeros(*src.qzeros), scales(*src.scales) {
    if (src.g_idx) g_idx = *src.g_idx;
    m.qweight = &qweight;
    m.qzeros = &qzeros;
    m.scales = &scales;
    m.g_idx = src.g_idx ? &g_idx : nullptr;
  }
};

// The small per-tensor parts of a module, unpacked: g_idx, scales [groups, out] as f32 and zeros
// [groups, out] (plus one for GPTQ v1 applied at use). Made once per tensor by the first row
// batch that needs them and dropped once every row was written (Params below), so memory stays
// at the tensors being written.
struct Unpacked {
  std::vector<int32_t> gi;
  std::vector<float> sc;
  std::vector<uint8_t> zeros;
};

Result<std::shared_ptr<const Unpacked>> unpack_params(const QInfo& qi, const Module& m, int64_t g) {
  auto u = std::make_shared<Unpacked>();
  const DType dt = m.scales->dtype;
  std::vector<uint32_t> qz;
  u->gi.resize(static_cast<size_t>(m.in));
  u->sc.resize(static_cast<size_t>(m.groups * m.out));
  MC_CHECK(load_as(*m.qzeros, qz));
  {
    std::vector<std::byte> raw(m.scales->nbytes());
    MC_CHECK(m.scales->data->read(0, raw));
    to_f32(dt, raw.data(), u->sc.data(), u->sc.size());
  }
  auto& gi = u->gi;
  if (m.g_idx) {
    if (m.g_idx->dtype == DType::I32) {
      MC_CHECK(load_as(*m.g_idx, gi));
    } else {
      std::vector<int64_t> g64;
      MC_CHECK(load_as(*m.g_idx, g64));
      for (size_t i = 0; i < gi.size(); ++i) gi[i] = static_cast<int32_t>(std::clamp<int64_t>(g64[i], -1, INT32_MAX));
    }
    for (size_t i = 0; i < gi.size(); ++i)
      if (gi[i] < 0 || gi[i] >= m.groups)
        return make_error(ErrorCode::Corrupt, "g_idx[{}] = {} is outside [0, {})", i, gi[i], m.groups)
            .with_tensor(m.g_idx->name);
  } else {
    for (size_t i = 0; i < gi.size(); ++i) gi[i] = static_cast<int32_t>(int64_t(i) / g);
  }
  const int64_t zw = m.out * qi.bits / 32;  // GPTQ qzeros words per row
  u->zeros.resize(static_cast<size_t>(m.groups * m.out));
  for (int64_t k = 0; k < m.groups; ++k) {
    uint8_t* zrow = u->zeros.data() + k * m.out;
    if (qi.method == Method::Gptq) quant::unpack_stream(qz.data() + k * zw, 1, m.out, qi.bits, zrow, 1);
    else quant::unpack_awq_row(qz.data() + k * (m.out / 8), m.out, zrow);
  }
  return std::shared_ptr<const Unpacked>(std::move(u));
}

// Unpacked parameters shared by the row batches of one tensor.
class Params {
 public:
  Result<std::shared_ptr<const Unpacked>> get(const QInfo& qi, const Module& m, int64_t g) {
    std::lock_guard lock(mu_);
    if (!u_) u_ = MC_TRY(unpack_params(qi, m, g));
    return u_;
  }
  // The writer is done with n more rows: after the last one nothing needs the parameters.
  // Returns true when that was the last row.
  bool written(int64_t n, int64_t rows) {
    std::lock_guard lock(mu_);
    done_ += n;
    if (done_ < rows) return false;
    u_.reset();
    done_ = 0;  // a later read (validation) makes them again
    return true;
  }

 private:
  std::mutex mu_;
  std::shared_ptr<const Unpacked> u_;
  int64_t done_ = 0;
};

// Words [c0, c1) of each of `rows` rows of a [rows, cols] 32-bit tensor, as rows of c1 - c0 words.
Status read_columns(const TensorEntry& t, int64_t rows, int64_t cols, int64_t c0, int64_t c1, std::vector<uint32_t>& dst) {
  const int64_t w = c1 - c0;
  dst.resize(static_cast<size_t>(rows * w));
  if (auto v = t.data->view(); v && v->size() == t.nbytes()) {  // strided: no call per row
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst.data() + r * w, v->data() + uint64_t(r * cols + c0) * 4, uint64_t(w) * 4);
    return {};
  }
  if (w == cols) return t.data->read(0, std::as_writable_bytes(std::span(dst)));
  for (int64_t r = 0; r < rows; ++r)
    MC_CHECK(t.data->read(uint64_t(r * cols + c0) * 4,
                          std::as_writable_bytes(std::span(dst.data() + r * w, static_cast<size_t>(w)))));
  return {};
}

TensorEntry dequantized(const QInfo& qi, const Module& src) {
  auto owned = std::make_shared<const OwnedModule>(src);
  const Module& m = owned->m;
  const DType dt = m.scales->dtype;
  TensorEntry e{m.prefix + ".weight", dt, {m.out, m.in}, nullptr};
  const int64_t g = qi.group_size < 0 ? m.in : qi.group_size;
  e.stored_bits = double(qi.bits) + double(16 + qi.bits) / double(g);
  const uint64_t row_bytes = uint64_t(m.in) * dtype_size(dt);
  auto params = std::make_shared<Params>();
  auto fill = [qi, owned, params, dt, g, row_bytes](int64_t r0, int64_t n, std::byte* dst) -> Status {
    const Module& m = owned->m;
    const auto u = MC_TRY(params->get(qi, m, g));
    // Only the qweight words of output rows [r0, r0 + n): columns of qweight.
    std::vector<uint32_t> qw;
    int64_t w0 = r0, qcols = n;
    if (qi.method == Method::Gptq) {
      MC_CHECK(read_columns(*m.qweight, m.qweight->shape[0], m.out, r0, r0 + n, qw));
    } else {
      w0 = r0 / 8;
      qcols = (r0 + n + 7) / 8 - w0;
      MC_CHECK(read_columns(*m.qweight, m.in, m.out / 8, w0, w0 + qcols, qw));
    }
    std::vector<uint8_t> col(static_cast<size_t>(m.in));
    std::vector<float> row(static_cast<size_t>(m.in));
    const float zplus = qi.method == Method::Gptq && qi.v1 ? 1.0f : 0.0f;
    for (int64_t o = r0; o < r0 + n; ++o) {
      if (qi.method == Method::Gptq) {
        quant::unpack_stream(qw.data() + (o - r0), qcols, m.in, qi.bits, col.data(), 1);
      } else {
        const int64_t word = o / 8 - w0, shift = 4 * quant::kAwqReverseOrder[static_cast<size_t>(o % 8)];
        for (int64_t i = 0; i < m.in; ++i)
          col[static_cast<size_t>(i)] = static_cast<uint8_t>((qw[static_cast<size_t>(i * qcols + word)] >> shift) & 0xF);
      }
      for (int64_t i = 0; i < m.in; ++i) {
        const size_t gz = static_cast<size_t>(u->gi[static_cast<size_t>(i)] * m.out + o);
        row[static_cast<size_t>(i)] = u->sc[gz] * (float(col[static_cast<size_t>(i)]) - (float(u->zeros[gz]) + zplus));
      }
      from_f32(row.data(), dt, dst + uint64_t(o - r0) * row_bytes, row.size());
    }
    return {};
  };
  const int64_t rows = m.out;
  // After the last row: the parameters go, and so do the qweight pages the batches read in
  // place (a batch takes a column slice of every qweight row, so none can go earlier).
  e.data = transforms::make_rows_data(m.out, row_bytes, std::move(fill), [params, owned, rows](int64_t, int64_t n) {
    if (params->written(n, rows)) owned->qweight.data->release(0, owned->qweight.nbytes());
  });
  return e;
}

std::vector<std::string> module_prefixes(const TensorStore& st) {
  std::vector<std::string> out;
  for (const auto& t : st)
    if (t.name.ends_with(".qweight")) out.push_back(t.name.substr(0, t.name.size() - 8));
  return out;
}

}  // namespace

Result<Model> read_dir(const fs::path& path, const formats::ReadOptions&) {
  if (!io::is_dir(path))
    return make_error(ErrorCode::InvalidArgument, "a GPTQ/AWQ model is a directory")
        .with_path(path.string())
        .with_hint("point at the folder holding config.json and the safetensors files");
  Model m;
  const fs::path cfg_path = path / "config.json";
  ojson cfg = MC_TRY(read_json(cfg_path));
  const QInfo qi = MC_TRY(quant_info(path, cfg));
  m.source_format = std::string(method_name(qi.method));
  m.source_path = path.string();
  if (safetensors::find_weight_files(path).empty())
    return make_error(ErrorCode::NotFound, "no safetensors weights")
        .with_path(path.string())
        .with_hint("GPTQ/AWQ directories are read from model*.safetensors");
  auto set = MC_TRY(safetensors::open_path(path));
  m.weight_files = set.files;
  const TensorStore& st = set.tensors;
  std::map<std::string, Module> mods;
  for (const auto& p : module_prefixes(st)) {
    auto mod = module_of(qi, st, p);
    if (!mod) return std::move(mod).error().with_path(path.string());
    mods.emplace(p, *mod);
  }
  for (const auto& t : st) {
    const size_t dot = t.name.rfind('.');
    const std::string prefix = dot == std::string::npos ? "" : t.name.substr(0, dot);
    auto it = mods.find(prefix);
    if (it == mods.end()) {
      m.tensors.put(t);
      continue;
    }
    if (t.name.ends_with(".qweight")) m.tensors.put(dequantized(qi, it->second));
    else if (!t.name.ends_with(".qzeros") && !t.name.ends_with(".scales") && !t.name.ends_with(".g_idx")) m.tensors.put(t);
  }
  cfg.erase("quantization_config");
  m.set_config(std::move(cfg));
  std::error_code ec;
  for (auto name : kCarried)
    if (fs::is_regular_file(path / name, ec)) m.extra_files.push_back({std::string(name), path / name, std::nullopt});
  return m;
}

formats::ValidationReport validate_dir(const fs::path& path) {
  formats::ValidationReport r;
  auto cfg = read_json(path / "config.json");
  if (!cfg) {
    r.errors.push_back(cfg.error());
    return r;
  }
  auto qi = quant_info(path, *cfg);
  if (!qi) {
    r.errors.push_back(qi.error());
    return r;
  }
  r.format = std::string(method_name(qi->method));
  r.info["bits"] = qi->bits;
  r.info["group_size"] = qi->group_size;
  auto st = safetensors::validate_path(path);
  for (auto& e : st.errors) r.errors.push_back(std::move(e));
  for (auto& w : st.warnings) r.warnings.push_back(std::move(w));
  if (!r.errors.empty()) return r;
  auto set = safetensors::open_path(path);
  if (!set) {
    r.errors.push_back(set.error());
    return r;
  }
  size_t n = 0;
  for (const auto& p : module_prefixes(set->tensors)) {
    auto mod = module_of(*qi, set->tensors, p);
    if (!mod) {
      r.errors.push_back(std::move(mod).error().with_path(path.string()));
      continue;
    }
    ++n;
    if (mod->g_idx && mod->g_idx->dtype == DType::I32) {
      std::vector<int32_t> gi;
      if (Status s = load_as(*mod->g_idx, gi); !s) {
        r.errors.push_back(std::move(s).error());
        continue;
      }
      for (size_t i = 0; i < gi.size(); ++i)
        if (gi[i] < 0 || gi[i] >= mod->groups) {
          Error e = make_error(ErrorCode::Corrupt, "g_idx[{}] = {} is outside [0, {})", i, gi[i], mod->groups);
          e.path = path.string();
          e.tensor = mod->g_idx->name;
          r.errors.push_back(e);
          break;
        }
    }
    if (st.ok() && set->tensors.contains(p + ".weight")) {
      Error e = make_error(ErrorCode::Mismatch, "both a dense weight and a qweight");
      e.path = path.string();
      e.tensor = p + ".weight";
      r.errors.push_back(e);
    }
  }
  if (n == 0) r.warnings.push_back("no quantized modules (no *.qweight tensors)");
  r.info["quantized_modules"] = n;
  r.info["tensors"] = set->tensors.size();
  return r;
}

Result<ojson> describe_dir(const fs::path& path, const formats::ReadOptions&) {
  const ojson cfg = MC_TRY(read_json(path / "config.json"));
  const QInfo qi = MC_TRY(quant_info(path, cfg));
  ojson d = ojson::object();
  d["quant_method"] = std::string(method_name(qi.method));
  d["quantization_config"] = qi.fields;
  if (qi.method == Method::Gptq) d["zero_point_storage"] = qi.v1 ? "zero - 1 (gptq v1)" : "zero (gptq_v2)";
  if (!safetensors::find_weight_files(path).empty()) {
    auto set = MC_TRY(safetensors::open_path(path));
    d["quantized_modules"] = module_prefixes(set.tensors).size();
  }
  return d;
}

}  // namespace mc::gptq_awq
