#include "formats/hf/hf.h"

#include <array>
#include <cstring>

#include "arch/config.h"
#include "io/probe.h"
#include "formats/hf/weights.h"
#include "io/mapped_file.h"
#include "io/output.h"

namespace mc::hf {

namespace {

using formats::Confidence;

constexpr std::array<std::string_view, 12> kCarried{
    "tokenizer.json",        "tokenizer.model",       "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json",   "vocab.json",
    "merges.txt",            "generation_config.json", "chat_template.jinja",
    "chat_template.json",    "preprocessor_config.json", "LICENSE",
};

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool any_with_ext(const fs::path& dir, std::string_view ext, std::string_view prefix = "") {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    if (e.path().extension() == ext && name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

bool has_st(const fs::path& dir) { return any_with_ext(dir, ".safetensors"); }
bool has_bin(const fs::path& dir) { return any_with_ext(dir, ".bin", "pytorch_model"); }

Confidence detect_hf(const fs::path& p) {
  std::error_code ec;
  if (!is_dir(p) || !fs::exists(p / "config.json", ec)) return Confidence::No;
  return has_st(p) || has_bin(p) ? Confidence::Likely : Confidence::Maybe;
}

Confidence detect_st(const fs::path& p) {
  if (is_dir(p)) {
    std::error_code ec;
    // A directory of safetensors without config.json is "just weights".
    return !fs::exists(p / "config.json", ec) && has_st(p) ? Confidence::Likely : Confidence::No;
  }
  const auto pr = io::probe_file(p);
  if (!pr.ok) return Confidence::No;
  uint64_t n = 0;
  if (pr.head.size() >= 9) std::memcpy(&n, pr.head.data(), 8);
  if (pr.head.size() >= 9 && pr.head[8] == '{' && n + 8 <= pr.size) return Confidence::Certain;
  // A short or broken file named .safetensors is read as one, so the reader says what is wrong.
  return p.extension() == ".safetensors" ? Confidence::Maybe : Confidence::No;
}

Confidence detect_pt(const fs::path& p) {
  if (is_dir(p)) {
    std::error_code ec;
    return !fs::exists(p / "config.json", ec) && has_bin(p) ? Confidence::Likely : Confidence::No;
  }
  const auto pr = io::probe_file(p);
  if (!pr.ok) return Confidence::No;
  if (io::is_zip(pr)) {
    const bool pkl = pr.head.find("/data.pkl") != std::string::npos ||
                     pr.tail.find("/data.pkl") != std::string::npos;
    const bool script = pr.tail.find("/constants.pkl") != std::string::npos;
    if (pkl && !script) return Confidence::Certain;
    // A broken archive named like a checkpoint is read as one, so the reader says what is wrong.
    const auto ext = p.extension();
    return !script && (ext == ".bin" || ext == ".pt" || ext == ".pth") ? Confidence::Maybe : Confidence::No;
  }
  // Legacy torch.save: a pickled magic number 0x1950a86a20f9469cfc6c first.
  static constexpr unsigned char kLegacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20};
  if (pr.head.size() >= sizeof(kLegacy) && std::memcmp(pr.head.data(), kLegacy, sizeof(kLegacy)) == 0)
    return Confidence::Certain;
  return Confidence::No;
}

Result<Model> read_any(const fs::path& p, const formats::ReadOptions& o) { return read_dir(p, o); }

Result<formats::WriteResult> write_hf(const Model& m, const fs::path& out, const formats::WriteOptions& o) {
  return write_dir(m, out, o);
}

Result<formats::WriteResult> write_st(const Model& m, const fs::path& out, const formats::WriteOptions& o) {
  formats::WriteOptions opt = o;
  opt.weights_format = "safetensors";
  return write_dir(m, out, opt);
}

Result<formats::WriteResult> write_pt(const Model& m, const fs::path& out, const formats::WriteOptions& o) {
  formats::WriteOptions opt = o;
  opt.weights_format = "bin";
  return write_dir(m, out, opt);
}

}  // namespace

constexpr std::string_view kStExts[] = {".safetensors"};
constexpr std::string_view kPtExts[] = {".bin", ".pt", ".pth"};

const formats::Engine& hf_engine() {
  static const formats::Engine e{
      .id = "hf",
      .description = "HuggingFace directory: config, tokenizer, safetensors or pytorch_model.bin weights",
      .detect = detect_hf,
      .read = read_any,
      .write = write_hf,
      .validate = validate_dir,
      .caps = {.shard_size = true, .weights_format = true},
  };
  return e;
}

const formats::Engine& safetensors_engine() {
  static const formats::Engine e{
      .id = "safetensors",
      .description = "safetensors weights: a file, or a sharded set with model.safetensors.index.json",
      .detect = detect_st,
      .read = read_any,
      .write = write_st,
      .validate = validate_dir,
      .caps = {.shard_size = true, .single_file_exts = kStExts},
  };
  return e;
}

const formats::Engine& pytorch_engine() {
  static const formats::Engine e{
      .id = "pytorch",
      .description = "PyTorch torch.save state dict (.bin/.pt, sharded with pytorch_model.bin.index.json)",
      .detect = detect_pt,
      .read = read_any,
      .write = write_pt,
      .validate = validate_dir,
      .caps = {.shard_size = true, .single_file_exts = kPtExts},
  };
  return e;
}

std::span<const std::string_view> carried_files() { return kCarried; }

Result<Model> read_dir(const fs::path& path, const formats::ReadOptions&) {
  Model m;
  m.source_path = path.string();
  const fs::path dir = is_dir(path) ? path : path.parent_path();
  std::error_code ec;
  if (is_dir(path) && fs::exists(dir / "config.json", ec)) {
    const fs::path cfg = dir / "config.json";
    m.config_text = MC_TRY(io::read_text_file(cfg.string(), 64u << 20));
    m.config = ojson::parse(m.config_text, nullptr, false);
    if (m.config.is_discarded() || !m.config.is_object()) {
      return make_error(ErrorCode::Corrupt, "config.json is not a JSON object")
          .with_path(cfg.string())
          .with_hint("fix or re-download config.json");
    }
  }
  auto w = MC_TRY(load_weights(path));
  m.source_format = is_dir(path) && !m.config_text.empty() ? "hf" : w.format == "bin" ? "pytorch" : "safetensors";
  m.tensors = std::move(w.tensors);
  m.weight_files = std::move(w.files);
  if (is_dir(path)) {
    for (auto name : kCarried) {
      const fs::path f = dir / name;
      if (fs::is_regular_file(f, ec)) m.extra_files.push_back({std::string(name), f, std::nullopt});
    }
  }
  return m;
}

Result<formats::WriteResult> write_dir(const Model& m, const fs::path& out,
                                       const formats::WriteOptions& opt) {
  formats::WriteResult res;
  const std::string wf = opt.weights_format.empty() ? "safetensors" : opt.weights_format;
  if (wf != "safetensors" && wf != "bin") {
    return make_error(ErrorCode::InvalidArgument, "unknown weights format '{}'", wf)
        .with_hint("use --weights-format safetensors or bin");
  }
  for (const auto& t : m.tensors)
    if (is_quantized(t.dtype)) {
      return make_error(ErrorCode::Unsupported,
                        "{} tensors cannot be stored in an HF directory; dequantize first",
                        dtype_name(t.dtype))
          .with_tensor(t.name);
    }
  res.files = MC_TRY(write_weights(m.tensors, out, wf, opt));
  res.tensor_bytes = m.tensors.total_bytes();
  if (opt.single_file) return res;
  if (!m.config.empty()) {
    std::string text = m.config_modified || m.config_text.empty() ? m.config.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n" : m.config_text;
    MC_CHECK(io::write_small_file(out / "config.json", text));
    res.files.push_back("config.json");
  }
  for (const auto& f : m.extra_files) {
    if (f.content)
      MC_CHECK(io::write_small_file(out / f.name, *f.content));
    else
      MC_CHECK(io::copy_file(f.source, out / f.name));
    res.files.push_back(f.name);
  }
  return res;
}

formats::ValidationReport validate_dir(const fs::path& path) {
  formats::ValidationReport r;
  r.format = "hf";
  std::error_code ec;
  if (is_dir(path) && fs::exists(path / "config.json", ec)) {
    auto text = io::read_text_file((path / "config.json").string(), 64u << 20);
    if (!text) {
      r.errors.push_back(text.error());
    } else {
      auto cfg = ojson::parse(*text, nullptr, false);
      if (cfg.is_discarded() || !cfg.is_object()) {
        r.errors.push_back(make_error(ErrorCode::Corrupt, "config.json is not a JSON object")
                               .with_path((path / "config.json").string()));
      } else if (auto ac = arch::from_hf_config(cfg); !ac) {
        r.errors.push_back(std::move(ac).error().with_path((path / "config.json").string()));
      } else {
        r.info["architecture"] = std::string(arch::family_name(ac->family));
      }
    }
  } else if (is_dir(path)) {
    r.format = "safetensors";
  }
  validate_weights(path, r);
  if (!r.errors.empty()) return r;
  // Cross-check the weights against the config for the architectures we know.
  formats::ReadOptions ro;
  auto m = read_dir(path, ro);
  if (!m) {
    r.errors.push_back(m.error());
    return r;
  }
  if (m->config.empty()) return r;
  auto ac = arch::from_hf_config(m->config);
  if (!ac || ac->family == arch::Family::Unknown) return r;
  const char* embed = ac->info()->decoder == arch::Decoder::LlamaLike ? "model.embed_tokens.weight" : nullptr;
  if (embed) {
    if (const auto* e = m->tensors.find(embed)) {
      if (e->shape.size() != 2 || e->shape[0] != ac->vocab_size || e->shape[1] != ac->hidden_size) {
        r.errors.push_back(make_error(ErrorCode::Mismatch,
                                      "shape {} does not match config vocab_size {} x hidden_size {}",
                                      shape_str(e->shape), ac->vocab_size, ac->hidden_size)
                               .with_path(path.string())
                               .with_tensor(embed));
      }
    } else {
      r.errors.push_back(make_error(ErrorCode::NotFound, "the embedding is missing")
                             .with_path(path.string())
                             .with_tensor(embed));
    }
    const std::string last = fmt::format("model.layers.{}.input_layernorm.weight", ac->num_layers - 1);
    if (!m->tensors.contains(last)) {
      r.errors.push_back(make_error(ErrorCode::NotFound,
                                    "config says {} layers but the last layer's norm is missing",
                                    ac->num_layers)
                             .with_path(path.string())
                             .with_tensor(last));
    }
    if (!ac->tie_word_embeddings && !m->tensors.contains("lm_head.weight")) {
      r.errors.push_back(
          make_error(ErrorCode::NotFound, "tie_word_embeddings is false but lm_head.weight is missing")
              .with_path(path.string())
              .with_tensor("lm_head.weight"));
    }
  }
  r.info["tensors"] = m->tensors.size();
  r.info["parameters"] = m->tensors.total_params();
  return r;
}

}  // namespace mc::hf
