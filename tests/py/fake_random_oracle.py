#!/usr/bin/env python3
"""Independent copy of modelconvert's --fake-weight-init random generator (pure Python).

    fake_random_oracle.py SEED NAME STDDEV FIRST COUNT

Prints a JSON object {"f32": [...], "bf16": [...]}: the float32 bit patterns of elements
FIRST .. FIRST+COUNT-1 of tensor NAME, and their bfloat16 rounding (nearest, ties to even).

The generator (src/transforms/fake_weights.cpp): key = splitmix64(seed ^ fnv1a64(name)); for
element i, k = splitmix64(key ^ (i >> 32)), ka/kb = low/high 32 bits of k, c = i mod 2^32,
a = lowbias32(c ^ ka), b = lowbias32(c ^ kb), S = the sum of the four 16-bit halves of a and b,
value = float32(S - 131070) * float32(stddev / sqrt((65536^2 - 1) / 3)) in float32.
"""
import json
import math
import struct
import sys

M32, M64 = (1 << 32) - 1, (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for ch in s.encode():
        h = ((h ^ ch) * 0x100000001B3) & M64
    return h


def lowbias32(x):
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def f32(x):
    """x rounded to float32 (nearest even), as a Python float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def main():
    seed, name, stddev, first, count = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    key = splitmix64(seed ^ fnv1a64(name))
    scale = f32(f32(stddev) / math.sqrt((65536.0 * 65536.0 - 1.0) / 3.0))
    out32, out16 = [], []
    for i in range(first, first + count):
        k = splitmix64(key ^ (i >> 32))
        c = i & M32
        a, b = lowbias32(c ^ (k & M32)), lowbias32(c ^ (k >> 32))
        s = (a & 0xFFFF) + (a >> 16) + (b & 0xFFFF) + (b >> 16)
        v = f32(float(s - 131070) * scale)  # both exact in float32; the double product is exact
        u = bits(v)
        out32.append(u)
        out16.append((u + 0x7FFF + ((u >> 16) & 1)) >> 16)
    print(json.dumps({"f32": out32, "bf16": out16}))


if __name__ == "__main__":
    main()
