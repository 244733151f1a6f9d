#!/usr/bin/env bash
# Benchmark of the calibrated quantizers: a generated ~0.5B-class bf16 Llama (hidden 1024, ffn
# 4096, 16 heads, vocab 32000; 24 layers = 470M parameters) -> GPTQ 4-bit g128 and AWQ 4-bit
# g128 with the built-in calibration corpus. Prints, for each, the wall time, the time of the
# embedding pass and of each layer (from --json), CPU seconds and peak RSS (GNU time), and the
# machine load before and after. The calibration text is tokenized with the Llama 2 tokenizer
# from ../shared/fixtures. Not run in CI (minutes to hours on 2 cores).
#   bench/gptq_awq_bench.sh [build/modelconvert] [workdir] [layers=24] [samples=64] [seq_len=256] [threads]
# METHODS="gptq awq" (the default) picks what runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "${1:-}" "${2:-}"
L=${3:-24}
SAMPLES=${4:-64}
SEQ=${5:-256}
THREADS=${6:-$(nproc)}
TOK="$ROOT/../shared/fixtures/tokenizers/llama2-spm/tokenizer.model"
if [ ! -f "$TOK" ]; then
  echo "needs $TOK (the calibration text is tokenized with the model's tokenizer)" >&2
  exit 1
fi
src="$WORK/llama-gptqbench-$L"
llama_config "$WORK/config-gptq-$L.json" "$L" 1024 4096 16 16
make_fake_llama "$WORK/config-gptq-$L.json" "$src"
cp "$TOK" "$src/tokenizer.model"
params=$("$MC" inspect --json "$src" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["parameters"])')
echo "modelconvert $("$MC" version)  model: $L layers, $params parameters  calibration: $SAMPLES x $SEQ tokens  threads: $THREADS"
for method in ${METHODS:-gptq awq}; do
  out="$WORK/llama-gptqbench-$L-$method"
  rm -rf "$out"
  echo "load before $method: $(load_avg)"
  /usr/bin/time -v "$MC" convert "$src" "$method" --quant 4bit --calibration-samples "$SAMPLES" --seq-len "$SEQ" \
    --threads "$THREADS" --json --force -o "$out" > "$WORK/$method.json" 2> "$WORK/time-$method.txt"
  "$PY" - "$WORK/$method.json" "$(wall_s "$WORK/time-$method.txt")" "$(cpu_s "$WORK/time-$method.txt")" \
    "$(peak_rss_mb "$WORK/time-$method.txt")" "$method" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
wall, cpu, rss, method = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
info = j["info"]
layers = info["layer_seconds"]
print(f"{method} 4-bit g128: {wall:.1f} s wall, {cpu:.1f} CPU-s, peak RSS {rss} MB | calibration "
      f"{info['calibration_seconds']:.1f} s: {len(layers)} layers, mean {sum(layers)/len(layers):.2f} s/layer "
      f"(min {min(layers):.2f}, max {max(layers):.2f})")
PY
  rm -rf "$out"
done
echo "load after: $(load_avg)"
