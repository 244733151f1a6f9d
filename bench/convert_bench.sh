#!/usr/bin/env bash
# Benchmark of issue "foundation": a generated bf16 Llama, sharded, converted to fp16 safetensors.
# Prints, from the same run and the same warm page cache: throughput (GB/s of input), the ratio
# to `cp` of the same bytes, and peak RSS, for two model sizes (to show memory stays flat).
#   bench/convert_bench.sh [build/modelconvert] [workdir]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "$@"

run_size() {  # $1 = layers
  local L=$1 src="$WORK/llama-$1L-bf16" out="$WORK/llama-$1L-fp16" cpdir="$WORK/cp-$1L"
  llama_config "$WORK/config-$L.json" "$L"
  make_fake_llama "$WORK/config-$L.json" "$src"
  local bytes
  bytes=$(cat "$src"/*.safetensors | wc -c)
  cat "$src"/*.safetensors > /dev/null  # warm the page cache for both contenders
  rm -rf "$cpdir" "$out" && mkdir -p "$cpdir"
  local t0 t1 t2 t3
  t0=$(date +%s.%N); cp "$src"/*.safetensors "$cpdir"/; t1=$(date +%s.%N)
  sync -f "$cpdir"/* ; t2=$(date +%s.%N)
  rm -rf "$cpdir"
  cat "$src"/*.safetensors > /dev/null
  /usr/bin/time -v "$MC" convert "$src" safetensors --dtype fp16 --max-shard-size 500MB --quiet --force \
    -o "$out" 2> "$WORK/time-$L.txt"
  t3=$(wall_s "$WORK/time-$L.txt")
  "$PY" - "$bytes" "$t0" "$t1" "$t2" "$t3" "$(peak_rss_mb "$WORK/time-$L.txt")" "$L" <<'PY'
import sys
b, t0, t1, t2, tmc, rss, L = float(sys.argv[1]), *map(float, sys.argv[2:6]), sys.argv[6], sys.argv[7]
cp, cp_sync = t1 - t0, t2 - t0
gb = b / 1e9
print(f"{L:>2} layers  {gb:5.2f} GB bf16 -> fp16 | modelconvert {tmc:6.2f} s {gb/tmc:5.2f} GB/s | "
      f"cp {cp:6.2f} s ({gb/cp:5.2f} GB/s), cp+sync {cp_sync:6.2f} s | ratio vs cp {cp/tmc:4.2f}x, "
      f"vs cp+sync {cp_sync/tmc:4.2f}x | peak RSS {rss} MB")
PY
  rm -rf "$out"
}

# PyTorch .bin (one torch zip written by us; torch.load reads it) -> safetensors, same dtype.
run_bin() {  # $1 = layers
  local L=$1 src="$WORK/llama-$1L-bf16" bin="$WORK/llama-$1L-bin" out="$WORK/llama-$1L-from-bin" cpdir="$WORK/cpbin-$1L"
  if [ ! -f "$bin/pytorch_model.bin" ]; then
    "$MC" convert "$src" hf --weights-format bin --max-shard-size 100GB --force --quiet -o "$bin"
  fi
  local bytes
  bytes=$(wc -c < "$bin/pytorch_model.bin")
  cat "$bin/pytorch_model.bin" > /dev/null
  rm -rf "$cpdir" "$out" && mkdir -p "$cpdir"
  local t0 t1
  t0=$(date +%s.%N); cp "$bin/pytorch_model.bin" "$cpdir"/; t1=$(date +%s.%N)
  rm -rf "$cpdir"
  cat "$bin/pytorch_model.bin" > /dev/null
  /usr/bin/time -v "$MC" convert "$bin" safetensors --quiet --force -o "$out" 2> "$WORK/time-bin-$L.txt"
  local tmc
  tmc=$(wall_s "$WORK/time-bin-$L.txt")
  "$PY" -c "
b=$bytes/1e9; cp=$t1-$t0; t=$tmc
print(f'{$L:>2} layers  {b:5.2f} GB .bin -> safetensors | modelconvert {t:6.2f} s {b/t:5.2f} GB/s | cp {cp:6.2f} s | ratio vs cp {cp/t:4.2f}x | peak RSS $(peak_rss_mb "$WORK/time-bin-$L.txt") MB')"
  rm -rf "$out"
}

echo "modelconvert $("$MC" version)  threads: $(nproc)"
run_size 8    # ~0.75 GB
run_size 16   # ~1.5 GB
run_bin 8
run_bin 16
