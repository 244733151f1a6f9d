"""Compares two logits dumps ({"logits_all": [[...], ...], ...}) for the end-to-end tests.

  logits_close.py A.json B.json --tol 1e-4 [--relative]
Checks max |a - b| <= tol * max(1, range of A's logits) when --relative, else <= tol, and that the
argmax agrees at every position. Prints the numbers; exits 1 on failure.
"""
import argparse
import json
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--relative", action="store_true")
    args = ap.parse_args()
    a = np.array(json.load(open(args.a))["logits_all"], dtype=np.float64)
    b = np.array(json.load(open(args.b))["logits_all"], dtype=np.float64)
    if a.shape != b.shape:
        print(f"shapes differ: {a.shape} vs {b.shape}")
        sys.exit(1)
    diff = float(np.abs(a - b).max())
    scale = max(1.0, float(a.max() - a.min())) if args.relative else 1.0
    top1 = bool((a.argmax(-1) == b.argmax(-1)).all())
    ok = diff <= args.tol * scale and top1
    print(f"max_abs_diff {diff:.3e} limit {args.tol * scale:.3e} top1_agree {top1} -> {'OK' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
