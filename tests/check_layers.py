#!/usr/bin/env python3
"""Fails when a source file includes a header from an area it does not depend on.

cmake/areas.cmake lists the areas bottom-up with their DEPS. A static library that uses a symbol
from an area linked after it only links by luck of the command-line order (it broke once under
the sanitizer build), so the include graph must follow the declared dependency graph. Every
header belongs to the area of its folder, header-only ones included: an include is a dependency
whether or not a .cpp sits beside the header. Every folder under src/ (but the program's
src/cli) must belong to an area.

usage: check_layers.py REPO_ROOT          check the tree
       check_layers.py --self-test ROOT   plant an illegal include in a copy and expect a failure
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

if len(sys.argv) > 2 and sys.argv[1] == "--self-test":
    # A copy of the tree where a bottom area (core) includes a header-only file of a format
    # engine: the check must fail and name it; the untouched copy must pass.
    src_root = pathlib.Path(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        shutil.copytree(src_root / "src", t / "src")
        shutil.copytree(src_root / "cmake", t / "cmake")
        clean = subprocess.run([sys.executable, __file__, str(t)], capture_output=True, text=True)
        if clean.returncode != 0:
            sys.exit("self-test: the clean copy fails:\n" + clean.stdout)
        planted = t / "src" / "core" / "planted_violation.cpp"
        planted.write_text('#include "formats/gguf/mapping.h"\n')
        bad = subprocess.run([sys.executable, __file__, str(t)], capture_output=True, text=True)
        if bad.returncode == 0 or "planted_violation.cpp" not in bad.stdout:
            sys.exit("self-test: a planted include of a header-only file passed the check:\n" + bad.stdout)
        planted.unlink()
        (t / "src" / "orphan").mkdir()
        (t / "src" / "orphan" / "x.h").write_text("#pragma once\n")
        orphan = subprocess.run([sys.executable, __file__, str(t)], capture_output=True, text=True)
        if orphan.returncode == 0 or "src/orphan" not in orphan.stdout:
            sys.exit("self-test: a folder outside every area passed the check:\n" + orphan.stdout)
    print("self-test: planted violations are caught")
    sys.exit(0)

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
text = (root / "cmake" / "areas.cmake").read_text()
areas = {}  # name -> (dirs, deps)
for m in re.finditer(r"mc_area\((\w+)\s+DIRS\s+([^)]*?)\s+DEPS\s+([^)]*)\)", text):
    areas[m.group(1)] = (m.group(2).split(), [d[3:] for d in m.group(3).split() if d.startswith("mc_")])

dir_to_area = {}
for name, (dirs, _) in areas.items():
    for d in dirs:
        dir_to_area[d] = name


def area_of(rel):  # rel: path relative to root, e.g. src/formats/hf/hf.cpp
    parent = str(pathlib.PurePosixPath(rel).parent)
    return dir_to_area.get(parent)


closure = {}


def deps_of(name, seen=()):
    if name in closure:
        return closure[name]
    out = {name}
    for d in areas.get(name, ((), []))[1]:
        if d in areas and d not in seen:
            out |= deps_of(d, seen + (name,))
    closure[name] = out
    return out


bad = []
for f in sorted((root / "src").rglob("*")):
    if f.suffix not in (".cpp", ".h") or f.name.endswith("_test.cpp"):
        continue
    rel = f.relative_to(root).as_posix()
    me = area_of(rel)
    if me is None:
        if not rel.startswith("src/cli/"):
            bad.append(f"{rel}: its folder belongs to no area in cmake/areas.cmake")
        continue  # the program (src/cli) links everything
    for n, line in enumerate(f.read_text().splitlines(), 1):
        m = re.match(r'\s*#include\s+"([^"]+)"', line)
        if not m:
            continue
        target = area_of("src/" + m.group(1))
        if target is None or target in deps_of(me):
            continue
        bad.append(f"{rel}:{n}: area '{me}' includes {m.group(1)} from area '{target}', "
                   f"which is not among its DEPS in cmake/areas.cmake")

if not areas:
    sys.exit("no mc_area() lines found in cmake/areas.cmake")
for b in bad:
    print(b)
print(f"{len(areas)} areas checked, {len(bad)} layering violations")
sys.exit(1 if bad else 0)
