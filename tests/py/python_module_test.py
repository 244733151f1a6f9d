"""The Python module against independent readers (Debian's torch and numpy).

usage: python_module_test.py BUILD_PYTHON_DIR MODELCONVERT_BINARY

Makes a tiny random Llama with the command line, converts it with the module to safetensors
(bf16), GGUF q8_0, HF with pytorch_model.bin, MLX (8-bit) and Megatron TP 2, opens each with
mc.open and compares every tensor with the source as stlib (numpy) or torch.load read it: equal
where the format stores the values, within one quantization step per block/group for GGUF q8_0
and MLX. Also inspect/validate/check against the CLI's --json documents, zero-copy arrays, and
errors (exit code and message as the CLI's).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stlib  # noqa: E402

build_py, mc_bin = sys.argv[1], sys.argv[2]
sys.path.insert(0, build_py)
import modelconvert as mc  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def cli(*args):
    p = subprocess.run([mc_bin, *args], capture_output=True, text=True)
    return p.returncode, p.stdout


tmp = tempfile.mkdtemp()
os.environ["HOME"] = tmp
os.environ["XDG_STATE_HOME"] = os.path.join(tmp, "state")
os.environ["XDG_CONFIG_HOME"] = os.path.join(tmp, "config")
src = os.path.join(tmp, "tiny")
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
rc, _ = cli("convert", os.path.join(repo, "examples/tiny-llama/config.json"), "safetensors", "--fake-weight",
            "--fake-weight-init", "random", "--seed", "5", "-o", src, "--quiet")
assert rc == 0, "could not make the tiny model"
cfg, ref = stlib.load_hf_dir(src)
ref = {k: v.float().numpy() for k, v in ref.items()}

# safetensors, f32: zero-copy views equal to the file's values
m = mc.open(src)
check(m.format in ("hf", "safetensors"), f"format {m.format}")
check(m.config == cfg, "config dict differs from config.json")
check(sorted(m.tensors()) == sorted(ref), "tensor names differ")
for n in ref:
    a = m.tensor(n)
    check(a.dtype == np.float32 and a.shape == ref[n].shape and np.array_equal(a, ref[n]), f"safetensors {n}")
a = m.tensor("model.embed_tokens.weight")
check(not a.flags.writeable and a.base is not None, "plain f32 tensor is not a zero-copy view")
del m  # the array keeps the mapping alive
check(float(a.sum()) == float(ref["model.embed_tokens.weight"].sum()), "view after the model was dropped")

# convert -> bf16 safetensors: float32 arrays equal to torch's bf16 -> float of the file
r = mc.convert(src, "safetensors", output=os.path.join(tmp, "bf16"), dtype="bf16", quiet=True)
check(r["tensors"] == len(ref), f"convert result {r}")
_, bf = stlib.load_hf_dir(os.path.join(tmp, "bf16"))
m = mc.open(os.path.join(tmp, "bf16"))
for n, t in bf.items():
    check(t.dtype == torch.bfloat16 and m.dtype(n) == "bf16", f"bf16 dtype {n}")
    check(np.array_equal(m.tensor(n), t.float().numpy()), f"bf16 {n}")

# GGUF q8_0: within one step (max |x| / 127 of its block of 32) of the source
gg = os.path.join(tmp, "m.gguf")
r = mc.convert(src, "gguf", output=gg, quant="q8_0")
rc, out = cli("inspect", gg, "--json")
check(rc == 0 and mc.inspect(gg) == json.loads(out), "inspect differs from the CLI's")
m = mc.open(gg)
check(m.format == "gguf" and sorted(m.tensors()) == sorted(ref), "gguf names")
worst = 0.0
for n, x in ref.items():
    y = m.tensor(n)
    check(y.shape == x.shape, f"gguf shape {n}")
    if x.ndim == 2 and x.shape[1] % 32 == 0:
        xb, yb = x.reshape(-1, 32), y.reshape(-1, 32)
        step = np.abs(xb).max(axis=1, keepdims=True) / 127
        ratio = float((np.abs(xb - yb) / np.maximum(step, 1e-30)).max())
        worst = max(worst, ratio)
        check(ratio <= 1.0, f"gguf {n}: {ratio:.3f} steps off")
    else:  # rows that are no whole blocks stay float: f32, or f16 as llama-quantize falls back
        check(np.array_equal(y, x) or np.array_equal(y, x.astype(np.float16).astype(np.float32)),
              f"gguf {n} (kept float)")
check(0 < worst <= 1.0, f"gguf q8_0 worst error {worst} steps")
print(f"gguf q8_0: worst error {worst:.3f} quantization steps")

# HF with pytorch_model.bin, read back against torch.load of the same file
hb = os.path.join(tmp, "bin")
mc.convert(src, "hf", output=hb, weights_format="bin")
sd = torch.load(os.path.join(hb, "pytorch_model.bin"), map_location="cpu")
m = mc.open(hb)
check(sorted(m.tensors()) == sorted(sd), "bin names")
for n, t in sd.items():
    check(np.array_equal(m.tensor(n), t.numpy()), f"bin {n}")

# MLX 8-bit affine groups of 64: within one step ((max - min) / 255 of its group)
mx = os.path.join(tmp, "mlx")
mc.convert(src, "mlx", output=mx, quant="8bit")
m = mc.open(mx)
check(m.format == "mlx" and sorted(m.tensors()) == sorted(ref), "mlx names")
worst = 0.0
for n, x in ref.items():
    y = m.tensor(n)
    if x.ndim == 2 and x.shape[1] % 64 == 0:
        xg, yg = x.reshape(-1, 64), y.reshape(-1, 64)
        step = (xg.max(axis=1, keepdims=True) - xg.min(axis=1, keepdims=True)) / 255
        ratio = float((np.abs(xg - yg) / np.maximum(step, 1e-30)).max())
        worst = max(worst, ratio)
        check(ratio <= 1.0, f"mlx {n}: {ratio:.3f} steps off")
    else:
        check(np.array_equal(y, x), f"mlx {n} (kept float)")
check(0 < worst <= 1.0, f"mlx 8-bit worst error {worst} steps")
print(f"mlx 8bit: worst error {worst:.3f} quantization steps")

# Megatron TP 2: merged back to the HF tensors exactly
mg = os.path.join(tmp, "meg")
mc.convert(src, "megatron", output=mg, tp=2)
m = mc.open(mg)
check(m.format == "megatron" and sorted(m.tensors()) == sorted(ref), "megatron names")
for n, x in ref.items():
    check(np.array_equal(m.tensor(n), x), f"megatron {n}")

# validate and check: the CLI's documents
rc, out = cli("validate", gg, "--json")
v = mc.validate(gg)
check(rc == 0 and v["ok"] and v == json.loads(out), "validate differs from the CLI's")
rc, out = cli("check", gg, "--compare", src, "--ids", "1,2,3,4", "--max-new-tokens", "2", "--json", "--threads", "1")
c = mc.check(gg, compare=src, ids=[1, 2, 3, 4], max_new_tokens=2, threads=1)
cj = json.loads(out)
check(rc == 0 and c["pass"] and c.get("greedy_ids") == cj.get("greedy_ids") and c["comparison"] == cj["comparison"],
      "check differs from the CLI's")

# errors: the CLI's exit codes
rc, _ = cli("inspect", os.path.join(tmp, "nothing-here"))
try:
    mc.open(os.path.join(tmp, "nothing-here"))
    check(False, "open of a missing path did not raise")
except mc.Error as e:
    check(e.exit_code == rc and e.exit_code != 0 and "nothing-here" in e.message and str(e) == e.message,
          f"missing path: exit {e.exit_code} (CLI {rc}), {e.message!r}")
try:
    mc.convert(src, "gguf", output=os.path.join(tmp, "x.gguf"), no_such_option=1)
    check(False, "unknown option did not raise")
except mc.Error as e:
    check(e.exit_code == 2 and e.code == "invalid_argument" and "no_such_option" in e.message, f"unknown option: {e}")
try:
    mc.convert(src, "gguf", output=gg)  # exists, no force
    check(False, "existing output did not raise")
except mc.Error as e:
    rc, _ = cli("convert", src, "gguf", "-o", gg, "--quiet")
    check(e.exit_code == rc and rc != 0, f"existing output: exit {e.exit_code}, CLI {rc}")
try:
    mc.open(src).tensor("no.such.tensor")
    check(False, "missing tensor did not raise")
except mc.Error as e:
    check(e.code == "not_found", f"missing tensor: {e.code}")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("python module: OK")
