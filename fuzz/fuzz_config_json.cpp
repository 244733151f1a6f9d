// libFuzzer target: config.json -> architecture config (depth cap, family fields, hard limits)
// -> the parameter table the config implies.
#include <cstddef>
#include <cstdint>
#include <string>

#include "arch/config.h"
#include "io/mapped_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!mc::io::check_json_depth(text, "config.json")) return 0;
  const mc::ojson j = mc::ojson::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  auto c = mc::arch::from_hf_config(j);
  if (!c || c->family == mc::arch::Family::Unknown) return 0;  // unknown: only the generic fields
  (void)mc::arch::hf_param_specs(*c);
  (void)mc::arch::to_hf_config(*c);  // importers write configs of known families only
  return 0;
}
