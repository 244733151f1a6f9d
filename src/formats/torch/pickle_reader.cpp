// Pickle reader (formats.md §3.2 opcode table, protocols 0-5 minus out-of-band buffers and the
// extension registry). A pickle is a program for a stack machine: opcodes push values, build
// containers from the values above the last MARK, and store/fetch values in a memo. We run that
// machine over inert nodes: GLOBAL only records a name, REDUCE/NEWOBJ only record a call.
#include <charconv>
#include <cstring>
#include <unordered_map>

#include "formats/torch/pickle.h"

namespace mc::torch {

namespace {

class Parser {
 public:
  Parser(std::span<const std::byte> b, Tree& t, const Limits& l, uint64_t base)
      : buf_(b), tree_(t), lim_(l), base_(base) {}

  Result<ParseResult> run();

 private:
  template <typename... Args>
  Error err(ErrorCode c, fmt::format_string<Args...> f, Args&&... a) const {
    Error e = make_error(c, f, std::forward<Args>(a)...);
    e.offset = base_ + op_pos_;
    return e;
  }
  Error truncated() const {
    return err(ErrorCode::Truncated, "pickle ends inside opcode 0x{:02x} (needs more than the {} bytes left)",
               op_, buf_.size() - pos_);
  }

  Result<std::span<const std::byte>> take(uint64_t n) {
    if (n > buf_.size() - pos_) return truncated();
    auto s = buf_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  template <typename T>
  Result<T> le() {
    auto s = MC_TRY(take(sizeof(T)));
    T v;
    std::memcpy(&v, s.data(), sizeof(T));
    return v;
  }
  Result<std::string> line() {
    constexpr size_t kMaxLine = 4096;
    for (size_t i = pos_; i < buf_.size() && i - pos_ <= kMaxLine; ++i) {
      if (buf_[i] == std::byte('\n')) {
        std::string s(reinterpret_cast<const char*>(buf_.data() + pos_), i - pos_);
        pos_ = i + 1;
        return s;
      }
    }
    if (buf_.size() - pos_ > kMaxLine)
      return err(ErrorCode::Corrupt, "text argument of opcode '{}' longer than {} bytes", char(op_), kMaxLine);
    return truncated();
  }
  Result<std::string> payload(uint64_t n) {
    if (n > lim_.max_string_bytes)
      return err(ErrorCode::LimitExceeded, "string/bytes of {} bytes exceeds the cap of {}", n,
                 lim_.max_string_bytes);
    auto s = MC_TRY(take(n));
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }

  Result<Value*> make(Kind k) {
    if (tree_.size() >= lim_.max_items)
      return err(ErrorCode::LimitExceeded, "pickle creates more than {} values", lim_.max_items);
    return tree_.make(k);
  }
  Status push(Value* v) {
    if (stack_.size() >= lim_.max_stack)
      return err(ErrorCode::LimitExceeded, "pickle stack grows past {} values", lim_.max_stack);
    stack_.push_back(v);
    return {};
  }
  size_t mark_base() const { return marks_.empty() ? 0 : marks_.back(); }
  Result<Value*> pop() {
    if (stack_.size() <= mark_base())
      return err(ErrorCode::Corrupt, "opcode 0x{:02x} pops from an empty stack", op_);
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Result<Value*> top() {
    if (stack_.size() <= mark_base())
      return err(ErrorCode::Corrupt, "opcode 0x{:02x} needs a value on an empty stack", op_);
    return stack_.back();
  }
  Result<std::vector<Value*>> pop_mark() {
    if (marks_.empty()) return err(ErrorCode::Corrupt, "opcode 0x{:02x} without a MARK", op_);
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> out(stack_.begin() + ptrdiff_t(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  Status grow(Value* parent, const Value* child) {
    if (child->depth + 1 > parent->depth) parent->depth = child->depth + 1;
    if (parent->depth > lim_.max_depth)
      return err(ErrorCode::LimitExceeded, "nesting depth {} exceeds the cap of {}", parent->depth,
                 lim_.max_depth);
    return {};
  }
  Result<Value*> container(Kind k, std::vector<Value*> items) {
    Value* v = MC_TRY(make(k));
    for (Value* c : items) MC_CHECK(grow(v, c));
    v->items = std::move(items);
    return v;
  }
  Status memo_put(uint64_t idx) {
    if (idx > lim_.max_memo_index)
      return err(ErrorCode::LimitExceeded, "memo index {} exceeds the cap of {}", idx, lim_.max_memo_index);
    if (memo_.size() >= lim_.max_memo_entries && !memo_.count(idx))
      return err(ErrorCode::LimitExceeded, "memo grows past {} entries", lim_.max_memo_entries);
    memo_[idx] = MC_TRY(top());
    return {};
  }
  Status memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) return err(ErrorCode::Corrupt, "memo index {} was never stored", idx);
    return push(it->second);
  }
  Result<int64_t> parse_int(const std::string& s) {
    std::string_view t = s;
    if (!t.empty() && t.back() == 'L') t.remove_suffix(1);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size())
      return err(ErrorCode::Corrupt, "bad integer text '{}'", s.substr(0, 40));
    return v;
  }
  Status push_long(std::span<const std::byte> b) {
    if (b.size() <= 8) {
      uint64_t u = 0;
      for (size_t k = 0; k < b.size(); ++k) u |= uint64_t(uint8_t(b[k])) << (8 * k);
      if (!b.empty() && b.size() < 8 && (uint8_t(b.back()) & 0x80)) u |= ~uint64_t(0) << (8 * b.size());
      Value* v = MC_TRY(make(Kind::Int));
      v->i = int64_t(u);
      return push(v);
    }
    Value* v = MC_TRY(make(Kind::BigInt));
    v->str.assign(reinterpret_cast<const char*>(b.data()), b.size());
    return push(v);
  }
  Status push_string(Kind k, uint64_t n) {
    Value* v = MC_TRY(make(k));
    v->str = MC_TRY(payload(n));
    return push(v);
  }
  Result<Value*> global(std::string mod, std::string name) {
    Value* v = MC_TRY(make(Kind::Global));
    v->str = std::move(mod);
    v->name = std::move(name);
    return v;
  }

  Status op_setitems(std::vector<Value*> kv);
  Status op_build();
  Status op_persid(Value* pid);
  Result<Value*> reduce(Value* callable, Value* args, bool newobj);
  Result<Value*> rebuild_tensor(const Value& fn, const Value& args);

  std::span<const std::byte> buf_;
  Tree& tree_;
  const Limits& lim_;
  uint64_t base_;
  size_t pos_ = 0, op_pos_ = 0;
  uint8_t op_ = 0;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
};

Status Parser::op_setitems(std::vector<Value*> kv) {
  if (kv.size() % 2) return err(ErrorCode::Corrupt, "SETITEMS with an odd number ({}) of values", kv.size());
  Value* d = MC_TRY(top());
  if (d->kind != Kind::Dict && d->kind != Kind::Object)
    return err(ErrorCode::Corrupt, "SETITEM(S) on a {}", kind_name(d->kind));
  for (size_t k = 0; k < kv.size(); k += 2) {
    MC_CHECK(grow(d, kv[k + 1]));
    if (d->entries.size() >= lim_.max_items)
      return err(ErrorCode::LimitExceeded, "dict grows past {} items", lim_.max_items);
    d->entries.emplace_back(kv[k], kv[k + 1]);
  }
  return {};
}

Status Parser::op_build() {
  Value* state = MC_TRY(pop());
  Value* obj = MC_TRY(top());
  MC_CHECK(grow(obj, state));
  obj->state = state;
  return {};
}

Status Parser::op_persid(Value* pid) {
  Value* v = MC_TRY(make(Kind::PersistentId));
  v->pid = pid;
  // ('storage', torch.<X>Storage, key, location, numel) (+ view_metadata in legacy files).
  const auto& it = pid->items;
  if (pid->kind == Kind::Tuple && (it.size() == 5 || it.size() == 6) && it[0]->is_str("storage")) {
    if (it[1]->kind != Kind::Global || it[1]->str != "torch" || it[3]->kind != Kind::String ||
        it[4]->kind != Kind::Int || it[4]->i < 0 ||
        (it[2]->kind != Kind::String && it[2]->kind != Kind::Int))
      return err(ErrorCode::Corrupt, "malformed storage persistent id");
    if (it.size() == 6 && it[5]->kind != Kind::None)
      return err(ErrorCode::Unsupported, "legacy storage views (view_metadata) are not supported")
          .with_hint("re-save the checkpoint with a recent torch.save");
    StorageRef& s = v->tensor.storage;
    s.key = it[2]->kind == Kind::String ? it[2]->str : std::to_string(it[2]->i);
    s.type_name = it[1]->name;
    s.dtype = dtype_from_storage_class(it[1]->name);
    s.location = it[3]->str;
    s.numel = uint64_t(it[4]->i);
    v->b = true;
  }
  return push(v);
}

Result<Value*> Parser::rebuild_tensor(const Value& fn, const Value& a) {
  const auto& it = a.items;
  const bool v3 = fn.name == "_rebuild_tensor_v3";
  const size_t need = fn.name == "_rebuild_tensor" ? 4 : v3 ? 7 : 6;
  if (a.kind != Kind::Tuple || it.size() < need || it[0]->kind != Kind::PersistentId || !it[0]->b)
    return err(ErrorCode::Corrupt, "{} called with unexpected arguments", fn.name);
  Value* t = MC_TRY(make(Kind::Tensor));
  TensorRef& r = t->tensor;
  r.storage = it[0]->tensor.storage;
  r.dtype = r.storage.dtype;
  r.dtype_name = r.storage.type_name;
  if (v3) {
    if (it[6]->kind != Kind::Global || it[6]->str != "torch")
      return err(ErrorCode::Corrupt, "_rebuild_tensor_v3: dtype argument is not a torch dtype");
    r.dtype = dtype_from_torch_name(it[6]->name);
    r.dtype_name = it[6]->name;
  }
  if (it[1]->kind != Kind::Int || it[1]->i < 0)
    return err(ErrorCode::Corrupt, "{}: storage offset is not a non-negative int", fn.name);
  r.storage_offset = uint64_t(it[1]->i);
  auto ints = [&](const Value* v, std::vector<int64_t>& out, const char* what) -> Status {
    if (v->kind != Kind::Tuple) return err(ErrorCode::Corrupt, "{}: {} is not a tuple", fn.name, what);
    if (v->items.size() > lim_.max_rank)
      return err(ErrorCode::LimitExceeded, "{}: {} dimensions exceed the cap of {}", fn.name,
                 v->items.size(), lim_.max_rank);
    for (const Value* x : v->items) {
      if (x->kind != Kind::Int || x->i < 0)
        return err(ErrorCode::Corrupt, "{}: {} holds a non-int or negative value", fn.name, what);
      out.push_back(x->i);
    }
    return {};
  };
  MC_CHECK(ints(it[2], r.sizes, "size"));
  MC_CHECK(ints(it[3], r.strides, "stride"));
  if (r.sizes.size() != r.strides.size())
    return err(ErrorCode::Corrupt, "{}: size has {} dims but stride has {}", fn.name, r.sizes.size(),
               r.strides.size());
  if (it.size() > 4 && it[4]->kind == Kind::Bool) r.requires_grad = it[4]->b;
  return t;
}

Result<Value*> Parser::reduce(Value* fn, Value* args, bool newobj) {
  if (fn->kind == Kind::Global && args->kind == Kind::Tuple) {
    const auto& a = args->items;
    if (fn->str == "torch._utils") {
      if (fn->name == "_rebuild_tensor_v2" || fn->name == "_rebuild_tensor" ||
          fn->name == "_rebuild_tensor_v3")
        return rebuild_tensor(*fn, *args);
      if ((fn->name == "_rebuild_parameter" || fn->name == "_rebuild_parameter_with_state") &&
          !a.empty() && a[0]->kind == Kind::Tensor)
        return a[0];
    }
    if (fn->is_global("collections", "OrderedDict") && !newobj) {
      Value* d = MC_TRY(make(Kind::Dict));
      d->ordered = true;
      if (!a.empty()) {  // OrderedDict([(k, v), ...])
        if (a.size() != 1 || a[0]->kind != Kind::List)
          return err(ErrorCode::Corrupt, "OrderedDict called with unexpected arguments");
        for (Value* p : a[0]->items) {
          if ((p->kind != Kind::Tuple && p->kind != Kind::List) || p->items.size() != 2)
            return err(ErrorCode::Corrupt, "OrderedDict item is not a pair");
          MC_CHECK(grow(d, p->items[1]));
          d->entries.emplace_back(p->items[0], p->items[1]);
        }
      }
      return d;
    }
    if (fn->is_global("torch", "Size") && a.size() == 1 && a[0]->kind == Kind::Tuple) return a[0];
    if (fn->is_global("_codecs", "encode") && a.size() == 2 && a[0]->kind == Kind::String &&
        (a[1]->is_str("latin1") || a[1]->is_str("latin-1"))) {
      // bytes pickled by protocol 2: the str holds code points 0..255, encoded as UTF-8.
      std::string out;
      const std::string& s = a[0]->str;
      bool ok = true;
      for (size_t k = 0; k < s.size() && ok; ++k) {
        const auto c = uint8_t(s[k]);
        if (c < 0x80) out.push_back(char(c));
        else if ((c == 0xC2 || c == 0xC3) && k + 1 < s.size()) out.push_back(char(((c & 3) << 6) | (uint8_t(s[++k]) & 0x3F)));
        else ok = false;
      }
      if (ok) {
        Value* b = MC_TRY(make(Kind::Bytes));
        b->str = std::move(out);
        return b;
      }
    }
  }
  Value* o = MC_TRY(make(Kind::Object));
  o->callable = fn;
  o->args = args;
  o->newobj = newobj;
  MC_CHECK(grow(o, args));
  return o;
}

Result<ParseResult> Parser::run() {
  while (true) {
    if (pos_ >= buf_.size()) {
      op_pos_ = pos_;
      return err(ErrorCode::Truncated, "pickle ends after {} bytes without a STOP opcode", pos_);
    }
    op_pos_ = pos_;
    op_ = uint8_t(buf_[pos_++]);
    switch (op_) {
      case 0x80: {  // PROTO
        const auto p = MC_TRY(le<uint8_t>());
        if (p > 5) return err(ErrorCode::Unsupported, "pickle protocol {} (only 0-5 exist)", p);
        break;
      }
      case 0x95: (void)MC_TRY(le<uint64_t>()); break;  // FRAME: a read-ahead hint
      case '.': {  // STOP
        Value* v = MC_TRY(pop());
        return ParseResult{v, pos_};
      }
      case '(':
        if (marks_.size() >= lim_.max_depth)
          return err(ErrorCode::LimitExceeded, "MARK nesting exceeds the cap of {}", lim_.max_depth);
        marks_.push_back(stack_.size());
        break;
      case '0': (void)MC_TRY(pop()); break;
      case '1': (void)MC_TRY(pop_mark()); break;
      case '2': MC_CHECK(push(MC_TRY(top()))); break;
      case 'N': MC_CHECK(push(MC_TRY(make(Kind::None)))); break;
      case 0x88: case 0x89: {
        Value* v = MC_TRY(make(Kind::Bool));
        v->b = op_ == 0x88;
        MC_CHECK(push(v));
        break;
      }
      case 'K': case 'M': case 'J': {
        Value* v = MC_TRY(make(Kind::Int));
        v->i = op_ == 'K' ? MC_TRY(le<uint8_t>()) : op_ == 'M' ? MC_TRY(le<uint16_t>()) : MC_TRY(le<int32_t>());
        MC_CHECK(push(v));
        break;
      }
      case 'I': case 'L': {
        const std::string s = MC_TRY(line());
        if (op_ == 'I' && (s == "01" || s == "00")) {
          Value* v = MC_TRY(make(Kind::Bool));
          v->b = s == "01";
          MC_CHECK(push(v));
          break;
        }
        Value* v = MC_TRY(make(Kind::Int));
        v->i = MC_TRY(parse_int(s));
        MC_CHECK(push(v));
        break;
      }
      case 0x8a: case 0x8b: {  // LONG1, LONG4
        const uint64_t n = op_ == 0x8a ? MC_TRY(le<uint8_t>()) : MC_TRY(le<uint32_t>());
        if (n > lim_.max_long_bytes)
          return err(ErrorCode::LimitExceeded, "integer of {} bytes exceeds the cap of {}", n, lim_.max_long_bytes);
        MC_CHECK(push_long(MC_TRY(take(n))));
        break;
      }
      case 'G': {
        auto s = MC_TRY(take(8));
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | uint8_t(s[size_t(k)]);
        Value* v = MC_TRY(make(Kind::Float));
        std::memcpy(&v->f, &u, 8);
        MC_CHECK(push(v));
        break;
      }
      case 'F': {
        const std::string s = MC_TRY(line());
        Value* v = MC_TRY(make(Kind::Float));
        char* end = nullptr;
        v->f = std::strtod(s.c_str(), &end);
        if (end == s.c_str()) return err(ErrorCode::Corrupt, "bad float text '{}'", s.substr(0, 40));
        MC_CHECK(push(v));
        break;
      }
      case 'X': MC_CHECK(push_string(Kind::String, MC_TRY(le<uint32_t>()))); break;
      case 0x8c: MC_CHECK(push_string(Kind::String, MC_TRY(le<uint8_t>()))); break;
      case 0x8d: MC_CHECK(push_string(Kind::String, MC_TRY(le<uint64_t>()))); break;
      case 'U': MC_CHECK(push_string(Kind::String, MC_TRY(le<uint8_t>()))); break;
      case 'T': {
        const int32_t n = MC_TRY(le<int32_t>());
        if (n < 0) return err(ErrorCode::Corrupt, "BINSTRING with negative length {}", n);
        MC_CHECK(push_string(Kind::String, uint64_t(n)));
        break;
      }
      case 'B': MC_CHECK(push_string(Kind::Bytes, MC_TRY(le<uint32_t>()))); break;
      case 'C': MC_CHECK(push_string(Kind::Bytes, MC_TRY(le<uint8_t>()))); break;
      case 0x8e: case 0x96: MC_CHECK(push_string(Kind::Bytes, MC_TRY(le<uint64_t>()))); break;
      case 'S': case 'V': {  // protocol-0 text strings: accepted when free of escapes
        std::string s = MC_TRY(line());
        if (op_ == 'S') {
          if (s.size() < 2 || (s[0] != '\'' && s[0] != '"') || s.back() != s[0])
            return err(ErrorCode::Corrupt, "STRING argument is not quoted");
          s = s.substr(1, s.size() - 2);
        }
        if (s.find('\\') != std::string::npos)
          return err(ErrorCode::Unsupported, "protocol-0 string with escapes");
        Value* v = MC_TRY(make(Kind::String));
        v->str = std::move(s);
        MC_CHECK(push(v));
        break;
      }
      case ']': MC_CHECK(push(MC_TRY(make(Kind::List)))); break;
      case ')': MC_CHECK(push(MC_TRY(make(Kind::Tuple)))); break;
      case '}': MC_CHECK(push(MC_TRY(make(Kind::Dict)))); break;
      case 0x8f: MC_CHECK(push(MC_TRY(make(Kind::Set)))); break;
      case 'l': MC_CHECK(push(MC_TRY(container(Kind::List, MC_TRY(pop_mark()))))); break;
      case 't': MC_CHECK(push(MC_TRY(container(Kind::Tuple, MC_TRY(pop_mark()))))); break;
      case 0x91: MC_CHECK(push(MC_TRY(container(Kind::Set, MC_TRY(pop_mark()))))); break;
      case 0x85: case 0x86: case 0x87: {
        std::vector<Value*> items(size_t(op_ - 0x84));
        for (size_t k = items.size(); k-- > 0;) items[k] = MC_TRY(pop());
        MC_CHECK(push(MC_TRY(container(Kind::Tuple, std::move(items)))));
        break;
      }
      case 'd': {
        auto kv = MC_TRY(pop_mark());
        if (kv.size() % 2) return err(ErrorCode::Corrupt, "DICT with an odd number of values");
        Value* d = MC_TRY(make(Kind::Dict));
        for (size_t k = 0; k < kv.size(); k += 2) {
          MC_CHECK(grow(d, kv[k + 1]));
          d->entries.emplace_back(kv[k], kv[k + 1]);
        }
        MC_CHECK(push(d));
        break;
      }
      case 'a': {
        Value* v = MC_TRY(pop());
        Value* l = MC_TRY(top());
        if (l->kind != Kind::List && l->kind != Kind::Object)
          return err(ErrorCode::Corrupt, "APPEND on a {}", kind_name(l->kind));
        MC_CHECK(grow(l, v));
        l->items.push_back(v);
        break;
      }
      case 'e': case 0x90: {  // APPENDS, ADDITEMS
        auto items = MC_TRY(pop_mark());
        Value* l = MC_TRY(top());
        const bool ok = op_ == 'e' ? (l->kind == Kind::List || l->kind == Kind::Object) : l->kind == Kind::Set;
        if (!ok) return err(ErrorCode::Corrupt, "{} on a {}", op_ == 'e' ? "APPENDS" : "ADDITEMS", kind_name(l->kind));
        if (l->items.size() + items.size() > lim_.max_items)
          return err(ErrorCode::LimitExceeded, "list grows past {} items", lim_.max_items);
        for (Value* v : items) {
          MC_CHECK(grow(l, v));
          l->items.push_back(v);
        }
        break;
      }
      case 's': {
        Value* v = MC_TRY(pop());
        Value* k = MC_TRY(pop());
        MC_CHECK(op_setitems({k, v}));
        break;
      }
      case 'u': MC_CHECK(op_setitems(MC_TRY(pop_mark()))); break;
      case 'c': {
        std::string mod = MC_TRY(line());
        std::string name = MC_TRY(line());
        MC_CHECK(push(MC_TRY(global(std::move(mod), std::move(name)))));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = MC_TRY(pop());
        Value* mod = MC_TRY(pop());
        if (mod->kind != Kind::String || name->kind != Kind::String)
          return err(ErrorCode::Corrupt, "STACK_GLOBAL with non-string module/name");
        MC_CHECK(push(MC_TRY(global(mod->str, name->str))));
        break;
      }
      case 'R': case 0x81: {  // REDUCE, NEWOBJ
        Value* args = MC_TRY(pop());
        Value* fn = MC_TRY(pop());
        MC_CHECK(push(MC_TRY(reduce(fn, args, op_ == 0x81))));
        break;
      }
      case 0x92: {  // NEWOBJ_EX: kwargs kept as the object's set items
        Value* kw = MC_TRY(pop());
        Value* args = MC_TRY(pop());
        Value* fn = MC_TRY(pop());
        Value* o = MC_TRY(reduce(fn, args, true));
        if (kw->kind == Kind::Dict && o->kind == Kind::Object) o->entries = kw->entries;
        MC_CHECK(push(o));
        break;
      }
      case 'i': case 'o': {  // INST, OBJ (protocol 0/1 class instances)
        Value* fn = nullptr;
        if (op_ == 'i') {
          std::string mod = MC_TRY(line());
          std::string name = MC_TRY(line());
          fn = MC_TRY(global(std::move(mod), std::move(name)));
        }
        auto items = MC_TRY(pop_mark());
        if (op_ == 'o') {
          if (items.empty()) return err(ErrorCode::Corrupt, "OBJ without a class");
          fn = items.front();
          items.erase(items.begin());
        }
        Value* args = MC_TRY(container(Kind::Tuple, std::move(items)));
        MC_CHECK(push(MC_TRY(reduce(fn, args, true))));
        break;
      }
      case 'b': MC_CHECK(op_build()); break;
      case 'Q': MC_CHECK(op_persid(MC_TRY(pop()))); break;
      case 'P': {
        Value* s = MC_TRY(make(Kind::String));
        s->str = MC_TRY(line());
        MC_CHECK(op_persid(s));
        break;
      }
      case 'q': MC_CHECK(memo_put(MC_TRY(le<uint8_t>()))); break;
      case 'r': MC_CHECK(memo_put(MC_TRY(le<uint32_t>()))); break;
      case 0x94: MC_CHECK(memo_put(memo_.size())); break;
      case 'p': {
        const int64_t idx = MC_TRY(parse_int(MC_TRY(line())));
        if (idx < 0) return err(ErrorCode::Corrupt, "negative memo index {}", idx);
        MC_CHECK(memo_put(uint64_t(idx)));
        break;
      }
      case 'h': MC_CHECK(memo_get(MC_TRY(le<uint8_t>()))); break;
      case 'j': MC_CHECK(memo_get(MC_TRY(le<uint32_t>()))); break;
      case 'g': {
        const int64_t idx = MC_TRY(parse_int(MC_TRY(line())));
        if (idx < 0) return err(ErrorCode::Corrupt, "negative memo index {}", idx);
        MC_CHECK(memo_get(uint64_t(idx)));
        break;
      }
      case 0x82: case 0x83: case 0x84:
        return err(ErrorCode::Unsupported, "pickle uses the copyreg extension registry (opcode 0x{:02x})", op_);
      case 0x97: case 0x98:
        return err(ErrorCode::Unsupported, "pickle uses out-of-band buffers (opcode 0x{:02x})", op_);
      default:
        return err(ErrorCode::Corrupt, "unknown pickle opcode 0x{:02x} at byte {}", op_, base_ + op_pos_);
    }
  }
}

}  // namespace

Result<ParseResult> parse_pickle(std::span<const std::byte> bytes, Tree& tree, const Limits& limits,
                                 uint64_t base_offset) {
  Parser p(bytes, tree, limits, base_offset);
  return p.run();
}

}  // namespace mc::torch
