#!/usr/bin/env bash
# Benchmark of the performance issue, every ratio against its baseline measured in the same run:
#   write   HF bf16 -> GGUF f16, GGUF q8_0 and MLX 4-bit against `cp` of the same input (warm
#           cache; f16 also cold when /proc/sys/vm/drop_caches is writable), peak RSS;
#   kquant  HF bf16 -> GGUF k-quants against llama-quantize on the same weights as a bf16 GGUF,
#           same thread count, every tensor compared byte for byte (bench/gguf_diff.py);
#   fake    --fake-weight --fake-weight-init random: output bytes per second per core;
#   rss     peak RSS of GGUF f16 and q4_k_m and MLX 4-bit at twice the model size (flat in model size?).
# Each line gives wall seconds and CPU seconds (user + sys, GNU time) of both sides and the
# ratios of both: on a machine shared with other jobs only the CPU-time ratio means something,
# so the load averages before and after are printed too.
#
# Usage: bench/perf_bench.sh [build/modelconvert] [workdir] [llama-quantize binary]
#   (without a llama-quantize binary the k-quant lines give our times only)
# Environment:
#   MC_BENCH_GB=0.8    bf16 input size (whole layers of a 2048-wide Llama: 0.8 GB = 6 layers)
#   THREADS=N          threads for both modelconvert and llama-quantize (default: nproc)
#   PARTS="write kquant fake rss"   which parts to run
#   KQUANTS="q2_k q3_k_m q4_k_m q5_k_m q6_k"   the k-quant file types compared
#   COLD=0             skip the cold-cache f16 run even when caches can be dropped
#   REPS=3             runs of each write conversion and of the fake weights (the fastest counts)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "${1:-}" "${2:-}"
LQ=${3:-}
[ -n "$LQ" ] && LQ=$(realpath "$LQ")
THREADS=${THREADS:-$(nproc)}
PARTS=${PARTS:-write kquant fake rss}
KQUANTS=${KQUANTS:-q2_k q3_k_m q4_k_m q5_k_m q6_k}
REPS=${REPS:-3}
has() { [[ " $PARTS " == *" $1 "* ]]; }

layers_for() {  # GB -> layers of the 2048-wide Llama (45.1 M params per layer, 131 M outside)
  "$PY" -c "print(max(1, round((float('$1') * 1e9 / 2 - 2 * 32000 * 2048) / (2*2048*2048 + 2*2048*512 + 3*2048*5632 + 2*2048))))"
}
make_model() {  # $1 = layers; prints the model directory
  local L=$1 dir="$WORK/perf-src-${1}L" cfg="$WORK/perf-cfg-${1}L"
  if [ ! -f "$dir/model.safetensors.index.json" ]; then
    llama_config "$cfg/config.json" "$L" >&2
    local tokm="$ROOT/../shared/fixtures/tokenizers/llama2-spm/tokenizer.model"
    [ -f "$tokm" ] && cp "$tokm" "$cfg/"
    make_fake_llama "$cfg/config.json" "$dir" >&2
  fi
  echo "$dir"
}

