#!/usr/bin/env bash
# Benchmark of the MLX engine: a generated ~1.5 GB bf16 Llama (14 layers of hidden 2048, ffn 5632,
# vocab 32000) -> mlx-lm 4-bit (group 64). Prints wall seconds, MB/s of input (total and per
# worker thread), peak RSS (GNU time) and the machine load before the run.
#   bench/mlx_bench.sh [build/modelconvert] [workdir] [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
MC=${1:-build/modelconvert}
WORK=${2:-bench/out}
THREADS=${3:-$(nproc)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
L=14

cat > "$WORK/config-mlx.json" <<JSON
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
 "intermediate_size": 5632, "num_hidden_layers": $L, "num_attention_heads": 32,
 "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 2048,
 "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "torch_dtype": "bfloat16", "hidden_act": "silu"}
JSON

src="$WORK/llama-mlxbench-bf16" out="$WORK/llama-mlxbench-4bit"
if [ ! -f "$src/model.safetensors.index.json" ]; then
  "$MC" convert "$WORK/config-mlx.json" safetensors --fake-weight --fake-weight-init random --seed 1 \
    --max-shard-size 500MB --force --quiet -o "$src"
fi
bytes=$(cat "$src"/*.safetensors | wc -c)
cat "$src"/*.safetensors > /dev/null  # warm page cache
rm -rf "$out"
echo "modelconvert $("$MC" version)  threads: $THREADS  load before: $(uptime | sed 's/.*load average: //')"
/usr/bin/time -v "$MC" convert "$src" mlx --quant 4bit --threads "$THREADS" --quiet --force -o "$out" \
  2> "$WORK/time-mlx.txt"
secs=$(python3 -c "import re; t=open('$WORK/time-mlx.txt').read(); m=re.search(r'Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)', t); h,mi,s=m.groups(); print(int(h or 0)*3600+int(mi)*60+float(s))")
rss=$(awk '/Maximum resident/ {printf "%.0f", $6/1024}' "$WORK/time-mlx.txt")
outb=$(cat "$out"/*.safetensors | wc -c)
python3 - "$bytes" "$outb" "$secs" "$rss" "$THREADS" <<'PY'
import sys
b, ob, s, rss, th = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
mbs = b / 1e6 / s
print(f"{b/1e9:.2f} GB bf16 -> {ob/1e9:.2f} GB MLX 4-bit g64 | {s:.2f} s | {mbs:.0f} MB/s input, "
      f"{mbs/th:.0f} MB/s per thread ({th}) | peak RSS {rss} MB")
PY
echo "load after: $(uptime | sed 's/.*load average: //')"
rm -rf "$out"
