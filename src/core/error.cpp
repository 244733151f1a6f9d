#include "core/error.h"

#include <array>

namespace mc {
namespace {
struct CodeRow {
  ErrorCode code;
  std::string_view name;
  int exit_code;
};
// One table for names and exit statuses (README "Exit codes" mirrors it).
constexpr std::array<CodeRow, size_t(ErrorCode::Count)> kCodes{{
    {ErrorCode::Io, "io", 3},
    {ErrorCode::NotFound, "not_found", 4},
    {ErrorCode::Unsupported, "unsupported", 5},
    {ErrorCode::Corrupt, "corrupt", 6},
    {ErrorCode::Truncated, "truncated", 6},
    {ErrorCode::LimitExceeded, "limit_exceeded", 6},
    {ErrorCode::Mismatch, "mismatch", 7},
    {ErrorCode::InvalidArgument, "invalid_argument", 2},
    {ErrorCode::Exists, "exists", 8},
    {ErrorCode::NoSpace, "no_space", 9},
    {ErrorCode::Cancelled, "cancelled", 130},
    {ErrorCode::CheckFailed, "check_failed", 10},
    {ErrorCode::Internal, "internal", 70},
}};
static_assert(kCodes.size() == size_t(ErrorCode::Count));
}  // namespace

std::string_view error_code_name(ErrorCode c) { return kCodes[size_t(c)].name; }
int exit_code_for(ErrorCode c) { return kCodes[size_t(c)].exit_code; }

std::string Error::render() const {
  std::string out;
  if (!path.empty()) out += path;
  if (offset) out += fmt::format("{}byte {}", out.empty() ? "" : " @ ", *offset);
  if (!out.empty()) out += ": ";
  if (!tensor.empty()) out += fmt::format("tensor '{}': ", tensor);
  out += message;
  if (!hint.empty()) out += "; " + hint;
  return out;
}
}  // namespace mc
