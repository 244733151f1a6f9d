// The pickle data tree: node arena, torch dtype/storage tables (formats.md §3.3) and walkers that
// judge a tree (weights_only check, debug rendering). Walkers bound recursion by Limits::max_depth
// and skip nodes already seen, so shared or cyclic graphs from hostile files stay cheap.
#include <array>
#include <unordered_set>

#include "formats/torch/pickle.h"

namespace mc::torch {

std::string_view kind_name(Kind k) {
  static constexpr std::array<std::string_view, 15> kNames = {
      "None", "bool", "int", "bigint", "float", "str", "bytes", "list", "tuple", "dict", "set",
      "global", "object", "persistent_id", "tensor"};
  return kNames[size_t(k)];
}

const Value* Value::get(std::string_view key) const {
  if (kind != Kind::Dict) return nullptr;
  for (const auto& [k, v] : entries)
    if (k->is_str(key)) return v;
  return nullptr;
}

Value* Tree::make(Kind k) {
  nodes_.emplace_back();
  nodes_.back().kind = k;
  return &nodes_.back();
}
Value* Tree::boolean(bool v) {
  Value* x = make(Kind::Bool);
  x->b = v;
  return x;
}
Value* Tree::integer(int64_t v) {
  Value* x = make(Kind::Int);
  x->i = v;
  return x;
}
Value* Tree::real(double v) {
  Value* x = make(Kind::Float);
  x->f = v;
  return x;
}
Value* Tree::string(std::string s) {
  Value* x = make(Kind::String);
  x->str = std::move(s);
  return x;
}
Value* Tree::bytes(std::string s) {
  Value* x = make(Kind::Bytes);
  x->str = std::move(s);
  return x;
}
Value* Tree::list(std::vector<Value*> items) {
  Value* x = make(Kind::List);
  x->items = std::move(items);
  return x;
}
Value* Tree::tuple(std::vector<Value*> items) {
  Value* x = make(Kind::Tuple);
  x->items = std::move(items);
  return x;
}
Value* Tree::dict(bool ordered) {
  Value* x = make(Kind::Dict);
  x->ordered = ordered;
  return x;
}
Value* Tree::global(std::string module, std::string name) {
  Value* x = make(Kind::Global);
  x->str = std::move(module);
  x->name = std::move(name);
  return x;
}
Value* Tree::tensor(const TensorEntry& e) {
  Value* x = make(Kind::Tensor);
  x->tensor.source = &e;
  x->tensor.dtype = e.dtype;
  x->tensor.sizes = e.shape;
  return x;
}
Value* Tree::namespace_object(Value* fields) {
  Value* x = make(Kind::Object);
  x->callable = global("argparse", "Namespace");
  x->args = tuple();
  x->newobj = true;
  x->state = fields;
  return x;
}

namespace {
struct StorageName {
  std::string_view name;
  DType dtype;
};
// One table for both directions; the first row of a dtype is the one written.
constexpr std::array<StorageName, 12> kStorages = {{
    {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16}, {"BFloat16Storage", DType::BF16},
    {"DoubleStorage", DType::F64}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
    {"ShortStorage", DType::I16}, {"CharStorage", DType::I8}, {"ByteStorage", DType::U8},
    {"BoolStorage", DType::Bool}, {"UntypedStorage", DType::U8}, {"_UntypedStorage", DType::U8},
}};
constexpr std::array<StorageName, 20> kTorchDTypes = {{
    {"float32", DType::F32}, {"float", DType::F32}, {"float16", DType::F16}, {"half", DType::F16},
    {"bfloat16", DType::BF16}, {"float64", DType::F64}, {"double", DType::F64},
    {"int64", DType::I64}, {"long", DType::I64}, {"int32", DType::I32}, {"int", DType::I32},
    {"int16", DType::I16}, {"short", DType::I16}, {"int8", DType::I8}, {"uint8", DType::U8},
    {"bool", DType::Bool}, {"float8_e4m3fn", DType::F8_E4M3}, {"float8_e5m2", DType::F8_E5M2},
    {"uint16", DType::U16}, {"uint32", DType::U32},
}};
}  // namespace

std::optional<DType> dtype_from_storage_class(std::string_view name) {
  for (const auto& s : kStorages)
    if (s.name == name) return s.dtype;
  return std::nullopt;
}
std::optional<std::string_view> storage_class_for(DType t) {
  for (const auto& s : kStorages)
    if (s.dtype == t) return s.name;
  return std::nullopt;
}
std::optional<DType> dtype_from_torch_name(std::string_view name) {
  for (const auto& s : kTorchDTypes)
    if (s.name == name) return s.dtype;
  return std::nullopt;
}

namespace {
bool global_allowed(std::string_view mod, std::string_view name) {
  if (mod == "collections") return name == "OrderedDict" || name == "Counter";
  if (mod == "torch._utils") return name.starts_with("_rebuild_");
  if (mod == "torch")
    return name.ends_with("Storage") || name == "Size" || name == "Tensor" || name == "device" ||
           dtype_from_torch_name(name).has_value() || name.starts_with("complex") ||
           name.starts_with("q") || name.starts_with("float8");
  if (mod == "torch.nn.parameter") return name == "Parameter";
  if (mod == "torch._tensor") return name == "_rebuild_from_type_v2";
  if (mod == "torch.serialization") return name == "_get_layout";
  if (mod == "_codecs") return name == "encode";
  if (mod == "builtins") return name == "set" || name == "bytearray";
  return false;
}

struct Walker {
  const Limits& lim;
  std::unordered_set<const Value*> seen;
  std::vector<std::string> bad;