LAYERS=$(layers_for "${MC_BENCH_GB:-0.8}")
SRC=$(make_model "$LAYERS")
BYTES=$(cat "$SRC"/*.safetensors | wc -c)
can_drop=0
if [ "${COLD:-1}" = 1 ] && (sync && echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then can_drop=1; fi

echo "modelconvert $("$MC" version 2>/dev/null | head -1)  threads: $THREADS  cores: $(nproc)  k-quant kernels: ${MC_QUANT_ISA:-default (widest available)}"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  load before: $(load_avg)"
echo "input: $SRC  $LAYERS layers, $(awk -v b="$BYTES" 'BEGIN{printf "%.3f", b/1e9}') GB bf16 safetensors"

prepare() {  # $1 = warm | cold: the input's page-cache state; pending writes are flushed first
  sync
  if [ "$1" = cold ]; then echo 3 > /proc/sys/vm/drop_caches; else cat "$SRC"/*.safetensors > /dev/null; fi
}
# Runs a command under GNU time into $1; the rest is the command.
timed() { local tf=$1; shift; /usr/bin/time -v "$@" 2> "$tf" > /dev/null; }
fields() { echo "$(wall_s "$1") $(cpu_s "$1") $(peak_rss_mb "$1")"; }

cp_run() {  # $1 = cache state; prints "wall cpu" of cp of the input shards into a fresh directory
  local d="$WORK/perf-cp"
  rm -rf "$d" && mkdir -p "$d"
  prepare "$1"
  timed "$WORK/time-cp.txt" cp "$SRC"/model-*.safetensors "$d"/
  rm -rf "$d"
  echo "$(wall_s "$WORK/time-cp.txt") $(cpu_s "$WORK/time-cp.txt")"
}

# Conversions against cp, alternating (cp, ours) REPS times then a last cp; each side's fastest
# run by wall time is compared (the machine's noise only ever adds time), and every run's wall
# time is printed.
vs_cp() {  # $1 = label, $2 = cache state, $3 = format, $4 = goal, rest = flags
  local label=$1 st=$2 fmt=$3 goal=$4
  shift 4
  local out="$WORK/perf-out-$fmt" cps=() ours=() i
  for ((i = 0; i < REPS; i++)); do
    cps+=("$(cp_run "$st")")
    rm -rf "$out"
    prepare "$st"
    timed "$WORK/time-ours.txt" "$MC" convert "$SRC" "$fmt" --threads "$THREADS" --force --quiet -o "$out" "$@"
    ours+=("$(fields "$WORK/time-ours.txt")")
    rm -rf "$out"
  done
  cps+=("$(cp_run "$st")")
  "$PY" - "$label" "$st" "$goal" "$BYTES" "${#cps[@]}" "${cps[@]}" "${ours[@]}" <<'PY'
import sys
label, st, goal = sys.argv[1:4]
b = float(sys.argv[4]); n = int(sys.argv[5])
rest = [v for a in sys.argv[6:] for v in a.split()]
cps = [tuple(map(float, rest[2 * i:2 * i + 2])) for i in range(n)]
ours = [tuple(map(float, rest[2 * n + 3 * i:2 * n + 3 * i + 3])) for i in range((len(rest) - 2 * n) // 3)]
cw, cc = min(cps)
w, c, rss = min(ours)
runs = lambda xs: ", ".join(f"{x[0]:.2f}" for x in xs)
print(f"{label:10} {st:4} | ours {w:5.2f} s wall {c:5.2f} s cpu {b/1e9/w:5.2f} GB/s (runs {runs(ours)}) | cp {cw:5.2f} s wall "
      f"{cc:5.2f} s cpu (runs {runs(cps)}) | ratio vs cp: wall {cw/w:4.2f}x, cpu {cc/c:4.2f}x "
      f"(goal >= {goal}x) | peak RSS {rss:.0f} MB")
PY
}

if has write; then
  echo "== writes (HF bf16 in, ratio = cp time / our time; higher is better)"
  vs_cp "GGUF f16" warm gguf 0.7
  vs_cp "GGUF q8_0" warm gguf 0.5 --quant q8_0
  vs_cp "MLX 4-bit" warm mlx 0.5 --quant 4bit
  if [ $can_drop = 1 ]; then
    vs_cp "GGUF f16" cold gguf 0.7
  else
    echo "(cold cache skipped: /proc/sys/vm/drop_caches is not writable or COLD=0)"
  fi
fi

if has kquant; then
  echo "== k-quants (ratio = llama-quantize time / our time, same $THREADS threads, warm cache)"
  BF16="$WORK/perf-src-${LAYERS}L-bf16.gguf"
  if [ -n "$LQ" ] && [ ! -f "$BF16" ]; then
    "$MC" convert "$SRC" gguf --quant bf16 --force --quiet -o "$BF16"
  fi
  for q in $KQUANTS; do
    ours_out="$WORK/perf-ours-$q.gguf"
    rm -f "$ours_out"
    prepare warm
    timed "$WORK/time-ours.txt" "$MC" convert "$SRC" gguf --quant "$q" --threads "$THREADS" --force --quiet -o "$ours_out"
    ours=$(fields "$WORK/time-ours.txt")
    if [ -n "$LQ" ]; then
      lq_out="$WORK/perf-lq-$q.gguf"
      rm -f "$lq_out"
      cat "$BF16" > /dev/null
      timed "$WORK/time-lq.txt" "$LQ" "$BF16" "$lq_out" "$(echo "$q" | tr a-z A-Z)" "$THREADS"
      theirs=$(fields "$WORK/time-lq.txt")
      same=$("$PY" "$ROOT/bench/gguf_diff.py" "$lq_out" "$ours_out" || true)
      rm -f "$lq_out"
    else
      theirs="0 0 0"
      same="(no llama-quantize given: pass its path as the third argument)"
    fi
    rm -f "$ours_out"
    "$PY" - "$q" $ours $theirs "$same" <<'PY'
import sys
q = sys.argv[1]
w, c, rss, lw, lc, lrss = map(float, sys.argv[2:8])
same = sys.argv[8]
if lw > 0:
    print(f"{q:7} | ours {w:6.2f} s wall {c:6.2f} s cpu, RSS {rss:.0f} MB | llama-quantize {lw:6.2f} s wall "
          f"{lc:6.2f} s cpu, RSS {lrss:.0f} MB | ratio: wall {lw/w:4.2f}x, cpu {lc/c:4.2f}x (goal >= 3x) | {same}")
else:
    print(f"{q:7} | ours {w:6.2f} s wall {c:6.2f} s cpu, RSS {rss:.0f} MB | {same}")
PY
  done
fi

if has fake; then
  echo "== fake weights (random init, the same model as above, bf16 safetensors; fastest of $REPS runs)"
  out="$WORK/perf-fake"
  runs=()
  for ((i = 0; i < REPS; i++)); do
    rm -rf "$out"
    sync
    timed "$WORK/time-fake.txt" "$MC" convert "$WORK/perf-cfg-${LAYERS}L/config.json" safetensors --fake-weight \
      --fake-weight-init random --seed 7 --threads "$THREADS" --force --quiet -o "$out"
    runs+=("$(fields "$WORK/time-fake.txt")")
  done
  fb=$(cat "$out"/*.safetensors | wc -c)
  rm -rf "$out"
  "$PY" - "$fb" "$THREADS" "${runs[@]}" <<'PY'
import sys
b, th = float(sys.argv[1]), float(sys.argv[2])
runs = [tuple(map(float, r.split())) for r in sys.argv[3:]]
w, c, rss = min(runs)
each = ", ".join(f"{r[0]:.2f}/{r[1]:.2f}" for r in runs)
print(f"{b/1e9:.2f} GB in {w:.2f} s wall, {c:.2f} s cpu (runs, wall/cpu s: {each}) | {b/1e9/c:5.2f} GB/s per cpu-second, "
      f"{b/1e9/w/th:5.2f} GB/s per thread by wall ({th:.0f} threads) (goal >= 1 GB/s per core) | peak RSS {rss:.0f} MB")
PY
fi

if has rss; then
  L2=$((LAYERS * 2))
  echo "== peak RSS at twice the size ($L2 layers): flat in model size?"
  SRC2=$(make_model "$L2")
  for fq in gguf:f16 gguf:q4_k_m mlx:4bit; do
    fmt=${fq%%:*} q=${fq#*:}
    out="$WORK/perf-rss-out"
    rm -rf "$out"
    timed "$WORK/time-rss.txt" "$MC" convert "$SRC2" "$fmt" --quant "$q" --threads "$THREADS" --force --quiet -o "$out"
    rm -rf "$out"
    echo "$fmt $q: peak RSS $(peak_rss_mb "$WORK/time-rss.txt") MB at $(awk -v b="$(cat "$SRC2"/*.safetensors | wc -c)" 'BEGIN{printf "%.2f", b/1e9}') GB (goal <= 300 MB)"
  done
fi
echo "load after: $(load_avg)"
