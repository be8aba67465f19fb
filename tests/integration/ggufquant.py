#!/usr/bin/env python3
"""ggufquant.py PATH NTENSORS SUPERBLOCKS SEED: a GGUF v3 file of NTENSORS
tensors of SUPERBLOCKS x 256 weights each, alternately Q4_K and Q6_K (as
llama.cpp's Q4_K_M mixes them), in ggml's block layouts: Q4_K = fp16 d,
fp16 dmin, 12 bytes of 6-bit sub-block scales and mins, 128 bytes of 4-bit
quants; Q6_K = 128 bytes of low nibbles, 64 of high bit pairs, 16 int8
scales, fp16 d.  The weights are Laplace(0, sigma), sigma within 10% of
a tensor's own; the scales as ggml's reference quantizers start them.  Pure
Python (no numpy)."""
import random
import struct
import sys

from ggufgen import gstr, write_gguf


def rnd(v):
    return int(v - 0.5) if v < 0 else int(v + 0.5)


def fp16(v):
    return struct.pack("<e", v)


def q4_k(x):
    sc, mn = [], []
    for s in range(8):
        sub = x[32 * s:32 * s + 32]
        lo, hi = min(min(sub), 0.0), max(sub)
        sc.append((hi - lo) / 15)
        mn.append(-lo)
    d, dm = max(sc) / 63, max(mn) / 63
    d, dm = struct.unpack("<e", fp16(d))[0], struct.unpack("<e", fp16(dm))[0]
    ls = [min(63, rnd(v / d)) if d > 0 else 0 for v in sc]
    lm = [min(63, rnd(v / dm)) if dm > 0 else 0 for v in mn]
    scales = bytearray(12)
    for j in range(8):
        if j < 4:
            scales[j] |= ls[j]
            scales[j + 4] |= lm[j]
        else:
            scales[j + 4] |= (ls[j] & 15) | (lm[j] & 15) << 4
            scales[j - 4] |= (ls[j] >> 4) << 6
            scales[j] |= (lm[j] >> 4) << 6
    L = []
    for j, v in enumerate(x):
        dj = d * ls[j // 32]
        L.append(max(0, min(15, rnd((v + dm * lm[j // 32]) / dj))) if dj > 0 else 0)
    qs = bytearray(128)
    for j in range(4):
        for l in range(32):
            qs[32 * j + l] = L[64 * j + l] | L[64 * j + 32 + l] << 4
    return fp16(d) + fp16(dm) + bytes(scales) + bytes(qs)


def q6_k(x):
    sc = []
    for s in range(16):
        sub = x[16 * s:16 * s + 16]
        mx = max(sub, key=abs)
        sc.append(mx / -32)
    big = max(sc, key=abs)
    d = struct.unpack("<e", fp16(big / -128 if big else 0.0))[0]
    ls = [max(-128, min(127, rnd(v / d))) if d else 0 for v in sc]
    L = []
    for j, v in enumerate(x):
        dj = d * ls[j // 16]
        L.append(max(-32, min(31, rnd(v / dj))) + 32 if dj else 32)
    ql, qh = bytearray(128), bytearray(64)
    for h in range(2):
        for l in range(32):
            q = [L[128 * h + 32 * k + l] for k in range(4)]
            ql[64 * h + l] = (q[0] & 15) | (q[2] & 15) << 4
            ql[64 * h + 32 + l] = (q[1] & 15) | (q[3] & 15) << 4
            qh[32 * h + l] = q[0] >> 4 | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6
    return bytes(ql) + bytes(qh) + struct.pack("<16b", *ls) + fp16(d)


def main():
    path, ntens, nsb, seed = sys.argv[1], *map(int, sys.argv[2:5])
    rng = random.Random(seed)
    kv = [gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama"),
          gstr("general.alignment") + struct.pack("<II", 4, 32)]
    tensors = []
    for k in range(ntens):
        kind, fn = (12, q4_k) if k % 2 == 0 else (14, q6_k)
        data, base = bytearray(), 0.005 + rng.random() * 0.04
        for b in range(nsb):
            sigma = base * (1.0 + 0.1 * rng.gauss(0.0, 1.0))
            data += fn([rng.choice((-1.0, 1.0)) * rng.expovariate(1.0 / sigma)
                        for _ in range(256)])
        tensors.append(("blk.%d.weight" % k, (256, nsb), kind, bytes(data)))
    write_gguf(path, kv, tensors)


main()
