// llama2.c checkpoint reader, formats.md §12 (karpathy/llama2.c export.py / run.c).
//
// legacy (v0): int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (< 0: classifier
//   not shared), seq_len; then f32: tok_embeddings[V,D], attention_norm[L,D], wq[L,D,D],
//   wk[L,KV,D], wv[L,KV,D], wo[L,D,D], ffn_norm[L,D], w1[L,H,D], w2[L,D,H], w3[L,H,D],
//   norm[D], freq_cis_real/imag[S, hs/2] x2 (skipped), classifier[V,D] if not shared.
// v1: u32 magic 0x616b3432, int32 version 1, the 7 int32, u8 shared, zero pad to 256; f32:
//   attention_norm, ffn_norm, norm, tok_embeddings, wq, wk, wv, wo, w1, w2, w3, [classifier].
// v2: v1 header + int32 group_size at byte 37; f32 norms (attention, ffn, final); then for the
//   embedding, each layer's wq, ..., each layer's w3, [classifier]: int8 values then one f32
//   scale per group_size values (w = q * scale).
// Matrices are [out, in] like torch Linear weights. q/k rows are in Meta's adjacent-pair RoPE
// layout and are permuted lazily to HF's rotate-half layout (§12, inverse of §2.9).
#include <bit>
#include <cstring>
#include <map>

#include "arch/config.h"
#include "formats/llama2c/llama2c.h"
#include "io/mapped_file.h"
#include "transforms/rows.h"
#include "arch/config.h"
#include "transforms/transforms.h"

