// The ONNX engine's table entry and detection: a .onnx file starting with ModelProto's
// ir_version key (tag byte 0x08), or a directory with .onnx files in it or in onnx/
// (Transformers.js' layout).
#include "formats/onnx/onnx.h"

#include "io/probe.h"

namespace mc::onnx {

namespace {

bool has_onnx(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".onnx") return true;
  return false;
}

}  // namespace

formats::Confidence detect(const fs::path& p) {
  if (io::is_dir(p)) return has_onnx(p) || has_onnx(p / "onnx") ? formats::Confidence::Likely : formats::Confidence::No;
  if (p.extension() != ".onnx") return formats::Confidence::No;
  const auto pr = io::probe_file(p);
  return pr.ok && !pr.head.empty() && pr.head[0] == 0x08 ? formats::Confidence::Certain : formats::Confidence::Likely;
}

const formats::Engine& engine() {
  static const formats::Engine e{
      .id = "onnx",
      .description = "ONNX decoder with KV cache (onnxruntime, Transformers.js): fp32/fp16, external data past 2 GB",
      .detect = &detect,
      .read = &read_model,
      .write = &write_dir,
      .validate = &validate,
      .describe = &describe,
      // --quant-config '{"external_data": true}' forces model.onnx_data (no quantization here).
      .caps = {.quant_config = true},
      .takes_family = [](const arch::FamilyInfo&) { return true; },
  };
  return e;
}

}  // namespace mc::onnx
