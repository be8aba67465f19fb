#!/usr/bin/python3
"""Train a small GPT with AdamW and write checkpoint series for series_bench.sh.

usage: train_series.py [--ckpts N] [--every S] [--seed K] [--lr LR] [--beta2 B]
                       [--sched const|cosine]
                       DEST [DEST...]
       train_series.py --resave [--via TMP] [--st-step | --raw] SRC DST [SRC DST...]

Every DEST gets the same series, each in its own subdirectory (a
subdirectory may be a symlink into a mixfs mount, so one run writes the
local reference copies and the mounts at once, with torch.save itself
writing onto the mount):

  full/ckpt-STEP.pt          torch.save({"model", "optimizer", "step"}):
                             fp32 weights plus AdamW exp_avg / exp_avg_sq
  latest/latest.pt           the same object saved over one name every
                             time (open with O_TRUNC: the in-place path)
  bf16/model-STEP.safetensors  the model weights as bfloat16, safetensors
                             (written by write_safetensors below: the
                             safetensors package is not in Debian)
  ft/ft-STEP.pt              a fine-tune of the final model on another
                             task with all but the last block and the
                             final norm frozen (model + optimizer, fp32)

A subdirectory missing from a DEST is skipped there.  Model: the GPT of
ckpt.py (0.93 M parameters).  Data: synthetic tokens from a seeded sparse
bigram Markov chain (each token has 8 likely successors), so the loss
falls like a real run's instead of stalling at log(vocab) on uniform noise;
the fine-tune uses a second chain.  Pretraining saves after every S steps
(N checkpoints), the fine-tune likewise.  Optimizer: AdamW, constant lr
(default 3e-4; --sched cosine: warmup, then cosine decay, the scheduler's
state saved with model and optimizer), betas (0.9, beta2) (default 0.95, GPT-style; torch's own
default is 0.999), weight decay 0.1, batch 4 x 64 tokens.  Seeded,
single-threaded, deterministic algorithms: the same torch build writes the
same bytes.  Run with Debian's python3-torch (/usr/bin/python3).

--resave writes checkpoints again, in order: a .pt file with
torch.save(torch.load(SRC), DST) (the same bytes as SRC when DST has the
same file name stem, torch.save names the zip entries after it), any other
file by copying its bytes; each DST is fsynced before the next is written
(checkpoints of a training run are minutes apart, far longer than the
mount's metadata group commit).  With --via TMP each is written to TMP in
DST's directory, fsynced and renamed to DST (the atomic-save pattern; a
.pt file then names its zip entries after TMP's stem, the same in every
checkpoint).  With --raw a safetensors SRC loses its header: DST holds
its tensor bytes alone (raw arrays, a format mixfs does not parse).
series_bench.sh trains once into a cache
and puts the series on each mount this way.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckpt import CTX, GPT, VOCAB  # noqa: E402  (the codec bench's model)

BATCH = 4  # small: Debian's CPU torch runs ~3 GFLOP/s on one core here
SUCC = 8  # likely successors per token in the Markov chains


def markov_chain(seed):
    """Transition matrix of a sparse random bigram chain (rows sum to 1)."""
    g = torch.Generator().manual_seed(seed)
    p = torch.full((VOCAB, VOCAB), 1e-4)
    succ = torch.randint(0, VOCAB, (VOCAB, SUCC), generator=g)
    w = torch.rand(VOCAB, SUCC, generator=g) + 0.1
    p.scatter_add_(1, succ, w)
    return p / p.sum(1, keepdim=True)


def batch(chain, g):
    x = torch.empty(BATCH, CTX + 1, dtype=torch.long)
    x[:, 0] = torch.randint(0, VOCAB, (BATCH,), generator=g)
    for t in range(CTX):
        x[:, t + 1] = torch.multinomial(chain[x[:, t]], 1, generator=g).squeeze(1)
    return x


def step(model, opt, chain, g):
    idx = batch(chain, g)
    logits = model(idx[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), idx[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


ST_DTYPE = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer: u64 LE header length, JSON header padded
    with spaces to a multiple of 8, then the tensors back to back."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        raw = t.view(torch.int16 if t.element_size() == 2 else torch.int32).numpy().tobytes()
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_all(dests, kind, name, obj):
    for d in dests:
        sub = os.path.join(d, kind)
        if not os.path.isdir(sub):
            continue
        path = os.path.join(sub, name)
        if kind == "bf16":
            write_safetensors(path, obj, {"format": "pt"})
        else:
            torch.save(obj, path)


def st_with_step(data, step):
    """A safetensors file's bytes with "step" added to its __metadata__ (as
    training scripts that record their progress in the header write it):
    the header changes length and content, the tensors stay as they are."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    meta["step"] = str(step)
    h = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data[8 + n:]


