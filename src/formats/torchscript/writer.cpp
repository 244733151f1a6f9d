// TorchScript archive writer (formats.md §4.1, §4.4, §4.5). Records, in order:
//   archive/data.pkl              the module tree: per module GLOBAL <qualifier> <Class>, (),
//                                 NEWOBJ, {parameters (requires_grad), buffers, training=False,
//                                 _is_full_backward_hook=None, [config_json], submodules}, BUILD
//   archive/data/<i>              one storage per parameter/buffer (streamed, 64-byte aligned)
//   archive/code/__torch__/modelconvert/<model_type>.py   the classes (emit.h)
//   archive/constants.pkl         an empty tuple (80 02 29 2E): the code has no tensor constants
//   archive/extra/<file>          the model's tokenizer and generation files (torch.jit.load's
//                                 _extra_files)
//   archive/version               what the printed ops require (3 unless an op has an upgrader)
// No byteorder record, as torch 1.13's jit writer. Tensors stream through the torch container's
// writer (io::write_tensors): memory is the pickle, the code and threads x chunk.
#include <fstream>

#include "formats/torch/torch_io.h"
#include "formats/torchscript/emit.h"
#include "formats/torchscript/torchscript.h"
#include "io/mapped_file.h"

namespace mc::torchscript {

namespace {
constexpr uint64_t kMaxExtraFile = uint64_t(64) << 20;

Result<std::string> extra_content(const ExtraFile& f) {
  if (f.content) return *f.content;
  return io::read_text_file(f.source.string(), kMaxExtraFile);
}

bool safe_extra_name(std::string_view n) {
  return !n.empty() && n.find('/') == std::string_view::npos && n.find('\\') == std::string_view::npos &&
         n.front() != '.';
}
}  // namespace

Result<formats::WriteResult> write_model(const Model& m, const std::filesystem::path& out,
                                         const formats::WriteOptions& opt) {
  if (m.config.empty() && m.source_format == "torchscript") return resave_archive(m, out, opt);
  if (m.config.empty()) {
    Error e = make_error(ErrorCode::Unsupported, "a TorchScript export needs the model's architecture (config.json)");
    e.path = m.source_path;
    e.hint = "convert a HuggingFace directory (or another input that carries config.json)";
    return e;
  }
  const graph::Graph g = MC_TRY(graph::build_graph(m));
  MC_CHECK(graph::check_weights(g, m.tensors));
  const Program prog = MC_TRY(emit_program(g, m));

  torch::Tree t;
  std::vector<torch::Value*> objs(prog.modules.size(), nullptr);
  for (size_t id = prog.modules.size(); id-- > 0;) {  // children have larger indices
    const ModuleNode& n = prog.modules[id];
    torch::Value* st = t.dict();
    for (const auto& [attr, e] : n.params) {
      torch::Value* v = t.tensor(*e);
      v->tensor.requires_grad = true;
      st->entries.emplace_back(t.string(attr), v);
    }
    for (const auto& [attr, e] : n.buffers) st->entries.emplace_back(t.string(attr), t.tensor(*e));
    st->entries.emplace_back(t.string("training"), t.boolean(false));
    st->entries.emplace_back(t.string("_is_full_backward_hook"), t.none());
    if (id == 0) {
      const std::string cfg = m.config_modified || m.config_text.empty() ? m.config.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n" : m.config_text;
      st->entries.emplace_back(t.string("config_json"), t.string(cfg));
    }
    for (size_t c : n.children) {
      if (!objs[c]) return make_error(ErrorCode::Internal, "module '{}' built before its child", n.path);
      st->entries.emplace_back(t.string(prog.modules[c].attr), objs[c]);
    }
    torch::Value* o = t.make(torch::Kind::Object);
    o->callable = t.global(prog.qualifier, n.cls);
    o->args = t.tuple();
    o->newobj = true;
    o->state = st;
    objs[id] = o;
  }

  torch::WriteOptions to;
  to.pool = opt.pool;
  to.chunk_bytes = opt.chunk_bytes;
  to.sink = opt.progress;
  to.atomic = false;  // `out` is the converter's temporary path
  to.force = true;
  to.archive_name = "archive";
  to.byteorder = false;
  to.version = std::to_string(prog.version) + "\n";
  to.records.emplace_back(prog.code_path, prog.source);
  to.records.emplace_back("constants.pkl", std::string("\x80\x02).", 4));
  std::vector<std::string> extras;
  for (const auto& f : m.extra_files) {
    if (!safe_extra_name(f.name)) continue;
    to.records.emplace_back("extra/" + f.name, MC_TRY(extra_content(f)));
    extras.push_back(f.name);
  }
  MC_CHECK(torch::write_torch_tree(*objs[0], out, to));

  formats::WriteResult r;
  r.files.push_back(out.filename().string());
  for (const auto& n : prog.modules)
    for (const auto& [a, e] : n.params) r.tensor_bytes += e->nbytes();
  r.info["version"] = prog.version;
  r.info["code"] = prog.code_path;
  r.info["root_class"] = prog.qualifier + "." + prog.modules[0].cls;
  r.info["extra_files"] = extras;
  if (!prog.dropped.empty()) r.info["dropped"] = prog.dropped;  // not read by the forward graph
  return r;
}

}  // namespace mc::torchscript
