// TorchScript archive reader (archive.h). Safety: every record is bounds-checked by the zip
// reader, deflated records are inflated into a capped buffer, pickles go through the inert
// pickle reader and then an allow-list of the globals torch's own TorchScript pickler writes
// (module classes under __torch__, _rebuild_tensor_v2, OrderedDict, storage classes,
// torch.jit._pickle helpers, torch.device); anything else (os.system, builtins.eval, ...) makes
// the archive Corrupt. The code records are scanned line by line for declarations only.
#include "formats/torchscript/archive.h"

#include <zlib.h>

#include <cstring>
#include <unordered_set>

namespace mc::torchscript {

namespace {

constexpr uint64_t kMaxCodeBytes = uint64_t(64) << 20;    // one code record, inflated
constexpr uint64_t kMaxSmallRecord = uint64_t(1) << 20;   // version, constants.pkl (no tensors)

Error corrupt(const std::string& path, std::string msg, std::string hint = "") {
  Error e = make_error(ErrorCode::Corrupt, "{}", msg);
  e.path = path;
  e.hint = std::move(hint);
  return e;
}

bool allowed_global(const torch::Value& g) {
  const std::string& mod = g.str;
  const std::string& name = g.name;
  if (mod == "__torch__" || mod.starts_with("__torch__.")) return true;
  if (mod == "torch._utils") return name == "_rebuild_tensor_v2" || name == "_rebuild_tensor_v3";
  if (mod == "collections") return name == "OrderedDict";
  if (mod == "torch") return name.ends_with("Storage") || name == "device" || torch::dtype_from_torch_name(name).has_value();
  if (mod == "torch.jit._pickle")
    return name == "restore_type_tag" || name == "build_intlist" || name == "build_doublelist" ||
           name == "build_boollist" || name == "build_tensorlist" || name == "build_tensor_from_id";
  return false;
}

// Every node reachable from `root` must be something TorchScript's pickler writes.
Status check_allowed(const torch::Value& root, const std::string& path, const char* record) {
  std::unordered_set<const torch::Value*> seen;
  std::vector<std::pair<const torch::Value*, uint32_t>> stack{{&root, 0}};
  const torch::Limits lim;
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v || !seen.insert(v).second) continue;
    if (depth > lim.max_depth)
      return corrupt(path, fmt::format("{} nests deeper than {}", record, lim.max_depth));
    if (v->kind == torch::Kind::Global && !allowed_global(*v))
      return corrupt(path,
                     fmt::format("{} references the global '{}.{}', which TorchScript archives never hold", record,
                                 v->str, v->name),
                     "the file was only parsed, never executed; it is not a torch.jit.save archive: do not load it");
    if (v->kind == torch::Kind::PersistentId && !v->b)
      return corrupt(path, fmt::format("{} holds a persistent id that is not a tensor storage", record));
    if (v->kind == torch::Kind::Object && v->callable && v->callable->kind == torch::Kind::Global &&
        v->callable->str.starts_with("__torch__") &&
        (!v->newobj || !v->args || v->args->kind != torch::Kind::Tuple || !v->args->items.empty()))
      return corrupt(path, fmt::format("{}: object of class '{}.{}' is not built the way TorchScript builds objects",
                                       record, v->callable->str, v->callable->name));
    for (const torch::Value* c : v->items) stack.push_back({c, depth + 1});
    for (const auto& [k, x] : v->entries) {
      stack.push_back({k, depth + 1});
      stack.push_back({x, depth + 1});
    }
    for (const torch::Value* c : {v->callable, v->args, v->state, v->pid}) stack.push_back({c, depth + 1});
  }
  return {};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

// ["a", "b", ] -> {a, b}
std::optional<std::vector<std::string>> parse_name_list(std::string_view s) {
  s = trim(s);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return std::nullopt;
  std::vector<std::string> out;
  size_t i = 1;
  while (i + 1 < s.size()) {
    if (s[i] == ' ' || s[i] == ',') {
      ++i;
      continue;
    }
    if (s[i] != '"' && s[i] != '\'') return std::nullopt;
    const char q = s[i];
    std::string item;
    size_t j = i + 1;
    for (; j < s.size() && s[j] != q; ++j) {
      if (s[j] == '\\' && j + 1 < s.size()) ++j;
      item.push_back(s[j]);
    }
    if (j >= s.size()) return std::nullopt;
    out.push_back(std::move(item));
    i = j + 1;
  }
  return out;
}

std::string render(const torch::Value& v) {
  std::string s = torch::to_debug_string(v, 3);
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

struct Walker {
  Archive& a;
  std::vector<Error>* problems;
  std::unordered_set<const torch::Value*> seen;

  Status report(Error e) {
    if (!problems) return e;
    problems->push_back(std::move(e));
    return {};
  }

  Status tensor(const torch::Value& v, const std::string& name, TensorStore& into) {
    a.tensor_nodes.emplace_back(&v, name);
    std::vector<Error> errs;
    auto ts = torch::tensors_from_value(a.data, v, name, problems ? &errs : nullptr);
    if (!ts) return report(std::move(ts).error().with_path(a.path));
    for (auto& e : errs) MC_CHECK(report(std::move(e).with_path(a.path)));
    for (const auto& e : *ts) {
      if (a.parameters.contains(e.name) || a.buffers.contains(e.name))
        MC_CHECK(report(corrupt(a.path, fmt::format("two tensors are named '{}'", e.name))));
      else into.put(e);
    }
    return {};
  }

  Status module(const torch::Value& obj, const std::string& path, uint32_t depth) {
    if (depth > torch::Limits{}.max_depth) return corrupt(a.path, "module tree nests too deep");
    if (!seen.insert(&obj).second)
      return report(corrupt(a.path, fmt::format("module '{}' appears twice in the tree", path)));
    const std::string cls = obj.callable->str + "." + obj.callable->name;
    a.modules.push_back({path, cls});
    auto it = a.classes.find(cls);
    if (it == a.classes.end())
      return report(corrupt(a.path, fmt::format("data.pkl holds an object of class '{}', which no code/ record declares", cls),
                            "the archive is incomplete; torch.jit.load refuses it too"));
    const ClassDecl& decl = it->second;
    if (!obj.state || obj.state->kind != torch::Kind::Dict) {
      a.attributes.emplace_back(path.empty() ? "<state>" : path + ".<state>", obj.state ? render(*obj.state) : "None");
      return {};
    }
    auto join = [&](const std::string& k) { return path.empty() ? k : path + "." + k; };
    std::unordered_set<std::string> present;
    for (const auto& [k, v] : obj.state->entries) {
      if (k->kind != torch::Kind::String) return report(corrupt(a.path, fmt::format("module '{}' has a non-string attribute name", path)));
      const std::string& attr = k->str;
      present.insert(attr);
      auto has = [&](const std::vector<std::string>& xs) { return std::find(xs.begin(), xs.end(), attr) != xs.end(); };
      if (v->kind == torch::Kind::Tensor) {
        MC_CHECK(tensor(*v, join(attr), has(decl.parameters) ? a.parameters : a.buffers));
      } else if (v->kind == torch::Kind::Object && v->callable && v->callable->kind == torch::Kind::Global &&
                 v->callable->str.starts_with("__torch__")) {
        auto sub = a.classes.find(v->callable->str + "." + v->callable->name);
        if (sub != a.classes.end() && sub->second.super == "Module") MC_CHECK(module(*v, join(attr), depth + 1));
        else a.attributes.emplace_back(join(attr), render(*v));
      } else {
        if (path.empty() && attr == "config_json" && v->kind == torch::Kind::String) a.config_json = v->str;
        if (attr != "training" && attr != "_is_full_backward_hook") a.attributes.emplace_back(join(attr), render(*v));
      }
    }
    for (const auto& [name, type] : decl.attributes)
      if (!present.count(name))
        MC_CHECK(report(corrupt(a.path, fmt::format("module '{}' (class {}) declares attribute '{}' but has no value for it",
                                                    path.empty() ? "<root>" : path, cls, name),
                                "torch.jit.load refuses such archives")));
    return {};
  }
};

}  // namespace

Result<std::string> read_record(const torch::ZipReader& z, const torch::ZipEntry& e, uint64_t cap) {
  if (e.size > cap)
    return corrupt(z.file()->path(), fmt::format("record '{}' is {} bytes, over the cap of {}", e.name, e.size, cap));
  std::string out;
  if (e.method == 0) {
    auto d = MC_TRY(z.data(e));
    out.assign(reinterpret_cast<const char*>(d.data()), d.size());
  } else if (e.method == 8) {
    const auto all = z.file()->bytes();
    out.resize(e.size);
    z_stream s{};
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return make_error(ErrorCode::Internal, "zlib inflateInit2 failed");
    s.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(all.data() + e.data_offset));
    s.avail_in = uInt(std::min<uint64_t>(e.compressed_size, UINT32_MAX));
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = uInt(out.size());
    const int rc = inflate(&s, Z_FINISH);
    const uint64_t produced = s.total_out;
    inflateEnd(&s);
    if (rc != Z_STREAM_END || produced != e.size) {
      Error err = corrupt(z.file()->path(), fmt::format("deflated record '{}' does not inflate to its {} bytes", e.name, e.size),
                          "the archive is damaged or truncated");
      err.offset = e.data_offset;
      return err;
    }
  } else {
    return make_error(ErrorCode::Unsupported, "record '{}' uses zip compression method {}", e.name, e.method)
        .with_path(z.file()->path());
  }
  if (torch::crc32_update(0, std::as_bytes(std::span(out))) != e.crc32) {
    Error err = corrupt(z.file()->path(), fmt::format("record '{}': CRC-32 does not match", e.name));
    err.offset = e.data_offset;
    return err;
  }
  return out;
}

