// A user's program: the README's example call through the installed header and library.
//   consumer <model dir> <out.gguf>   converts to GGUF q8_0 and prints
//   "tensors <n> bytes <n> files <n> format <id>", then a failing call's exit code.
#include <modelconvert/modelconvert.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) return 64;
  try {
    auto r = mc::api::convert({.input = argv[1], .output_format = "gguf", .output = argv[2], .quant = "q8_0"});
    std::printf("tensors %llu bytes %llu files %zu format %s\n", static_cast<unsigned long long>(r.tensors),
                static_cast<unsigned long long>(r.tensor_bytes), r.files.size(), r.output_format.c_str());
  } catch (const mc::api::Failure& e) {
    std::printf("failed %d %s\n", e.exit_code(), e.what());
    return 1;
  }
  try {
    mc::api::convert({.input = std::string(argv[1]) + "/missing", .output_format = "gguf"});
    std::printf("no failure\n");
    return 1;
  } catch (const mc::api::Failure& e) {
    std::printf("missing input: exit %d %s\n", e.exit_code(), e.code().c_str());
  }
  return 0;
}
