#!/usr/bin/python3
"""Independent numpy model of MLX affine quantization (formats.md §8), for the MLX engine tests.

Written from the spec, vectorised over groups (the C++ code works group by group):
  range = max((wmax - wmin) / (2^bits - 1), 1e-7)      all in float32
  |wmin| > |wmax|: edge = wmin, scale = +range; else edge = wmax, scale = -range
  q0 = rint(edge / scale); q0 != 0: scale = edge / q0, bias = edge; else bias = 0
  q = clip(rint((w - bias) / scale), 0, 2^bits - 1)   (np.rint: half to even)
  scales/biases are then cast to the weight dtype.
Packing: q values form one LSB-first bitstream per row, stored as little-endian uint32 words.
Dequantization: float32(scale) * q + float32(bias) in float32, cast once to the dtype.

    mlx_oracle.py gen OUT_DIR        random cases for every bits x group size x dtype; writes
                                     inputs and the expected bytes, plus manifest.json
    mlx_oracle.py verify SRC MLX HF  checks an MLX directory we wrote from the HF directory SRC
                                     (packed bytes, scales, biases, float tensors, config, index)
                                     and the HF directory we dequantized from it
"""
import json
import os
import struct
import sys

import numpy as np

BITS = [2, 3, 4, 5, 6, 8]
GROUPS = [32, 64, 128]
DTYPES = ["f32", "f16", "bf16"]


# ---- dtype helpers (bf16 by bit manipulation: numpy has no bfloat16) ----------------------
def f32_to_bf16_bits(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint32) << 16).view(np.float32)


def to_dtype_bytes(x, dt):
    x = np.asarray(x, dtype=np.float32)
    if dt == "f32":
        return x.tobytes()
    if dt == "f16":
        return x.astype(np.float16).tobytes()
    return f32_to_bf16_bits(x).tobytes()


def round_to_dtype(x, dt):
    """float32 values rounded to dt and widened back."""
    x = np.asarray(x, dtype=np.float32)
    if dt == "f32":
        return x
    if dt == "f16":
        return x.astype(np.float16).astype(np.float32)
    return bf16_bits_to_f32(f32_to_bf16_bits(x))


