// TorchScript source generated from the op graph (graph/graph.h), formats.md §4.3.
//
// The module tree mirrors the HF parameter names: every weight "a.b.c.weight" lives in a module
// at path "a.b.c" (numeric components make a ModuleList), so a loaded module's named_parameters()
// are the HF names. Leaf modules (Linear, Conv1D, Embedding, RMSNorm, LayerNorm) get the forward
// of the op that reads their weight; each decoder layer (a ModuleList item) gets the forward of
// its ops, emitted one statement group per op; the root's forward(input_ids [B, T] int64) ->
// logits [B, T, V] computes RoPE cos/sin and the causal masks once and runs the rest. Containers
// in between (model, self_attn, mlp) only hold submodules, as the loader allows. Every module
// declares `training` and `_is_full_backward_hook` as torch's own scripted modules do, so
// .train()/.eval() and torch.jit.save of the loaded module work. Classes with identical source
// share one class; different ones (e.g. qwen2 layers with and without a window) get a suffix.
//
// Compute follows HF's eager modules in the weights' dtype: RMSNorm and softmax in f32 and cast
// back, cos/sin computed in f32 and cast to the activations' dtype.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "graph/graph.h"

namespace mc::torchscript {

// One module of the tree; modules[0] is the root.
struct ModuleNode {
  std::string path;                   // "" for the root, "model.layers.0", ...
  std::string attr;                   // last path component
  std::string cls;                    // class name inside the program's qualifier
  std::vector<size_t> children;       // indices into Program::modules, declaration order
  std::vector<std::pair<std::string, const TensorEntry*>> params;   // attribute -> tensor
  std::vector<std::pair<std::string, const TensorEntry*>> buffers;
  bool is_list = false;               // children are "0", "1", ...
};

struct Program {
  std::string qualifier;  // "__torch__.modelconvert.llama"
  std::string code_path;  // "code/__torch__/modelconvert/llama.py"
  std::string source;     // the code file
  int version = 3;        // what the printed ops require (required_version)
  std::vector<ModuleNode> modules;
  std::vector<std::shared_ptr<TensorEntry>> owned;  // buffers made here (rotary inv_freq)
  std::vector<std::string> dropped;                 // model tensors the graph does not read
};

// Builds the module tree and the source of every class from `g` over the tensors of `m` (every
// tensor the graph reads must be in m.tensors; the entries are referenced, not copied).
Result<Program> emit_program(const graph::Graph& g, const Model& m);

// The archive version the ops printed in `source` require: 3, raised by each op with an
// upgrader (torch's operator version map: div 4, full 5, linspace 8, logspace 9, gelu 10).
int required_version(std::string_view source);

}  // namespace mc::torchscript
