#!/usr/bin/python3
# delta_ctx.py DIR - offline, a measurement for issue 6 (not a test):
# empirical entropies (in-sample, so optimistic) of the bf16 DELTA residual
# (codec/FORMAT.md 4.2 step 0: n = bit length of the zigzagged order-key
# difference, then n - 1 lower bits) of the last of three successive
# safetensors checkpoints in DIR (model-*.safetensors), under candidate
# contexts: the reference's exponent (what the codec uses), a running/column
# mean of n, and n and sign of the previous delta (two checkpoints back).
import sys, json, struct, numpy as np, glob
from collections import Counter

def load(p):
    b = open(p,'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8+n]); base = 8+n
    out = {}
    for k,v in h.items():
        if k == '__metadata__': continue
        s,e = v['data_offsets']
        a = np.frombuffer(b[base+s:base+e], dtype='<u2')
        out[k] = (a, v['shape'])
    return out

def key(w):  # 16-bit monotone key
    w = w.astype(np.int64)
    return np.where(w & 0x8000, (~w) & 0xffff, w | 0x8000)

def bitlen(z):
    z = z.astype(np.int64); n = np.zeros_like(z)
    for b in range(17):
        n += (z >> b) > 0
    return n

def H(sym, ctx=None):
    # conditional empirical entropy, bits total
    if ctx is None: ctx = np.zeros_like(sym)
    j = ctx.astype(np.int64) * 4096 + sym.astype(np.int64)
    cj = np.bincount(j - j.min()); cc = np.bincount(ctx.astype(np.int64) - ctx.min())
    cj = cj[cj>0]; cc = cc[cc>0]
    return -(cj*np.log2(cj)).sum() + (cc*np.log2(cc)).sum()

files = sorted(glob.glob(sys.argv[1] + '/model-*.safetensors'))
t0, t1, t2 = load(files[-3]), load(files[-2]), load(files[-1])
R = []
for k in t2:
    a2, shp = t2[k]; a1 = t1[k][0]; a0 = t0[k][0]
    rl = shp[-1] if len(shp) >= 2 else len(a2)
    R.append((a0, a1, a2, rl, len(a2)))
tot = Counter()
N = 0
for a0,a1,a2,rl,ln in R:
    k0,k1,k2 = key(a0),key(a1),key(a2)
    d = k2 - k1; dp = k1 - k0
    z = np.where(d >= 0, 2*d, -2*d-1); zp = np.where(dp>=0, 2*dp, -2*dp-1)
    n = bitlen(z); npv = bitlen(zp)
    ex = ((a1 >> 7) & 0xff).astype(np.int64)  # ref exponent as leaf proxy
    # plain bits: for n>=2, n-2 plain + 1 modeled (approx as 1 bit)
    plain = np.maximum(n-1, 0).sum()
    # running mean of n along the flat tensor (rate 1/16), and column mean (rate 1/8)
    rm = np.zeros(ln); m = 0.0
    nn = n.astype(np.float64)
    for i in range(ln):
        rm[i] = m; m += (nn[i]-m)/16
    cm = np.zeros(ln)
    if rl < ln:
        col = np.full(rl, np.nan)
        for i in range(ln):
            c = i % rl
            cm[i] = col[c] if not np.isnan(col[c]) else rm[i]
            col[c] = (cm[i] + (nn[i]-cm[i])/8)
    else:
        cm = rm
    q = np.round(rm + cm).astype(np.int64)
    # sign of d given sign of dp
    sg = (d < 0).astype(np.int64); sgp = np.sign(dp).astype(np.int64) + 1
    nz = n >= 1
    tot['n|leaf'] += H(n, ex)
    tot['n|leaf,q'] += H(n, ex*64 + q)
    tot['n|q'] += H(n, q)
    tot['n|leaf,nprev'] += H(n, ex*32 + npv)
    tot['n|q,nprev'] += H(n, q*32 + npv)
    tot['n|leaf,q,nprev'] += H(n, (ex*64 + q)*32 + npv)
    tot['plain'] += plain
    tot['sign|-'] += H(sg[n>=1])
    tot['sign|sgp'] += H(sg[n>=1], sgp[n>=1])
    tot['sign|sgp,nprev'] += H(sg[n>=1], (sgp*32+npv)[n>=1])
    N += ln
for k,v in tot.items(): print(f'{k:22s} {v/N:.4f} bits/elem')
print('elements', N, 'current approx', (tot['n|leaf']+tot['plain'])/N, 'of 16 ->', (tot['n|leaf']+tot['plain'])/N/16)
