# Shared by the bench/*.sh scripts (sourced, not run).
#   bench_init BINARY WORKDIR   sets MC (absolute path), WORK (created, absolute), PY, ROOT
#   llama_config FILE LAYERS [HIDDEN FFN HEADS KV_HEADS TORCH_DTYPE]
#                               writes a Llama config.json (default: 2048 wide, ffn 5632,
#                               32 heads / 8 kv, bf16, vocab 32000)
#   make_fake_llama CONFIG DIR  random-weight safetensors (500 MB shards) unless DIR has them
#   wall_s / peak_rss_mb / cpu_s TIMEFILE   fields of a `/usr/bin/time -v` report
#   load_avg                    the 1/5/15-minute load averages
bench_init() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  ROOT=$(pwd)
  MC=$(realpath "${1:-build/modelconvert}")
  WORK=${2:-bench/out}
  mkdir -p "$WORK"
  WORK=$(cd "$WORK" && pwd)
  PY=/usr/bin/python3
}

llama_config() {
  local file=$1 layers=$2 hid=${3:-2048} ffn=${4:-5632} heads=${5:-32} kv=${6:-8} dt=${7:-bfloat16}
  mkdir -p "$(dirname "$file")"
  cat > "$file" <<JSON
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": $hid,
 "intermediate_size": $ffn, "num_hidden_layers": $layers, "num_attention_heads": $heads,
 "num_key_value_heads": $kv, "vocab_size": 32000, "max_position_embeddings": 2048,
 "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false,
 "torch_dtype": "$dt", "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
JSON
}

make_fake_llama() {
  local cfg=$1 dir=$2
  if [ ! -f "$dir/model.safetensors.index.json" ] && [ ! -f "$dir/model.safetensors" ]; then
    "$MC" convert "$cfg" safetensors --fake-weight --fake-weight-init random --seed 1 \
      --max-shard-size 500MB --force --quiet -o "$dir"
  fi
}

time_field() {  # $1 = report, $2 = wall | rss | cpu
  "$PY" - "$1" "$2" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
if sys.argv[2] == "wall":
    h, m, s = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", t).groups()
    print(int(h or 0) * 3600 + int(m) * 60 + float(s))
elif sys.argv[2] == "rss":
    print(round(int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024))
else:
    u = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1))
    s = float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
    print(u + s)
PY
}
wall_s() { time_field "$1" wall; }
peak_rss_mb() { time_field "$1" rss; }
cpu_s() { time_field "$1" cpu; }
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }
