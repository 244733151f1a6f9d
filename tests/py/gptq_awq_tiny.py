#!/usr/bin/python3
"""A trained tiny Llama for the GPTQ/AWQ quality tests, a round-to-nearest baseline, and an
independent GPTQ/AWQ unpacker with a torch forward that measures quantized models on held-out text.

    gptq_awq_tiny.py make OUT_DIR --corpus calibration.txt
        Trains (once: OUT_DIR/stamp holds a hash of this script and the corpus) a SentencePiece
        BPE tokenizer (512 pieces) and a Llama (hidden 128, 4 heads, ffn 384, 2 layers) on all but
        the last three essays of the corpus, and writes OUT_DIR/model (HF directory, f32),
        OUT_DIR/train.txt (the calibration text) and OUT_DIR/heldout.json (token windows of the
        last three essays, which neither training nor calibration see).
    gptq_awq_tiny.py rtn SRC_DIR OUT_DIR --bits B [B ...] --group G
        Round-to-nearest with GPTQ's quantizer (sym, per group of G inputs, fp16 scales) applied
        to every decoder Linear; writes dense f32 HF directories OUT_DIR/rtnB.
    gptq_awq_tiny.py kl SRC_DIR HELDOUT_JSON MODEL_DIR [MODEL_DIR ...]
        Mean KL(source || model) and top-1 agreement over the held-out windows, both models run
        by ref_forward.py's torch forward. MODEL_DIR may be dense, GPTQ or AWQ; GPTQ/AWQ weights
        are unpacked here, independently of modelconvert (QuantLinear semantics, below).
    gptq_awq_tiny.py unpack QDIR DENSE_DIR [QDIR DENSE_DIR ...]
        Checks each GPTQ/AWQ directory against the layout and against DENSE_DIR (modelconvert's own
        dequantization of QDIR): every code within [0, 2^bits), every scale positive and fp16,
        g_idx a permutation of whole groups, and the dequantized weights equal.

Dequantization (AutoGPTQ qlinear_cuda_old / GPTQModel v2; AutoAWQ WQLinear_GEMM):
  gptq: w[i, o] = (qweight[i * bits // 32 ... ] >> shift) & maxq, read as one LSB-first bit
        stream down each column (3 bits straddle words); zeros from qzeros the same way along each
        row, plus 1 for checkpoint_format "gptq"; W[o, i] = scales[g_idx[i], o] * (w - z).
  awq:  nibble k of each word holds column 8c + [0, 2, 4, 6, 1, 3, 5, 7][k];
        W[o, i] = scales[i // g, o] * (w[i, o] - z[i // g, o]).
Prints one JSON line. Training takes about 30-50 s on one core.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch

import stlib
import ref_forward

HIDDEN, HEADS, FFN, LAYERS, VOCAB, MAX_POS = 128, 4, 384, 2, 512, 256
SEQ, BATCH, STEPS, LR = 64, 16, 160, 5e-3
HELDOUT_ESSAYS = 3
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
# One thread: OpenMP's spinning threads collapse when the two cores are shared (measured 8x
# slower with 2 threads on a loaded machine).
torch.set_num_threads(1)


def essays(text):
    """Splits the corpus into essays: a title line alone in its paragraph starts one."""
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    out = []
    for p in paras:
        if "\n" not in p and len(p) < 60 and not p.endswith("."):
            out.append([p])
        elif out:
            out[-1].append(p)
    return ["\n\n".join(e) for e in out]


# ---- the model (HF Llama semantics, as ref_forward.py) ----------------------------------------

def init_params(g):
    hd = HIDDEN // HEADS
    p = {"model.embed_tokens.weight": torch.randn(VOCAB, HIDDEN, generator=g) * 0.02}
    for l in range(LAYERS):
        pre = f"model.layers.{l}."
        p[pre + "input_layernorm.weight"] = torch.ones(HIDDEN)
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            p[pre + f"self_attn.{n}.weight"] = torch.randn(HIDDEN, HIDDEN, generator=g) / math.sqrt(HIDDEN)
        p[pre + "post_attention_layernorm.weight"] = torch.ones(HIDDEN)
        p[pre + "mlp.gate_proj.weight"] = torch.randn(FFN, HIDDEN, generator=g) / math.sqrt(HIDDEN)
        p[pre + "mlp.up_proj.weight"] = torch.randn(FFN, HIDDEN, generator=g) / math.sqrt(HIDDEN)
        p[pre + "mlp.down_proj.weight"] = torch.randn(HIDDEN, FFN, generator=g) / math.sqrt(FFN)
    p["model.norm.weight"] = torch.ones(HIDDEN)
    p["lm_head.weight"] = torch.randn(VOCAB, HIDDEN, generator=g) * 0.02
    assert hd * HEADS == HIDDEN
    return p


def forward_batch(p, ids):
    """ids [B, T] -> logits [B, T, V] (float32)."""
    B, T = ids.shape
    hd = HIDDEN // HEADS
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.arange(T).float()[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rope(x):  # [B, H, T, hd]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))

    mask = torch.full((T, T), float("-inf")).triu(1)
    h = p["model.embed_tokens.weight"][ids]
    for l in range(LAYERS):
        pre = f"model.layers.{l}."
        x = rms(h, p[pre + "input_layernorm.weight"])
        q = (x @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, HEADS, hd).transpose(1, 2)
        k = (x @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, HEADS, hd).transpose(1, 2)
        v = (x @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, HEADS, hd).transpose(1, 2)
        a = torch.softmax(rope(q) @ rope(k).transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v
        h = h + a.transpose(1, 2).reshape(B, T, HIDDEN) @ p[pre + "self_attn.o_proj.weight"].T
        y = rms(h, p[pre + "post_attention_layernorm.weight"])
        m = torch.nn.functional.silu(y @ p[pre + "mlp.gate_proj.weight"].T) * (y @ p[pre + "mlp.up_proj.weight"].T)
        h = h + m @ p[pre + "mlp.down_proj.weight"].T
    return rms(h, p["model.norm.weight"]) @ p["lm_head.weight"].T


def config():
    return {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "head_dim": HIDDEN // HEADS, "hidden_act": "silu",
        "hidden_size": HIDDEN, "initializer_range": 0.02, "intermediate_size": FFN,
        "max_position_embeddings": MAX_POS, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "num_key_value_heads": HEADS,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": "4.46.3",
        "use_cache": True, "vocab_size": VOCAB,
    }


def cmd_make(a):
    with open(a.corpus, encoding="utf-8") as f:
        text = f.read()
    with open(__file__, "rb") as f:
        stamp = hashlib.sha256(f.read() + text.encode()).hexdigest()
    stamp_path = os.path.join(a.out, "stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        print(json.dumps({"ok": True, "cached": True}))
        return 0
    import sentencepiece as spm
    os.makedirs(os.path.join(a.out, "model"), exist_ok=True)
    es = essays(text)
    train_text, held_text = "\n\n".join(es[:-HELDOUT_ESSAYS]), "\n\n".join(es[-HELDOUT_ESSAYS:])
    with open(os.path.join(a.out, "train.txt"), "w", encoding="utf-8") as f:
        f.write(train_text + "\n")
    prefix = os.path.join(a.out, "model", "tokenizer")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([p for p in train_text.split("\n") if p.strip()]), model_prefix=prefix,
        vocab_size=VOCAB, model_type="bpe", byte_fallback=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=2, minloglevel=2)
    os.remove(prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    train_ids = []
    for para in train_text.split("\n\n"):
        train_ids += sp.encode(para)
    held_ids = []
    for para in held_text.split("\n\n"):
        held_ids += sp.encode(para)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    p = init_params(g)
    for t in p.values():
        t.requires_grad_(True)
    opt = torch.optim.AdamW(p.values(), lr=LR, weight_decay=0.01)
    data = torch.tensor(train_ids)
    t0 = time.time()
    loss_v = 0.0
    for step in range(STEPS):
        lr = LR * 0.5 * (1 + math.cos(math.pi * step / STEPS))
        for grp in opt.param_groups:
            grp["lr"] = lr
        starts = torch.randint(0, len(data) - SEQ - 1, (BATCH,), generator=g)
        x = torch.stack([data[s:s + SEQ] for s in starts])
        y = torch.stack([data[s + 1:s + SEQ + 1] for s in starts])
        loss = torch.nn.functional.cross_entropy(forward_batch(p, x).reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_v = loss.item()
    seconds = time.time() - t0
    with torch.no_grad():
        hx = torch.tensor(held_ids[: SEQ + 1])[None]
        held_loss = torch.nn.functional.cross_entropy(forward_batch(p, hx[:, :-1])[0], hx[0, 1:]).item()
    tensors = {k: v.detach().contiguous() for k, v in p.items()}
    stlib.save_safetensors(os.path.join(a.out, "model", "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(a.out, "model", "config.json"), "w") as f:
        json.dump(config(), f, indent=2, sort_keys=True)
    with open(os.path.join(a.out, "model", "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                   "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer"}, f, indent=2)
    windows = [[1] + held_ids[i:i + 95] for i in range(0, len(held_ids) - 95, 95)][:8]
    with open(os.path.join(a.out, "heldout.json"), "w") as f:
        json.dump(windows, f)
    with open(stamp_path, "w") as f:
        f.write(stamp)
    print(json.dumps({"ok": True, "cached": False, "train_loss": loss_v, "heldout_loss": held_loss,
                      "train_seconds": seconds, "train_tokens": len(train_ids), "windows": len(windows)}))
    return 0


# ---- round-to-nearest baseline ----------------------------------------------------------------

def fp16(x):
    return x.astype(np.float16).astype(np.float32)


def rtn(w, bits, group):
    """AutoGPTQ Quantizer (sym, weight=True) per group of inputs, fp16 scales; returns W'."""
    out, inp = w.shape
    maxq = 2 ** bits - 1
    res = np.empty_like(w)
    for g0 in range(0, inp, group):
        x = w[:, g0:g0 + group]
        xmin = np.minimum(x.min(1), 0)
        xmax = np.maximum(x.max(1), 0)
        xmax = np.maximum(np.abs(xmin), xmax)
        xmin = np.where(xmin < 0, -xmax, xmin)
        both0 = (xmin == 0) & (xmax == 0)
        xmin[both0], xmax[both0] = -1, 1
        scale = fp16((xmax - xmin) / maxq)[:, None]
        zero = (maxq + 1) / 2
        q = np.clip(np.round(x / scale) + zero, 0, maxq)
        res[:, g0:g0 + group] = scale * (q - zero)
    return res


