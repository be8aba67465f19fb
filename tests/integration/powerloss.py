#!/usr/bin/python3
"""powerloss.py - power-loss crash states of a mixfs store, for it_powerloss.sh.

From a copy of the store taken before the daemon started (--init, with the
inode numbers of the real store's files in --inos) and the log powerrec.so
wrote while the daemon ran (--log, --blob; format in powerrec.c), build
crash states the way CrashMonkey / ALICE do and check each one.

A crash point k is a prefix of the log: nothing logged at or after line k
happened.  Durable by then (always in the state):
  - a write / ftruncate / fallocate of a file, once an fsync or fdatasync of
    that file BEGAN after it and RETURNED 0 before k;
  - a file creation or unlink, once its directory was fsync'd the same way.
Not yet durable (a random choice per state, "mode"):
  none    nothing of it;
  all     all of it, in order;
  prefix  per file, its pending data operations up to a random point (the
          order a write-back in order would leave); names: a random prefix;
  random  each pending write independently, 30% of the chosen ones torn
          (a random subset of their 4 KiB blocks), truncates/punches each
          with probability 1/2; names: a random prefix (a journaling file
          system commits name changes in order).
The workload adds its own lines: "B PATH" before it starts changing a file
of the mount, "M PATH SHA256" after fsync of it returned 0.  At crash point
k, each PATH whose last such line before k is an M must read back with
that SHA-256 through a mount.

Checks per state: `mixfs fsck` exits 0 (no problem; orphan bytes are not
problems), `mixfs mount` works, every file fsync'd as above is bit-exact,
the daemon exits 0 after the unmount, and fsck exits 0 again after that
mount (its recovery: orphan reaping, a new pack).
Exit status: 0 all states passed, 1 some failed (the first failing states
are kept under --work/fail-*), 2 the log could not be modelled.
"""
import argparse
import hashlib
import json
import mmap
import os
import random
import shutil
import subprocess
import sys
import time

BLOCK = 4096
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


class ModelError(Exception):
    pass


class File:
    __slots__ = ("durable", "pending")

    def __init__(self, data=b""):
        self.durable = bytearray(data)
        self.pending = []  # (lineno, op) in log order


def apply_op(buf, op, blob, rng=None, torn=False):
    kind = op[0]
    if kind == "W":
        _, off, ln, bo = op
        data = blob[bo:bo + ln]
        if not torn:
            if len(buf) < off + ln:
                buf.extend(bytes(off + ln - len(buf)))
            buf[off:off + ln] = data
            return
        # torn: a random subset of the 4 KiB blocks the write touches
        b = off - off % BLOCK
        while b < off + ln:
            lo, hi = max(b, off), min(b + BLOCK, off + ln)
            if rng.random() < 0.5:
                if len(buf) < hi:
                    buf.extend(bytes(hi - len(buf)))
                buf[lo:hi] = data[lo - off:hi - off]
            b += BLOCK
    elif kind == "T":
        ln = op[1]
        if ln < len(buf):
            del buf[ln:]
        else:
            buf.extend(bytes(ln - len(buf)))
    elif kind == "F":
        _, mode, off, ln = op
        if mode == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
            end = min(off + ln, len(buf))
            if off < end:
                buf[off:end] = bytes(end - off)
        elif mode in (0, FALLOC_FL_KEEP_SIZE):
            if mode == 0 and off + ln > len(buf):
                buf.extend(bytes(off + ln - len(buf)))
        else:
            raise ModelError("fallocate mode %#x not modelled" % mode)


