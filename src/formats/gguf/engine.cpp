// The GGUF engine entry points: detection by magic, read (GGUF -> HF-form Model), write (a Model
// -> one .gguf file, streamed), validate.
#include <cctype>
#include <fstream>
#include <map>

#include "formats/gguf/file.h"
#include "quant/ggml_types.h"
#include "formats/gguf/gguf.h"
#include "formats/gguf/mapping.h"
#include "formats/gguf/tokenizer_kv.h"
#include "quant/ggml.h"
#include "tokenizer/loaders.h"

namespace mc::gguf {

using quant::dtype_for_ggml;
using quant::find_ggml_type;
using quant::ggml_for_dtype;
using quant::GgmlType;

formats::Confidence detect(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return formats::Confidence::No;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, 4)) return formats::Confidence::No;
  if (std::string_view(magic, 4) == "GGUF") return formats::Confidence::Certain;
  return path.extension() == ".gguf" ? formats::Confidence::Maybe : formats::Confidence::No;
}

Result<Model> read_model(const std::filesystem::path& path, const formats::ReadOptions&) {
  File f = MC_TRY(open(path));
  // What `validate` rejects is not read either (overlapping offsets, a rope size that is not the
  // head size, shapes or tensors the hyper-parameters contradict): the first problem is the error.
  // A vocabulary-only file (no tensors) is read for its tokenizer and not judged as a model.
  if (!f.tensors.empty())
    if (auto v = validate_file(path); !v.ok()) return std::move(v.errors.front());
  Model m = MC_TRY(model_from_file(f));
  MC_CHECK(attach_tokenizer_files(f, m));
  return m;
}

Result<formats::WriteResult> write_model(const Model& m, const std::filesystem::path& out,
                                         const formats::WriteOptions& opt) {
  if (!opt.pool) return make_error(ErrorCode::Internal, "GGUF writer called without a thread pool");
  ToGgufOptions to;
  if (!opt.quant.empty()) {
    auto ft = quant::file_type_from_name(opt.quant);
    if (!ft)
      return make_error(ErrorCode::InvalidArgument, "unknown GGUF output type '{}'", opt.quant)
          .with_hint(
              "use f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s/m/l, q4_k_s/m, q5_k_s/m or "
              "q6_k");
    to.ftype = *ft;
  } else if (opt.dtype) {
    auto ft = quant::file_type_for_float(*opt.dtype);
    if (!ft)
      return make_error(ErrorCode::InvalidArgument, "GGUF float output must be f32, f16 or bf16, not {}",
                        dtype_name(*opt.dtype))
          .with_hint("use --quant for quantized GGUF types");
    to.ftype = *ft;
  }
  Plan plan = MC_TRY(plan_from_model(m, to));
  MC_CHECK(add_tokenizer_metadata(m, plan));
  std::string name_note;
  if (auto name = plan.kv.get_string("general.name")) {
    static const std::vector<std::string> kNoTokens;
    const Value* toks = plan.kv.get_array("tokenizer.ggml.tokens", ValueType::String);
    const std::vector<std::string>& tokens = toks ? toks->string_items() : kNoTokens;  // not a copy
    const std::string safe = safe_general_name(*name, tokens, &name_note);
    if (safe != *name) plan.kv.set_string("general.name", safe);
  }
  FileWriteOptions fo;
  fo.chunk_bytes = opt.chunk_bytes;
  fo.sink = opt.progress;
  const uint64_t size = MC_TRY(write_file(out, plan.kv, plan.tensors, *opt.pool, fo));
  formats::WriteResult r;
  r.files.push_back(out.filename().string());
  for (const auto& t : plan.tensors) r.tensor_bytes += t.nbytes();
  r.info["file_bytes"] = size;
  r.info["file_type"] = std::string(quant::file_type_name(to.ftype));
  r.info["tensors"] = plan.tensors.size();
  r.info["architecture"] = plan.kv.get_string("general.architecture").value_or("");
  if (!name_note.empty()) r.info["note"] = name_note;
  return r;
}