def is_linear(name):
    return ".layers." in name and name.endswith("_proj.weight")


def cmd_rtn(a):
    cfg, sd = stlib.load_hf_dir(a.src)
    for bits in a.bits:
        out = {}
        for k, v in sd.items():
            out[k] = torch.from_numpy(rtn(v.float().numpy(), bits, a.group)) if is_linear(k) else v.float()
        d = os.path.join(a.out, f"rtn{bits}")
        os.makedirs(d, exist_ok=True)
        stlib.save_safetensors(os.path.join(d, "model.safetensors"), out, {"format": "pt"})
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    print(json.dumps({"ok": True}))
    return 0


# ---- the independent unpacker -------------------------------------------------------------------

def unpack_stream(words, n, bits):
    """words [k] uint32 (along axis 0) -> n values of `bits`, LSB-first over the whole column."""
    w = words.astype(np.uint64)
    out = np.zeros((n,) + words.shape[1:], dtype=np.int64)
    for k in range(n):
        bit = k * bits
        i, s = bit // 32, bit % 32
        v = w[i] >> np.uint64(s)
        if s + bits > 32:
            v = v | (w[i + 1] << np.uint64(32 - s))
        out[k] = (v & np.uint64(2 ** bits - 1)).astype(np.int64)
    return out


def unpack_awq(words):
    """[r, c] uint32 -> [r, 8c] nibbles in column order."""
    w = words.astype(np.uint64)
    r, c = w.shape
    out = np.zeros((r, c * 8), dtype=np.int64)
    for k in range(8):
        out[:, AWQ_ORDER[k]::8] = ((w >> np.uint64(4 * k)) & np.uint64(15)).astype(np.int64)
    return out


