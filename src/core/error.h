// Typed errors and Result<T>: every reader, writer, validator and API call returns one of these;
// no exception crosses a module boundary. A message says where (file, tensor, byte offset), what
// (with the numbers), and what to do (hint).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace mc {

enum class ErrorCode : uint8_t {
  Io,               // the OS refused a read/write/open
  NotFound,         // a file, tensor or key that must exist does not
  Unsupported,      // a valid input we cannot handle (yet)
  Corrupt,          // bytes that break the format's rules
  Truncated,        // the file ends before the data it declares
  LimitExceeded,    // a count/length over a safety cap
  Mismatch,         // two things that must agree do not (shape vs bytes, config vs weights)
  InvalidArgument,  // the caller asked for something impossible
  Exists,           // the output exists and --force was not given
  NoSpace,          // not enough free disk space for the output
  Cancelled,        // stopped on request
  CheckFailed,      // a comparison (check --compare) ran but did not pass
  Internal,         // a bug of ours
  Count
};

std::string_view error_code_name(ErrorCode c);
// Process exit status for an error code (stable, documented in README).
int exit_code_for(ErrorCode c);

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string path;                // file the error is about ("" if none)
  std::string tensor;              // tensor name ("" if none)
  std::optional<uint64_t> offset;  // byte offset in `path`
  std::string message;             // what went wrong, with the numbers
  std::string hint;                // what to do about it

  // "path @ byte N: tensor 'x': message; hint"
  std::string render() const;

  Error&& with_path(std::string p) && {
    if (path.empty()) path = std::move(p);
    return std::move(*this);
  }
  Error&& with_tensor(std::string t) && {
    if (tensor.empty()) tensor = std::move(t);
    return std::move(*this);
  }
  Error&& with_hint(std::string h) && {
    if (hint.empty()) hint = std::move(h);
    return std::move(*this);
  }
};

template <typename... Args>
Error make_error(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  Error e;
  e.code = code;
  e.message = fmt::format(f, std::forward<Args>(args)...);
  return e;
}

// Result<T>: a value or an Error (the shape of C++23 std::expected).
template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(const T& v) : v_(std::in_place_index<0>, v) {}
  Result(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}
  template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
             !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result>)
  Result(U&& u) : v_(std::in_place_index<0>, T(std::forward<U>(u))) {}
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)) {}
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  void value() const {}
  const Error& error() const& { return *e_; }
  Error&& error() && { return std::move(*e_); }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;
inline Status ok_status() { return {}; }

}  // namespace mc

// MC_TRY(expr): evaluates a Result; on error returns the error from the enclosing function,
// otherwise yields the value (GNU statement expression; GCC and Clang both accept it).
#define MC_TRY(...)                                        \
  ({                                                       \
    auto mc_try_r_ = (__VA_ARGS__);                        \
    if (!mc_try_r_.ok()) return std::move(mc_try_r_).error(); \
    std::move(mc_try_r_).value();                          \
  })

// MC_CHECK(expr): for Status-returning expressions.
#define MC_CHECK(...)                                       \
  do {                                                      \
    auto mc_chk_r_ = (__VA_ARGS__);                         \
    if (!mc_chk_r_.ok()) return std::move(mc_chk_r_).error(); \
  } while (0)
