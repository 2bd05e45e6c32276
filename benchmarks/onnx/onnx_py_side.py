"""The python3-onnx half of bench_onnx: one save and one load of the initializers in REF.

  onnx_py_side.py REF.onnx OUT.onnx

Loads REF's initializers as numpy arrays first (not timed). Then, timed: builds a ModelProto
holding them as initializers (numpy_helper.from_array, as exporters do) and onnx.save_model's
it to OUT, then fsyncs OUT; and onnx.load's OUT and turns every initializer back into a numpy
array (numpy_helper.to_array). Prints the two times in seconds: save load.
"""
import os
import sys
import time

import onnx
from onnx import helper, numpy_helper


def main(ref, out):
    arrays = [(t.name, numpy_helper.to_array(t)) for t in onnx.load(ref).graph.initializer]
    t0 = time.perf_counter()
    graph = helper.make_graph([], "state", [], [], initializer=[numpy_helper.from_array(a, n) for n, a in arrays])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save_model(model, out)
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    t1 = time.perf_counter()
    del model, graph
    t2 = time.perf_counter()
    back = [numpy_helper.to_array(t) for t in onnx.load(out).graph.initializer]
    t3 = time.perf_counter()
    assert len(back) == len(arrays)
    print("%.6f %.6f" % (t1 - t0, t3 - t2))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