def dequant_dir(qdir):
    """(config without quantization_config, state dict with dense f32 weights, facts)."""
    cfg, sd = stlib.load_hf_dir(qdir)
    qc = cfg.pop("quantization_config")
    method, bits, group = qc["quant_method"], qc["bits"], qc["group_size"]
    v1 = method == "gptq" and qc.get("checkpoint_format", qc.get("format", "gptq")) == "gptq"
    out, facts = {}, {"modules": 0, "max_code": 0}
    for k, v in sd.items():
        if not k.endswith(".qweight"):
            if not k.endswith((".qzeros", ".scales", ".g_idx")):
                out[k] = v.float()
            continue
        m = k[: -len(".qweight")]
        qw = v.numpy().view(np.uint32)
        qz = sd[m + ".qzeros"].numpy().view(np.uint32)
        sc = sd[m + ".scales"].float().numpy()
        assert sd[m + ".scales"].dtype == torch.float16, m
        assert (sc > 0).all(), m
        if method == "gptq":
            inp = qw.shape[0] * 32 // bits
            q = unpack_stream(qw, inp, bits)                      # [in, out]
            z = unpack_stream(qz.T, sc.shape[1], bits).T          # [groups, out]
            if qc.get("sym", True):
                # sym zeros are 2^(bits-1): v1 stores one less (4 bits: every word 0x77777777).
                assert (z == 2 ** (bits - 1) - (1 if v1 else 0)).all(), m
                if v1 and bits == 4:
                    assert (qz == 0x77777777).all(), m
            if v1:
                z = z + 1
            gi = sd[m + ".g_idx"].numpy().astype(np.int64)
            counts = np.bincount(gi, minlength=sc.shape[0])
            g = inp if group == -1 else group
            assert (counts == g).all(), (m, counts)
        else:
            q = unpack_awq(qw)                                    # [in, out]
            z = unpack_awq(qz)                                    # [groups, out]
            gi = np.arange(q.shape[0]) // group
        assert q.min() >= 0 and q.max() < 2 ** bits and z.min() >= 0 and z.max() <= 2 ** bits, m
        facts["max_code"] = max(facts["max_code"], int(q.max()))
        facts["modules"] += 1
        w = sc[gi, :] * (q - z[gi, :])                             # [in, out]
        out[m + ".weight"] = torch.from_numpy(np.ascontiguousarray(w.T).astype(np.float32))
    return cfg, out, facts