Result<std::vector<ClassDecl>> parse_classes(std::string_view src, const std::string& qualifier, const std::string& file) {
  std::vector<ClassDecl> out;
  ClassDecl* cur = nullptr;
  size_t pos = 0, line_no = 0;
  auto bad = [&](std::string_view what) {
    return make_error(ErrorCode::Corrupt, "{} line {}: {}", file, line_no, what);
  };
  while (pos < src.size()) {
    size_t end = src.find('\n', pos);
    if (end == std::string_view::npos) end = src.size();
    std::string_view ln = src.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (ln.starts_with("class ")) {
      const size_t open = ln.find('('), colon = ln.rfind(':');
      std::string_view name = ln.substr(6, (open == std::string_view::npos ? colon : open) - 6);
      name = trim(name);
      if (colon == std::string_view::npos || name.empty()) return bad("malformed class line");
      ClassDecl d;
      d.qualified = qualifier + "." + std::string(name);
      d.file = file;
      if (open != std::string_view::npos) {
        const size_t close = ln.find(')', open);
        if (close == std::string_view::npos) return bad("malformed class line");
        d.super = std::string(trim(ln.substr(open + 1, close - open - 1)));
      }
      out.push_back(std::move(d));
      cur = &out.back();
      continue;
    }
    if (!ln.starts_with("  ") || ln.starts_with("   ")) {  // not a class-level statement
      if (!ln.empty() && ln[0] != ' ') cur = nullptr;       // a top-level def ends the class
      continue;
    }
    if (!cur) continue;
    std::string_view s = ln.substr(2);
    if (s.starts_with("def ")) {
      const size_t open = s.find('(');
      if (open == std::string_view::npos) return bad("malformed def line");
      cur->methods.emplace_back(trim(s.substr(4, open - 4)));
    } else if (s.starts_with("__parameters__ =") || s.starts_with("__buffers__ =")) {
      auto names = parse_name_list(s.substr(s.find('=') + 1));
      if (!names) return bad("malformed __parameters__/__buffers__ list");
      (s.starts_with("__parameters__") ? cur->parameters : cur->buffers) = std::move(*names);
    } else if (s.starts_with("__annotations__[")) {
      const size_t q1 = s.find('"'), q2 = q1 == std::string_view::npos ? q1 : s.find('"', q1 + 1);
      const size_t eq = s.find("] = ");
      if (q2 == std::string_view::npos || eq == std::string_view::npos) return bad("malformed __annotations__ line");
      cur->attributes.emplace_back(std::string(s.substr(q1 + 1, q2 - q1 - 1)), std::string(trim(s.substr(eq + 4))));
    } else if (const size_t c = s.find(" : "); c != std::string_view::npos && s.find('(') > c) {
      const std::string name(trim(s.substr(0, c)));
      std::string_view type = trim(s.substr(c + 3));
      if (type.starts_with("Final[")) cur->constants.push_back(name);
      else cur->attributes.emplace_back(name, std::string(type));
    }
  }
  return out;
}

