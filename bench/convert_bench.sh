#!/usr/bin/env bash
# Benchmark of issue "foundation": a generated bf16 Llama, sharded, converted to fp16 safetensors.
# Prints, from the same run and the same warm page cache: throughput (GB/s of input), the ratio
# to `cp` of the same bytes, and peak RSS, for two model sizes (to show memory stays flat).
# Each side runs REPS times (default 3), alternating; the fastest of each is compared.
#   bench/convert_bench.sh [build/modelconvert] [workdir]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "$@"

REPS=${REPS:-3}

# Times `cp` of $2.. into a fresh directory $1: prints "start copied synced" (seconds since epoch).
cp_once() {
  local dir=$1 t0 t1 t2
  shift
  rm -rf "$dir" && mkdir -p "$dir"
  cat "$@" > /dev/null  # the same warm page cache for both contenders
  t0=$(date +%s.%N); cp "$@" "$dir"/; t1=$(date +%s.%N)
  sync -f "$dir"/*; t2=$(date +%s.%N)
  rm -rf "$dir"
  echo "$t0 $t1 $t2"
}

# Alternates cp and ours REPS times and prints one line with the fastest of each (noise here only
# adds time) and every run. $1 = label, $2 = input bytes, $3 = cp target dir, $4 = output,
# $5 = inputs for cp (a glob, unquoted), rest = the convert command line.
compare() {
  local label=$1 bytes=$2 cpdir=$3 out=$4 inputs=$5 i cps=() ours=()
  shift 5
  for ((i = 0; i < REPS; i++)); do
    # shellcheck disable=SC2086
    cps+=("$(cp_once "$cpdir" $inputs)")
    rm -rf "$out"
    cat $inputs > /dev/null
    /usr/bin/time -v "$MC" "$@" 2> "$WORK/time-cb.txt" > /dev/null
    ours+=("$(wall_s "$WORK/time-cb.txt") $(peak_rss_mb "$WORK/time-cb.txt")")
    rm -rf "$out"
  done
  "$PY" - "$label" "$bytes" "$REPS" "${cps[@]}" "${ours[@]}" <<'PY'
import sys
label, b, n = sys.argv[1], float(sys.argv[2]) / 1e9, int(sys.argv[3])
cps = [(t1 - t0, t2 - t0) for t0, t1, t2 in (map(float, x.split()) for x in sys.argv[4:4 + n])]
ours = [tuple(map(float, x.split())) for x in sys.argv[4 + n:4 + 2 * n]]
cp, cps_ = min(c[0] for c in cps), min(c[1] for c in cps)
t, rss = min(o[0] for o in ours), max(o[1] for o in ours)
runs = lambda xs: ", ".join(f"{x[0]:.2f}" for x in xs)
print(f"{label} {b:5.2f} GB | modelconvert {t:6.2f} s {b/t:5.2f} GB/s (runs {runs(ours)}) | cp {cp:6.2f} s "
      f"(runs {runs(cps)}), cp+sync {cps_:6.2f} s | ratio vs cp {cp/t:4.2f}x, vs cp+sync {cps_/t:4.2f}x | "
      f"peak RSS {rss:.0f} MB")
PY
}

run_size() {  # $1 = layers
  local L=$1 src="$WORK/llama-$1L-bf16" out="$WORK/llama-$1L-fp16"
  llama_config "$WORK/config-$L.json" "$L"
  make_fake_llama "$WORK/config-$L.json" "$src"
  compare "$(printf '%2d' "$L") layers bf16 -> fp16        " "$(cat "$src"/*.safetensors | wc -c)" "$WORK/cp-$L" "$out" \
    "$src/*.safetensors" convert "$src" safetensors --dtype fp16 --max-shard-size 500MB --quiet --force -o "$out"
}

# PyTorch .bin (one torch zip written by us; torch.load reads it) -> safetensors, same dtype.
run_bin() {  # $1 = layers
  local L=$1 src="$WORK/llama-$1L-bf16" bin="$WORK/llama-$1L-bin" out="$WORK/llama-$1L-from-bin"
  if [ ! -f "$bin/pytorch_model.bin" ]; then
    "$MC" convert "$src" hf --weights-format bin --max-shard-size 100GB --force --quiet -o "$bin"
  fi
  compare "$(printf '%2d' "$L") layers .bin -> safetensors" "$(wc -c < "$bin/pytorch_model.bin")" "$WORK/cpbin-$L" "$out" \
    "$bin/pytorch_model.bin" convert "$bin" safetensors --quiet --force -o "$out"
}

echo "modelconvert $("$MC" version)  threads: $(nproc)"
run_size 8    # ~0.75 GB
run_size 16   # ~1.5 GB
run_bin 8
run_bin 16
