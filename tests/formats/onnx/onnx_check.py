"""python3-onnx's view of an .onnx file ckpt wrote.

  onnx_check.py check MODEL           onnx.checker.check_model(MODEL, full_check=True), then prints
                                      JSON: ir_version, opsets, node op types, input and output
                                      shapes, initializers {name: [data type, dims]}, metadata
  onnx_check.py compare MODEL DIR     loads MODEL with its external data and checks every
                                      initializer against DIR/<hex of its name>.bin (its bytes)
                                      and DIR/<hex of its name>.txt (ONNX data type and dims)
  onnx_check.py strip MODEL OUT       saves MODEL's graph as another tool that keeps only the
                                      model would: a new ModelProto (producer "onnx_check.py",
                                      MODEL's IR version and opsets) with the state dict's
                                      initializers, without ckpt's training state (initializers
                                      "ckpt/...") and "ckpt.*" metadata; checks OUT with full_check

Exits 1 with the reason on any difference.
"""
import json
import os
import sys

import onnx
from onnx import helper, numpy_helper


def shape_of(value_info):
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]


def check(path):
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path, load_external_data=False)
    out = {
        "ir_version": model.ir_version,
        "opsets": {o.domain: o.version for o in model.opset_import},
        "producer": [model.producer_name, model.producer_version],
        "nodes": [n.op_type for n in model.graph.node],
        "inputs": {i.name: shape_of(i) for i in model.graph.input},
        "outputs": {o.name: shape_of(o) for o in model.graph.output},
        "initializers": {t.name: [t.data_type, list(t.dims)] for t in model.graph.initializer},
        "metadata": {p.key: p.value for p in model.metadata_props},
    }
    print(json.dumps(out))


def compare(path, folder):
    model = onnx.load(path)  # with external data
    seen = 0
    for t in model.graph.initializer:
        key = t.name.encode("utf-8").hex()
        want_bytes = open(os.path.join(folder, key + ".bin"), "rb").read()
        want_type, *want_dims = [int(x) for x in open(os.path.join(folder, key + ".txt")).read().split()]
        if t.data_type != want_type or list(t.dims) != want_dims:
            sys.exit("%s: type %d dims %s, expected %d %s" % (t.name, t.data_type, list(t.dims), want_type, want_dims))
        if t.raw_data != want_bytes:
            sys.exit("%s: raw_data differs (%d bytes, expected %d)" % (t.name, len(t.raw_data), len(want_bytes)))
        if t.data_type not in (onnx.TensorProto.BFLOAT16,):
            array = numpy_helper.to_array(t)  # numpy's reading of the same bytes
            if list(array.shape) != want_dims or (array.size and array.tobytes() != want_bytes):
                sys.exit("%s: numpy_helper.to_array gives %s %s" % (t.name, array.dtype, array.shape))
        seen += 1
    expected = len([f for f in os.listdir(folder) if f.endswith(".bin")])
    if seen != expected:
        sys.exit("the model holds %d initializers, expected %d" % (seen, expected))
    print("ok %d initializers" % seen)


def strip(path, out):
    model = onnx.load(path)
    graph = model.graph
    keep = [t for t in graph.initializer if not t.name.startswith("ckpt/")]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    stripped = helper.make_model(graph, producer_name="onnx_check.py", opset_imports=model.opset_import,
                                 ir_version=model.ir_version)
    props = {p.key: p.value for p in model.metadata_props if not p.key.startswith("ckpt.")}
    helper.set_model_props(stripped, props)
    onnx.save(stripped, out)
    onnx.checker.check_model(out, full_check=True)
    print("ok %d initializers, %d metadata entries" % (len(keep), len(props)))

if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2])
    elif sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "strip":
        strip(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
