#!/usr/bin/python3
"""Split two successive checkpoints into their parts and show how much the
older one can tell about the newer: the numbers behind the series table.

usage: series_parts.py OLD NEW OUTDIR

OLD and NEW are torch.save files of {"model", "optimizer"} (AdamW), as
train_series.py writes them, or two bf16 safetensors files.  Writes the
concatenated tensors of each part as raw little-endian files for mixtune
(tools/bench/mixtune.c: -t fp32 / -t bf16, -R for the reference):

  OUTDIR/w.old.bin, w.new.bin   model weights (fp32, or bf16 for safetensors)
  OUTDIR/m.old.bin, m.new.bin   AdamW exp_avg (torch.save only)
  OUTDIR/v.old.bin, v.new.bin   AdamW exp_avg_sq (torch.save only)

and prints, per part, what changed between the two and the order-0
entropies (bits per element) of the new values, of their XOR with the old
ones, and of the difference of the two in sign-magnitude order (for fp32
over the high 16 bits: sign, exponent and 7 mantissa bits; the low 16 are
counted as 16 plain bits).  An order-0 entropy is no bound for a context
model, but it shows where a reference stops helping.
"""
import json
import os
import struct
import sys

import numpy as np


def entropy(x):
    _, c = np.unique(x, return_counts=True)
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


def ordinal(u16):
    u = u16.astype(np.int64)
    return np.where(u >> 15, -(u & 0x7FFF), u & 0x7FFF)


def torch_parts(path):
    import torch
    d = torch.load(path)
    st = d["optimizer"]["state"]
    cat = lambda ts: np.concatenate([t.numpy().ravel() for t in ts]).astype("<f4")
    return {"w": cat(d["model"].values()),
            "m": cat(st[k]["exp_avg"] for k in sorted(st)),
            "v": cat(st[k]["exp_avg_sq"] for k in sorted(st))}


def safetensors_parts(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    json.loads(b[8:8 + n])  # a safetensors header, or fail here
    return {"w": np.frombuffer(b[8 + n:], dtype="<u2")}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    old, new, out = sys.argv[1:]
    load = safetensors_parts if old.endswith(".safetensors") else torch_parts
    a, b = load(old), load(new)
    os.makedirs(out, exist_ok=True)
    names = {"w": "weights", "m": "exp_avg", "v": "exp_avg_sq"}
    for k in a:
        a[k].tofile(os.path.join(out, k + ".old.bin"))
        b[k].tofile(os.path.join(out, k + ".new.bin"))
        if a[k].dtype == np.uint16:
            x, y, low, width = a[k], b[k], 0, 16
        else:
            x, y = a[k].view("<u4") >> 16, b[k].view("<u4") >> 16
            x, y, low, width = x.astype(np.uint16), y.astype(np.uint16), 16, 32
        if a[k].dtype == np.uint16:  # bf16: the high half of an fp32
            fa, fb = ((t.astype("<u4") << 16).view("<f4") for t in (a[k], b[k]))
        else:
            fa, fb = a[k], b[k]
        rel = np.median(np.abs(fb - fa) / (np.abs(fa) + 1e-30))
        print(f"{names[k]:10s} {len(x):8d} elements: sign+exponent unchanged "
              f"{np.mean((x ^ y) >> 7 == 0):.3f}, high 16 bits unchanged {np.mean(x == y):.3f}, "
              f"median relative change {rel:.3g}; bits/element of {width}: "
              f"new alone {entropy(y) + low:.2f}, XOR {entropy(x ^ y) + low:.2f}, "
              f"difference {entropy(ordinal(y) - ordinal(x)) + low:.2f}")


if __name__ == "__main__":
    main()
