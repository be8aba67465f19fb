#!/usr/bin/python3
"""Writes the NumPy fixtures of test_hint_numpy.c (run once by hand with
Debian's python3-numpy; the files are committed, a few KiB):

  f32.npy      float32 (3, 5), C order
  f16.npy      float16 (7,)
  fort.npy     float32 (4, 6), Fortran order
  i64.npy      int64 (10,)
  v2.npy       float32 (2, 3) with a version 2.0 header
  obj.npy      an object array (its bytes are a pickle: no range)
  rec.npy      a structured dtype (no range)
  big.npy      big-endian float32 (2, 2)
  savez.npz    np.savez: w float32 (8, 16), b float16 (16,), step int64 ()
  stream.npz   the same arrays saved to a stream that cannot seek (zipfile
               then writes data descriptors)
  deflate.npz  np.savez_compressed of the same (deflated: no ranges)
"""
import io
import os
import sys

import numpy as np

d = os.path.dirname(os.path.abspath(__file__)) if len(sys.argv) < 2 else sys.argv[1]
rng = np.random.default_rng(7)
f32 = rng.standard_normal((3, 5)).astype(np.float32)
np.save(os.path.join(d, "f32.npy"), f32)
np.save(os.path.join(d, "f16.npy"), rng.standard_normal(7).astype(np.float16))
np.save(os.path.join(d, "fort.npy"), np.asfortranarray(rng.standard_normal((4, 6)).astype(np.float32)))
np.save(os.path.join(d, "i64.npy"), np.arange(10, dtype=np.int64))
with open(os.path.join(d, "v2.npy"), "wb") as f:
    np.lib.format.write_array(f, rng.standard_normal((2, 3)).astype(np.float32), version=(2, 0))
np.save(os.path.join(d, "obj.npy"), np.array([{"a": 1}, "x"], dtype=object), allow_pickle=True)
np.save(os.path.join(d, "rec.npy"), np.zeros(3, dtype=[("a", "<f4"), ("b", "<i2")]))
np.save(os.path.join(d, "big.npy"), np.ones((2, 2), dtype=">f4"))

arrays = dict(w=rng.standard_normal((8, 16)).astype(np.float32),
              b=rng.standard_normal(16).astype(np.float16),
              step=np.array(40, dtype=np.int64))
np.savez(os.path.join(d, "savez.npz"), **arrays)
np.savez_compressed(os.path.join(d, "deflate.npz"), **arrays)


class NoSeek(io.RawIOBase):
    """A stream that tells but cannot seek, as a pipe written through."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += bytes(b)
        return len(b)

    def tell(self):
        return len(self.buf)

    def seek(self, *a):
        raise OSError("not seekable")

    def seekable(self):
        return False


s = NoSeek()
np.savez(s, **arrays)
with open(os.path.join(d, "stream.npz"), "wb") as f:
    f.write(s.buf)
