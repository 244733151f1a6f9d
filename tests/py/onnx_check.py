#!/usr/bin/python3
"""The ONNX project's own checker and loader (Debian python3-onnx) on a model we wrote.

    onnx_check.py MODEL.onnx [MODEL.onnx ...] [--dump-initializer NAME]

Runs onnx.checker.check_model on the path (full check, external data resolved from the file's
directory), loads the model with its external data, and prints JSON: ir_version, opsets,
inputs/outputs with their dims (numbers or symbolic names), node count, op types, initializer
names with their data types and dims; with --dump-initializer, the float values of that one.
One JSON line per model, in the order given.
"""
import argparse
import json
import os

import numpy
import onnx
import onnx.checker
import onnx.external_data_helper
import onnx.numpy_helper


def dims(vi):
    out = []
    for d in vi.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else d.dim_param)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--dump-initializer")
    a = ap.parse_args()
    for path in a.models:
        check(path, a.dump_initializer)


def check(path, dump):
    onnx.checker.check_model(path, full_check=True)
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    res = {
        "ir_version": m.ir_version,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "inputs": {i.name: {"elem_type": i.type.tensor_type.elem_type, "dims": dims(i)} for i in g.input},
        "outputs": {o.name: {"elem_type": o.type.tensor_type.elem_type, "dims": dims(o)} for o in g.output},
        "nodes": len(g.node),
        "op_types": sorted({n.op_type for n in g.node}),
        "initializers": {t.name: {"data_type": t.data_type, "dims": list(t.dims),
                                  "external": t.data_location == onnx.TensorProto.EXTERNAL}
                         for t in g.initializer},
    }
    if dump:
        onnx.external_data_helper.load_external_data_for_model(m, os.path.dirname(os.path.abspath(path)))
        t = next(t for t in g.initializer if t.name == dump)
        res["values"] = [float(v) for v in onnx.numpy_helper.to_array(t).astype(numpy.float32).ravel()]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
