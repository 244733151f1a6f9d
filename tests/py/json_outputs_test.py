"""Every command with --json prints exactly one JSON document on stdout (and nothing else), on
success and on failure; the error document carries the exit code the process exits with.

usage: json_outputs_test.py MODELCONVERT_BINARY
"""
import json
import os
import subprocess
import sys
import tempfile

mc = sys.argv[1]
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
tmp = tempfile.mkdtemp()
env = dict(os.environ, HOME=tmp, XDG_STATE_HOME=os.path.join(tmp, "state"), XDG_CONFIG_HOME=os.path.join(tmp, "config"))
tiny = os.path.join(tmp, "tiny")
failures = []


def run(args, ok=True, stdin=None):
    p = subprocess.run([mc, *args], capture_output=True, text=True, env=env, input=stdin)
    try:
        doc = json.loads(p.stdout)  # raises on zero or several documents
    except ValueError as e:
        failures.append(f"{' '.join(args)}: stdout is not one JSON document ({e}): {p.stdout[:300]!r}")
        return None
    if ok and p.returncode != 0:
        failures.append(f"{' '.join(args)}: exit {p.returncode}: {p.stderr[:300]}")
    if not ok:
        err = doc.get("error") if isinstance(doc, dict) else None
        if p.returncode == 0 or not err or err.get("exit_code") != p.returncode:
            failures.append(f"{' '.join(args)}: exit {p.returncode}, document {doc}")
    return doc


run(["convert", os.path.join(repo, "examples/tiny-llama/config.json"), "safetensors", "--fake-weight",
     "--fake-weight-init", "random", "-o", tiny, "--json"])
gg = os.path.join(tmp, "t.gguf")
run(["convert", tiny, "gguf", "-o", gg, "--json"])
run(["convert", tiny, "gguf", "-o", os.path.join(tmp, "dry.gguf"), "--dry-run", "--json"])
run(["convert", tiny, "gguf", "--quant", "q8_0", "-o", os.path.join(tmp, "q8.gguf"), "--check", "--json"])
run(["convert", tiny, "gguf", "-o", gg, "--json"], ok=False)  # exists
run(["convert", os.path.join(tmp, "missing"), "gguf", "--json"], ok=False)
run(["convert", tiny, "--json"], ok=False)  # no format
run(["convert", "--json", tiny, "gguf", "--no-such-flag"], ok=False)
run(["convert", tiny, "gguf", "--no-such-flag", "--json"], ok=False)
run(["inspect", tiny, "--json"])
run(["inspect", gg, "--json"])
run(["inspect", os.path.join(tmp, "missing"), "--json"], ok=False)
# A GGUF whose general.name is no UTF-8 (GGUF does not require it): still one document.
with open(gg, "rb") as f:
    data = bytearray(f.read())
at = data.index(b"general.name") + len("general.name") + 4 + 8  # value type u32, length u64
data[at] = 0xFF
bad = os.path.join(tmp, "bad.gguf")
with open(bad, "wb") as f:
    f.write(data)
doc = run(["inspect", bad, "--json"])
if doc is not None and doc.get("format") != "gguf":
    failures.append(f"inspect of bad.gguf: {doc}")
run(["validate", bad, "--json"])
run(["validate", gg, "--json"])
run(["check", gg, "--ids", "1,2,3", "--max-new-tokens", "2", "--json"])
run(["check", gg, "--ids", "1,x", "--json"], ok=False)
tok = os.path.join(repo, "..", "shared", "fixtures", "tokenizers", "gpt2", "tokenizer.json")
if os.path.exists(tok):
    run(["tokenize", tok, "--text", "Hello world", "--json"])
else:
    print("skipped tokenize: ../shared/fixtures is absent")
run(["tokenize", tiny, "--text", "x", "--json"], ok=False)  # no tokenizer
for what in ("formats", "quantizations", "architectures"):
    run(["list", what, "--json"])
run(["version", "--json"])
jobs = os.path.join(tmp, "jobs.yaml")
with open(jobs, "w") as f:
    f.write(f"tasks:\n  - model_path: {tiny}\n    output_format: safetensors\n    output_path: {tmp}/b1\n")
run(["batch", jobs, "--json"])
run(["history", "--json"])
run(["config", "set", "threads", "1", "--json"])
run(["config", "get", "threads", "--json"])
run(["config", "show", "--json"])
run(["config", "list-presets", "--json"])
run(["config", "unset", "threads", "--json"])
run(["config", "get", "no_such_key", "--json"], ok=False)

for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print("json outputs: OK")
