#!/usr/bin/python3
"""Source models and their reference logits for the ONNX interop tests, in one process.

    onnx_oracle.py OUT_DIR --ids 1,2,3 [--ids 4,5 ...] [--greedy N] [--spm TOKENIZER_MODEL]
                   [--bpe DIR] [--texts TEXTS_JSON] NAME=MAKE_MODELS_ARGS [NAME=... ...]

For each NAME, writes OUT_DIR/NAME with make_models.py's arguments (a model with "--vocab 32000"
also gets --spm's tokenizer.model copied in, one with "--vocab 50257" --bpe's vocab.json and
merges.txt), then runs the independent torch forward
(ref_forward.py) on every --ids sequence. Prints one JSON line:
{"models": {NAME: {"logits": [per sequence [[...] per position]], "greedy": [N ids after the
first sequence]}}, "spm_ids": [SentencePiece ids of each text, no BOS] (with --texts)}.
"""
import argparse
import json
import os
import shutil
import sys

import torch

import make_models
import ref_forward
import stlib


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--ids", action="append", required=True)
    ap.add_argument("--greedy", type=int, default=8)
    ap.add_argument("--spm")
    ap.add_argument("--bpe")
    ap.add_argument("--texts")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    seqs = [ref_forward.parse_ids(s) for s in a.ids]
    res = {"models": {}}
    for spec in a.models:
        name, args = spec.split("=", 1)
        path = os.path.join(a.out, name)
        saved = sys.argv
        sys.argv = ["make_models.py", path] + args.split()  # no spaces inside one argument
        make_models.VOCAB = 256  # main() may change the module default (--vocab)
        make_models.main()
        sys.argv = saved
        if a.spm and "--vocab 32000" in args:
            shutil.copy(a.spm, os.path.join(path, "tokenizer.model"))
        if a.bpe and "--vocab 50257" in args:
            for f in ("vocab.json", "merges.txt"):
                shutil.copy(os.path.join(a.bpe, f), os.path.join(path, f))
        cfg, sd = stlib.load_hf_dir(path)
        with torch.no_grad():
            logits = [[[float(v) for v in row] for row in ref_forward.forward(cfg, sd, s)] for s in seqs]
            greedy = ref_forward.run(cfg, sd, seqs[0], a.greedy)["greedy_ids"]
        res["models"][name] = {"logits": logits, "greedy": greedy}
    if a.texts and a.spm:
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=a.spm)
        with open(a.texts, encoding="utf-8") as f:
            res["spm_ids"] = [sp.encode(t) for t in json.load(f)]
    sys.stdout.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
