#!/usr/bin/env python3
"""Fails when a source file includes a header from an area it does not depend on.

cmake/areas.cmake lists the areas bottom-up with their DEPS. A static library that uses a symbol
from an area linked after it only links by luck of the command-line order (it broke once under
the sanitizer build), so the include graph must follow the declared dependency graph.
usage: check_layers.py REPO_ROOT
"""
import pathlib
import re
import sys

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
        continue  # the program (src/cli) links everything
    for n, line in enumerate(f.read_text().splitlines(), 1):
        m = re.match(r'\s*#include\s+"([^"]+)"', line)
        if not m:
            continue
        target = area_of("src/" + m.group(1))
        if target is None or target in deps_of(me):
            continue
        # A header with no .cpp beside it (an interface such as formats/engine.h) adds no link
        # dependency; only headers whose definitions live in the other area's library count.
        if not (root / "src" / m.group(1)).with_suffix(".cpp").exists():
            continue
        bad.append(f"{rel}:{n}: area '{me}' includes {m.group(1)} from area '{target}', "
                   f"which is not among its DEPS in cmake/areas.cmake")

if not areas:
    sys.exit("no mc_area() lines found in cmake/areas.cmake")
for b in bad:
    print(b)
print(f"{len(areas)} areas checked, {len(bad)} layering violations")
sys.exit(1 if bad else 0)
