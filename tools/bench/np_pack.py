#!/usr/bin/python3
"""Save one corpus of corpus.py the way NumPy users save weights.

usage: np_pack.py CACHE KIND OUT.npz      (KIND: fp32, fp16 or bf16)

Writes the tensors of CACHE/KIND.bin, as listed in CACHE/corpus.json,
with np.savez (a zip of one .npy per tensor, stored, not deflated): fp32
as float32, fp16 as float16, bf16 as 2-byte void elements ('|V2': numpy
has no bfloat16; ml_dtypes' arrays are saved so).  Needs Debian's
python3-numpy (run with /usr/bin/python3).
"""
import json
import sys

import numpy as np

DTYPES = {"fp32": np.float32, "fp16": np.float16, "bf16": np.dtype("V2")}


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in DTYPES:
        sys.exit(__doc__.split("\n\n")[1])
    cache, kind, out = sys.argv[1:]
    tensors = json.load(open(cache + "/corpus.json"))[kind]
    data = np.fromfile("%s/%s.bin" % (cache, kind), dtype=np.uint8)
    arrays = {}
    for i, t in enumerate(tensors):
        a = data[t["offset"]:t["offset"] + t["bytes"]].view(DTYPES[kind])
        # names repeat across models: keep them unique
        arrays["%05d/%s/%s" % (i, t["model"], t["name"])] = a.reshape(t["shape"])
    np.savez(out, **arrays)


if __name__ == "__main__":
    main()
