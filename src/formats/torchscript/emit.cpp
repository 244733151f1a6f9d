// TorchScript source from the op graph (emit.h). Statement forms are the ones torch's own printer
// writes and its importer parses (formats.md §4.3, §4.5): builtins as torch.<aten op>(...),
// attribute chains self.a.b, list items through getattr(list, "N"), `-inf`, dtypes as ScalarType
// numbers (6 = float32, 11 = bool), two-space indentation, methods after the declarations.
#include "formats/torchscript/emit.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>
#include <unordered_map>

#include "arch/families.h"

namespace mc::torchscript {

namespace {

using graph::Op;
using graph::OpKind;
using graph::ValueId;

// ---- small printing helpers ---------------------------------------------------------------

std::string num(double v) {
  std::string s = fmt::format("{:.17g}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".";  // a float literal, not an int
  return s;
}

bool is_number(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::vector<std::string> split_dots(std::string_view s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find('.', b);
    if (e == std::string_view::npos) e = s.size();
    out.emplace_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

// Names a local may not take (keywords of the TorchScript subset and names the code uses).
bool reserved(std::string_view s) {
  static constexpr std::array<std::string_view, 36> kWords = {
      "False", "None", "True", "and", "as", "assert", "break", "class", "continue", "def", "del",
      "elif", "else", "except", "for", "from", "global", "if", "import", "in", "is", "not", "or",
      "pass", "raise", "return", "while", "with", "self", "torch", "annotate", "getattr", "int",
      "float", "inf", "ops"};
  for (auto w : kWords)
    if (s == w) return true;
  return false;
}

// A method under construction: its statements and the local names in use.
class Method {
 public:
  std::string fresh(std::string_view base) {
    std::string s;
    for (char c : base) s.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) s = "v_" + s;
    if (reserved(s)) s += "_";
    std::string name = s;
    for (int k = 1; used_.count(name); ++k) name = fmt::format("{}_{}", s, k);
    used_.insert(name);
    return name;
  }
  // `name = expr` with a fresh name derived from `base`.
  std::string let(std::string_view base, const std::string& expr) {
    std::string n = fresh(base);
    line(n + " = " + expr);
    return n;
  }
  void line(const std::string& s) { body_ += "    " + s + "\n"; }
  const std::string& body() const { return body_; }

 private:
  std::set<std::string> used_;
  std::string body_;
};

// ---- the module tree ------------------------------------------------------------------------

struct Tree {
  std::vector<ModuleNode> nodes;
  std::map<std::string, size_t> by_path;

  size_t node(const std::string& path) {
    if (auto it = by_path.find(path); it != by_path.end()) return it->second;
    size_t parent = 0;
    std::string attr = path;
    if (!path.empty()) {
      const size_t dot = path.rfind('.');
      parent = node(dot == std::string::npos ? std::string() : path.substr(0, dot));
      attr = dot == std::string::npos ? path : path.substr(dot + 1);
    }
    ModuleNode n;
    n.path = path;
    n.attr = attr;
    nodes.push_back(std::move(n));
    const size_t id = nodes.size() - 1;
    by_path[path] = id;
    if (!path.empty()) {
      nodes[parent].children.push_back(id);
      if (is_number(attr)) nodes[parent].is_list = true;
    }
    return id;
  }
};

// The expression of module `target` seen from the method of module `from` (an ancestor).
// List items go through getattr(list, "N"); such expressions are bound to a local first.
std::string module_expr(const std::string& from, const std::string& target, Method& m) {
  std::string rel = target.substr(from.size());
  if (!rel.empty() && rel[0] == '.') rel.erase(0, 1);
  std::string expr = "self";
  if (rel.empty()) return expr;
  bool bound = false;
  for (const auto& c : split_dots(rel)) {
    if (is_number(c)) {
      expr = fmt::format("getattr({}, \"{}\")", expr, c);
      bound = true;
    } else {
      expr += "." + c;
    }
  }
  if (bound) expr = m.let("layer_" + split_dots(rel).back(), expr);
  return expr;
}

std::string param_expr(const std::string& from, const std::string& tensor, Method& m) {
  const size_t dot = tensor.rfind('.');
  const std::string mod = dot == std::string::npos ? std::string() : tensor.substr(0, dot);
  const std::string attr = dot == std::string::npos ? tensor : tensor.substr(dot + 1);
  return module_expr(from, mod, m) + "." + attr;
}

std::string module_of(const std::string& tensor) {
  const size_t dot = tensor.rfind('.');
  return dot == std::string::npos ? std::string() : tensor.substr(0, dot);
}
std::string attr_of(const std::string& tensor) {
  const size_t dot = tensor.rfind('.');
  return dot == std::string::npos ? tensor : tensor.substr(dot + 1);
}

bool under(const std::string& path, const std::string& ancestor) {
  return ancestor.empty() || path == ancestor || path.starts_with(ancestor + ".");
}

// ---- code of one op -----------------------------------------------------------------------

struct Emitter {
  const graph::Graph& g;
  Tree& tree;
  std::string family_prefix;  // "Llama", "GPT2", ...
  std::vector<int> owner;     // per op: the leaf module whose forward it is (-1: inline)
  std::vector<std::string> leaf_forward;  // per module: method source (with @SELF@) or ""
  std::vector<std::string> leaf_class;    // per module: base class name of a leaf

  // Derived inputs every method may receive: RoPE tables and masks.
  std::vector<const graph::RopeSpec*> ropes;  // distinct by inv_freq and attention factor
  std::vector<std::optional<int64_t>> windows;
  bool positions = false;

  int rope_index(const graph::RopeSpec& r) const {
    for (size_t i = 0; i < ropes.size(); ++i)
      if (ropes[i]->inv_freq == r.inv_freq && ropes[i]->attention_factor == r.attention_factor) return int(i);
    return -1;
  }
  int window_index(const std::optional<int64_t>& w) const {
    for (size_t i = 0; i < windows.size(); ++i)
      if (windows[i] == w) return int(i);
    return -1;
  }

  // Names of the derived inputs inside the current method.
  struct Derived {
    std::vector<std::pair<std::string, std::string>> cos_sin;  // per rope
    std::vector<std::string> masks;                            // per window
    std::string positions;
    std::string batch, seq;                                    // B and T
  };

  Status op(size_t i, const std::string& self_path, Method& m, std::unordered_map<ValueId, std::string>& names,
            const Derived& d) {
    const Op& o = g.ops[i];
    auto in = [&](size_t k) -> Result<std::string> {
      auto it = names.find(o.inputs[k]);
      if (it == names.end())
        return make_error(ErrorCode::Internal, "op '{}' reads value '{}' before it is defined", o.name,
                          g.values[size_t(o.inputs[k])].name);
      return it->second;
    };
    const std::string base = split_dots(o.name).back();
    std::string out;
    if (owner[i] >= 0) {  // the forward of a leaf module
      const std::string arg = o.kind == OpKind::PositionEmbedding ? d.positions : MC_TRY(in(0));
      out = m.let(base, module_expr(self_path, tree.nodes[size_t(owner[i])].path, m) + ".forward(" + arg + ")");
      names[o.output] = out;
      return {};
    }
    switch (o.kind) {
      case OpKind::Embedding:
      case OpKind::PositionEmbedding: {
        const std::string ids = o.kind == OpKind::Embedding ? MC_TRY(in(0)) : d.positions;
        out = m.let(base, fmt::format("torch.embedding({}, {})", param_expr(self_path, o.weight, m), ids));
        break;
      }
      case OpKind::MatMul: {
        const std::string x = MC_TRY(in(0)), w = param_expr(self_path, o.weight, m);
        std::string e = o.weight_in_out ? fmt::format("torch.matmul({}, {})", x, w)
                                        : fmt::format("torch.linear({}, {})", x, w);
        if (!o.bias.empty()) e = fmt::format("torch.add({}, {})", e, param_expr(self_path, o.bias, m));
        out = m.let(base, e);
        break;
      }
      case OpKind::RMSNorm:
      case OpKind::LayerNorm:
        return make_error(ErrorCode::Internal, "norm op '{}' has no module of its own", o.name);
      case OpKind::Add: out = m.let(base, fmt::format("torch.add({}, {})", MC_TRY(in(0)), MC_TRY(in(1)))); break;
      case OpKind::Mul: out = m.let(base, fmt::format("torch.mul({}, {})", MC_TRY(in(0)), MC_TRY(in(1)))); break;
      case OpKind::Scale: out = m.let(base, fmt::format("torch.mul({}, {})", MC_TRY(in(0)), num(o.scale))); break;
      case OpKind::Slice:
        out = m.let(base, fmt::format("torch.slice({}, -1, {}, {})", MC_TRY(in(0)), o.begin, o.end));
        break;
      case OpKind::SiLU: out = m.let(base, fmt::format("torch.silu({})", MC_TRY(in(0)))); break;
      case OpKind::SwiGLU:
        out = m.let(base, fmt::format("torch.mul(torch.silu({}), {})", MC_TRY(in(0)), MC_TRY(in(1))));
        break;
      case OpKind::GELUTanh: {  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as HF's gelu_new
        const std::string x = MC_TRY(in(0));
        const std::string inner = m.let(base + "_inner", fmt::format(
            "torch.mul(torch.add({0}, torch.mul(torch.pow({0}, 3), 0.044715)), 0.79788456080286541)", x));
        out = m.let(base, fmt::format("torch.mul(torch.mul({}, 0.5), torch.add(torch.tanh({}), 1.))", x, inner));
        break;
      }
      case OpKind::RoPE: {
        const auto& r = o.rope;
        const int ri = rope_index(r);
        if (ri < 0) return make_error(ErrorCode::Internal, "RoPE op '{}' has no table", o.name);
        const int64_t half = r.head_dim / 2;
        const std::string x = m.let(base + "_x", fmt::format("torch.reshape({}, [{}, {}, {}, {}])", MC_TRY(in(0)),
                                                             d.batch, d.seq, r.n_heads, r.head_dim));
        const std::string rot = m.let(base + "_rot", fmt::format(
            "torch.cat([torch.neg(torch.slice({0}, -1, {1}, {2})), torch.slice({0}, -1, 0, {1})], -1)", x, half,
            r.head_dim));
        const auto& [cos, sin] = d.cos_sin[size_t(ri)];
        const std::string y = m.let(base + "_y", fmt::format(
            "torch.add(torch.mul({0}, torch.type_as({2}, {0})), torch.mul({1}, torch.type_as({3}, {0})))", x, rot,
            cos, sin));
        out = m.let(base, fmt::format("torch.flatten({}, 2)", y));
        break;
      }
      case OpKind::Attention: {
        const auto& a = o.attn;
        const int wi = window_index(a.window);
        if (wi < 0) return make_error(ErrorCode::Internal, "attention op '{}' has no mask", o.name);
        auto heads = [&](const std::string& v, int64_t n, const char* nm) {
          return m.let(base + "_" + nm, fmt::format("torch.transpose(torch.reshape({}, [{}, {}, {}, {}]), 1, 2)", v,
                                                    d.batch, d.seq, n, a.head_dim));
        };
        const std::string q = heads(MC_TRY(in(0)), a.n_heads, "q");
        std::string k = heads(MC_TRY(in(1)), a.n_kv_heads, "k");
        std::string v = heads(MC_TRY(in(2)), a.n_kv_heads, "v");
        if (a.n_heads != a.n_kv_heads) {  // query head h reads kv head h / group
          const int64_t group = a.n_heads / a.n_kv_heads;
          k = m.let(base + "_k", fmt::format("torch.repeat_interleave({}, {}, 1)", k, group));
          v = m.let(base + "_v", fmt::format("torch.repeat_interleave({}, {}, 1)", v, group));
        }
        std::string s = fmt::format("torch.matmul({}, torch.transpose({}, -2, -1))", q, k);
        if (a.scale != 1.0) s = fmt::format("torch.mul({}, {})", s, num(a.scale));
        const std::string scores = m.let(base + "_scores", s);
        const std::string masked =
            m.let(base + "_scores", fmt::format("torch.masked_fill({}, {}, -inf)", scores, d.masks[size_t(wi)]));
        const std::string p =
            m.let(base + "_probs", fmt::format("torch.type_as(torch.softmax({}, -1, 6), {})", masked, v));
        out = m.let(base, fmt::format("torch.flatten(torch.transpose(torch.matmul({}, {}), 1, 2), 2)", p, v));
        break;
      }
    }
    names[o.output] = out;
    return {};
  }
};

// The forward of a leaf module owning op `o` (with "@SELF@" for the class qualifier).
Result<std::pair<std::string, std::string>> leaf_method(const Op& o, const std::string& prefix) {
  const std::string w = "self." + attr_of(o.weight);
  const std::string b = o.bias.empty() ? "" : "self." + attr_of(o.bias);
  std::string cls, body;
  switch (o.kind) {
    case OpKind::Embedding:
    case OpKind::PositionEmbedding:
      cls = "Embedding";
      body = fmt::format("    return torch.embedding({}, input)\n", w);
      break;
    case OpKind::MatMul:
      cls = o.weight_in_out ? "Conv1D" : "Linear";
      if (o.weight_in_out)
        body = b.empty() ? fmt::format("    return torch.matmul(input, {})\n", w)
                         : fmt::format("    return torch.add(torch.matmul(input, {}), {})\n", w, b);
      else
        body = fmt::format("    return torch.linear(input, {}{})\n", w, b.empty() ? "" : ", " + b);
      break;
    case OpKind::RMSNorm:
      if (!o.bias.empty())
        return make_error(ErrorCode::Unsupported, "RMSNorm with a bias ('{}') is not supported", o.bias);
      cls = prefix + "RMSNorm";
      body = fmt::format(
          "    hidden_states = torch.to(input, 6)\n"
          "    variance = torch.mean(torch.pow(hidden_states, 2), [-1], True)\n"
          "    hidden_states0 = torch.mul(hidden_states, torch.rsqrt(torch.add(variance, {})))\n"
          "    return torch.mul({}, torch.type_as(hidden_states0, input))\n",
          num(o.eps), w);
      break;
    case OpKind::LayerNorm:
      cls = "LayerNorm";
      body = fmt::format("    return torch.layer_norm(input, [torch.size(input, -1)], {}, {}, {})\n", w,
                         b.empty() ? "None" : b, num(o.eps));
      break;
    default: return make_error(ErrorCode::Internal, "op '{}' cannot be a module's forward", o.name);
  }
  return std::pair{cls, "  def forward(self: @SELF@,\n    input: Tensor) -> Tensor:\n" + body};
}

std::string class_prefix(arch::Family f) {
  const arch::FamilyInfo* row = arch::find_family(f);
  if (!row) return "";
  std::string a(row->hf_architecture);
  for (std::string_view suffix : {"ForCausalLM", "LMHeadModel"})
    if (a.ends_with(suffix)) return a.substr(0, a.size() - suffix.size());
  return a;
}

// Class base names of containers, by attribute name (HF's class names where they are known).
std::string container_class(const ModuleNode& n, const std::string& prefix, bool layer) {
  if (n.is_list) return "ModuleList";
  if (layer) return prefix + "DecoderLayer";
  static const std::map<std::string, std::string> kNames = {
      {"model", "Model"},         {"transformer", "Model"}, {"self_attn", "Attention"},
      {"attn", "Attention"},      {"mlp", "MLP"},           {"rotary_emb", "RotaryEmbedding"}};
  if (auto it = kNames.find(n.attr); it != kNames.end()) return prefix + it->second;
  std::string s = prefix;
  bool up = true;
  for (char c : n.attr) {
    if (c == '_') {
      up = true;
      continue;
    }
    s.push_back(up ? char(std::toupper(static_cast<unsigned char>(c))) : c);
    up = false;
  }
  return s;
}

}  // namespace

int required_version(std::string_view source) {
  struct Bump {
    std::string_view op;
    int version;
  };
  static constexpr std::array<Bump, 6> kBumps = {
      {{"div", 4}, {"div_", 4}, {"full", 5}, {"linspace", 8}, {"logspace", 9}, {"gelu", 10}}};
  int v = 3;
  for (const auto& b : kBumps) {
    const std::string call = "torch." + std::string(b.op) + "(";
    if (source.find(call) != std::string_view::npos) v = std::max(v, b.version);
  }
  return v;
}

Result<Program> emit_program(const graph::Graph& g, const Model& m) {
  const arch::FamilyInfo* row = arch::find_family(g.family);
  if (!row) return make_error(ErrorCode::Unsupported, "the graph has no known family");
  Program prog;
  prog.qualifier = "__torch__.modelconvert." + std::string(row->model_type);
  prog.code_path = "code/__torch__/modelconvert/" + std::string(row->model_type) + ".py";
  const std::string prefix = class_prefix(g.family);

  Tree tree;
  tree.node("");
  const auto used = g.weight_names();
  for (const auto& name : used) {
    const TensorEntry* e = m.tensors.find(name);
    if (!e) return make_error(ErrorCode::NotFound, "the graph reads tensor '{}', which the model lacks", name).with_tensor(name);
    for (const auto& c : split_dots(name))
      if ((!is_identifier(c) && !is_number(c)) || reserved(c) || c == "training" || c == "config_json")
        return make_error(ErrorCode::Unsupported, "tensor name '{}' has a component that cannot be an attribute", name)
            .with_tensor(name);
    ModuleNode& n = tree.nodes[tree.node(module_of(name))];
    n.params.emplace_back(attr_of(name), e);
  }
  for (const auto& e : m.tensors)
    if (std::find(used.begin(), used.end(), e.name) == used.end()) prog.dropped.push_back(e.name);

  Emitter em{g, tree, prefix, std::vector<int>(g.ops.size(), -1), {}, {}, {}, {}, false};

  // Leaf modules: the first op reading "P.weight" (and, if any, "P.bias") is P's forward.
  std::set<size_t> owned_modules;
  for (size_t i = 0; i < g.ops.size(); ++i) {
    const Op& o = g.ops[i];
    if (o.weight.empty()) continue;
    const std::string mod = module_of(o.weight);
    const bool own = attr_of(o.weight) == "weight" && (o.bias.empty() || o.bias == mod + ".bias");
    const size_t id = tree.node(mod);
    if (own && !owned_modules.count(id) && tree.nodes[id].children.empty() && !mod.empty()) {
      owned_modules.insert(id);
      em.owner[i] = int(id);
    } else if (o.kind == OpKind::RMSNorm || o.kind == OpKind::LayerNorm) {
      return make_error(ErrorCode::Unsupported, "norm op '{}' does not own module '{}'", o.name, mod);
    }
  }
  em.leaf_forward.assign(tree.nodes.size(), "");
  em.leaf_class.assign(tree.nodes.size(), "");
  for (size_t i = 0; i < g.ops.size(); ++i) {
    if (em.owner[i] < 0) continue;
    const size_t id = size_t(em.owner[i]);
    auto [cls, src] = MC_TRY(leaf_method(g.ops[i], prefix));
    em.leaf_class[id] = cls;
    em.leaf_forward[id] = src;
  }
  for (const Op& o : g.ops) {
    if (o.kind == OpKind::RoPE && em.rope_index(o.rope) < 0) em.ropes.push_back(&o.rope);
    if (o.kind == OpKind::Attention && em.window_index(o.attn.window) < 0) em.windows.push_back(o.attn.window);
    if (o.kind == OpKind::PositionEmbedding) em.positions = true;
  }

  // Decoder layers: ops whose name starts with "<list>.<N>." where some weight op of that
  // prefix reads a tensor under a ModuleList item. Each layer's ops must be consecutive.
  std::map<std::string, size_t> layer_of_prefix;  // op-name prefix "layers.3." -> module
  for (size_t i = 0; i < g.ops.size(); ++i) {
    const Op& o = g.ops[i];
    const auto comps = split_dots(o.name);
    size_t k = 0;
    while (k < comps.size() && !is_number(comps[k])) ++k;
    if (k == comps.size() || o.weight.empty()) continue;
    std::string op_prefix;
    for (size_t j = 0; j <= k; ++j) op_prefix += comps[j] + ".";
    // the module: the ModuleList item along the weight's path
    const auto wc = split_dots(module_of(o.weight));
    std::string path;
    for (const auto& c : wc) {
      path += (path.empty() ? "" : ".") + c;
      if (is_number(c)) break;
    }
    if (!is_number(split_dots(path).back()) || split_dots(path).back() != comps[k]) continue;
    layer_of_prefix.emplace(op_prefix, tree.node(path));
  }
  std::vector<int> op_layer(g.ops.size(), -1);
  for (size_t i = 0; i < g.ops.size(); ++i)
    for (const auto& [p, id] : layer_of_prefix)
      if (g.ops[i].name.starts_with(p)) op_layer[i] = int(id);
  for (size_t i = 0; i < g.ops.size(); ++i) {
    if (op_layer[i] < 0 || em.owner[i] < 0) continue;
    if (!under(tree.nodes[size_t(em.owner[i])].path, tree.nodes[size_t(op_layer[i])].path))
      return make_error(ErrorCode::Unsupported, "op '{}' of a layer reads a module outside it", g.ops[i].name);
  }

  // Rotary tables: one buffer module per distinct table, beside the layer list.
  std::string rope_parent;
  if (!layer_of_prefix.empty()) {
    const std::string& p = tree.nodes[layer_of_prefix.begin()->second].path;
    rope_parent = module_of(module_of(p));  // beside the layer list
  }
  std::vector<std::string> rope_paths;
  for (size_t r = 0; r < em.ropes.size(); ++r) {
    std::string attr = r ? fmt::format("rotary_emb_{}", r) : "rotary_emb";
    const std::string path = rope_parent.empty() ? attr : rope_parent + "." + attr;
    if (tree.by_path.count(path)) return make_error(ErrorCode::Unsupported, "module '{}' already exists", path);
    const size_t id = tree.node(path);
    const auto& f = em.ropes[r]->inv_freq;
    auto t = std::make_shared<TensorEntry>(make_tensor_f32(path + ".inv_freq", {int64_t(f.size())}, f));
    tree.nodes[id].buffers.emplace_back("inv_freq", t.get());
    prog.owned.push_back(std::move(t));
    rope_paths.push_back(path);
  }

  // ---- methods ----
  em.leaf_forward.resize(tree.nodes.size());  // (the rotary modules came after the leaves)
  em.leaf_class.resize(tree.nodes.size());
  std::vector<std::string> method = em.leaf_forward;

  // Root prelude: shapes, positions, RoPE tables, masks.
  Method root;
  root.fresh("input_ids");
  Emitter::Derived rd;
  rd.batch = root.let("bsz", "torch.size(input_ids, 0)");
  rd.seq = root.let("seq_len", "torch.size(input_ids, 1)");
  if (em.positions) rd.positions = root.let("position_ids", fmt::format("torch.arange({})", rd.seq));
  if (!em.ropes.empty()) {
    const std::string pos = root.let("positions", fmt::format("torch.arange({}, dtype=6)", rd.seq));
    for (size_t r = 0; r < em.ropes.size(); ++r) {
      const std::string inv = module_expr("", rope_paths[r], root) + ".inv_freq";
      const std::string freqs = root.let("freqs", fmt::format("torch.outer({}, {})", pos, inv));
      const std::string emb = root.let("emb", fmt::format("torch.cat([{0}, {0}], -1)", freqs));
      std::string c = fmt::format("torch.cos({})", emb), s = fmt::format("torch.sin({})", emb);
      if (em.ropes[r]->attention_factor != 1.0f) {
        c = fmt::format("torch.mul({}, {})", c, num(em.ropes[r]->attention_factor));
        s = fmt::format("torch.mul({}, {})", s, num(em.ropes[r]->attention_factor));
      }
      // [T, head_dim] -> [T, 1, head_dim]: broadcast over the heads of [B, T, H, head_dim]
      std::string cos_name = root.let("cos", fmt::format("torch.unsqueeze({}, 1)", c));
      std::string sin_name = root.let("sin", fmt::format("torch.unsqueeze({}, 1)", s));
      rd.cos_sin.emplace_back(std::move(cos_name), std::move(sin_name));
    }
  }
  if (!em.windows.empty()) {
    const std::string ones = root.let("ones", fmt::format("torch.ones([{0}, {0}], dtype=11)", rd.seq));
    for (const auto& w : em.windows) {
      // key j is hidden from query i when j > i, or (window) when i - j >= window
      std::string e = fmt::format("torch.triu({}, 1)", ones);
      if (w) e = fmt::format("torch.logical_or({}, torch.tril({}, {}))", e, ones, -*w);
      rd.masks.push_back(root.let("attention_mask", e));
    }
  }

  std::unordered_map<ValueId, std::string> names{{g.input_ids, "input_ids"}};
  std::vector<bool> done_layer(tree.nodes.size(), false);
  for (size_t i = 0; i < g.ops.size(); ++i) {
    if (op_layer[i] < 0) {
      MC_CHECK(em.op(i, "", root, names, rd));
      continue;
    }
    const size_t lid = size_t(op_layer[i]);
    if (done_layer[lid]) return make_error(ErrorCode::Internal, "ops of layer '{}' are not consecutive", tree.nodes[lid].path);
    done_layer[lid] = true;
    size_t end = i;
    while (end < g.ops.size() && op_layer[end] == int(lid)) ++end;
    // Inputs: values read in [i, end) and defined before; output: the one value read later.
    std::vector<ValueId> inputs;
    std::set<ValueId> defined;
    bool rope = false, attn = false, pos = false;
    std::set<int> rope_ids, win_ids;
    for (size_t k = i; k < end; ++k) {
      const Op& o = g.ops[k];
      for (ValueId v : o.inputs) {
        if (v == g.position_ids) continue;
        if (!defined.count(v) && std::find(inputs.begin(), inputs.end(), v) == inputs.end()) inputs.push_back(v);
      }
      defined.insert(o.output);
      if (o.kind == OpKind::RoPE) rope_ids.insert(em.rope_index(o.rope)), rope = true;
      if (o.kind == OpKind::Attention) win_ids.insert(em.window_index(o.attn.window)), attn = true;
      if (o.kind == OpKind::PositionEmbedding) pos = true;
    }
    std::vector<ValueId> outputs;
    for (size_t k = end; k < g.ops.size(); ++k)
      for (ValueId v : g.ops[k].inputs)
        if (defined.count(v) && std::find(outputs.begin(), outputs.end(), v) == outputs.end()) outputs.push_back(v);
    if (defined.count(g.logits) && std::find(outputs.begin(), outputs.end(), g.logits) == outputs.end())
      outputs.push_back(g.logits);
    if (outputs.size() != 1 || inputs.empty())
      return make_error(ErrorCode::Internal, "layer '{}' has {} inputs and {} outputs (1 output expected)",
                        tree.nodes[lid].path, inputs.size(), outputs.size());

    Method lm;
    Emitter::Derived ld;
    std::unordered_map<ValueId, std::string> lnames;
    std::string sig = "  def forward(self: @SELF@";
    std::vector<std::string> call_args;
    for (size_t k = 0; k < inputs.size(); ++k) {
      const std::string a = lm.fresh(k ? "hidden_states_" + std::to_string(k) : "hidden_states");
      lnames[inputs[k]] = a;
      sig += ",\n    " + a + ": Tensor";
      auto it = names.find(inputs[k]);
      if (it == names.end()) return make_error(ErrorCode::Internal, "layer input '{}' undefined", g.values[size_t(inputs[k])].name);
      call_args.push_back(it->second);
    }
    ld.cos_sin.resize(rd.cos_sin.size());
    ld.masks.resize(rd.masks.size());
    for (int r : rope_ids) {
      ld.cos_sin[size_t(r)] = {lm.fresh("cos"), lm.fresh("sin")};
      sig += ",\n    " + ld.cos_sin[size_t(r)].first + ": Tensor,\n    " + ld.cos_sin[size_t(r)].second + ": Tensor";
      call_args.push_back(rd.cos_sin[size_t(r)].first);
      call_args.push_back(rd.cos_sin[size_t(r)].second);
    }
    for (int w : win_ids) {
      ld.masks[size_t(w)] = lm.fresh("attention_mask");
      sig += ",\n    " + ld.masks[size_t(w)] + ": Tensor";
      call_args.push_back(rd.masks[size_t(w)]);
    }
    if (pos) {
      ld.positions = lm.fresh("position_ids");
      sig += ",\n    " + ld.positions + ": Tensor";
      call_args.push_back(rd.positions);
    }
    sig += ") -> Tensor:\n";
    if (rope || attn) {
      ld.batch = lm.let("bsz", fmt::format("torch.size({}, 0)", lnames[inputs[0]]));
      ld.seq = lm.let("seq_len", fmt::format("torch.size({}, 1)", lnames[inputs[0]]));
    }
    for (size_t k = i; k < end; ++k) MC_CHECK(em.op(k, tree.nodes[lid].path, lm, lnames, ld));
    lm.line("return " + lnames.at(outputs[0]));
    method[lid] = sig + lm.body();

    std::string args;
    for (const auto& a : call_args) args += (args.empty() ? "" : ", ") + a;
    const std::string call = module_expr("", tree.nodes[lid].path, root) + ".forward(" + args + ")";
    names[outputs[0]] = root.let("hidden_states", call);
    i = end - 1;
  }
  auto logits = names.find(g.logits);
  if (logits == names.end()) return make_error(ErrorCode::Internal, "the graph's logits are never computed");
  root.line("return " + logits->second);
  method[0] = "  def forward(self: @SELF@,\n    input_ids: Tensor) -> Tensor:\n" + root.body();

  // ---- classes, bottom-up so that a class's annotations name its children's final classes ----
  std::vector<size_t> order;  // post-order
  std::vector<std::pair<size_t, size_t>> stack{{0, 0}};
  while (!stack.empty()) {
    auto& [id, k] = stack.back();
    if (k < tree.nodes[id].children.size()) {
      const size_t c = tree.nodes[id].children[k++];
      stack.push_back({c, 0});
    } else {
      order.push_back(id);
      stack.pop_back();
    }
  }
  std::map<std::pair<std::string, std::string>, std::string> class_of_body;  // (base, body) -> class
  std::map<std::string, std::string> body_of_class;
  std::vector<std::string> class_order;
  std::set<size_t> layer_ids;
  for (const auto& [p, id] : layer_of_prefix) layer_ids.insert(id);
  for (size_t id : order) {
    ModuleNode& n = tree.nodes[id];
    std::string body;
    auto names_list = [](const auto& xs) {
      std::string s = "[";
      for (const auto& [a, t] : xs) s += "\"" + a + "\", ";
      return s + "]";
    };
    body += "  __parameters__ = " + names_list(n.params) + "\n";
    body += "  __buffers__ = " + names_list(n.buffers) + "\n";
    for (const auto& [a, t] : n.params) body += "  " + a + " : Tensor\n";
    for (const auto& [a, t] : n.buffers) body += "  " + a + " : Tensor\n";
    body += "  training : bool\n  _is_full_backward_hook : Optional[bool]\n";
    if (id == 0) body += "  config_json : str\n";
    for (size_t c : n.children) {
      const ModuleNode& ch = tree.nodes[c];
      if (is_number(ch.attr)) body += fmt::format("  __annotations__[\"{}\"] = {}.{}\n", ch.attr, prog.qualifier, ch.cls);
      else body += fmt::format("  {} : {}.{}\n", ch.attr, prog.qualifier, ch.cls);
    }
    if (n.is_list)
      body += fmt::format("  def __len__(self: @SELF@) -> int:\n    return {}\n", n.children.size());
    body += method[id];
    std::string base = id == 0 ? std::string(row->hf_architecture)
                       : !em.leaf_class[id].empty() ? em.leaf_class[id]
                                                    : container_class(n, prefix, layer_ids.count(id) > 0);
    if (auto it = class_of_body.find({base, body}); it != class_of_body.end()) {
      n.cls = it->second;
      continue;
    }
    std::string cls = base;
    for (int k = 1; body_of_class.count(cls); ++k) cls = fmt::format("{}_{}", base, k);
    n.cls = cls;
    class_of_body.emplace(std::pair{base, body}, cls);
    body_of_class.emplace(cls, body);
    class_order.push_back(cls);
  }
  // Root first, then in the order first met from the top.
  std::string src;
  std::vector<std::string> emitted;
  for (size_t k = class_order.size(); k-- > 0;) {
    const std::string& cls = class_order[k];
    std::string body = body_of_class[cls];
    const std::string self = prog.qualifier + "." + cls;
    for (size_t at; (at = body.find("@SELF@")) != std::string::npos;) body.replace(at, 6, self);
    src += "class " + cls + "(Module):\n" + body;
  }
  prog.source = std::move(src);
  prog.version = required_version(prog.source);
  prog.modules = std::move(tree.nodes);
  return prog;
}

}  // namespace mc::torchscript
