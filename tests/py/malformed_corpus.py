#!/usr/bin/python3
"""Writes the malformed-input corpus: small crafted files across formats, derived from good tiny
models, and a manifest of what each command must answer.

usage: malformed_corpus.py BASE OUT
  BASE holds good models the test wrote with modelconvert (from one tiny llama config):
    hf/ (config.json, model.safetensors, tokenizer.json), model.bin (a torch.save zip),
    model.gguf, mlx/ (4-bit), megatron/ (the llama2.c file is built here)
  OUT receives cases/<name>/... and manifest.json: a list of
    {"name", "input" (path under OUT), "names" (the basename stderr must name),
     "convert", "inspect", "validate" (the exit code each must give; null: not run),
     "args" (extra convert arguments)}
Only the standard library: every file is built or patched byte by byte here.
"""
import json
import os
import shutil
import struct
import sys
import zipfile

BASE, OUT = sys.argv[1], sys.argv[2]
CASES = os.path.join(OUT, "cases")
manifest = []

# Exit codes (README "Exit codes").
INVALID, IO, NOTFOUND, UNSUPPORTED, CORRUPT, MISMATCH = 2, 3, 4, 5, 6, 7


SKIP = "skip"  # a command that does not apply (e.g. validate of an input-only format)


def case(name, rel_input, names, convert, inspect=None, validate=None, args=None, frm=None, open_reason=None):
    """Registers a case; inspect/validate default to convert's code."""
    pick = lambda v: None if v == SKIP else (convert if v is None else v)
    manifest.append({
        "name": name,
        "input": os.path.join("cases", name, rel_input) if rel_input else os.path.join("cases", name),
        "names": names,
        "convert": convert,
        "inspect": pick(inspect),
        "validate": pick(validate),
        "args": args or [],
    })
    if frm:
        manifest[-1]["from"] = frm
    if open_reason:
        manifest[-1]["open"] = open_reason


# Cases whose code is known to be wrong today (the test then asks only for some input error,
# named file, nothing written, input unchanged); each with the reason. Keep this list short.
OPEN = {}


def finish():
    for c in manifest:
        if c["name"] in OPEN:
            c["open"] = OPEN[c["name"]]


def folder(name):
    d = os.path.join(CASES, name)
    os.makedirs(d, exist_ok=True)
    return d


