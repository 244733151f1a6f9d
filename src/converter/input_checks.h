// Checks of a model as a reader gave it, before anything is written: the config.json of a known
// family is complete, well typed and within the hard limits, and the weights agree with it
// (every layer's norms and the final norm are there). Shared by `convert` (after reading, before
// writing, so bad input gets its own exit code instead of failing the output's validation as an
// "internal" error) and `validate` (so it rejects what convert would).
#pragma once

#include <filesystem>
#include <string>

#include "core/model.h"

namespace mc::converter {

// The input path as given on the command line, before any detection: NotFound when nothing is
// there, and for a path that is not a directory what io::check_regular_file says (Io for a file
// we may not read, Corrupt for a FIFO or device, NotFound for a dangling link), so such inputs
// get the same code from convert, inspect and validate instead of "cannot tell which format".
Status check_input_path(const std::filesystem::path& input);

// NotFound naming the input when a model read from weight files holds no tensors (an empty
// safetensors header, an empty state dict). A config alone (--fake-weight) is not checked here.
Status check_has_tensors(const Model& m);

// The config.json a model's config came from (or its source file when the config was built
// from another format's metadata), for error messages.
std::string config_source(const Model& m);

// Corrupt naming the file when a carried tokenizer.json or tokenizer.model does not load (a
// kind of tokenizer we cannot load, Unsupported, is carried as it is). Part of check_input.
Status check_tokenizer_files(const Model& m);

// Corrupt/LimitExceeded for a config a known family cannot be built from, NotFound when the
// weights lack tensors the config implies; both naming the file. `check_weights` false skips the
// second part (fake weights, user-given shapes).
Status check_input(const Model& m, bool check_weights = true);

}  // namespace mc::converter
