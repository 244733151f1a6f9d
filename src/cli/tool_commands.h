// The commands around conversion: batch, history, config. Registered on the program's CLI11 app
// by main.cpp, run when chosen; they print tables on stdout (one JSON document with --json),
// progress and notices on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "app/batch.h"

namespace mc::cli {

class ToolCommands {
 public:
  // Adds the subcommands; `json` is the program's shared --json flag.
  void add(CLI::App& app, bool& json);
  // The exit status when one of them was chosen, nullopt otherwise.
  std::optional<int> run(bool json);

 private:
  int run_batch(bool json);
  int run_history(bool json);
  int run_config(bool json);

  CLI::App* batch_ = nullptr;
  CLI::App* history_ = nullptr;
  CLI::App* config_ = nullptr;
  CLI::App *show_ = nullptr, *get_ = nullptr, *set_ = nullptr, *unset_ = nullptr, *presets_ = nullptr;
  CLI::Option* threads_opt_ = nullptr;
  CLI::Option* workers_opt_ = nullptr;
  CLI::Option* retries_opt_ = nullptr;

  std::string batch_file_, shard_, report_;
  uint64_t max_workers_ = 1, max_retries_ = 1;
  size_t threads_ = 0;
  bool skip_disk_check_ = false, force_ = false, quiet_ = false, progress_ = false;
  size_t limit_ = 20;
  std::string key_, value_;
};

}  // namespace mc::cli