class Model:
    def __init__(self, init_dir, inos_file, store, blob):
        self.store = store.rstrip("/")
        self.blob = blob
        self.files = {}  # fid -> File
        self.ino2fid = {}
        self.ns = {}  # relpath -> fid, or "dir"
        self.ns_pending = []  # (lineno, kind, rel, fid)
        self.sb = {}  # sync id -> (lineno, ino, isdir, rel)
        self.expect = {}  # mount path -> (lineno, sha or None)
        self.next_fid = 0
        self.stats = {"W": 0, "T": 0, "F": 0, "C": 0, "U": 0, "sync": 0, "dirsync": 0,
                      "failed_sync": 0, "write_errors": 0, "M": 0, "B": 0}
        inos = {}
        with open(inos_file) as f:
            for line in f:
                ino, rel = line.rstrip("\n").split(" ", 1)
                inos[rel] = int(ino)
        for root, dirs, fnames in os.walk(init_dir):
            rel_root = os.path.relpath(root, init_dir)
            rel_root = "" if rel_root == "." else rel_root
            if rel_root:
                self.ns[rel_root] = "dir"
            for n in fnames:
                rel = os.path.join(rel_root, n)
                with open(os.path.join(root, n), "rb") as fh:
                    fid = self.new_file(fh.read())
                self.ns[rel] = fid
                if rel not in inos:
                    raise ModelError("no inode number for initial file %s" % rel)
                self.ino2fid[inos[rel]] = fid

    def new_file(self, data=b""):
        fid = self.next_fid
        self.next_fid += 1
        self.files[fid] = File(data)
        return fid

    def rel(self, path):
        if path.endswith(" (deleted)"):
            path = path[:-len(" (deleted)")]
        if path == self.store:
            return ""
        if not path.startswith(self.store + "/"):
            raise ModelError("path outside the store: %s" % path)
        return path[len(self.store) + 1:]

    def fid_of(self, ino, lineno):
        if ino not in self.ino2fid:
            raise ModelError("line %d: inode %d never created nor initial" % (lineno + 1, ino))
        return self.ino2fid[ino]

    def step(self, i, line):
        f = line.split(" ")
        k = f[0]
        if k == "W":
            ino, off, ln, bo, ds = map(int, f[1:6])
            if ds:
                raise ModelError("line %d: O_DSYNC write not modelled" % (i + 1))
            self.files[self.fid_of(ino, i)].pending.append((i, ("W", off, ln, bo)))
            self.stats["W"] += 1
        elif k == "WE":
            self.stats["write_errors"] += 1
        elif k == "T":
            ino, ln = int(f[1]), int(f[2])
            self.files[self.fid_of(ino, i)].pending.append((i, ("T", ln)))
            self.stats["T"] += 1
        elif k == "F":
            ino, mode, off, ln = map(int, f[1:5])
            self.files[self.fid_of(ino, i)].pending.append((i, ("F", mode, off, ln)))
            self.stats["F"] += 1
        elif k == "SB":
            sid, ino, isdir = int(f[1]), int(f[2]), int(f[3])
            self.sb[sid] = (i, ino, isdir, self.rel(line.split(" ", 4)[4]))
        elif k == "SE":
            sid, rc = int(f[1]), int(f[2])
            s, ino, isdir, rel = self.sb.pop(sid)
            if rc != 0:
                self.stats["failed_sync"] += 1
                return
            if isdir:
                self.stats["dirsync"] += 1
                keep = []
                for op in self.ns_pending:
                    if op[0] < s and os.path.dirname(op[2]) == rel:
                        self.ns_apply(self.ns, op)
                    else:
                        keep.append(op)
                self.ns_pending = keep
            else:
                self.stats["sync"] += 1
                fl = self.files[self.fid_of(ino, i)]
                n = 0
                while n < len(fl.pending) and fl.pending[n][0] < s:
                    apply_op(fl.durable, fl.pending[n][1], self.blob)
                    n += 1
                del fl.pending[:n]
        elif k == "C":
            ino, isdir = int(f[1]), int(f[2])
            rel = self.rel(line.split(" ", 3)[3])
            fid = "dir" if isdir else self.new_file()
            if not isdir:
                self.ino2fid[ino] = fid
            self.ns_pending.append((i, "C", rel, fid))
            self.stats["C"] += 1
        elif k == "U":
            rel = self.rel(line.split(" ", 2)[2])
            self.ns_pending.append((i, "U", rel, None))
            self.stats["U"] += 1
        elif k == "M":
            self.expect[f[1]] = (i, f[2])
            self.stats["M"] += 1
        elif k == "B":
            self.expect[f[1]] = (i, None)
            self.stats["B"] += 1
        elif k == "X":
            raise ModelError("line %d: call not modelled: %s" % (i + 1, line))
        else:
            raise ModelError("line %d: unknown record: %s" % (i + 1, line))

    @staticmethod
    def ns_apply(ns, op):
        _, kind, rel, fid = op
        if kind == "C":
            ns[rel] = fid
        else:
            ns.pop(rel, None)

    def materialize(self, out, mode, rng):
        """Write one crash state of the current point into out."""
        ns = dict(self.ns)
        p = self.ns_pending
        r = {"none": 0, "all": len(p)}.get(mode, rng.randint(0, len(p)))
        for op in p[:r]:
            self.ns_apply(ns, op)
        os.makedirs(out)
        os.chmod(out, 0o700)
        torn = 0
        for rel in sorted(ns, key=lambda x: (ns[x] != "dir", x)):
            if ns[rel] == "dir":
                os.makedirs(os.path.join(out, rel), exist_ok=True)
                continue
            fl = self.files[ns[rel]]
            if mode == "none" or not fl.pending:
                buf = fl.durable
            else:
                buf = bytearray(fl.durable)
                if mode == "all":
                    for _, op in fl.pending:
                        apply_op(buf, op, self.blob)
                elif mode == "prefix":
                    for _, op in fl.pending[:rng.randint(0, len(fl.pending))]:
                        apply_op(buf, op, self.blob)
                else:
                    for _, op in fl.pending:
                        if rng.random() < 0.5:
                            continue
                        t = op[0] == "W" and rng.random() < 0.3
                        torn += t
                        apply_op(buf, op, self.blob, rng, t)
            path = os.path.join(out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(buf)
        pend_w = sum(len(self.files[fid].pending) for fid in set(ns.values()) if fid != "dir")
        return {"names_pending": len(p), "names_applied": r, "data_ops_pending": pend_w, "torn": torn}


def run(cmd, timeout, **kw):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, **kw)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return -999, "timeout after %s s: %s" % (timeout, (e.stdout or b"").decode("utf-8", "replace"))


