#!/usr/bin/python3
"""tok_pack.py OUT - a token stream as language-model training data stores
it (nanoGPT's train.bin: uint16 ids, little-endian, no header), for
tools/bench/quant_store.sh.

Word-level tokens (runs of word characters, single other characters) of
the Python standard library's sources (/usr/lib/python3.11, sorted walk),
ids by frequency rank among the 50000 commonest (others: 50000), at most
4 million tokens (python3.11 of Debian 12: 2.37 million, 4.7 MB).  Deterministic for a given Debian python3.11."""
import collections
import os
import re
import sys

import numpy as np

ROOT = "/usr/lib/python3.11"
N = 4_000_000


def main():
    words = []
    for dp, dn, fn in os.walk(ROOT):
        dn.sort()
        for f in sorted(fn):
            if f.endswith(".py"):
                with open(os.path.join(dp, f), errors="ignore") as fh:
                    words += re.findall(r"\w+|[^\w\s]", fh.read())
        if len(words) >= N:
            break
    rank = {w: i for i, (w, _) in enumerate(collections.Counter(words).most_common(50000))}
    np.array([rank.get(w, 50000) for w in words[:N]], dtype="<u2").tofile(sys.argv[1])


if __name__ == "__main__":
    main()
