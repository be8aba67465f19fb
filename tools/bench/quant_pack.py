#!/usr/bin/python3
"""quant_pack.py CACHE OUTDIR - quantized versions of the fp32 corpus
(tools/bench/corpus.py), for tools/bench/quant_store.sh.

Every fp32 tensor of at least 4096 elements (shape from corpus.json, rows =
its last dimension) becomes:
  fp8.safetensors   float8 e4m3fn ("F8_E4M3"), one scale per 128 x 128 tile
                    (amax / 448), as DeepSeek-V3-style fp8 checkpoints store
                    them (the scales are not written: the weights are the
                    bulk);
  int8.safetensors  int8 ("I8"), symmetric, one scale per column (output
                    channel of the TF.js layout), as int8 weight-only
                    checkpoints;
  q8_0.bin          GGUF Q8_0 blocks (fp16 scale + 32 int8) of the flat
                    tensor: the bytes of a Q8_0 GGUF's tensor data;
  q4_0.bin, q4_1.bin, q5_0.bin
                    the same as Q4_0 (fp16 d + 16 bytes of 4-bit quants),
                    Q4_1 (fp16 d and min + 16 bytes) and Q5_0 (fp16 d, 32
                    high bits, 16 bytes) blocks, as ggml's reference
                    quantizers make them;
  q4_0.gguf, q4_1.gguf, q5_0.gguf, q8_0.gguf
                    the same blocks as a GGUF v3 file (a tensor of 32 x n
                    elements each, data aligned to 32, general.alignment
                    and a small vocabulary in the metadata), as llama.cpp
                    stores a quantized model;
  q2_k.gguf .. q6_k.gguf
                    the K-quants' super-blocks of 256 weights (Q2_K 84
                    bytes, Q3_K 110, Q4_K 144, Q5_K 176, Q6_K 210; ggml's
                    block layouts, scales as its reference quantizers start
                    them, without their iterative refinement) of the first
                    n // 256 * 256 elements, tensors of 256 x n;
  q4_k_m.gguf       Q4_K with every fourth tensor Q6_K, as llama.cpp's
                    Q4_K_M mixes them;
  iq4_xs.gguf       IQ4_XS super-blocks (136 bytes: d, 6-bit sub-block
                    scales, 4-bit indices into IQ4_NL's 16 values);
  mxfp4.bin, mxfp4.gguf
                    MXFP4 blocks (17 bytes: an e8m0 scale, 16 bytes of
                    e2m1 values, as gpt-oss's experts are stored), as
                    ggml's reference quantizer makes them.
Deterministic (round to nearest, ties away from zero for int8; to the
nearest e4m3 value, ties to the lower magnitude).  Needs Debian's
python3-numpy."""
import json
import os
import struct
import sys

import numpy as np


def e4m3_table():
    """Sorted non-negative e4m3fn values and their codes (NaN 0x7f left out)."""
    vals, codes = [], []
    for c in range(0x7f):
        e, m = (c >> 3) & 15, c & 7
        vals.append((m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7))
        codes.append(c)
    order = np.argsort(vals, kind="stable")
    return np.array(vals)[order], np.array(codes, np.uint8)[order]


def to_e4m3(x, tv, tc):
    a = np.abs(x)
    i = np.clip(np.searchsorted(tv, a), 1, len(tv) - 1)
    pick = np.where(a - tv[i - 1] <= tv[i] - a, i - 1, i)
    c = tc[pick]
    return np.where(x < 0, c | 0x80, c).astype(np.uint8)


