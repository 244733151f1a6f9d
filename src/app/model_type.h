// --model-type: a family name (llama, mistral, qwen2, minicpm, gpt2: the arch table), "auto", or
// a task name as the seed takes it (text-generation, image-classification, ...). A task name
// does not change how a checkpoint is read; it is handed to writers that pick a tool by task
// (MTK: text-generation -> the LLM script, image-classification -> the VLM script).
#pragma once

#include <span>
#include <string>

#include "converter/converter.h"

namespace mc::app {

struct TaskRow {
  std::string_view name, description;
};
// The one table of task names.
std::span<const TaskRow> tasks();

// Sets req.model_type (a family or "auto") and req.write.task from --model-type; an unknown name
// is InvalidArgument listing the accepted ones.
Status apply_model_type(converter::ConvertRequest& req, const std::string& model_type);

}  // namespace mc::app
