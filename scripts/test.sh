#!/usr/bin/env bash
# One command for everything the tests need: install, build (plain and ASan+UBSan), run all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
echo "== tests (RelWithDebInfo) =="
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900)
if [ "${MC_SKIP_ASAN:-0}" != 1 ]; then
  bash scripts/build.sh build-asan -DMC_SANITIZE=ON
  echo "== tests (AddressSanitizer + UBSan) =="
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$(nproc)" --timeout 900)
fi
