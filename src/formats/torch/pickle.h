// A safe pickle reader and a protocol-2 pickle writer (formats.md §3.2-§3.3).
//
// The reader never executes anything: every GLOBAL / REDUCE / NEWOBJ / BUILD becomes inert data.
// A few callables that torch.save emits are understood and turned into plain nodes:
//   torch._utils._rebuild_tensor(_v2/_v3)          -> Tensor (storage from the persistent id)
//   torch._utils._rebuild_parameter(_with_state)    -> the wrapped Tensor
//   collections.OrderedDict                         -> Dict (ordered = true)
//   _codecs.encode(str, 'latin1')                   -> Bytes
//   torch.Size(tuple)                               -> Tuple
// Everything else (argparse.Namespace, numpy scalars, os.system, ...) stays an Object record of
// {callable, args, state}. Nodes live in an arena owned by a Tree, so memo sharing and even
// hostile cycles (a list appended to itself) cannot leak; walkers bound their recursion by
// Limits::max_depth.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"

namespace mc::torch {

// Safety caps applied while parsing (each one has a test with a hostile input).
struct Limits {
  uint32_t max_depth = 512;                      // MARK nesting, container nesting, walkers
  uint64_t max_memo_index = uint64_t(1) << 24;   // highest PUT/GET index accepted
  uint64_t max_memo_entries = uint64_t(1) << 24;
  uint64_t max_string_bytes = uint64_t(256) << 20;  // one str/bytes payload
  uint64_t max_items = uint64_t(1) << 26;        // nodes created in total
  uint64_t max_stack = uint64_t(1) << 22;        // values on the stack at once
  uint32_t max_long_bytes = 4096;                // LONG1/LONG4 payload
  uint32_t max_rank = 64;                        // tensor dimensions
};

enum class Kind : uint8_t {
  None, Bool, Int, BigInt, Float, String, Bytes, List, Tuple, Dict, Set,
  Global,        // module + name (a class or function reference, never resolved)
  Object,        // callable(args) (+ state, + items set on it): an inert record
  PersistentId,  // a persistent id that is not a torch storage tuple
  Tensor,        // a torch tensor view of a storage
};
std::string_view kind_name(Kind k);

// A storage referenced by a tensor: `data/<key>` in a zip archive, or a legacy record.
struct StorageRef {
  std::string key;
  std::string type_name;       // "FloatStorage", "UntypedStorage", ...
  std::optional<DType> dtype;  // element type of the storage (U8 for UntypedStorage)
  uint64_t numel = 0;          // elements of `dtype` in the storage
  std::string location;        // "cpu", "cuda:0", ...
};

struct TensorRef {
  StorageRef storage;
  std::optional<DType> dtype;   // element dtype (from the storage class, or v3's dtype arg)
  std::string dtype_name;       // for error messages when dtype is unknown ("complex64")
  uint64_t storage_offset = 0;  // in elements of `dtype`
  Shape sizes;
  std::vector<int64_t> strides;
  bool requires_grad = false;
  // Writer side: where the bytes come from (the entry's dtype/shape are what gets written).
  const TensorEntry* source = nullptr;
};

struct Value {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string str;   // String, Bytes, BigInt (LE two's complement), Global module
  std::string name;  // Global name
  std::vector<Value*> items;                        // List, Tuple, Set, Object (appended items)
  std::vector<std::pair<Value*, Value*>> entries;   // Dict, Object (set items)
  bool ordered = false;                             // Dict: was an OrderedDict
  bool newobj = false;                              // Object: NEWOBJ instead of REDUCE
  Value* callable = nullptr;                        // Object
  Value* args = nullptr;                            // Object (a Tuple)
  Value* state = nullptr;                           // BUILD argument (any node)
  Value* pid = nullptr;                             // PersistentId (b = true: a torch storage,
                                                    // described by tensor.storage)
  TensorRef tensor;                                 // Tensor
  uint32_t depth = 1;                               // nesting seen while building

  bool is_str(std::string_view s) const { return kind == Kind::String && str == s; }
  bool is_global(std::string_view mod, std::string_view nm) const {
    return kind == Kind::Global && str == mod && name == nm;
  }
  // Dict lookup by string key (nullptr if absent or not a Dict).
  const Value* get(std::string_view key) const;
};

// Owns all nodes of one or more pickles; node pointers stay valid for the Tree's lifetime.
class Tree {
 public:
  Value* make(Kind k);
  Value* none() { return make(Kind::None); }
  Value* boolean(bool v);
  Value* integer(int64_t v);
  Value* real(double v);
  Value* string(std::string s);
  Value* bytes(std::string s);
  Value* list(std::vector<Value*> items = {});
  Value* tuple(std::vector<Value*> items = {});
  Value* dict(bool ordered = false);
  Value* global(std::string module, std::string name);
  // A tensor node for the writer; `e` must outlive the write.
  Value* tensor(const TensorEntry& e);
  // argparse.Namespace(**fields) as pickle writes it: GLOBAL, (), NEWOBJ, {fields}, BUILD.
  Value* namespace_object(Value* fields_dict);

  size_t size() const { return nodes_.size(); }
  Value* root = nullptr;

 private:
  std::deque<Value> nodes_;
};

struct ParseResult {
  Value* value = nullptr;
  uint64_t end = 0;  // offset just past STOP
};

// Parses one pickle starting at `bytes[0]`. Nodes go into `tree`. Errors carry the byte offset
// (relative to `bytes`, plus `base_offset`).
Result<ParseResult> parse_pickle(std::span<const std::byte> bytes, Tree& tree,
                                 const Limits& limits = {}, uint64_t base_offset = 0);

// Serialises a tree with protocol 2 (only opcodes torch's weights_only unpickler accepts).
// Tensor nodes must have `tensor.source` set; storage keys are assigned by `storage_key_of`,
// which is called once per Tensor node in pickle order and returns the key and the storage numel.
struct StorageAssignment {
  std::string key;
  DType dtype;
  uint64_t numel;
};
Result<std::string> write_pickle(const Value& root,
                                 const std::function<StorageAssignment(const TensorEntry&)>& storage_of,
                                 const Limits& limits = {});

// Globals (as "module.name") that torch.load(weights_only=True) would refuse, found anywhere in
// the tree (callables of Objects included). Empty = safe for weights_only.
Result<std::vector<std::string>> find_unsafe_globals(const Value& root, const Limits& limits = {});
// Status form: Unsupported listing the offending globals.
Status check_weights_only(const Value& root, const Limits& limits = {});

// A short human-readable rendering (for logs, `inspect`, tests); truncates long containers.
std::string to_debug_string(const Value& v, uint32_t max_depth = 6);

// Storage class table (formats.md §3.3), both directions.
std::optional<DType> dtype_from_storage_class(std::string_view name);
std::optional<std::string_view> storage_class_for(DType t);
// torch dtype object names ("float32", "half", "bfloat16", "float8_e4m3fn", ...).
std::optional<DType> dtype_from_torch_name(std::string_view name);

}  // namespace mc::torch
