#!/usr/bin/python3
"""Logits of several id sequences from the independent torch forward (ref_forward.py), one process.

    ref_multi.py HF_DIR IDS [IDS ...]        (IDS = 1,2,3)

Prints {"logits": [[[...] per position] per sequence], "greedy": [8 greedy ids after the first]}.
"""
import json
import sys

import torch

import ref_forward
import stlib


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    cfg, sd = stlib.load_hf_dir(sys.argv[1])
    seqs = [ref_forward.parse_ids(a) for a in sys.argv[2:]]
    with torch.no_grad():
        out = [[[float(v) for v in row] for row in ref_forward.forward(cfg, sd, s)] for s in seqs]
        greedy = ref_forward.run(cfg, sd, seqs[0], 8)["greedy_ids"]
    sys.stdout.write(json.dumps({"logits": out, "greedy": greedy}) + "\n")


if __name__ == "__main__":
    main()
