#!/usr/bin/env bash
# The main job on a built-in default: install, build, make a tiny fake-weight Llama from
# examples/tiny-llama/config.json, convert it to every format we write, validate and inspect each.
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
echo "demo finished: outputs in $out/"