namespace mc::llama2c {

static_assert(std::endian::native == std::endian::little, "llama2.c files are little-endian");

namespace {

// Caps on header values: far above any llama2.c model, low enough that every size product
// below fits in 64 bits.
constexpr int64_t kMaxDim = int64_t(1) << 16;
constexpr int64_t kMaxHidden = int64_t(1) << 20;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxVocab = int64_t(1) << 24;
constexpr int64_t kMaxSeqLen = int64_t(1) << 24;
constexpr int64_t kMaxGroup = int64_t(1) << 20;

int32_t load_i32(std::span<const std::byte> b, size_t off) {
  int32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

Error header_error(uint64_t offset, std::string msg) {
  Error e;
  e.code = ErrorCode::Corrupt;
  e.offset = offset;
  e.message = std::move(msg);
  e.hint = "this is not a llama2.c checkpoint written by export.py, or the header is damaged";
  return e;
}

// One tensor of the file, in file order.
struct Piece {
  std::string name;  // HF name
  Shape shape;
  uint64_t offset = 0;        // f32 data, or int8 values for q8
  uint64_t scale_offset = 0;  // q8 only
  bool q8 = false;
};

struct Plan {
  std::vector<Piece> pieces;
  uint64_t end = 0;  // expected file size
};

Result<Plan> plan(const Header& h) {
  Plan p;
  uint64_t off = h.data_offset;
  const int64_t D = h.dim, H = h.hidden_dim, L = h.n_layers, V = h.vocab_size, KV = h.kv_dim();
  auto layer = [](int64_t l, const char* rest) { return fmt::format("model.layers.{}.{}", l, rest); };
  auto add = [&](std::string name, Shape shape) -> Status {
    const uint64_t n = MC_TRY(shape_numel(shape));
    Piece pc{std::move(name), std::move(shape), off, 0, false};
    if (h.version == 2 && pc.shape.size() == 2) {
      if (n % uint64_t(h.group_size) != 0)
        return make_error(ErrorCode::Corrupt, "{} values of '{}' are not a multiple of group_size {}",
                          n, pc.name, h.group_size);
      pc.q8 = true;
      pc.scale_offset = off + n;
      off += n + 4 * (n / uint64_t(h.group_size));
    } else {
      off += 4 * n;
    }
    p.pieces.push_back(std::move(pc));
    return {};
  };
  auto per_layer = [&](const char* rest, Shape shape) -> Status {
    for (int64_t l = 0; l < L; ++l) MC_CHECK(add(layer(l, rest), shape));
    return {};
  };
  auto mats = [&]() -> Status {
    MC_CHECK(per_layer("self_attn.q_proj.weight", {D, D}));
    MC_CHECK(per_layer("self_attn.k_proj.weight", {KV, D}));
    MC_CHECK(per_layer("self_attn.v_proj.weight", {KV, D}));
    MC_CHECK(per_layer("self_attn.o_proj.weight", {D, D}));
    return {};
  };
  auto ffn = [&]() -> Status {
    MC_CHECK(per_layer("mlp.gate_proj.weight", {H, D}));  // w1
    MC_CHECK(per_layer("mlp.down_proj.weight", {D, H}));  // w2
    MC_CHECK(per_layer("mlp.up_proj.weight", {H, D}));    // w3
    return {};
  };
  if (h.version == 0) {
    MC_CHECK(add("model.embed_tokens.weight", {V, D}));
    MC_CHECK(per_layer("input_layernorm.weight", {D}));
    MC_CHECK(mats());
    MC_CHECK(per_layer("post_attention_layernorm.weight", {D}));
    MC_CHECK(ffn());
    MC_CHECK(add("model.norm.weight", {D}));
    off += 2 * 4 * uint64_t(h.seq_len) * uint64_t(h.head_size() / 2);  // freq_cis_real, imag
  } else {
    MC_CHECK(per_layer("input_layernorm.weight", {D}));
    MC_CHECK(per_layer("post_attention_layernorm.weight", {D}));
    MC_CHECK(add("model.norm.weight", {D}));
    MC_CHECK(add("model.embed_tokens.weight", {V, D}));
    MC_CHECK(mats());
    MC_CHECK(ffn());
  }
  if (!h.shared_classifier) MC_CHECK(add("lm_head.weight", {V, D}));
  p.end = off;
  return p;
}

Status check_dims(const Header& h, uint64_t dims_offset) {
  struct Check {
    const char* name;
    int64_t v, max;
  };
  const Check checks[] = {{"dim", h.dim, kMaxDim},           {"hidden_dim", h.hidden_dim, kMaxHidden},
                          {"n_layers", h.n_layers, kMaxLayers}, {"n_heads", h.n_heads, kMaxDim},
                          {"n_kv_heads", h.n_kv_heads, kMaxDim}, {"vocab_size", h.vocab_size, kMaxVocab},
                          {"seq_len", h.seq_len, kMaxSeqLen}};
  for (size_t i = 0; i < std::size(checks); ++i)
    if (checks[i].v <= 0 || checks[i].v > checks[i].max)
      return header_error(dims_offset + 4 * i, fmt::format("{} = {} is outside 1..{}", checks[i].name,
                                                           checks[i].v, checks[i].max));
  if (h.dim % h.n_heads != 0 || h.head_size() % 2 != 0)
    return header_error(dims_offset, fmt::format("dim {} is not n_heads {} x an even head size", h.dim, h.n_heads));
  if (h.n_kv_heads > h.n_heads || h.n_heads % h.n_kv_heads != 0)
    return header_error(dims_offset + 16, fmt::format("n_kv_heads {} does not divide n_heads {}",
                                                      h.n_kv_heads, h.n_heads));
  return {};
}

}  // namespace

Result<Header> parse_header(std::span<const std::byte> head, uint64_t file_size) {
  Header h;
  if (head.size() < kHeaderLegacy)
    return make_error(ErrorCode::Truncated, "file has {} bytes, a llama2.c header needs at least {}",
                      head.size(), kHeaderLegacy);
  uint32_t magic;
  std::memcpy(&magic, head.data(), 4);
  uint64_t dims_at = 0;
  if (magic == kMagic) {
    if (head.size() < kHeaderV1)
      return make_error(ErrorCode::Truncated, "file has {} bytes, a llama2.c v1/v2 header needs {}",
                        head.size(), kHeaderV1);
    h.version = load_i32(head, 4);
    if (h.version != 1 && h.version != 2)
      return header_error(4, fmt::format("unknown llama2.c version {} (1 and 2 are defined)", h.version));
    dims_at = 8;
    h.shared_classifier = head[36] != std::byte{0};
    if (h.version == 2) {
      h.group_size = load_i32(head, 37);  // unaligned: right after the flag byte
      if (h.group_size <= 0 || h.group_size > kMaxGroup)
        return header_error(37, fmt::format("group_size {} is outside 1..{}", h.group_size, kMaxGroup));
    }
    h.data_offset = kHeaderV1;
  } else {
    h.data_offset = kHeaderLegacy;
  }
  int64_t v[7];
  for (int i = 0; i < 7; ++i) v[i] = load_i32(head, dims_at + 4 * size_t(i));
  h.dim = v[0], h.hidden_dim = v[1], h.n_layers = v[2], h.n_heads = v[3], h.n_kv_heads = v[4];
  h.vocab_size = v[5], h.seq_len = v[6];
  if (h.version == 0) {
    h.shared_classifier = h.vocab_size > 0;  // run.c: a negative vocab_size means unshared
    h.vocab_size = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  }
  MC_CHECK(check_dims(h, dims_at));
  const Plan p = MC_TRY(plan(h));
  h.expected_size = p.end;
  if (file_size != h.expected_size) {
    return make_error(file_size < h.expected_size ? ErrorCode::Truncated : ErrorCode::Corrupt,
                      "file has {} bytes, the llama2.c v{} header (dim {}, hidden {}, {} layers, "
                      "{} heads, {} kv heads, vocab {}, seq_len {}, {} classifier) implies {}",
                      file_size, h.version, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads,
                      h.vocab_size, h.seq_len, h.shared_classifier ? "shared" : "separate", h.expected_size)
        .with_hint(file_size < h.expected_size ? "the file is incomplete: copy or export it again"
                                               : "the file is not a llama2.c checkpoint of this layout");
  }
  return h;
}

formats::Confidence detect(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return formats::Confidence::No;
  auto f = io::MappedFile::open(path.string());
  if (!f) return formats::Confidence::No;
  auto bytes = (*f)->bytes();
  auto h = parse_header(bytes.first(std::min<size_t>(bytes.size(), kHeaderV1)), bytes.size());
  if (!h) return formats::Confidence::No;
  // A legacy header has no magic: exact size agreement makes a coincidence very unlikely.
  return h->version == 0 ? formats::Confidence::Likely : formats::Confidence::Certain;
}

namespace {

TensorDataPtr q8_data(io::MappedFilePtr file, uint64_t q_off, uint64_t s_off, uint64_t n, uint64_t gs) {
  return make_fn_data(
      [file, q_off, s_off, n, gs](uint64_t offset, std::span<std::byte> dst) -> Status {
        const auto bytes = file->bytes();
        return transforms::read_elementwise(offset, dst, 4, n,
                                            [&](uint64_t first, uint64_t count, std::byte* out) -> Status {
                                              for (uint64_t i = first; i < first + count; ++i) {
                                                const auto q = int8_t(bytes[q_off + i]);
                                                float scale;
                                                std::memcpy(&scale, bytes.data() + s_off + 4 * (i / gs), 4);
                                                const float w = float(q) * scale;
                                                std::memcpy(out + 4 * (i - first), &w, 4);
                                              }
                                              return {};
                                            });
      },
      4);
}

Status attach_tokenizer(Model& m, const fs::path& given, const Header& h) {
  std::error_code ec;
  fs::path p = given;
  if (fs::is_directory(p, ec)) p /= "tokenizer.model";
  if (!fs::is_regular_file(p, ec))
    return make_error(ErrorCode::NotFound, "tokenizer file not found")
        .with_path(p.string())
        .with_hint("pass --tokenizer PATH/tokenizer.model (a SentencePiece model)");
  auto f = MC_TRY(io::MappedFile::open(p.string()));
  // A SentencePiece ModelProto starts with field 1 (pieces, length-delimited): byte 0x0a.
  // llama2.c's own tokenizer.bin starts with an int32 max_token_length instead.
  if (f->size() < 2 || f->bytes()[0] != std::byte{0x0a})
    return make_error(ErrorCode::Unsupported, "not a SentencePiece tokenizer.model")
        .with_path(p.string())
        .with_hint("llama2.c's tokenizer.bin cannot be used; pass the tokenizer.model it was made from");
  m.set_extra({"tokenizer.model", p, std::nullopt});
  ojson tc = ojson::object();
  tc["add_bos_token"] = true;
  tc["add_eos_token"] = false;
  tc["bos_token"] = "<s>";
  tc["clean_up_tokenization_spaces"] = false;
  tc["eos_token"] = "</s>";
  tc["legacy"] = true;
  tc["model_max_length"] = h.seq_len;
  tc["pad_token"] = nullptr;
  tc["sp_model_kwargs"] = ojson::object();
  tc["tokenizer_class"] = "LlamaTokenizer";
  tc["unk_token"] = "<unk>";
  m.set_extra({"tokenizer_config.json", {}, tc.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"});
  ojson sm = {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
  m.set_extra({"special_tokens_map.json", {}, sm.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"});
  return {};
}

}  // namespace

Result<Model> read(const fs::path& path, const formats::ReadOptions& opt) {
  auto file = io::MappedFile::open(path.string());
  if (!file) return std::move(file).error().with_path(path.string());
  const io::MappedFilePtr f = *file;
  const auto bytes = f->bytes();
  auto hr = parse_header(bytes.first(std::min<size_t>(bytes.size(), kHeaderV1)), bytes.size());
  if (!hr) return std::move(hr).error().with_path(path.string());
  const Header h = *hr;
  const Plan p = MC_TRY(plan(h));

  arch::ArchConfig c;
  c.family = arch::Family::Llama;
  c.model_type = "llama";
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = h.vocab_size;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_layers = h.n_layers;
  c.num_heads = h.n_heads;
  c.num_kv_heads = h.n_kv_heads;
  c.head_dim = h.head_size();
  c.max_position = h.seq_len;
  c.norm_eps = 1e-5;  // model.py's default; HF Llama's default would be 1e-6
  c.rope_theta = 10000.0;
  c.hidden_act = "silu";
  c.tie_word_embeddings = h.shared_classifier;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.torch_dtype = "float32";

  Model m;
  m.source_format = "llama2c";
  m.source_path = path.string();
  m.config = arch::to_hf_config(c);
  m.config_text = m.config.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
  m.config_modified = true;
  ojson gen = {{"_from_model_config", true}, {"bos_token_id", 1}, {"eos_token_id", 2}};
  m.set_extra({"generation_config.json", {}, gen.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"});

  std::map<std::string, const Piece*> by_name;
  for (const auto& pc : p.pieces) by_name[pc.name] = &pc;
  // Emit in HF state-dict order; the table also cross-checks names and shapes.
  for (const auto& spec : MC_TRY(arch::hf_param_specs(c))) {
    auto it = by_name.find(spec.name);
    if (it == by_name.end() || it->second->shape != spec.shape)
      return make_error(ErrorCode::Internal, "llama2.c plan lacks '{}' {}", spec.name, shape_str(spec.shape));
    const Piece& pc = *it->second;
    const uint64_t n = MC_TRY(shape_numel(pc.shape));
    TensorEntry e{pc.name, DType::F32, pc.shape, nullptr};
    if (pc.q8)
      e.data = q8_data(f, pc.offset, pc.scale_offset, n, uint64_t(h.group_size));
    else
      e.data = std::make_shared<MemoryData>(f, bytes.subspan(pc.offset, 4 * n), true);
    const bool is_q = pc.name.ends_with("self_attn.q_proj.weight");
    const bool is_k = pc.name.ends_with("self_attn.k_proj.weight");
    if (is_q || is_k) {
      auto perm = transforms::permute_qk_tensor(e, is_q ? h.n_heads : h.n_kv_heads,
                                                transforms::QkDirection::PairsToHf);
      if (!perm) return std::move(perm).error().with_path(path.string());
      e = std::move(*perm);
    }
    m.tensors.put(std::move(e));
  }
  if (h.shared_classifier) m.tied.push_back({"lm_head.weight", "model.embed_tokens.weight"});
  if (opt.tokenizer) {
    auto st = attach_tokenizer(m, *opt.tokenizer, h);
    if (!st) return std::move(st).error();
  }
  return m;
}

const formats::Engine& engine() {
  static const formats::Engine e{
      .id = "llama2c",
      .description = "llama2.c checkpoint (legacy, v1 fp32, v2 int8), input only",
      .detect = detect,
      .read = read,
      .takes_family = [](const arch::FamilyInfo& f) { return f.family == arch::Family::Llama; },
  };
  return e;
}

}  // namespace mc::llama2c
