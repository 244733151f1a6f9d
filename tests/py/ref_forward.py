#!/usr/bin/python3
"""Independent float32 forward pass of an HF model directory: the oracle the test suite compares with.

    ref_forward.py HF_DIR --ids 1,2,3 [--out logits.json] [--greedy N]
    ref_forward.py HF_DIR --ids 1,2,3 --compare OTHER_DIR [--greedy N]
        prints {"max_abs_diff", "max_abs", "greedy_a", "greedy_b"} for the two models' logits

Prints (or writes to --out) JSON {"prompt_ids": [...], "logits_all": [[...] per prompt position],
"greedy_ids": [N ids chosen by argmax, each step re-running the whole sequence]}.

Written from the architecture definitions, not from transformers' code paths, and in float32
throughout (weights are upcast on load):
- llama / mistral / qwen2 / minicpm: RMSNorm y = w * x * rsqrt(mean(x^2) + eps); RoPE with
  rotate_half over the two halves of each head, inv_freq = theta^(-2i/head_dim); GQA by repeating
  each kv head num_heads/num_kv_heads times; SwiGLU MLP down(silu(gate x) * up x).
  qwen2 adds q/k/v biases. mistral masks keys more than `sliding_window - 1` positions back
  (query i sees keys j with i - j < sliding_window, as transformers' sliding-window mask and
  llama.cpp's SWA). minicpm (formats.md §10): embeddings * scale_emb, each residual branch *
  scale_depth / sqrt(num_layers), final hidden / (hidden_size / dim_model_base) before lm_head.
- qwen3 (Qwen3Attention): q and k each go through an RMSNorm over head_dim (one weight of
  head_dim entries shared by the heads) after the projection and before RoPE; no q/k/v biases.
- phi3 (Phi3Attention / Phi3MLP): one qkv_proj whose output is [q | k | v] (num_heads*hd,
  num_kv_heads*hd, num_kv_heads*hd columns); one gate_up_proj whose output is [gate | up];
  down(silu(gate) * up); sliding window as mistral.
- gemma (GemmaModel): embeddings * sqrt(hidden_size) taken as a tensor of the model's dtype;
  RMSNorm output * (1 + w) computed in float32; MLP down(gelu_tanh(gate x) * up x) (the
  activation config.json's era selects; exact erf GELU when it says "gelu" in the new era).
- gpt2: LayerNorm, learned absolute positions, Conv1D weights stored [in, out], gelu tanh
  approximation ("gelu_new"), attention scaled by 1/sqrt(head_dim), lm_head tied to wte.
"""
import argparse
import json
import math
import sys

import torch

