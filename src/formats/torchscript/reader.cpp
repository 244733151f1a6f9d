// TorchScript -> Model, `inspect` details and `validate` (archive.h does the parsing).
// Our archives (a root `config_json` attribute holding config.json) give the HF model back: the
// parameters are already named by HF names (the module tree mirrors them), the buffers (RoPE
// tables) are derived data and dropped, extra/ records become the tokenizer files. Any other
// archive gives its parameters and buffers as a state dict would name them, and no config.
#include <algorithm>
#include <unordered_set>

#include "formats/torchscript/archive.h"
#include "formats/torchscript/torchscript.h"
#include "graph/graph.h"

namespace mc::torchscript {

namespace {

Result<ojson> parse_config(const Archive& a) {
  ojson cfg = ojson::parse(*a.config_json, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object()) {
    Error e = make_error(ErrorCode::Corrupt, "the root module's config_json attribute is not a JSON object");
    e.path = a.path;
    return e;
  }
  return cfg;
}

Status attach_extras(const Archive& a, Model& m) {
  if (a.extra_files.empty()) return {};
  auto z = torch::ZipReader::open(a.data.file);
  if (!z) return std::move(z).error().with_path(a.path);
  for (const auto& name : a.extra_files) {
    if (name.find('/') != std::string::npos || name.front() == '.') continue;
    const torch::ZipEntry* e = z->find("extra/" + name);
    if (!e) continue;
    m.extra_files.push_back({name, {}, MC_TRY(read_record(*z, *e, uint64_t(64) << 20))});
  }
  return {};
}

// A stored record's CRC-32, computed 8 MiB at a time with the pages dropped behind (the mapping
// of a freshly written archive must not make the resident set grow with the model).
Status verify_stored_crc(const torch::ZipReader& z, const torch::ZipEntry& e, const std::string& path) {
  const auto bytes = MC_TRY(z.data(e));
  const MemoryData view(z.file(), bytes, /*mmapped=*/true);
  constexpr uint64_t kChunk = uint64_t(8) << 20;
  uint32_t crc = 0;
  for (uint64_t off = 0; off < bytes.size(); off += kChunk) {
    const uint64_t n = std::min<uint64_t>(kChunk, bytes.size() - off);
    crc = torch::crc32_update(crc, bytes.subspan(off, n));
    view.release(off, n);
  }
  if (crc != e.crc32) {
    Error err = make_error(ErrorCode::Corrupt, "record '{}': CRC-32 {:08x} does not match the recorded {:08x}", e.name,
                           crc, e.crc32);
    err.path = path;
    err.offset = e.data_offset;
    return err;
  }
  return {};
}

ojson tensor_list(const TensorStore& ts) {
  ojson out = ojson::array();
  for (const auto& e : ts) out.push_back({{"name", e.name}, {"dtype", std::string(dtype_name(e.dtype))}, {"shape", e.shape}});
  return out;
}

}  // namespace

Result<Model> read_model(const std::filesystem::path& path, const formats::ReadOptions&) {
  Archive a = MC_TRY(open_archive(path));
  Model m;
  m.source_format = "torchscript";
  m.source_path = path.string();
  m.weight_files.push_back(path.filename().string());
  if (a.config_json) {
    m.config = MC_TRY(parse_config(a));
    m.config_text = *a.config_json;
    m.tensors = std::move(a.parameters);
    MC_CHECK(attach_extras(a, m));
  } else {
    m.tensors = std::move(a.parameters);
    for (const auto& e : a.buffers) m.tensors.put(e);
  }
  // Tensors sharing one storage and extent (tied weights) are recorded as such.
  for (size_t i = 0; i < m.tensors.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      const auto vi = m.tensors[i].data->view(), vj = m.tensors[j].data->view();
      if (vi && vj && vi->data() == vj->data() && vi->size() == vj->size() && m.tensors[i].dtype == m.tensors[j].dtype) {
        m.tied.emplace_back(m.tensors[i].name, m.tensors[j].name);
        break;
      }
    }
  return m;
}

Result<ojson> describe_archive(const std::filesystem::path& path, const formats::ReadOptions&) {
  Archive a = MC_TRY(open_archive(path));
  ojson j = ojson::object();
  j["archive"] = a.name;
  j["version"] = a.version;
  j["written_by_modelconvert"] = a.config_json.has_value();
  j["root_class"] = a.modules.empty() ? "" : a.modules[0].cls;
  ojson classes = ojson::array();
  for (const auto& [name, c] : a.classes) {
    ojson cj = {{"name", name}, {"super", c.super}, {"file", c.file}};
    cj["parameters"] = c.parameters;
    cj["buffers"] = c.buffers;
    cj["methods"] = c.methods;
    classes.push_back(std::move(cj));
  }
  j["classes"] = std::move(classes);
  ojson mods = ojson::array();
  for (const auto& m : a.modules) mods.push_back({{"path", m.path.empty() ? "<root>" : m.path}, {"class", m.cls}});
  j["modules"] = std::move(mods);
  j["parameters"] = tensor_list(a.parameters);
  j["buffers"] = tensor_list(a.buffers);
  ojson attrs = ojson::object();
  for (const auto& [k, v] : a.attributes)
    if (k != "config_json") attrs[k] = v;
  j["attributes"] = std::move(attrs);
  j["code_files"] = a.code_files;
  j["constants"] = a.constants;
  j["extra_files"] = a.extra_files;
  return j;
}

formats::ValidationReport validate_archive(const std::filesystem::path& path) {
  formats::ValidationReport r;
  r.format = "torchscript";
  std::vector<Error> problems;
  auto a = open_archive(path, &problems);
  if (!a) {
    r.errors.push_back(std::move(a).error());
    return r;
  }
  r.errors = std::move(problems);
  // The CRC of every record but the storages (torch checks none; zip tools do). The storages are
  // left out as the other engines' validate does (a second pass over the whole model after every
  // conversion; our writer computes their CRCs from the bytes it writes).
  if (auto z = torch::ZipReader::open(a->data.file)) {
    for (const auto& e : z->entries()) {
      if (std::string_view(e.name).substr(z->prefix().size()).starts_with("data/")) continue;
      if (e.method == 0) {
        if (auto st = verify_stored_crc(*z, e, a->path); !st) r.errors.push_back(std::move(st).error());
      } else if (auto rec = read_record(*z, e, uint64_t(1) << 30); !rec) {
        r.errors.push_back(std::move(rec).error());
      }
    }
  }
  r.info["version"] = a->version;
  r.info["modules"] = a->modules.size();
  r.info["parameters"] = a->parameters.size();
  r.info["buffers"] = a->buffers.size();
  r.info["written_by_modelconvert"] = a->config_json.has_value();
  if (!a->config_json) {
    r.warnings.push_back("not written by modelconvert: parameters keep their module paths, no config.json");
    return r;
  }
  auto cfg = parse_config(*a);
  if (!cfg) {
    r.errors.push_back(std::move(cfg).error());
    return r;
  }
  Model m;
  m.config = std::move(*cfg);
  m.tensors = a->parameters;
  auto g = graph::build_graph(m);
  if (!g) {
    r.errors.push_back(std::move(g).error().with_path(a->path));
    return r;
  }
  if (auto st = graph::check_weights(*g, m.tensors); !st) r.errors.push_back(std::move(st).error().with_path(a->path));
  r.info["family"] = std::string(arch::family_name(g->family));
  return r;
}

}  // namespace mc::torchscript