// What `inspect` shows of a GGUF file itself, whether or not its architecture converts: header,
// names, the llama-quantize file type, stored tensor types with bits per weight, the embedded
// tokenizer, and every metadata key (arrays summarised).
Result<ojson> describe(const std::filesystem::path& path, const formats::ReadOptions&) {
  File f = MC_TRY(open(path));
  ojson d = ojson::object();
  d["gguf_version"] = f.version;
  d["alignment"] = f.alignment;
  d["metadata_keys"] = f.kv.size();
  if (auto a = f.kv.get_string("general.architecture")) d["gguf_arch"] = *a;
  if (auto n = f.kv.get_string("general.name")) d["name"] = *n;
  if (auto ft = f.kv.get_int("general.file_type")) {
    auto t = quant::file_type_from_id(int(*ft));
    d["file_type"] = t ? std::string(quant::file_type_name(*t)) : fmt::format("id {}", *ft);
  }
  struct Count {
    uint64_t tensors = 0, elems = 0, bytes = 0;
  };
  std::map<std::string, Count> by_type;
  uint64_t elems = 0, bytes = 0;
  for (const auto& t : f.tensors) {
    const GgmlType* g = find_ggml_type(t.ggml_type);
    Count& c = by_type[g ? std::string(g->name) : fmt::format("type {}", t.ggml_type)];
    uint64_t n = 1;
    for (int64_t x : t.ne) n *= uint64_t(x);
    ++c.tensors;
    c.elems += n;
    c.bytes += t.nbytes;
    elems += n;
    bytes += t.nbytes;
  }
  if (elems > 0) d["bits_per_weight"] = std::round(800.0 * double(bytes) / double(elems)) / 100.0;
  std::string summary;
  ojson types = ojson::object();
  for (const auto& [name, c] : by_type) {
    summary += fmt::format("{}{} x{} ({:.2f} bpw)", summary.empty() ? "" : ", ", name, c.tensors,
                           c.elems ? 8.0 * double(c.bytes) / double(c.elems) : 0.0);
    types[name] = {{"tensors", c.tensors}, {"elements", c.elems}, {"bytes", c.bytes}};
  }
  d["tensor_types"] = summary.empty() ? std::string("(none: vocabulary only)") : summary;
  d["types"] = std::move(types);
  if (auto m = f.kv.get_string(tok::kGgufKeyModel)) {
    const Value* toks = f.kv.get_array(tok::kGgufKeyTokens, ValueType::String);
    d["embedded_tokenizer"] = fmt::format("{} ({} tokens, pre {})", *m, toks ? toks->size() : 0,
                                          f.kv.get_string(tok::kGgufKeyPre).value_or("default"));
  }
  ojson meta = ojson::object();
  for (const auto& [key, v] : f.kv) {  // scalars as JSON values, arrays summarised
    if (const std::string* str = v.as_string()) meta[key] = *str;
    else if (v.type() == ValueType::Bool) meta[key] = v.as_bool().value_or(false);
    else if (auto i = v.is_array() ? std::nullopt : v.as_int()) meta[key] = *i;
    else if (auto x = v.is_array() ? std::nullopt : v.as_float()) meta[key] = *x;
    else meta[key] = v.display();
  }
  d["metadata"] = std::move(meta);
  return d;
}

constexpr std::string_view kGgufExts[] = {".gguf"};

Result<tok::Vocab> embedded_vocab(const std::filesystem::path& path) {
  File f = MC_TRY(open(path));
  return vocab_from_kv(f.kv);
}

const formats::Engine& engine() {
  static const formats::Engine e{
      .id = "gguf",
      .description = "GGUF (llama.cpp): f32/f16/bf16 and llama-quantize types, embedded tokenizer",
      .detect = &detect,
      .read = &read_model,
      .write = &write_model,
      .out_is_dir = false,
      .validate = &validate_file,
      .describe = &describe,
      .caps = {.quant = quant::file_type_names(),
               .quant_help = "llama-quantize file types (ggml blocks and k-quant mixtures), the same bytes",
               .single_file_exts = kGgufExts},
      .takes_family = [](const arch::FamilyInfo& f) { return !f.gguf_arch.empty(); },
      .embedded_vocab = &embedded_vocab,
  };
  return e;
}

}  // namespace mc::gguf