def safetensors(path, tensors, dtype):
    hdr, off = {}, 0
    for name, shape, data in tensors:
        hdr[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, data in tensors:
            f.write(data)


def ggml_blocks(w):
    """Q4_0, Q4_1, Q5_0 and MXFP4 blocks of the flat tensor w (ggml's reference
    quantize_row_*: d from the element of largest magnitude, sign kept)."""
    f = w[:len(w) // 32 * 32].reshape(-1, 32).astype(np.float32)
    amax = f[np.arange(len(f)), np.abs(f).argmax(axis=1)]
    fp16 = lambda v: v.astype("<f2").view(np.uint8).reshape(-1, 2)
    out = {}
    for name, div, top in (("q4_0", -8.0, 15), ("q5_0", -16.0, 31)):
        d = (amax / div).astype(np.float32)
        idd = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
        q = np.minimum(top, np.trunc(f * idd[:, None] + (top + 1) / 2 + 0.5)).astype(np.uint32)
        qs = ((q[:, :16] & 15) | (q[:, 16:] & 15) << 4).astype(np.uint8)
        parts = [fp16(d)]
        if name == "q5_0":
            qh = ((q >> 4) & 1) << np.arange(32, dtype=np.uint32)
            parts.append(qh.sum(axis=1).astype("<u4").view(np.uint8).reshape(-1, 4))
        out[name] = np.concatenate(parts + [qs], axis=1).tobytes()
    # MXFP4: e from the largest magnitude (floor(log2) - 2 + 127), each
    # value the nearest of the doubled e2m1 values times 2^(e - 128)
    am = np.abs(f).max(axis=1)
    e = np.where(am > 0, np.floor(np.log2(np.where(am > 0, am, 1))) - 2 + 127, 0)
    d = np.ldexp(1.0, (e - 128).astype(np.int64)).astype(np.float32)
    kv = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], np.float32)
    q = np.abs((f / d[:, None])[..., None] - kv).argmin(axis=-1).astype(np.uint8)
    qs = (q[:, :16] | q[:, 16:] << 4).astype(np.uint8)
    out["mxfp4"] = np.concatenate([e.astype(np.uint8)[:, None], qs], axis=1).tobytes()
    lo, hi = f.min(axis=1), f.max(axis=1)
    d = ((hi - lo) / 15).astype(np.float32)
    idd = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.minimum(15, np.trunc((f - lo[:, None]) * idd[:, None] + 0.5)).astype(np.uint8)
    qs = (q[:, :16] | q[:, 16:] << 4).astype(np.uint8)
    out["q4_1"] = np.concatenate([fp16(d), fp16(lo), qs], axis=1).tobytes()
    return out


def gguf(path, tensors, ggml_type):
    """A GGUF v3 file of the tensors (name, elements, block bytes, and
    optionally their own ggml type); blocks of 32 elements, 256 for the
    K-quants (types 10-14)."""
    gstr = lambda t: struct.pack("<Q", len(t.encode())) + t.encode()
    kv = [gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama"),
          gstr("general.alignment") + struct.pack("<II", 4, 32),
          gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) +
          gstr("<s>") + gstr("</s>") + gstr("hello")]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv)
    off, datas = 0, []
    for name, n, data, *own in tensors:
        t = own[0] if own else ggml_type
        be = 256 if 10 <= t <= 14 or t == 23 else 32
        head += gstr(name) + struct.pack("<IQQIQ", 2, be, n // be, t, off)
        datas.append(data + b"\0" * (-len(data) % 32))
        off += len(datas[-1])
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head)
        for d in datas:
            f.write(d)


def nearest(v):
    """Round to nearest, ties away from zero (ggml's nearest_int)."""
    return np.trunc(v + np.copysign(0.5, v))

def fp16b(v):
    return v.astype("<f2").view(np.uint8).reshape(-1, 2)

