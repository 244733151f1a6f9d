#!/usr/bin/env bash
# Benchmark of the ONNX export: a generated bf16 Llama (HF safetensors, random weights, ~1.5 GB)
#   (a) -> ONNX fp16 (model_fp16.onnx, weights inline: one 1.5 GB protobuf written in place);
#   (b) -> ONNX fp32 (model.onnx + 3 GB model.onnx_data: past protobuf's 2 GB, so external);
# each with seconds, GB/s of output, peak RSS, against `cp` of the same input bytes in the same
# run (warm page cache). Then (c), the >2 GB check: onnxruntime (npm onnxruntime-node) loads the
# fp32 export and its logits on 12 ids must match the reference runtime's on the source within
# 1e-4 x the logit range (skipped when node_modules is missing, or with SKIP_ORT=1).
# Usage: bench/onnx_bench.sh [build/modelconvert] [workdir]
# Environment: MC_BENCH_GB=1.5 (input size), THREADS=N (default nproc), SKIP_ORT=1
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "$@"
THREADS=${THREADS:-$(nproc)}

HID=2048 FFN=5632 HEADS=32 KV=8
LAYERS=$($PY -c "
gb = float('${MC_BENCH_GB:-1.5}')
per = 2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 5632 + 2 * 2048
print(max(1, round((gb * 1e9 / 2 - 2 * 32000 * 2048) / per)))")
SRC="$WORK/onnx-src-${LAYERS}L"
CFG="$WORK/onnx-cfg-${LAYERS}L"
if [ ! -f "$SRC/model.safetensors.index.json" ]; then
  llama_config "$CFG/config.json" "$LAYERS" $HID $FFN $HEADS $KV
  make_fake_llama "$CFG/config.json" "$SRC"
fi
BYTES=$(cat "$SRC"/*.safetensors | wc -c)

now() { date +%s.%N; }
warm() { sync; cat "$SRC"/*.safetensors > /dev/null; }
cp_once() {
  local d="$WORK/onnx-cp"
  rm -rf "$d" && mkdir -p "$d"
  warm
  local t0 t1
  t0=$(now); cp "$SRC"/*.safetensors "$d"/; t1=$(now)
  rm -rf "$d"
  $PY -c "print($t1 - $t0)"
}
ours() {  # $1 = output dir, $2 = time file, rest = flags
  local out=$1 tf=$2
  shift 2
  rm -rf "$out"
  warm
  /usr/bin/time -v "$MC" convert "$SRC" onnx --threads "$THREADS" --force --quiet -o "$out" "$@" 2> "$tf"
}
report() {  # $1 = label, $2 = output dir, $3 = time file, $4/$5 = cp runs
  $PY - "$1" "$BYTES" "$(du -sb "$2/onnx" | cut -f1)" "$(wall_s "$3")" "$(peak_rss_mb "$3")" "$(cpu_s "$3")" "$4" "$5" <<'PY'
import sys
label = sys.argv[1]
b, ob, t, rss, cpu, c1, c2 = map(float, sys.argv[2:9])
cp = min(c1, c2)
print(f"{label} | {b/1e9:5.2f} GB in, {ob/1e9:5.2f} GB out | modelconvert {t:6.2f} s, {ob/1e9/t:5.2f} GB/s out, "
      f"cpu {cpu:6.2f} s | cp of the input {cp:5.2f} s (runs {c1:.2f}, {c2:.2f}) | ratio vs cp {cp/t:4.2f}x | "
      f"peak RSS {rss:.0f} MB")
PY
}

echo "modelconvert $("$MC" version 2>/dev/null || echo '?')  threads: $THREADS  cores: $(nproc)  load: $(load_avg)"
echo "input: $SRC  $LAYERS layers, $(awk -v b="$BYTES" 'BEGIN{printf "%.3f", b/1e9}') GB bf16"
c1=$(cp_once)
ours "$WORK/onnx-fp16" "$WORK/time-onnx-fp16.txt" --dtype fp16
c2=$(cp_once)
report "(a) bf16 HF -> ONNX fp16 (inline)" "$WORK/onnx-fp16" "$WORK/time-onnx-fp16.txt" "$c1" "$c2"
rm -rf "$WORK/onnx-fp16"
c1=$(cp_once)
ours "$WORK/onnx-fp32" "$WORK/time-onnx-fp32.txt"
c2=$(cp_once)
report "(b) bf16 HF -> ONNX fp32 (external data)" "$WORK/onnx-fp32" "$WORK/time-onnx-fp32.txt" "$c1" "$c2"
ls -l "$WORK/onnx-fp32/onnx"

if [ "${SKIP_ORT:-0}" != 1 ] && [ -f "$ROOT/node_modules/onnxruntime-node/package.json" ]; then
  IDS=1,450,4996,17354,1701,29916,432,17204,975,278,17366,11203
  "$MC" check "$SRC" --ids $IDS --max-new-tokens 1 --dump-logits "$WORK/onnx-ref-logits.json" > /dev/null
  /usr/bin/time -v node "$ROOT/tests/js/onnx_ort.mjs" $IDS 4,5 6 "$WORK/onnx-fp32/onnx/model.onnx" \
    > "$WORK/onnx-ort.json" 2> "$WORK/time-onnx-ort.txt"
  $PY - "$WORK/onnx-ref-logits.json" "$WORK/onnx-ort.json" "$(wall_s "$WORK/time-onnx-ort.txt")" \
    "$(peak_rss_mb "$WORK/time-onnx-ort.txt")" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))
ref = ref["logits_all"]
ort = next(iter(json.loads(open(sys.argv[2]).read().splitlines()[-1]).values()))["full"]
d = max(abs(a - b) for ra, rb in zip(ref, ort) for a, b in zip(ra, rb))
rng = max(max(r) for r in ref) - min(min(r) for r in ref)
ok = d <= 1e-4 * max(1.0, rng)
print(f"(c) onnxruntime on the >2 GB fp32 export: max |dlogit| vs reference runtime {d:.2e} "
      f"(range {rng:.2f}) -> {'PASS' if ok else 'FAIL'} | node wall {float(sys.argv[3]):.1f} s, peak RSS {float(sys.argv[4]):.0f} MB")
sys.exit(0 if ok else 1)
PY
fi
rm -rf "$WORK/onnx-fp32"
echo "load after: $(load_avg)"