import stlib


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_inv_freq(cfg, head_dim):
    theta = float(cfg.get("rope_theta", 10000.0))
    rp = cfg.get("rope_parameters")
    if isinstance(rp, dict) and "rope_theta" in rp:
        theta = float(rp["rope_theta"])
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default")) if scaling else "default"
    factor = 1.0
    if kind == "linear":
        factor = float(scaling["factor"])
    elif kind == "llama3":
        f = float(scaling["factor"])
        lo, hi = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old = float(scaling["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - lo) / (hi - lo)
        scaled = torch.where(wavelen > old / lo, inv / f, inv)
        mid = (wavelen <= old / lo) & (wavelen >= old / hi)
        inv = torch.where(mid, (1 - smooth) * inv / f + smooth * inv, scaled)
    elif kind == "longrope":
        # HF: inv_freq = 1 / (ext_factors * theta^(2i/d)); short factors up to the original
        # context (the prompts here are short); cos/sin scaled by the attention factor.
        orig = float(scaling.get("original_max_position_embeddings", cfg["max_position_embeddings"]))
        att = scaling.get("attention_factor")
        if att is None:
            f = cfg["max_position_embeddings"] / orig
            att = 1.0 if f <= 1.0 else math.sqrt(1 + math.log(f) / math.log(orig))
        if float(att) != 1.0:
            raise SystemExit("ref_forward: longrope with attention scaling not implemented")
        ext = torch.tensor(scaling["short_factor"], dtype=torch.float64)
        inv = 1.0 / (ext * theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    elif kind != "default":
        raise SystemExit(f"ref_forward: rope_scaling type {kind!r} not implemented")
    return inv.float(), factor


def apply_rope(x, pos, inv_freq, factor):
    # x: [T, H, hd]; angles in float32 as HF computes them.
    ang = torch.outer(pos.float() / factor, inv_freq)  # [T, hd/2]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    return x * cos + rotate_half(x) * sin


def attention(q, k, v, window=None):
    # q: [T, H, hd], k/v: [T, H, hd] (kv already repeated); causal (+ optional sliding window).
    T, _, hd = q.shape
    scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    masked = j > i
    if window is not None:
        masked = masked | (i - j >= window)
    scores = scores.masked_fill(masked[None], float("-inf"))
    p = torch.softmax(scores, dim=-1)
    return torch.einsum("hts,shd->thd", p, v).reshape(T, -1)


def gemma_activation(cfg):
    """Which GELU a Gemma config.json means (transformers 4.38-4.47 vs 4.48+)."""
    ha, act = cfg.get("hidden_activation"), cfg.get("hidden_act")
    ver = tuple(int(x) for x in str(cfg.get("transformers_version", "99.0")).split(".")[:2] if x.isdigit())
    if ver < (4, 48):
        return ha or "gelu_pytorch_tanh"
    return act or ha or "gelu_pytorch_tanh"


def forward_llama_like(cfg, sd, ids):
    mt = cfg.get("model_type", "llama")
    f = lambda n: sd[n].float()
    has = lambda n: n in sd
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or {"qwen3": 128, "gemma": 256}.get(mt, H // nh)
    L = cfg["num_hidden_layers"]
    eps = float(cfg.get("rms_norm_eps", 1e-6))
    inv_freq, factor = rope_inv_freq(cfg, hd)
    window = None
    if mt in ("mistral", "phi3") and cfg.get("sliding_window"):
        window = int(cfg["sliding_window"])
    if mt == "qwen2" and cfg.get("use_sliding_window") and cfg.get("sliding_window"):
        if len(ids) > int(cfg["sliding_window"]):
            raise SystemExit("ref_forward: qwen2 use_sliding_window with a window shorter than the input is not implemented")
    act_name = gemma_activation(cfg) if mt == "gemma" else cfg.get("hidden_act", "silu")
    acts = {"silu": torch.nn.functional.silu, "gelu_pytorch_tanh": gelu_tanh,
            "gelu": lambda t: torch.nn.functional.gelu(t)}
    if act_name not in acts:
        raise SystemExit(f"ref_forward: hidden_act {act_name!r} not implemented")
    act = acts[act_name]
    norm_add = 1.0 if mt == "gemma" else 0.0
    mup = mt == "minicpm"
    scale_emb = float(cfg.get("scale_emb", 1.0)) if mup else 1.0
    res_scale = float(cfg.get("scale_depth", 1.0)) / math.sqrt(L) if mup else 1.0
    logit_div = H / float(cfg.get("dim_model_base", 1.0)) if mup else 1.0

    ids_t = torch.tensor(ids, dtype=torch.long)
    pos = torch.arange(len(ids))
    x = f("model.embed_tokens.weight")[ids_t] * scale_emb
    if mt == "gemma":
        dt = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(cfg.get("torch_dtype"), torch.float32)
        x = x * torch.tensor(H ** 0.5, dtype=dt).float()
    T = len(ids)

    def norm(h, name):
        return rms_norm(h, f(name) + norm_add, eps)

    def lin(h, name):
        y = h @ f(name + ".weight").t()
        if has(name + ".bias"):
            y = y + f(name + ".bias")
        return y

    for l in range(L):
        p = f"model.layers.{l}."
        h = norm(x, p + "input_layernorm.weight")
        if has(p + "self_attn.qkv_proj.weight"):
            qkv = lin(h, p + "self_attn.qkv_proj")
            q = qkv[:, :nh * hd].reshape(T, nh, hd)
            k = qkv[:, nh * hd:(nh + nkv) * hd].reshape(T, nkv, hd)
            v = qkv[:, (nh + nkv) * hd:].reshape(T, nkv, hd)
        else:
            q = lin(h, p + "self_attn.q_proj").view(T, nh, hd)
            k = lin(h, p + "self_attn.k_proj").view(T, nkv, hd)
            v = lin(h, p + "self_attn.v_proj").view(T, nkv, hd)
        if has(p + "self_attn.q_norm.weight"):
            q = rms_norm(q, f(p + "self_attn.q_norm.weight"), eps)
            k = rms_norm(k, f(p + "self_attn.k_norm.weight"), eps)
        q = apply_rope(q, pos, inv_freq, factor)
        k = apply_rope(k, pos, inv_freq, factor)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        a = lin(attention(q, k, v, window), p + "self_attn.o_proj")
        x = x + a * res_scale
        h = norm(x, p + "post_attention_layernorm.weight")
        if has(p + "mlp.gate_up_proj.weight"):
            gate, up = lin(h, p + "mlp.gate_up_proj").chunk(2, dim=-1)
        else:
            gate, up = lin(h, p + "mlp.gate_proj"), lin(h, p + "mlp.up_proj")
        m = lin(act(gate) * up, p + "mlp.down_proj")
        x = x + m * res_scale
    x = norm(x, "model.norm.weight") / logit_div
    head = f("lm_head.weight") if has("lm_head.weight") else f("model.embed_tokens.weight")
    return x @ head.t()


def forward_gpt2(cfg, sd, ids):
    # Accept keys with or without the "transformer." prefix (formats.md §11.1).
    pre = "transformer." if "transformer.wte.weight" in sd else ""
    f = lambda n: sd[pre + n].float()
    H, nh, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hd = H // nh
    eps = float(cfg.get("layer_norm_epsilon", 1e-5))
    if cfg.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise SystemExit(f"ref_forward: activation {cfg.get('activation_function')!r} not implemented")
    T = len(ids)
    ids_t = torch.tensor(ids, dtype=torch.long)
    x = f("wte.weight")[ids_t] + f("wpe.weight")[torch.arange(T)]
    for l in range(L):
        p = f"h.{l}."
        h = layer_norm(x, f(p + "ln_1.weight"), f(p + "ln_1.bias"), eps)
        qkv = h @ f(p + "attn.c_attn.weight") + f(p + "attn.c_attn.bias")  # Conv1D: x @ W[in,out]
        q, k, v = (t.reshape(T, nh, hd) for t in qkv.split(H, dim=-1))
        a = attention(q, k, v)
        if cfg.get("scale_attn_by_inverse_layer_idx"):
            raise SystemExit("ref_forward: scale_attn_by_inverse_layer_idx not implemented")
        x = x + a @ f(p + "attn.c_proj.weight") + f(p + "attn.c_proj.bias")
        h = layer_norm(x, f(p + "ln_2.weight"), f(p + "ln_2.bias"), eps)
        m = gelu_tanh(h @ f(p + "mlp.c_fc.weight") + f(p + "mlp.c_fc.bias"))
        x = x + m @ f(p + "mlp.c_proj.weight") + f(p + "mlp.c_proj.bias")
    x = layer_norm(x, f("ln_f.weight"), f("ln_f.bias"), eps)
    head = sd["lm_head.weight"].float() if "lm_head.weight" in sd else f("wte.weight")
    return x @ head.t()


def forward(cfg, sd, ids):
    """Logits [len(ids), vocab] in float32."""
    mt = cfg.get("model_type") or ""
    if mt == "gpt2":
        return forward_gpt2(cfg, sd, ids)
    if mt in ("llama", "mistral", "qwen2", "minicpm", "qwen3", "phi3", "gemma"):
        return forward_llama_like(cfg, sd, ids)
    raise SystemExit(f"ref_forward: model_type {mt!r} not supported")


def run(cfg, sd, ids, greedy):
    with torch.no_grad():
        logits = forward(cfg, sd, ids)
        seq = list(ids)
        out = []
        last = logits
        for _ in range(greedy):
            nxt = int(torch.argmax(last[-1]))
            out.append(nxt)
            seq.append(nxt)
            last = forward(cfg, sd, seq)
    return {"prompt_ids": list(ids), "logits_all": [[float(v) for v in row] for row in logits],
            "greedy_ids": out}


def parse_ids(s):
    return [int(t) for t in s.split(",") if t.strip()]


def emit(result, out):
    text = json.dumps(result)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="HF model directory (or a .safetensors file next to a config.json)")
    ap.add_argument("--ids", required=True, type=parse_ids)
    ap.add_argument("--out")
    ap.add_argument("--greedy", type=int, default=0)
    ap.add_argument("--compare", help="second HF directory: report how far its logits are")
    a = ap.parse_args()
    cfg, sd = stlib.load_hf_dir(a.model)
    ra = run(cfg, sd, a.ids, a.greedy)
    if a.compare:
        rb = run(*stlib.load_hf_dir(a.compare), a.ids, a.greedy)
        la, lb = torch.tensor(ra["logits_all"]), torch.tensor(rb["logits_all"])
        emit({"max_abs_diff": float((la - lb).abs().max()), "max_abs": float(la.abs().max()),
              "greedy_a": ra["greedy_ids"], "greedy_b": rb["greedy_ids"]}, a.out)
        return
    emit(ra, a.out)


if __name__ == "__main__":
    main()
