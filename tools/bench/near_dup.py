#!/usr/bin/python3
"""near_dup.py - are there near-duplicate tensors in the codec corpus?

  /usr/bin/python3 tools/bench/near_dup.py [CACHE]

For every pair of float32 tensors of corpus.json (tools/bench/corpus.py,
default cache ~/.cache/mixfs-bench) with the same shape and at least 4096
elements, the correlation of their values and the share of equal bf16
values; prints the best partner of each tensor (highest correlation first)
and the share of the corpus's bytes whose best partner correlates above
0.9 and 0.5.  A reference-coded store (series coding against a similar
tensor) could only gain on tensors that have such a partner; exact
duplicates are what dedup already takes.
"""
import collections
import itertools
import json
import os
import sys

import numpy as np

cache = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/mixfs-bench")
table = json.load(open(os.path.join(cache, "corpus.json")))["fp32"]
raw = np.fromfile(os.path.join(cache, "fp32.bin"), dtype=np.uint8)
groups = collections.defaultdict(list)
for e in table:
    if e["bytes"] // 4 >= 4096:
        groups[tuple(e["shape"])].append(e)
total = sum(e["bytes"] for e in table)
res = []
for shape, es in groups.items():
    if len(es) < 2:
        continue
    vals = [np.frombuffer(raw[e["offset"]:e["offset"] + e["bytes"]].tobytes(), dtype="<f4") for e in es]
    b16 = [(v.view(np.uint32) >> 16).astype(np.uint16) for v in vals]
    best = {}
    for i, j in itertools.combinations(range(len(es)), 2):
        eq = float(np.mean(b16[i] == b16[j]))
        c = float(np.corrcoef(vals[i], vals[j])[0, 1]) if vals[i].std() > 0 and vals[j].std() > 0 else 0.0
        for k, other in ((i, j), (j, i)):
            if k not in best or c > best[k][0]:
                best[k] = (c, eq, es[other]["model"])
    for k, (c, eq, om) in best.items():
        res.append((es[k]["bytes"], c, eq, es[k]["model"], om, shape))
res.sort(key=lambda r: -r[1])
for r in res[:30]:
    print("%8d B  corr %.4f  bf16 equal %.3f  %s ~ %s %s" % r)
for lo, hi in ((0.999999, 2), (0.9, 0.999999), (0.5, 0.9)):
    share = sum(r[0] for r in res if lo < r[1] <= hi) / total
    print("bytes whose best same-shape partner correlates in (%g, %g]: %.4f of the corpus" % (lo, min(hi, 1), share))
