// `batch`: many conversions from one job file, as the seed's job files write them.
//
//   tasks:                                  models:
//     - model_path: ./llama                   llama_q4:            # the name
//       output_format: gguf                     input: hf:org/llama  # or model_path
//       output_path: out/llama.gguf             output_format: gguf
//       quantization: q4_k_m                    quantization: q4_k_m
//       quantization_config: {...}              ...
//       model_type: text-generation
//       dtype: fp16
//       fake_weight: false
//
// YAML or JSON. Besides the seed's keys a task may give name, preset, output (= output_path),
// input (= model_path), quant / quant_config, max_shard_size, weights_format, tp, pp,
// megatron_format, from, tokenizer, fake_weight_config, fake_weight_init, seed, mup2llama, force.
// The seed's device, use_large_calibration, postprocess and platform are accepted and ignored
// (with a warning); any other key is refused before anything runs. Relative paths are relative
// to the current folder, as in the seed.
//
// Tasks run on a pool of --max-workers threads; a task that fails with a transient error (I/O,
// network: ErrorCode::Io) is retried up to --max-retries times with a growing pause; the other
// tasks go on when one fails. --shard i/n runs the tasks whose 0-based index % n == i-1, so the n
// jobs of a Slurm or Kubernetes job array split one file without a scheduler of ours.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/run.h"
#include "converter/converter.h"

namespace mc::app {

struct BatchTask {
  size_t index = 0;            // 0-based position in the file
  std::string name;            // "name", the models: key, or "task-N" (1-based)
  std::string input;           // as written (path or hub id)
  converter::ConvertRequest req;
  std::string model_type = "auto";
  std::string preset;
  std::vector<std::string> warnings;
};

// Reads and checks a job file; InvalidArgument (naming the task and key) on any problem.
Result<std::vector<BatchTask>> load_batch_file(const fs::path& file);

struct TaskResult {
  size_t index = 0;
  std::string name, input, output, format;
  bool ok = false;
  std::optional<Error> error;
  int attempts = 0;
  double seconds = 0;
  ojson to_json() const;
};

struct Estimate {
  struct Row {
    size_t index = 0;
    std::string name;
    uint64_t bytes = 0;
    bool known = false;
    std::string note;  // why unknown
  };
  std::vector<Row> rows;
  uint64_t total_bytes = 0;
  size_t unknown = 0;
  struct Disk {
    fs::path where;
    uint64_t needed = 0, free = 0;
  };
  std::vector<Disk> disks;  // one per file system the outputs go to
  bool enough = true;
  ojson to_json() const;
};

struct BatchOptions {
  fs::path file;
  const Config* config = nullptr;      // required
  std::optional<uint64_t> max_workers;  // else the config's max_workers
  std::optional<uint64_t> max_retries;  // else the config's max_retries
  size_t shard_index = 1, shard_count = 1;
  std::optional<size_t> threads;        // per task (else config `threads`, else cores / workers)
  bool skip_disk_check = false;
  bool force = false;                   // replace existing outputs (every task)
  double retry_pause_s = 0.5;           // first pause; doubles each retry
  std::optional<fs::path> report;       // also write the report (JSON) here, through a rename
  std::function<void(const Estimate&)> on_estimate;
  std::function<void(const TaskResult&, size_t done, size_t total)> on_task;
  std::function<void(const std::string&)> note;
  ProgressFn progress;                  // tasks done / total
};

struct BatchReport {
  fs::path file;
  size_t shard_index = 1, shard_count = 1, tasks_in_file = 0;
  uint64_t max_workers = 1, max_retries = 0;
  Estimate estimate;
  std::vector<TaskResult> tasks;  // in file order
  size_t succeeded = 0, failed = 0;
  double seconds = 0;
  ojson to_json() const;
};

// Errors only for the batch as a whole (bad file or shard: InvalidArgument; not enough disk:
// NoSpace), before any task runs. Failed tasks are in the report.
Result<BatchReport> run_batch(const BatchOptions& opt);

// Whether an error may go away on its own (retried by batch): I/O and network errors.
bool is_transient(const Error& e);

}  // namespace mc::app
