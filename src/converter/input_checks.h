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

// The config.json a model's config came from (or its source file when the config was built
// from another format's metadata), for error messages.
std::string config_source(const Model& m);

// Corrupt/LimitExceeded for a config a known family cannot be built from, NotFound when the
// weights lack tensors the config implies; both naming the file. `check_weights` false skips the
// second part (fake weights, user-given shapes).
Status check_input(const Model& m, bool check_weights = true);

}  // namespace mc::converter
