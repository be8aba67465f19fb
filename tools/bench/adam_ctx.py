#!/usr/bin/python3
"""How much can the previous checkpoint, or another tensor of the same one,
tell about AdamW state?  Empirical conditional entropies (bits per element,
in-sample, so optimistic) of the exponent (floor(log2|x|)) of the new
values, given contexts a coder could use:

  nbr   the mean log2|x| of the 16 elements before (the codec's scale context)
  prev  the exponent of the element before
  ref   log2|x| of the same element in the previous checkpoint (half steps)
  m     log2|exp_avg| of the same element of the same checkpoint (for v)
  v     log2|exp_avg_sq| of the same element of the same checkpoint (for m)
  dw    log2|w_new - w_old|, the weight update over the interval (for m)

and the sign of exp_avg given the sign of the weight update.

usage: adam_ctx.py PARTSDIR   (the OUTDIR of series_parts.py: w/m/v .old/.new.bin)
"""
import sys

import numpy as np


def H(*cols):
    k = np.zeros(len(cols[0]), dtype=np.int64)
    for c in cols:
        k = k * 4096 + (c.astype(np.int64) + 2048)
    _, cnt = np.unique(k, return_counts=True)
    q = cnt / cnt.sum()
    return float(-(q * np.log2(q)).sum())


def Hc(x, *ctx):
    return H(x, *ctx) - H(*ctx) if ctx else H(x)


def lg(a):
    return np.log2(np.abs(a) + 1e-45)


def nbr(a, k=16):
    la = lg(a)
    cs = np.cumsum(np.concatenate([[0], la]))
    rm = np.empty_like(la)
    rm[:k] = la[0]
    rm[k:] = (cs[k:-1] - cs[:-k - 1]) / k
    return np.round(rm * 2)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    L = lambda n: np.fromfile(f"{d}/{n}.bin", "<f4").astype(np.float64)
    wo, wn, mo, mn, vo, vn = (L(n) for n in ("w.old", "w.new", "m.old", "m.new", "v.old", "v.new"))
    for name, new, old, other, oname in (("exp_avg_sq", vn, vo, mn, "m"), ("exp_avg", mn, mo, vn, "v")):
        e = np.floor(lg(new))
        prev = np.concatenate([[0], e[:-1]])
        c_n, c_r, c_o = nbr(new), np.round(2 * lg(old)), np.round(2 * lg(other))
        print(f"{name}: H(e) {Hc(e):.3f} | nbr {Hc(e, c_n):.3f} | nbr,prev {Hc(e, c_n, prev):.3f}"
              f" | nbr,ref {Hc(e, c_n, c_r):.3f} | nbr,{oname} {Hc(e, c_n, c_o):.3f}"
              f" | nbr,ref,{oname} {Hc(e, c_n, c_r, c_o):.3f}")
    dw = wn - wo
    print(f"exp_avg exponent | nbr,v,dw {Hc(np.floor(lg(mn)), nbr(mn), np.round(lg(vn)), np.round(lg(dw))):.3f}")
    print(f"exp_avg sign: H {Hc(np.sign(mn)):.4f} | sign(dw) {Hc(np.sign(mn), np.sign(dw)):.4f}"
          f" | sign(old) {Hc(np.sign(mn), np.sign(mo)):.4f}; corr(m, dw) {np.corrcoef(mn, dw)[0, 1]:.3f}")


if __name__ == "__main__":
    main()