  Status walk(const Value* v, uint32_t depth) {
    if (!v || !seen.insert(v).second) return {};
    if (depth > lim.max_depth)
      return make_error(ErrorCode::LimitExceeded, "pickle data nests deeper than {}", lim.max_depth);
    if (v->kind == Kind::Global && !global_allowed(v->str, v->name)) {
      bad.push_back(v->str + "." + v->name);
    }
    if (v->kind == Kind::PersistentId && !v->b) bad.push_back("persistent id that is not a torch storage");
    for (const Value* c : v->items) MC_CHECK(walk(c, depth + 1));
    for (const auto& [k, x] : v->entries) {
      MC_CHECK(walk(k, depth + 1));
      MC_CHECK(walk(x, depth + 1));
    }
    MC_CHECK(walk(v->callable, depth + 1));
    MC_CHECK(walk(v->args, depth + 1));
    MC_CHECK(walk(v->state, depth + 1));
    MC_CHECK(walk(v->pid, depth + 1));
    return {};
  }
};
}  // namespace

Result<std::vector<std::string>> find_unsafe_globals(const Value& root, const Limits& limits) {
  Walker w{limits, {}, {}};
  MC_CHECK(w.walk(&root, 0));
  return std::move(w.bad);
}

Status check_weights_only(const Value& root, const Limits& limits) {
  auto bad = MC_TRY(find_unsafe_globals(root, limits));
  if (bad.empty()) return {};
  std::string list;
  for (size_t k = 0; k < bad.size() && k < 8; ++k) list += (k ? ", " : "") + bad[k];
  return make_error(ErrorCode::Unsupported,
                    "pickle references {} global(s) that torch.load(weights_only=True) refuses: {}",
                    bad.size(), list)
      .with_hint("the file was only parsed, never executed; inspect where it comes from");
}

namespace {
void render(const Value& v, uint32_t depth, uint32_t max_depth, std::string& out) {
  if (depth > max_depth || out.size() > 4096) {
    out += "...";
    return;
  }
  auto seq = [&](const std::vector<Value*>& items, const char* open, const char* close) {
    out += open;
    for (size_t k = 0; k < items.size(); ++k) {
      if (k == 16) {
        out += fmt::format(", ...{} more", items.size() - k);
        break;
      }
      if (k) out += ", ";
      render(*items[k], depth + 1, max_depth, out);
    }
    out += close;
  };
  switch (v.kind) {
    case Kind::None: out += "None"; break;
    case Kind::Bool: out += v.b ? "True" : "False"; break;
    case Kind::Int: out += std::to_string(v.i); break;
    case Kind::BigInt: out += fmt::format("<int of {} bytes>", v.str.size()); break;
    case Kind::Float: out += fmt::format("{}", v.f); break;
    case Kind::String: out += "'" + v.str.substr(0, 200) + "'"; break;
    case Kind::Bytes: out += fmt::format("<bytes of {}>", v.str.size()); break;
    case Kind::List: seq(v.items, "[", "]"); break;
    case Kind::Tuple: seq(v.items, "(", ")"); break;
    case Kind::Set: seq(v.items, "{", "}"); break;
    case Kind::Dict:
      out += "{";
      for (size_t k = 0; k < v.entries.size(); ++k) {
        if (k == 16) {
          out += fmt::format(", ...{} more", v.entries.size() - k);
          break;
        }
        if (k) out += ", ";
        render(*v.entries[k].first, depth + 1, max_depth, out);
        out += ": ";
        render(*v.entries[k].second, depth + 1, max_depth, out);
      }
      out += "}";
      break;
    case Kind::Global: out += v.str + "." + v.name; break;
    case Kind::Object:
      if (v.callable) render(*v.callable, depth + 1, max_depth, out);
      if (v.args) render(*v.args, depth + 1, max_depth, out);
      if (v.state) {
        out += ".state=";
        render(*v.state, depth + 1, max_depth, out);
      }
      break;
    case Kind::PersistentId: out += v.b ? "storage(" + v.tensor.storage.key + ")" : "pid"; break;
    case Kind::Tensor:
      out += fmt::format("tensor({}, {})", v.tensor.dtype ? dtype_name(*v.tensor.dtype) : v.tensor.dtype_name,
                         shape_str(v.tensor.sizes));
      break;
  }
}
}  // namespace

std::string to_debug_string(const Value& v, uint32_t max_depth) {
  std::string out;
  render(v, 0, max_depth, out);
  return out;
}

}  // namespace mc::torch
