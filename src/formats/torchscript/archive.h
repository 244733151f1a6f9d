// Reading TorchScript archives (formats.md §4.1-§4.3) as data: the zip records, data.pkl (the
// module tree) and constants.pkl through the safe pickle reader with a TorchScript allow-list,
// and the class declarations of the code/ records. The code is parsed, never executed: only the
// declaration lines of each class are read (`class X(Module):`, `__parameters__`, `__buffers__`,
// `name : Type`, `__annotations__["0"] = Type`, `name : Final[T] = v`, `def name(`).
//
// Archive layout (§4.1): <name>/data.pkl, <name>/data/<i>, <name>/constants.pkl,
// <name>/constants/<i>, <name>/code/<qualifier path>.py (stored or deflated),
// <name>/code/...py.debug_pkl, <name>/extra/<file>, <name>/version or <name>/.data/version.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "formats/torch/torch_io.h"
#include "formats/torch/zip.h"

namespace mc::torchscript {

namespace fs = std::filesystem;

// One class of the code/ records.
struct ClassDecl {
  std::string qualified;  // "__torch__.modelconvert.llama.LlamaForCausalLM"
  std::string super;      // "Module", "" (plain class), "NamedTuple", ...
  std::string file;       // record the class is in, relative to the archive folder
  std::vector<std::string> parameters, buffers;
  std::vector<std::pair<std::string, std::string>> attributes;  // declared name -> type, in order
  std::vector<std::string> constants;                           // `name : Final[T] = v`
  std::vector<std::string> methods;
};

// A module instance of the data.pkl tree.
struct ModuleInfo {
  std::string path;  // "" for the root, "model.layers.0", ...
  std::string cls;   // qualified class name
};

struct Archive {
  std::string path;
  std::string name;  // top-level folder of the zip
  int version = 0;
  torch::TorchFile data;  // mapping, pickle tree (root = data.pkl's object) and data/ storages
  std::map<std::string, ClassDecl> classes;  // by qualified name
  std::vector<std::string> code_files;       // code/*.py records
  std::vector<std::string> extra_files;      // names under extra/
  size_t constants = 0;                      // items of constants.pkl's tuple
  std::vector<ModuleInfo> modules;           // pre-order
  TensorStore parameters;                    // module path + "." + attribute
  TensorStore buffers;                       // buffers and other tensor attributes
  std::vector<std::pair<std::string, std::string>> attributes;  // other attributes, rendered
  std::optional<std::string> config_json;    // the root's config_json attribute (our archives)
  // The tensor nodes of the module tree with their names (a tied tensor once per name).
  std::vector<std::pair<const torch::Value*, std::string>> tensor_nodes;
};

// Opens an archive and walks its module tree. With `problems`, rule violations that do not stop
// the walk (a declared attribute without a value, a tensor outside its storage, a CRC) are
// collected there; without, the first one is returned.
Result<Archive> open_archive(const fs::path& path, std::vector<Error>* problems = nullptr);

// A record's bytes, inflated when it is deflated (torch.jit.save compresses code records);
// refuses more than `cap` bytes. The CRC-32 is checked.
Result<std::string> read_record(const torch::ZipReader& z, const torch::ZipEntry& e, uint64_t cap);

// The declarations of the classes in one code record (`qualifier` = the record's path as a
// dotted name, e.g. "__torch__.modelconvert.llama").
Result<std::vector<ClassDecl>> parse_classes(std::string_view source, const std::string& qualifier,
                                             const std::string& file);

}  // namespace mc::torchscript