def put(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


def copy_dir(src, name):
    d = os.path.join(CASES, name)
    shutil.copytree(src, d, symlinks=True)
    return d


# ---- safetensors -------------------------------------------------------------------------------

ST = read(os.path.join(BASE, "hf", "model.safetensors"))
ST_N = struct.unpack("<Q", ST[:8])[0]
ST_HDR = json.loads(ST[8:8 + ST_N])
ST_DATA = ST[8 + ST_N:]


def st_bytes(header, data=None, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + (ST_DATA if data is None else data)


def st_case(name, data, code, inspect=None, validate=None):
    put(os.path.join(folder(name), "w.safetensors"), data)
    case(name, "w.safetensors", "w.safetensors", code, inspect, validate)


def st_names():
    return [k for k in ST_HDR if k != "__metadata__"]


def st_with(mutate):
    h = json.loads(json.dumps(ST_HDR))
    mutate(h)
    return st_bytes(h)


first = st_names()[0]
second = st_names()[1]
st_case("st_empty_file", b"", CORRUPT)
st_case("st_short_length", b"\x10\x00\x00", CORRUPT)
st_case("st_zero_header", struct.pack("<Q", 0), CORRUPT)
st_case("st_length_past_eof", struct.pack("<Q", 1 << 20) + b"{}", CORRUPT)
st_case("st_length_huge", struct.pack("<Q", (1 << 63) + 5) + b"{}", CORRUPT)
st_case("st_header_not_json", st_bytes(None, raw_header=b"{not json at all}"), CORRUPT)
st_case("st_header_array", st_bytes([1, 2, 3]), CORRUPT)
st_case("st_header_empty_object", st_bytes({}, data=b""), NOTFOUND, 0)  # inspect: 0 tensors
st_case("st_header_deep", st_bytes(None, raw_header=b"{\"a\":" + b"[" * 5000 + b"]" * 5000 + b"}"), CORRUPT)
st_case("st_header_bad_utf8", st_bytes(None, raw_header=b'{"\xff\xfe": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'), CORRUPT)
st_case("st_entry_not_object", st_with(lambda h: h.__setitem__(first, 5)), CORRUPT)
st_case("st_dtype_unknown", st_with(lambda h: h[first].__setitem__("dtype", "X9")), CORRUPT)
st_case("st_dtype_not_string", st_with(lambda h: h[first].__setitem__("dtype", 3)), CORRUPT)
st_case("st_shape_negative", st_with(lambda h: h[first].__setitem__("shape", [-1, 16])), CORRUPT)
st_case("st_shape_not_list", st_with(lambda h: h[first].__setitem__("shape", "16")), CORRUPT)
st_case("st_shape_overflow", st_with(lambda h: h[first].__setitem__("shape", [1 << 40, 1 << 40, 1 << 40])), CORRUPT)
st_case("st_shape_vs_bytes", st_with(lambda h: h[first].__setitem__("shape", [3, 5])), MISMATCH)
st_case("st_offsets_past_eof", st_with(lambda h: h[first].__setitem__("data_offsets", [0, len(ST_DATA) + 4096])), CORRUPT)
st_case("st_offsets_reversed", st_with(lambda h: h[first].__setitem__("data_offsets", [h[first]["data_offsets"][1], h[first]["data_offsets"][0]])), CORRUPT)
st_case("st_offsets_missing", st_with(lambda h: h[first].pop("data_offsets")), CORRUPT)
st_case("st_offsets_overlap", st_with(lambda h: h[second].__setitem__("data_offsets", [h[first]["data_offsets"][0], h[first]["data_offsets"][0] + (h[second]["data_offsets"][1] - h[second]["data_offsets"][0])])), CORRUPT)
st_case("st_truncated_data", st_bytes(ST_HDR, data=ST_DATA[: len(ST_DATA) // 2]), CORRUPT)
st_case("st_metadata_not_strings", st_with(lambda h: h.__setitem__("__metadata__", {"format": 5})), CORRUPT)

# ---- HF directories ----------------------------------------------------------------------------

HF = os.path.join(BASE, "hf")
CFG = json.loads(read(os.path.join(HF, "config.json")))


def hf_case(name, mutate_dir, names, code, inspect=None, validate=None):
    d = copy_dir(HF, name)
    mutate_dir(d)
    case(name, None, names, code, inspect, validate)


def cfg_with(**kv):
    def m(d):
        c = dict(CFG)
        for k, v in kv.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        put(os.path.join(d, "config.json"), json.dumps(c))
    return m


def write_text(rel, text):
    return lambda d: put(os.path.join(d, rel), text)


def replace_with_dir(rel):
    def m(d):
        os.remove(os.path.join(d, rel))
        os.mkdir(os.path.join(d, rel))
    return m


def replace_with_fifo(rel):
    def m(d):
        os.remove(os.path.join(d, rel))
        os.mkfifo(os.path.join(d, rel))
    return m


def replace_with_dangling(rel):
    def m(d):
        os.remove(os.path.join(d, rel))
        os.symlink("no-such-target", os.path.join(d, rel))
    return m


def st_repack(h):
    """A valid safetensors file of header `h` (entries keep their base bytes, packed anew)."""
    out, blob = {}, b""
    for t, e in h.items():
        if t == "__metadata__":
            out[t] = e
            continue
        a, b = ST_HDR[t]["data_offsets"]
        n = 0 if 0 in e["shape"] else b - a
        out[t] = {"dtype": e["dtype"], "shape": e["shape"], "data_offsets": [len(blob), len(blob) + n]}
        blob += ST_DATA[a:a + n]
    return st_bytes(out, data=blob)


def st_drop(tensor):
    def m(d):
        h = json.loads(json.dumps(ST_HDR))
        h.pop(tensor)
        put(os.path.join(d, "model.safetensors"), st_repack(h))
    return m


def st_zero_matrix(tensor):
    def m(d):
        h = json.loads(json.dumps(ST_HDR))
        h[tensor]["shape"] = [0, h[tensor]["shape"][1]]
        put(os.path.join(d, "model.safetensors"), st_repack(h))
    return m


hf_case("hf_config_not_json", write_text("config.json", "{\"model_type\": llama"), "config.json", CORRUPT)
hf_case("hf_config_array", write_text("config.json", "[1, 2]"), "config.json", CORRUPT)
hf_case("hf_config_empty", write_text("config.json", ""), "config.json", CORRUPT)
hf_case("hf_config_deep", write_text("config.json", json.dumps(CFG)[:-1] + ", \"rope_scaling\": " + "[" * 3000 + "]" * 3000 + "}"), "config.json", CORRUPT)
hf_case("hf_config_is_dir", replace_with_dir("config.json"), "config.json", CORRUPT)
hf_case("hf_config_fifo", replace_with_fifo("config.json"), "config.json", CORRUPT)
# inspect shows a config a family cannot be built from (its "config_error"), exit 0.
hf_case("hf_config_no_hidden", cfg_with(hidden_size=None), "config.json", CORRUPT, 0)
hf_case("hf_config_hidden_string", cfg_with(hidden_size="16"), "config.json", CORRUPT, 0)
hf_case("hf_config_layers_huge", cfg_with(num_hidden_layers=10**9), "config.json", CORRUPT, 0)
hf_case("hf_config_heads_zero", cfg_with(num_attention_heads=0), "config.json", CORRUPT, 0)
hf_case("hf_config_vocab_negative", cfg_with(vocab_size=-5), "config.json", CORRUPT, 0)
hf_case("hf_config_kv_not_divisor", cfg_with(num_key_value_heads=3), "config.json", CORRUPT, 0)
hf_case("hf_config_head_dim_odd", cfg_with(head_dim=7), "config.json", CORRUPT, 0)
hf_case("hf_config_more_layers", cfg_with(num_hidden_layers=CFG["num_hidden_layers"] + 2), "input_layernorm.weight", NOTFOUND, 0)
hf_case("hf_no_final_norm", st_drop("model.norm.weight"), "config.json", NOTFOUND, 0)
hf_case("hf_zero_sized_lm_head", st_zero_matrix("lm_head.weight"), "lm_head.weight", MISMATCH, 0)
hf_case("hf_st_is_dir", replace_with_dir("model.safetensors"), "model.safetensors", CORRUPT)
hf_case("hf_st_is_fifo", replace_with_fifo("model.safetensors"), "model.safetensors", CORRUPT)
hf_case("hf_st_dangling", replace_with_dangling("model.safetensors"), "model.safetensors", NOTFOUND)
hf_case("hf_st_empty_header", write_text("model.safetensors", st_bytes({}, data=b"")), "model.safetensors", NOTFOUND, 0)
hf_case("hf_st_truncated", lambda d: put(os.path.join(d, "model.safetensors"), ST[: len(ST) // 3]), "model.safetensors", CORRUPT)
# inspect does not load tokenizer files (exit 0); validate and convert do.
hf_case("hf_tokenizer_garbage", write_text("tokenizer.json", "\x00\x01garbage{"), "tokenizer.json", CORRUPT, 0)
hf_case("hf_tokenizer_not_object", write_text("tokenizer.json", "[1, 2, 3]"), "tokenizer.json", CORRUPT, 0)
hf_case("hf_tokenizer_deep", write_text("tokenizer.json", "{\"model\": " + "[" * 3000 + "]" * 3000 + "}"), "tokenizer.json", CORRUPT, 0)
hf_case("hf_tokenizer_no_model", write_text("tokenizer.json", "{\"version\": \"1.0\"}"), "tokenizer.json", CORRUPT, 0)
hf_case("hf_tokenizer_model_garbage", write_text("tokenizer.model", b"\xff\xff\xff\xff garbage"), "tokenizer.model", CORRUPT, 0)


def shard_dir(name, mutate_index, names, code, inspect=None, validate=None):
    """A two-shard directory (the base weights split in two files), then `mutate_index`."""
    d = folder(name)
    put(os.path.join(d, "config.json"), json.dumps(CFG))
    names_all = st_names()
    half = len(names_all) // 2
    wm = {}
    for i, part in enumerate((names_all[:half], names_all[half:])):
        fn = "model-%05d-of-00002.safetensors" % (i + 1)
        h, blob = {}, b""
        for t in part:
            a, b = ST_HDR[t]["data_offsets"]
            h[t] = {"dtype": ST_HDR[t]["dtype"], "shape": ST_HDR[t]["shape"], "data_offsets": [len(blob), len(blob) + b - a]}
            blob += ST_DATA[a:b]
            wm[t] = fn
        put(os.path.join(d, fn), st_bytes(h, data=blob))
    index = {"metadata": {}, "weight_map": wm}
    mutate_index(d, index)
    if index is not None:
        put(os.path.join(d, "model.safetensors.index.json"), json.dumps(index) if isinstance(index, dict) else index)
    case(name, None, names, code, inspect, validate)


def rm(rel):
    return lambda d, ix: os.remove(os.path.join(d, rel))


def ix_set(fn):
    return lambda d, ix: fn(ix)


shard_dir("idx_missing_shard", rm("model-00002-of-00002.safetensors"), "model-00002-of-00002.safetensors", NOTFOUND)
shard_dir("idx_shard_is_dir", lambda d, ix: (os.remove(os.path.join(d, "model-00002-of-00002.safetensors")), os.mkdir(os.path.join(d, "model-00002-of-00002.safetensors"))), "model-00002-of-00002.safetensors", CORRUPT)
shard_dir("idx_no_weight_map", ix_set(lambda ix: ix.pop("weight_map")), "model.safetensors.index.json", CORRUPT)
shard_dir("idx_weight_map_array", ix_set(lambda ix: ix.__setitem__("weight_map", [1])), "model.safetensors.index.json", CORRUPT)
shard_dir("idx_shard_escapes", ix_set(lambda ix: ix["weight_map"].__setitem__(first, "../evil.safetensors")), "model.safetensors.index.json", CORRUPT)
shard_dir("idx_shard_absolute", ix_set(lambda ix: ix["weight_map"].__setitem__(first, "/etc/passwd")), "model.safetensors.index.json", CORRUPT)
shard_dir("idx_wrong_shard", ix_set(lambda ix: ix["weight_map"].__setitem__(st_names()[-1], "model-00001-of-00002.safetensors")), "model-00001-of-00002.safetensors", MISMATCH)
shard_dir("idx_unknown_tensor", ix_set(lambda ix: ix["weight_map"].__setitem__("ghost.weight", "model-00001-of-00002.safetensors")), "model-00001-of-00002.safetensors", MISMATCH)
shard_dir("idx_not_json", lambda d, ix: put(os.path.join(d, "model.safetensors.index.json.tmp"), b""), "model.safetensors.index.json", CORRUPT)
# (the last one's index text is replaced below)
put(os.path.join(CASES, "idx_not_json", "model.safetensors.index.json"), "{weight_map: ")
os.remove(os.path.join(CASES, "idx_not_json", "model.safetensors.index.json.tmp"))
shard_dir("idx_total_size_string", ix_set(lambda ix: ix["metadata"].__setitem__("total_size", "big")), "model.safetensors.index.json", CORRUPT)

# ---- PyTorch .bin (zip + pickle) ---------------------------------------------------------------

PT = read(os.path.join(BASE, "model.bin"))


def pt_case(name, data, code, inspect=None, validate=None):
    put(os.path.join(folder(name), "model.bin"), data)
    case(name, "model.bin", "model.bin", code, inspect, validate)


def pt_rewrite(replace):
    """The base zip with each member passed through replace(name, bytes) -> bytes or None (drop)."""
    src = zipfile.ZipFile(os.path.join(BASE, "model.bin"))
    out = os.path.join(CASES, "_tmp.zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            data = replace(info.filename, src.read(info))
            if data is not None:
                z.writestr(info.filename, data)
    data = read(out)
    os.remove(out)
    return data


def pkl_member(data_pkl):
    return pt_rewrite(lambda n, b: data_pkl if n.endswith("/data.pkl") else b)


# GLOBAL os system, a string, TUPLE1, REDUCE, STOP: what torch.load would run; we must only parse it.
HOSTILE = b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00touch pwndq\x01\x85q\x02Rq\x03."
pt_case("pt_truncated_half", PT[: len(PT) // 2], CORRUPT)
pt_case("pt_truncated_tail", PT[:-10], CORRUPT)
pt_case("pt_zip_magic_only", b"PK\x03\x04" + b"\x00" * 60, CORRUPT)
pt_case("pt_hostile_pickle", pkl_member(HOSTILE), CORRUPT)
pt_case("pt_pickle_list", pkl_member(b"\x80\x02]q\x00(K\x01K\x02e."), CORRUPT)
pt_case("pt_pickle_int", pkl_member(b"\x80\x02K\x05."), CORRUPT)
pt_case("pt_pickle_garbage", pkl_member(b"\xfe\xfd\xfc garbage"), CORRUPT)
pt_case("pt_pickle_empty", pkl_member(b""), CORRUPT)
pt_case("pt_pickle_no_stop", pkl_member(b"\x80\x02}q\x00"), CORRUPT)
pt_case("pt_no_data_pkl", pt_rewrite(lambda n, b: None if n.endswith("/data.pkl") else b), CORRUPT)
pt_case("pt_storage_missing", pt_rewrite(lambda n, b: None if "/data/0" == n[n.find("/data/"):] else b), CORRUPT)
pt_case("pt_storage_short", pt_rewrite(lambda n, b: b[:2] if "/data/" in n and not n.endswith(".pkl") else b), CORRUPT)
pt_case("pt_legacy_truncated", b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", CORRUPT)

# ---- GGUF --------------------------------------------------------------------------------------

GG = read(os.path.join(BASE, "model.gguf"))
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Gguf:
    """Parses the base GGUF into kv (key, type, raw value bytes) and tensor infos; writes it back."""

    def __init__(self, b):
        self.version = struct.unpack_from("<I", b, 4)[0]
        nt, nkv = struct.unpack_from("<QQ", b, 8)
        p = 24
        self.kv = []
        for _ in range(nkv):
            k, p = self.string(b, p)
            t = struct.unpack_from("<I", b, p)[0]
            start = p + 4
            p = self.skip(b, start, t)
            self.kv.append([k, t, b[start:p]])
        self.tensors = []
        for _ in range(nt):
            name, p = self.string(b, p)
            nd = struct.unpack_from("<I", b, p)[0]
            dims = list(struct.unpack_from("<%dQ" % nd, b, p + 4))
            p += 4 + 8 * nd
            typ, off = struct.unpack_from("<IQ", b, p)
            p += 12
            self.tensors.append([name, dims, typ, off])
        self.data = b[(p + 31) // 32 * 32:]

    @staticmethod
    def string(b, p):
        n = struct.unpack_from("<Q", b, p)[0]
        return b[p + 8:p + 8 + n].decode(), p + 8 + n

    def skip(self, b, p, t):
        if t in SCALAR:
            return p + struct.calcsize(SCALAR[t])
        if t == 8:
            return p + 8 + struct.unpack_from("<Q", b, p)[0]
        at, n = struct.unpack_from("<IQ", b, p)
        p += 12
        for _ in range(n):
            p = self.skip(b, p, at)
        return p

    def get(self, key):
        for k, t, v in self.kv:
            if k == key:
                return t, v
        return None

    def set_u32(self, key, value):
        for e in self.kv:
            if e[0] == key:
                e[1], e[2] = 4, struct.pack("<I", value)

    def bytes(self, version=None, n_tensors=None, n_kv=None, raw_name=None):
        s = lambda x: struct.pack("<Q", len(x)) + x
        out = b"GGUF" + struct.pack("<I", self.version if version is None else version)
        out += struct.pack("<QQ", len(self.tensors) if n_tensors is None else n_tensors,
                           len(self.kv) if n_kv is None else n_kv)
        for k, t, v in self.kv:
            out += s(k.encode()) + struct.pack("<I", t) + v
        for name, dims, typ, off in self.tensors:
            out += s(raw_name if raw_name is not None and name == self.tensors[0][0] else name.encode())
            out += struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims) + struct.pack("<IQ", typ, off)
        out += b"\x00" * ((-len(out)) % 32)
        return out + self.data


def gg_case(name, data, code, inspect=None, validate=None):
    put(os.path.join(folder(name), "m.gguf"), data)
    case(name, "m.gguf", "m.gguf", code, inspect, validate)


def gg(mutate=None, **kw):
    g = Gguf(GG)
    if mutate:
        mutate(g)
    return g.bytes(**kw)


ARCH = Gguf(GG).get("general.architecture")[1][8:].decode()
gg_case("gguf_bad_magic", b"GGUX" + GG[4:], CORRUPT)
gg_case("gguf_magic_only", b"GGUF", CORRUPT)
gg_case("gguf_version_1", gg(version=1), UNSUPPORTED)
gg_case("gguf_version_99", gg(version=99), UNSUPPORTED)
gg_case("gguf_tensor_count_huge", gg(n_tensors=1 << 40), CORRUPT)
gg_case("gguf_kv_count_huge", gg(n_kv=1 << 40), CORRUPT)
gg_case("gguf_kv_count_short", gg(n_kv=3), CORRUPT)
gg_case("gguf_truncated_header", GG[:200], CORRUPT)
gg_case("gguf_truncated_data", GG[: len(GG) - 64], CORRUPT)


def kv_type(key, t, raw):
    def m(g):
        for e in g.kv:
            if e[0] == key:
                e[1], e[2] = t, raw
    return m


gg_case("gguf_kv_unknown_type", gg(kv_type("general.architecture", 77, b"\x00" * 8)), CORRUPT)
gg_case("gguf_kv_string_huge", gg(kv_type("general.architecture", 8, struct.pack("<Q", 1 << 50))), CORRUPT)
# A well-formed GGUF of an architecture we do not convert: inspect describes it, validate checks its structure.
gg_case("gguf_arch_unknown", gg(kv_type("general.architecture", 8, struct.pack("<Q", 7) + b"nothere")), UNSUPPORTED, 0, 0)
# inspect describes a GGUF whose structure is sound (exit 0) when its model cannot be read.
gg_case("gguf_block_count_huge", gg(lambda g: g.set_u32(ARCH + ".block_count", 10**9)), CORRUPT, 0)
gg_case("gguf_block_count_zero", gg(lambda g: g.set_u32(ARCH + ".block_count", 0)), NOTFOUND, 0)  # "missing or not positive"
gg_case("gguf_head_count_zero", gg(lambda g: g.set_u32(ARCH + ".attention.head_count", 0)), NOTFOUND, 0)
gg_case("gguf_rope_dim_odd", gg(lambda g: g.set_u32(ARCH + ".rope.dimension_count", 7)), MISMATCH, 0)
gg_case("gguf_rope_dim_too_big", gg(lambda g: g.set_u32(ARCH + ".rope.dimension_count", 4096)), MISMATCH, 0)
gg_case("gguf_tensor_type_unknown", gg(lambda g: g.tensors[0].__setitem__(2, 99)), UNSUPPORTED)  # a newer ggml type
gg_case("gguf_tensor_ndims_5", gg(lambda g: g.tensors[0].__setitem__(1, [1, 1, 1, 1, 1])), CORRUPT)
gg_case("gguf_tensor_dim_zero", gg(lambda g: g.tensors[0].__setitem__(1, [0] + g.tensors[0][1][1:])), CORRUPT, 0)
gg_case("gguf_tensor_offset_past_eof", gg(lambda g: g.tensors[-1].__setitem__(3, 1 << 30)), CORRUPT)
gg_case("gguf_tensor_offset_misaligned", gg(lambda g: g.tensors[-1].__setitem__(3, g.tensors[-1][3] + 1)), CORRUPT)
gg_case("gguf_tensors_same_offset", gg(lambda g: g.tensors[1].__setitem__(3, g.tensors[0][3])), CORRUPT, 0)
# (the tensor of that name is then missing: reported as such)
gg_case("gguf_tensor_name_bad_utf8", gg(raw_name=b"\xff\xfe.weight"), NOTFOUND, 0)
gg_case("gguf_duplicate_tensor", gg(lambda g: g.tensors[1].__setitem__(0, g.tensors[0][0])), CORRUPT)
gg_case("gguf_no_output_norm", gg(lambda g: [t.__setitem__(0, "unused.weight") for t in g.tensors if t[0] == "output_norm.weight"]), NOTFOUND, 0)

# ---- MLX ---------------------------------------------------------------------------------------

MLX = os.path.join(BASE, "mlx")
MCFG = json.loads(read(os.path.join(MLX, "config.json")))


def mlx_case(name, mutate_cfg, code, names="config.json", inspect=None, validate=None):
    d = copy_dir(MLX, name)
    c = json.loads(json.dumps(MCFG))
    mutate_cfg(c)
    put(os.path.join(d, "config.json"), json.dumps(c))
    case(name, None, names, code, inspect, validate)


mlx_case("mlx_bits_9", lambda c: c["quantization"].__setitem__("bits", 9), CORRUPT)
mlx_case("mlx_group_7", lambda c: c["quantization"].__setitem__("group_size", 7), CORRUPT)
mlx_case("mlx_bits_string", lambda c: c["quantization"].__setitem__("bits", "4"), CORRUPT)
mlx_case("mlx_mode_unknown", lambda c: c["quantization"].__setitem__("mode", "mxfp9"), UNSUPPORTED)
mlx_case("mlx_no_quantization", lambda c: [c.pop("quantization"), c.pop("quantization_config", None)], MISMATCH)
mlx_case("mlx_no_vocab", lambda c: c.pop("vocab_size"), CORRUPT, inspect=0)
mlx_case("mlx_hidden_string", lambda c: c.__setitem__("hidden_size", "sixteen"), CORRUPT, inspect=0)
mlx_case("mlx_bits_8_vs_4", lambda c: c["quantization"].__setitem__("bits", 8), MISMATCH, names="mlx_bits_8_vs_4")

# ---- Megatron ----------------------------------------------------------------------------------

MEG = os.path.join(BASE, "megatron")


def meg_case(name, mutate_dir, names, code, inspect=None, validate=None):
    d = copy_dir(MEG, name)
    mutate_dir(d)
    case(name, None, names, code, inspect, validate)


def meg_file(d):
    for root, _, files in os.walk(d):
        for f in files:
            if f.endswith(".pt"):
                return os.path.join(root, f)
    raise SystemExit("no .pt in the Megatron base")


meg_case("meg_tracker_garbage", write_text("latest_checkpointed_iteration.txt", "not-a-number"), "latest_checkpointed_iteration.txt", CORRUPT)
meg_case("meg_tracker_missing_iter", write_text("latest_checkpointed_iteration.txt", "12345"), "iter_0012345", NOTFOUND)
meg_case("meg_rank_truncated", lambda d: put(meg_file(d), read(meg_file(d))[:300]), "model_optim_rng.pt", CORRUPT)
meg_case("meg_rank_hostile", lambda d: put(meg_file(d), pkl_member(HOSTILE)), "model_optim_rng.pt", CORRUPT)
meg_case("meg_rank_missing", lambda d: os.remove(meg_file(d)), "model_optim_rng.pt", NOTFOUND)


def meg_rank_is_dir(d):
    f = meg_file(d)
    os.remove(f)
    os.mkdir(f)


meg_case("meg_rank_is_dir", meg_rank_is_dir, "model_optim_rng.pt", CORRUPT)

# ---- llama2.c ----------------------------------------------------------------------------------



def llama2c_v0(dim=16, hidden=32, layers=1, heads=2, kv=1, vocab=64, seq=8):
    """A legacy (v0) llama2.c checkpoint with a shared classifier, small deterministic values."""
    hs = dim // heads
    counts = [vocab * dim, layers * dim, layers * dim * dim, layers * kv * hs * dim, layers * kv * hs * dim,
              layers * dim * dim, layers * dim, layers * hidden * dim, layers * dim * hidden,
              layers * hidden * dim, dim, seq * hs // 2, seq * hs // 2]
    n = sum(counts)
    vals = [((i * 37) % 101 - 50) / 500.0 for i in range(n)]
    return struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) + struct.pack("<%df" % n, *vals)


L2 = llama2c_v0()


def l2_case(name, data, code, inspect=None):
    put(os.path.join(folder(name), "stories.bin"), data)
    # llama2.c has no magic number (named with --from) and no validator.
    case(name, "stories.bin", "stories.bin", code, inspect, SKIP, frm="llama2c")


def l2_header(dim=None, hidden=None, layers=None, heads=None, kv=None, vocab=None, seq=None, rest=None):
    h = list(struct.unpack_from("<7i", L2, 0))
    for i, v in enumerate((dim, hidden, layers, heads, kv, vocab, seq)):
        if v is not None:
            h[i] = v
    return struct.pack("<7i", *h) + (L2[28:] if rest is None else rest)


l2_case("l2c_truncated_header", L2[:20], CORRUPT)
l2_case("l2c_truncated_weights", L2[: len(L2) // 2], CORRUPT)
l2_case("l2c_layers_huge", l2_header(layers=1 << 30), CORRUPT)
l2_case("l2c_dim_negative", l2_header(dim=-16), CORRUPT)
l2_case("l2c_heads_zero", l2_header(heads=0), CORRUPT)
l2_case("l2c_kv_not_divisor", l2_header(kv=3), CORRUPT)
l2_case("l2c_vocab_zero", l2_header(vocab=0), CORRUPT)
l2_case("l2c_extra_bytes", L2 + b"\x00" * 12, CORRUPT)

# ---- config.json alone (--fake-weight) ----------------------------------------------------------


def fake_case(name, text, code):
    put(os.path.join(folder(name), "config.json"), text)
    case(name, "config.json", "config.json", code, inspect=None, validate=None, args=["--fake-weight"])
    manifest[-1]["inspect"] = manifest[-1]["validate"] = None


def fake_cfg(**kv):
    c = dict(CFG)
    c.update(kv)
    return json.dumps(c)


fake_case("fake_layers_huge", fake_cfg(num_hidden_layers=10**9), CORRUPT)
fake_case("fake_hidden_huge", fake_cfg(hidden_size=10**7), CORRUPT)
fake_case("fake_vocab_huge", fake_cfg(vocab_size=10**12), CORRUPT)
fake_case("fake_vocab_negative", fake_cfg(vocab_size=-1), CORRUPT)
fake_case("fake_heads_zero", fake_cfg(num_attention_heads=0), CORRUPT)
fake_case("fake_hidden_not_multiple", fake_cfg(hidden_size=17), CORRUPT)
fake_case("fake_intermediate_zero", fake_cfg(intermediate_size=0), CORRUPT)
fake_case("fake_head_dim_odd", fake_cfg(head_dim=7), CORRUPT)
fake_case("fake_layers_float", fake_cfg(num_hidden_layers=1.5), CORRUPT)
fake_case("fake_not_json", "{,}", CORRUPT)
fake_case("fake_deep", "{\"x\": " + "[" * 20000 + "]" * 20000 + "}", CORRUPT)

finish()
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
print(len(manifest), "cases")
