#!/usr/bin/env bash
# Reader/writer throughput of the torch format on a ~1.5 GB torch.save file, against
# `cat file > /dev/null` on the same warm page cache. Usage:
#   bench/torch_bench.sh [build-dir] [work-dir]
# Prints GB/s for: cat, our read of every tensor (read() into a buffer), our .bin -> .bin copy.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
work="${2:-$(mktemp -d)}"
bin="$work/bench_model.bin"
[ -f "$bin" ] || /usr/bin/python3 "$root/bench/gen_bin.py" "$bin"
size=$(stat -c %s "$bin")
cat "$bin" > /dev/null  # warm the page cache
t0=$(date +%s.%N); cat "$bin" > /dev/null; t1=$(date +%s.%N)
awk -v s="$size" -v a="$t0" -v b="$t1" 'BEGIN { printf "cat (warm):                      %.2f GB/s\n", s / (b - a) / 1e9 }'
t0=$(date +%s.%N); cp "$bin" "$work/cp_copy.bin"; sync "$work/cp_copy.bin"; t1=$(date +%s.%N)
rm -f "$work/cp_copy.bin"
awk -v s="$size" -v a="$t0" -v b="$t1" 'BEGIN { printf "cp + sync (disk baseline):       %.2f GB/s\n", s / (b - a) / 1e9 }'
cd "$root"
MC_TORCH_BENCH_FILE="$bin" MC_TORCH_BENCH_OUT="$work/bench_copy.bin" \
  "$build/test_torch" --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_Bench*' | grep -E '^bench'
rm -f "$work/bench_copy.bin"
