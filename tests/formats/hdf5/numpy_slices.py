"""The boxes a test asks for, cut from each dataset by numpy, as the plugin must return them.

  numpy_slices.py FILE.h5 BOXES.json OUT_FOLDER

BOXES.json is [{"dataset", "start", "count"}]. For box i, OUT_FOLDER/i.bin gets the C-order,
little-endian bytes of numpy's a[start:start+count, ...] of the whole dataset a as h5py reads
it, in the dtype the plugin reads it as (its own dtype, except a
uint16 marked dtype="bfloat16"), and OUT_FOLDER/slices.json the dtype and shape of each.
"""
import json
import os
import sys

import h5py
import numpy as np

from h5py_write_fixtures import expected_dtype


def main(path, boxes_path, out):
    with open(boxes_path) as f:
        boxes = json.load(f)
    listed = []
    with h5py.File(path, "r") as f:
        for i, box in enumerate(boxes):
            d = f[box["dataset"]]
            whole = d[()]
            cut = whole[tuple(slice(s, s + c) for s, c in zip(box["start"], box["count"]))]
            if d.attrs.get("dtype") == "bfloat16":
                dtype, cut = "bf16", cut.astype("<u2")
            else:
                dtype, cut = expected_dtype(cut)
            cut = np.ascontiguousarray(cut.astype(cut.dtype.newbyteorder("<")))
            with open(os.path.join(out, "%d.bin" % i), "wb") as b:
                b.write(cut.tobytes())
            listed.append({"dtype": dtype, "shape": list(cut.shape)})
    with open(os.path.join(out, "slices.json"), "w") as f:
        json.dump(listed, f)
    print("OK")


if __name__ == "__main__":
    main(*sys.argv[1:])
