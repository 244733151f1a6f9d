#!/usr/bin/python3
"""Writes a tiny random Hugging Face model directory for the tests.

    make_models.py OUT_DIR --arch {llama,mistral,qwen2,minicpm,gpt2,qwen3,phi3,gemma}
                   [--format safetensors|bin] [--dtype f32|f16|bf16] [--seed N] [--shards N]
                   [--layers N] [--sliding-window N]

config.json carries the keys transformers writes for the class (sorted, indent 2; only keys that
differ from PretrainedConfig's defaults are omitted, as `save_pretrained` does, e.g. MiniCPM's
tie_word_embeddings=True). Tensor names and order are those of the model's state_dict with tied
weights left out (formats.md §11.1). Weights are drawn in float32 from a seeded torch.Generator
(normal, std 0.08; norm weights 1 + N(0, 0.1) so that a mis-mapped norm changes the logits), then
cast to --dtype.
"""
import argparse
import json
import os
from collections import OrderedDict

import torch

import stlib

TRANSFORMERS_VERSION = "4.46.3"
TORCH_DTYPE = {"f32": ("float32", torch.float32), "f16": ("float16", torch.float16),
               "bf16": ("bfloat16", torch.bfloat16)}

# Tiny shapes shared by the llama-like families: GQA with 4 query heads over 2 kv heads.
HIDDEN, HEADS, KV_HEADS, INTER, VOCAB, MAX_POS = 64, 4, 2, 128, 256, 128
# qwen3 and gemma state head_dim explicitly (their config classes default to 128 and 256, not
# hidden/heads): a head size that differs from hidden/heads exercises it.
EXPLICIT_HEAD_DIM = 32


def llama_like_config(arch, layers, dtype_name, sliding_window):
    base = {
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTER,
        "max_position_embeddings": MAX_POS,
        "num_attention_heads": HEADS,
        "num_hidden_layers": layers,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "torch_dtype": dtype_name,
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": VOCAB,
    }
    if arch == "llama":
        base.update({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                     "attention_bias": False, "head_dim": HIDDEN // HEADS, "mlp_bias": False,
                     "pretraining_tp": 1, "rope_scaling": None, "tie_word_embeddings": False})
    elif arch == "mistral":
        base.update({"architectures": ["MistralForCausalLM"], "model_type": "mistral",
                     "head_dim": HIDDEN // HEADS, "sliding_window": sliding_window,
                     "tie_word_embeddings": False})
    elif arch == "qwen2":
        base.update({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                     "max_window_layers": layers, "rope_scaling": None, "rope_theta": 1000000.0,
                     "rms_norm_eps": 1e-06, "sliding_window": None, "tie_word_embeddings": True,
                     "use_sliding_window": False})
    elif arch == "qwen3":
        base.update({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                     "attention_bias": False, "head_dim": EXPLICIT_HEAD_DIM, "max_window_layers": layers,
                     "rope_scaling": None, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06,
                     "sliding_window": None, "tie_word_embeddings": True, "use_sliding_window": False})
    elif arch == "phi3":
        base.update({"architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
                     "embd_pdrop": 0.0, "original_max_position_embeddings": MAX_POS,
                     "pad_token_id": 0, "resid_pdrop": 0.0, "rope_scaling": None,
                     "sliding_window": sliding_window, "tie_word_embeddings": False})
    elif arch == "gemma":
        # transformers 4.46 writes both activation keys; hidden_activation null means tanh GELU there.
        base.update({"architectures": ["GemmaForCausalLM"], "model_type": "gemma",
                     "attention_bias": False, "head_dim": EXPLICIT_HEAD_DIM,
                     "hidden_act": "gelu_pytorch_tanh", "hidden_activation": None,
                     "rms_norm_eps": 1e-06, "pad_token_id": 0})
    elif arch == "minicpm":
        # MiniCPM's own config class (remote code): tie_word_embeddings defaults to True and so is
        # not written; the muP factors use the released models' values except dim_model_base,
        # scaled down with the hidden size (1024/256 in MiniCPM4-0.5B, 64/16 here).
        base.update({"architectures": ["MiniCPMForCausalLM"], "model_type": "minicpm",
                     "_name_or_path": "openbmb/MiniCPM-tiny-test",
                     "auto_map": {
                         "AutoConfig": "configuration_minicpm.MiniCPMConfig",
                         "AutoModel": "modeling_minicpm.MiniCPMModel",
                         "AutoModelForCausalLM": "modeling_minicpm.MiniCPMForCausalLM"},
                     "attention_bias": False, "pretraining_tp": 1, "rope_scaling": None,
                     "scale_emb": 12, "scale_depth": 1.4, "dim_model_base": 16})
    return OrderedDict(sorted(base.items()))


