#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted bytes: builds the libFuzzer targets of fuzz/ with clang
# (ASan + UBSan) in build-fuzz/, makes a seed corpus per target (fuzz/seeds/<target>/ plus tiny
# models written by the plain build's modelconvert from a config), and runs each target for
# SECONDS (default 60). A finding (crash, leak, timeout, out of memory) is saved under
# build-fuzz/findings/<target>/ and makes the script fail; rerun one with
#   build-fuzz/fuzz/fuzz_<target> build-fuzz/findings/<target>/crash-...
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]     (MC_FUZZ_JOBS: build parallelism, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=${*:-"safetensors gguf pickle zip tokenizer_json config_json"}
out=build-fuzz

cmake -S . -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DMC_FUZZ=ON -DMC_BUILD_TESTS=OFF >/dev/null
# shellcheck disable=SC2046
ninja -C "$out" -j"${MC_FUZZ_JOBS:-2}" $(printf 'fuzz_%s ' $targets)

# Seeds: the committed ones, and real files of every container when a plain build exists.
corpus=$out/corpus
for t in $targets; do
  mkdir -p "$corpus/$t" "$out/findings/$t"
  cp fuzz/seeds/"$t"/* "$corpus/$t/" 2>/dev/null || true
done
mc=build/modelconvert
if [ -x "$mc" ]; then
  gen=$(mktemp -d)
  trap 'rm -rf "$gen"' EXIT
  printf '%s' '{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32, "hidden_size": 16,
    "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
    "torch_dtype": "float16"}' >"$gen/config.json"
  fw="--fake-weight --fake-weight-init random --quiet"
  # shellcheck disable=SC2086
  {
    "$mc" convert "$gen/config.json" safetensors $fw -o "$gen/st"
    "$mc" convert "$gen/config.json" gguf $fw -o "$gen/m.gguf"
    "$mc" convert "$gen/config.json" gguf --quant q8_0 $fw -o "$gen/q8.gguf"
    "$mc" convert "$gen/config.json" hf --weights-format bin $fw -o "$gen/bin"
  } || echo "note: could not make every seed model with $mc" >&2
  [ -f "$gen/st/model.safetensors" ] && cp "$gen/st/model.safetensors" "$corpus/safetensors/gen.safetensors"
  for g in "$gen"/*.gguf; do [ -f "$g" ] && cp "$g" "$corpus/gguf/"; done
  if [ -f "$gen/bin/pytorch_model.bin" ]; then
    cp "$gen/bin/pytorch_model.bin" "$corpus/zip/gen.bin"
    python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith("data.pkl"))
open(sys.argv[2], "wb").write(z.read(name))' "$gen/bin/pytorch_model.bin" "$corpus/pickle/gen.pkl" || true
  fi
else
  echo "note: no $mc: fuzzing from the committed seeds only (build the plain tree for richer seeds)" >&2
fi

status=0
for t in $targets; do
  echo "== fuzz_$t: $secs s =="
  if ! "$out/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$out/findings/$t/" "$corpus/$t" 2>"$out/fuzz_$t.log"; then
    echo "fuzz_$t: FINDING (see $out/fuzz_$t.log and $out/findings/$t/)" >&2
    tail -40 "$out/fuzz_$t.log" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$out/fuzz_$t.log" | tr '\n' ' '
    echo
  fi
done
exit $status
