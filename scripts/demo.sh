#!/usr/bin/env bash
# The main job on a built-in default: install, build, make a tiny fake-weight Llama from
# examples/tiny-llama/config.json, convert it to every format we write, validate each, and run
# each output in the reference runtime against the source (check --compare: PASS or FAIL).
# Builds only the program (its own build-demo/ folder, no test programs, no Python module) and
# prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=()
step_t0=$EPOCHREALTIME
step() {  # closes the step running since the previous call, under the name given
  local now=$EPOCHREALTIME line
  line=$(awk -v a="$step_t0" -v b="$now" -v n="$1" 'BEGIN { printf "%-34s %7.1f s", n, b - a }')
  steps+=("$line")
  echo "-- $line"
  step_t0=$now
}
MC_DEPS=build MC_SKIP_NPM=1 bash scripts/install-deps.sh
step "install build dependencies"
bdir=${MC_DEMO_BUILD:-build-demo}
# -O2 as the other builds (GCC 12's -O3 warns falsely in <string>, and warnings are errors); no -g.
cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
  -DMC_BUILD_TESTS=OFF -DMC_BUILD_PYTHON=OFF >/dev/null
step "configure (no tests)"
ninja -C "$bdir" -j"$(nproc)" modelconvert
step "build modelconvert"
mc=$bdir/modelconvert
out=${MC_DEMO_OUT:-demo-out}
rm -rf "$out" && mkdir -p "$out"
trap 'echo "== time per step"; printf "%s\n" "${steps[@]}"' EXIT

echo "== a tiny Llama with random weights, from config.json alone"
$mc convert examples/tiny-llama/config.json safetensors --fake-weight --fake-weight-init random --seed 7 -o "$out/tiny"
$mc inspect "$out/tiny"

for fmt in $($mc list formats --json | python3 -c 'import json,sys; print(" ".join(r["id"] for r in json.load(sys.stdin) if r["write"]))'); do
  case "$fmt" in
    gguf) target="$out/tiny.gguf" ;;
    torchscript) target="$out/tiny.pt" ;;
    gptq|awq)
      # Calibration text is tokenized with the model's own tokenizer; this config-only model has none.
      echo "== $fmt skipped: it calibrates on text and the demo model has no tokenizer (add tokenizer files, or --tokenizer FILE)"
      continue ;;
    mtk)
      echo "== mtk skipped: it runs MediaTek's mtk_cloud toolkit (MTK_CLOUD_PATH), which is not installed here"
      continue ;;
    *) target="$out/tiny-$fmt" ;;
  esac
  echo "== convert to $fmt"
  $mc convert "$out/tiny" "$fmt" -o "$target"
  $mc validate "$target"
done
echo "== cast to fp16 and validate"
$mc convert "$out/tiny" safetensors --dtype fp16 -o "$out/tiny-fp16"
$mc validate "$out/tiny-fp16"
echo "== run every output in the reference runtime and compare it with the source"
for t in "$out/tiny-hf" "$out/tiny-pytorch" "$out/tiny.gguf" "$out/tiny-onnx" "$out/tiny.pt" "$out/tiny-mlx" "$out/tiny-megatron" "$out/tiny-fp16"; do
  printf '%-32s ' "$t"
  $mc check "$t" --compare "$out/tiny" --ids 1,2,3,4,5,6,7,8 --max-new-tokens 4 | tail -1
done
echo "== quantize to GGUF q8_0 in one step, then run it against the source"
$mc convert "$out/tiny" gguf --quant q8_0 --check -o "$out/tiny-q8_0.gguf" | tail -1
$mc convert "$out/tiny" gguf --quant q4_k_m --check -o "$out/tiny-q4_k_m.gguf" | tail -1
echo "== MLX 4-bit and Megatron TP=2 PP=2, each run against the source"
$mc convert "$out/tiny" mlx --quant 4bit --check -o "$out/tiny-mlx-4bit" | tail -1
$mc convert "$out/tiny" hf2megatron --tp 2 --pp 2 --check -o "$out/tiny-megatron-tp2pp2" | tail -1
$mc inspect "$out/tiny-megatron-tp2pp2"
step "convert, validate and check the demo"
echo "demo finished: outputs in $out/"