def cmd_unpack(a):
    if len(a.dirs) % 2 != 0:
        raise SystemExit("unpack takes pairs QDIR DENSE_DIR")
    results, ok = [], True
    for qdir, dense in zip(a.dirs[0::2], a.dirs[1::2]):
        _, mine, facts = dequant_dir(qdir)
        _, theirs = stlib.load_hf_dir(dense)
        worst = 0.0
        for k, v in mine.items():
            t = theirs[k].float()
            if v.shape != t.shape:
                raise SystemExit(f"{qdir}: {k}: shape {list(v.shape)} vs {list(t.shape)}")
            # modelconvert stores the dequantized weight in f16 (the scales' dtype).
            ref = v.half().float() if ".layers." in k and k.endswith("_proj.weight") else v
            worst = max(worst, (ref - t).abs().max().item())
        facts.update({"dir": qdir, "max_abs_diff": worst})
        ok = ok and worst == 0.0
        results.append(facts)
    print(json.dumps({"ok": ok, "results": results}))
    return 0 if ok else 1


def cmd_kl(a):
    with open(a.heldout) as f:
        windows = json.load(f)
    scfg, ssd = stlib.load_hf_dir(a.src)
    with torch.no_grad():
        ref = [torch.log_softmax(ref_forward.forward(scfg, ssd, ids).double(), -1) for ids in windows]
        results = {}
        for model in a.models:
            with open(os.path.join(model, "config.json")) as f:
                quantized = "quantization_config" in json.load(f)
            if quantized:
                mcfg, msd, _ = dequant_dir(model)
            else:
                mcfg, msd = stlib.load_hf_dir(model)
            kl_sum, n, agree = 0.0, 0, 0
            for ids, ls in zip(windows, ref):
                lm = torch.log_softmax(ref_forward.forward(mcfg, msd, ids).double(), -1)
                kl_sum += (ls.exp() * (ls - lm)).sum(-1).sum().item()
                agree += (ls.argmax(-1) == lm.argmax(-1)).sum().item()
                n += len(ids)
            results[os.path.basename(os.path.normpath(model))] = {"mean_kl": kl_sum / n, "top1": agree / n,
                                                                   "positions": n}
    print(json.dumps({"ok": True, "results": results}))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--corpus", required=True)
    r = sub.add_parser("rtn")
    r.add_argument("src")
    r.add_argument("out")
    r.add_argument("--bits", type=int, nargs="+", default=[4])
    r.add_argument("--group", type=int, default=128)
    k = sub.add_parser("kl")
    k.add_argument("src")
    k.add_argument("heldout")
    k.add_argument("models", nargs="+")
    u = sub.add_parser("unpack")
    u.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    return {"make": cmd_make, "rtn": cmd_rtn, "kl": cmd_kl, "unpack": cmd_unpack}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
