"""Expected dtype conversions for src/core/dtype_test.cpp, computed by torch (and numpy).

Usage: dtype_oracle.py OUT_DIR   -> writes OUT_DIR/cases.bin, prints notes on stdout.

cases.bin (little endian): b"MCDT", u32 version (1), u32 record count, then per record:
  u16 label length, label; u8 length, source dtype name; u8 length, target dtype name;
  u64 n; n source elements; n expected target elements.
Dtype names are modelconvert's (f32, f16, bf16, f64, f8_e4m3, f8_e5m2, i64, ..., bool).

Float results come from torch's c10 scalar code path: a strided view makes torch skip its
vectorised kernels. The contiguous (vectorised) result is checked to agree except for NaNs,
where torch's AVX2 f32 -> bf16 kernel writes 0xFFFF instead of c10's 0x7FC0 (printed below).
torch 1.13 has no float8 types, so f8 expectations come from an independent numpy model:
decoding by formula, encoding by nearest-even search over the table of all codes.
"""
import struct
import sys

import numpy as np
import torch

RNG = np.random.default_rng(20240611)

TORCH = {
    "f64": torch.float64, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16,
    "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8,
    "u8": torch.uint8, "bool": torch.bool,
}
# numpy storage type with the same bytes (bf16 travels as raw uint16).
NP = {
    "f64": np.float64, "f32": np.float32, "f16": np.float16, "bf16": np.uint16,
    "i64": np.int64, "i32": np.int32, "i16": np.int16, "i8": np.int8, "u8": np.uint8,
    "bool": np.bool_, "f8_e4m3": np.uint8, "f8_e5m2": np.uint8,
}

records = []


def add(label, src_name, dst_name, src, dst):
    src = np.ascontiguousarray(src).astype(NP[src_name], copy=False)
    dst = np.ascontiguousarray(dst).astype(NP[dst_name], copy=False)
    assert src.shape == dst.shape and src.ndim == 1, label
    records.append((label, src_name, dst_name, src, dst))


def to_torch(arr, name):
    if name == "bf16":
        return torch.from_numpy(arr.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(arr))


def from_torch(t, name):
    if name == "bf16":
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def torch_cast(src, src_name, dst_name):
    """c10 scalar path (strided source), checked against the vectorised path off NaNs."""
    n = len(src)
    wide = np.zeros(2 * n, dtype=src.dtype)
    wide[::2] = src
    strided = to_torch(wide, src_name)[::2]
    scalar = from_torch(strided.to(TORCH[dst_name]).contiguous(), dst_name).copy()
    vector = from_torch(to_torch(src, src_name).to(TORCH[dst_name]), dst_name)
    s_bytes = scalar.view(np.uint8).reshape(n, -1)
    v_bytes = vector.view(np.uint8).reshape(n, -1)
    bad = np.nonzero((s_bytes != v_bytes).any(axis=1))[0]
    if len(bad):
        src_f = to_torch(src, src_name).to(torch.float64).numpy()
        assert np.isnan(src_f[bad]).all(), f"{src_name}->{dst_name}: torch paths differ off NaN"
        as_int = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[s_bytes.shape[1]]
        v_nan = sorted({hex(int(b)) for b in v_bytes[bad].copy().view(as_int).ravel()})
        s_nan = sorted({hex(int(b)) for b in s_bytes[bad].copy().view(as_int).ravel()})
        print(f"note: {src_name}->{dst_name} NaN: torch vectorised kernel gives {v_nan}, "
              f"c10 scalar path gives {s_nan} (we follow c10)")
    return scalar


