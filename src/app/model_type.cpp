#include "app/model_type.h"

#include <array>

#include "arch/families.h"

namespace mc::app {

namespace {

constexpr std::array<TaskRow, 12> kTasks{{
    {"text-generation", "causal language model (MTK: the LLM script)"},
    {"image-classification", "vision model (MTK: the VLM script)"},
    {"image-text-to-text", "vision-language model"},
    {"image-to-text", "captioning model"},
    {"text2text-generation", "encoder-decoder model"},
    {"text-classification", "sequence classifier"},
    {"token-classification", "token classifier"},
    {"question-answering", "extractive QA model"},
    {"fill-mask", "masked language model"},
    {"feature-extraction", "embedding model"},
    {"summarization", "summarization model"},
    {"translation", "translation model"},
}};

}  // namespace

std::span<const TaskRow> tasks() { return kTasks; }

Status apply_model_type(converter::ConvertRequest& req, const std::string& model_type) {
  if (model_type.empty() || model_type == "auto") {
    req.model_type = "auto";
    return {};
  }
  for (const auto& f : arch::families())
    if (f.model_type == model_type) {
      req.model_type = model_type;
      return {};
    }
  for (const auto& t : kTasks)
    if (t.name == model_type) {
      req.model_type = "auto";
      req.write.task = model_type;
      return {};
    }
  std::string fams, names;
  for (const auto& f : arch::families()) fams += (fams.empty() ? "" : ", ") + std::string(f.model_type);
  for (const auto& t : kTasks) names += (names.empty() ? "" : ", ") + std::string(t.name);
  return make_error(ErrorCode::InvalidArgument, "unknown --model-type '{}'", model_type)
      .with_hint(fmt::format("use auto, a family ({}) or a task ({})", fams, names));
}

}  // namespace mc::app
