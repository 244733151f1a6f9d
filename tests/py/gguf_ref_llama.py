#!/usr/bin/python3
"""Independent reference for the GGUF interop test: a Hugging Face-convention Llama forward pass
(rotate_half RoPE, GQA, SwiGLU, RMSNorm) in numpy float64 over HF-layout weights dumped by the
C++ test, printing for every position the most likely next token and its log-probability.

usage: gguf_ref_llama.py DIR TOKEN,TOKEN,... [--f16]
DIR holds config.json, manifest.json ({name: shape}) and one raw little-endian float32 file per
tensor (<name>.f32). --f16 rounds 2-D weights to float16 first, as an f16 GGUF stores them.
"""
import json
import os
import sys

import numpy as np


def load(d, f16):
    man = json.load(open(os.path.join(d, "manifest.json")))
    w = {}
    for name, shape in man.items():
        a = np.fromfile(os.path.join(d, name + ".f32"), dtype="<f4").reshape(shape)
        if f16 and a.ndim == 2:
            a = a.astype(np.float16)
        w[name] = a.astype(np.float64)
    return w


def rms_norm(x, g, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope(x, pos, theta):
    # x: [T, H, hd]; HF rotate_half: pairs (i, i + hd/2).
    hd = x.shape[-1]
    inv = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    ang = np.outer(pos, inv)                      # [T, hd/2]
    cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    rot = np.concatenate([-x2, x1], -1)
    return x * cos + rot * sin


def forward(w, c, tokens):
    h_dim, nh, nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim") or h_dim // nh
    eps, theta = c["rms_norm_eps"], c.get("rope_theta", 10000.0)
    T = len(tokens)
    pos = np.arange(T, dtype=np.float64)
    x = w["model.embed_tokens.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % i
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (a @ w[p + "self_attn.q_proj.weight"].T).reshape(T, nh, hd)
        k = (a @ w[p + "self_attn.k_proj.weight"].T).reshape(T, nkv, hd)
        v = (a @ w[p + "self_attn.v_proj.weight"].T).reshape(T, nkv, hd)
        q, k = rope(q, pos, theta), rope(k, pos, theta)
        rep = nh // nkv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, nh * hd)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = m @ w[p + "mlp.gate_proj.weight"].T
        u = m @ w[p + "mlp.up_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


def main():
    d, toks = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
    f16 = "--f16" in sys.argv[3:]
    c = json.load(open(os.path.join(d, "config.json")))
    logits = forward(load(d, f16), c, toks)
    out = []
    for row in logits:
        m = row.max()
        lse = m + np.log(np.exp(row - m).sum())
        order = np.argsort(-row)[:3]
        out.append({"token": int(order[0]), "logprob": float(row[order[0]] - lse),
                    "top": [[int(t), float(row[t] - lse)] for t in order]})
    print(json.dumps({"positions": out}))


if __name__ == "__main__":
    main()