def resave(pairs, via, st_step=False, raw=False):
    if len(pairs) % 2:
        sys.exit("train_series: --resave takes SRC DST pairs")
    for src, dst in zip(pairs[0::2], pairs[1::2]):
        out = os.path.join(os.path.dirname(dst), via) if via else dst
        if src.endswith(".pt"):
            torch.save(torch.load(src), out)
        elif st_step:
            with open(src, "rb") as f:
                data = f.read()
            step = int(os.path.basename(src).split("-")[-1].split(".")[0])
            with open(out, "wb") as f:
                f.write(st_with_step(data, step))
        elif raw:
            with open(src, "rb") as f:
                data = f.read()
            n = struct.unpack("<Q", data[:8])[0]
            with open(out, "wb") as f:
                f.write(data[8 + n:])
        else:
            with open(src, "rb") as f:
                data = f.read()
            with open(out, "wb") as f:
                f.write(data)
        fd = os.open(out, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if via:
            os.replace(out, dst)


def make_sched(opt, args):
    """The learning-rate schedule of --sched (None: constant)."""
    if args.sched == "const":
        return None
    total = args.ckpts * args.every
    warm = max(1, total // 10)

    def factor(i):
        if i < warm:
            return (i + 1) / warm
        t = (i - warm) / max(1, total - warm)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train(model, opt, sched, chain, g, steps, n):
    """steps training steps from step n; returns the last loss and the step."""
    for _ in range(steps):
        loss = step(model, opt, chain, g)
        n += 1
        if sched:
            sched.step()
    return loss, n


def ckpt_obj(model, opt, sched, n):
    """What a training script saves: model, optimizer (and scheduler), step."""
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": n}
    if sched:
        obj["scheduler"] = sched.state_dict()
    return obj


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest", nargs="+")
    ap.add_argument("--resave", action="store_true",
                    help="the arguments are SRC DST pairs to write again")
    ap.add_argument("--via", help="with --resave: write to this name, then rename")
    ap.add_argument("--st-step", action="store_true",
                    help="with --resave: add the step (from SRC's name) to a safetensors "
                         "file's __metadata__")
    ap.add_argument("--raw", action="store_true",
                    help="with --resave: write a safetensors file's tensor bytes alone")
    ap.add_argument("--ckpts", type=int, default=10)
    ap.add_argument("--every", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--sched", choices=["const", "cosine"], default="const",
                    help="cosine: linear warmup over the first 10%% of the steps, then "
                         "cosine decay to lr/10 (as most training scripts do); the "
                         "checkpoints then also hold the scheduler's state, so their "
                         "pickles differ in more than the step")
    args = ap.parse_args()
    if args.resave:
        resave(args.dest, args.via, args.st_step, args.raw)
        return

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(args.seed + 1)
    model = GPT()
    nparam = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, args.beta2),
                            weight_decay=0.1)
    sched = make_sched(opt, args)
    chain = markov_chain(args.seed + 2)
    n = 0
    for k in range(1, args.ckpts + 1):
        loss, n = train(model, opt, sched, chain, g, args.every, n)
        full = ckpt_obj(model, opt, sched, n)
        save_all(args.dest, "full", f"ckpt-{n:06d}.pt", full)
        save_all(args.dest, "latest", "latest.pt", full)
        save_all(args.dest, "bf16", f"model-{n:06d}.safetensors",
                 {k2: v.to(torch.bfloat16) for k2, v in model.state_dict().items()})
        print(f"train_series: pretrain step {n} loss {loss:.3f}", file=sys.stderr)

    # Fine-tune on another chain: only the last block and the final norm train.
    for p in model.parameters():
        p.requires_grad_(False)
    tuned = list(model.blocks[-1].parameters()) + list(model.ln.parameters())
    for p in tuned:
        p.requires_grad_(True)
    ntrain = sum(p.numel() for p in tuned)
    opt = torch.optim.AdamW(tuned, lr=args.lr, betas=(0.9, args.beta2), weight_decay=0.1)
    sched = make_sched(opt, args)
    chain = markov_chain(args.seed + 3)
    for k in range(1, args.ckpts + 1):
        loss, n = train(model, opt, sched, chain, g, args.every, n)
        save_all(args.dest, "ft", f"ft-{n:06d}.pt", ckpt_obj(model, opt, sched, n))
        print(f"train_series: fine-tune step {n} loss {loss:.3f}", file=sys.stderr)
    print(f"train_series: {nparam} parameters ({ntrain} trainable in the fine-tune), "
          f"{args.ckpts} checkpoints per series every {args.every} steps", file=sys.stderr)


if __name__ == "__main__":
    main()