def is_mounted(mnt):
    return subprocess.run(["mountpoint", "-q", mnt]).returncode == 0


def check_state(args, state, expect):
    """Return a list of problems (empty: the state passed)."""
    probs = []
    rc, out = run([args.mixfs, "fsck", state], 300)
    if rc != 0:
        return ["fsck (before mount) exited %d:\n%s" % (rc, out[-3000:])]
    mnt = os.path.join(args.work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    log = open(os.path.join(args.work, "mount.log"), "w+")
    opts = ["-o", args.mount_opts] if args.mount_opts else []
    d = subprocess.Popen([args.mixfs, "mount", "-f"] + opts + [state, mnt], stdout=log,
                         stderr=subprocess.STDOUT)
    t0 = time.time()
    while not is_mounted(mnt):
        if d.poll() is not None or time.time() - t0 > 30:
            if d.poll() is None:
                d.kill()
            d.wait()
            log.seek(0)
            return ["mount failed (exit %s): %s" % (d.returncode, log.read()[-2000:])]
        time.sleep(0.05)
    try:
        for path, (_, sha) in sorted(expect.items()):
            if sha is None:
                continue
            try:
                h = hashlib.sha256()
                with open(os.path.join(mnt, path), "rb") as fh:
                    while True:
                        b = fh.read(1 << 20)
                        if not b:
                            break
                        h.update(b)
                got = h.hexdigest()
            except OSError as e:
                got = "error: %s" % e
            if got != sha:
                probs.append("fsync'd file %s: expected sha256 %s, got %s" % (path, sha, got))
    finally:
        for _ in range(100):
            if subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        try:
            rc = d.wait(60)
        except subprocess.TimeoutExpired:
            d.kill()
            rc = d.wait()
        if rc != 0:
            log.seek(0)
            probs.append("daemon exited %d after unmount: %s" % (rc, log.read()[-2000:]))
    rc, out = run([args.mixfs, "fsck", state], 300)
    if rc != 0:
        probs.append("fsck (after mount) exited %d:\n%s" % (rc, out[-3000:]))
    return probs


def pick_points(lines, n, rng):
    """Crash points: before a sync begins (most pending), after one returns,
    right after an fsync marker, and uniform; the end of the log, and just
    after each destructive call, too (so n is a lower bound)."""
    sb = [i for i, l in enumerate(lines) if l.startswith("SB ")]
    se = [i + 1 for i, l in enumerate(lines) if l.startswith("SE ")]
    mk = [i + 1 for i, l in enumerate(lines) if l.startswith("M ")]
    modes = ["none", "all", "prefix", "random", "random"]
    pts = {(len(lines), "none"), (len(lines), "random")}
    # Every destructive call (unlink, punch, truncate): right after it, and
    # right after the next directory or file sync returned, nothing else
    # pending: was what it destroyed durably unreferenced?
    for i, l in enumerate(lines):
        if l[:2] in ("U ", "F ", "T "):
            pts.add((i + 1, "none"))
            nxt = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("SE ")), None)
            if nxt is not None:
                pts.add((nxt + 1, "none"))
    tries = 0
    while len(pts) < n and tries < 50 * n:
        tries += 1
        r = rng.random()
        src = sb if r < 0.45 else se if r < 0.65 else mk if r < 0.75 else None
        k = rng.choice(src) if src else rng.randint(0, len(lines))
        pts.add((k, rng.choice(modes)))
    return sorted(pts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--blob", required=True)
    ap.add_argument("--init", required=True, help="copy of the store before the daemon started")
    ap.add_argument("--inos", required=True, help="'INO RELPATH' of the real store's files then")
    ap.add_argument("--store", required=True, help="the store path the recorder saw")
    ap.add_argument("--mixfs", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--states", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mount-opts", default="")
    ap.add_argument("--keep-failures", type=int, default=3)
    ap.add_argument("--only", default="", help="check only these comma-separated state numbers")
    args = ap.parse_args()

    with open(args.log) as f:
        lines = f.read().splitlines()
    bf = open(args.blob, "rb")
    blob = mmap.mmap(bf.fileno(), 0, prot=mmap.PROT_READ) if os.path.getsize(args.blob) else b""
    rng = random.Random(args.seed)
    points = pick_points(lines, args.states, rng)
    only = {int(x) for x in args.only.split(",") if x}
    try:
        model = Model(args.init, args.inos, os.path.realpath(args.store), blob)
        # A dry pass over the whole log: refuse what cannot be modelled
        # before spending time on states; collect what the log holds.
        dry = Model(args.init, args.inos, os.path.realpath(args.store), blob)
        for i, l in enumerate(lines):
            dry.step(i, l)
    except ModelError as e:
        print("powerloss: MODEL ERROR: %s" % e, file=sys.stderr)
        return 2
    print("powerloss: log %d lines, blob %d bytes; %s; %d crash states, seed %d" %
          (len(lines), len(blob), json.dumps(dry.stats), len(points), args.seed), file=sys.stderr)
    del dry
    failed = kept = checked = 0
    pos = 0
    t0 = time.time()
    for n, (k, mode) in enumerate(points):
        while pos < k:
            model.step(pos, lines[pos])
            pos += 1
        if only and n not in only:
            continue
        srng = random.Random(args.seed * 1000003 + n)
        state = os.path.join(args.work, "state")
        shutil.rmtree(state, ignore_errors=True)
        info = model.materialize(state, mode, srng)
        expect = {p: v for p, v in model.expect.items()}
        nexp = sum(1 for v in expect.values() if v[1])
        probs = check_state(args, state, expect)
        checked += 1
        desc = "state %d: crash before line %d/%d, mode %s, %s, %d fsync'd files" % (
            n, k + 1, len(lines), mode, json.dumps(info), nexp)
        if probs:
            failed += 1
            print("powerloss: FAIL %s" % desc, file=sys.stderr)
            for p in probs:
                print("  " + p.replace("\n", "\n  "), file=sys.stderr)
            if kept < args.keep_failures:
                # the crash state as materialized (the checks changed it)
                keep = os.path.join(args.work, "fail-%d" % n)
                shutil.rmtree(keep, ignore_errors=True)
                model.materialize(keep, mode, random.Random(args.seed * 1000003 + n))
                print("  kept in %s (replay: --seed %d --only %d)" % (keep, args.seed, n),
                      file=sys.stderr)
                kept += 1
        elif os.environ.get("POWERLOSS_VERBOSE"):
            print("powerloss: ok %s" % desc, file=sys.stderr)
    shutil.rmtree(os.path.join(args.work, "state"), ignore_errors=True)
    print("powerloss: %d crash states checked, %d failed, %.0f s" %
          (checked, failed, time.time() - t0), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