# ---- the quantizer ------------------------------------------------------------------------
def quantize(w, bits, group):
    """w: float32 [rows, cols] -> (q uint8 [rows, cols], scales f32, biases f32 [rows, cols/group])."""
    w = np.asarray(w, dtype=np.float32)
    rows, cols = w.shape
    g = w.reshape(rows, cols // group, group)
    n_bins = np.float32((1 << bits) - 1)
    wmax = g.max(axis=-1)
    wmin = g.min(axis=-1)
    neg_edge = np.abs(wmin) > np.abs(wmax)
    rng = np.maximum((wmax - wmin) / n_bins, np.float32(1e-7)).astype(np.float32)
    scale = np.where(neg_edge, rng, -rng).astype(np.float32)
    edge = np.where(neg_edge, wmin, wmax).astype(np.float32)
    q0 = np.rint(edge / scale).astype(np.float32)
    nz = q0 != 0
    safe_q0 = np.where(nz, q0, np.float32(1))
    scale = np.where(nz, edge / safe_q0, scale).astype(np.float32)
    bias = np.where(nz, edge, np.float32(0)).astype(np.float32)
    q = np.rint((g - bias[..., None]) / scale[..., None]).astype(np.float32)
    q = np.clip(q, np.float32(0), n_bins).astype(np.uint8)
    return q.reshape(rows, cols), scale, bias


def pack(q, bits):
    """uint8 [rows, cols] -> uint32 [rows, cols*bits/32] (LSB-first bitstream)."""
    rows, cols = q.shape
    bitplanes = np.unpackbits(q[..., None], axis=-1, bitorder="little")[..., :bits]
    stream = bitplanes.reshape(rows, cols * bits)
    by = np.packbits(stream, axis=-1, bitorder="little")
    return np.ascontiguousarray(by).view("<u4").reshape(rows, cols * bits // 32)


def unpack(words, bits, cols):
    rows = words.shape[0]
    by = np.ascontiguousarray(words.astype("<u4")).view(np.uint8).reshape(rows, -1)
    stream = np.unpackbits(by, axis=-1, bitorder="little")[:, : cols * bits]
    planes = stream.reshape(rows, cols, bits)
    weights = (1 << np.arange(bits)).astype(np.uint32)
    return (planes.astype(np.uint32) * weights).sum(axis=-1).astype(np.uint8)


def dequantize(q, scales_f32, biases_f32, group):
    rows, cols = q.shape
    s = np.repeat(scales_f32.astype(np.float32), group, axis=-1)
    b = np.repeat(biases_f32.astype(np.float32), group, axis=-1)
    return (s * q.astype(np.float32)).astype(np.float32) + b


# ---- gen ------------------------------------------------------------------------------------
def make_input(rng, rows, cols, group):
    w = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    w[0] = 0.0                                                     # all zero
    w[1] = -np.abs(w[1]) - 0.01                                    # all negative
    w[2] = np.float32(0.3)                                         # constant
    w[3] = (np.arange(cols) % 7 - 3).astype(np.float32) * 0.125    # exact steps, ties on rounding
    w[4] = rng.standard_normal(cols).astype(np.float32) * 1e-9     # range below eps
    w[5] = rng.standard_normal(cols).astype(np.float32) * 30.0     # large values
    w[6, ::group] = 0.0
    w[7] = np.abs(w[7]) + 0.5                                      # all positive, away from 0
    return w


def gen(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(1234)
    cases = []
    for bits in BITS:
        for group in GROUPS:
            for dt in DTYPES:
                rows, cols = 12, 4 * group
                w = round_to_dtype(make_input(rng, rows, cols, group), dt)
                q, s, b = quantize(w, bits, group)
                packed = pack(q, bits)
                assert np.array_equal(unpack(packed, bits, cols), q)
                s_bytes, b_bytes = to_dtype_bytes(s, dt), to_dtype_bytes(b, dt)
                dq = dequantize(q, round_to_dtype(s, dt), round_to_dtype(b, dt), group)
                name = f"b{bits}_g{group}_{dt}"
                for ext, data in [("in", w.astype(np.float32).tobytes()), ("w", packed.astype("<u4").tobytes()),
                                  ("s", s_bytes), ("b", b_bytes), ("dq", to_dtype_bytes(dq, dt))]:
                    with open(os.path.join(out_dir, f"{name}.{ext}"), "wb") as f:
                        f.write(data)
                cases.append({"name": name, "bits": bits, "group": group, "dtype": dt, "rows": rows, "cols": cols})
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(cases, f)
    print(f"{len(cases)} cases")


# ---- verify ---------------------------------------------------------------------------------
ST = {"F32": (np.float32, "f32"), "F16": (np.float16, "f16"), "BF16": (np.uint16, "bf16"), "U32": ("<u4", "u32")}


def load_st(path):
    """name -> (dtype tag, shape, raw numpy array); plus metadata."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for k, v in header.items():
        npdt, tag = ST[v["dtype"]]
        b, e = v["data_offsets"]
        out[k] = (tag, v["shape"], np.frombuffer(data[b:e], dtype=npdt).reshape(v["shape"]))
    return out, meta


def load_dir(d):
    tensors, metas = {}, []
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".safetensors"):
            t, m = load_st(os.path.join(d, fn))
            tensors.update(t)
            metas.append((fn, m))
    return tensors, metas


def as_f32(tag, arr):
    if tag == "bf16":
        return bf16_bits_to_f32(arr)
    return arr.astype(np.float32)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def verify(src, mlx, hf):
    with open(os.path.join(mlx, "config.json")) as f:
        text = f.read()
    cfg = json.loads(text)
    if list(cfg.keys()) != sorted(cfg.keys()):
        fail("config.json keys are not sorted")
    if not text.startswith("{\n    \""):
        fail("config.json is not indented by 4")
    quant = cfg.get("quantization")
    if quant is not None and cfg.get("quantization_config") != quant:
        fail("quantization_config differs from quantization")
    if quant is not None and quant.get("mode") != "affine":
        fail("mode is not affine")
    with open(os.path.join(src, "config.json")) as f:
        src_cfg = json.load(f)
    dt = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}.get(src_cfg.get("torch_dtype"))
    tied = bool(src_cfg.get("tie_word_embeddings", False))
    srcw, _ = load_dir(src)
    out, metas = load_dir(mlx)
    for fn, m in metas:
        if m != {"format": "mlx"}:
            fail(f"{fn}: metadata {m}")
    with open(os.path.join(mlx, "model.safetensors.index.json")) as f:
        index = json.load(f)
    if sorted(index["weight_map"]) != sorted(out):
        fail("index weight_map does not list exactly the tensors")
    if list(index["weight_map"]) != sorted(index["weight_map"]):
        fail("weight_map not sorted")
    total = sum(a.nbytes for _, _, a in out.values())
    if index["metadata"]["total_size"] != total:
        fail(f"total_size {index['metadata']['total_size']} != {total}")
    hfw = load_dir(hf)[0] if hf else None
    n_quant = n_float = 0
    expected_params = 0
    for name, (tag, shape, arr) in srcw.items():
        if tied and name == "lm_head.weight":
            continue
        expected_params += int(np.prod(shape))
        w = as_f32(tag, arr)
        odt = dt or tag
        if quant and len(shape) == 2 and name.endswith(".weight") and shape[-1] % quant["group_size"] == 0:
            bits, group = quant["bits"], quant["group_size"]
            prefix = name[: -len(".weight")]
            wq = round_to_dtype(w, odt)
            q, s, b = quantize(wq, bits, group)
            got_w = out[prefix + ".weight"]
            if got_w[0] != "u32" or got_w[2].tobytes() != pack(q, bits).astype("<u4").tobytes():
                fail(f"{name}: packed weight differs from the oracle")
            for suffix, vals in [(".scales", s), (".biases", b)]:
                got = out[prefix + suffix]
                if got[0] != odt or got[2].tobytes() != to_dtype_bytes(vals, odt):
                    fail(f"{prefix}{suffix} differs from the oracle ({got[0]} vs {odt})")
            if hfw is not None:
                dq = dequantize(q, round_to_dtype(s, odt), round_to_dtype(b, odt), group)
                got = hfw[name]
                if got[2].tobytes() != to_dtype_bytes(dq, odt):
                    diff = np.abs(as_f32(got[0], got[2]) - dq).max()
                    fail(f"{name}: dequantized HF tensor differs from the oracle (max {diff})")
            n_quant += 1
        else:
            got = out.get(name)
            if got is None:
                fail(f"{name} missing")
            if got[0] != odt or got[2].tobytes() != to_dtype_bytes(round_to_dtype(w, odt), odt):
                fail(f"{name}: float tensor differs")
            if hfw is not None and hfw[name][2].tobytes() != got[2].tobytes():
                fail(f"{name}: HF copy of a float tensor differs")
            n_float += 1
    if index["metadata"]["total_parameters"] != expected_params:
        fail(f"total_parameters {index['metadata']['total_parameters']} != {expected_params}")
    if tied and "lm_head.weight" in out:
        fail("lm_head.weight written although embeddings are tied")
    print(f"ok quantized={n_quant} float={n_float}")


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif sys.argv[1] == "verify":
        verify(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        sys.exit(__doc__)
