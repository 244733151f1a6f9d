#!/usr/bin/env bash
# Benchmark of the TorchScript writer and reader: generated bf16 Llamas of two sizes (hidden 2048,
# ffn 5632, vocab 32000; 8 and 16 layers, ~0.98 and ~1.71 GB) -> TorchScript archive, and the
# archive -> safetensors, each against `cp` of the same bytes in the same run. Peak RSS (GNU time)
# shows whether memory stays flat as the model doubles (the storages stream in chunks).
#   bench/torchscript_bench.sh [build/modelconvert] [workdir]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "${1:-}" "${2:-}"
echo "modelconvert $("$MC" version)  load before: $(load_avg)"
for L in 8 16; do
  src="$WORK/llama-tsbench-$L" ts="$WORK/llama-tsbench-$L.pt" back="$WORK/llama-tsbench-$L-st"
  llama_config "$WORK/config-ts-$L.json" $L
  make_fake_llama "$WORK/config-ts-$L.json" "$src"
  bytes=$(cat "$src"/*.safetensors | wc -c)
  cat "$src"/*.safetensors > /dev/null  # warm page cache
  rm -rf "$ts" "$back" "$WORK/cp-ts"
  mkdir -p "$WORK/cp-ts"
  /usr/bin/time -v cp "$src"/*.safetensors "$WORK/cp-ts/" 2> "$WORK/time-ts-cp.txt"
  /usr/bin/time -v "$MC" convert "$src" torchscript --quiet --force -o "$ts" 2> "$WORK/time-ts-w.txt"
  /usr/bin/time -v "$MC" convert "$ts" safetensors --quiet --force -o "$back" 2> "$WORK/time-ts-r.txt"
  "$PY" - "$bytes" "$(wall_s "$WORK/time-ts-cp.txt")" "$(wall_s "$WORK/time-ts-w.txt")" \
    "$(peak_rss_mb "$WORK/time-ts-w.txt")" "$(wall_s "$WORK/time-ts-r.txt")" "$(peak_rss_mb "$WORK/time-ts-r.txt")" <<'PY'
import sys
b, cp, w, wr, r, rr = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], float(sys.argv[5]), sys.argv[6]
print(f"{b/1e9:.2f} GB bf16 | cp {cp:.2f} s | HF -> TorchScript {w:.2f} s ({b/1e9/w:.2f} GB/s, {cp/w:.2f}x cp), "
      f"peak RSS {wr} MB | TorchScript -> safetensors {r:.2f} s ({cp/r:.2f}x cp), peak RSS {rr} MB")
PY
  rm -rf "$ts" "$back" "$WORK/cp-ts"
done
echo "load after: $(load_avg)"
