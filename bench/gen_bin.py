"""Writes a ~1.5 GB torch.save state dict (f32 and bf16 matrices, a transposed view) for
bench/torch_bench.sh. Usage: gen_bin.py OUT.bin [GB]"""
import sys

import torch

out = sys.argv[1]
gb = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
torch.manual_seed(0)
sd, total, i = {}, 0, 0
while total < gb * 1e9:
    dt = torch.float32 if i % 2 == 0 else torch.bfloat16
    t = torch.randn(4096, 4096).to(dt)
    sd[f"layers.{i}.weight"] = t
    total += t.numel() * t.element_size()
    i += 1
sd["head.weight_t"] = torch.randn(1024, 4096).t()  # a strided view: gathered on read
torch.save(sd, out)
print(f"wrote {out}: {len(sd)} tensors, {total / 1e9:.2f} GB")
