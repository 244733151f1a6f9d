#!/usr/bin/python3
"""Independent checks of Megatron-LM checkpoints for the tests, written from formats.md §9.

    megatron_oracle.py check MEG_DIR,HF_DIR,TP,PP,NAMING [...]     (NAMING: legacy | mcore)
        Loads every mp_rank_* file with torch.load, checks the saved dict (checkpoint_version,
        iteration, args), each rank's key names, shapes and dtypes, then joins the shards the way
        Megatron's tools do (vocab-parallel rows, grouped QKV, [gate_r; up_r], row-parallel columns)
        and compares with the HF weights bit for bit. Models with per-head q/k norms (qwen3) must
        carry them as Megatron-Core's replicated q_layernorm / k_layernorm [kv_channels] with
        args.qk_layernorm. Prints "OK" or the first difference.

    megatron_oracle.py foreign HF_DIR MEG_DIR --tp T --pp P [--te]
        Writes a checkpoint the way Megatron's own saver would (no record of the true vocabulary,
        no HF config; --te: Transformer Engine names with fused norms), to test reading
        checkpoints we did not write.
"""
import argparse
import argparse as _ap
import json
import os
import sys

import torch

import stlib


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def hparams(cfg):
    h = cfg["hidden_size"]
    nq = cfg["num_attention_heads"]
    ng = cfg.get("num_key_value_heads", nq)
    hd = cfg.get("head_dim", h // nq)
    tied = cfg.get("tie_word_embeddings", cfg["model_type"] == "minicpm")
    return h, nq, ng, hd, cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"], tied


def has_qk_norm(sd):
    return "model.layers.0.self_attn.q_norm.weight" in sd


def padded(v, tp):
    m = 128 * tp
    return (v + m - 1) // m * m


def rank_dir(meg, it, tr, pr, pp):
    name = f"mp_rank_{tr:02d}" + (f"_{pr:03d}" if pp > 1 else "")
    return os.path.join(meg, it, name, "model_optim_rng.pt")


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def names(naming, te=False):
    if naming == "legacy":
        L = "language_model.encoder.layers.{}."
        return {"emb": "language_model.embedding.word_embeddings.weight",
                "out": "language_model.output_layer.weight", "copy": "word_embeddings_for_head.weight",
                "final": "language_model.encoder.final_norm.weight",
                "in": L + "input_norm.weight", "qkv": L + "self_attention.query_key_value.weight",
                "proj": L + "self_attention.dense.weight", "post": L + "post_attention_norm.weight",
                "fc1": L + "mlp.dense_h_to_4h.weight", "fc2": L + "mlp.dense_4h_to_h.weight"}
    L = "decoder.layers.{}."
    return {"emb": "embedding.word_embeddings.weight", "out": "output_layer.weight", "copy": "output_layer.weight",
            "final": "decoder.final_layernorm.weight",
            "in": L + ("self_attention.linear_qkv.layer_norm_weight" if te else "input_layernorm.weight"),
            "qkv": L + "self_attention.linear_qkv.weight", "proj": L + "self_attention.linear_proj.weight",
            "post": L + ("mlp.linear_fc1.layer_norm_weight" if te else "pre_mlp_layernorm.weight"),
            "fc1": L + "mlp.linear_fc1.weight", "fc2": L + "mlp.linear_fc2.weight",
            "qn": L + "self_attention.q_layernorm.weight", "kn": L + "self_attention.k_layernorm.weight"}


def check(a):
    cfg, sd = stlib.load_hf_dir(a.hf)
    h, nq, ng, hd, ffn, nl, v, tied = hparams(cfg)
    tp, pp = a.tp, a.pp
    pv = padded(v, tp)
    qk = has_qk_norm(sd)
    if qk and a.naming != "mcore":
        fail("q/k norms need Megatron-Core names")
    with open(os.path.join(a.meg, "latest_checkpointed_iteration.txt")) as f:
        if f.read().strip() != "1":
            fail("latest_checkpointed_iteration.txt is not 1")
    N = names(a.naming)
    per_stage = nl // pp
    ranks = {}
    for pr in range(pp):
        for tr in range(tp):
            p = rank_dir(a.meg, "iter_0000001", tr, pr, pp)
            ck = torch.load(p, map_location="cpu")
            if ck["checkpoint_version"] != 3.0 or ck["iteration"] != 1:
                fail(f"{p}: checkpoint_version/iteration {ck['checkpoint_version']} {ck['iteration']}")
            args = ck["args"]
            if not isinstance(args, _ap.Namespace):  # noqa
                fail(f"{p}: args is {type(args)}")
            want = {"num_layers": nl, "hidden_size": h, "ffn_hidden_size": ffn, "num_attention_heads": nq,
                    "num_query_groups": ng, "group_query_attention": ng != nq, "kv_channels": hd,
                    "padded_vocab_size": pv, "vocab_size": v, "tensor_model_parallel_size": tp,
                    "pipeline_model_parallel_size": pp, "swiglu": True, "normalization": "RMSNorm",
                    "position_embedding_type": "rope", "untie_embeddings_and_output_weights": not tied,
                    "add_bias_linear": False, "params_dtype": torch.float32, "qk_layernorm": qk}
            for k, w in want.items():
                if getattr(args, k, None) != w:
                    fail(f"{p}: args.{k} = {getattr(args, k, None)!r}, want {w!r}")
            if "optimizer" in ck or "rng_state" in ck:
                fail(f"{p}: optimizer/rng state written")
            if a.naming == "legacy" and "language_model" not in ck["model"]:
                fail(f"{p}: legacy state dict is not nested under language_model")
            m = flatten(ck["model"])
            exp = {}
            if pr == 0:
                exp[N["emb"]] = (pv // tp, h)
            for l in range(per_stage):
                exp[N["in"].format(l)] = (h,)
                exp[N["qkv"].format(l)] = ((ng // tp) * (nq // ng + 2) * hd, h)
                exp[N["proj"].format(l)] = (h, nq * hd // tp)
                exp[N["post"].format(l)] = (h,)
                exp[N["fc1"].format(l)] = (2 * ffn // tp, h)
                exp[N["fc2"].format(l)] = (h, ffn // tp)
                if qk:
                    exp[N["qn"].format(l)] = (hd,)
                    exp[N["kn"].format(l)] = (hd,)
            if pr == pp - 1:
                exp[N["final"]] = (h,)
                if not tied:
                    exp[N["out"]] = (pv // tp, h)
                elif pp > 1:
                    exp[N["copy"]] = (pv // tp, h)
            if set(m) != set(exp):
                fail(f"{p}: keys differ: extra {sorted(set(m) - set(exp))} missing {sorted(set(exp) - set(m))}")
            for k, s in exp.items():
                if tuple(m[k].shape) != s or m[k].dtype != torch.float32:
                    fail(f"{p}: {k} has {tuple(m[k].shape)} {m[k].dtype}, want {s} float32")
            ranks[(pr, tr)] = m

    # Join the shards back (Megatron's loaders: torch.cat over TP on the split dim).
    got = {}
    emb = torch.cat([ranks[(0, t)][N["emb"]] for t in range(tp)], 0)
    if pv > v and not torch.equal(emb[v:], sd["model.embed_tokens.weight"][-1].expand(pv - v, h)):
        fail("padding rows are not copies of the last embedding row")
    got["model.embed_tokens.weight"] = emb[:v]
    for pr in range(pp):
        for l in range(per_stage):
            g = pr * per_stage + l
            P = f"model.layers.{g}."
            r0 = ranks[(pr, 0)]
            got[P + "input_layernorm.weight"] = r0[N["in"].format(l)]
            got[P + "post_attention_layernorm.weight"] = r0[N["post"].format(l)]
            if qk:
                got[P + "self_attn.q_norm.weight"] = r0[N["qn"].format(l)]
                got[P + "self_attn.k_norm.weight"] = r0[N["kn"].format(l)]
            for t in range(1, tp):
                for key in ("in", "post") + (("qn", "kn") if qk else ()):
                    if not torch.equal(ranks[(pr, t)][N[key].format(l)], r0[N[key].format(l)]):
                        fail("norms are not replicated")
            qkv = torch.cat([ranks[(pr, t)][N["qkv"].format(l)] for t in range(tp)], 0)
            qkv = qkv.view(ng, nq // ng + 2, hd, h)
            got[P + "self_attn.q_proj.weight"] = qkv[:, : nq // ng].reshape(nq * hd, h)
            got[P + "self_attn.k_proj.weight"] = qkv[:, nq // ng].reshape(ng * hd, h)
            got[P + "self_attn.v_proj.weight"] = qkv[:, nq // ng + 1].reshape(ng * hd, h)
            got[P + "self_attn.o_proj.weight"] = torch.cat([ranks[(pr, t)][N["proj"].format(l)] for t in range(tp)], 1)
            fc1 = [ranks[(pr, t)][N["fc1"].format(l)] for t in range(tp)]
            got[P + "mlp.gate_proj.weight"] = torch.cat([x[: ffn // tp] for x in fc1], 0)
            got[P + "mlp.up_proj.weight"] = torch.cat([x[ffn // tp:] for x in fc1], 0)
            got[P + "mlp.down_proj.weight"] = torch.cat([ranks[(pr, t)][N["fc2"].format(l)] for t in range(tp)], 1)
    got["model.norm.weight"] = ranks[(pp - 1, 0)][N["final"]]
    if not tied:
        got["lm_head.weight"] = torch.cat([ranks[(pp - 1, t)][N["out"]] for t in range(tp)], 0)[:v]
    elif pp > 1:
        copy = torch.cat([ranks[(pp - 1, t)][N["copy"]] for t in range(tp)], 0)
        if not torch.equal(copy, emb):
            fail("the last stage's embedding copy differs from the embedding")
    if set(got) != set(sd):
        fail(f"reconstructed names differ: {sorted(set(got) ^ set(sd))}")
    for k in sd:
        if not torch.equal(got[k], sd[k]):
            fail(f"{k} differs after reconstruction")
    print(f"OK {len(ranks)} rank files, {len(got)} tensors")


def foreign(a):
    cfg, sd = stlib.load_hf_dir(a.hf)
    h, nq, ng, hd, ffn, nl, v, tied = hparams(cfg)
    tp, pp = a.tp, a.pp
    pv = padded(v, tp)
    N = names("mcore", a.te)
    args = _ap.Namespace(num_layers=nl, hidden_size=h, ffn_hidden_size=ffn, num_attention_heads=nq,
                         num_query_groups=ng, group_query_attention=ng != nq, kv_channels=hd,
                         max_position_embeddings=cfg["max_position_embeddings"], seq_length=4096,
                         position_embedding_type="rope", rotary_base=int(cfg["rope_theta"]),
                         normalization="RMSNorm", norm_epsilon=cfg["rms_norm_eps"], swiglu=True,
                         untie_embeddings_and_output_weights=not tied, padded_vocab_size=pv,
                         tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp,
                         params_dtype=torch.float32, add_bias_linear=False, vocab_size=None,
                         qk_layernorm=has_qk_norm(sd))
    emb = sd["model.embed_tokens.weight"]
    emb = torch.cat([emb, emb[-1:].expand(pv - v, h)], 0)
    per_stage = nl // pp
    os.makedirs(a.meg, exist_ok=True)
    with open(os.path.join(a.meg, "latest_checkpointed_iteration.txt"), "w") as f:
        f.write("7")
    for pr in range(pp):
        for t in range(tp):
            m = {}
            if pr == 0:
                m[N["emb"]] = emb.chunk(tp, 0)[t].clone()
            for l in range(per_stage):
                P = f"model.layers.{pr * per_stage + l}."
                q = sd[P + "self_attn.q_proj.weight"].view(ng, nq // ng * hd, h)
                k = sd[P + "self_attn.k_proj.weight"].view(ng, hd, h)
                vv = sd[P + "self_attn.v_proj.weight"].view(ng, hd, h)
                m[N["qkv"].format(l)] = torch.cat([q, k, vv], 1).reshape(-1, h).chunk(tp, 0)[t].clone()
                m[N["proj"].format(l)] = sd[P + "self_attn.o_proj.weight"].chunk(tp, 1)[t].clone()
                g = sd[P + "mlp.gate_proj.weight"].chunk(tp, 0)[t]
                u = sd[P + "mlp.up_proj.weight"].chunk(tp, 0)[t]
                m[N["fc1"].format(l)] = torch.cat([g, u], 0).clone()
                m[N["fc2"].format(l)] = sd[P + "mlp.down_proj.weight"].chunk(tp, 1)[t].clone()
                m[N["in"].format(l)] = sd[P + "input_layernorm.weight"].clone()
                m[N["post"].format(l)] = sd[P + "post_attention_layernorm.weight"].clone()
                if has_qk_norm(sd):
                    m[N["qn"].format(l)] = sd[P + "self_attn.q_norm.weight"].clone()
                    m[N["kn"].format(l)] = sd[P + "self_attn.k_norm.weight"].clone()
                if a.te:
                    m[f"decoder.layers.{l}.self_attention.linear_qkv._extra_state"] = None
            if pr == pp - 1:
                m[N["final"]] = sd["model.norm.weight"].clone()
                if not tied:
                    lm = sd["lm_head.weight"]
                    lm = torch.cat([lm, lm[-1:].expand(pv - v, h)], 0)
                    m[N["out"]] = lm.chunk(tp, 0)[t].clone()
                elif pp > 1:
                    m[N["out"]] = emb.chunk(tp, 0)[t].clone()
            p = rank_dir(a.meg, "iter_0000007", t, pr, pp)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            torch.save({"args": args, "checkpoint_version": 3.0, "iteration": 7, "model": m,
                        "rng_state": [{"random_rng_state": (3, (1, 2), None)}]}, p)
    print("OK")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("specs", nargs="+")
    f = sub.add_parser("foreign")
    f.add_argument("hf")
    f.add_argument("meg")
    f.add_argument("--te", action="store_true")
    f.add_argument("--tp", type=int, default=1)
    f.add_argument("--pp", type=int, default=1)
    a = ap.parse_args()
    if a.cmd == "foreign":
        return foreign(a)
    for spec in a.specs:
        meg, hf, tp, pp, naming = spec.split(",")
        check(argparse.Namespace(meg=meg, hf=hf, tp=int(tp), pp=int(pp), naming=naming))


if __name__ == "__main__":
    main()
