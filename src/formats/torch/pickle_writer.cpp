// Protocol-2 pickle writer (formats.md §3.5). Only opcodes that torch's weights_only unpickler
// accepts are emitted (§3.4): bytes go through _codecs.encode as protocol 2 does, tensors through
// torch._utils._rebuild_tensor_v2 with a ('storage', torch.<X>Storage, key, 'cpu', numel) persistent
// id, memoized per storage key so tied tensors share one storage.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "formats/torch/pickle.h"

namespace mc::torch {

namespace {

class Writer {
 public:
  Writer(const std::function<StorageAssignment(const TensorEntry&)>& s, const Limits& l)
      : storage_of_(s), lim_(l) {}

  Status value(const Value& v, uint32_t depth);
  std::string out;

 private:
  void op(char c) { out.push_back(c); }
  void u8(uint8_t x) { out.push_back(char(x)); }
  void le(uint64_t x, int n) {
    for (int k = 0; k < n; ++k) u8(uint8_t(x >> (8 * k)));
  }
  void integer(int64_t x) {
    if (x >= 0 && x < 256) {
      op('K');
      u8(uint8_t(x));
    } else if (x >= 0 && x < 65536) {
      op('M');
      le(uint64_t(x), 2);
    } else if (x >= INT32_MIN && x <= INT32_MAX) {
      op('J');
      le(uint64_t(x), 4);
    } else {
      // LONG1 with the shortest two's complement encoding.
      int n = 8;
      while (n > 1) {
        const int64_t lo = -(int64_t(1) << (8 * (n - 1) - 1)), hi = (int64_t(1) << (8 * (n - 1) - 1)) - 1;
        if (x < lo || x > hi) break;
        --n;
      }
      op('\x8a');
      u8(uint8_t(n));
      le(uint64_t(x), n);
    }
  }
  void unicode(std::string_view s) {
    op('X');
    le(s.size(), 4);
    out.append(s);
  }
  void global(std::string_view mod, std::string_view name) {
    op('c');
    out.append(mod);
    op('\n');
    out.append(name);
    op('\n');
  }
  void put_memo(uint32_t idx) {
    if (idx < 256) {
      op('q');
      u8(uint8_t(idx));
    } else {
      op('r');
      le(idx, 4);
    }
  }
  void get_memo(uint32_t idx) {
    if (idx < 256) {
      op('h');
      u8(uint8_t(idx));
    } else {
      op('j');
      le(idx, 4);
    }
  }
  Status items(const std::vector<Value*>& xs, uint32_t depth, char close) {
    for (size_t b = 0; b < xs.size(); b += 1000) {
      op('(');
      for (size_t k = b; k < xs.size() && k < b + 1000; ++k) MC_CHECK(value(*xs[k], depth + 1));
      op(close);
    }
    return {};
  }
  Status entries(const std::vector<std::pair<Value*, Value*>>& kv, uint32_t depth) {
    for (size_t b = 0; b < kv.size(); b += 1000) {
      op('(');
      for (size_t k = b; k < kv.size() && k < b + 1000; ++k) {
        MC_CHECK(value(*kv[k].first, depth + 1));
        MC_CHECK(value(*kv[k].second, depth + 1));
      }
      op('u');
    }
    return {};
  }
  Status tuple(const std::vector<Value*>& xs, uint32_t depth) {
    if (xs.empty()) {
      op(')');
      return {};
    }
    if (xs.size() <= 3) {
      for (const Value* x : xs) MC_CHECK(value(*x, depth + 1));
      u8(uint8_t(0x84 + xs.size()));
      return {};
    }
    op('(');
    for (const Value* x : xs) MC_CHECK(value(*x, depth + 1));
    op('t');
    return {};
  }
  Status tensor(const Value& v);

