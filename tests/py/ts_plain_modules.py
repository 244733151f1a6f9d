#!/usr/bin/python3
"""Writes TorchScript archives of plain torch modules (not ours) with torch.jit.save, for the reader.

    ts_plain_modules.py OUT_DIR
    ts_plain_modules.py --compare ORIG.pt RESAVED.pt [ORIG2.pt RESAVED2.pt ...]
        runs each pair on the same input (in the re-saved parameters' dtype) and prints one JSON
        line {RESAVED: {"max_abs_diff", "dtypes"}}

OUT_DIR/scripted.pt  torch.jit.script of a small net: Linear, LayerNorm, BatchNorm1d (buffers,
                     an int64 counter), a ModuleList, a tied Linear pair, a str and an int
                     attribute, a bf16 parameter, a non-persistent buffer
OUT_DIR/traced.pt    torch.jit.trace of the same net
OUT_DIR/expected.json  per file: {"parameters": {name: {dtype, shape, hex}}, "buffers": {...},
                     "root_class": qualified name, "classes": [qualified names of module classes]}
"""
import json
import os
import sys

import torch


class Block(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = torch.nn.Linear(n, n)
        self.norm = torch.nn.LayerNorm(n)

    def forward(self, x):
        return self.norm(torch.relu(self.fc(x)))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Linear(6, 8, bias=False)
        self.bn = torch.nn.BatchNorm1d(8)
        self.blocks = torch.nn.ModuleList([Block(8), Block(8)])
        self.out = torch.nn.Linear(8, 8)
        self.tied = torch.nn.Linear(8, 8, bias=False)
        self.tied.weight = self.out.weight
        self.scale = torch.nn.Parameter(torch.full([8], 0.5, dtype=torch.bfloat16))
        self.register_buffer("offsets", torch.arange(8, dtype=torch.float32), persistent=False)
        self.name = "plain"
        self.depth = 2

    def forward(self, x):
        h = self.bn(self.inp(x))
        for b in self.blocks:
            h = b(h)
        return self.tied(self.out(h)) * self.scale.float() + self.offsets


def hexdump(t):
    t = t.detach().contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes().hex() if t.numel() else ""


def describe(m):
    # every attribute, tied ones under each name (named_parameters() would keep one of them)
    params, bufs = {}, {}
    for prefix, mod in m.named_modules():
        for table, into in ((mod._parameters, params), (mod._buffers, bufs)):
            for n, t in table.items():
                into[f"{prefix}.{n}" if prefix else n] = {
                    "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "hex": hexdump(t)}
    return params, bufs


def compare(pairs):
    torch.manual_seed(1)
    x = torch.randn(3, 6)
    res = {}
    with torch.no_grad():
        for orig, new in zip(pairs[::2], pairs[1::2]):
            a, b = torch.jit.load(orig), torch.jit.load(new)
            dt = b.inp.weight.dtype
            res[os.path.basename(new)] = {"max_abs_diff": float((a(x) - b(x.to(dt)).float()).abs().max()),
                                          "dtypes": sorted({str(p.dtype).replace("torch.", "") for p in b.parameters()})}
    print(json.dumps(res))


def main():
    if sys.argv[1] == "--compare":
        return compare(sys.argv[2:])
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        net.bn.num_batches_tracked.fill_(7)
    expected = {}
    x = torch.randn(3, 6)
    for name, mod in (("scripted.pt", torch.jit.script(net)), ("traced.pt", torch.jit.trace(net, x))):
        path = os.path.join(out, name)
        torch.jit.save(mod, path)
        loaded = torch.jit.load(path)
        params, bufs = describe(loaded)
        expected[name] = {"parameters": params, "buffers": bufs,
                          "root_class": loaded._c._type().qualified_name(),
                          "modules": sorted(n for n, _ in loaded.named_modules())}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