def gpt2_config(layers, dtype_name):
    c = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": VOCAB - 1,
        "embd_pdrop": 0.1,
        "eos_token_id": VOCAB - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_embd": HIDDEN,
        "n_head": HEADS,
        "n_inner": None,
        "n_layer": layers,
        "n_positions": MAX_POS,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": dtype_name,
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": VOCAB,
    }
    return OrderedDict(sorted(c.items()))


class Gen:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def w(self, *shape, std=0.08):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32) * std

    def norm(self, n):
        return 1.0 + self.w(n, std=0.1)


def llama_like_tensors(arch, cfg, gen):
    h = cfg["hidden_size"]
    hd = cfg.get("head_dim") or h // cfg["num_attention_heads"]
    q_out, kv_out = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    inter = cfg["intermediate_size"]
    # Gemma's RMSNorm scales by (1 + w): its weights sit around 0, the others' around 1.
    norm = (lambda n: gen.w(n, std=0.1)) if arch == "gemma" else gen.norm
    sd = OrderedDict()
    sd["model.embed_tokens.weight"] = gen.w(cfg["vocab_size"], h)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        if arch == "phi3":  # Phi3Attention registers o_proj first; fused [q; k; v] and [gate; up]
            sd[p + "self_attn.o_proj.weight"] = gen.w(h, q_out)
            sd[p + "self_attn.qkv_proj.weight"] = gen.w(q_out + 2 * kv_out, h)
            sd[p + "mlp.gate_up_proj.weight"] = gen.w(2 * inter, h)
            sd[p + "mlp.down_proj.weight"] = gen.w(h, inter)
            sd[p + "input_layernorm.weight"] = norm(h)
            sd[p + "post_attention_layernorm.weight"] = norm(h)
            continue
        sd[p + "self_attn.q_proj.weight"] = gen.w(q_out, h)
        if arch == "qwen2":
            sd[p + "self_attn.q_proj.bias"] = gen.w(q_out, std=0.05)
        sd[p + "self_attn.k_proj.weight"] = gen.w(kv_out, h)
        if arch == "qwen2":
            sd[p + "self_attn.k_proj.bias"] = gen.w(kv_out, std=0.05)
        sd[p + "self_attn.v_proj.weight"] = gen.w(kv_out, h)
        if arch == "qwen2":
            sd[p + "self_attn.v_proj.bias"] = gen.w(kv_out, std=0.05)
        sd[p + "self_attn.o_proj.weight"] = gen.w(h, q_out)
        if arch == "qwen3":
            sd[p + "self_attn.q_norm.weight"] = norm(hd)
            sd[p + "self_attn.k_norm.weight"] = norm(hd)
        sd[p + "mlp.gate_proj.weight"] = gen.w(inter, h)
        sd[p + "mlp.up_proj.weight"] = gen.w(inter, h)
        sd[p + "mlp.down_proj.weight"] = gen.w(h, inter)
        sd[p + "input_layernorm.weight"] = norm(h)
        sd[p + "post_attention_layernorm.weight"] = norm(h)
    sd["model.norm.weight"] = norm(h)
    if not cfg.get("tie_word_embeddings", arch in ("minicpm", "gemma")):
        sd["lm_head.weight"] = gen.w(cfg["vocab_size"], h)
    return sd


