// The program of a graph (emit.h): the module tree from the parameter names, which op is which
// leaf module's forward, the decoder layers' and the root's methods (RoPE tables and masks made
// once in the root), and the classes, deduplicated by source. The statements of each op are in
// emit_code.cpp.
#include "formats/torchscript/emit.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <unordered_map>

#include "arch/families.h"
#include "formats/torchscript/emit_code.h"

namespace mc::torchscript {

using namespace detail;

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
