#include "core/dynamic_library.h"

#include <dlfcn.h>

namespace mc {

DynamicLibrary::DynamicLibrary(const char* soname) : handle_(::dlopen(soname, RTLD_NOW | RTLD_LOCAL)) {
  if (!handle_) {
    const char* why = ::dlerror();
    error_ = why ? why : "not found";
  }
}

void* DynamicLibrary::symbol(const char* name, bool required) const {
  if (!handle_) return nullptr;
  void* p = ::dlsym(handle_, name);
  if (!p && required && error_.empty()) error_ = std::string(name) + " is missing";
  return p;
}

}  // namespace mc
