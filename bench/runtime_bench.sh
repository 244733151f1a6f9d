#!/usr/bin/env bash
# Benchmark of the reference-runtime issue: prompt processing and generation tokens/s of
# `modelconvert check` on a ~1B-parameter f16 Llama GGUF (random weights, the Llama 2 vocabulary),
# next to llama.cpp (node-llama-cpp's CPU build) on the same file, same threads, same prompt
# length and number of generated tokens, in the same run. Goal: ours within 3x of llama.cpp.
# Usage: bench/runtime_bench.sh [build/modelconvert] [workdir]
# Environment:
#   MC_BENCH_MODEL=1b|250m|100m  model size (default 1b: TinyLlama's shape, 1.1 B parameters)
#   PROMPT_LEN=128  GEN=16       prompt tokens and generated tokens
#   THREADS=N                    threads for both engines (default: nproc)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "$@"
THREADS=${THREADS:-$(nproc)}
PROMPT_LEN=${PROMPT_LEN:-128}
GEN=${GEN:-16}
SIZE=${MC_BENCH_MODEL:-1b}

case $SIZE in
  1b)   HID=2048 FFN=5632 HEADS=32 KV=4 LAYERS=22 ;;
  250m) HID=1024 FFN=2816 HEADS=16 KV=4 LAYERS=16 ;;
  100m) HID=768 FFN=2048 HEADS=12 KV=12 LAYERS=8 ;;
  *) echo "MC_BENCH_MODEL must be 1b, 250m or 100m" >&2; exit 2 ;;
esac
CFG="$WORK/rt-cfg-$SIZE"
GGUF="$WORK/rt-$SIZE-f16.gguf"
TOKM="$ROOT/../shared/fixtures/tokenizers/llama2-spm/tokenizer.model"
if [ ! -f "$GGUF" ]; then
  mkdir -p "$CFG"
  llama_config "$CFG/config.json" $LAYERS $HID $FFN $HEADS $KV float16
  # llama.cpp refuses a GGUF without a vocabulary.
  if [ -f "$TOKM" ]; then cp "$TOKM" "$CFG/"; else echo "note: $TOKM absent, llama.cpp will not load the model"; fi
  "$MC" convert "$CFG/config.json" gguf --fake-weight --fake-weight-init random --seed 1 --force --quiet -o "$GGUF"
fi

# Token 1 (BOS) then ids spread over the vocabulary, away from the byte and control pieces.
IDS=$($PY -c "print(','.join(['1'] + [str(259 + (i * 7919) % 31700) for i in range(1, $PROMPT_LEN)]))")
ONE=1
cat "$GGUF" > /dev/null  # warm page cache for both engines

echo "modelconvert $("$MC" version 2>/dev/null || echo '?')  threads: $THREADS  cores: $(nproc)"
echo "load before: $(load_avg)"
if awk -v c="$(nproc)" '{ exit !($1 > c) }' /proc/loadavg; then
  echo "note: the load is above the core count; llama.cpp's spinning thread barriers slow down far more than"
  echo "      our pool when cores are oversubscribed, so its figures (and the ratio) are pessimistic: compare THREADS=1 too"
fi
$PY - "$GGUF" <<'PY'
import os, sys
print(f"model: {sys.argv[1]}  {os.path.getsize(sys.argv[1]) / 1e9:.2f} GB f16")
PY

run_ours() {  # $1 = ids, $2 = new tokens, $3 = tag; prints the JSON to WORK/rt-$3.json
  /usr/bin/time -v "$MC" check "$GGUF" --ids "$1" --max-new-tokens "$2" --threads "$THREADS" --json \
    > "$WORK/rt-$3.json" 2> "$WORK/rt-time-$3.txt"
}
# C: the prompt, then GEN cached steps (GEN + 1 new tokens: the first comes from the prompt's
# logits). When `check --json` reports no "timings", two more runs separate the phases:
# A: load + one token; B: load + prompt; and C is then load + prompt + (prompt + GEN steps),
# since that `check` runs forward_all over the prompt and then greedy decoding, which reruns it.
run_ours "$IDS" $((GEN + 1)) C
if ! grep -q '"timings"' "$WORK/rt-C.json"; then
  run_ours "$ONE" 0 A
  run_ours "$IDS" 0 B
fi

LCPP="{}"
if [ -d node_modules/node-llama-cpp ]; then
  if ! LCPP=$(node bench/llama_cpp_bench.mjs "$GGUF" "$IDS" "$GEN" "$THREADS" 2> "$WORK/rt-llama-cpp.err" | tail -1); then
    echo "llama.cpp run failed: $(tail -3 "$WORK/rt-llama-cpp.err")"
    LCPP="{}"
  fi
else
  echo "node_modules/node-llama-cpp absent (npm ci): no llama.cpp figures"
fi

$PY - "$WORK" "$PROMPT_LEN" "$GEN" "$THREADS" "$LCPP" <<'PY'
import json, re, sys
work, P, N, T, lcpp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])

def tv(tag):
    t = open(f"{work}/rt-time-{tag}.txt").read()
    h, m, s = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", t).groups()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
    return int(h or 0) * 3600 + int(m) * 60 + float(s), rss

c, rss = tv("C")
rep = json.load(open(f"{work}/rt-C.json"))
tm = rep.get("timings")
if tm:  # check --json reports its own timings
    load, prompt_s, gen_s = tm["load_s"], tm["prompt_s"], tm["generate_s"]
    n_steps = tm.get("generated_steps", N)
    how = "from check --json timings"
else:
    (a, _), (b, _) = tv("A"), tv("B")
    # A = L + s, B = L + p, C = L + 2p + N s  (L load, p prompt pass, s one cached step)
    s = (c - 2 * b + a) / (N + 1)
    prompt_s = b - a + s
    gen_s, n_steps, load = N * s, N, a - s
    how = "derived from 3 whole-command timings (load+1 token, load+prompt, load+prompt+prompt+steps)"
ours_pp, ours_tg = P / prompt_s, n_steps / gen_s
print(f"ours       ({how}): load {load:6.2f} s | prompt {P} tokens {prompt_s:7.2f} s = {ours_pp:7.2f} tok/s | "
      f"generation {n_steps} tokens {gen_s:7.2f} s = {ours_tg:6.2f} tok/s | whole check {c:.2f} s | peak RSS {rss:.0f} MB")
print(f"ours greedy ids: {rep.get('greedy_ids', [])[:8]}")
if lcpp:
    print(f"llama.cpp  (node-llama-cpp, {lcpp['threads']} threads): load {lcpp['load_s']:6.2f} s | prompt {P} tokens "
          f"{lcpp['prompt_s']:7.2f} s = {lcpp['prompt_tok_s']:7.2f} tok/s | generation {N} tokens {lcpp['gen_s']:7.2f} s = "
          f"{lcpp['gen_tok_s']:6.2f} tok/s")
    print(f"llama.cpp greedy ids: {lcpp['greedy_ids']}")
    print(f"ratio llama.cpp / ours: prompt {lcpp['prompt_tok_s'] / ours_pp:5.2f}x, generation "
          f"{lcpp['gen_tok_s'] / ours_tg:5.2f}x (goal <= 3x)")
PY
echo "load after: $(load_avg)"
