// MTK (MediaTek NeuroPilot) output through MediaTek's own `mtk_cloud` toolkit. We do not write
// the .tflite files ourselves: as the seed's original does, we run the toolkit's
// run_example_llm_cybertron.sh (LLMs) or run_example_vlm_cybertron.sh (vision-language models)
// in its folder with the settings as environment variables, stream its output, and count the
// conversion good only when .tflite files (FlatBuffers with the "TFL3" identifier) appear.
//
// Environment the scripts read (values from --quant-config, defaults as the seed's):
//   MODEL_PATH  the HF directory (absolute)      PLATFORM    MT6991 | MT6989 | MT6897
//   MODEL_SIZE  0_5B 0_9B 1_2B 1_6B 8B 0_58B      WEIGHT_BIT  4
//   MODEL_KIND  word (llm) | multimodal (vlm)     OUTPUT_DIR  our temporary output (absolute)
//   CLEN 512, PLEN 128, CLOUD_WEIGHT_NUM 1024, CLOUD_ACT_NUM 256, MTK_BATCH_SIZE 2,
//   DISABLE_PGPTQ false, IS_LLAMA false, RATE 0, SKIP_ENV_SETUP true, USE_OPTIMIZED_CONVERT true,
//   CONDA_ENV SKIP_CONDA_ACTIVATION (unless set), GPTQ_MODELPATH (only when given).
// Not copied from the original: its hard-coded personal OUTPUT_DIR and GPTQ_MODELPATH defaults,
// and its search for .tflite files in -o while the script writes to OUTPUT_DIR (ours are the
// same folder, renamed to -o after the check).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "formats/engine.h"

namespace mc::mtk {

namespace fs = std::filesystem;

const formats::Engine& engine();

// What one conversion will run: the toolkit, the script, and its environment (OUTPUT_DIR is
// added by the writer). Fails with InvalidArgument on a bad setting (unknown platform or key)
// and NotFound when no toolkit or script is found, saying where it looked.
struct Plan {
  fs::path toolkit, script;
  std::string toolkit_from;  // where the toolkit path came from
  std::string kind;          // "llm" | "vlm"
  std::string kind_from;     // why
  std::map<std::string, std::string> env;
  std::vector<std::string> warnings;
};
Result<Plan> plan(const Model& model, const formats::WriteOptions& opt);
// The part of the plan that needs no model: settings, platform, toolkit (checked before the
// converter reads anything).
Result<Plan> plan_settings(const formats::WriteOptions& opt);

// A written MTK output: at least one .tflite, each a TFLite FlatBuffer.
formats::ValidationReport validate_dir(const fs::path& path);

}  // namespace mc::mtk