Result<Archive> open_archive(const fs::path& path, std::vector<Error>* problems) {
  Archive a;
  a.path = path.string();
  a.data.file = MC_TRY(io::MappedFile::open(a.path));
  a.data.tree = std::make_shared<torch::Tree>();
  auto zr = torch::ZipReader::open(a.data.file);
  if (!zr) return std::move(zr).error().with_path(a.path);
  const torch::ZipReader& z = *zr;
  a.name = z.prefix().substr(0, z.prefix().size() - 1);
  a.data.archive_name = a.name;

  const torch::ZipEntry* ver = z.find(".data/version");
  if (!ver) ver = z.find("version");
  if (!ver)
    return corrupt(a.path, "archive has no 'version' record", "torch.jit.load refuses it too; the file is incomplete");
  {
    const std::string s = MC_TRY(read_record(z, *ver, kMaxSmallRecord));
    int v = 0;
    size_t k = 0;
    while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k])) && v < 1000) v = v * 10 + (s[k++] - '0');
    if (k == 0 || (k < s.size() && s[k] != '\n'))
      return corrupt(a.path, fmt::format("version record '{}' is not a number", s.substr(0, 16)));
    if (v < 1 || v > 10)
      return make_error(ErrorCode::Unsupported, "archive format version {} (torch 1.13 reads 1..10)", v).with_path(a.path);
    a.version = v;
  }
  const torch::ZipEntry* consts = z.find("constants.pkl");
  if (!consts)
    return corrupt(a.path, "archive has no constants.pkl: not a TorchScript archive, or an incomplete one",
                   "torch.jit.load refuses it too; a torch.save checkpoint is read with --from pytorch");
  const torch::ZipEntry* pkl = z.find("data.pkl");
  if (!pkl) return corrupt(a.path, "archive has no data.pkl");

  // constants.pkl: a tuple (its tensors live under constants/, which we do not need).
  {
    const std::string bytes = MC_TRY(read_record(z, *consts, uint64_t(64) << 20));
    torch::Tree t;
    auto r = torch::parse_pickle(std::as_bytes(std::span(bytes)), t, {}, consts->data_offset);
    if (!r) return std::move(r).error().with_path(a.path).with_hint("constants.pkl is damaged");
    MC_CHECK(check_allowed(*r->value, a.path, "constants.pkl"));
    if (r->value->kind != torch::Kind::Tuple) return corrupt(a.path, "constants.pkl does not hold a tuple");
    a.constants = r->value->items.size();
  }

  // code/: class declarations.
  for (const auto& e : z.entries()) {
    const std::string rel = e.name.substr(z.prefix().size());
    if (rel.starts_with("extra/") && rel.size() > 6) a.extra_files.push_back(rel.substr(6));
    if (!rel.starts_with("code/") || !rel.ends_with(".py")) continue;
    a.code_files.push_back(rel);
    std::string q = rel.substr(5, rel.size() - 8);
    for (char& c : q)
      if (c == '/') c = '.';
    const std::string src = MC_TRY(read_record(z, e, kMaxCodeBytes));
    auto decls = parse_classes(src, q, rel);
    if (!decls) return std::move(decls).error().with_path(a.path);
    for (auto& d : *decls) {
      const std::string key = d.qualified;
      if (!a.classes.emplace(key, std::move(d)).second)
        return corrupt(a.path, fmt::format("class '{}' is declared twice", key));
    }
  }

  // data.pkl and the storages it references.
  {
    auto bytes = z.data(*pkl);
    if (!bytes) return std::move(bytes).error().with_path(a.path).with_hint("re-save the module with torch.jit.save");
    auto r = torch::parse_pickle(*bytes, *a.data.tree, {}, pkl->data_offset);
    if (!r) return std::move(r).error().with_path(a.path).with_hint("data.pkl is damaged; nothing was executed");
    a.data.tree->root = r->value;
    MC_CHECK(check_allowed(*r->value, a.path, "data.pkl"));
  }
  for (const auto& e : z.entries()) {
    const std::string rel = e.name.substr(z.prefix().size());
    if (!rel.starts_with("data/")) continue;
    auto d = z.data(e);
    if (!d) return std::move(d).error().with_path(a.path);
    a.data.storages[rel.substr(5)] = {*d, e.data_offset};
  }
  const torch::Value* root = a.data.tree->root;
  if (root->kind != torch::Kind::Object || !root->callable || root->callable->kind != torch::Kind::Global ||
      !root->callable->str.starts_with("__torch__"))
    return corrupt(a.path, fmt::format("data.pkl holds {} instead of a module object", torch::kind_name(root->kind)));
  Walker w{a, problems, {}};
  MC_CHECK(w.module(*root, "", 0));
  return a;
}

}  // namespace mc::torchscript
