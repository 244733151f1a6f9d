#!/usr/bin/python3
"""Exports an HF Llama-family directory with torch.onnx.export, the exporter optimum drives, so
that the ONNX reader is tested on the names torch gives: Linear weights transposed into
"onnx::MatMul_N" initializers read by MatMul nodes named after the module path
("/model/layers.0/self_attn/q_proj/MatMul"), other parameters under their state_dict names.

    torch_onnx_export.py HF_DIR OUT_DIR [HF_DIR OUT_DIR ...]

The module tree mirrors transformers' LlamaForCausalLM (model.embed_tokens, model.layers[i]
.self_attn.{q,k,v,o}_proj, .mlp.{gate,up,down}_proj, the two norms, model.norm, lm_head), each
module called through its parent's forward as in transformers, so torch scopes the node names
the same way. The forward is a simplified decoder (no attention softmax, no RoPE): only the
names and the stored layouts matter here. Writes OUT_DIR/model.onnx and copies config.json.
"""
import os
import shutil
import sys

import torch
from torch import nn

import stlib


class Norm(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)


class Attn(nn.Module):
    def __init__(self, h, q, kv, bias):
        super().__init__()
        self.q_proj = nn.Linear(h, q, bias=bias)
        self.k_proj = nn.Linear(h, kv, bias=bias)
        self.v_proj = nn.Linear(h, kv, bias=bias)
        self.o_proj = nn.Linear(q, h, bias=False)

    def forward(self, x):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        rep = q.shape[-1] // k.shape[-1]
        return self.o_proj(q * (k * v).repeat_interleave(rep, dim=-1))


class Mlp(nn.Module):
    def __init__(self, h, i):
        super().__init__()
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c, bias):
        super().__init__()
        h, hd = c["hidden_size"], c["hidden_size"] // c["num_attention_heads"]
        self.self_attn = Attn(h, c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd, bias)
        self.mlp = Mlp(h, c["intermediate_size"])
        self.input_layernorm = Norm(h)
        self.post_attention_layernorm = Norm(h)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, c, bias):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c, bias) for _ in range(c["num_hidden_layers"])])
        self.norm = Norm(c["hidden_size"])

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class CausalLM(nn.Module):
    def __init__(self, c, bias):
        super().__init__()
        self.model = Inner(c, bias)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)

    def forward(self, input_ids):
        return self.lm_head(self.model(input_ids))


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        raise SystemExit(__doc__)
    for i in range(0, len(args), 2):
        export(args[i], args[i + 1])


def export(src, out):
    cfg, sd = stlib.load_hf_dir(src)
    bias = any(k.endswith("q_proj.bias") for k in sd)
    m = CausalLM(cfg, bias)
    sd = {k: v.float() for k, v in sd.items()}
    if "lm_head.weight" not in sd:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"].clone()
    m.load_state_dict(sd, strict=True)
    os.makedirs(out, exist_ok=True)
    torch.onnx.export(m, (torch.zeros(1, 3, dtype=torch.long),), os.path.join(out, "model.onnx"),
                      input_names=["input_ids"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"}}, opset_version=14)
    shutil.copy(os.path.join(src, "config.json"), os.path.join(out, "config.json"))


if __name__ == "__main__":
    main()
