// The Megatron-LM format engine (formats.md §9): legacy and Megatron-Core names, TP/PP layouts.
#pragma once

#include "formats/engine.h"

namespace mc::megatron {

const formats::Engine& engine();

formats::Confidence detect(const std::filesystem::path& path);

// Megatron checkpoint (standard directory, or `model.pt` + `metadata.json`) -> HF-form Model with
// model.layers.N.* names and a reconstructed config.json; tensors stay lazy views of the files.
Result<Model> read(const std::filesystem::path& path, const formats::ReadOptions& opt);

// HF-form Model (llama, mistral, minicpm, qwen2) -> iter_0000001/mp_rank_TT[_PPP]/model_optim_rng.pt.
// opt.tensor_parallel / pipeline_parallel / naming ("legacy" | "mcore"; "" = mcore).
Result<formats::WriteResult> write(const Model& model, const std::filesystem::path& out,
                                   const formats::WriteOptions& opt);

// All ranks present and loadable, shapes consistent across ranks and with args.
formats::ValidationReport validate(const std::filesystem::path& path);

// What `inspect` shows about a Megatron checkpoint: layout (iteration, TP/PP, naming style,
// files), the hyper-parameters from args and where the true vocabulary size came from.
Result<ojson> describe(const std::filesystem::path& path, const formats::ReadOptions& opt = {});

}  // namespace mc::megatron
