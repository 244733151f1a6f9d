#!/usr/bin/env bash
# Benchmark of the hub client (issue 15): a generated bf16 Llama served by the stand-in hub
# (tests/py/fake_hub.py) on 127.0.0.1, downloaded into an empty hub cache by `modelconvert
# inspect hf:...` (HEAD per file, GET through the CDN redirect, sha256 of every LFS blob before
# it enters the cache). Baseline from the same run and the same server: `curl` fetching the same
# bytes to /dev/null, plus `sha256sum` of the same files (what a careful script would do).
#   bench/hub_bench.sh [build/modelconvert] [workdir] [layers]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init "$@"
L=${3:-4}

src="$WORK/hub-llama-$L"
llama_config "$WORK/hub-config-$L.json" "$L"
make_fake_llama "$WORK/hub-config-$L.json" "$src"
bytes=$(cat "$src"/* | wc -c)

cat > "$WORK/hub-spec.json" <<JSON
{"repos": [{"id": "bench/llama", "dir": "$src", "commit": "0123456789abcdef0123456789abcdef01234567"}]}
JSON
rm -f "$WORK/hub-port"
"$PY" "$ROOT/tests/py/fake_hub.py" "$WORK/hub-spec.json" "$WORK/hub-port" "$WORK/hub-log.jsonl" &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do [ -f "$WORK/hub-port" ] && break; sleep 0.05; done
port=$(cat "$WORK/hub-port")

# Baseline: every file through curl (the LFS ones through the CDN redirect, as we do), then
# sha256sum of the files.
t0=$(date +%s.%N)
for f in $(cd "$src" && ls); do
  curl -s -L -o /dev/null "http://127.0.0.1:$port/bench/llama/resolve/main/$f"
done
t1=$(date +%s.%N)
sha256sum "$src"/* > /dev/null
t2=$(date +%s.%N)

rm -rf "$WORK/hub-cache"
/usr/bin/time -v env HF_HUB_CACHE="$WORK/hub-cache" HF_ENDPOINT="http://127.0.0.1:$port" \
  XDG_STATE_HOME="$WORK/state" "$MC" inspect hf:bench/llama > /dev/null 2> "$WORK/hub-time.txt"
tmc=$(wall_s "$WORK/hub-time.txt")
rss=$(peak_rss_mb "$WORK/hub-time.txt")

"$PY" - "$bytes" "$t0" "$t1" "$t2" "$tmc" "$rss" "$(load_avg)" <<'PY'
import sys
b, t0, t1, t2, tmc = float(sys.argv[1]), *map(float, sys.argv[2:6])
rss, load = sys.argv[6], sys.argv[7]
curl, sha = t1 - t0, t2 - t1
mb = b / 1e6
print(f"hub download of {mb:.0f} MB (load {load})")
print(f"  curl to /dev/null        {curl:6.2f} s  {mb / curl:7.0f} MB/s")
print(f"  sha256sum of the files   {sha:6.2f} s  {mb / sha:7.0f} MB/s")
print(f"  curl + sha256sum         {curl + sha:6.2f} s")
print(f"  modelconvert (cache, verified) {tmc:6.2f} s  {mb / tmc:7.0f} MB/s  = {tmc / (curl + sha):.2f} x baseline, peak RSS {rss} MB")
PY
