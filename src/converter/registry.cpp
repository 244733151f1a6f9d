#include "converter/registry.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "io/probe.h"
#include "formats/gguf/gguf.h"
#include "formats/gptq_awq/gptq_awq.h"
#include "formats/hf/hf.h"
#include "formats/llama2c/llama2c.h"
#include "formats/megatron/megatron.h"
#include "formats/mlx/mlx.h"
#include "formats/mtk/mtk.h"
#include "formats/onnx/onnx.h"
#include "formats/torchscript/torchscript.h"

namespace mc::formats {

namespace {

const std::array<Engine, 12>& table() {
  static const std::array<Engine, 12> kEngines{{
      hf::hf_engine(),
      hf::safetensors_engine(),
      hf::pytorch_engine(),
      gguf::engine(),
      onnx::engine(),
      torchscript::engine(),
      mlx::engine(),
      gptq_awq::gptq_engine(),
      gptq_awq::awq_engine(),
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