# ---- f32 sample: every sign and exponent x mantissas probing each rounding position ---------
def mantissas():
    m = set()
    for j in range(24):
        for v in ((1 << j), (1 << j) - 1, (1 << j) + 1, 3 << j, (3 << j) | 1, (3 << j) - 1,
                  (5 << j), (5 << j) - 1):
            m.add(v & 0x7FFFFF)
    for hi in [0, 1, 2, 0x1FF, 0x200, 0x3FE, 0x3FF] + list(RNG.integers(0, 1 << 10, 12)):
        for lo in [0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF] + list(RNG.integers(0, 1 << 13, 6)):
            m.add((int(hi) << 13) | int(lo))
    for hi in [0, 1, 0x3F, 0x40, 0x7E, 0x7F] + list(RNG.integers(0, 1 << 7, 8)):
        for lo in [0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF] + list(RNG.integers(0, 1 << 16, 6)):
            m.add((int(hi) << 16) | int(lo))
    m.update(int(x) for x in RNG.integers(0, 1 << 23, 1500))
    return np.array(sorted(m), dtype=np.uint32)


def f32_sample(exponents):
    mant = mantissas()
    exps = np.array(exponents, dtype=np.uint32)
    grid = (exps[:, None] << 23) | mant[None, :]
    bits = np.concatenate([grid.ravel(), grid.ravel() | 0x80000000])
    special = [0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0x7FA00000, 0x7FC00001, 0x7F812345,
               0xFF800001, 0xFFC00000, 0xFFFFFFFF, 0x7F800000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF,
               0x477FE000, 0x477FEFFF, 0x477FF000, 0x47800000, 0x7F7F7FFF, 0x7F7F8000,
               0x00000001, 0x80000001, 0x00000000, 0x80000000]
    payloads = RNG.integers(1, 1 << 23, 64, dtype=np.uint32) | 0x7F800000
    return np.concatenate([bits, np.array(special, dtype=np.uint32), payloads,
                           payloads | 0x80000000]).astype(np.uint32)


# ---- independent float8 model ------------------------------------------------------------------
def f8_decode(code, ebits, mbits, bias, fn):
    """float value of each code by formula; NaN codes as c10 returns them (bits)."""
    code = code.astype(np.int64)
    s = (code >> (ebits + mbits)) & 1
    e = (code >> mbits) & ((1 << ebits) - 1)
    m = code & ((1 << mbits) - 1)
    mag = np.where(e == 0, np.ldexp(m.astype(np.float64), 1 - bias - mbits),
                   np.ldexp(1.0 + m / float(1 << mbits), (e - bias).astype(np.int32)))
    val = np.where(s == 1, -mag, mag)
    bits = val.astype(np.float32).view(np.uint32).copy()
    top = (1 << ebits) - 1
    if fn:  # e4m3fn: only S.1111.111 is NaN; c10 decodes it to sign | 0x7FF00000
        nan = (e == top) & (m == (1 << mbits) - 1)
        bits[nan] = np.where(s[nan] == 1, 0xFFF00000, 0x7FF00000)
    else:  # e5m2: IEEE-like; NaN is quieted (bit 22) with its payload, as f16 -> f32 does
        inf = (e == top) & (m == 0)
        nan = (e == top) & (m != 0)
        bits[inf] = np.where(s[inf] == 1, 0xFF800000, 0x7F800000)
        bits[nan] = ((s[nan] << 31) | 0x7FC00000 | (m[nan] << (23 - mbits))).astype(np.uint32)
    return bits


def f8_encode(xbits, table, overflow_code, overflow_value):
    """Round each f32 (bits) to the nearest code of `table` (positive codes -> value), ties to
    the even code; |x| >= overflow_value, or nearer to it, gives overflow_code."""
    x = xbits.view(np.float32).astype(np.float64)
    sign = ((xbits >> 31) & 1).astype(np.uint8) << 7
    codes = np.array(sorted(table), dtype=np.int64)
    vals = np.array([table[c] for c in codes], dtype=np.float64)
    codes = np.append(codes, overflow_code)
    vals = np.append(vals, overflow_value)
    a = np.abs(x)
    hi = np.clip(np.searchsorted(vals, a, side="left"), 0, len(vals) - 1)
    lo = np.clip(hi - 1, 0, len(vals) - 1)
    d_lo = a - vals[lo]
    d_hi = vals[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (codes[hi] % 2 == 0))
    pick_hi |= vals[lo] >= a  # exact hit at index 0 or a below the table
    idx = np.where(pick_hi, hi, lo)
    idx = np.where(vals[hi] == a, hi, idx)
    out = codes[idx].astype(np.uint8)
    out[a >= overflow_value] = overflow_code
    out[np.isnan(x)] = 0x7F
    return out | sign


