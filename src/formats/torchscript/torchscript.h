// The TorchScript engine (formats.md §4): archives that torch.jit.load runs, written without
// libtorch from the op graph (emit.h), and read back as data (archive.h): our own archives give
// the HF parameters and config.json back; any other torch.jit.save archive of plain modules gives
// its parameters and buffers under their module paths and is described by `inspect`.
#pragma once

#include "formats/engine.h"

namespace mc::torchscript {

const formats::Engine& engine();

// A zip whose central directory lists constants.pkl or code/ records.
formats::Confidence detect(const std::filesystem::path& path);

Result<Model> read_model(const std::filesystem::path& path, const formats::ReadOptions& opt);
// One archive file at `out`: the graph of `m`'s family as code, the parameters as storages.
Result<formats::WriteResult> write_model(const Model& m, const std::filesystem::path& out,
                                         const formats::WriteOptions& opt);
// A TorchScript archive we did not write (read with no config.json), written again with its own
// code and the Model's tensors (e.g. cast by --dtype); write_model calls it for such models.
Result<formats::WriteResult> resave_archive(const Model& m, const std::filesystem::path& out,
                                            const formats::WriteOptions& opt);
formats::ValidationReport validate_archive(const std::filesystem::path& path);
Result<ojson> describe_archive(const std::filesystem::path& path, const formats::ReadOptions& opt);

}  // namespace mc::torchscript
