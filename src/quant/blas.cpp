#include "quant/blas.h"

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace mc::blas {

namespace {
// OpenBLAS's soname (Debian: libopenblas0, through the alternatives system).
constexpr const char* kLibrary = "libopenblas.so.0";

struct Loaded {
  Api api{};
  std::string error;
};

const Loaded& loaded() {
  static Loaded l;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      l.error = why ? why : "not found";
      return;
    }
    auto sym = [&](auto& fn, const char* name) {
      void* p = ::dlsym(lib, name);
      if (!p && l.error.empty()) l.error = std::string(name) + " is missing";
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
    sym(l.api.sgemm, "cblas_sgemm");
    sym(l.api.sgemv, "cblas_sgemv");
    sym(l.api.ssymm, "cblas_ssymm");
    sym(l.api.ssyrk, "cblas_ssyrk");
    sym(l.api.get_num_threads, "openblas_get_num_threads");
    sym(l.api.set_num_threads, "openblas_set_num_threads");
    sym(l.api.dpotrf, "dpotrf_");
    sym(l.api.dpotri, "dpotri_");
    // The pthread build's pool shutdown (its fork handler); absent from other builds.
    if (auto stop = reinterpret_cast<int (*)()>(::dlsym(lib, "blas_thread_shutdown_"))) stop();
  });
  return l;
}
}  // namespace

Status load() {
  const Loaded& l = loaded();
  if (!l.error.empty())
    return make_error(ErrorCode::Unsupported, "cannot load {}: {}", kLibrary, l.error)
        .with_hint("install OpenBLAS (Debian: apt-get install libopenblas0)");
  return {};
}

const Api& api() {
  const Loaded& l = loaded();
  if (!l.error.empty()) throw std::runtime_error("cannot load " + std::string(kLibrary) + ": " + l.error);
  return l.api;
}

}  // namespace mc::blas
