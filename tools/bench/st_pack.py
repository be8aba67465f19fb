#!/usr/bin/env python3
"""Wrap one corpus of corpus.py as a safetensors file.

usage: st_pack.py CACHE KIND OUT      (KIND: fp32, fp16 or bf16)

Writes the tensors of CACHE/KIND.bin, as listed in CACHE/corpus.json, as
OUT: an 8-byte header length, a JSON header naming every tensor with its
dtype, shape and byte range, then KIND.bin unchanged (it is the data
section).  So a mount sees what a user's safetensors file gives it: the
dtype, the row length and the boundaries of every tensor.
"""
import json
import shutil
import struct
import sys

DTYPES = {"fp32": "F32", "fp16": "F16", "bf16": "BF16"}


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in DTYPES:
        sys.exit(__doc__.split("\n\n")[1])
    cache, kind, out = sys.argv[1:]
    tensors = json.load(open(cache + "/corpus.json"))[kind]
    header, end = {}, 0
    for i, t in enumerate(tensors):
        if t["offset"] != end:
            sys.exit("%s: tensor %d is not contiguous" % (kind, i))
        end = t["offset"] + t["bytes"]
        # names repeat across models: the index keeps them unique
        header["%05d/%s/%s" % (i, t["model"], t["name"])] = {
            "dtype": DTYPES[kind], "shape": t["shape"], "data_offsets": [t["offset"], end]}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out + ".tmp", "wb") as f, open("%s/%s.bin" % (cache, kind), "rb") as src:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        shutil.copyfileobj(src, f, 1 << 20)
    shutil.move(out + ".tmp", out)


if __name__ == "__main__":
    main()
