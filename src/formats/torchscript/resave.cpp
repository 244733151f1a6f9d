// Re-saving a TorchScript archive we did not write (e.g. a torch.jit.trace of an HF model): its
// code cannot be regenerated (there is no config.json to build a graph from), so the archive is
// written again with its own code, constants and extra records copied verbatim, and data.pkl
// re-pickled from the parsed module tree with every module tensor taken from the Model (where
// --dtype may have cast it) and streamed into fresh data/<i> storages. The version record is
// kept. A dtype change is applied to the tensors only: code that names dtypes (traced code often
// does) keeps them, which the report says.
#include <unordered_set>

#include "formats/torch/torch_io.h"
#include "formats/torchscript/archive.h"
#include "formats/torchscript/torchscript.h"

namespace mc::torchscript {

Result<formats::WriteResult> resave_archive(const Model& m, const std::filesystem::path& out,
                                            const formats::WriteOptions& opt) {
  Archive a = MC_TRY(open_archive(m.source_path));
  // The tree belongs to `a` alone; the writer reads each tensor node's `source`.
  std::vector<std::shared_ptr<TensorEntry>> kept;  // tensors outside the Model (kept as they are)
  std::unordered_set<std::string> used;
  bool cast = false;
  for (const auto& [node, name] : a.tensor_nodes) {
    auto* v = const_cast<torch::Value*>(node);
    const TensorEntry* e = m.tensors.find(name);
    if (!e) {
      const TensorEntry* orig = a.parameters.find(name);
      if (!orig) orig = a.buffers.find(name);
      if (!orig) return make_error(ErrorCode::Internal, "tensor '{}' of the archive has no source", name);
      kept.push_back(std::make_shared<TensorEntry>(*orig));
      e = kept.back().get();
    }
    if (e->shape != v->tensor.sizes)
      return make_error(ErrorCode::Mismatch, "tensor '{}' has shape {} in the model but {} in the archive", name,
                        shape_str(e->shape), shape_str(v->tensor.sizes))
          .with_tensor(name);
    if (!v->tensor.source) {
      cast = cast || (v->tensor.dtype && *v->tensor.dtype != e->dtype);
      v->tensor.source = e;
      used.insert(name);
    }
  }
  for (const auto& e : m.tensors)
    if (!used.count(e.name) && std::none_of(a.tensor_nodes.begin(), a.tensor_nodes.end(),
                                            [&](const auto& tn) { return tn.second == e.name; }))
      return make_error(ErrorCode::Unsupported, "tensor '{}' is not in the archive being re-saved", e.name)
          .with_tensor(e.name)
          .with_hint("a TorchScript archive we did not write can only be re-saved with its own tensors");
  // Tensors elsewhere in the tree (inside non-module objects, lists): kept as they are.
  std::vector<torch::Value*> stack{a.data.tree->root};
  std::unordered_set<const torch::Value*> seen;
  while (!stack.empty()) {
    torch::Value* v = stack.back();
    stack.pop_back();
    if (!v || !seen.insert(v).second) continue;
    if (v->kind == torch::Kind::Tensor && !v->tensor.source) {
      auto ts = MC_TRY(torch::tensors_from_value(a.data, *v, "tensor"));
      kept.push_back(std::make_shared<TensorEntry>(ts[0]));
      v->tensor.source = kept.back().get();
    }
    for (torch::Value* c : v->items) stack.push_back(c);
    for (auto& [k, x] : v->entries) stack.push_back(x);
    for (torch::Value* c : {v->callable, v->args, v->state}) stack.push_back(c);
  }

  auto zr = torch::ZipReader::open(a.data.file);
  if (!zr) return std::move(zr).error().with_path(a.path);
  torch::WriteOptions to;
  to.pool = opt.pool;
  to.chunk_bytes = opt.chunk_bytes;
  to.sink = opt.progress;
  to.atomic = false;
  to.force = true;
  to.archive_name = a.name;
  to.byteorder = zr->find("byteorder") != nullptr;
  for (const auto& e : zr->entries()) {
    const std::string rel = e.name.substr(zr->prefix().size());
    if (rel == "data.pkl" || rel.starts_with("data/") || rel == "byteorder" || rel.starts_with(".data/")) continue;
    if (rel == "version") continue;
    to.records.emplace_back(rel, MC_TRY(read_record(*zr, e, uint64_t(1) << 30)));
  }
  to.version = std::to_string(a.version) + "\n";
  MC_CHECK(torch::write_torch_tree(*a.data.tree->root, out, to));

  formats::WriteResult r;
  r.files.push_back(out.filename().string());
  for (const auto& e : m.tensors) r.tensor_bytes += e.nbytes();
  r.info["version"] = a.version;
  r.info["root_class"] = a.modules.empty() ? "" : a.modules[0].cls;
  r.info["resaved"] = "code, constants and extra records copied from the source archive";
  if (cast) r.info["note"] = "tensors were cast; the archive's code is unchanged and may name the old dtype";
  return r;
}

}  // namespace mc::torchscript
