#!/usr/bin/env bash
# InstallConsumer: installs the build into a temporary prefix, checks the installed tree (one
# self-contained public header, the library, the CMake package, the pkg-config file), builds
# tests/consumer against it with find_package and again with pkg-config, and runs both: what
# they convert (GGUF q8_0 of a tiny random Llama) must be byte for byte what the command line
# writes, with the same tensor count, and a missing input must fail with the CLI's exit code.
#   run.sh BUILD_DIR [EXTRA_CXX_FLAGS]
set -euo pipefail
build=$(cd "$1" && pwd)
extra=${2:-}
src=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$src/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp/home" XDG_STATE_HOME="$tmp/state" XDG_CONFIG_HOME="$tmp/config"
mkdir -p "$HOME"
die() { echo "FAIL: $*" >&2; exit 1; }

prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/modelconvert lib/libmodelconvert.a include/modelconvert/modelconvert.h \
         lib/cmake/modelconvert/modelconvertConfig.cmake lib/cmake/modelconvert/modelconvertConfigVersion.cmake \
         lib/pkgconfig/modelconvert.pc; do
  [ -s "$prefix/$f" ] || die "not installed: $f"
done
headers=$(cd "$prefix/include" && find . -type f | sort | tr '\n' ' ')
[ "$headers" = "./modelconvert/modelconvert.h " ] || die "installed headers: $headers"
# The header compiles on its own: the installed include folder and the standard library only.
echo '#include <modelconvert/modelconvert.h>' > "$tmp/alone.cpp"
c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$prefix/include" "$tmp/alone.cpp" || die "header does not compile alone"

mc="$prefix/bin/modelconvert"
"$mc" convert "$root/examples/tiny-llama/config.json" safetensors --fake-weight --fake-weight-init random --seed 3 \
  -o "$tmp/tiny" --quiet >/dev/null
"$mc" convert "$tmp/tiny" gguf --quant q8_0 -o "$tmp/cli.gguf" --json > "$tmp/cli.json"
cli_tensors=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tensors"])' "$tmp/cli.json")
set +e
"$mc" convert "$tmp/tiny/missing" gguf --quiet >/dev/null 2>&1
cli_missing=$?
set -e

# 1. find_package(modelconvert)
cmake -S "$src" -B "$tmp/cb" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  "-DCMAKE_CXX_FLAGS=$extra" "-DCMAKE_EXE_LINKER_FLAGS=$extra" >/dev/null
cmake --build "$tmp/cb" >/dev/null
# 2. pkg-config
flags=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs modelconvert)
# shellcheck disable=SC2086
c++ -std=c++20 $extra "$src/main.cpp" -o "$tmp/consumer-pc" $flags

for exe in "$tmp/cb/consumer" "$tmp/consumer-pc"; do
  rm -f "$tmp/lib.gguf"
  out=$("$exe" "$tmp/tiny" "$tmp/lib.gguf") || die "$exe: $out"
  echo "$exe: $out"
  read -r _ tensors _ bytes _ files _ format <<<"$(echo "$out" | head -1)"
  [ "$tensors" = "$cli_tensors" ] || die "$exe converted $tensors tensors, the CLI $cli_tensors"
  [ "$format" = gguf ] && [ "$files" = 1 ] && [ "$bytes" -gt 0 ] || die "$exe: unexpected result '$out'"
  cmp "$tmp/cli.gguf" "$tmp/lib.gguf" || die "$exe wrote other bytes than the CLI"
  echo "$out" | grep -qx "missing input: exit $cli_missing not_found" || die "$exe: missing input gave '$out', the CLI exit $cli_missing"
done
echo "InstallConsumer: OK ($cli_tensors tensors, missing input exit $cli_missing)"
