#!/usr/bin/python3
"""gcreaders.py - readers against the online gc and rebase (it_gc_readers).

  gcreaders.py setup MNT REF SEED
      write the initial files: distinct random files and bf16 series
      (SERIES directories of versions v0, v1, ...), a copy of each under REF
  gcreaders.py run MNT REF SEED SECONDS READERS
      READERS reader processes loop over random files of REF (full reads,
      random ranges with pread, O_DIRECT pread and dd skip/count, mmap) through MNT and
      compare; one writer deletes a third of the random files and old series
      versions and writes new files and series versions, in waves
  gcreaders.py verify MNT REF
      every file of REF reads back equal through MNT, and MNT holds nothing
      else

A file's copy appears in REF (rename) only after the file was written and
closed in MNT, and goes from REF before the file is deleted from MNT; names
are never reused.  So a reader that opened a file in MNT must read exactly
the bytes of its copy (an unlinked file stays readable while open): any
difference or any error but ENOENT at open fails the run.  Before every read
the kernel's page cache of the file is dropped (mixfs opens with keep_cache),
so reads reach the daemon.
"""
import errno
import json
import mmap
import multiprocessing as mp
import os
import random
import re
import struct
import subprocess
import sys
import time

import numpy as np

MiB = 1 << 20
N_RANDOM = 28  # initial distinct random files
N_SERIES = 4   # series directories
V_INIT = 3     # initial versions per series
SERIES_ELEMS = 640 * 1024  # bf16 elements per version (1.25 MiB)
EXTEND = 90    # s the run may go past SECONDS for the daemon log (see writer)


