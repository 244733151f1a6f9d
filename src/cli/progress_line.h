// The one progress line long commands draw on stderr: done/total, percent, rate and time left,
// redrawn at most 10 times a second and erased when the command ends.
#pragma once

#include <memory>

#include "core/progress.h"

namespace mc::cli {

// Whether to draw: --progress forces it; otherwise only on a terminal, and never with --quiet
// or --json.
bool want_progress(bool forced, bool quiet, bool json);

class ProgressLine {
 public:
  explicit ProgressLine(bool on);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // The function to hand to a request (empty when the line is off).
  ProgressFn fn() const;
  // Erases the line (also done by the destructor).
  void clear();

 private:
  struct State;
  std::shared_ptr<State> st_;
};

}  // namespace mc::cli
