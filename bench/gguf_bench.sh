#!/usr/bin/env bash
# Benchmark of the GGUF issue: a generated bf16 Llama (HF safetensors, random weights) converted
#   (a) to GGUF f16 (the default): seconds, GB/s of input, ratio to `cp` of the same bytes in the
#       same run (goal >= 0.7x), peak RSS;
#   (b) to GGUF q4_k_m in one step: seconds, MB/s of f32-equivalent input per core
#       (elements x 4 bytes / seconds / threads), peak RSS.
# Usage: bench/gguf_bench.sh [build/modelconvert] [workdir]
# Environment:
#   MC_BENCH_GB=1.5      size of the bf16 input in GB (rounded to whole layers of a 2048-wide Llama)
#   SMALL=1              a ~100 MB model (512 wide, 4 layers) for a quick try
#   CACHE=warm|cold|both page cache state for both contenders (default: both when
#                        /proc/sys/vm/drop_caches is writable, else warm)
#   THREADS=N            worker threads for modelconvert (default: nproc)
#   SKIP_Q4=1            run (a) only
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "$@"
THREADS=${THREADS:-$(nproc)}

if [ "${SMALL:-0}" = 1 ]; then
  # 512 wide, ffn 1536 (a multiple of 256, so q4_k_m keeps the k-quant types), 4 layers: ~91 MB.
  HID=512 FFN=1536 HEADS=8 KV=8 LAYERS=4 TAG=small
