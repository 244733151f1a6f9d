// ONNX -> HF-form Model. The .onnx file is mapped and decoded in place; each initializer becomes a
// lazy tensor over the mapping (raw_data) or over a mapped external data file (bounds-checked,
// locations relative to the .onnx and without ".."). Names back to HF's:
//   - an initializer whose name is already an HF parameter name (ours always; optimum's for
//     embeddings, norms, biases, GPT-2 Conv1D) is kept as it is;
//   - an unnamed one ("onnx::MatMul_123", optimum's transposed Linear weight) read as input B of
//     a MatMul node named after its module ("/model/layers.0/self_attn/q_proj/MatMul") becomes
//     "model.layers.0.self_attn.q_proj.weight", transposed back to [out, in];
//   - the rest (shape and axes constants, masks) are dropped.
// config.json and the tokenizer files come from the .onnx file's directory or its parent (the
// Transformers.js layout keeps them one level above onnx/).
#include <algorithm>
#include <map>

#include "arch/config.h"
#include "formats/onnx/onnx.h"
#include "io/probe.h"

namespace mc::onnx {

namespace {

constexpr std::string_view kCarried[] = {
    "tokenizer.json",   "tokenizer.model",     "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json",         "merges.txt",            "generation_config.json",
    "chat_template.jinja", "chat_template.json", "LICENSE"};

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool hf_like(std::string_view n) {
  if (n.empty() || n[0] == '/' || n.starts_with("onnx::") || n.starts_with("const/")) return false;
  return n.ends_with(".weight") || n.ends_with(".bias");
}

// "/model/layers.0/self_attn/q_proj/MatMul" -> "model.layers.0.self_attn.q_proj.weight".
std::optional<std::string> name_from_matmul_node(std::string_view node) {
  if (!node.starts_with("/")) return std::nullopt;
  const size_t last = node.rfind('/');
  if (last == 0 || last == std::string_view::npos) return std::nullopt;
  std::string s(node.substr(1, last - 1));
  std::replace(s.begin(), s.end(), '/', '.');
  return s + ".weight";
}

// [rows, cols] stored -> [cols, rows] served, row chunk by row chunk.
TensorDataPtr transposed(const TensorEntry& src) {
  const int64_t rows = src.shape[0], cols = src.shape[1];
  const uint64_t es = dtype_size(src.dtype);
  auto data = src.data;
  return make_fn_data(
      [data, rows, cols, es](uint64_t offset, std::span<std::byte> dst) -> Status {
        const uint64_t out_row = static_cast<uint64_t>(rows) * es;  // bytes of one output row
        if (offset % out_row != 0 || dst.size() % out_row != 0)
          return make_error(ErrorCode::Internal, "transposed read not on row boundaries");
        const int64_t r0 = static_cast<int64_t>(offset / out_row);
        const int64_t n = static_cast<int64_t>(dst.size() / out_row);
        std::vector<std::byte> seg(static_cast<size_t>(n) * es);
        for (int64_t k = 0; k < rows; ++k) {
          MC_CHECK(data->read((static_cast<uint64_t>(k) * static_cast<uint64_t>(cols) + static_cast<uint64_t>(r0)) * es, seg));
          for (int64_t j = 0; j < n; ++j)
            std::copy_n(seg.data() + j * static_cast<int64_t>(es), es,
                        dst.data() + (static_cast<uint64_t>(j) * out_row + static_cast<uint64_t>(k) * es));
        }
        return {};
      },
      static_cast<uint64_t>(rows) * es);
}

Error at(ErrorCode code, const fs::path& p, uint64_t offset, std::string msg) {
  return Error{.code = code, .path = p.string(), .offset = offset, .message = std::move(msg)};
}

}  // namespace

Result<fs::path> find_model_file(const fs::path& path) {
  if (!io::is_dir(path)) {
    if (!is_file(path)) return Error{.code = ErrorCode::NotFound, .path = path.string(), .message = "no such file"};
    return path;
  }
  for (const char* rel : {"onnx/model.onnx", "model.onnx", "onnx/model_fp16.onnx", "model_fp16.onnx"})
    if (is_file(path / rel)) return path / rel;
  for (const fs::path& dir : {path / "onnx", path}) {
    std::vector<fs::path> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".onnx") found.push_back(e.path());
    std::sort(found.begin(), found.end());
    if (!found.empty()) return found.front();
  }
  return Error{.code = ErrorCode::NotFound, .path = path.string(), .message = "no .onnx file in this directory",
               .hint = "point at the .onnx file or at the directory that holds onnx/model.onnx"};
}

