#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted bytes with the libFuzzer targets of fuzz/. They are built
# in the sanitizer configuration of scripts/test.sh (build-asan: clang, ASan + UBSan, MC_FUZZ=ON;
# only the parser areas carry coverage instrumentation), configured here when absent. Each target
# runs for SECONDS (default 60) over a corpus made from fuzz/seeds/<target>/ plus tiny models
# written by modelconvert from a config (every container and reader format).
# A finding (crash, leak, timeout, out of memory) is saved under build-asan/fuzz-findings/<target>/
# and makes the script fail; rerun one with
#   build-asan/fuzz/fuzz_<target> build-asan/fuzz-findings/<target>/crash-...
# (MC_FUZZ_WORK=DIR puts corpus, findings and logs under DIR instead of build-asan/.)
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   MC_FUZZ_JOBS   build parallelism (default 2)       MC_FUZZ_PARALLEL  targets run at once (default 1)
#   MC_FUZZ_NO_BUILD=1  use the build as it is (scripts/test.sh built it already)
#   MC_FUZZ_TIMEOUT=S   seconds one input may take before it counts as a hang (default 10; the CI smoke
#                       uses 60 so a busy machine does not turn scheduling delays into findings)
#   MC_FUZZ_FRESH=1     start from the seeds only (a smoke), not from the corpus of earlier runs
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
all="safetensors gguf pickle zip tokenizer_json tokenizer_model config_json megatron onnx torchscript"
targets=${*:-$all}
out=build-asan

if [ "${MC_FUZZ_NO_BUILD:-0}" != 1 ]; then
  if ! grep -q '^MC_FUZZ:BOOL=ON' "$out/CMakeCache.txt" 2>/dev/null; then
    if [ -f "$out/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' "$out/CMakeCache.txt"; then
      rm -rf "$out/CMakeCache.txt" "$out/CMakeFiles"  # configured with gcc before
    fi
    cmake -S . -B "$out" -G Ninja -DMC_FUZZ=ON -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
      -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" >/dev/null
  fi
  # shellcheck disable=SC2046
  ninja -C "$out" -j"${MC_FUZZ_JOBS:-2}" $(printf 'fuzz_%s ' $targets)
fi

# Seeds: the committed ones, and real files of every format written by modelconvert (the plain
# build's when there is one: faster than the sanitizer build's).
work=${MC_FUZZ_WORK:-$out}
corpus=$work/fuzz-corpus
for t in $targets; do
  [ "${MC_FUZZ_FRESH:-0}" = 1 ] && rm -rf "${corpus:?}/$t"
  mkdir -p "$corpus/$t" "$work/fuzz-findings/$t"
  cp fuzz/seeds/"$t"/* "$corpus/$t/" 2>/dev/null || true
done
mc=build/modelconvert
[ -x "$mc" ] || mc=$out/modelconvert
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
    "$mc" convert "$gen/config.json" megatron $fw -o "$gen/meg"
    "$mc" convert "$gen/config.json" onnx $fw -o "$gen/onnx"
    "$mc" convert "$gen/config.json" torchscript $fw -o "$gen/ts.pt"
  } || echo "note: could not make every seed model with $mc" >&2
  cpif() { if [ -f "$1" ] && [ -d "$corpus/$2" ]; then cp "$1" "$corpus/$2/$3"; fi; }
  cpif "$gen/st/model.safetensors" safetensors gen.safetensors
  cpif "$gen/m.gguf" gguf gen.gguf
  cpif "$gen/q8.gguf" gguf gen-q8.gguf
  cpif "$gen/bin/pytorch_model.bin" zip gen.bin
  cpif "$(find "$gen/meg" -name model_optim_rng.pt 2>/dev/null | head -1)" megatron gen.pt
  cpif "$gen/onnx/onnx/model.onnx" onnx gen.onnx
  cpif "$gen/ts.pt" torchscript gen.pt
  if [ -f "$gen/bin/pytorch_model.bin" ] && [ -d "$corpus/pickle" ]; then
    python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith("data.pkl"))
open(sys.argv[2], "wb").write(z.read(name))' "$gen/bin/pytorch_model.bin" "$corpus/pickle/gen.pkl" || true
  fi
else
  echo "note: no modelconvert built: fuzzing from the committed seeds only" >&2
fi

run_one() {
  local t=$1
  if ! "$out/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout="${MC_FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$work/fuzz-findings/$t/" "$corpus/$t" >"$work/fuzz_$t.log" 2>&1; then
    echo "fuzz_$t: FINDING (see $work/fuzz_$t.log and $work/fuzz-findings/$t/)" >&2
    tail -40 "$work/fuzz_$t.log" >&2
    return 1
  fi
  # The last status line (cov, ft, corpus) and the executions.
  echo "fuzz_$t: $secs s, $(grep -E '^stat::number_of_executed_units' "$work/fuzz_$t.log" | awk '{print $2}') runs," \
       "$(grep -E '#[0-9]+' "$work/fuzz_$t.log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*')," \
       "$(ls "$work/fuzz-findings/$t" | wc -l) findings"
}

status=0
par=${MC_FUZZ_PARALLEL:-1}
pids=()
for t in $targets; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$par" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