def f8_cases():
    all8 = np.arange(256, dtype=np.uint32)
    e4 = f8_decode(all8, 4, 3, 7, True)
    e5 = f8_decode(all8, 5, 2, 15, False)
    add("f8_e4m3->f32 all codes", "f8_e4m3", "f32", all8, e4.view(np.float32))
    add("f8_e5m2->f32 all codes", "f8_e5m2", "f32", all8, e5.view(np.float32))
    t4 = {c: float(e4[c:c + 1].view(np.float32)[0]) for c in range(0x7F)}  # 0x7F is NaN
    t5 = {c: float(e5[c:c + 1].view(np.float32)[0]) for c in range(0x7C)}  # 0x7C is inf
    # Sample: the exponents around both formats' ranges, code values, midpoints and their
    # neighbours one f32 ulp away.
    xs = [f32_sample(range(95, 152))]
    for t in (t4, t5):
        v = np.array(sorted(set(t.values())), dtype=np.float64)
        mids = ((v[:-1] + v[1:]) / 2).astype(np.float32).view(np.uint32)
        pts = np.concatenate([v.astype(np.float32).view(np.uint32), mids, mids + 1, mids - 1])
        xs += [pts, pts | 0x80000000]
    x = np.concatenate(xs).astype(np.uint32)
    add("f32->f8_e4m3 sample", "f32", "f8_e4m3", x.view(np.float32), f8_encode(x, t4, 0x7F, 480.0))
    add("f32->f8_e5m2 sample", "f32", "f8_e5m2", x.view(np.float32),
        f8_encode(x, t5, 0x7C, 65536.0))


# ---- integers ---------------------------------------------------------------------------------
def int_values(name, n=3000):
    if name == "bool":
        return RNG.integers(0, 2, n).astype(np.bool_)
    info = np.iinfo(NP[name])
    edges = [info.min, info.min + 1, -1, 0, 1, info.max - 1, info.max, 127, 128, 255, 256,
             -128, -129, 32767, 32768, 65535, 65519, 65520, 65536, 2**24 + 1, 2**31 - 1, 2**31,
             2**53 + 1, 2**60 + 2**36, 2**60 + 2**36 + 1, 2**62 + 2**38 + 2**37]
    edges = [e for e in edges if info.min <= e <= info.max]
    edges += [-e for e in edges if info.min <= -e <= info.max]
    bits = np.iinfo(NP[name]).bits
    mags = np.concatenate([RNG.integers(0, 2**min(k, bits - 1), 40, dtype=np.int64)
                           for k in range(1, bits)])
    vals = np.concatenate([np.array(edges, dtype=np.int64).astype(NP[name]),
                           mags.astype(NP[name]),
                           (-mags).astype(NP[name]) if info.min < 0 else mags.astype(NP[name]),
                           RNG.integers(info.min, info.max, n, dtype=NP[name], endpoint=True)])
    return vals.astype(NP[name])


def int_cases():
    ints = ["i64", "i32", "i16", "i8", "u8", "bool"]
    for s in ints:
        v = int_values(s)
        for d in ints + ["f64", "f32", "f16", "bf16"]:
            if d != s:
                add(f"{s}->{d}", s, d, v, torch_cast(v, s, d))
    # float -> bool: zeros of both signs, NaN, subnormals, inf
    fb = np.array([0.0, -0.0, np.nan, -np.nan, 1e-45, -1e-45, np.inf, -np.inf, 1.0, 0.5],
                  dtype=np.float32)
    for s in ["f32", "f64", "f16"]:
        v = fb.astype(NP[s])
        add(f"{s}->bool", s, "bool", v, torch_cast(v, s, "bool"))
    vb = fb.view(np.uint32) >> 16
    add("bf16->bool", "bf16", "bool", vb.astype(np.uint16), torch_cast(vb.astype(np.uint16), "bf16", "bool"))
    # float -> int, in range only (outside, torch is platform-defined and we saturate)
    for s in ["f64", "f32", "f16", "bf16"]:
        for d in ["i64", "i32", "i16", "i8", "u8"]:
            info = np.iinfo(NP[d])
            lo, hi = float(info.min), float(info.max)
            if s == "f16":
                lo, hi = max(lo, -65504.0), min(hi, 65504.0)
            mags = np.exp(RNG.uniform(-3, np.log(max(abs(lo), hi)), 3000))
            v = np.concatenate([mags, -mags, [0.0, -0.0, 0.5, -0.5, 0.99, -0.99, 1.5, -1.5, lo, hi]])
            if s == "bf16":
                t = torch.from_numpy(v).to(torch.bfloat16)
                src = t.view(torch.int16).numpy().view(np.uint16)
                fv = t.to(torch.float64).numpy()
            else:
                src = v.astype(NP[s])
                fv = src.astype(np.float64)
            keep = (np.trunc(fv) >= lo) & (np.trunc(fv) <= hi) & (np.abs(fv) < 2.0**63)
            src = src[keep]
            add(f"{s}->{d} in range", s, d, src, torch_cast(src, s, d))