Result<OpenModel> open_model(const fs::path& onnx_file) {
  OpenModel om;
  om.path = onnx_file;
  om.file = MC_TRY(io::MappedFile::open(onnx_file.string()));
  if (om.file->size() > kProtoLimit)
    return at(ErrorCode::LimitExceeded, onnx_file, 0,
              fmt::format("{} bytes: a serialized ModelProto may not exceed 2 GiB", om.file->size()));
  auto m = decode_model(om.file->bytes());
  if (!m) {
    Error e = std::move(m).error().with_path(onnx_file.string());
    e.hint = "the file is not a complete ONNX model: re-download or re-export it";
    return e;
  }
  om.model = std::move(*m);
  return om;
}

// The tensors of a decoded model with their data sources (all initializers, ONNX names).
Result<TensorStore> initializer_tensors(const OpenModel& om) {
  TensorStore ts;
  std::map<std::string, io::MappedFilePtr> ext_files;
  const fs::path dir = om.path.parent_path();
  for (const InitIn& in : om.model.inits) {
    auto fail = [&](ErrorCode c, uint64_t off, std::string msg) {
      Error e = at(c, om.path, off, std::move(msg));
      e.tensor = in.name;
      return e;
    };
    const auto dt = dtype_from_onnx(in.data_type);
    if (!dt) return fail(ErrorCode::Unsupported, in.offset, fmt::format("data type {} ({}) is not supported", in.data_type, onnx_type_name(in.data_type)));
    TensorEntry e;
    e.name = in.name;
    e.dtype = *dt;
    e.shape = in.dims;
    auto numel = shape_numel(e.shape);
    if (!numel) return fail(ErrorCode::Corrupt, in.offset, numel.error().message);
    const uint64_t need = MC_TRY(dtype_nbytes(e.dtype, *numel));
    if (in.external) {
      const fs::path loc(in.location);
      if (in.location.empty() || loc.is_absolute() ||
          std::any_of(loc.begin(), loc.end(), [](const fs::path& c) { return c == ".."; }))
        return fail(ErrorCode::Corrupt, in.offset, fmt::format("external data location '{}' must be a relative path inside the model's directory", in.location));
      auto& mf = ext_files[in.location];
      if (!mf) {
        const fs::path p = dir / loc;
        if (!is_file(p)) {
          Error e = fail(ErrorCode::NotFound, in.offset, fmt::format("external data file '{}' is missing", in.location));
          e.hint = fmt::format("copy {} next to {}", in.location, om.path.filename().string());
          return e;
        }
        mf = MC_TRY(io::MappedFile::open(p.string()));
      }
      const uint64_t off = in.ext_offset.value_or(0), len = in.ext_length.value_or(need);
      if (len != need)
        return fail(ErrorCode::Mismatch, in.offset, fmt::format("external length {} bytes, shape {} of {} needs {}", len, shape_str(e.shape), dtype_name(e.dtype), need));
      if (off > mf->size() || mf->size() - off < need) {
        Error err = fail(ErrorCode::Truncated, in.offset, fmt::format("external bytes [{}, {}) are past the end of {} ({} bytes)", off, off + need, in.location, mf->size()));
        err.hint = fmt::format("{} looks truncated: re-download or re-export it", in.location);
        return err;
      }
      e.data = std::make_shared<MemoryData>(mf, mf->bytes().subspan(off, need), true);
    } else if (in.typed_field == 0) {
      if (in.raw.size() != need)
        return fail(ErrorCode::Mismatch, in.raw_offset, fmt::format("raw_data holds {} bytes, shape {} of {} needs {}", in.raw.size(), shape_str(e.shape), dtype_name(e.dtype), need));
      e.data = std::make_shared<MemoryData>(om.file, in.raw, true);
    } else if ((in.typed_field == 4 && e.dtype == DType::F32) || (in.typed_field == 10 && e.dtype == DType::F64)) {
      if (in.typed.size() != need)
        return fail(ErrorCode::Mismatch, in.offset, fmt::format("typed data holds {} bytes, needs {}", in.typed.size(), need));
      e.data = std::make_shared<MemoryData>(om.file, in.typed, true);
    } else {
      // int32_data / int64_data: packed varints (small tensors: constants).
      pb::Field f;
      f.number = in.typed_field;
      f.wire = pb::Wire::Len;
      f.data = in.typed;
      std::vector<int64_t> vals;
      MC_CHECK(pb::append_int64s(f, vals));
      if (vals.size() != *numel)
        return fail(ErrorCode::Mismatch, in.offset, fmt::format("{} values for {} elements", vals.size(), *numel));
      std::vector<std::byte> bytes(need);
      const size_t es = dtype_size(e.dtype);
      for (size_t i = 0; i < vals.size(); ++i) {
        const uint64_t v = static_cast<uint64_t>(vals[i]);
        for (size_t b = 0; b < es; ++b) bytes[i * es + b] = static_cast<std::byte>((v >> (8 * b)) & 0xff);
      }
      e.data = make_owned_data(std::move(bytes));
    }
    ts.put(std::move(e));
  }
  return ts;
}

