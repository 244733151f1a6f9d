#!/usr/bin/env bash
# Benchmark of the MLX engine: a generated ~1.5 GB bf16 Llama (14 layers of hidden 2048, ffn 5632,
# vocab 32000) -> mlx-lm 4-bit (group 64). Prints wall seconds, MB/s of input (total and per
# worker thread), peak RSS (GNU time) and the machine load before the run.
#   bench/mlx_bench.sh [build/modelconvert] [workdir] [threads]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "${1:-}" "${2:-}"
THREADS=${3:-$(nproc)}
L=14
src="$WORK/llama-mlxbench-bf16" out="$WORK/llama-mlxbench-4bit"
llama_config "$WORK/config-mlx.json" $L
make_fake_llama "$WORK/config-mlx.json" "$src"
bytes=$(cat "$src"/*.safetensors | wc -c)
cat "$src"/*.safetensors > /dev/null  # warm page cache
rm -rf "$out"
echo "modelconvert $("$MC" version)  threads: $THREADS  load before: $(load_avg)"
/usr/bin/time -v "$MC" convert "$src" mlx --quant 4bit --threads "$THREADS" --quiet --force -o "$out" \
  2> "$WORK/time-mlx.txt"
secs=$(wall_s "$WORK/time-mlx.txt")
rss=$(peak_rss_mb "$WORK/time-mlx.txt")
outb=$(cat "$out"/*.safetensors | wc -c)
"$PY" - "$bytes" "$outb" "$secs" "$rss" "$THREADS" <<'PY'
import sys
b, ob, s, rss, th = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
mbs = b / 1e6 / s
print(f"{b/1e9:.2f} GB bf16 -> {ob/1e9:.2f} GB MLX 4-bit g64 | {s:.2f} s | {mbs:.0f} MB/s input, "
      f"{mbs/th:.0f} MB/s per thread ({th}) | peak RSS {rss} MB")
PY
echo "load after: $(load_avg)"
rm -rf "$out"
