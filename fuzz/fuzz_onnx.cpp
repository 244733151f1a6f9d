// libFuzzer target: the ONNX reader: a model.onnx (ModelProto: graph, nodes, initializers with
// raw, typed or external data) decoded from a mapped file, then every initializer as a lazy
// tensor with its size and data bounds checked.
#include <cstddef>
#include <cstdint>

#include "formats/onnx/onnx.h"
#include "scratch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto path = mc::fuzz::scratch_dir() / "onnx" / "model.onnx";
  if (!mc::fuzz::write_scratch(path, data, size)) return 0;
  auto om = mc::onnx::open_model(path);
  if (!om) return 0;
  auto tensors = mc::onnx::initializer_tensors(*om);
  if (tensors)
    for (const auto& e : *tensors) (void)e.nbytes();
  return 0;
}
