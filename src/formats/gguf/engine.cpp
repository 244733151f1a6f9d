// The GGUF engine entry points: detection by magic, read (GGUF -> HF-form Model), write (a Model
// -> one .gguf file, streamed), validate.
#include <cctype>
#include <fstream>

#include "formats/gguf/file.h"
#include "formats/gguf/gguf.h"
#include "formats/gguf/mapping.h"
#include "formats/gguf/tokenizer_kv.h"

namespace mc::gguf {

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
  Model m = MC_TRY(model_from_file(f));
  MC_CHECK(attach_tokenizer_files(f, m));
  return m;
}

Result<formats::WriteResult> write_model(const Model& m, const std::filesystem::path& out,
                                         const formats::WriteOptions& opt) {
  if (!opt.pool) return make_error(ErrorCode::Internal, "GGUF writer called without a thread pool");
  ToGgufOptions to;
  if (!opt.quant.empty()) {
    to.ftype = opt.quant;
    for (auto& ch : to.ftype) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  } else if (opt.dtype) {
    if (*opt.dtype != DType::F32 && *opt.dtype != DType::F16 && *opt.dtype != DType::BF16) {
      Error e = make_error(ErrorCode::InvalidArgument, "GGUF float output must be f32, f16 or bf16, not {}",
                           dtype_name(*opt.dtype));
      e.hint = "use --quant for quantized GGUF types";
      return e;
    }
    to.ftype = std::string(dtype_name(*opt.dtype));
  }
  Plan plan = MC_TRY(plan_from_model(m, to));
  MC_CHECK(add_tokenizer_metadata(m, plan));
  FileWriteOptions fo;
  fo.chunk_bytes = opt.chunk_bytes;
  const uint64_t size = MC_TRY(write_file(out, plan.kv, plan.tensors, *opt.pool, fo));
  formats::WriteResult r;
  r.files.push_back(out.filename().string());
  for (const auto& t : plan.tensors) r.tensor_bytes += t.nbytes();
  r.info["file_bytes"] = size;
  r.info["file_type"] = to.ftype;
  r.info["tensors"] = plan.tensors.size();
  r.info["architecture"] = plan.kv.get_string("general.architecture").value_or("");
  return r;
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
  };
  return e;
}

}  // namespace mc::gguf
