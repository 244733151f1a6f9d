#!/usr/bin/env bash
# The main job on a built-in default: install, build, make a tiny fake-weight Llama from
# examples/tiny-llama/config.json, convert it to every format we write, validate each, and run
# each output in the reference runtime against the source (check --compare: PASS or FAIL).
set -euo pipefail
cd "$(dirname "$0")/.."
MC_SKIP_NPM=${MC_SKIP_NPM:-1} bash scripts/install-deps.sh
bash scripts/build.sh build
mc=build/modelconvert
out=${MC_DEMO_OUT:-demo-out}
rm -rf "$out" && mkdir -p "$out"

echo "== a tiny Llama with random weights, from config.json alone"
$mc convert examples/tiny-llama/config.json safetensors --fake-weight --fake-weight-init random --seed 7 -o "$out/tiny"
$mc inspect "$out/tiny"

for fmt in $($mc list formats --json | python3 -c 'import json,sys; print(" ".join(r["id"] for r in json.load(sys.stdin) if r["write"]))'); do
  case "$fmt" in
    gguf) target="$out/tiny.gguf" ;;
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
for t in "$out/tiny-hf" "$out/tiny-pytorch" "$out/tiny.gguf" "$out/tiny-mlx" "$out/tiny-megatron" "$out/tiny-fp16"; do
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
echo "demo finished: outputs in $out/"
