// Running one of the toolkit's shell scripts: `bash SCRIPT` in the toolkit folder with extra
// environment variables, stdout and stderr merged and streamed line by line as they come.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"

namespace mc::mtk {

struct ScriptRun {
  int exit_status = -1;       // the script's exit status (when it exited)
  int signal = 0;             // the signal that ended it (0: it exited)
  std::vector<std::string> tail;  // its last lines of output (at most `keep`)
};

// Runs `bash script` with cwd = `dir` and the current environment plus `env` (which wins).
// Each output line goes to `on_line` as it arrives. Fails only when the script cannot be
// started; a script that fails is a ScriptRun with its status.
Result<ScriptRun> run_script(const std::filesystem::path& script, const std::filesystem::path& dir,
                             const std::map<std::string, std::string>& env,
                             const std::function<void(std::string_view)>& on_line, size_t keep = 20);

}  // namespace mc::mtk
