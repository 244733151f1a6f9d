# The areas, bottom layer first. A layer only depends on layers listed before it.
mc_area(core DIRS src/core src/io DEPS Threads::Threads nlohmann_json::nlohmann_json fmt::fmt ${CMAKE_DL_LIBS})
if(MC_BUILD_TESTS)
  add_library(mc_testutil STATIC ${CMAKE_CURRENT_SOURCE_DIR}/tests/testutil.cpp)
  target_include_directories(mc_testutil PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/tests)
  target_link_libraries(mc_testutil PUBLIC mc_core GTest::gtest)
  target_compile_definitions(mc_testutil PRIVATE MC_BINARY_PATH="${CMAKE_BINARY_DIR}/modelconvert")
endif()
# OpenBLAS is opened with dlopen when first needed (src/quant/blas.h); only cblas.h is used here.
mc_area(quant DIRS src/quant DEPS mc_core)
# Bit-exact quantizers: no a*b+c fused into one rounding anywhere in the area. GCC contracts by
# default in C++ (even with -std=c++20) wherever FMA is available, e.g. in the AVX-512 kernels.
target_compile_options(mc_quant PRIVATE -ffp-contract=off)
# libicuuc is opened with dlopen when text is first classified (src/tokenizer/unicode.cpp); only
# its headers are used at build time.
mc_area(tokenizer DIRS src/tokenizer DEPS mc_core)
target_include_directories(mc_tokenizer PRIVATE ${ICU_INCLUDE_DIRS})
mc_area(arch DIRS src/arch DEPS mc_core)
# The Hugging Face hub client and cache (hub ids as inputs); knows nothing of models.
# libcurl is opened with dlopen at the first request (src/hub/http.cpp: it costs every run
# ~17 ms of library loading when linked); only its headers are used at build time.
find_package(CURL REQUIRED)
mc_area(hub DIRS src/hub DEPS mc_core)
target_include_directories(mc_hub PRIVATE ${CURL_INCLUDE_DIRS})
# The engine contract (src/formats/engine.h) that every format engine implements.
mc_area(engine DIRS src/formats DEPS mc_core mc_arch mc_tokenizer)
# Containers: the file formats models are stored in, below the engines that use them.
mc_area(safetensors DIRS src/formats/safetensors DEPS mc_core mc_engine)
mc_area(torch DIRS src/formats/torch DEPS mc_core ZLIB::ZLIB)
# What engines build on: lazy tensor transforms and the op graph the runtime runs and the
# graph formats (ONNX, TorchScript) emit.
mc_area(transforms DIRS src/transforms DEPS mc_core mc_arch mc_quant yaml-cpp)
mc_area(graph DIRS src/graph DEPS mc_core mc_arch mc_quant)
# Format engines, one folder each.
mc_area(gguf DIRS src/formats/gguf DEPS mc_engine mc_quant mc_arch mc_tokenizer mc_transforms)
mc_area(hf DIRS src/formats/hf DEPS mc_engine mc_arch mc_safetensors mc_torch)
mc_area(llama2c DIRS src/formats/llama2c DEPS mc_engine mc_arch mc_transforms)
mc_area(mlx DIRS src/formats/mlx DEPS mc_engine mc_arch mc_safetensors mc_quant mc_transforms)
mc_area(megatron DIRS src/formats/megatron DEPS mc_engine mc_arch mc_torch mc_safetensors)
mc_area(torchscript DIRS src/formats/torchscript DEPS mc_engine mc_arch mc_torch mc_graph ZLIB::ZLIB)
mc_area(onnx DIRS src/formats/onnx DEPS mc_engine mc_arch mc_graph mc_transforms mc_tokenizer)
mc_area(mtk DIRS src/formats/mtk DEPS mc_engine)
mc_area(gptq_awq DIRS src/formats/gptq_awq
        DEPS mc_engine mc_arch mc_safetensors mc_quant mc_graph mc_transforms)
# The calibration corpus built into the program (public domain; see its README).
set(_mc_corpus ${CMAKE_CURRENT_SOURCE_DIR}/src/formats/gptq_awq/corpus/calibration.txt)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_mc_corpus})
file(READ ${_mc_corpus} _mc_corpus_hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _mc_corpus_bytes "${_mc_corpus_hex}")
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/generated/calibration_corpus.cpp CONTENT
     "// Generated from src/formats/gptq_awq/corpus/calibration.txt at configure time.\n#include <string_view>\nnamespace mc::gptq_awq {\nnamespace {\nconst unsigned char kCorpus[] = {${_mc_corpus_bytes}};\n}  // namespace\nstd::string_view builtin_corpus() { return {reinterpret_cast<const char*>(kCorpus), sizeof(kCorpus)}; }\n}  // namespace mc::gptq_awq\n")
target_sources(mc_gptq_awq PRIVATE ${CMAKE_BINARY_DIR}/generated/calibration_corpus.cpp)
# The registry of engines (converter/registry.cpp), the pipeline, check; then the public API.
mc_area(converter DIRS src/converter
        DEPS mc_hf mc_safetensors mc_torch mc_llama2c mc_gguf mc_mlx mc_megatron mc_torchscript mc_onnx mc_gptq_awq
             mc_mtk mc_transforms mc_graph mc_tokenizer)
# The tool around the converter: configuration, history, batch jobs, hub ids as inputs.
mc_area(app DIRS src/app DEPS mc_converter mc_hub yaml-cpp)
mc_area(api DIRS src/api DEPS mc_app mc_converter)

add_executable(modelconvert src/cli/main.cpp src/cli/progress_line.cpp src/cli/tool_commands.cpp)
target_link_libraries(modelconvert PRIVATE mc_api CLI11::CLI11)
install(TARGETS modelconvert)
# Test programs that drive the command line need the program built first.
foreach(t test_converter test_mlx test_megatron test_gguf test_torchscript test_onnx test_gptq_awq test_app test_mtk)
  if(TARGET ${t})
    add_dependencies(${t} modelconvert)
  endif()
endforeach()
