#!/usr/bin/env python3
"""The hub cache as huggingface_hub writes it, built independently of modelconvert.

huggingface_hub (file_download.py) stores each file once under blobs/<etag> (sha256 for LFS
files, git blob sha1 otherwise), links snapshots/<commit>/<path> to it with a symlink whose
text is os.path.relpath(blob, dirname(link)), and writes refs/<revision> = commit without a
newline when the revision is not itself a commit sha.

  hf_cache_oracle.py check CACHE REPO_ID REV COMMIT SRC_DIR FILE...
      compares <CACHE>/models--org--name byte for byte with that layout for FILE... (taken from
      SRC_DIR): the same entries and nothing else, the same symlink texts, the same blob and ref
      bytes. Prints {"ok": bool, "diffs": [...]}; exit 0 iff ok.
  hf_cache_oracle.py populate CACHE REPO_ID REV COMMIT SRC_DIR FILE...
      writes that layout (what a Python tool would have left in the cache).
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_hub import etag_of  # noqa: E402  the hub's own ETag rule (sha256 / git sha1)


def expected(repo_id, rev, commit, src, files):
    """{relative path: ("dir",) | ("file", bytes) | ("link", text)} under models--org--name."""
    out = {"blobs": ("dir",), "snapshots": ("dir",), "snapshots/" + commit: ("dir",)}
    for rel in files:
        with open(os.path.join(src, rel), "rb") as f:
            data = f.read()
        etag = etag_of(rel, data)
        blob = "blobs/" + etag
        out[blob] = ("file", data)
        link = "snapshots/%s/%s" % (commit, rel)
        parts = rel.split("/")
        for i in range(1, len(parts)):
            out["snapshots/%s/%s" % (commit, "/".join(parts[:i]))] = ("dir",)
        out[link] = ("link", os.path.relpath(blob, os.path.dirname(link)))
    if not re.fullmatch(r"[0-9a-f]{40}", rev):
        out["refs"] = ("dir",)
        out["refs/" + rev] = ("file", commit.encode())
    return out


def actual(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            full = os.path.join(dirpath, d)
            rel = os.path.relpath(full, root)
            out[rel] = ("link", os.readlink(full)) if os.path.islink(full) else ("dir",)
        for n in filenames:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                out[rel] = ("link", os.readlink(full))
            else:
                with open(full, "rb") as f:
                    out[rel] = ("file", f.read())
    return out


def main():
    mode, cache, repo_id, rev, commit, src = sys.argv[1:7]
    files = sys.argv[7:]
    root = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    want = expected(repo_id, rev, commit, src, files)
    if mode == "populate":
        for rel, v in sorted(want.items()):
            p = os.path.join(root, rel)
            if v[0] == "dir":
                os.makedirs(p, exist_ok=True)
            elif v[0] == "file":
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(v[1])
            else:
                os.makedirs(os.path.dirname(p), exist_ok=True)
                os.symlink(v[1], p)
        print(json.dumps({"ok": True}))
        return 0
    got = actual(root)
    diffs = []
    for rel in sorted(set(want) | set(got)):
        w, g = want.get(rel), got.get(rel)
        if w is None:
            diffs.append("unexpected entry " + rel)
        elif g is None:
            diffs.append("missing entry " + rel)
        elif w[0] != g[0]:
            diffs.append("%s: expected a %s, found a %s" % (rel, w[0], g[0]))
        elif w != g:
            diffs.append("%s: content differs (%r vs %r)" % (rel, w[1][:60], g[1][:60]))
    print(json.dumps({"ok": not diffs, "diffs": diffs}))
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())
