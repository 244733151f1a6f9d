#!/usr/bin/python3
"""Runs our TorchScript archives in real torch (torch.jit.load) against an independent forward.

    ts_oracle.py --src HF_DIR --f32 A.pt [--bf16 B.pt] [--f16 C.pt] [--resave OUT.pt] --ids 1,2,3

Prints one JSON line:
  f32:    max |logits - ref_forward(HF_DIR)|, the reference's range, top-1 agreement, the output
          shape, and whether the archive's named_parameters() are the source's tensors, bit for
          bit, under the same names (buffers listed apart)
  batch:  max |difference| between a batch of two sequences and each run alone
  train_eval: .training of every submodule after .train() and after .eval()
  resave: torch.jit.save of the loaded module (to --resave), loaded again: max |difference| and
          the version record torch wrote
  bf16:   output dtype and max |difference| against ref_forward over the bf16-rounded weights in
          float32 (what a bf16 model should compute, up to bf16 rounding of the activations)
  f16:    parameter dtypes, whether they equal the source cast to fp16 bit for bit, and the
          forward of the loaded module after .float() against ref_forward over fp16-rounded
          weights (torch 1.13 has no fp16 matmul on CPU, so the fp16 module itself cannot run)
The reference is tests/py/ref_forward.py, written from the architecture definitions.
"""
import argparse
import json
import os
import zipfile

import torch

import ref_forward
import stlib


def compare(out, ref):
    out = out.float()
    return {"max_abs_diff": float((out - ref).abs().max()), "range": float(ref.abs().max()),
            "top1": float((out.argmax(-1) == ref.argmax(-1)).float().mean())}


def params_equal(m, sd, dtype=None):
    got = dict(m.named_parameters())
    if sorted(got) != sorted(sd):
        return False, sorted(set(got) ^ set(sd))
    bad = [k for k, v in sd.items()
           if got[k].dtype != (dtype or v.dtype) or not torch.equal(got[k].detach(), v.to(dtype or v.dtype))]
    return not bad, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--f32", required=True)
    ap.add_argument("--bf16")
    ap.add_argument("--f16")
    ap.add_argument("--resave")
    ap.add_argument("--ids", required=True, type=ref_forward.parse_ids)
    a = ap.parse_args()
    cfg, sd = stlib.load_hf_dir(a.src)
    ids = a.ids
    x = torch.tensor([ids], dtype=torch.long)
    res = {}
    with torch.no_grad():
        ref = ref_forward.forward(cfg, sd, ids)
        m = torch.jit.load(a.f32)
        out = m(x)
        r = compare(out[0], ref)
        r["shape"] = list(out.shape)
        r["params_equal"], r["param_mismatches"] = params_equal(m, sd)
        r["buffers"] = [n for n, _ in m.named_buffers()]
        res["f32"] = r

        # a batch of two: the second sequence reversed
        x2 = torch.tensor([ids, ids[::-1]], dtype=torch.long)
        both = m(x2)
        res["batch"] = {"max_abs_diff": max(float((both[0] - out[0]).abs().max()),
                                            float((both[1] - m(x2[1:])[0]).abs().max()))}

        m.train()
        after_train = all(mod.training for mod in m.modules())
        m.eval()
        after_eval = not any(mod.training for mod in m.modules())
        res["train_eval"] = {"after_train": after_train, "after_eval": after_eval}

        if a.resave:
            torch.jit.save(m, a.resave)
            m2 = torch.jit.load(a.resave)
            with zipfile.ZipFile(a.resave) as z:
                ver = [n for n in z.namelist() if n.endswith("/version")]
                version = z.read(ver[0]).decode().strip() if ver else None
            res["resave"] = {"max_abs_diff": float((m2(x) - out).abs().max()), "version": version}

        if a.bf16:
            mb = torch.jit.load(a.bf16)
            ob = mb(x)
            ref_b = ref_forward.forward(cfg, {k: v.to(torch.bfloat16) for k, v in sd.items()}, ids)
            r = compare(ob[0], ref_b)
            r["dtype"] = str(ob.dtype).replace("torch.", "")
            r["params_equal"], _ = params_equal(mb, sd, torch.bfloat16)
            res["bf16"] = r

        if a.f16:
            mh = torch.jit.load(a.f16)
            r = {"param_dtypes": sorted({str(p.dtype).replace("torch.", "") for p in mh.parameters()})}
            r["params_equal"], _ = params_equal(mh, sd, torch.float16)
            ref_h = ref_forward.forward(cfg, {k: v.to(torch.float16) for k, v in sd.items()}, ids)
            r.update(compare(mh.float()(x)[0], ref_h))
            res["f16"] = r
    print(json.dumps(res))


if __name__ == "__main__":
    main()
