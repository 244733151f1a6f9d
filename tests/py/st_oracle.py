#!/usr/bin/python3
"""An independent safetensors writer and reader (formats.md section 1), written from the spec with
numpy only, used by the interop tests to cross-check the C++ engine.

  st_oracle.py write OUT.safetensors   write a fixed set of tensors; print them as JSON
  st_oracle.py read FILE               strictly parse FILE; print its tensors as JSON
  st_oracle.py read-dir DIR            parse DIR's index and shards; print all tensors as JSON

Printed JSON: {"metadata": {...}, "tensors": {name: {"dtype", "shape", "hex", "values"?,
"file"?, "data_offsets"?, "file_offset"?}}, "total_size"?}. Any rule violation exits with
status 2 and a message on stderr.
"""
import json
import os
import struct
import sys

import numpy as np

BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "I16": 16, "U16": 16,
        "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64}
NUMPY = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
         "F16": np.float16, "I32": np.int32, "U32": np.uint32, "F32": np.float32,
         "F64": np.float64, "I64": np.int64, "U64": np.uint64}
MAX_HEADER = 100_000_000


def fail(msg):
    sys.stderr.write("st_oracle: " + msg + "\n")
    sys.exit(2)


def values_of(dtype, raw):
    """Element values as JSON numbers (None for types numpy cannot express)."""
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return [float(v) for v in bits.view(np.float32)]
    if dtype not in NUMPY:
        return None
    arr = np.frombuffer(raw, dtype=np.dtype(NUMPY[dtype]).newbyteorder("<"))
    if dtype == "BOOL":
        return [int(v) for v in arr]
    return [float(v) if arr.dtype.kind == "f" else int(v) for v in arr]


def describe(dtype, shape, raw):
    d = {"dtype": dtype, "shape": list(shape), "hex": raw.hex()}
    vals = values_of(dtype, raw)
    if vals is not None:
        d["values"] = vals
    return d


def sample_tensors():
    rng = np.random.default_rng(1234)
    f32 = rng.standard_normal((3, 4)).astype(np.float32)
    bf16_src = rng.standard_normal((2, 3)).astype(np.float32)
    bf16 = (bf16_src.view(np.uint32) >> 16).astype("<u2")  # truncation: still valid bf16
    return [
        ("model.f32.w", "F32", (3, 4), f32.astype("<f4").tobytes()),
        ("b.f16", "F16", (5,), np.array([1.0, -0.5, 65504.0, 6e-8, 0.0], "<f2").tobytes()),
        ("x.bf16", "BF16", (2, 3), bf16.tobytes()),
        ("idx.i64", "I64", (4,), np.array([0, -1, 2**62, -(2**63)], "<i8").tobytes()),
        ("mask.u8", "U8", (2, 2), np.array([[0, 255], [7, 128]], np.uint8).tobytes()),
        ("flag.bool", "BOOL", (3,), np.array([True, False, True], np.bool_).tobytes()),
        ("scalar.i32", "I32", (), np.array(-123456, "<i4").tobytes()),
        ("empty.f32", "F32", (0, 3), b""),
        ("z.f64", "F64", (2,), np.array([np.pi, -1e300], "<f8").tobytes()),
        ("q.i16", "I16", (3,), np.array([-32768, 0, 32767], "<i2").tobytes()),
        ("fp8.e4m3", "F8_E4M3", (4,), bytes([0x00, 0x38, 0xB8, 0x7E])),
        ("u64.big", "U64", (1,), np.array([2**64 - 1], "<u8").tobytes()),
    ]


def write(path):
    """Our own layout choices, legal but unlike the reference writer: insertion order, JSON
    keys in reverse order with spaces after separators, no padding (unaligned data)."""
    tensors = sample_tensors()
    header, offset = {}, 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"data_offsets": [offset, offset + len(raw)], "shape": list(shape),
                        "dtype": dtype}
        offset += len(raw)
    ordered = {"__metadata__": {"producer": "oracle", "format": "pt"}}
    for k in reversed(list(header)):
        ordered[k] = header[k]
    text = json.dumps(ordered, separators=(", ", ": ")).encode()
    if len(text) % 8 == 0:
        text += b" "  # make sure the data starts unaligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)
    out = {"metadata": ordered["__metadata__"], "tensors": {}}
    for name, dtype, shape, raw in tensors:
        out["tensors"][name] = describe(dtype, shape, raw)
    return out


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        fail("duplicate key in header")
    return dict(pairs)


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail("file smaller than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > len(data):
        fail("bad header length %d" % n)
    raw_header = data[8:8 + n]
    if not raw_header.startswith(b"{"):
        fail("header does not start with {")
    try:
        header = json.loads(raw_header.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        fail("header is not UTF-8 JSON: %s" % e)
    meta = header.pop("__metadata__", None) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail("__metadata__ must map strings to strings")
    entries = []
    for name, info in header.items():
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in BITS:
            fail("unknown dtype %r" % dtype)
        if not all(type(d) is int and d >= 0 for d in shape):
            fail("bad shape for %s" % name)
        if len(offs) != 2 or not all(type(o) is int and o >= 0 for o in offs):
            fail("bad data_offsets for %s" % name)
        entries.append((offs[0], offs[1], name, dtype, shape))
    entries.sort()
    start, buf = 0, data[8 + n:]
    tensors = {}
    for begin, end, name, dtype, shape in entries:
        if begin != start or end < begin:
            fail("tensor %s: data_offsets [%d, %d) do not continue at %d" % (name, begin, end, start))
        numel = 1
        for d in shape:
            numel *= d
        if numel * BITS[dtype] != 8 * (end - begin):
            fail("tensor %s: shape and dtype need %d bits, offsets span %d bytes"
                 % (name, numel * BITS[dtype], end - begin))
        start = end
        d = describe(dtype, shape, buf[begin:end])
        d["data_offsets"] = [begin, end]
        d["file_offset"] = 8 + n + begin
        tensors[name] = d
    if start != len(buf):
        fail("data ends at %d but the buffer has %d bytes" % (start, len(buf)))
    return {"metadata": meta, "tensors": tensors, "header_len": n}


def read_dir(path):
    index_path = os.path.join(path, "model.safetensors.index.json")
    if not os.path.exists(index_path):
        out = read(os.path.join(path, "model.safetensors"))
        for t in out["tensors"].values():
            t["file"] = "model.safetensors"
        return out
    with open(index_path) as f:
        index = json.load(f)
    wmap = index["weight_map"]
    out = {"metadata": {}, "tensors": {}, "total_size": index["metadata"]["total_size"]}
    for shard in sorted(set(wmap.values())):
        part = read(os.path.join(path, shard))
        out["metadata"] = part["metadata"]
        for name, t in part["tensors"].items():
            if wmap.get(name) != shard:
                fail("tensor %s of %s is not mapped to it in the index" % (name, shard))
            if name in out["tensors"]:
                fail("tensor %s stored twice" % name)
            t["file"] = shard
            out["tensors"][name] = t
    missing = set(wmap) - set(out["tensors"])
    if missing:
        fail("index lists tensors no shard holds: %s" % sorted(missing))
    total = sum(len(t["hex"]) // 2 for t in out["tensors"].values())
    if total != out["total_size"]:
        fail("total_size %d != %d tensor bytes" % (out["total_size"], total))
    return out


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "read", "read-dir"):
        fail(__doc__)
    cmd, path = sys.argv[1], sys.argv[2]
    result = {"write": write, "read": read, "read-dir": read_dir}[cmd](path)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
