#!/usr/bin/python3
"""text_pack.py OUTDIR - the non-tensor files of a model repository and a
training set, for tools/bench/bytes_bench.sh (deterministic for a given
Debian python3.11):

  source.txt      the first 8 MiB of the Python standard library's sources
                  (/usr/lib/python3.11, sorted walk): code and prose
  tokenizer.json  a Hugging Face style tokenizer file: a vocabulary of the
                  50000 commonest words of those sources with their ids, and
                  a merges list splitting each word in two
  tokens.u16      tok_pack.py's token stream (nanoGPT's train.bin: uint16)
  tokens.u32      the same ids as uint32 (int32 token files)"""
import collections
import json
import os
import re
import subprocess
import sys

import numpy as np

ROOT = "/usr/lib/python3.11"


def sources():
    for dp, dn, fn in os.walk(ROOT):
        dn.sort()
        for f in sorted(fn):
            if f.endswith(".py"):
                with open(os.path.join(dp, f), "rb") as fh:
                    yield fh.read()


def main():
    out = sys.argv[1]
    buf, n = [], 0
    for b in sources():
        buf.append(b)
        n += len(b)
        if n >= 8 << 20:
            break
    src = b"".join(buf)[: 8 << 20]
    with open(os.path.join(out, "source.txt"), "wb") as f:
        f.write(src)
    words = collections.Counter(re.findall(r"\w+", src.decode("utf-8", "ignore")))
    vocab = [w for w, _ in words.most_common(50000)]
    tok = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": "<|%s|>" % t, "special": True}
                         for i, t in enumerate(["endoftext", "pad", "unk"])],
        "model": {
            "type": "BPE",
            "vocab": {w: i + 3 for i, w in enumerate(vocab)},
            "merges": ["%s %s" % (w[: len(w) // 2], w[len(w) // 2:]) for w in vocab if len(w) > 1],
        },
    }
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tok, f, indent=2, ensure_ascii=False)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "tok_pack.py"),
                    os.path.join(out, "tokens.u16")], check=True)
    ids = np.fromfile(os.path.join(out, "tokens.u16"), dtype="<u2")
    ids.astype("<u4").tofile(os.path.join(out, "tokens.u32"))


main()
