#!/usr/bin/env python3
"""A stand-in Hugging Face hub on 127.0.0.1 for the tests (standard library only).

It serves the parts of the hub API a downloader uses:
  GET  /api/models/{org}/{name}/revision/{rev}  -> {"id", "sha", "siblings": [{"rfilename"}]}
  HEAD|GET /{org}/{name}/resolve/{rev}/{path}   -> git files: 200, ETag = git blob sha1
                                                   LFS files: 302 to the "CDN" host (localhost
                                                   instead of 127.0.0.1) with X-Linked-Etag =
                                                   sha256 and X-Linked-Size
  GET  /cdn/{org}/{name}/{sha256}               -> the bytes (Range: bytes=N- honoured: 206)
Errors as the hub sends them: unknown repo 404 + X-Error-Code: RepoNotFound; a private repo
without the right bearer token 401 + X-Error-Code: RepoNotFound; unknown revision 404 +
RevisionNotFound; unknown file 404 + EntryNotFound.

Spec (JSON file): {"token": "...", "repos": [{"id": "org/name", "dir": "/path", "commit": "40 hex",
  "private": false, "refs": ["main", "v1"], "extra_siblings": {"name": "text"},
  "corrupt": ["file"],                      # bytes served differ from the advertised hash
  "fail": {"file": {"mode": "503" | "cut", "times": 1}},
  "ignore_range": false}]}                 # answer 200 with the whole file to a Range request
Every request is appended to the log file as one JSON line: method, path, host, authorization,
range, status.

usage: fake_hub.py SPEC PORT_FILE LOG_FILE
"""
import hashlib
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".h5", ".msgpack", ".onnx")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def git_sha1_hex(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path):
    return path.endswith(LFS_SUFFIXES)


def etag_of(path, data):
    return sha256_hex(data) if is_lfs(path) else git_sha1_hex(data)


def load_repo_files(repo):
    files = {}
    d = repo.get("dir")
    if d:
        for root, _, names in os.walk(d):
            for n in names:
                full = os.path.join(root, n)
                rel = os.path.relpath(full, d)
                with open(full, "rb") as f:
                    files[rel] = f.read()
    for name, text in repo.get("extra_siblings", {}).items():
        files[name] = text.encode()
    return files


class Hub:
    def __init__(self, spec):
        self.token = spec.get("token")
        self.repos = {}
        self.by_sha = {}
        self.fail_counts = {}
        self.lock = threading.Lock()
        for r in spec["repos"]:
            files = load_repo_files(r)
            r["_files"] = files
            self.repos[r["id"]] = r
            for path, data in files.items():
                served = data
                if path in r.get("corrupt", []):
                    served = bytes(b ^ 0x5A for b in data[:16]) + data[16:]
                self.by_sha[(r["id"], sha256_hex(data))] = (r, path, served)

    def should_fail(self, repo, path, kind):
        rule = repo.get("fail", {}).get(path)
        if not rule or rule.get("mode") != kind:
            return False
        with self.lock:
            key = (repo["id"], path)
            n = self.fail_counts.get(key, 0)
            if n < rule.get("times", 1):
                self.fail_counts[key] = n + 1
                return True
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub = None
    log_path = None
    log_lock = threading.Lock()

    def log_message(self, fmt, *args):  # quiet
        pass

    def record(self, status):
        entry = {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host", ""),
            "authorization": self.headers.get("Authorization"),
            "range": self.headers.get("Range"),
            "status": status,
        }
        with Handler.log_lock:
            with open(Handler.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def reply(self, status, headers=None, body=b"", send_body=True):
        self.record(status)
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def error(self, status, code, send_body=True):
        body = json.dumps({"error": code}).encode()
        self.reply(status, {"X-Error-Code": code, "Content-Type": "application/json"}, body, send_body)

    def authorized(self, repo):
        if not repo.get("private"):
            return True
        return self.headers.get("Authorization") == "Bearer " + (self.hub.token or "")

    def find_repo(self, org, name, send_body):
        repo = self.hub.repos.get(org + "/" + name)
        if repo is None:
            self.error(404, "RepoNotFound", send_body)
            return None
        if not self.authorized(repo):
            self.error(401, "RepoNotFound", send_body)
            return None
        return repo

    def revision_ok(self, repo, rev):
        return rev == repo["commit"] or rev in repo.get("refs", ["main"])

    def do_GET(self):
        self.handle_any(True)

    def do_HEAD(self):
        self.handle_any(False)

    def handle_any(self, send_body):
        path = urllib.parse.urlsplit(self.path).path
        parts = [urllib.parse.unquote(p) for p in path.split("/")[1:]]
        if len(parts) >= 6 and parts[0] == "api" and parts[1] == "models" and parts[4] == "revision":
            repo = self.find_repo(parts[2], parts[3], send_body)
            if repo is None:
                return
            rev = "/".join(parts[5:])
            if not self.revision_ok(repo, rev):
                return self.error(404, "RevisionNotFound", send_body)
            body = json.dumps({"id": repo["id"], "sha": repo["commit"],
                               "siblings": [{"rfilename": f} for f in sorted(repo["_files"])]}).encode()
            return self.reply(200, {"Content-Type": "application/json"}, body, send_body)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = self.find_repo(parts[0], parts[1], send_body)
            if repo is None:
                return
            rev, fpath = parts[3], "/".join(parts[4:])
            if not self.revision_ok(repo, rev):
                return self.error(404, "RevisionNotFound", send_body)
            data = repo["_files"].get(fpath)
            if data is None:
                return self.error(404, "EntryNotFound", send_body)
            if send_body and self.hub.should_fail(repo, fpath, "503"):
                return self.reply(503, {}, b"busy", send_body)
            common = {"X-Repo-Commit": repo["commit"]}
            if is_lfs(fpath):
                sha = sha256_hex(data)
                host = "localhost:%d" % self.server.server_address[1]
                common.update({"X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(len(data)),
                               "ETag": '"%s"' % git_sha1_hex(b"pointer " + sha.encode()),
                               "Location": "http://%s/cdn/%s/%s" % (host, repo["id"], sha)})
                return self.reply(302, common, b"", send_body)
            served = data
            if fpath in repo.get("corrupt", []):
                served = bytes(b ^ 0x5A for b in data[:16]) + data[16:]
            common.update({"ETag": '"%s"' % git_sha1_hex(data)})
            return self.reply(200, common, served, send_body)
        if len(parts) == 4 and parts[0] == "cdn":
            hit = self.hub.by_sha.get((parts[1] + "/" + parts[2], parts[3]))
            if hit is None:
                return self.reply(404, {}, b"no such object", send_body)
            repo, fpath, data = hit
            if send_body and self.hub.should_fail(repo, fpath, "503"):
                return self.reply(503, {}, b"busy", send_body)
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-") and not repo.get("ignore_range"):
                start = int(rng[6:-1])
                if start >= len(data):
                    return self.reply(416, {"Content-Range": "bytes */%d" % len(data)}, b"", send_body)
            body = data[start:]
            status = 206 if start else 200
            headers = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
            if start:
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
            if send_body and self.hub.should_fail(repo, fpath, "cut"):
                # Promise the whole body, send half, hang up: an interrupted download.
                self.record(status)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            return self.reply(status, headers, body, send_body)
        self.reply(404, {}, b"not found", send_body)


def main():
    spec_path, port_file, log_file = sys.argv[1:4]
    with open(spec_path) as f:
        spec = json.load(f)
    Handler.hub = Hub(spec)
    Handler.log_path = log_file
    open(log_file, "w").close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
