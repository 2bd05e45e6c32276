"""Writes ONNX models whose nodes hold tensors in attributes, for test_onnx_attribute_tensors.cpp.

  attribute_tensors.py DIR    writes into DIR:
    torch_consts.onnx  torch.onnx.export of a module that adds and multiplies torch.tensor
                       constants (float Constant nodes of rank 1 and 2) after a Linear layer
    typed.onnx         an onnx.helper graph whose Constant values keep their elements in the typed
                       fields (float_data, int64_data, int32_data for float16) and a
                       ConstantOfShape whose value is one float
    external.onnx      an onnx.helper graph whose Constant value is in external data,
                       const.bin (bytes 100..147 of it: 12 floats); ONNX Runtime reads it
    attack_<case>.onnx the same Constant with location "../outside.bin", "/etc/hostname" and
                       "link_out.bin" (a symlink to ../outside.bin); attack_huge.onnx: a Constant
                       whose dims claim 2**40 floats with 4 bytes of raw_data
    if.onnx            an If node (GRAPH attributes), sparse.onnx a Constant of a SPARSE_TENSOR
    reshape.onnx       torch.onnx.export of Conv, ReLU, reshape(-1, 32), Linear: the Reshape's shape
                       is an INT64 Constant, which the layout reads to rebuild model/spec
    if_external.onnx   a Constant in external data beside an If whose then_branch holds another
                       (a graph not kept: ONNX Runtime reads both from const.bin)
    int4_external.onnx an INT4 initializer (a type ckpt has no dtype for) in external data, w4.bin,
                       dequantized and added to x: ONNX Runtime reads w4.bin, ckpt does not
    fn_default.onnx    a local function whose default attribute value (FunctionProto.attribute_proto,
                       which python3-onnx's proto lacks: appended as field 11 by hand) is a tensor
                       in external data, fn.bin, taken by a Constant of its body (ref_attr_name)
    dup_location.onnx  a Constant whose external_data gives "location" twice
    f16_high.onnx      a FLOAT16 Constant whose int32_data holds a value above 0xFFFF
  and for the runnable models NAME.f32, a little-endian float32 input, and NAME.shape, its dims.
  DIR/../outside.bin is made for the attacks (it must never be read).
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper


class Reshaped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).reshape(-1, 32))


class Constants(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        y = self.fc(x) + torch.tensor([0.5, -1.25, 2.0])
        return torch.relu(y) * torch.tensor([[1.5, 2.5, -3.5]])


def input_for(out, name, shape, seed):
    np.random.RandomState(seed).randn(*shape).astype("<f4").tofile(os.path.join(out, name + ".f32"))
    with open(os.path.join(out, name + ".shape"), "w") as f:
        f.write(" ".join(str(d) for d in shape))


def model_of(nodes, x_shape, y_shape, opset=13, inits=()):
    g = helper.make_graph(nodes, "attribute_tensors", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def external_constant(location, offset, length, dims):
    t = TensorProto()
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def with_external(out, name, location, offset=100, length=48, dims=(12,)):
    m = model_of([helper.make_node("Constant", [], ["c"], name="c", value=external_constant(location, offset, length, list(dims))),
                  helper.make_node("Add", ["x", "c"], ["y"], name="add")], ["n", 12], ["n", 12])
    with open(os.path.join(out, name), "wb") as f:
        f.write(m.SerializeToString())


def main(out):
    torch.manual_seed(0)
    torch.onnx.export(Constants().eval(), torch.randn(2, 4), os.path.join(out, "torch_consts.onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    input_for(out, "torch_consts", [5, 4], 1)
    kinds = sorted({a.t.data_type for n in onnx.load(os.path.join(out, "torch_consts.onnx")).graph.node
                    for a in n.attribute if a.type == onnx.AttributeProto.TENSOR})
    assert kinds == [TensorProto.FLOAT], kinds  # float Constant nodes, which ckpt used to lose

    torch.onnx.export(Reshaped().eval(), torch.randn(1, 1, 6, 6), os.path.join(out, "reshape.onnx"), input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    input_for(out, "reshape", [3, 1, 6, 6], 6)

    # Typed fields, not raw_data: helper.make_tensor without raw=True writes float_data etc.
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [3], [2.0, -0.5, 4.0])
    half = helper.make_tensor("", TensorProto.FLOAT16, [3], [1.5, 0.25, -2.0])
    shape = helper.make_tensor("", TensorProto.INT64, [2], [2, 3])
    m = model_of([
        helper.make_node("Constant", [], ["scale"], value=scale),
        helper.make_node("Constant", [], ["half"], value=half),
        helper.make_node("Cast", ["half"], ["half32"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["shape"], value=shape),
        helper.make_node("ConstantOfShape", ["shape"], ["ones"], value=helper.make_tensor("", TensorProto.FLOAT, [1], [0.75])),
        helper.make_node("Mul", ["x", "scale"], ["a"]),
        helper.make_node("Add", ["a", "half32"], ["b"]),
        helper.make_node("Add", ["b", "ones"], ["y"]),
    ], [2, 3], [2, 3])
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(out, "typed.onnx"))
    input_for(out, "typed", [2, 3], 2)

    data = bytearray(os.urandom(100)) + np.arange(12, dtype="<f4").tobytes() * 1 + bytearray(16)
    with open(os.path.join(out, "const.bin"), "wb") as f:
        f.write(bytes(data))
    with_external(out, "external.onnx", "const.bin")
    onnx.checker.check_model(os.path.join(out, "external.onnx"), full_check=True)
    input_for(out, "external", [2, 12], 3)

    with open(os.path.join(out, "..", "outside.bin"), "wb") as f:
        f.write(bytes(200))
    os.symlink(os.path.join("..", "outside.bin"), os.path.join(out, "link_out.bin"))
    with_external(out, "attack_dotdot.onnx", "../outside.bin")
    with_external(out, "attack_absolute.onnx", "/etc/hostname", offset=0, length=4, dims=(1,))
    with_external(out, "attack_symlink.onnx", "link_out.bin")
    with_external(out, "attack_past_end.onnx", "const.bin", offset=140, length=48)
    huge = TensorProto()
    huge.data_type = TensorProto.FLOAT
    huge.dims.append(2 ** 40)
    huge.raw_data = bytes(4)
    m = model_of([helper.make_node("Constant", [], ["c"], name="c", value=huge),
                  helper.make_node("Add", ["x", "c"], ["y"], name="add")], ["n", 1], ["n", 1])
    with open(os.path.join(out, "attack_huge.onnx"), "wb") as f:
        f.write(m.SerializeToString())

    then_graph = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                                   [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["n", 3])])
    else_graph = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                                   [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["n", 3])])
    cond = numpy_helper.from_array(np.array(True), "cond")
    m = model_of([helper.make_node("If", ["cond"], ["y"], name="if0", then_branch=then_graph, else_branch=else_graph)],
                 ["n", 3], ["n", 3], inits=[cond])
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(out, "if.onnx"))

    then_graph = helper.make_graph([helper.make_node("Constant", [], ["t"], value=external_constant("const.bin", 100, 48, [12]))],
                                   "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [12])])
    else_graph = helper.make_graph([helper.make_node("Identity", ["c"], ["e"])], "else", [],
                                   [helper.make_tensor_value_info("e", TensorProto.FLOAT, [12])])
    m = model_of([helper.make_node("Constant", [], ["c"], name="c", value=external_constant("const.bin", 100, 48, [12])),
                  helper.make_node("If", ["cond"], ["z"], name="if0", then_branch=then_graph, else_branch=else_graph),
                  helper.make_node("Add", ["x", "z"], ["y"], name="add")], ["n", 12], ["n", 12], inits=[cond])
    with open(os.path.join(out, "if_external.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    onnx.checker.check_model(os.path.join(out, "if_external.onnx"), full_check=True)

    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([5.0], np.float32), "values"),
                                       numpy_helper.from_array(np.array([1], np.int64), "indices"), [3])
    m = model_of([helper.make_node("Constant", [], ["c"], name="sparse_c", sparse_value=sparse),
                  helper.make_node("Add", ["x", "c"], ["y"])], ["n", 3], ["n", 3])
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(out, "sparse.onnx"))


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def length_field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def foreign(out):
    # INT4 (22), which python3-onnx does not know: a UINT8 initializer whose data_type is
    # patched in the serialized model. 1, 2, 3, 4 as nibbles, low first.
    with open(os.path.join(out, "w4.bin"), "wb") as f:
        f.write(bytes([0x21, 0x43]))
    w = external_constant("w4.bin", 0, 2, [4])
    w.name = "W"
    w.data_type = TensorProto.UINT8
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [1.0])
    g = helper.make_graph([helper.make_node("DequantizeLinear", ["W", "s"], ["dq"]), helper.make_node("Add", ["x", "dq"], ["y"])],
                          "int4", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w, scale])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    b, wb = m.SerializeToString(), w.SerializeToString()
    patched = wb.replace(bytes([0x10, TensorProto.UINT8]), bytes([0x10, 22]), 1)
    assert b.count(wb) == 1 and patched != wb
    with open(os.path.join(out, "int4_external.onnx"), "wb") as f:
        f.write(b.replace(wb, patched))
    input_for(out, "int4_external", [4], 7)

    np.array([1, 2, 3, 4], "<f4").tofile(os.path.join(out, "fn.bin"))
    use = onnx.AttributeProto()
    use.name, use.ref_attr_name, use.type = "value", "v", onnx.AttributeProto.TENSOR
    c = helper.make_node("Constant", [], ["fc"])
    c.attribute.extend([use])
    f = helper.make_function("local", "AddD", ["a"], ["b"], [c, helper.make_node("Add", ["a", "fc"], ["b"])],
                             [helper.make_opsetid("", 17)])
    default = helper.make_attribute("v", external_constant("fn.bin", 0, 16, [4])).SerializeToString()
    g = helper.make_graph([helper.make_node("AddD", ["x"], ["y"], domain="local")], "fn",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    m.ir_version = 9
    with open(os.path.join(out, "fn_default.onnx"), "wb") as f_out:
        # ModelProto.functions is field 25; FunctionProto.attribute_proto field 11.
        f_out.write(m.SerializeToString() + length_field(25, f.SerializeToString() + length_field(11, default)))
    input_for(out, "fn_default", [1, 4], 8)

    dup = external_constant("const.bin", 100, 16, [4])
    e = dup.external_data.add()
    e.key, e.value = "location", "other.bin"
    with open(os.path.join(out, "other.bin"), "wb") as f_out:
        f_out.write(bytes(16))
    m = model_of([helper.make_node("Constant", [], ["c"], name="c", value=dup), helper.make_node("Add", ["x", "c"], ["y"])],
                 [1, 4], [1, 4])
    with open(os.path.join(out, "dup_location.onnx"), "wb") as f_out:
        f_out.write(m.SerializeToString())
    input_for(out, "dup_location", [1, 4], 9)

    half = TensorProto()
    half.data_type = TensorProto.FLOAT16
    half.dims.append(4)
    half.int32_data.extend([0x3C00 | 0x10000, 0x4000, 0x4200, 0x4400])  # 1, 2, 3, 4 and a stray bit
    m = model_of([helper.make_node("Constant", [], ["h"], name="c", value=half),
                  helper.make_node("Cast", ["h"], ["h32"], to=TensorProto.FLOAT),
                  helper.make_node("Add", ["x", "h32"], ["y"])], [1, 4], [1, 4])
    with open(os.path.join(out, "f16_high.onnx"), "wb") as f_out:
        f_out.write(m.SerializeToString())
    input_for(out, "f16_high", [1, 4], 10)


if __name__ == "__main__":
    main(sys.argv[1])
    foreign(sys.argv[1])
