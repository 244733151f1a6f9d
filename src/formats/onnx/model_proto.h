// ONNX messages as plain structs (formats.md §5.1 field numbers), their encoder into pb::Msg and
// their in-place decoder. Only what LLM decoders use is modelled; unknown fields are skipped on
// read. Tensor payloads are never copied: an initializer being written is a hole streamed from a
// TensorEntry (or small inline bytes), one being read is a span of the mapped file or a
// reference into an external data file.
//   ModelProto   ir_version=1 producer_name=2 producer_version=3 graph=7 opset_import=8
//                metadata_props=14
//   GraphProto   node=1 name=2 initializer=5 doc_string=10 input=11 output=12 value_info=13
//   NodeProto    input=1 output=2 name=3 op_type=4 attribute=5 domain=7
//   Attribute    name=1 f=2 i=3 s=4 t=5 floats=7 ints=8 type=20
//   ValueInfo    name=1 type=2 -> TypeProto tensor_type=1 -> {elem_type=1, shape=2 -> dim=1 ->
//                {dim_value=1 | dim_param=2}}
//   TensorProto  dims=1 data_type=2 float_data=4 int32_data=5 int64_data=7 name=8 raw_data=9
//                double_data=10 external_data=13 ({key=1, value=2}) data_location=14
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "formats/onnx/proto.h"

namespace mc::onnx {

// ONNX TensorProto.DataType ids we map to our dtypes (one table, model_proto.cpp).
std::optional<DType> dtype_from_onnx(int32_t data_type);
std::optional<int32_t> onnx_from_dtype(DType t);
std::string_view onnx_type_name(int32_t data_type);  // "FLOAT", "INT64", ... ("type N")
inline constexpr int32_t kFloat = 1, kInt64 = 7, kBool = 9, kFloat16 = 10;

struct Attr {
  enum Kind : uint8_t { Float = 1, Int = 2, String = 3, Floats = 6, Ints = 7 };
  std::string name;
  Kind kind = Int;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
};

struct Node {
  std::string op_type, name, domain;
  std::vector<std::string> inputs, outputs;
  std::vector<Attr> attrs;
  const Attr* attr(std::string_view n) const;
};

using Dim = std::variant<int64_t, std::string>;  // dim_value | dim_param
struct ValueInfo {
  std::string name;
  int32_t elem_type = kFloat;
  std::vector<Dim> dims;
  bool has_shape = true;
};

// An initializer to write: either a weight streamed from `source` (raw_data inline or external)
// or small bytes held here (always inline: ORT refuses shape/axes tensors stored externally).
struct InitOut {
  std::string name;
  int32_t data_type = kFloat;
  Shape dims;
  const TensorEntry* source = nullptr;
  std::string inline_bytes;
};

struct GraphOut {
  std::string name = "main_graph";
  std::vector<Node> nodes;
  std::vector<InitOut> inits;
  std::vector<ValueInfo> inputs, outputs;
};

struct ModelMeta {
  int64_t ir_version = 8;
  int64_t opset = 17;
  std::string producer_name = "modelconvert", producer_version;
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Where streamed weights go: inline holes (ids = index in inits) or an external data file.
struct ExternalPlan {
  std::string location;                     // file name relative to the .onnx
  std::vector<std::pair<uint64_t, uint64_t>> offset_length;  // per init (weights only)
};
// Encodes the model. Weights (`source` set) become raw_data holes with id = init index, or,
// with `ext`, external_data entries pointing at ext->location.
pb::Msg encode_model(const ModelMeta& meta, const GraphOut& g, const ExternalPlan* ext);

// ---- decoded (read side) ---------------------------------------------------------------------

struct InitIn {
  std::string name;
  int32_t data_type = 0;
  Shape dims;
  // Exactly one of: raw bytes in the file (raw_data), external reference, typed repeated field.
  std::span<const std::byte> raw;
  uint64_t raw_offset = 0;        // file offset of `raw` (for errors)
  bool external = false;
  std::string location;
  std::optional<uint64_t> ext_offset, ext_length;
  uint32_t typed_field = 0;       // float_data / int32_data / int64_data when used instead
  std::span<const std::byte> typed;
  uint64_t offset = 0;            // file offset of the TensorProto
};

struct ModelIn {
  int64_t ir_version = 0;
  std::vector<std::pair<std::string, int64_t>> opsets;  // (domain, version)
  std::string producer_name, producer_version, graph_name;
  std::vector<Node> nodes;
  std::vector<InitIn> inits;
  std::vector<ValueInfo> inputs, outputs;
  std::vector<std::pair<std::string, std::string>> metadata;
  bool has_graph = false;  // a ModelProto without one decodes (inspect names it) but is invalid
  int64_t default_opset() const;  // the "" / "ai.onnx" version, 0 when absent
};

// Decodes a ModelProto held in `bytes` (file offsets are relative to bytes[0]). Errors carry
// the byte offset; the caller adds the path.
Result<ModelIn> decode_model(std::span<const std::byte> bytes);

}  // namespace mc::onnx
