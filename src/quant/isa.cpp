// Which implementation of the k-quant fits quantize_rows uses (ggml.h KernelIsa): the best one
// the CPU has, unless MC_QUANT_ISA or set_kernel_isa says otherwise. Chosen once, at first use.
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "quant/ggml.h"
#include "quant/kquant_fit.h"

namespace mc::quant {
namespace {

struct IsaRow {
  KernelIsa isa;
  std::string_view name;
};
constexpr IsaRow kIsas[] = {
    {KernelIsa::Scalar, "scalar"}, {KernelIsa::Avx2, "avx2"}, {KernelIsa::Avx512, "avx512"}};

bool cpu_has(KernelIsa isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 registers (XCR0).
  switch (isa) {
    case KernelIsa::Scalar: return true;
    case KernelIsa::Avx2: return __builtin_cpu_supports("avx2");
    case KernelIsa::Avx512: return __builtin_cpu_supports("avx512f");
  }
  return false;
#else
  return isa == KernelIsa::Scalar;
#endif
}

const detail::FitKernels* compiled(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Scalar: return &detail::fit_kernels_scalar();
    case KernelIsa::Avx2: return detail::fit_kernels_avx2();
    case KernelIsa::Avx512: return detail::fit_kernels_avx512();
  }
  return nullptr;
}

KernelIsa best_available() {
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2})
    if (kernel_isa_available(isa)) return isa;
  return KernelIsa::Scalar;
}

KernelIsa initial_isa() {
  const KernelIsa best = best_available();
  const char* env = std::getenv("MC_QUANT_ISA");
  if (env == nullptr || *env == '\0') return best;
  const auto want = kernel_isa_from_name(env);
  if (want && kernel_isa_available(*want)) return *want;
  std::fprintf(stderr, "note: MC_QUANT_ISA=%s is %s here; using %s\n", env,
               want ? "not available" : "not one of scalar, avx2, avx512",
               kernel_isa_name(best).data());
  return best;
}

std::atomic<int> g_isa{-1};

}  // namespace

std::string_view kernel_isa_name(KernelIsa isa) {
  for (const auto& r : kIsas)
    if (r.isa == isa) return r.name;
  return "?";
}

std::optional<KernelIsa> kernel_isa_from_name(std::string_view name) {
  for (const auto& r : kIsas)
    if (r.name == name) return r.isa;
  return std::nullopt;
}

bool kernel_isa_available(KernelIsa isa) { return compiled(isa) != nullptr && cpu_has(isa); }

KernelIsa kernel_isa() {
  int v = g_isa.load(std::memory_order_acquire);
  if (v < 0) {
    int expected = -1;
    g_isa.compare_exchange_strong(expected, int(initial_isa()), std::memory_order_acq_rel);
    v = g_isa.load(std::memory_order_acquire);
  }
  return KernelIsa(v);
}

Status set_kernel_isa(KernelIsa isa) {
  if (!kernel_isa_available(isa)) {
    return make_error(ErrorCode::Unsupported, "the {} quantization kernels are not available here",
                      kernel_isa_name(isa))
        .with_hint("this CPU or build lacks them; the scalar kernels always work");
  }
  g_isa.store(int(isa), std::memory_order_release);
  return ok_status();
}

namespace detail {
const FitKernels& fit_kernels() { return *compiled(kernel_isa()); }
}  // namespace detail

}  // namespace mc::quant