def rand_bytes(rng, n):
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def put(mnt, ref, rel, data):
    """Write rel in the mount, then publish its copy in REF (atomically)."""
    p = os.path.join(mnt, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    q = os.path.join(ref, rel)
    os.makedirs(os.path.dirname(q), exist_ok=True)
    with open(q + ".tmp", "wb") as f:
        f.write(data)
    os.rename(q + ".tmp", q)


def remove(mnt, ref, rel):
    os.unlink(os.path.join(ref, rel))
    os.unlink(os.path.join(mnt, rel))


class Series:
    """A bf16 safetensors series: a third of the weights drift per version."""

    def __init__(self, k, seed):
        self.k = k
        self.rng = np.random.default_rng(seed)
        self.w = self.rng.normal(0.0, 0.02, SERIES_ELEMS).astype(np.float32)
        h = json.dumps({"w": {"dtype": "BF16", "shape": [SERIES_ELEMS // 1024, 1024],
                              "data_offsets": [0, 2 * SERIES_ELEMS]}}).encode()
        self.head = struct.pack("<Q", len(h) + (-len(h) % 8)) + h + b" " * (-len(h) % 8)
        self.v = 0

    def next(self):
        b = (self.w.view(np.uint32) >> 16).astype("<u2").tobytes()
        rel = "s%d/v%03d.safetensors" % (self.k, self.v)
        self.v += 1
        idx = self.rng.choice(SERIES_ELEMS, SERIES_ELEMS // 3, replace=False)
        self.w[idx] *= (1.0 + self.rng.normal(0.0, 0.004, idx.size)).astype(np.float32)
        return rel, self.head + b


def ref_files(ref):
    out = []
    for d, _, fs in os.walk(ref):
        for f in fs:
            if not f.endswith(".tmp"):
                out.append(os.path.relpath(os.path.join(d, f), ref))
    return sorted(out)


def state_path(ref):
    return os.path.join(os.path.dirname(ref), "gcreaders.state")


def setup(mnt, ref, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(ref, exist_ok=True)
    for i in range(N_RANDOM):
        n = int(rng.integers(MiB, 2 * MiB))
        put(mnt, ref, "r/f%04d" % i, rand_bytes(rng, n))
    series = [Series(k, seed * 100 + k) for k in range(N_SERIES)]
    for _ in range(V_INIT):
        for s in series:
            put(mnt, ref, *s.next())
    with open(state_path(ref), "wb") as f:
        import pickle
        pickle.dump({"next_random": N_RANDOM, "series": series}, f)


def fail(q, who, msg):
    q.put(("FAIL", who, msg))


def drop_cache(fd):
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def reader(mnt, ref, seed, stop, q, who):
    rng = random.Random(seed)
    st = {"reads": 0, "bytes": 0, "gone": 0, "full": 0, "direct": 0, "range": 0, "dd": 0,
          "mmap": 0}
    try:
        while not stop.is_set():
            names = ref_files(ref)
            if not names:
                time.sleep(0.05)
                continue
            rel = rng.choice(names)
            try:
                with open(os.path.join(ref, rel), "rb") as f:
                    want = f.read()
            except FileNotFoundError:
                continue  # deleted meanwhile
            p = os.path.join(mnt, rel)
            mode = rng.random()
            try:
                # O_DIRECT: straight to the daemon, no kernel readahead
                # that would retry a failed page quietly
                fd = os.open(p, os.O_RDONLY | (os.O_DIRECT if 0.25 <= mode < 0.5 else 0))
            except FileNotFoundError:
                st["gone"] += 1
                continue
            try:
                if os.fstat(fd).st_size != len(want):
                    fail(q, who, "%s: size %d, expected %d" % (rel, os.fstat(fd).st_size, len(want)))
                    return
                for _ in range(3):
                    drop_cache(fd)
                    if mode < 0.25:
                        st["full"] += 1
                        got, off = os.pread(fd, len(want) + 1, 0), 0
                    elif mode < 0.7:
                        st["direct" if mode < 0.5 else "range"] += 1
                        off = rng.randrange(len(want))
                        n = rng.randint(1, min(len(want) - off, 512 * 1024))
                        got = os.pread(fd, n, off)
                        want_r = want[off:off + n]
                    elif mode < 0.85:
                        st["mmap"] += 1
                        with mmap.mmap(fd, len(want), prot=mmap.PROT_READ) as m:
                            off = rng.randrange(len(want))
                            n = rng.randint(1, min(len(want) - off, 256 * 1024))
                            got = m[off:off + n]
                    else:
                        # dd, in 4 KiB blocks: its own open (of a file
                        # that may be gone by now)
                        st["dd"] += 1
                        nb = (len(want) + 4095) // 4096
                        skip = rng.randrange(nb)
                        count = rng.randint(1, min(nb - skip, 64))
                        off = skip * 4096
                        r = subprocess.run(["dd", "if=" + p, "bs=4096", "skip=%d" % skip,
                                            "count=%d" % count, "iflag=nocache", "status=none"],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                        if r.returncode != 0:
                            if b"No such file" in r.stderr:
                                st["gone"] += 1
                                break
                            fail(q, who, "%s: dd skip=%d count=%d: %s" %
                                 (rel, skip, count, r.stderr.decode(errors="replace").strip()))
                            return
                        got = r.stdout
                        n = min(count * 4096, len(want) - off)
                    if mode < 0.25:
                        exp = want
                    else:
                        exp = want[off:off + n]
                    st["reads"] += 1
                    st["bytes"] += len(got)
                    if got != exp:
                        bad = next((i for i in range(min(len(got), len(exp))) if got[i] != exp[i]),
                                   min(len(got), len(exp)))
                        fail(q, who, "%s: WRONG BYTES at offset %d (read of %d at %d returned %d bytes)" %
                             (rel, off + bad, len(exp), off, len(got)))
                        return
            except OSError as ex:
                fail(q, who, "%s: %s" % (rel, ex))
                return
            finally:
                os.close(fd)
        q.put(("OK", who, st))
    except Exception as ex:  # a bug of the script must fail too
        fail(q, who, "reader crashed: %r" % (ex,))


def log_seen(mlog):
    """(compacted, rebased) since the run began, from the daemon log that
    IT_GCR_LOG names (read from byte IT_GCR_LOG_AT); None without one."""
    if not mlog:
        return None
    path, at = mlog
    try:
        with open(path, "rb") as f:
            f.seek(at)
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    compacted = any(int(n) > 0 for n in re.findall(r"online gc of .*: (\d+) packs compacted", text))
    rebased = re.search(r"rebase in .*: \d+ chunks made full", text) is not None
    return (compacted, rebased)


def log_pending(mlog):
    """True while the daemon log (if any) lacks a compacting gc pass or a
    rebase group."""
    seen = log_seen(mlog)
    return seen is not None and not all(seen)


def writer(mnt, ref, seed, deadline, stop, q):
    import pickle
    rng = np.random.default_rng(seed + 7)
    with open(state_path(ref), "rb") as f:
        s = pickle.load(f)
    nxt, series = s["next_random"], s["series"]
    st = {"waves": 0, "deleted": 0, "written": 0, "versions": 0, "series_deleted": 0}
    mlog = None
    if os.environ.get("IT_GCR_LOG"):
        mlog = (os.environ["IT_GCR_LOG"], int(os.environ.get("IT_GCR_LOG_AT", "0")))
    try:
        # past the deadline only until the daemon has logged what the test
        # checks (a slow build, TSan, manages 2 waves in 35 s), EXTEND s
        # at most
        while time.monotonic() < deadline or (
                time.monotonic() < deadline + EXTEND and log_pending(mlog)):
            rnd = [n for n in ref_files(ref) if n.startswith("r/")]
            # a third of the random files goes (packs become half dead)
            for rel in rng.permutation(rnd)[:max(1, len(rnd) // 3)]:
                remove(mnt, ref, rel)
                st["deleted"] += 1
            # as many new ones (distinct contents)
            for _ in range(max(1, len(rnd) // 3)):
                put(mnt, ref, "r/f%04d" % nxt, rand_bytes(rng, int(rng.integers(MiB, 2 * MiB))))
                nxt += 1
                st["written"] += 1
            # a new version of every series; its oldest versions go, and
            # sometimes the newest but one as well, so rebase makes the new
            # one full and frees the chunks it was coded against
            for s_ in series:
                vers = sorted(n for n in ref_files(ref) if n.startswith("s%d/" % s_.k))
                put(mnt, ref, *s_.next())
                st["versions"] += 1
                if len(vers) > 3:
                    remove(mnt, ref, vers[0])
                    st["series_deleted"] += 1
                if rng.random() < 0.3 and vers:
                    remove(mnt, ref, vers[-1])
                    st["series_deleted"] += 1
            os.sync()
            st["waves"] += 1
            # idle: rebase and gc run.  Until the daemon has logged an
            # online gc pass that compacted a pack and a rebase group, the
            # writer waits for one (up to 10 s; a slow build, ASan, codes
            # the wave's batches for longer than the usual 0.5-1.5 s)
            quiet = 0.5 + float(rng.random())
            t0 = time.monotonic()
            while (time.monotonic() < deadline + EXTEND and time.monotonic() - t0 < 10
                   and log_pending(mlog)):
                time.sleep(0.2)
            st["waited"] = st.get("waited", 0) + round(time.monotonic() - t0, 1)
            time.sleep(quiet)
        st["overtime"] = round(max(0.0, time.monotonic() - deadline), 1)
        q.put(("OK", "writer", st))
    except Exception as ex:
        fail(q, "writer", "writer failed: %r" % (ex,))
    finally:
        stop.set()  # the readers stop with the writer


def run(mnt, ref, seed, seconds, nreaders):
    deadline = time.monotonic() + seconds
    q = mp.Queue()
    stop = mp.Event()
    procs = [mp.Process(target=reader, args=(mnt, ref, seed * 1000 + i, stop, q, "reader%d" % i))
             for i in range(nreaders)]
    procs.append(mp.Process(target=writer, args=(mnt, ref, seed, deadline, stop, q)))
    for p in procs:
        p.start()
    results, bad = [], False
    end = time.monotonic() + seconds + EXTEND + 120
    while len(results) < len(procs) and time.monotonic() < end:
        try:
            r = q.get(timeout=1)
        except Exception:
            if any(p.exitcode not in (None, 0) for p in procs):
                stop.set()
                break
            continue
        results.append(r)
        print("%s: %s %s" % (r[1], r[0], r[2]), file=sys.stderr, flush=True)
        if r[0] != "OK":
            bad = True
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    if len(results) < len(procs):
        print("only %d of %d processes reported" % (len(results), len(procs)), file=sys.stderr)
        bad = True
    if not bad:
        tot = {}
        for r in results:
            if r[1].startswith("reader"):
                for k, v in r[2].items():
                    tot[k] = tot.get(k, 0) + v
        print("readers: %s" % tot, file=sys.stderr)
        if tot.get("reads", 0) < 50 * nreaders:
            print("too few reads: %d" % tot.get("reads", 0), file=sys.stderr)
            bad = True
    return 1 if bad else 0


def verify(mnt, ref):
    want = ref_files(ref)
    got = []
    for d, _, fs in os.walk(mnt):
        for f in fs:
            got.append(os.path.relpath(os.path.join(d, f), mnt))
    if sorted(got) != want:
        print("names differ: only in mount %s, only in ref %s" %
              (sorted(set(got) - set(want))[:10], sorted(set(want) - set(got))[:10]), file=sys.stderr)
        return 1
    for rel in want:
        with open(os.path.join(ref, rel), "rb") as a, open(os.path.join(mnt, rel), "rb") as b:
            if a.read() != b.read():
                print("%s differs" % rel, file=sys.stderr)
                return 1
    print("verified %d files" % len(want), file=sys.stderr)
    return 0


def main():
    cmd = sys.argv[1]
    if cmd == "setup":
        setup(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    if cmd == "run":
        return run(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))
    if cmd == "verify":
        return verify(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
