#!/usr/bin/env bash
# Benchmark of the Megatron engine: a generated ~1.5 GB bf16 Llama (14 layers, hidden 2048, GQA
# 32/8 heads, vocab 32000) converted HF -> Megatron TP=2 PP=2 (Megatron-Core names) and back to
# HF. Prints seconds and peak RSS of each direction (GNU time), with the machine's load.
#   bench/megatron_bench.sh [build/modelconvert] [workdir]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "$@"
L=14
SRC="$WORK/meg-llama-${L}L-bf16" MEG="$WORK/meg-llama-${L}L-tp2pp2" BACK="$WORK/meg-llama-${L}L-back"
llama_config "$WORK/meg-config.json" $L
make_fake_llama "$WORK/meg-config.json" "$SRC"

bytes=$(cat "$SRC"/*.safetensors | wc -c)
echo "modelconvert $("$MC" version)  threads: $(nproc)  load: $(load_avg)"
cat "$SRC"/*.safetensors > /dev/null
rm -rf "$MEG" "$BACK"
/usr/bin/time -v "$MC" convert "$SRC" hf2megatron --tp 2 --pp 2 --megatron-format mcore --quiet --force \
  -o "$MEG" 2> "$WORK/time-meg-to.txt"
/usr/bin/time -v "$MC" convert "$MEG" hf --quiet --force -o "$BACK" 2> "$WORK/time-meg-back.txt"
"$PY" - "$bytes" "$(wall_s "$WORK/time-meg-to.txt")" "$(peak_rss_mb "$WORK/time-meg-to.txt")" \
  "$(wall_s "$WORK/time-meg-back.txt")" "$(peak_rss_mb "$WORK/time-meg-back.txt")" <<'PY'
import sys
b, t1, r1, t2, r2 = float(sys.argv[1]) / 1e9, float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
print(f"{b:5.2f} GB bf16 | HF -> Megatron TP=2 PP=2: {t1:6.2f} s ({b/t1:5.2f} GB/s), peak RSS {r1} MB | "
      f"Megatron -> HF: {t2:6.2f} s ({b/t2:5.2f} GB/s), peak RSS {r2} MB")
PY
echo "load after: $(load_avg)"
rm -rf "$MEG" "$BACK"
