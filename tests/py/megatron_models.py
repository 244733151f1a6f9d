#!/usr/bin/python3
"""Tiny HF test models for the Megatron tests: make_models.py with more heads and query groups so
that tensor-parallel sizes up to 4 divide both, and an optional vocabulary size that is not a
multiple of 128 (so the Megatron side carries padding rows).

    megatron_models.py OUT --arch llama|mistral|minicpm|qwen3 [--vocab N] [--layers N] [--dtype ...] [--seed N]
"""
import argparse
import sys

import make_models


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--vocab", type=int, default=250)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    make_models.HEADS, make_models.KV_HEADS, make_models.VOCAB = a.heads, a.kv_heads, a.vocab
    sys.argv = [sys.argv[0], a.out, "--arch", a.arch, "--layers", str(a.layers), "--dtype", a.dtype,
                "--seed", str(a.seed)]
    make_models.main()


if __name__ == "__main__":
    main()
