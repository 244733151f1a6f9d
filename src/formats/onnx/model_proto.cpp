// Encoder and decoder of the ONNX messages in model_proto.h (field numbers in its header).
#include "formats/onnx/model_proto.h"

#include <array>
#include <cstring>

namespace mc::onnx {

namespace {

struct TypeRow {
  int32_t onnx;
  std::string_view name;
  std::optional<DType> dtype;
};
// One table for ONNX data_type <-> DType (formats.md §5.1).
constexpr std::array<TypeRow, 17> kTypes{{
    {1, "FLOAT", DType::F32},   {2, "UINT8", DType::U8},    {3, "INT8", DType::I8},
    {4, "UINT16", DType::U16},  {5, "INT16", DType::I16},   {6, "INT32", DType::I32},
    {7, "INT64", DType::I64},   {8, "STRING", std::nullopt}, {9, "BOOL", DType::Bool},
    {10, "FLOAT16", DType::F16}, {11, "DOUBLE", DType::F64}, {12, "UINT32", DType::U32},
    {13, "UINT64", DType::U64}, {16, "BFLOAT16", DType::BF16}, {17, "FLOAT8E4M3FN", DType::F8_E4M3},
    {19, "FLOAT8E5M2", DType::F8_E5M2}, {0, "UNDEFINED", std::nullopt},
}};

Error corrupt(uint64_t offset, std::string msg) {
  return Error{.code = ErrorCode::Corrupt, .offset = offset, .message = std::move(msg)};
}

// ---- encode ----

pb::Msg encode_attr(const Attr& a) {
  pb::Msg m;
  m.bytes(1, a.name);
  switch (a.kind) {
    case Attr::Float: m.f32(2, a.f); break;
    case Attr::Int: m.int64(3, a.i); break;
    case Attr::String: m.bytes(4, a.s); break;
    case Attr::Floats:
      for (float f : a.floats) m.f32(7, f);
      break;
    case Attr::Ints:
      for (int64_t v : a.ints) m.int64(8, v);
      break;
  }
  m.varint(20, a.kind);
  return m;
}

pb::Msg encode_node(const Node& n) {
  pb::Msg m;
  for (const auto& s : n.inputs) m.bytes(1, s);
  for (const auto& s : n.outputs) m.bytes(2, s);
  if (!n.name.empty()) m.bytes(3, n.name);
  m.bytes(4, n.op_type);
  for (const auto& a : n.attrs) m.message(5, encode_attr(a));
  if (!n.domain.empty()) m.bytes(7, n.domain);
  return m;
}

pb::Msg encode_value_info(const ValueInfo& v) {
  pb::Msg shape;
  for (const auto& d : v.dims) {
    pb::Msg dim;
    if (const int64_t* x = std::get_if<int64_t>(&d)) dim.int64(1, *x);
    else dim.bytes(2, std::get<std::string>(d));
    shape.message(1, dim);
  }
  pb::Msg tensor;
  tensor.varint(1, static_cast<uint64_t>(v.elem_type));
  if (v.has_shape) tensor.message(2, shape);
  pb::Msg type;
  type.message(1, tensor);
  pb::Msg m;
  m.bytes(1, v.name);
  m.message(2, type);
  return m;
}

pb::Msg encode_init(const InitOut& t, uint64_t id, const ExternalPlan* ext) {
  pb::Msg m;
  for (int64_t d : t.dims) m.int64(1, d);
  m.varint(2, static_cast<uint64_t>(t.data_type));
  m.bytes(8, t.name);
  if (!t.source) {
    m.bytes(9, t.inline_bytes);
  } else if (!ext) {
    m.hole(9, t.source->nbytes(), id);
  } else {
    const auto [off, len] = ext->offset_length[id];
    const std::pair<std::string_view, std::string> kv[] = {
        {"location", ext->location}, {"offset", std::to_string(off)}, {"length", std::to_string(len)}};
    for (const auto& [k, v] : kv) {
      pb::Msg e;
      e.bytes(1, k);
      e.bytes(2, v);
      m.message(13, e);
    }
    m.varint(14, 1);  // data_location = EXTERNAL
  }
  return m;
}

// ---- decode ----

Result<Attr> decode_attr(const pb::Field& outer) {
  Attr a;
  pb::Reader r(outer.data, outer.data_offset);
  pb::Field f;
  int64_t type = 0;
  while (MC_TRY(r.next(f))) {
    switch (f.number) {
      case 1: a.name = std::string(pb::as_string(f)); break;
      case 2: a.f = pb::as_float(f); break;
      case 3: a.i = pb::as_int64(f); break;
      case 4: a.s = std::string(pb::as_string(f)); break;
      case 7:
        if (f.wire == pb::Wire::Fixed32) {
          a.floats.push_back(pb::as_float(f));
        } else if (f.wire == pb::Wire::Len) {
          if (f.data.size() % 4) return corrupt(f.offset, "packed floats not a multiple of 4 bytes");
          for (size_t i = 0; i < f.data.size(); i += 4) {
            float x;
            std::memcpy(&x, f.data.data() + i, 4);
            a.floats.push_back(x);
          }
        }
        break;
      case 8: MC_CHECK(pb::append_int64s(f, a.ints)); break;
      case 20: type = pb::as_int64(f); break;
      default: break;
    }
  }
  a.kind = static_cast<Attr::Kind>(type);
  return a;
}

Result<Node> decode_node(const pb::Field& outer) {
  Node n;
  pb::Reader r(outer.data, outer.data_offset);
  pb::Field f;
  while (MC_TRY(r.next(f))) {
    if (f.wire != pb::Wire::Len) continue;
    switch (f.number) {
      case 1: n.inputs.emplace_back(pb::as_string(f)); break;
      case 2: n.outputs.emplace_back(pb::as_string(f)); break;
      case 3: n.name = std::string(pb::as_string(f)); break;
      case 4: n.op_type = std::string(pb::as_string(f)); break;
      case 5: n.attrs.push_back(MC_TRY(decode_attr(f))); break;
      case 7: n.domain = std::string(pb::as_string(f)); break;
      default: break;
    }
  }
  return n;
}

Result<ValueInfo> decode_value_info(const pb::Field& outer) {
  ValueInfo v;
  v.has_shape = false;
  pb::Reader r(outer.data, outer.data_offset);
  pb::Field f;
  while (MC_TRY(r.next(f))) {
    if (f.number == 1 && f.wire == pb::Wire::Len) v.name = std::string(pb::as_string(f));
    if (f.number != 2 || f.wire != pb::Wire::Len) continue;
    pb::Reader tr(f.data, f.data_offset);
    pb::Field tf;
    while (MC_TRY(tr.next(tf))) {
      if (tf.number != 1 || tf.wire != pb::Wire::Len) continue;  // tensor_type only
      pb::Reader xr(tf.data, tf.data_offset);
      pb::Field xf;
      while (MC_TRY(xr.next(xf))) {
        if (xf.number == 1 && xf.wire == pb::Wire::Varint) v.elem_type = static_cast<int32_t>(xf.value);
        if (xf.number != 2 || xf.wire != pb::Wire::Len) continue;
        v.has_shape = true;
        pb::Reader sr(xf.data, xf.data_offset);
        pb::Field sf;
        while (MC_TRY(sr.next(sf))) {
          if (sf.number != 1 || sf.wire != pb::Wire::Len) continue;
          pb::Reader dr(sf.data, sf.data_offset);
          pb::Field df;
          Dim d = std::string();
          while (MC_TRY(dr.next(df))) {
            if (df.number == 1 && df.wire == pb::Wire::Varint) d = pb::as_int64(df);
            if (df.number == 2 && df.wire == pb::Wire::Len) d = std::string(pb::as_string(df));
          }
          v.dims.push_back(std::move(d));
        }
      }
    }
  }
  return v;
}

Result<uint64_t> parse_u64(std::string_view s, uint64_t at) {
  if (s.empty() || s.size() > 19) return corrupt(at, fmt::format("external_data value '{}' is not a number", s));
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return corrupt(at, fmt::format("external_data value '{}' is not a number", s));
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

Result<InitIn> decode_init(const pb::Field& outer) {
  InitIn t;
  t.offset = outer.offset;
  pb::Reader r(outer.data, outer.data_offset);
  pb::Field f;
  int64_t location = 0;
  while (MC_TRY(r.next(f))) {
    switch (f.number) {
      case 1: {
        std::vector<int64_t> d;
        MC_CHECK(pb::append_int64s(f, d));
        t.dims.insert(t.dims.end(), d.begin(), d.end());
        break;
      }
      case 2: t.data_type = static_cast<int32_t>(f.value); break;
      case 4:
      case 5:
      case 7:
      case 10:
        if (f.wire == pb::Wire::Len) {
          t.typed_field = f.number;
          t.typed = f.data;
        } else {
          return corrupt(f.offset, "unpacked typed tensor values are not supported");
        }
        break;
      case 8: t.name = std::string(pb::as_string(f)); break;
      case 9:
        t.raw = f.data;
        t.raw_offset = f.data_offset;
        break;
      case 13: {
        pb::Reader er(f.data, f.data_offset);
        pb::Field ef;
        std::string key, value;
        while (MC_TRY(er.next(ef))) {
          if (ef.number == 1) key = std::string(pb::as_string(ef));
          if (ef.number == 2) value = std::string(pb::as_string(ef));
        }
        if (key == "location") t.location = value;
        else if (key == "offset") t.ext_offset = MC_TRY(parse_u64(value, f.offset));
        else if (key == "length") t.ext_length = MC_TRY(parse_u64(value, f.offset));
        break;
      }
      case 14: location = pb::as_int64(f); break;
      default: break;
    }
  }
  t.external = location == 1;
  return t;
}

}  // namespace

std::optional<DType> dtype_from_onnx(int32_t data_type) {
  for (const auto& r : kTypes)
    if (r.onnx == data_type) return r.dtype;
  return std::nullopt;
}

std::optional<int32_t> onnx_from_dtype(DType t) {
  for (const auto& r : kTypes)
    if (r.dtype == t) return r.onnx;
  return std::nullopt;
}

std::string_view onnx_type_name(int32_t data_type) {
  for (const auto& r : kTypes)
    if (r.onnx == data_type) return r.name;
  return "unknown type";
}

const Attr* Node::attr(std::string_view n) const {
  for (const auto& a : attrs)
    if (a.name == n) return &a;
  return nullptr;
}

pb::Msg encode_model(const ModelMeta& meta, const GraphOut& g, const ExternalPlan* ext) {
  pb::Msg graph;
  for (const auto& n : g.nodes) graph.message(1, encode_node(n));
  graph.bytes(2, g.name);
  for (size_t i = 0; i < g.inits.size(); ++i) graph.message(5, encode_init(g.inits[i], i, ext));
  for (const auto& v : g.inputs) graph.message(11, encode_value_info(v));
  for (const auto& v : g.outputs) graph.message(12, encode_value_info(v));

  pb::Msg m;
  m.int64(1, meta.ir_version);
  m.bytes(2, meta.producer_name);
  if (!meta.producer_version.empty()) m.bytes(3, meta.producer_version);
  m.message(7, graph);
  pb::Msg opset;
  opset.bytes(1, "");
  opset.int64(2, meta.opset);
  m.message(8, opset);
  for (const auto& [k, v] : meta.metadata) {
    pb::Msg e;
    e.bytes(1, k);
    e.bytes(2, v);
    m.message(14, e);
  }
  return m;
}

int64_t ModelIn::default_opset() const {
  for (const auto& [d, v] : opsets)
    if (d.empty() || d == "ai.onnx") return v;
  return 0;
}

Result<ModelIn> decode_model(std::span<const std::byte> bytes) {
  ModelIn m;
  pb::Reader r(bytes, 0);
  pb::Field f;
  bool have_graph = false;
  while (MC_TRY(r.next(f))) {
    switch (f.number) {
      case 1: m.ir_version = pb::as_int64(f); break;
      case 2: m.producer_name = std::string(pb::as_string(f)); break;
      case 3: m.producer_version = std::string(pb::as_string(f)); break;
      case 7: {
        if (f.wire != pb::Wire::Len) return corrupt(f.offset, "ModelProto.graph is not a message");
        have_graph = true;
        pb::Reader gr(f.data, f.data_offset);
        pb::Field gf;
        while (MC_TRY(gr.next(gf))) {
          if (gf.wire != pb::Wire::Len) continue;
          switch (gf.number) {
            case 1: m.nodes.push_back(MC_TRY(decode_node(gf))); break;
            case 2: m.graph_name = std::string(pb::as_string(gf)); break;
            case 5: m.inits.push_back(MC_TRY(decode_init(gf))); break;
            case 11: m.inputs.push_back(MC_TRY(decode_value_info(gf))); break;
            case 12: m.outputs.push_back(MC_TRY(decode_value_info(gf))); break;
            default: break;
          }
        }
        break;
      }
      case 8: {
        if (f.wire != pb::Wire::Len) return corrupt(f.offset, "ModelProto.opset_import is not a message");
        pb::Reader orr(f.data, f.data_offset);
        pb::Field of;
        std::string domain;
        int64_t version = 0;
        while (MC_TRY(orr.next(of))) {
          if (of.number == 1) domain = std::string(pb::as_string(of));
          if (of.number == 2) version = pb::as_int64(of);
        }
        m.opsets.emplace_back(domain, version);
        break;
      }
      case 14: {
        pb::Reader er(f.data, f.data_offset);
        pb::Field ef;
        std::string k, v;
        while (MC_TRY(er.next(ef))) {
          if (ef.number == 1) k = std::string(pb::as_string(ef));
          if (ef.number == 2) v = std::string(pb::as_string(ef));
        }
        m.metadata.emplace_back(k, v);
        break;
      }
      default: break;
    }
  }
  m.has_graph = have_graph;
  return m;
}

}  // namespace mc::onnx
