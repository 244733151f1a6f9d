// Static validation of a GGUF file: structure (everything the reader checks, collected rather
// than stopping at the first problem), ggml's contiguous-offset rule, the keys llama.cpp's
// loader requires for the architecture (with the types it insists on, §2.7), tensor shapes
// against the hyper-parameters, and the vocabulary against the embedding.
#include <unordered_set>

#include "formats/gguf/file.h"
#include "formats/gguf/gguf.h"
#include "formats/gguf/mapping.h"

namespace mc::gguf {
namespace {

struct Checker {
  const File& f;
  formats::ValidationReport& r;

  void error(ErrorCode code, std::string msg, std::string tensor = "") {
    Error e;
    e.code = code;
    e.path = f.path;
    e.tensor = std::move(tensor);
    e.message = std::move(msg);
    r.errors.push_back(std::move(e));
  }

  void key(const std::string& k, ValueType t, bool required) {
    const Value* v = f.kv.find(k);
    if (!v) {
      if (required) error(ErrorCode::NotFound, fmt::format("required key '{}' is missing", k));
      return;
    }
    if (v->type() != t)
      error(ErrorCode::Mismatch, fmt::format("key '{}' is {} but llama.cpp reads it as {}", k,
                                             value_type_name(v->type()), value_type_name(t)));
  }

