#!/usr/bin/env python3
"""Compares the tensors of two GGUF files byte for byte (used by bench/perf_bench.sh).

GGUF v2/v3 layout: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv key/value pairs
(string key, u32 type, value); n_tensors infos (string name, u32 n_dims, u64 dims[n_dims],
u32 ggml type, u64 offset relative to the data section); the data section starts at the next
multiple of general.alignment (default 32). Strings are u64 length + bytes.

Prints one line: how many tensors are byte-identical, and the first differences; exits 1 when
any tensor differs in name, type, shape or bytes.
"""
import hashlib
import struct
import sys

# Sizes of the scalar GGUF value types (gguf_type): 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32,
# 6 f32, 7 bool, 8 string, 9 array, 10 u64, 11 i64, 12 f64.
SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
# ggml type -> (block elements, block bytes) for the types these benchmarks write.
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18), 3: (32, 20), 6: (32, 22),
         7: (32, 24), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
         14: (256, 210)}


class Reader:
    def __init__(self, path):
        self.f = open(path, "rb")

    def u32(self):
        return struct.unpack("<I", self.f.read(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.f.read(8))[0]

    def string(self):
        return self.f.read(self.u64()).decode("utf-8", "replace")

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.u32(), self.u64()
            if et in SCALAR:
                self.f.seek(SCALAR[et] * n, 1)
                return None
            return [self.value(et) for _ in range(n)]
        raw = self.f.read(SCALAR[t])
        return struct.unpack({1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[len(raw)], raw)[0]


def tensors(path):
    r = Reader(path)
    if r.f.read(4) != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    r.u32()
    n_t, n_kv = r.u64(), r.u64()
    align = 32
    for _ in range(n_kv):
        k = r.string()
        v = r.value(r.u32())
        if k == "general.alignment":
            align = v
    infos = []
    for _ in range(n_t):
        name = r.string()
        dims = [r.u64() for _ in range(r.u32())]
        infos.append((name, dims, r.u32(), r.u64()))
    start = (r.f.tell() + align - 1) // align * align
    out = {}
    for name, dims, t, off in infos:
        n = 1
        for d in dims:
            n *= d
        be, bb = BLOCK.get(t, (0, 0))
        if be == 0:
            sys.exit(f"{path}: tensor {name}: ggml type {t} not handled by this script")
        r.f.seek(start + off)
        out[name] = (dims, t, hashlib.sha256(r.f.read(n // be * bb)).hexdigest())
    return out


def main():
    a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
    same = [k for k in a if k in b and a[k] == b[k]]
    diff = sorted(set(a) ^ set(b)) + [k for k in a if k in b and a[k] != b[k]]
    types = sorted({a[k][1] for k in a})
    print(f"{len(same)}/{len(a)} tensors byte-identical (ggml types {types})"
          + (f"; differ: {', '.join(diff[:5])}" if diff else ""))
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