  const std::function<StorageAssignment(const TensorEntry&)>& storage_of_;
  const Limits& lim_;
  std::unordered_map<std::string, uint32_t> storage_memo_;
  uint32_t next_memo_ = 0;
};

Status Writer::tensor(const Value& v) {
  const TensorEntry* e = v.tensor.source;
  if (!e) return make_error(ErrorCode::InvalidArgument, "tensor node without a source entry cannot be written");
  const StorageAssignment s = storage_of_(*e);
  const auto cls = storage_class_for(s.dtype);
  if (!cls)
    return make_error(ErrorCode::Unsupported, "dtype {} has no torch storage class", dtype_name(s.dtype))
        .with_tensor(e->name);
  global("torch._utils", "_rebuild_tensor_v2");
  op('(');
  if (auto it = storage_memo_.find(s.key); it != storage_memo_.end()) {
    get_memo(it->second);
  } else {
    op('(');
    unicode("storage");
    global("torch", *cls);
    unicode(s.key);
    unicode("cpu");
    integer(int64_t(s.numel));
    op('t');
    storage_memo_[s.key] = next_memo_;
    put_memo(next_memo_++);
  }
  op('Q');
  integer(0);
  // size and contiguous stride tuples (built by hand: they are ints, not nodes)
  auto int_tuple = [&](const std::vector<int64_t>& xs) {
    if (xs.empty()) {
      op(')');
      return;
    }
    if (xs.size() > 3) op('(');
    for (int64_t x : xs) integer(x);
    if (xs.size() > 3) op('t');
    else u8(uint8_t(0x84 + xs.size()));
  };
  std::vector<int64_t> strides(e->shape.size());
  int64_t acc = 1;
  for (size_t d = e->shape.size(); d-- > 0;) {
    strides[d] = acc;
    acc *= std::max<int64_t>(e->shape[d], 1);
  }
  int_tuple(e->shape);
  int_tuple(strides);
  op(v.tensor.requires_grad ? '\x88' : '\x89');  // parameters of TorchScript modules: True
  global("collections", "OrderedDict");
  op(')');
  op('R');
  op('t');
  op('R');
  return {};
}

Status Writer::value(const Value& v, uint32_t depth) {
  if (depth > lim_.max_depth)
    return make_error(ErrorCode::LimitExceeded, "tree to write nests deeper than {}", lim_.max_depth);
  switch (v.kind) {
    case Kind::None: op('N'); break;
    case Kind::Bool: op(v.b ? '\x88' : '\x89'); break;
    case Kind::Int: integer(v.i); break;
    case Kind::BigInt:
      if (v.str.size() > 255) {
        op('\x8b');
        le(v.str.size(), 4);
      } else {
        op('\x8a');
        u8(uint8_t(v.str.size()));
      }
      out.append(v.str);
      break;
    case Kind::Float: {
      uint64_t u;
      std::memcpy(&u, &v.f, 8);
      op('G');
      for (int k = 7; k >= 0; --k) u8(uint8_t(u >> (8 * k)));
      break;
    }
    case Kind::String: unicode(v.str); break;
    case Kind::Bytes: {
      std::string latin;  // each byte as the code point of the same value, UTF-8 encoded
      for (char c : v.str) {
        const auto b = uint8_t(c);
        if (b < 0x80) latin.push_back(char(b));
        else {
          latin.push_back(char(0xC0 | (b >> 6)));
          latin.push_back(char(0x80 | (b & 0x3F)));
        }
      }
      global("_codecs", "encode");
      unicode(latin);
      unicode("latin1");
      op('\x86');
      op('R');
      break;
    }
    case Kind::List:
      op(']');
      MC_CHECK(items(v.items, depth, 'e'));
      break;
    case Kind::Tuple: MC_CHECK(tuple(v.items, depth)); break;
    case Kind::Set:
      global("builtins", "set");
      op(']');
      MC_CHECK(items(v.items, depth, 'e'));
      op('\x85');
      op('R');
      break;
    case Kind::Dict:
      if (v.ordered) {
        global("collections", "OrderedDict");
        op(')');
        op('R');
      } else {
        op('}');
      }
      MC_CHECK(entries(v.entries, depth));
      break;
    case Kind::Global: global(v.str, v.name); break;
    case Kind::Object:
      if (!v.callable) return make_error(ErrorCode::InvalidArgument, "object node without a callable");
      MC_CHECK(value(*v.callable, depth + 1));
      if (v.args) MC_CHECK(value(*v.args, depth + 1));
      else op(')');
      op(v.newobj ? '\x81' : 'R');
      if (!v.items.empty()) MC_CHECK(items(v.items, depth, 'e'));
      if (!v.entries.empty()) MC_CHECK(entries(v.entries, depth));
      break;
    case Kind::PersistentId:
      return make_error(ErrorCode::Unsupported, "writing a raw persistent id is not supported");
    case Kind::Tensor: MC_CHECK(tensor(v)); break;
  }
  if (v.state) {
    MC_CHECK(value(*v.state, depth + 1));
    op('b');
  }
  return {};
}

}  // namespace

Result<std::string> write_pickle(const Value& root,
                                 const std::function<StorageAssignment(const TensorEntry&)>& storage_of,
                                 const Limits& limits) {
  Writer w(storage_of, limits);
  w.out = "\x80\x02";
  MC_CHECK(w.value(root, 0));
  w.out.push_back('.');
  return std::move(w.out);
}

}  // namespace mc::torch