else
  # 2048 wide, ffn 5632, 32 heads (8 kv), vocab 32000: 45.1 M params per layer, 131 M in the
  # embedding and output matrices; 14 layers are ~1.52 GB of bf16.
  HID=2048 FFN=5632 HEADS=32 KV=8
  LAYERS=$($PY -c "
gb = float('${MC_BENCH_GB:-1.5}')
per = 2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 5632 + 2 * 2048
print(max(1, round((gb * 1e9 / 2 - 2 * 32000 * 2048) / per)))")
  TAG=${LAYERS}L
fi
SRC="$WORK/gguf-src-$TAG"
CFG="$WORK/gguf-cfg-$TAG"

if [ ! -f "$SRC/model.safetensors.index.json" ] && [ ! -f "$SRC/model.safetensors" ]; then
  llama_config "$CFG/config.json" "$LAYERS" $HID $FFN $HEADS $KV
  # A real 32000-piece vocabulary when the fixture is there, so the GGUF is complete.
  TOKM="$ROOT/../shared/fixtures/tokenizers/llama2-spm/tokenizer.model"
  [ -f "$TOKM" ] && cp "$TOKM" "$CFG/"
  make_fake_llama "$CFG/config.json" "$SRC"
fi

BYTES=$(cat "$SRC"/*.safetensors | wc -c)
ELEMS=$($PY - "$SRC" <<'PY'
import json, struct, sys, glob
n = 0
for f in glob.glob(sys.argv[1] + "/*.safetensors"):
    with open(f, "rb") as fh:
        hl = struct.unpack("<Q", fh.read(8))[0]
        h = json.loads(fh.read(hl))
    for k, v in h.items():
        if k == "__metadata__":
            continue
        e = 1
        for d in v["shape"]:
            e *= d
        n += e
print(n)
PY
)

can_drop=0
if (sync && echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then can_drop=1; fi
MODE=${CACHE:-$([ $can_drop = 1 ] && echo both || echo warm)}
if [ "$MODE" != warm ] && [ $can_drop = 0 ]; then
  echo "cannot write /proc/sys/vm/drop_caches: running warm only"
  MODE=warm
fi

now() { date +%s.%N; }
# Puts the input in the requested cache state; writes of the previous step are flushed first
# so their write-back does not land in the next measurement.
prepare() {  # $1 = warm | cold
  sync
  if [ "$1" = cold ]; then echo 3 > /proc/sys/vm/drop_caches; else cat "$SRC"/*.safetensors > /dev/null; fi
}
cp_once() {  # $1 = cache state; prints seconds
  local d="$WORK/gguf-cp"
  rm -rf "$d" && mkdir -p "$d"
  prepare "$1"
  local t0 t1
  t0=$(now); cp "$SRC"/*.safetensors "$d"/; t1=$(now)
  rm -rf "$d"
  $PY -c "print($t1 - $t0)"
}
# GNU cp copies with copy_file_range (page cache to page cache inside the kernel); a converter
# must read, convert and write through user space, as `cat` does: that is the second baseline.
cat_once() {  # $1 = cache state; prints seconds
  local d="$WORK/gguf-cat"
  rm -rf "$d" && mkdir -p "$d"
  prepare "$1"
  local t0 t1
  t0=$(now); cat "$SRC"/*.safetensors > "$d/all"; t1=$(now)
  rm -rf "$d"
  $PY -c "print($t1 - $t0)"
}

ours() {  # $1 = cache state, $2 = output, $3 = time file, rest = extra flags
  local st=$1 out=$2 tf=$3
  shift 3
  rm -f "$out"
  prepare "$st"
  /usr/bin/time -v "$MC" convert "$SRC" gguf --threads "$THREADS" --force --quiet -o "$out" "$@" 2> "$tf"
}

echo "modelconvert $("$MC" version 2>/dev/null || echo '?')  threads: $THREADS  cores: $(nproc)  load: $(load_avg)"
echo "input: $SRC  $LAYERS layers, $(awk -v b="$BYTES" 'BEGIN{printf "%.3f", b/1e9}') GB bf16, $ELEMS elements"

states=()
case $MODE in both) states=(warm cold) ;; *) states=("$MODE") ;; esac
for st in "${states[@]}"; do
  # cp before and after ours: the faster of the two is the baseline (the ratio is not flattered
  # by one slow cp on a shared machine).
  c1=$(cp_once "$st")
  ours "$st" "$WORK/gguf-out-f16.gguf" "$WORK/time-gguf-f16-$st.txt"
  out_bytes=$(stat -c %s "$WORK/gguf-out-f16.gguf")
  rm -f "$WORK/gguf-out-f16.gguf"
  c2=$(cp_once "$st")
  k1=$(cat_once "$st")
  $PY - "$BYTES" "$out_bytes" "$c1" "$c2" "$k1" "$(time_field "$WORK/time-gguf-f16-$st.txt" wall)" \
    "$(time_field "$WORK/time-gguf-f16-$st.txt" rss)" "$(time_field "$WORK/time-gguf-f16-$st.txt" cpu)" "$st" <<'PY'
import sys
b, ob, c1, c2, k1, t, rss, cpu = map(float, sys.argv[1:9])
st = sys.argv[9]
cp = min(c1, c2)
gb = b / 1e9
print(f"(a) {st:4} cache  bf16 HF -> GGUF f16 | {gb:5.2f} GB in, {ob/1e9:5.2f} GB out | modelconvert {t:6.2f} s "
      f"{gb/t:5.2f} GB/s, cpu {cpu:6.2f} s | cp {cp:6.2f} s {gb/cp:5.2f} GB/s (runs: {c1:.2f}, {c2:.2f}) | "
      f"ratio vs cp {cp/t:4.2f}x (goal >= 0.7x) | cat > file {k1:6.2f} s, ratio vs cat {k1/t:4.2f}x | "
      f"peak RSS {rss:.0f} MB")
PY
done

# (b) one-step q4_k_m: compute-bound, so one run on a warm cache.
if [ "${SKIP_Q4:-0}" = 1 ]; then echo "load after: $(load_avg)"; exit 0; fi
ours warm "$WORK/gguf-out-q4km.gguf" "$WORK/time-gguf-q4km.txt" --quant q4_k_m
q_bytes=$(stat -c %s "$WORK/gguf-out-q4km.gguf")
rm -f "$WORK/gguf-out-q4km.gguf"
$PY - "$ELEMS" "$q_bytes" "$(time_field "$WORK/time-gguf-q4km.txt" wall)" "$(time_field "$WORK/time-gguf-q4km.txt" rss)" \
  "$(time_field "$WORK/time-gguf-q4km.txt" cpu)" "$THREADS" <<'PY'
import sys
n, qb, t, rss, cpu, th = map(float, sys.argv[1:7])
mb = n * 4 / 1e6
print(f"(b) warm cache  bf16 HF -> GGUF q4_k_m | {n/1e6:.0f} M elements ({mb:.0f} MB as f32), {qb/1e6:.0f} MB out "
      f"({qb*8/n:.2f} bits/weight) | {t:6.2f} s, cpu {cpu:6.2f} s ({cpu/t:4.2f} cores busy) | "
      f"{mb/t/th:6.1f} MB/s of f32 input per core ({th:.0f} threads), {mb/cpu:6.1f} MB/s per cpu-second | "
      f"peak RSS {rss:.0f} MB")
PY
echo "load after: $(load_avg)"
