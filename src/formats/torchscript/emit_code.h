// Internals of the TorchScript emitter (emit.cpp, emit_code.cpp): the local-name bookkeeping of
// one method, the module tree under construction, and the statements of each graph op.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/torchscript/emit.h"

namespace mc::torchscript::detail {

using graph::Op;
using graph::OpKind;
using graph::ValueId;

// ---- small printing helpers ---------------------------------------------------------------

inline std::string num(double v) {
  std::string s = fmt::format("{:.17g}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".";  // a float literal, not an int
  return s;
}

inline bool is_number(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

inline bool is_identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

inline std::vector<std::string> split_dots(std::string_view s) {
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
inline bool reserved(std::string_view s) {
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
// The expression of module `target` seen from the method of module `from` (an ancestor).
// List items go through getattr(list, "N"); such expressions are bound to a local first.
std::string module_expr(const std::string& from, const std::string& target, Method& m);
// The expression of parameter `tensor` (a full name) seen from the method of module `from`.
std::string param_expr(const std::string& from, const std::string& tensor, Method& m);

inline std::string module_of(const std::string& tensor) {
  const size_t dot = tensor.rfind('.');
  return dot == std::string::npos ? std::string() : tensor.substr(0, dot);
}
inline std::string attr_of(const std::string& tensor) {
  const size_t dot = tensor.rfind('.');
  return dot == std::string::npos ? tensor : tensor.substr(dot + 1);
}

inline bool under(const std::string& path, const std::string& ancestor) {
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

  // Appends the statements of op `i` to `m` (the method of module `self_path`); `names` maps the
  // graph values defined so far to locals of `m`.
  Status op(size_t i, const std::string& self_path, Method& m, std::unordered_map<ValueId, std::string>& names,
            const Derived& d);
};

// The forward of a leaf module owning op `o` (with "@SELF@" for the class qualifier), and the
// base name of its class.
Result<std::pair<std::string, std::string>> leaf_method(const Op& o, const std::string& prefix);
// "Llama", "Qwen2", "GPT2", ... from the family's HF architecture name.
std::string class_prefix(arch::Family f);
// Class base names of containers, by attribute name (HF's class names where they are known).
std::string container_class(const ModuleNode& n, const std::string& prefix, bool layer);

}  // namespace mc::torchscript::detail
