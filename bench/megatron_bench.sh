#!/usr/bin/env bash
# Benchmark of the Megatron engine: a generated ~1.5 GB bf16 Llama (14 layers, hidden 2048, GQA
# 32/8 heads, vocab 32000) converted HF -> Megatron TP=2 PP=2 (Megatron-Core names) and back to
# HF. Prints seconds and peak RSS of each direction (GNU time), with the machine's load.
#   bench/megatron_bench.sh [build/modelconvert] [workdir]
set -euo pipefail
cd "$(dirname "$0")/.."
MC=${1:-build/modelconvert}
WORK=${2:-bench/out}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
L=14
SRC="$WORK/meg-llama-${L}L-bf16" MEG="$WORK/meg-llama-${L}L-tp2pp2" BACK="$WORK/meg-llama-${L}L-back"

cat > "$WORK/meg-config.json" <<JSON
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
 "intermediate_size": 5632, "num_hidden_layers": $L, "num_attention_heads": 32,
 "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 2048,
 "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "torch_dtype": "bfloat16", "hidden_act": "silu"}
JSON
if [ ! -f "$SRC/model.safetensors.index.json" ]; then
  "$MC" convert "$WORK/meg-config.json" safetensors --fake-weight --fake-weight-init random --seed 1 \
    --max-shard-size 500MB --force --quiet -o "$SRC"
fi
peak_rss_mb() { awk '/Maximum resident/ {printf "%.0f", $6/1024}' "$1"; }
wall_s() { python3 -c "import re,sys; t=open(sys.argv[1]).read(); m=re.search(r'Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)', t); h,mi,s=m.groups(); print((int(h or 0)*3600)+int(mi)*60+float(s))" "$1"; }

bytes=$(cat "$SRC"/*.safetensors | wc -c)
echo "modelconvert $("$MC" version)  threads: $(nproc)  load: $(uptime | sed 's/.*load average: //')"
cat "$SRC"/*.safetensors > /dev/null
rm -rf "$MEG" "$BACK"
/usr/bin/time -v "$MC" convert "$SRC" hf2megatron --tp 2 --pp 2 --megatron-format mcore --quiet --force \
  -o "$MEG" 2> "$WORK/time-meg-to.txt"
/usr/bin/time -v "$MC" convert "$MEG" hf --quiet --force -o "$BACK" 2> "$WORK/time-meg-back.txt"
python3 - "$bytes" "$(wall_s "$WORK/time-meg-to.txt")" "$(peak_rss_mb "$WORK/time-meg-to.txt")" \
  "$(wall_s "$WORK/time-meg-back.txt")" "$(peak_rss_mb "$WORK/time-meg-back.txt")" <<'PY'
import sys
b, t1, r1, t2, r2 = float(sys.argv[1]) / 1e9, float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
print(f"{b:5.2f} GB bf16 | HF -> Megatron TP=2 PP=2: {t1:6.2f} s ({b/t1:5.2f} GB/s), peak RSS {r1} MB | "
      f"Megatron -> HF: {t2:6.2f} s ({b/t2:5.2f} GB/s), peak RSS {r2} MB")
PY
echo "load after: $(uptime | sed 's/.*load average: //')"
rm -rf "$MEG" "$BACK"
