// The transform stage of the pipeline: fake weights, then muP folding, then the dtype cast.
#pragma once

#include "converter/converter.h"

namespace mc::converter {

Result<Model> apply_transforms(Model model, const ConvertRequest& req);

}  // namespace mc::converter
