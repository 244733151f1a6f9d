#include "quant/blas.h"

#include <stdexcept>
#include <string>

#include "core/dynamic_library.h"

namespace mc::blas {

namespace {
// OpenBLAS's soname (Debian: libopenblas0, through the alternatives system).
constexpr const char* kLibrary = "libopenblas.so.0";

struct Loaded {
  DynamicLibrary lib{kLibrary};
  Api api{};
};

const Loaded& loaded() {
  static Loaded l = [] {
    Loaded x;
    x.lib.bind(x.api.sgemm, "cblas_sgemm");
    x.lib.bind(x.api.sgemv, "cblas_sgemv");
    x.lib.bind(x.api.ssymm, "cblas_ssymm");
    x.lib.bind(x.api.ssyrk, "cblas_ssyrk");
    x.lib.bind(x.api.get_num_threads, "openblas_get_num_threads");
    x.lib.bind(x.api.set_num_threads, "openblas_set_num_threads");
    x.lib.bind(x.api.dpotrf, "dpotrf_");
    x.lib.bind(x.api.dpotri, "dpotri_");
    // The pthread build's pool shutdown (its fork handler); absent from other builds.
    if (auto stop = reinterpret_cast<int (*)()>(x.lib.optional_symbol("blas_thread_shutdown_"))) stop();
    return x;
  }();
  return l;
}
}  // namespace

Status load() {
  const Loaded& l = loaded();
  if (!l.lib.ok())
    return make_error(ErrorCode::Unsupported, "cannot load {}: {}", kLibrary, l.lib.error())
        .with_hint("install OpenBLAS (Debian: apt-get install libopenblas0)");
  return {};
}

const Api& api() {
  const Loaded& l = loaded();
  if (!l.lib.ok()) throw std::runtime_error("cannot load " + std::string(kLibrary) + ": " + l.lib.error());
  return l.api;
}

}  // namespace mc::blas
