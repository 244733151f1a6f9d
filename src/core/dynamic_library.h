// A shared library opened with dlopen when a feature first needs it, instead of being linked:
// libraries the program only sometimes uses (libcurl for downloads, OpenBLAS for matrix products)
// then cost nothing to runs that never use them. Opened once per process (the caller keeps one
// in a function-local static); error() tells why it or one of its symbols is not there.
#pragma once

#include <string>
#include <type_traits>

namespace mc {

class DynamicLibrary {
 public:
  explicit DynamicLibrary(const char* soname);  // RTLD_NOW | RTLD_LOCAL; never closed
  // Points `fn` at symbol `name`; a missing symbol leaves it null and sets error() (the first one).
  template <class F>
  void bind(F& fn, const char* name) {
    fn = reinterpret_cast<F>(symbol(name, /*required=*/true));
  }
  // A symbol that may be absent (null, not an error).
  void* optional_symbol(const char* name) const { return symbol(name, false); }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }  // "" when the library and symbols are there
  // Marks the library unusable after a failed start-up call of its own.
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

 private:
  void* symbol(const char* name, bool required) const;
  void* handle_ = nullptr;
  mutable std::string error_;
};

}  // namespace mc