def kquants(w):
    """Q2_K .. Q6_K super-blocks (256 elements) of the flat tensor w, laid
    out as ggml's block_q*_K; scales found as ggml's reference quantizers
    start them (sub-block range or largest magnitude; without their
    iterative refinement), then quantized as they quantize."""
    n = len(w) // 256 * 256
    f = w[:n].reshape(-1, 256).astype(np.float32)
    nb = len(f)
    out = {}
    # --- with a min: Q2_K (16 x 16, 2 bits, 4-bit scales), Q4_K and Q5_K (8 x 32, 6-bit scales)
    for name, sub, top, sbits in (("q2_k", 16, 3, 4), ("q4_k", 32, 15, 6), ("q5_k", 32, 31, 6)):
        g = f.reshape(nb, 256 // sub, sub)
        lo = np.minimum(g.min(axis=2), 0)
        hi = g.max(axis=2)
        sc = (hi - lo) / top
        mn = -lo
        smax = (1 << sbits) - 1
        msc, mmn = sc.max(axis=1), mn.max(axis=1)
        isc = np.where(msc > 0, smax / np.where(msc > 0, msc, 1), 0)
        imn = np.where(mmn > 0, smax / np.where(mmn > 0, mmn, 1), 0)
        ls = np.clip(nearest(sc * isc[:, None]), 0, smax).astype(np.int64)
        lm = np.clip(nearest(mn * imn[:, None]), 0, smax).astype(np.int64)
        d = (msc / smax).astype(np.float16)
        dm = (mmn / smax).astype(np.float16)
        dj = d.astype(np.float32)[:, None] * ls
        mj = dm.astype(np.float32)[:, None] * lm
        L = np.where(dj[:, :, None] > 0, nearest((g + mj[:, :, None]) / np.where(dj > 0, dj, 1)[:, :, None]), 0)
        L = np.clip(L, 0, top).astype(np.uint32).reshape(nb, 256)
        if name == "q2_k":
            scales = (ls | lm << 4).astype(np.uint8)
            qs = np.zeros((nb, 64), np.uint32)
            for j in range(0, 256, 128):
                for k in range(4):
                    qs[:, j // 4:j // 4 + 32] |= L[:, j + 32 * k:j + 32 * k + 32] << (2 * k)
            out[name] = np.concatenate([scales, qs.astype(np.uint8), fp16b(d), fp16b(dm)], axis=1).tobytes()
            continue
        s = np.zeros((nb, 12), np.int64)
        for j in range(8):
            if j < 4:
                s[:, j] |= ls[:, j]
                s[:, j + 4] |= lm[:, j]
            else:
                s[:, j + 4] |= (ls[:, j] & 15) | (lm[:, j] & 15) << 4
                s[:, j - 4] |= (ls[:, j] >> 4) << 6
                s[:, j] |= (lm[:, j] >> 4) << 6
        qs = np.zeros((nb, 128), np.uint32)
        qh = np.zeros((nb, 32), np.uint32)
        for i, j in enumerate(range(0, 256, 64)):
            l1, l2 = L[:, j:j + 32], L[:, j + 32:j + 64]
            qh |= (l1 >> 4) << (2 * i) | (l2 >> 4) << (2 * i + 1)
            qs[:, i * 32:i * 32 + 32] = (l1 & 15) | (l2 & 15) << 4
        parts = [fp16b(d), fp16b(dm), s.astype(np.uint8)]
        if name == "q5_k":
            parts.append(qh.astype(np.uint8))
        parts.append(qs.astype(np.uint8))
        out[name] = np.concatenate(parts, axis=1).tobytes()
    # --- symmetric: Q3_K (16 x 16, 3 bits, 6-bit signed scales), Q6_K (16 x 16, 6 bits, int8 scales)
    for name, half, smaxs in (("q3_k", 4, 32), ("q6_k", 32, 128)):
        g = f.reshape(nb, 16, 16)
        am = np.take_along_axis(g, np.abs(g).argmax(axis=2)[:, :, None], axis=2)[:, :, 0]
        sc = am / -half
        big = np.take_along_axis(sc, np.abs(sc).argmax(axis=1)[:, None], axis=1)[:, 0]
        isc = np.where(big != 0, -smaxs / np.where(big != 0, big, 1), 0)
        ls = np.clip(nearest(isc[:, None] * sc), -smaxs, smaxs - 1).astype(np.int64)
        d = np.where(isc != 0, 1 / np.where(isc != 0, isc, 1), 0).astype(np.float16)
        dj = d.astype(np.float32)[:, None] * ls
        L = np.where(dj[:, :, None] != 0, nearest(g / np.where(dj != 0, dj, 1)[:, :, None]), 0)
        L = (np.clip(L, -half, half - 1) + half).astype(np.uint32).reshape(nb, 256)
        if name == "q3_k":
            hm = np.zeros((nb, 32), np.uint32)
            for j in range(256):
                hm[:, j % 32] |= (L[:, j] >> 2) << (j // 32)
            L = L & 3
            qs = np.zeros((nb, 64), np.uint32)
            for j in range(0, 256, 128):
                for k in range(4):
                    qs[:, j // 4:j // 4 + 32] |= L[:, j + 32 * k:j + 32 * k + 32] << (2 * k)
            u = (ls + 32).astype(np.int64)
            s = np.zeros((nb, 12), np.int64)
            for j in range(16):
                if j < 8:
                    s[:, j] |= u[:, j] & 15
                else:
                    s[:, j - 8] |= (u[:, j] & 15) << 4
                s[:, j % 4 + 8] |= (u[:, j] >> 4) << (2 * (j // 4))
            out[name] = np.concatenate([hm.astype(np.uint8), qs.astype(np.uint8), s.astype(np.uint8), fp16b(d)], axis=1).tobytes()
        else:
            ql = np.zeros((nb, 128), np.uint32)
            qh = np.zeros((nb, 64), np.uint32)
            for h, j in enumerate(range(0, 256, 128)):
                q = [L[:, j + 32 * k:j + 32 * k + 32] for k in range(4)]
                ql[:, 64 * h:64 * h + 32] = (q[0] & 15) | (q[2] & 15) << 4
                ql[:, 64 * h + 32:64 * h + 64] = (q[1] & 15) | (q[3] & 15) << 4
                qh[:, 32 * h:32 * h + 32] = (q[0] >> 4) | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6
            out[name] = np.concatenate([ql.astype(np.uint8), qh.astype(np.uint8), ls.astype(np.int8).view(np.uint8), fp16b(d)], axis=1).tobytes()
    return out


IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)
def iq4_xs(w):
    """IQ4_XS super-blocks (256 weights: fp16 d, 2 bytes of the 6-bit
    sub-block scales' high bits, 4 of their low nibbles, 128 bytes of 4-bit
    indices into IQ4_NL's 16 values) of the flat tensor w; a sub-block's
    scale maps its largest magnitude to -127, without ggml's search."""
    n = len(w) // 256 * 256
    f = w[:n].reshape(-1, 8, 32).astype(np.float32)
    nb = len(f)
    am = np.take_along_axis(f, np.abs(f).argmax(axis=2)[:, :, None], axis=2)[:, :, 0]
    sc = am / IQ4NL[0]  # sub-block scale: the largest magnitude maps to -127
    big = np.take_along_axis(sc, np.abs(sc).argmax(axis=1)[:, None], axis=1)[:, 0]
    d = (-big / 32).astype(np.float16).astype(np.float32)
    idd = np.where(d != 0, 1 / np.where(d != 0, d, 1), 0)
    l = np.clip(nearest(idd[:, None] * sc), -32, 31).astype(np.int64)
    dl = d[:, None] * l
    y = np.where(dl[:, :, None] != 0, f / np.where(dl != 0, dl, 1)[:, :, None], 0)
    idx = np.abs(y[..., None] - IQ4NL).argmin(axis=-1).astype(np.uint8)  # (nb, 8, 32)
    Ls = (l + 32).astype(np.uint32)
    sh = np.zeros(nb, np.uint32); sl = np.zeros((nb, 4), np.uint8)
    for ib in range(8):
        sl[:, ib // 2] |= ((Ls[:, ib] & 15) << (4 * (ib % 2))).astype(np.uint8)
        sh |= (Ls[:, ib] >> 4) << (2 * ib)
    qs = (idx[:, :, :16] | idx[:, :, 16:] << 4).reshape(nb, 128)
    return np.concatenate([d.astype("<f2").view(np.uint8).reshape(-1, 2), sh.astype("<u2").view(np.uint8).reshape(-1, 2), sl, qs], axis=1).tobytes()


def main():
    cache, out = sys.argv[1], sys.argv[2]
    table = json.load(open(os.path.join(cache, "corpus.json")))["fp32"]
    raw = np.fromfile(os.path.join(cache, "fp32.bin"), dtype="<f4")
    tv, tc = e4m3_table()
    fp8, int8, q8 = [], [], []
    gg = {"q4_0": [], "q4_1": [], "q5_0": [], "mxfp4": []}
    kk = {k: [] for k in ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_xs")}
    names = []
    for k, t in enumerate(table):
        n = t["bytes"] // 4
        if n < 4096:
            continue
        w = raw[t["offset"] // 4:t["offset"] // 4 + n].astype(np.float64)
        cols = t["shape"][-1] if t["shape"] else n
        W = w.reshape(-1, cols)
        name = "%d.%s" % (k, t["name"])
        Q = np.empty(W.shape, np.uint8)
        for r in range(0, W.shape[0], 128):
            for c in range(0, cols, 128):
                blk = W[r:r + 128, c:c + 128]
                am = np.abs(blk).max()
                Q[r:r + 128, c:c + 128] = to_e4m3(blk / (am / 448.0 if am > 0 else 1.0), tv, tc)
        fp8.append((name, W.shape, Q.tobytes()))
        sc = np.abs(W).max(axis=0, keepdims=True) / 127.0
        sc[sc == 0] = 1.0
        q = W / sc
        int8.append((name, W.shape, np.clip(np.trunc(q + np.copysign(0.5, q)), -127, 127)
                     .astype(np.int8).tobytes()))
        f = w[:n // 32 * 32].reshape(-1, 32)
        s = np.abs(f).max(axis=1) / 127.0
        s[s == 0] = 1.0
        qq = f / s[:, None]
        blk = np.zeros((len(f), 34), np.uint8)
        blk[:, :2] = s.astype("<f2").view(np.uint8).reshape(-1, 2)
        blk[:, 2:] = np.clip(np.trunc(qq + np.copysign(0.5, qq)), -127, 127).astype(np.int8).view(np.uint8)
        q8.append(blk.tobytes())
        names.append((name, n // 32 * 32))
        for kind, data in ggml_blocks(w).items():
            gg[kind].append(data)
        for kind, data in kquants(w).items():
            kk[kind].append(data)
        kk["iq4_xs"].append(iq4_xs(w))
    safetensors(os.path.join(out, "fp8.safetensors"), fp8, "F8_E4M3")
    safetensors(os.path.join(out, "int8.safetensors"), int8, "I8")
    with open(os.path.join(out, "q8_0.bin"), "wb") as f:
        for b in q8:
            f.write(b)
    gg["q8_0"] = q8
    types = {"q4_0": 2, "q4_1": 3, "q5_0": 6, "q8_0": 8, "mxfp4": 39}
    for kind, blocks in gg.items():
        if kind != "q8_0":
            with open(os.path.join(out, kind + ".bin"), "wb") as f:
                for b in blocks:
                    f.write(b)
        gguf(os.path.join(out, kind + ".gguf"),
             [(nm, n, b) for (nm, n), b in zip(names, blocks)], types[kind])
    ktypes = {"q2_k": 10, "q3_k": 11, "q4_k": 12, "q5_k": 13, "q6_k": 14, "iq4_xs": 23}
    for kind, blocks in kk.items():
        gguf(os.path.join(out, kind + ".gguf"),
             [(nm, n // 256 * 256, b) for (nm, n), b in zip(names, blocks) if b], ktypes[kind])
    gguf(os.path.join(out, "q4_k_m.gguf"),
         [(nm, n // 256 * 256, b6 if i % 4 == 3 else b4, 14 if i % 4 == 3 else 12)
          for i, ((nm, n), b4, b6) in enumerate(zip(names, kk["q4_k"], kk["q6_k"])) if b4], 12)


if __name__ == "__main__":
    main()
