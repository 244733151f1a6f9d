"""Minimal safetensors reader/writer and Hugging Face directory loader for the tests.

Only numpy and torch are needed (the `safetensors` package is not assumed). Layout, formats.md §1.1:
u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [b, e]},
"__metadata__": {str: str}}, then the data section; offsets are relative to the data section.
bf16 has no numpy type, so tensors are exchanged as torch tensors (torch knows every dtype we use).
"""
import json
import os
import struct
from collections import OrderedDict

import numpy as np
import torch

# safetensors dtype string -> (torch dtype, numpy dtype used to move the raw bytes)
_ST_DTYPES = {
    "F64": (torch.float64, np.float64),
    "F32": (torch.float32, np.float32),
    "F16": (torch.float16, np.float16),
    "BF16": (torch.bfloat16, np.uint16),  # raw bits; reinterpreted below
    "I64": (torch.int64, np.int64),
    "I32": (torch.int32, np.int32),
    "I16": (torch.int16, np.int16),
    "I8": (torch.int8, np.int8),
    "U8": (torch.uint8, np.uint8),
    "BOOL": (torch.bool, np.bool_),
}
_TORCH_TO_ST = {v[0]: k for k, v in _ST_DTYPES.items()}


def _np_to_torch(arr, st_dtype):
    if st_dtype == "BF16":
        # int16 view has the same 16 bits; torch reinterprets them as bfloat16.
        return torch.from_numpy(arr.astype(np.uint16).view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(arr.copy())


def _torch_to_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def load_safetensors(path):
    """Returns (OrderedDict name -> torch.Tensor in file order, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = OrderedDict()
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        st = info["dtype"]
        if st not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name}: dtype {st} not supported by this test helper")
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=_ST_DTYPES[st][1]).reshape(info["shape"])
        out[name] = _np_to_torch(arr, st)
    return out, meta


def save_safetensors(path, tensors, metadata=None):
    """Writes tensors (mapping name -> torch.Tensor) in the given order, 8-byte aligned header."""
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name, t in tensors.items():
        b = _torch_to_bytes(t)
        header[name] = {"dtype": _TORCH_TO_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)  # the reference writer pads the header with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def _torch_load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # very old torch without weights_only
        return torch.load(path, map_location="cpu")


def load_state_dict(model_dir):
    """All tensors of an HF model directory (single or sharded, safetensors or .bin)."""
    d = model_dir
    candidates = [
        ("model.safetensors.index.json", "safetensors"),
        ("model.safetensors", "safetensors"),
        ("pytorch_model.bin.index.json", "bin"),
        ("pytorch_model.bin", "bin"),
    ]
    for fname, kind in candidates:
        p = os.path.join(d, fname)
        if not os.path.exists(p):
            continue
        if fname.endswith(".index.json"):
            with open(p) as f:
                weight_map = json.load(f)["weight_map"]
            files = list(OrderedDict.fromkeys(weight_map.values()))
        else:
            files = [fname]
        sd = OrderedDict()
        for shard in files:
            sp = os.path.join(d, shard)
            part = load_safetensors(sp)[0] if kind == "safetensors" else _torch_load(sp)
            sd.update(part)
        return sd
    raise FileNotFoundError(f"{d}: no model.safetensors / pytorch_model.bin (or index) found")


def load_hf_dir(model_dir):
    """Returns (config dict, OrderedDict of torch tensors)."""
    if os.path.isfile(model_dir) and model_dir.endswith(".safetensors"):
        cfg_path = os.path.join(os.path.dirname(model_dir), "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        return cfg, load_safetensors(model_dir)[0]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    return cfg, load_state_dict(model_dir)


def _describe(d):
    _, sd = load_hf_dir(d)
    return {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in sd.items()}


def _cast_mismatches(src, dst):
    """Tensors of dst that differ from torch's src.to(dst.dtype), and the count of such elements."""
    _, a = load_hf_dir(src)
    _, b = load_hf_dir(dst)
    bad = {}
    for k, t in b.items():
        ref = a[k].to(t.dtype)
        n = int((ref.view(-1) != t.view(-1)).sum()) if ref.shape == t.shape else -1
        if n:
            bad[k] = n
    return {"tensors": len(b), "mismatched": bad}


if __name__ == "__main__":
    # Command line for C++ tests:  stlib.py describe DIR [DIR...]  |  stlib.py cast-check SRC DST
    # (describe prints one object for one DIR, a list of objects for several)
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "describe":
        print(json.dumps(_describe(sys.argv[2])))
    elif len(sys.argv) > 3 and sys.argv[1] == "describe":
        print(json.dumps([_describe(d) for d in sys.argv[2:]]))
    elif len(sys.argv) == 4 and sys.argv[1] == "cast-check":
        print(json.dumps(_cast_mismatches(sys.argv[2], sys.argv[3])))
    else:
        sys.exit("usage: stlib.py describe DIR [DIR...] | stlib.py cast-check SRC_DIR DST_DIR")
