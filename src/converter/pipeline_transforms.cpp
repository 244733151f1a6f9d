#include "converter/pipeline_transforms.h"

#include "arch/config.h"
#include "transforms/transforms.h"

namespace mc::converter {

Result<Model> apply_transforms(Model model, const ConvertRequest& req) {
  if (req.fake_weight) {
    transforms::FakeOptions fo;
    if (req.fake_weight_init == "zeros") {
      fo.mode = transforms::FakeMode::Zeros;
    } else if (req.fake_weight_init == "random") {
      fo.mode = transforms::FakeMode::Random;
    } else {
      return make_error(ErrorCode::InvalidArgument, "unknown --fake-weight-init '{}'", req.fake_weight_init)
          .with_hint("use zeros or random");
    }
    fo.seed = req.seed;
    if (req.fake_weight_config) fo.shapes = MC_TRY(transforms::load_shapes_file(req.fake_weight_config->string()));
    model = MC_TRY(transforms::fake_weights(model, fo));
  } else if (req.fake_weight_config) {
    return make_error(ErrorCode::InvalidArgument, "--fake-weight-config needs --fake-weight");
  }
  if (req.mup2llama) {
    auto ac = MC_TRY(arch::from_hf_config(model.config));
    if (!ac.is_mup()) {
      return make_error(ErrorCode::InvalidArgument, "--mup2llama needs a MiniCPM (muP) model, this is '{}'",
                        ac.model_type.empty() ? "unknown" : ac.model_type)
          .with_path(model.source_path)
          .with_hint(
              "drop --mup2llama, or check config.json's model_type and scale_emb/scale_depth/dim_model_base");
    }
    model = MC_TRY(transforms::mup_to_llama(model));
  }
  if (req.write.dtype) model = MC_TRY(transforms::cast(model, *req.write.dtype));
  return model;
}

}  // namespace mc::converter
