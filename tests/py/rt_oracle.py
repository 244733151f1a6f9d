#!/usr/bin/env python3
"""Independent PyTorch forward pass for the reference-runtime tests.

Reads an HF-style directory (config.json + model.safetensors or pytorch_model.bin), runs the
decoder written out here with plain torch ops, the way the HF modelling code computes it
(llama / mistral / qwen2 / minicpm / gpt2), and writes
{"prompt_ids": [...], "logits_all": [[...], ...], "greedy_ids": [...]} to --out.

usage: rt_oracle.py DIR --ids 1,2,3 [--greedy N] [--double] --out logits.json
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b:base + e]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            sys.exit(f"rt_oracle: dtype {dt} of {name} not supported")
        out[name] = torch.from_numpy(arr.copy().reshape(info["shape"]))
    return out


def load_weights(d):
    st = os.path.join(d, "model.safetensors")
    if os.path.exists(st):
        return read_safetensors(st)
    sd = torch.load(os.path.join(d, "pytorch_model.bin"), map_location="cpu")
    return {k: v.float() for k, v in sd.items()}


def inv_freq_for(cfg, head_dim):
    theta = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    att = 1.0
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        lo_wl, hi_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > lo_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wl < hi_wl) * ~(wl > lo_wl)
        inv = torch.where(medium, smoothed, scaled)
    elif kind == "longrope":
        ext = torch.tensor(rs["short_factor"], dtype=torch.float32)
        inv = 1.0 / (ext * theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        orig = rs.get("original_max_position_embeddings", cfg["max_position_embeddings"])
        f = cfg["max_position_embeddings"] / orig
        att = rs.get("attention_factor", 1.0 if f <= 1 else math.sqrt(1 + math.log(f) / math.log(orig)))
    elif kind != "default":
        sys.exit(f"rt_oracle: rope type {kind} not supported")
    return inv, att


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def attention(q, k, v, n_heads, n_kv, hd, scale, window):
    S = q.shape[0]
    q = q.view(S, n_heads, hd).transpose(0, 1)
    k = k.view(S, n_kv, hd).transpose(0, 1).repeat_interleave(n_heads // n_kv, dim=0)
    v = v.view(S, n_kv, hd).transpose(0, 1).repeat_interleave(n_heads // n_kv, dim=0)
    scores = (q @ k.transpose(1, 2)) * scale
    i = torch.arange(S).view(-1, 1)
    j = torch.arange(S).view(1, -1)
    masked = j > i
    if window is not None:
        masked = masked | (j <= i - window)
    scores = scores.masked_fill(masked, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    return (p @ v).transpose(0, 1).reshape(S, n_heads * hd)


def llama_forward(cfg, W, ids, dt):
    mt = cfg["model_type"]
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    L = cfg["num_hidden_layers"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    act = cfg.get("hidden_act", "silu")
    g = lambda n: W[n].to(dt)
    lin = lambda x, n: x @ g(n + ".weight").T + (g(n + ".bias") if (n + ".bias") in W else 0)

    def rms(x, n):
        var = x.pow(2).mean(-1, keepdim=True)
        return g(n) * (x * torch.rsqrt(var + eps))

    S = len(ids)
    inv, att = inv_freq_for(cfg, hd)
    pos = torch.arange(S, dtype=torch.float32)
    freqs = torch.outer(pos, inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = (emb.cos() * att).to(dt), (emb.sin() * att).to(dt)
    window = None
    if mt == "mistral":
        window = cfg.get("sliding_window")
    mup = mt == "minicpm"
    h = g("model.embed_tokens.weight")[torch.tensor(ids)]
    if mup:
        h = h * cfg.get("scale_emb", 1)
    res = cfg.get("scale_depth", 1) / math.sqrt(L) if mup else 1.0
    for l in range(L):
        p = f"model.layers.{l}."
        x = rms(h, p + "input_layernorm.weight")
        q = lin(x, p + "self_attn.q_proj")
        k = lin(x, p + "self_attn.k_proj")
        v = lin(x, p + "self_attn.v_proj")
        q = (q.view(S, nh, hd) * cos[:, None] + rotate_half(q.view(S, nh, hd)) * sin[:, None]).reshape(S, -1)
        k = (k.view(S, nkv, hd) * cos[:, None] + rotate_half(k.view(S, nkv, hd)) * sin[:, None]).reshape(S, -1)
        w = window
        if mt == "qwen2":
            w = cfg.get("sliding_window") if cfg.get("use_sliding_window") and l >= cfg.get("max_window_layers", 0) else None
        a = attention(q, k, v, nh, nkv, hd, 1 / math.sqrt(hd), w)
        h = h + lin(a, p + "self_attn.o_proj") * res
        x = rms(h, p + "post_attention_layernorm.weight")
        gate = lin(x, p + "mlp.gate_proj")
        if act == "silu":
            gate = torch.nn.functional.silu(gate)
        else:
            gate = torch.nn.functional.gelu(gate, approximate="tanh")
        h = h + lin(gate * lin(x, p + "mlp.up_proj"), p + "mlp.down_proj") * res
    x = rms(h, "model.norm.weight")
    if mup:
        x = x / (H / cfg.get("dim_model_base", 1))
    head = g("lm_head.weight") if "lm_head.weight" in W else g("model.embed_tokens.weight")
    return x @ head.T


def gpt2_forward(cfg, W, ids, dt):
    pre = "transformer." if "transformer.wte.weight" in W else ""
    H = cfg["n_embd"]
    nh = cfg["n_head"]
    hd = H // nh
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    g = lambda n: W[pre + n].to(dt)
    S = len(ids)
    ln = lambda x, n: torch.nn.functional.layer_norm(x, (H,), g(n + ".weight"), g(n + ".bias"), eps)
    conv = lambda x, n: x @ g(n + ".weight") + g(n + ".bias")
    gelu = lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    h = g("wte.weight")[torch.tensor(ids)] + g("wpe.weight")[torch.arange(S)]
    scale = 1 / math.sqrt(hd) if cfg.get("scale_attn_weights", True) else 1.0
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        qkv = conv(ln(h, p + "ln_1"), p + "attn.c_attn")
        q, k, v = qkv.split(H, dim=1)
        h = h + conv(attention(q, k, v, nh, nh, hd, scale, None), p + "attn.c_proj")
        h = h + conv(gelu(conv(ln(h, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
    x = ln(h, "ln_f")
    head = W["lm_head.weight"].to(dt) if "lm_head.weight" in W else g("wte.weight")
    return x @ head.T


def forward(cfg, W, ids, dt):
    with torch.no_grad():
        if cfg["model_type"] == "gpt2":
            return gpt2_forward(cfg, W, ids, dt)
        return llama_forward(cfg, W, ids, dt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--greedy", type=int, default=0)
    ap.add_argument("--double", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(a.dir, "config.json")) as f:
        cfg = json.load(f)
    W = load_weights(a.dir)
    dt = torch.float64 if a.double else torch.float32
    ids = [int(t) for t in a.ids.split(",")]
    logits = forward(cfg, W, ids, dt)
    seq = list(ids)
    greedy = []
    for _ in range(a.greedy):
        nxt = int(torch.argmax(forward(cfg, W, seq, dt)[-1]))
        greedy.append(nxt)
        seq.append(nxt)
    res = {"prompt_ids": ids, "logits_all": logits.float().tolist(), "greedy_ids": greedy}
    with open(a.out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