Result<Model> read_model(const fs::path& path, const formats::ReadOptions&) {
  const fs::path file = MC_TRY(find_model_file(path));
  const OpenModel om = MC_TRY(open_model(file));
  if (!om.model.has_graph)
    return Error{.code = ErrorCode::Corrupt, .path = file.string(), .offset = 0,
                 .message = "no GraphProto in this ModelProto (not an ONNX model, or truncated)",
                 .hint = "re-download or re-export the model"};
  const TensorStore all = MC_TRY(initializer_tensors(om));
  Model m;
  m.source_format = "onnx";
  m.source_path = path.string();
  std::error_code ec;
  const fs::path rel = fs::relative(file, io::is_dir(path) ? path : file.parent_path(), ec);
  m.weight_files.push_back(ec ? file.filename().string() : rel.string());
  // Unnamed MatMul weights: name them after the node that reads them.
  std::map<std::string, std::string> matmul_names;
  for (const Node& n : om.model.nodes)
    if (n.op_type == "MatMul" && n.inputs.size() == 2 && all.contains(n.inputs[1]) && !hf_like(n.inputs[1]))
      if (auto hf = name_from_matmul_node(n.name)) matmul_names.emplace(n.inputs[1], *hf);
  for (const TensorEntry& e : all) {
    if (hf_like(e.name)) {
      m.tensors.put(e);
    } else if (auto it = matmul_names.find(e.name); it != matmul_names.end() && e.shape.size() == 2) {
      if (m.tensors.contains(it->second)) continue;
      TensorEntry t{it->second, e.dtype, {e.shape[1], e.shape[0]}, transposed(e)};
      m.tensors.put(std::move(t));
    }
  }
  // config.json and tokenizer files: next to the .onnx, else one level up.
  for (const fs::path& dir : {file.parent_path(), file.parent_path().parent_path()}) {
    if (!is_file(dir / "config.json")) continue;
    m.config_text = MC_TRY(io::read_text_file((dir / "config.json").string(), 64u << 20));
    m.config = ojson::parse(m.config_text, nullptr, false);
    if (m.config.is_discarded() || !m.config.is_object())
      return Error{.code = ErrorCode::Corrupt, .path = (dir / "config.json").string(),
                   .message = "config.json is not a JSON object", .hint = "fix or re-download config.json"};
    if (m.config.erase("transformers.js_config")) m.config_modified = true;  // ours, not the model's
    for (auto name : kCarried)
      if (is_file(dir / name)) m.extra_files.push_back({std::string(name), dir / name, std::nullopt});
    break;
  }
  if (m.config.empty())
    return Error{.code = ErrorCode::NotFound, .path = file.string(),
                 .message = "no config.json next to the ONNX model or one directory up",
                 .hint = "an ONNX graph alone does not say the architecture: put the model's config.json beside it"};
  // A tied model's head is the embedding (transformers ties them on load whatever is stored);
  // torch's exporter writes a transposed copy of it for the lm_head MatMul.
  if (auto ac = arch::from_hf_config(m.config); ac && ac->tie_word_embeddings) {
    const std::string embed = ac->info() && ac->info()->decoder == arch::Decoder::GPT2
                                  ? std::string(ac->info()->hf_prefix) + "wte.weight" : "model.embed_tokens.weight";
    if (m.tensors.contains(embed) || m.tensors.contains("wte.weight")) m.tensors.erase("lm_head.weight");
  }
  if (m.tensors.empty())
    return Error{.code = ErrorCode::NotFound, .path = file.string(),
                 .message = "no initializer has an HF parameter name or a MatMul node to name it after",
                 .hint = "this ONNX model was not exported from an HF decoder by modelconvert or optimum"};
  return m;
}

}  // namespace mc::onnx