  void shape(const std::string& name, const Shape& want, bool required = true) {
    const TensorInfo* t = f.find_tensor(name);
    if (!t) {
      if (required) error(ErrorCode::NotFound, "required tensor is missing", name);
      return;
    }
    if (t->shape() != want)
      error(ErrorCode::Mismatch,
            fmt::format("shape {} does not match the hyper-parameters (expected {})",
                        shape_str(t->shape()), shape_str(want)),
            name);
  }
};

void check_contiguous(Checker& ck) {
  uint64_t expect = 0;
  for (const auto& t : ck.f.tensors) {
    if (t.offset != expect) {
      ck.error(ErrorCode::Corrupt,
               fmt::format("data offset {} but ggml expects {} (tensors must be contiguous in "
                           "tensor-info order, each padded to {})",
                           t.offset, expect, ck.f.alignment),
               t.name);
      expect = t.offset;
    }
    expect += (t.nbytes + ck.f.alignment - 1) / ck.f.alignment * ck.f.alignment;
  }
}

void check_arch(Checker& ck) {
  const File& f = ck.f;
  auto a = f.kv.get_string("general.architecture");
  if (!a) {
    ck.error(ErrorCode::NotFound, "required key 'general.architecture' is missing");
    return;
  }
  ck.r.info["architecture"] = *a;
  auto fam = arch::family_from_gguf_arch(*a);
  if (!fam) {
    ck.r.warnings.push_back(fmt::format("architecture '{}' is not checked beyond the structure", *a));
    return;
  }
  const std::string p = *a + ".";
  const bool gpt2 = arch::family_info(*fam).decoder == arch::Decoder::GPT2;
  const size_t errors_before = ck.r.errors.size();
  ck.key(p + "context_length", ValueType::U32, true);
  ck.key(p + "embedding_length", ValueType::U32, true);
  ck.key(p + "block_count", ValueType::U32, true);
  ck.key(p + "feed_forward_length", ValueType::U32, false);
  ck.key(p + "attention.head_count", ValueType::U32, false);
  ck.key(p + "attention.head_count_kv", ValueType::U32, false);
  ck.key(p + (gpt2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"),
         ValueType::F32, true);
  if (!gpt2) ck.key(p + "rope.freq_base", ValueType::F32, false);
  ck.key("general.file_type", ValueType::U32, false);
  if (ck.r.errors.size() != errors_before) return;

  auto cfg = arch_from_file(f);
  if (!cfg) {
    ck.r.errors.push_back(std::move(cfg).error());
    return;
  }
  const arch::ArchConfig& c = *cfg;
  const int64_t h = c.hidden_size, hd = c.head_dim;
  const TensorInfo* emb = f.find_tensor("token_embd.weight");
  const int64_t vocab = emb && emb->ne.size() == 2 ? emb->ne[1] : c.vocab_size;
  if (auto v = f.kv.get_int(p + "vocab_size"); v && emb && *v != vocab)
    ck.error(ErrorCode::Mismatch,
             fmt::format("{}vocab_size is {} but token_embd.weight has {} rows", p, *v, vocab));
  if (!gpt2 && f.kv.contains(p + "rope.dimension_count")) {
    const int64_t rd = f.kv.get_int(p + "rope.dimension_count").value_or(0);
    if (rd != hd)
      ck.error(ErrorCode::Mismatch,
               fmt::format("{}rope.dimension_count {} differs from the head size {}", p, rd, hd));
  }
  // Every tensor the family's HF parameter table implies, under its GGUF name and in GGUF's
  // orientation, plus the output copy llama.cpp's graph needs for always-tied families.
  const arch::FamilyInfo& row = arch::family_info(*fam);
  arch::ArchConfig want = c;
  want.vocab_size = vocab;
  auto specs = arch::hf_param_specs(want);
  if (!specs) {
    ck.r.errors.push_back(std::move(specs).error().with_path(f.path));
    return;
  }
  for (const auto& spec : *specs) {
    auto g = gguf_tensor_name(*fam, spec.name);
    if (!g || g->empty()) continue;
    Shape shape = spec.shape;
    if (shape.size() == 2 && is_conv1d_weight(*fam, *g)) std::swap(shape[0], shape[1]);
    ck.shape(*g, shape);
  }
  if (row.gguf_output_copy) ck.shape("output.weight", {vocab, h});
  // The vocabulary must cover the embedding exactly (llama.cpp sizes n_vocab from it).
  if (const Value* toks = f.kv.get_array("tokenizer.ggml.tokens", ValueType::String)) {
    if (emb && int64_t(toks->size()) != vocab)
      ck.error(ErrorCode::Mismatch,
               fmt::format("tokenizer.ggml.tokens has {} tokens but token_embd.weight has {} rows",
                           toks->size(), vocab));
  } else {
    ck.r.warnings.push_back("no tokenizer.ggml.tokens: llama.cpp cannot load the file without a vocabulary");
  }
}

void check_tokenizer(Checker& ck) {
  const Value* toks = ck.f.kv.find("tokenizer.ggml.tokens");
  if (!toks) return;
  if (!toks->is_array() || toks->elem_type() != ValueType::String) {
    ck.error(ErrorCode::Mismatch, "tokenizer.ggml.tokens is not an array of strings");
    return;
  }
  const uint64_t n = toks->size();
  for (const char* k : {"tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
    const Value* v = ck.f.kv.find(k);
    if (v && (!v->is_array() || v->size() != n))
      ck.error(ErrorCode::Mismatch,
               fmt::format("{} has {} entries for {} tokens", k, v->is_array() ? v->size() : 1, n));
  }
  for (const char* k : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"}) {
    if (auto id = ck.f.kv.get_int(k); id && (*id < 0 || uint64_t(*id) >= n))
      ck.error(ErrorCode::Mismatch, fmt::format("{} = {} is outside the {} tokens", k, *id, n));
  }
  if (auto m = ck.f.kv.get_string("tokenizer.ggml.model"); m && *m == "gpt2" &&
                                                          !ck.f.kv.contains("tokenizer.ggml.merges"))
    ck.error(ErrorCode::NotFound, "tokenizer.ggml.model is gpt2 but tokenizer.ggml.merges is missing");
}

}  // namespace

formats::ValidationReport validate_file(const std::filesystem::path& path) {
  formats::ValidationReport r;
  r.format = "gguf";
  std::vector<Error> problems;
  ParseOptions po;
  po.problems = &problems;
  auto f = open(path, po);
  if (!f) {
    r.errors.push_back(std::move(f).error());
    return r;
  }
  for (auto& e : problems) r.errors.push_back(std::move(e));
  r.info["version"] = f->version;
  r.info["alignment"] = f->alignment;
  r.info["tensors"] = f->tensors.size();
  r.info["kv"] = f->kv.size();
  if (auto ft = f->kv.get_int("general.file_type")) r.info["file_type"] = *ft;
  Checker ck{*f, r};
  check_contiguous(ck);
  check_tokenizer(ck);
  check_arch(ck);
  return r;
}

}  // namespace mc::gguf
