#!/usr/bin/python3
"""llama2.c checkpoints for the tests: a reader + forward pass after llama2.c's run.c, and a writer.

    llama2c_ref.py FILE --ids 1,2,3 [--out logits.json] [--greedy N]
        forward pass; prints {"prompt_ids", "logits_all", "greedy_ids"} like ref_forward.py
    llama2c_ref.py --make OUT --version {0,1,2} [--seed N] [--unshared] [--group-size N]
        writes a small random model in export.py's layout (formats.md §12): version 0 = legacy
        (run.c), 1 = fp32 with the "ak42" header, 2 = int8 groups. The same seed gives the same
        weights in every version, so the three files describe one model (v2 up to its rounding).
    llama2c_ref.py --make-all DIR [--seed N]
        writes DIR/m{0,1,2}{s,u}.bin: every version, shared (s) and unshared (u) classifier.
    llama2c_ref.py --pairs FILE=HF_DIR,... --ids 1,2,3
        for each pair prints {"file", "ref": logits of FILE by this script, "hf": logits of
        HF_DIR by ref_forward.py} as one JSON list (one interpreter start for many checks).

The forward follows run.c: RMSNorm eps 1e-5, RoPE on adjacent pairs (2i, 2i+1) with
freq = 10000^(-(i mod head_size)/head_size), GQA (kv head = head / (n_heads / n_kv_heads)),
SwiGLU w2(silu(w1 x) * w3 x), classifier = token embedding when shared.
"""
import argparse
import json
import math
import struct
import sys

import numpy as np
import torch

MAGIC = 0x616B3432
NAMES = ["tok_embeddings", "attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3",
         "norm", "output"]


