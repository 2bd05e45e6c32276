"""Writes ONNX models whose graphs model/spec cannot express, for test_onnx_kept_graph.cpp.

  kept_graphs.py DIR    writes into DIR:
    residual.onnx   torch.onnx.export of a small residual block (Conv, BatchNorm folded, Add)
    resnet18.onnx   torch.onnx.export of torchvision's resnet18(weights=None) at 64x64
    helper.onnx     an onnx.helper graph: BatchNormalization, Concat, Add at opset 15
    constant.onnx   an onnx.helper graph with a Constant node holding a named float TENSOR
    loop.onnx       an onnx.helper graph with a Loop node, whose body is a GRAPH attribute (a
                    type the listing does not hold, so the graph cannot be kept)
  and for each model NAME.f32, a little-endian float32 input, and NAME.shape, its dims.
"""
import os
import sys

import numpy as np
import onnx
import torch
import torchvision
from onnx import TensorProto, helper, numpy_helper


class Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.skip = torch.nn.Conv2d(3, 8, 1)
        self.fc = torch.nn.Linear(8 * 8 * 8, 5)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.conv2(y) + self.skip(x))
        return self.fc(torch.flatten(y, 1))


def input_for(out, name, shape, seed):
    np.random.RandomState(seed).randn(*shape).astype("<f4").tofile(os.path.join(out, name + ".f32"))
    with open(os.path.join(out, name + ".shape"), "w") as f:
        f.write(" ".join(str(d) for d in shape))


def helper_model(nodes, inits, x_shape, y_shape, opset):
    g = helper.make_graph(nodes, "helper_graph", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def main(out):
    torch.manual_seed(0)
    residual = Residual().eval()
    with torch.no_grad():  # BatchNorm statistics other than the defaults, so that it matters
        residual.bn1.running_mean.uniform_(-0.5, 0.5)
        residual.bn1.running_var.uniform_(0.5, 1.5)
    torch.onnx.export(residual, torch.randn(1, 3, 8, 8), os.path.join(out, "residual.onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    input_for(out, "residual", [2, 3, 8, 8], 1)

    resnet = torchvision.models.resnet18(weights=None).eval()
    torch.onnx.export(resnet, torch.randn(1, 3, 64, 64), os.path.join(out, "resnet18.onnx"), input_names=["input"],
                      output_names=["output"])
    input_for(out, "resnet18", [1, 3, 64, 64], 2)

    rs = np.random.RandomState(3)
    inits = [numpy_helper.from_array(rs.randn(4).astype(np.float32), n) for n in ("scale", "bias", "mean")]
    inits.append(numpy_helper.from_array((np.abs(rs.randn(4)) + 0.5).astype(np.float32), "var"))
    onnx.save(helper_model([
        helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Concat", ["bn", "x"], ["cat"], axis=1),
        helper.make_node("Add", ["cat", "cat"], ["y"]),
    ], inits, ["n", 4, 3, 3], ["n", 8, 3, 3], 15), os.path.join(out, "helper.onnx"))
    input_for(out, "helper", [2, 4, 3, 3], 4)

    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    onnx.save(helper_model([
        helper.make_node("Constant", [], ["c"], value=two),
        helper.make_node("Mul", ["x", "c"], ["y"]),
    ], [], ["n", 3], ["n", 3], 13), os.path.join(out, "constant.onnx"))
    input_for(out, "constant", [2, 3], 5)

    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "v_in"], ["v_out"])],
                             "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                      helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                                      helper.make_tensor_value_info("v_in", TensorProto.FLOAT, ["n", 3])],
                             [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["n", 3])])
    trips = numpy_helper.from_array(np.array(2, np.int64), "trips")
    onnx.save(helper_model([helper.make_node("Loop", ["trips", "", "x"], ["y"], name="twice", body=body)], [trips],
                           ["n", 3], ["n", 3], 13), os.path.join(out, "loop.onnx"))


if __name__ == "__main__":
    main(sys.argv[1])
