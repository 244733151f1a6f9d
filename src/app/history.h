// The history of conversions: $XDG_STATE_HOME/modelconvert/history.jsonl (default
// ~/.local/state), one JSON object per line, only ever appended to.
//
// Safe with concurrent writers (batch workers, several processes): each record is one write(2)
// of a whole line on an O_APPEND descriptor under an exclusive flock(2). A writer killed in the
// middle of its write leaves at most one torn last line; the next writer starts on a fresh line
// and readers skip lines that do not parse, so one bad record never hides the others.
#pragma once

#include <filesystem>
#include <vector>

#include "core/model.h"

namespace mc::app {

namespace fs = std::filesystem;

fs::path history_path();

// Appends one record (an object: time, command, input, output, format, options, status,
// seconds, error); "time" is set to now (UTC, ISO 8601) when absent.
Status append_history(ojson record);

struct HistoryList {
  fs::path path;
  std::vector<ojson> records;  // newest first
  size_t damaged = 0;          // lines that did not parse (skipped)
  size_t total = 0;            // records in the file
};
// The newest `limit` records (0: all). A missing file is an empty history.
Result<HistoryList> read_history(size_t limit);

// "2026-12-01T10:00:00Z".
std::string utc_now_iso8601();

}  // namespace mc::app
