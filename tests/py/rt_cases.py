#!/usr/bin/python3
"""Batch driver for the reference-runtime tests: one Python process (one torch import) makes every
tiny model and computes every oracle answer the C++ tests need.

    rt_cases.py CASES.json

CASES.json is a list of {"dir", "arch", "dtype", "seed", "layers", "sliding_window",
"config_patch": {...}, "ids": [...], "greedy": N, "oracle": "ref" | "rt"}. For each case the model
directory is written by make_models.py (then config_patch is merged into its config.json), and
dir/oracle.json receives {"prompt_ids", "logits_all", "greedy_ids"} from ref_forward.py ("ref", the
shared oracle) or from rt_oracle.py ("rt": the runtime's own torch forward, which also knows the
longrope rule and qwen2's per-layer window). "ref" cases also carry "rt_logits_all" from
rt_oracle.py, so that the tests can check the two oracles agree.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models  # noqa: E402
import ref_forward  # noqa: E402
import rt_oracle  # noqa: E402
import stlib  # noqa: E402


def make(case):
    argv = [case["dir"], "--arch", case["arch"], "--dtype", case.get("dtype", "f32"),
            "--seed", str(case.get("seed", 0)), "--layers", str(case.get("layers", 2))]
    if case.get("sliding_window") is not None:
        argv += ["--sliding-window", str(case["sliding_window"])]
    saved = sys.argv
    sys.argv = ["make_models.py"] + argv
    try:
        make_models.main()
    finally:
        sys.argv = saved
    patch = case.get("config_patch")
    if patch:
        path = os.path.join(case["dir"], "config.json")
        with open(path) as f:
            cfg = json.load(f)
        for k, v in patch.items():
            if v is None and k.startswith("-"):
                cfg.pop(k[1:], None)
            else:
                cfg[k] = v
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)


def oracle(case):
    ids, greedy = case["ids"], case.get("greedy", 0)
    if case.get("oracle", "ref") == "ref":
        cfg, sd = stlib.load_hf_dir(case["dir"])
        res = ref_forward.run(cfg, sd, ids, greedy)
        # The runtime's own oracle too, so the tests can show the two agree where both apply
        # (it knows the first five families only).
        if cfg.get("model_type") in ("llama", "mistral", "qwen2", "minicpm", "gpt2"):
            W = rt_oracle.load_weights(case["dir"])
            res["rt_logits_all"] = rt_oracle.forward(cfg, W, ids, torch.float32).tolist()
        return res
    with open(os.path.join(case["dir"], "config.json")) as f:
        cfg = json.load(f)
    W = rt_oracle.load_weights(case["dir"])
    logits = rt_oracle.forward(cfg, W, ids, torch.float32)
    seq, out = list(ids), []
    for _ in range(greedy):
        nxt = int(torch.argmax(rt_oracle.forward(cfg, W, seq, torch.float32)[-1]))
        out.append(nxt)
        seq.append(nxt)
    return {"prompt_ids": ids, "logits_all": logits.tolist(), "greedy_ids": out}


def main():
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for case in cases:
        make(case)
        with open(os.path.join(case["dir"], "oracle.json"), "w") as f:
            json.dump(oracle(case), f)


if __name__ == "__main__":
    main()
