#!/usr/bin/env python3
"""torchzip.py PATH ARCHIVE NTENSORS ROWS COLS SEED [STEP LR DRIFT [PAD]]: a
torch.save file (the zip layout and data.pkl torch 1.13 writes: streamed
stored entries, 64-byte aligned data, data descriptors, a central
directory) of NTENSORS float32 tensors ROWS x COLS of seeded normal values,
without torch: fake torch modules make pickle write the GLOBALs torch.save
does.  torch.load reads it.  With STEP and LR the pickled dict also holds
"step" and "lr" (as a training script's checkpoint does: its pickle, and
so every later offset, changes from one checkpoint to the next); DRIFT > 0
multiplies each value by 1 + DRIFT * (a normal value of another seed), the
next checkpoint of a training run; PAD > 0 adds a "config" string of PAD
bytes to the dict (data.pkl then is that much longer, as with a training
script's saved configuration)."""
import collections, pickle, random, struct, sys, types, zlib

# Fake torch modules: pickle then writes GLOBAL 'torch FloatStorage' and
# 'torch._utils _rebuild_tensor_v2', as torch.save does.
torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
class FloatStorage:
    pass
FloatStorage.__module__ = "torch"
def _rebuild_tensor_v2(*a):
    pass
_rebuild_tensor_v2.__module__ = "torch._utils"
torch.FloatStorage = FloatStorage
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
sys.modules["torch"] = torch
sys.modules["torch._utils"] = utils

class Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel

class Tensor:
    def __init__(self, st, shape):
        self.st, self.shape = st, shape
    def __reduce__(self):
        stride = (self.shape[1], 1)
        return (_rebuild_tensor_v2, (self.st, 0, self.shape, stride, False, collections.OrderedDict()))

class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.numel)
        return None

CD = []

def entry(out, name, data):
    off = out.tell()
    name = name.encode()
    hdr = 30 + len(name) + 4
    pad = (-(off + hdr)) % 64
    extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    out.write(struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0x08, 0, 0, 0, 0, 0, 0, len(name), len(extra)))
    out.write(name + extra + data)
    out.write(struct.pack("<IIII", 0x08074b50, zlib.crc32(data), len(data), len(data)))
    CD.append((name, zlib.crc32(data), len(data), off))

def central(out):
    start = out.tell()
    for name, crc, size, off in CD:
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0x08, 0, 0, 0, crc, size,
                              size, len(name), 0, 0, 0, 0, 0, off) + name)
    end = out.tell()
    out.write(struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, len(CD), len(CD), end - start, start, 0))

def main():
    path, arch = sys.argv[1], sys.argv[2]
    ntens, rows, cols, seed = map(int, sys.argv[3:7])
    rng = random.Random(seed)
    sd = {"w%d" % i: Tensor(Storage(str(i), rows * cols), (rows, cols)) for i in range(ntens)}
    drift, drng = 0.0, random.Random(seed + 1)
    if len(sys.argv) > 7:
        sd = {"model": sd, "step": int(sys.argv[7]), "lr": float(sys.argv[8])}
        drift = float(sys.argv[9])
        if len(sys.argv) > 10:
            sd["config"] = "x" * int(sys.argv[10])
    import io
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(sd)
    with open(path, "wb") as out:
        entry(out, arch + "/data.pkl", buf.getvalue())
        for i in range(ntens):
            vals = [rng.gauss(0.0, 0.02) for _ in range(rows * cols)]
            if drift:
                vals = [v * (1.0 + drift * drng.gauss(0.0, 1.0)) for v in vals]
            entry(out, "%s/data/%d" % (arch, i), struct.pack("<%df" % len(vals), *vals))
        entry(out, arch + "/version", b"3\n")
        central(out)

main()
