#include "converter/pipeline_transforms.h"

namespace mc::converter {

Result<Model> apply_transforms(Model model, const ConvertRequest& req) {
  if (req.fake_weight || req.mup2llama || req.dtype) {
    return make_error(ErrorCode::Unsupported, "transforms are not linked yet");
  }
  return model;
}

}  // namespace mc::converter
