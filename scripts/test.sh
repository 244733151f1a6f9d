#!/usr/bin/env bash
# One command for everything the tests need: install, build (plain and ASan+UBSan), run all tests.
#
# CI budget (2 cores, 60 minutes): the plain build has no debug info (-g costs ~30% of compile
# time here); the sanitizer build is clang, -O1 -g1 (what ASan recommends; line tables are enough
# for its reports; clang compiles our code faster than gcc). Under the sanitizers every unit and
# end-to-end test runs; the interop tests (label "interop": llama.cpp, PyTorch and
# @huggingface/gguf reading our files) spend their time in those programs, not in ours, and run in
# the plain build only. The same sanitizer build holds the libFuzzer targets of fuzz/ (MC_FUZZ:
# coverage instrumentation in the parser areas only); each runs a 15 s smoke from its seeds and a
# finding fails the run (scripts/fuzz.sh SECONDS for a long one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG"
echo "== tests (Release) =="
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900)
if [ "${MC_SKIP_ASAN:-0}" != 1 ]; then
  # A build-asan/ configured with gcc before is reconfigured (CMake cannot switch compilers in place).
  if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' build-asan/CMakeCache.txt; then
    rm -rf build-asan/CMakeCache.txt build-asan/CMakeFiles
  fi
  bash scripts/build.sh build-asan -DMC_FUZZ=ON -DMC_INTEROP_TESTS=OFF -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1"
  echo "== tests (AddressSanitizer + UBSan; unit and end-to-end) =="
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$(nproc)" --timeout 900 -LE interop)
  echo "== fuzz smoke (libFuzzer, ${MC_FUZZ_SMOKE_SECONDS:-15} s per target) =="
  MC_FUZZ_NO_BUILD=1 MC_FUZZ_FRESH=1 MC_FUZZ_TIMEOUT=60 MC_FUZZ_WORK=build-asan/fuzz-smoke MC_FUZZ_PARALLEL="$(nproc)" \
    bash scripts/fuzz.sh "${MC_FUZZ_SMOKE_SECONDS:-15}"
fi