def shapes(cfg):
    d, hd, L = cfg["dim"], cfg["hidden_dim"], cfg["n_layers"]
    kv = cfg["n_kv_heads"] * (d // cfg["n_heads"])
    return {"tok_embeddings": (cfg["vocab_size"], d), "attention_norm": (L, d), "wq": (L, d, d),
            "wk": (L, kv, d), "wv": (L, kv, d), "wo": (L, d, d), "ffn_norm": (L, d),
            "w1": (L, hd, d), "w2": (L, d, hd), "w3": (L, hd, d), "norm": (d,),
            "output": (cfg["vocab_size"], d)}


class Cursor:
    def __init__(self, raw, off):
        self.raw, self.off = raw, off

    def f32(self, shape):
        n = int(np.prod(shape))
        a = np.frombuffer(self.raw, dtype="<f4", count=n, offset=self.off).reshape(shape)
        self.off += 4 * n
        return torch.from_numpy(a.astype(np.float32))

    def q8(self, shape, gs):
        n = int(np.prod(shape))
        q = np.frombuffer(self.raw, dtype=np.int8, count=n, offset=self.off).astype(np.float32)
        self.off += n
        s = np.frombuffer(self.raw, dtype="<f4", count=n // gs, offset=self.off)
        self.off += 4 * (n // gs)
        return torch.from_numpy((q.reshape(-1, gs) * s[:, None]).reshape(shape).astype(np.float32))


def read(path):
    raw = open(path, "rb").read()
    (magic,) = struct.unpack_from("<I", raw, 0)
    if magic == MAGIC:
        (version,) = struct.unpack_from("<i", raw, 4)
        vals = struct.unpack_from("<7i", raw, 8)
        shared = raw[36] != 0
        gs = struct.unpack_from("<i", raw, 37)[0] if version == 2 else 0
        off = 256
    else:
        version, vals, off = 0, struct.unpack_from("<7i", raw, 0), 28
        shared = vals[5] > 0
    cfg = dict(zip(["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"], vals))
    cfg["vocab_size"] = abs(cfg["vocab_size"])
    cfg["shared"], cfg["version"] = shared, version
    sh = shapes(dict(cfg, max_seq_len=cfg["seq_len"]))
    c = Cursor(raw, off)
    w = {}
    if version == 0:
        for n in ["tok_embeddings", "attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3", "norm"]:
            w[n] = c.f32(sh[n])
        head = cfg["dim"] // cfg["n_heads"]
        c.off += 2 * 4 * cfg["seq_len"] * head // 2  # freq_cis_real, freq_cis_imag
        if not shared:
            w["output"] = c.f32(sh["output"])
    elif version == 1:
        for n in ["attention_norm", "ffn_norm", "norm", "tok_embeddings", "wq", "wk", "wv", "wo", "w1", "w2", "w3"]:
            w[n] = c.f32(sh[n])
        if not shared:
            w["output"] = c.f32(sh["output"])
    elif version == 2:
        for n in ["attention_norm", "ffn_norm", "norm"]:
            w[n] = c.f32(sh[n])
        # export.py quantizes each layer's matrix separately: per layer int8 values then scales.
        w["tok_embeddings"] = c.q8(sh["tok_embeddings"], gs)
        for n in ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]:
            w[n] = torch.stack([c.q8(sh[n][1:], gs) for _ in range(cfg["n_layers"])])
        if not shared:
            w["output"] = c.q8(sh["output"], gs)
    else:
        raise SystemExit(f"llama2c_ref: unknown version {version}")
    if c.off != len(raw):
        raise SystemExit(f"llama2c_ref: {path}: read {c.off} bytes, file has {len(raw)}")
    if shared:
        w["output"] = w["tok_embeddings"]
    return cfg, w


def rmsnorm(x, wt):
    return wt * (x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))


def rope_pairs(x, pos, head_size):
    # x: [T, H, hs]; rotate (2i, 2i+1) by pos * 10000^(-2i/hs), as run.c does.
    i2 = torch.arange(0, head_size, 2, dtype=torch.float32)
    freq = 1.0 / torch.pow(torch.tensor(10000.0), i2 / head_size)
    ang = pos[:, None].float() * freq[None, :]  # [T, hs/2]
    c, s = ang.cos()[:, None, :], ang.sin()[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def forward(cfg, w, ids):
    d, nh, nkv, L = cfg["dim"], cfg["n_heads"], cfg["n_kv_heads"], cfg["n_layers"]
    hs = d // nh
    T = len(ids)
    pos = torch.arange(T)
    x = w["tok_embeddings"][torch.tensor(ids)]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    for l in range(L):
        h = rmsnorm(x, w["attention_norm"][l])
        q = (h @ w["wq"][l].t()).view(T, nh, hs)
        k = (h @ w["wk"][l].t()).view(T, nkv, hs)
        v = (h @ w["wv"][l].t()).view(T, nkv, hs)
        q, k = rope_pairs(q, pos, hs), rope_pairs(k, pos, hs)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hs)
        att = torch.softmax(att.masked_fill(mask[None], float("-inf")), dim=-1)
        o = torch.einsum("hts,shd->thd", att, v).reshape(T, d)
        x = x + o @ w["wo"][l].t()
        h = rmsnorm(x, w["ffn_norm"][l])
        x = x + (torch.nn.functional.silu(h @ w["w1"][l].t()) * (h @ w["w3"][l].t())) @ w["w2"][l].t()
    return rmsnorm(x, w["norm"]) @ w["output"].t()


# ---- writer -------------------------------------------------------------------------------------

def make_weights(seed, unshared):
    cfg = {"dim": 64, "hidden_dim": 96, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2,
           "vocab_size": 96, "max_seq_len": 32}
    g = torch.Generator().manual_seed(seed)
    w = {}
    for n, shp in shapes(cfg).items():
        if n == "output" and not unshared:
            continue
        if n.endswith("norm"):
            w[n] = 1.0 + 0.1 * torch.randn(*shp, generator=g)
        else:
            w[n] = 0.08 * torch.randn(*shp, generator=g)
    return cfg, w


def q80(t, gs):
    t = t.float().reshape(-1, gs)
    scale = t.abs().max(dim=1).values / 127.0
    q = torch.round(t / scale[:, None]).to(torch.int8)
    return q.numpy().tobytes(), scale.numpy().astype("<f4").tobytes()


def write(path, version, cfg, w, group_size):
    shared = "output" not in w
    f32 = lambda t: t.float().contiguous().numpy().astype("<f4").tobytes()
    dims = [cfg["dim"], cfg["hidden_dim"], cfg["n_layers"], cfg["n_heads"], cfg["n_kv_heads"],
            cfg["vocab_size"], cfg["max_seq_len"]]
    out = bytearray()
    if version == 0:
        dims[5] = dims[5] if shared else -dims[5]
        out += struct.pack("<7i", *dims)
        for n in ["tok_embeddings", "attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3", "norm"]:
            out += f32(w[n])
        hs = cfg["dim"] // cfg["n_heads"]
        freqs = 1.0 / (10000.0 ** (torch.arange(0, hs, 2)[: hs // 2].float() / hs))
        ang = torch.outer(torch.arange(cfg["max_seq_len"]).float(), freqs)
        out += f32(torch.cos(ang)) + f32(torch.sin(ang))
    else:
        out += struct.pack("<I", MAGIC) + struct.pack("<i", version) + struct.pack("<7i", *dims)
        out += struct.pack("<B", int(shared))
        if version == 2:
            out += struct.pack("<i", group_size)
        out += b"\0" * (256 - len(out))
        if version == 1:
            for n in ["attention_norm", "ffn_norm", "norm", "tok_embeddings", "wq", "wk", "wv", "wo", "w1", "w2", "w3"]:
                out += f32(w[n])
        else:
            for n in ["attention_norm", "ffn_norm", "norm"]:
                out += f32(w[n])
            mats = [w["tok_embeddings"]]
            for n in ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]:
                mats += [w[n][l] for l in range(cfg["n_layers"])]
            for m in mats:
                q, s = q80(m, group_size)
                out += q + s
    if not shared:
        if version == 2:
            q, s = q80(w["output"], group_size)
            out += q + s
        else:
            out += f32(w["output"])
    with open(path, "wb") as fh:
        fh.write(bytes(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?")
    ap.add_argument("--ids", type=lambda s: [int(t) for t in s.split(",") if t.strip()])
    ap.add_argument("--out")
    ap.add_argument("--greedy", type=int, default=0)
    ap.add_argument("--make")
    ap.add_argument("--version", type=int, default=1, choices=[0, 1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unshared", action="store_true")
    ap.add_argument("--group-size", type=int, default=32)
    ap.add_argument("--make-all")
    ap.add_argument("--pairs")
    a = ap.parse_args()
    if a.make_all:
        import os
        for unshared in (False, True):
            cfg, w = make_weights(a.seed, unshared)
            for v in (0, 1, 2):
                write(os.path.join(a.make_all, f"m{v}{'u' if unshared else 's'}.bin"), v, cfg, w, a.group_size)
        return
    if a.pairs:
        import ref_forward
        import stlib
        res = []
        with torch.no_grad():
            for pair in a.pairs.split(","):
                f, hf = pair.split("=", 1)
                cfg, w = read(f)
                hcfg, sd = stlib.load_hf_dir(hf)
                res.append({"file": f, "ref": forward(cfg, w, a.ids).tolist(),
                            "hf": ref_forward.forward(hcfg, sd, a.ids).tolist()})
        sys.stdout.write(json.dumps(res) + "\n")
        return
    if a.make:
        cfg, w = make_weights(a.seed, a.unshared)
        write(a.make, a.version, cfg, w, a.group_size)
        return
    if not a.file or a.ids is None:
        ap.error("FILE and --ids are required (or --make OUT)")
    cfg, w = read(a.file)
    with torch.no_grad():
        logits = forward(cfg, w, a.ids)
        seq, greedy, last = list(a.ids), [], logits
        for _ in range(a.greedy):
            nxt = int(torch.argmax(last[-1]))
            greedy.append(nxt)
            seq.append(nxt)
            last = forward(cfg, w, seq)
    res = {"prompt_ids": list(a.ids), "logits_all": [[float(v) for v in r] for r in logits],
           "greedy_ids": greedy}
    text = json.dumps(res)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
