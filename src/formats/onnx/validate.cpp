// Static validation and `inspect` facts of ONNX models. validate checks, per .onnx file (in a
// directory: every file of onnx/ or of the directory):
//   - the ModelProto decodes (every length within its parent), IR version 3..10, a default-domain
//     opset import;
//   - every initializer's payload matches dims x dtype, external data stays inside its file and
//     the model's directory;
//   - nodes are topologically sorted: each input is a graph input, an initializer or an earlier
//     node's output, each name is produced once, and every graph output is produced;
//   - a text-generation model (input_ids present) has logits and matching past/present pairs;
//   - with a config.json beside it, the weights read back (reader.cpp) fit the architecture's
//     graph (graph::check_weights).
#include <algorithm>
#include <map>
#include <set>

#include "formats/onnx/onnx.h"
#include "graph/graph.h"
#include "io/probe.h"

namespace mc::onnx {

namespace {

std::vector<fs::path> model_files(const fs::path& path) {
  std::vector<fs::path> out;
  if (!io::is_dir(path)) return {path};
  for (const fs::path& dir : {path / "onnx", path}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".onnx") out.push_back(e.path());
    if (!out.empty()) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

Error problem(ErrorCode c, const fs::path& p, std::string msg) {
  return Error{.code = c, .path = p.string(), .message = std::move(msg)};
}

void check_graph(const OpenModel& om, formats::ValidationReport& r) {
  const ModelIn& m = om.model;
  if (!m.has_graph) r.errors.push_back(problem(ErrorCode::Corrupt, om.path, "no GraphProto in this ModelProto"));
  if (m.ir_version < 3 || m.ir_version > 10)
    r.errors.push_back(problem(ErrorCode::Unsupported, om.path, fmt::format("IR version {} (supported: 3 to 10)", m.ir_version)));
  if (m.default_opset() <= 0)
    r.errors.push_back(problem(ErrorCode::Corrupt, om.path, "no opset_import for the default ONNX domain"));
  std::set<std::string> defined;
  for (const auto& v : m.inputs) defined.insert(v.name);
  for (const auto& t : m.inits) {
    if (t.name.empty()) r.errors.push_back(problem(ErrorCode::Corrupt, om.path, "an initializer has no name"));
    defined.insert(t.name);
  }
  for (size_t i = 0; i < m.nodes.size() && r.errors.size() < 20; ++i) {
    const Node& n = m.nodes[i];
    for (const auto& in : n.inputs)
      if (!in.empty() && !defined.count(in))
        r.errors.push_back(problem(ErrorCode::Corrupt, om.path,
                                   fmt::format("node {} '{}' ({}) reads '{}', which no graph input, initializer "
                                               "or earlier node defines (not topologically sorted?)",
                                               i, n.name, n.op_type, in)));
    for (const auto& o : n.outputs)
      if (!o.empty() && !defined.insert(o).second)
        r.errors.push_back(problem(ErrorCode::Corrupt, om.path, fmt::format("value '{}' is defined twice (node {} '{}')", o, i, n.name)));
  }
  for (const auto& v : m.outputs)
    if (!defined.count(v.name))
      r.errors.push_back(problem(ErrorCode::Corrupt, om.path, fmt::format("graph output '{}' is never produced", v.name)));
  // The text-generation-with-past contract (formats.md §5.4).
  auto has = [&](const std::vector<ValueInfo>& vs, const std::string& n) {
    return std::any_of(vs.begin(), vs.end(), [&](const ValueInfo& v) { return v.name == n; });
  };
  if (has(m.inputs, "input_ids")) {
    if (!has(m.outputs, "logits"))
      r.errors.push_back(problem(ErrorCode::NotFound, om.path, "a model with input_ids has no 'logits' output"));
    size_t layers = 0;
    while (has(m.inputs, fmt::format("past_key_values.{}.key", layers))) ++layers;
    for (size_t i = 0; i < layers; ++i)
      for (const char* kind : {"key", "value"}) {
        if (!has(m.inputs, fmt::format("past_key_values.{}.{}", i, kind)))
          r.errors.push_back(problem(ErrorCode::NotFound, om.path, fmt::format("input past_key_values.{}.{} is missing", i, kind)));
        if (!has(m.outputs, fmt::format("present.{}.{}", i, kind)))
          r.errors.push_back(problem(ErrorCode::NotFound, om.path, fmt::format("output present.{}.{} is missing", i, kind)));
      }
    r.info["kv_cache_layers"] = layers;
    if (layers == 0) r.warnings.push_back(om.path.filename().string() + ": no past_key_values inputs (no KV cache)");
  }
}

}  // namespace

formats::ValidationReport validate(const fs::path& path) {
  formats::ValidationReport r;
  r.format = "onnx";
  const std::vector<fs::path> files = model_files(path);
  if (files.empty()) {
    r.errors.push_back(problem(ErrorCode::NotFound, path, "no .onnx file here"));
    return r;
  }
  ojson per_file = ojson::array();
  for (const fs::path& f : files) {
    auto om = open_model(f);
    if (!om) {
      r.errors.push_back(om.error());
      continue;
    }
    const size_t before = r.errors.size();
    check_graph(*om, r);
    auto ts = initializer_tensors(*om);
    if (!ts) r.errors.push_back(ts.error());
    per_file.push_back({{"file", f.filename().string()}, {"nodes", om->model.nodes.size()},
                        {"initializers", om->model.inits.size()}, {"opset", om->model.default_opset()},
                        {"ir_version", om->model.ir_version}});
    if (r.errors.size() != before) continue;
    // Weights against the architecture when the directory says which one it is.
    if (io::slurp_small(f.parent_path() / "config.json").empty() &&
        io::slurp_small(f.parent_path().parent_path() / "config.json").empty())
      continue;
    auto m = read_model(f, {});
    if (!m) {
      r.errors.push_back(m.error());
      continue;
    }
    auto g = graph::build_graph(*m);
    if (!g) {
      r.warnings.push_back(fmt::format("{}: no reference graph for this config ({})", f.filename().string(), g.error().message));
      continue;
    }
    if (auto st = graph::check_weights(*g, m->tensors); !st) r.errors.push_back(std::move(st).error().with_path(f.string()));
    else r.info["architecture"] = std::string(arch::family_name(g->family));
  }
  r.info["files"] = per_file;
  return r;
}

Result<ojson> describe(const fs::path& path, const formats::ReadOptions&) {
  const fs::path f = MC_TRY(find_model_file(path));
  const OpenModel om = MC_TRY(open_model(f));
  const ModelIn& m = om.model;
  ojson d = ojson::object();
  d["onnx_file"] = f.string();
  d["ir_version"] = m.ir_version;
  d["has_graph"] = m.has_graph;
  ojson ops = ojson::object();
  for (const auto& [dom, v] : m.opsets) ops[dom.empty() ? "ai.onnx" : dom] = v;
  d["opsets"] = ops;
  d["producer"] = m.producer_name + (m.producer_version.empty() ? "" : " " + m.producer_version);
  d["nodes"] = m.nodes.size();
  std::map<std::string, size_t> hist;
  for (const auto& n : m.nodes) ++hist[n.op_type];
  d["op_types"] = hist;
  auto sig = [](const std::vector<ValueInfo>& vs) {
    ojson a = ojson::array();
    for (const auto& v : vs) {
      std::string dims;
      for (const auto& x : v.dims)
        dims += (dims.empty() ? "" : ", ") + (std::holds_alternative<int64_t>(x) ? std::to_string(std::get<int64_t>(x)) : std::get<std::string>(x));
      a.push_back(fmt::format("{} {} [{}]", v.name, onnx_type_name(v.elem_type), dims));
    }
    return a;
  };
  d["inputs"] = sig(m.inputs);
  d["outputs"] = sig(m.outputs);
  uint64_t inline_bytes = 0, ext_bytes = 0;
  std::set<std::string> ext_files;
  for (const auto& t : m.inits) {
    if (t.external) {
      ext_files.insert(t.location);
      ext_bytes += t.ext_length.value_or(0);
    } else {
      inline_bytes += t.raw.size() + t.typed.size();
    }
  }
  d["initializers"] = m.inits.size();
  d["inline_bytes"] = inline_bytes;
  d["external_bytes"] = ext_bytes;
  d["external_files"] = std::vector<std::string>(ext_files.begin(), ext_files.end());
  return d;
}

}  // namespace mc::onnx
