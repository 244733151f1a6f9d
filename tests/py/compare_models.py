"""Compares the tensors of two HF model directories (or weight files) for the end-to-end tests.

  compare_models.py A B --mode equal        every tensor of A is in B, same shape, bit-identical
  compare_models.py A B --mode cast:f16     B == A.to(float16) (torch's own cast), bit for bit
  compare_models.py A B --mode cast:bf16
  compare_models.py A B --mode shapes       same names, dtypes and shapes (values not compared)
Prints one line per problem and exits 1 when there is any.
"""
import argparse
import sys

import torch

import stlib

DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}


def load(path):
    if path.endswith(".safetensors"):
        return stlib.load_safetensors(path)[0]
    if path.endswith(".bin") or path.endswith(".pt"):
        return torch.load(path, map_location="cpu", weights_only=True)
    return stlib.load_state_dict(path)


def bits(t):
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16)
    if t.dtype == torch.float32:
        return t.view(torch.int32)
    if t.dtype == torch.float64:
        return t.view(torch.int64)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--mode", default="equal")
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    problems = []
    if set(a) != set(b):
        problems.append(f"names differ: only in A {sorted(set(a) - set(b))}, only in B {sorted(set(b) - set(a))}")
    for name, ta in a.items():
        if name not in b:
            continue
        tb = b[name]
        if args.mode.startswith("cast:") and ta.is_floating_point():
            ta = ta.to(DTYPES[args.mode[5:]])
        if ta.dtype != tb.dtype or tuple(ta.shape) != tuple(tb.shape):
            problems.append(f"{name}: {ta.dtype}{tuple(ta.shape)} vs {tb.dtype}{tuple(tb.shape)}")
            continue
        if args.mode == "shapes":
            continue
        if not torch.equal(bits(ta.contiguous()), bits(tb.contiguous())):
            problems.append(f"{name}: values differ (max |diff| {(ta.double() - tb.double()).abs().max().item()})")
    for p in problems:
        print(p)
    print(f"compared {len(a)} tensors: {'OK' if not problems else str(len(problems)) + ' problems'}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
