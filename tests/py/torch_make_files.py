"""Writes checkpoints with real torch.save into OUTDIR plus expected.json describing, per file, the
tensors a reader must find: {file: {name: {"dtype", "shape", "hex"}}} where hex is the tensor's
contiguous little-endian bytes. Used by the C++ torch reader tests."""
import argparse
import collections
import json
import os
import struct
import sys
import zipfile

import torch

DTYPES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
          torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
          torch.uint8: "u8", torch.bool: "bool"}


def raw_hex(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes().hex()


def describe(tensors):
    return {k: {"dtype": DTYPES[v.dtype], "shape": list(v.shape), "hex": raw_hex(v)} for k, v in tensors.items()}


def rewrite_with_zip64_extras(src, dst):
    """Re-encodes the central directory so every entry's sizes and header offset live in ZIP64
    extra fields (header fields 0xFFFFFFFF), as writers do for archives over 4 GiB."""
    data = open(src, "rb").read()
    infos = zipfile.ZipFile(src).infolist()
    first_cd = data.find(b"PK\x01\x02")
    body = data[:first_cd]
    cd = b""
    for i in infos:
        extra = struct.pack("<HHQQQ", 1, 24, i.file_size, i.compress_size, i.header_offset)
        name = i.filename.encode()
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x032D, 45, 0, 0, 0, 0x21, i.CRC,
                          0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF)
        cd += name + extra
    n, off = len(infos), len(body)
    end64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x032D, 45, 0, 0, n, n, len(cd), off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, off + len(cd), 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(dst, "wb") as f:
        f.write(body + cd + end64 + loc + eocd)


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    expected = {}

    basic = {
        "f32": torch.randn(3, 4), "f16": torch.randn(5).half(), "bf16": torch.randn(2, 3).bfloat16(),
        "f64": torch.randn(2, 2).double(), "i64": torch.arange(-3, 7), "i32": torch.arange(6, dtype=torch.int32),
        "i16": torch.tensor([-2, 300], dtype=torch.int16), "i8": torch.tensor([-5, 7], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8), "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 4),
    }
    torch.save(basic, os.path.join(out, "basic.pt"))
    expected["basic.pt"] = describe(basic)
    torch.save(basic, os.path.join(out, "proto4.pt"), pickle_protocol=4)
    expected["proto4.pt"] = describe(basic)

    base = torch.arange(48, dtype=torch.float32).reshape(6, 8)
    views = {"base": base, "slice": base[:, ::2], "tr": base.t(), "off": base[3:], "col": base[:, 5],
             "bf": torch.randn(4, 6).bfloat16().t()[1:]}
    torch.save(views, os.path.join(out, "views.pt"))
    expected["views.pt"] = describe(views)

    w = torch.randn(5, 3)
    tied = {"embed.weight": w, "lm_head.weight": w}
    torch.save(tied, os.path.join(out, "tied.pt"))
    expected["tied.pt"] = describe(tied)

    nested = {"args": argparse.Namespace(lr=0.1, name="gpt", layers=[1, 2]), "iteration": 7,
              "model": {"layer": {"w": torch.randn(2, 2)}, "b": torch.randn(2)}}
    torch.save(nested, os.path.join(out, "nested.pt"))
    expected["nested.pt"] = describe({"layer.w": nested["model"]["layer"]["w"], "b": nested["model"]["b"]})

    mod = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2))
    sd = mod.state_dict()
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
    torch.save(sd, os.path.join(out, "module.pt"))
    expected["module.pt"] = describe(sd)

    params = {"p": torch.nn.Parameter(torch.randn(2, 3)), "q": torch.randn(3)}
    torch.save(params, os.path.join(out, "params.pt"))
    expected["params.pt"] = describe(params)

    legacy = {"a": torch.randn(3, 2), "t": base.t(), "s": base[2:4], "h": torch.randn(4).half()}
    torch.save(legacy, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
    expected["legacy.pt"] = describe(legacy)

    rewrite_with_zip64_extras(os.path.join(out, "basic.pt"), os.path.join(out, "zip64.pt"))
    # The rewritten archive must still be a valid torch file.
    back = torch.load(os.path.join(out, "zip64.pt"))
    assert all(torch.equal(back[k], basic[k]) for k in basic)
    expected["zip64.pt"] = describe(basic)

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