def main():
    np.seterr(all="ignore")  # NaN payloads cast between widths on purpose
    out_dir = sys.argv[1]
    # f16 / bf16: every bit pattern
    all16 = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    h = all16.view(np.float16)
    f = torch_cast(h, "f16", "f32")
    npf = h.astype(np.float32).view(np.uint32)
    diff = np.nonzero(npf != f.view(np.uint32))[0]
    assert np.isnan(h[diff]).all(), "numpy and torch disagree on a non-NaN f16"
    print(f"note: f16->f32 numpy == torch on all non-NaN patterns; {len(diff)} NaN patterns "
          f"differ (torch quiets signalling NaNs, e.g. 0x7c01 -> "
          f"{hex(int(f.view(np.uint32)[0x7C01]))}, numpy {hex(int(npf[0x7C01]))})")
    add("f16->f32 all patterns", "f16", "f32", h, f)
    add("bf16->f32 all patterns", "bf16", "f32", all16, torch_cast(all16, "bf16", "f32"))
    add("f16->bf16 all patterns", "f16", "bf16", h, torch_cast(h, "f16", "bf16"))
    add("bf16->f16 all patterns", "bf16", "f16", all16, torch_cast(all16, "bf16", "f16"))
    add("f16->f64 all patterns", "f16", "f64", h, torch_cast(h, "f16", "f64"))
    add("bf16->f64 all patterns", "bf16", "f64", all16, torch_cast(all16, "bf16", "f64"))

    x = f32_sample(range(256)).view(np.float32)
    add("f32->f16 sample", "f32", "f16", x, torch_cast(x, "f32", "f16"))
    add("f32->bf16 sample", "f32", "bf16", x, torch_cast(x, "f32", "bf16"))
    add("f32->f64 sample", "f32", "f64", x[::8], torch_cast(x[::8], "f32", "f64"))

    # f64 sources: values just off f32 values, where rounding twice (via f32, as c10 does)
    # and once differ at f16/bf16 ties.
    xd = x[::16].astype(np.float64)
    xd = xd[np.isfinite(xd)]
    d = np.concatenate([xd, xd * (1 + 2.0**-35), xd * (1 - 2.0**-35), xd * (1 + 2.0**-26)])
    for t in ["f32", "f16", "bf16"]:
        add(f"f64->{t} sample", "f64", t, d, torch_cast(d, "f64", t))

    f8_cases()
    int_cases()

    with open(f"{out_dir}/cases.bin", "wb") as fh:
        fh.write(b"MCDT" + struct.pack("<II", 1, len(records)))
        for label, s, dname, src, dst in records:
            lb = label.encode()
            fh.write(struct.pack("<H", len(lb)) + lb)
            fh.write(struct.pack("<B", len(s)) + s.encode())
            fh.write(struct.pack("<B", len(dname)) + dname.encode())
            fh.write(struct.pack("<Q", len(src)))
            fh.write(src.tobytes())
            fh.write(dst.tobytes())
    print(f"wrote {len(records)} records")


if __name__ == "__main__":
    main()
