"""Loads checkpoints written by our C++ writer with real torch.load and compares them with
DIR/expected.json ({file: {"weights_only": bool, "tensors": {name: {dtype, shape, hex}}}}).
Also checks every zip CRC with Python's zipfile, the shard index of sharded outputs, and the
non-tensor values of tree.pt. Exits non-zero with a message on the first mismatch."""
import argparse
import json
import os
import sys
import zipfile

import torch

DTYPES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
          torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
          torch.uint8: "u8", torch.bool: "bool"}


def fail(msg):
    print("MISMATCH:", msg)
    sys.exit(1)


def raw_hex(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes().hex()


def flatten(obj, prefix=""):
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def check_tensors(where, got, want):
    if set(got) != set(want):
        fail(f"{where}: names {sorted(got)} != {sorted(want)}")
    for name, w in want.items():
        t = got[name]
        if DTYPES[t.dtype] != w["dtype"] or list(t.shape) != w["shape"] or raw_hex(t) != w["hex"]:
            fail(f"{where}: tensor {name}: got {t.dtype} {list(t.shape)}")


def main():
    d = sys.argv[1]
    expected = json.load(open(os.path.join(d, "expected.json")))
    for fname, spec in expected.items():
        path = os.path.join(d, fname)
        if fname.endswith(".index.json"):
            index = json.load(open(path))
            wmap = index["weight_map"]
            got = {}
            for shard in sorted(set(wmap.values())):
                sd = torch.load(os.path.join(d, shard), weights_only=True)
                for k in sd:
                    if wmap.get(k) != shard:
                        fail(f"{shard}: {k} not mapped to it")
                got.update(sd)
            total = sum(t.numel() * t.element_size() for t in got.values())
            if index["metadata"]["total_size"] != total:
                fail(f"total_size {index['metadata']['total_size']} != {total}")
            check_tensors(fname, got, spec["tensors"])
            continue
        bad = zipfile.ZipFile(path).testzip()
        if bad is not None:
            fail(f"{fname}: CRC mismatch in {bad}")
        obj = torch.load(path, weights_only=spec["weights_only"])
        check_tensors(fname, flatten(obj), spec["tensors"])
        if fname == "tree.pt":
            args = obj["args"]
            if not isinstance(args, argparse.Namespace):
                fail(f"args is {type(args)}")
            if vars(args) != {"lr": 0.5, "name": "gpt", "layers": [1, 2], "flag": True, "none": None}:
                fail(f"args = {vars(args)}")
            if obj["iteration"] != 12 or obj["tup"] != (1, "a", 2.5) or obj["blob"] != b"\x00\xff":
                fail(f"plain values: {obj['iteration']} {obj['tup']} {obj['blob']}")
            # The storage shared by two keys must come back shared.
            m = obj["model"]
            if m["tied_a"].data_ptr() != m["tied_b"].data_ptr():
                fail("tied tensors were not written as one storage")
    print("OK", len(expected))


if __name__ == "__main__":
    main()