def gpt2_tensors(cfg, gen):
    h = cfg["n_embd"]
    inner = cfg["n_inner"] or 4 * h
    sd = OrderedDict()
    sd["transformer.wte.weight"] = gen.w(cfg["vocab_size"], h)
    sd["transformer.wpe.weight"] = gen.w(cfg["n_positions"], h, std=0.02)
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        sd[p + "ln_1.weight"] = gen.norm(h)
        sd[p + "ln_1.bias"] = gen.w(h, std=0.05)
        sd[p + "attn.c_attn.weight"] = gen.w(h, 3 * h)  # Conv1D: [in, out]
        sd[p + "attn.c_attn.bias"] = gen.w(3 * h, std=0.05)
        sd[p + "attn.c_proj.weight"] = gen.w(h, h)
        sd[p + "attn.c_proj.bias"] = gen.w(h, std=0.05)
        sd[p + "ln_2.weight"] = gen.norm(h)
        sd[p + "ln_2.bias"] = gen.w(h, std=0.05)
        sd[p + "mlp.c_fc.weight"] = gen.w(h, inner)
        sd[p + "mlp.c_fc.bias"] = gen.w(inner, std=0.05)
        sd[p + "mlp.c_proj.weight"] = gen.w(inner, h)
        sd[p + "mlp.c_proj.bias"] = gen.w(h, std=0.05)
    sd["transformer.ln_f.weight"] = gen.norm(h)
    sd["transformer.ln_f.bias"] = gen.w(h, std=0.05)
    return sd


def split_shards(sd, n):
    names = list(sd.keys())
    per = (len(names) + n - 1) // n
    return [OrderedDict((k, sd[k]) for k in names[i * per:(i + 1) * per]) for i in range(n)]


def write_weights(out, sd, fmt, shards):
    total = sum(t.numel() * t.element_size() for t in sd.values())
    if fmt == "safetensors":
        single, stem, ext, index = "model.safetensors", "model", "safetensors", "model.safetensors.index.json"
    else:
        single, stem, ext, index = "pytorch_model.bin", "pytorch_model", "bin", "pytorch_model.bin.index.json"

    def save(path, part):
        if fmt == "safetensors":
            stlib.save_safetensors(path, part, {"format": "pt"})
        else:
            torch.save(part, path)

    if shards <= 1:
        save(os.path.join(out, single), sd)
        return
    parts = [p for p in split_shards(sd, shards) if p]
    weight_map = OrderedDict()
    for i, part in enumerate(parts):
        fname = f"{stem}-{i + 1:05d}-of-{len(parts):05d}.{ext}"
        save(os.path.join(out, fname), part)
        for k in part:
            weight_map[k] = fname
    with open(os.path.join(out, index), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": OrderedDict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--arch", required=True, choices=["llama", "mistral", "qwen2", "minicpm", "gpt2", "qwen3", "phi3", "gemma"])
    ap.add_argument("--format", default="safetensors", choices=["safetensors", "bin"])
    ap.add_argument("--dtype", default="f32", choices=list(TORCH_DTYPE))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--layers", type=int, default=2)
    # Large by default: llama.cpp's llama arch ignores the window, so small windows are opt-in.
    ap.add_argument("--sliding-window", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=None, help="vocabulary size (to match an attached tokenizer)")
    ap.add_argument("--rope-scaling", default=None, help="rope_scaling as JSON (llama-like archs)")
    a = ap.parse_args()
    if a.vocab:
        globals()["VOCAB"] = a.vocab

    dtype_name, torch_dtype = TORCH_DTYPE[a.dtype]
    gen = Gen(a.seed)
    if a.arch == "gpt2":
        cfg = gpt2_config(a.layers, dtype_name)
        sd = gpt2_tensors(cfg, gen)
        gen_cfg = {"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"]}
    else:
        cfg = llama_like_config(a.arch, a.layers, dtype_name, a.sliding_window)
        if a.rope_scaling:
            cfg["rope_scaling"] = json.loads(a.rope_scaling, object_pairs_hook=OrderedDict)
        sd = llama_like_tensors(a.arch, cfg, gen)
        gen_cfg = {"bos_token_id": 1, "eos_token_id": 2}
    sd = OrderedDict((k, v.to(torch_dtype).contiguous()) for k, v in sd.items())

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2) + "\n")
    gen_cfg = OrderedDict([("_from_model_config", True), *gen_cfg.items(),
                           ("transformers_version", TRANSFORMERS_VERSION)])
    with open(os.path.join(a.out, "generation_config.json"), "w") as f:
        f.write(json.dumps(gen_cfg, indent=2) + "\n")
    write_weights(a.out, sd, a.format, a.shards)


if __name__ == "__main__":
    main()
