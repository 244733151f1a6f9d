#include "converter/registry.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "io/probe.h"
#include "formats/gguf/gguf.h"
#include "formats/hf/hf.h"
#include "formats/llama2c/llama2c.h"
#include "formats/megatron/megatron.h"
#include "formats/mlx/mlx.h"
#include "formats/mtk/mtk.h"

namespace mc::formats {

namespace {

nlohmann::json config_of(const fs::path& dir) {
  const std::string text = io::slurp_small(dir / "config.json");
  if (text.empty()) return nullptr;
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::string quant_method(const fs::path& dir) {
  const auto cfg = config_of(dir);
  if (cfg.is_object()) {
    auto q = cfg.find("quantization_config");
    if (q != cfg.end() && q->is_object()) {
      auto m = q->find("quant_method");
      if (m != q->end() && m->is_string()) return m->get<std::string>();
    }
  }
  std::error_code ec;
  if (fs::exists(dir / "quantize_config.json", ec)) return "gptq";
  return {};
}

bool has_file_matching(const fs::path& dir, std::string_view prefix, std::string_view suffix) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.size() >= prefix.size() + suffix.size() && n.compare(0, prefix.size(), prefix) == 0 &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  }
  return false;
}

// ---- detectors of formats whose engine is not (yet) readable: they still name the format ----

Confidence detect_onnx(const fs::path& p) {
  if (io::is_dir(p)) {
    return has_file_matching(p, "", ".onnx") ? Confidence::Likely : Confidence::No;
  }
  if (p.extension() != ".onnx") return Confidence::No;
  const auto pr = io::probe_file(p);
  // ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
  return pr.ok && !pr.head.empty() && pr.head[0] == 0x08 ? Confidence::Certain : Confidence::Likely;
}

Confidence detect_torchscript(const fs::path& p) {
  const auto pr = io::probe_file(p);
  if (!pr.ok || !io::is_zip(pr)) return Confidence::No;
  const bool ts = pr.tail.find("/constants.pkl") != std::string::npos ||
                  pr.tail.find("/code/") != std::string::npos ||
                  pr.head.find("/constants.pkl") != std::string::npos;
  return ts ? Confidence::Certain : Confidence::No;
}

Confidence detect_gptq(const fs::path& p) {
  return io::is_dir(p) && quant_method(p) == "gptq" ? Confidence::Certain : Confidence::No;
}

Confidence detect_awq(const fs::path& p) {
  return io::is_dir(p) && quant_method(p) == "awq" ? Confidence::Certain : Confidence::No;
}

const std::array<Engine, 12>& table() {
  static const std::array<Engine, 12> kEngines{{
      hf::hf_engine(),
      hf::safetensors_engine(),
      hf::pytorch_engine(),
      gguf::engine(),
      Engine{"onnx", "ONNX graph with external or embedded weights (onnxruntime, Transformers.js)",
             detect_onnx},
      Engine{"torchscript", "TorchScript archive (torch.jit.load)", detect_torchscript},
      mlx::engine(),
      Engine{"gptq", "GPTQ-quantized HuggingFace directory (transformers, vLLM)", detect_gptq},
      Engine{"awq", "AWQ-quantized HuggingFace directory (AutoAWQ GEMM)", detect_awq},
      megatron::engine(),
      mtk::engine(),
      llama2c::engine(),
  }};
  return kEngines;
}

}  // namespace

std::span<const Engine> engines() { return table(); }

const Engine* find_engine(std::string_view id) {
  if (id == "hf2megatron") id = "megatron";
  if (id == "bin" || id == "pt" || id == "torch") id = "pytorch";
  for (const auto& e : table())
    if (e.id == id) return &e;
  return nullptr;
}

Detection detect(const fs::path& path) {
  Detection best;
  for (const auto& e : table()) {
    if (!e.detect) continue;
    const Confidence c = e.detect(path);
    if (c > best.confidence) {
      best.engine = &e;
      best.confidence = c;
    }
  }
  return best;
}

std::vector<std::string_view> targets_for(const Engine& from) {
  std::vector<std::string_view> out;
  if (!from.read) return out;
  for (const auto& e : table())
    if (e.write) out.push_back(e.id);
  return out;
}

}  // namespace mc::formats
