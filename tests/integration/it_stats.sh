#!/bin/bash
# mixfs stats, xattrs and st_blocks against independently computed numbers.
#
# A known workload goes through a real mount: random bytes, two copies of
# them and a hard link, a bf16 and an fp32 tensor, a sparse file, then an
# overwrite, truncates and deletes.  Every JSON field of "mixfs stats" is
# checked against what the test wrote (sizes, duplicated bytes, holes),
# against the kernel's view (stat, du, du --apparent-size, getfattr) and
# against the pack files on disk; per-file rows must add up to the totals.
# Checked while mounted (after sync) and on the unmounted store.  Then
# checkpoint series: the series-coded counters, and per-file bytes after
# dedup that stay within each file's size while older versions exist.
. "$(dirname "$0")/lib.sh"
it_init
need_mixfs "mixfs stats"
command -v python3 >/dev/null || skip "python3 missing"
mixfs_mkfs
# lazy=off: the per-level numbers below are checked right after sync
# (lazy coding would store the files at fast until idle: it_lazy checks that)
mixfs_mount fg lazy=off

MIB=1048576
R=$((3 * MIB)) # random bytes, stored three times (dedup)
B=$((4 * MIB)) # bf16 tensor
F=$((2 * MIB)) # fp32 tensor
S=$((1 * MIB)) # data inside the sparse file
SPARSE=$((8 * MIB))
O=$((2 * MIB)) # overwritten file
# The bar chart's block characters U+2588..U+258F as UTF-8 bytes (the test
# runs with LC_ALL=C, where $'\u2588' would not expand).
BLOCKS=$'\xe2\x96[\x88-\x8f]'
STORE_ABS=$(realpath "$STORE")
MNT_ABS=$(realpath "$MNT")

# bf16 weights: the high halves of N(0, 0.02) fp32 values.
bf16_file() {
	python3 - "$1" "$2" "$3" <<'EOF'
import array, random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
n = size // 2
b = array.array("f", (rng.gauss(0.0, 0.02) for _ in range(n))).tobytes()
out = bytearray(2 * n)
out[0::2] = b[2::4]  # little-endian: bytes 2, 3 of a float are its bf16
out[1::2] = b[3::4]
open(path, "wb").write(out)
EOF
	[ "$(stat -c %s "$1")" = "$2" ] || fail "bf16_file $1 short"
}

# Sum of the pack files' sizes.
pack_file_bytes() {
	local n=0 f
	for f in "$STORE"/packs/*.pack; do
		[ -e "$f" ] || continue
		n=$((n + $(stat -c %s "$f")))
	done
	echo "$n"
}

# Logical bytes as du --apparent-size sees them (hard links once), and as
# the sum of stat sizes over distinct inodes: both must agree.
du_logical() {
	local a b
	a=$(find "$MNT" -type f -print0 | du -cb --apparent-size --files0-from=- | tail -n 1 | cut -f1)
	b=$(find "$MNT" -type f -printf '%i %s\n' | sort -u | awk '{ s += $2 } END { print s + 0 }')
	check_eq "du --apparent-size vs sum of stat sizes" "$a" "$b"
	echo "$a"
}

# One line per file for the checker: path<TAB>size<TAB>blocks<TAB>du_bytes<TAB>
# du_apparent<TAB>xattr stored<TAB>xattr ratio<TAB>xattr dtype<TAB>links
file_facts() {
	local f rel x_st x_ra x_dt
	while IFS= read -r -d '' f; do
		rel=${f#"$MNT"}
		# read by name; not listed (rsync -X and cp --preserve=xattr
		# would copy them and fail to set them)
		getfattr -d --absolute-names "$f" >"$WORK/xattr" 2>&1 || fail "getfattr -d $f: $(cat "$WORK/xattr")"
		! grep -q 'user\.mixfs' "$WORK/xattr" || fail "getfattr -d $f lists user.mixfs.*: $(cat "$WORK/xattr")"
		x_st=$(getfattr --only-values -n user.mixfs.stored_bytes "$f")
		x_ra=$(getfattr --only-values -n user.mixfs.ratio "$f")
		x_dt=$(getfattr --only-values -n user.mixfs.dtype "$f")
		[ -n "$x_st" ] && [ -n "$x_ra" ] && [ -n "$x_dt" ] ||
			fail "getfattr -n user.mixfs.* of $f: '$x_st' '$x_ra' '$x_dt'"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rel" "$(stat -c %s "$f")" \
			"$(stat -c %b "$f")" "$(du -B1 "$f" | cut -f1)" \
			"$(du -B1 --apparent-size "$f" | cut -f1)" "$x_st" "$x_ra" "$x_dt" \
			"$(stat -c %h "$f")"
	done < <(find "$MNT" -type f -print0)
}

# check_stats JSON EXPECT FACTS: every field of a whole-store --files
# result against the expectations (a JSON object) and the file facts.
check_stats() {
	python3 - "$@" <<'EOF' || fail "stats check failed (see above)"
import json, sys
got = json.load(open(sys.argv[1]))
exp = json.load(open(sys.argv[2]))
facts = {}
for line in open(sys.argv[3]):
    p, size, blocks, du, dua, xs, xr, xd, links = line.rstrip("\n").split("\t")
    facts[p] = dict(size=int(size), blocks=int(blocks), du=int(du), dua=int(dua),
                    xs=int(xs), xr=float(xr), xd=xd, links=int(links))
bad = []
def want(what, cond, detail=""):
    if not cond:
        bad.append("%s %s" % (what, detail))
def eq(key, value, obj=got, name=None):
    want(name or key, obj.get(key) == value, "expected %r, got %r" % (value, obj.get(key)))

keys = ["schema", "store", "mount", "path", "scope", "default_level", "file_count",
        "logical_bytes", "mapped_bytes", "sparse_bytes", "unique_bytes", "stored_bytes",
        "dedup_saved_bytes", "compression_saved_bytes", "ratio", "dedup_ratio",
        "compression_ratio", "chunks", "ref_chunks", "ref_raw_bytes", "ref_stored_bytes",
        "ref_saved_bytes", "ref_fwd_chunks", "pending_bytes", "by_dtype",
        "by_level", "packs", "files"]
want("keys", sorted(got) == sorted(keys), "got %s" % sorted(got))
eq("schema", 1)
eq("store", exp["store"])
eq("mount", exp["mount"])
eq("path", "/")
eq("scope", "store")
eq("default_level", "mix")
eq("file_count", exp["files"])
eq("logical_bytes", exp["logical"])
eq("mapped_bytes", exp["mapped"])
eq("sparse_bytes", exp["logical"] - exp["mapped"])
L, M, U, S = (got[k] for k in ("logical_bytes", "mapped_bytes", "unique_bytes", "stored_bytes"))
slack = exp.get("slack", 0)  # bytes of partly used chunks kept whole (truncate)
want("unique_bytes", exp["unique"] <= U <= exp["unique"] + slack,
     "expected %d .. %d, got %d" % (exp["unique"], exp["unique"] + slack, U))
eq("dedup_saved_bytes", M - U)
want("dedup_saved_bytes", exp["dup"] - slack <= got["dedup_saved_bytes"] <= exp["dup"],
     "expected %d (- up to %d), got %d" % (exp["dup"], slack, got["dedup_saved_bytes"]))
eq("compression_saved_bytes", U - S)
# stored bytes are the live frame bytes of the packs, and the pack files
# hold exactly the live and dead frames (nothing orphaned in this test).
eq("live_bytes", S, got["packs"], "packs.live_bytes")
eq("dead_bytes", exp["pack_files"] - S, got["packs"], "packs.dead_bytes = pack files - stored")
want("packs.count", got["packs"]["count"] >= 1, str(got["packs"]))
if exp["no_dead"]:
    eq("stored_bytes", exp["pack_files"], name="stored_bytes = pack file bytes")
want("stored_bytes", S <= exp["pack_files"], "%d > pack files %d" % (S, exp["pack_files"]))
for k, n, d in (("ratio", L, S), ("dedup_ratio", M, U), ("compression_ratio", U, S)):
    want(k, abs(got[k] - n / d) < 1e-4, "expected %.4f, got %r" % (n / d, got[k]))
# 16..256 KiB chunks (a file's last chunk may be shorter)
want("chunks", U // (256 << 10) <= got["chunks"] <= U // (16 << 10) + exp["files"] + 4,
     "%d chunks for %d bytes" % (got["chunks"], U))
want("ref_chunks", 0 <= got["ref_chunks"] <= got["chunks"], str(got["ref_chunks"]))
want("ref_raw_bytes", 0 <= got["ref_raw_bytes"] <= U and
     (got["ref_raw_bytes"] == 0) == (got["ref_chunks"] == 0), str(got["ref_raw_bytes"]))
want("ref_stored_bytes", 0 <= got["ref_stored_bytes"] <= S and
     (got["ref_stored_bytes"] == 0) == (got["ref_chunks"] == 0), str(got["ref_stored_bytes"]))
want("ref_fwd_chunks", 0 <= got["ref_fwd_chunks"] <= got["ref_chunks"], str(got["ref_fwd_chunks"]))
want("ref_saved_bytes", got["ref_saved_bytes"] >= 0 and
     (got["ref_saved_bytes"] == 0 or got["ref_fwd_chunks"] < got["ref_chunks"]),
     str(got["ref_saved_bytes"]))
for name, keys in (("by_dtype", ["other", "bf16", "fp16", "fp32"]),
                   ("by_level", ["raw", "fast", "mix"])):
    part = got[name]
    want(name + " keys", sorted(part) == sorted(keys), str(sorted(part)))
    for f, tot in (("unique_bytes", U), ("stored_bytes", S)):
        s = sum(part[k][f] for k in keys)
        want(name + " sum of " + f, s == tot, "%d != %d" % (s, tot))
    for k in keys:
        u, st = part[k]["unique_bytes"], part[k]["stored_bytes"]
        r = part[k]["ratio"]
        want(name + "." + k + ".ratio", (r is None) if st == 0 else abs(r - u / st) < 1e-4, str(part[k]))
for k, lo in exp["dtype_min"].items():
    want("by_dtype." + k, got["by_dtype"][k]["unique_bytes"] >= lo,
         "unique_bytes %d < %d" % (got["by_dtype"][k]["unique_bytes"], lo))
for k, lo in exp["level_min"].items():
    want("by_level." + k, got["by_level"][k]["unique_bytes"] >= lo,
         "unique_bytes %d < %d" % (got["by_level"][k]["unique_bytes"], lo))
# Tensors compress; random bytes cost at most a frame header per chunk more.
if exp["dtype_min"].get("bf16"):
    want("bf16 compresses", got["by_dtype"]["bf16"]["ratio"] > 1.2, str(got["by_dtype"]["bf16"]))
want("raw level", got["by_level"]["raw"]["stored_bytes"] - got["by_level"]["raw"]["unique_bytes"]
     <= 64 * got["chunks"], str(got["by_level"]["raw"]))
eq("pending_bytes", got["by_level"]["fast"]["unique_bytes"],
   name="pending_bytes = fast bytes in a mix store")
want("pending_bytes", got["pending_bytes"] >= exp.get("pending_min", 0), str(got["pending_bytes"]))

# Rows: every file once, largest first, adding up to the totals.
rows = got["files"]
paths = [r["path"] for r in rows]
want("files rows", len(rows) == exp["files"], "%d rows" % len(rows))
want("files order", [r["logical_bytes"] for r in rows] ==
     sorted((r["logical_bytes"] for r in rows), reverse=True), str(paths))
for f in ("logical_bytes", "unique_bytes", "stored_bytes"):
    s = sum(r[f] for r in rows)
    want("sum of rows' " + f, s == got[f], "%d != %d" % (s, got[f]))
inodes = {}
for r in rows:
    p = r["path"]
    want("row keys", sorted(r) == sorted(["path", "ino", "links", "dtype", "logical_bytes",
                                         "unique_bytes", "stored_bytes", "ratio"]), str(r))
    want("row path " + p, p in facts, "not a file in the mount")
    if p not in facts:
        continue
    fa = facts[p]
    inodes[r["ino"]] = p
    eq("logical_bytes", fa["size"], r, p + " logical_bytes (stat size)")
    eq("links", fa["links"], r, p + " links")
    eq("dtype", fa["xd"], r, p + " dtype (user.mixfs.dtype)")
    want(p + " ratio", (r["ratio"] is None) if r["stored_bytes"] == 0 else
         abs(r["ratio"] - r["logical_bytes"] / r["stored_bytes"]) < 1e-4, str(r))
    # st_blocks and the attributes: the engine's own charge.
    want(p + " du", fa["du"] == fa["blocks"] * 512, "du -B1 %d, st_blocks %d" % (fa["du"], fa["blocks"]))
    want(p + " st_blocks", fa["blocks"] == (fa["xs"] + 511) // 512,
         "st_blocks %d, user.mixfs.stored_bytes %d" % (fa["blocks"], fa["xs"]))
    want(p + " du --apparent-size", fa["dua"] == fa["size"], "%d != %d" % (fa["dua"], fa["size"]))
    want(p + " user.mixfs.ratio", fa["size"] == 0 or abs(fa["xr"] - fa["xs"] / fa["size"]) < 1e-4,
         "%r vs %d/%d" % (fa["xr"], fa["xs"], fa["size"]))
    if p in exp["alone"]:
        # Not shared: the even split and the engine's charge agree.
        eq("stored_bytes", fa["xs"], r, p + " stored_bytes = user.mixfs.stored_bytes")
    if p in exp.get("dtypes", {}):
        eq("dtype", exp["dtypes"][p], r, p + " dtype")
want("distinct inodes", len(inodes) == len(rows), str(inodes))
# Copies of one content share its chunks evenly, and each copy's
# user.mixfs.stored_bytes charges the whole of them.
for group in exp["shared"]:
    rs = [r for r in rows if r["path"] in group]
    want("shared rows " + str(group), len(rs) == len(group), str(paths))
    if len(rs) == len(group):
        st = [r["stored_bytes"] for r in rs]
        want("even split " + str(group), max(st) - min(st) <= len(rs), str(st))
        for r in rs:
            x = facts[r["path"]]["xs"]
            want("shared " + r["path"], abs(x - sum(st)) <= len(rs),
                 "user.mixfs.stored_bytes %d, rows sum %d" % (x, sum(st)))
for b in bad:
    print("it_stats: FAIL:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

# write_expect FILE KEY=JSON...: the expectations for check_stats.
write_expect() {
	python3 - "$@" <<'EOF'
import json, sys
out, kv = sys.argv[1], sys.argv[2:]
e = {}
for a in kv:
    k, v = a.split("=", 1)
    e[k] = json.loads(v)
json.dump(e, open(out, "w"))
EOF
}

# ---- workload, part 1: writes only --------------------------------------
rand_file "$WORK/rand" 3 31
cp "$WORK/rand" "$MNT/rand.bin"
cp "$WORK/rand" "$MNT/copy1.bin"
mkdir "$MNT/sub"
cp "$WORK/rand" "$MNT/sub/copy2.bin"
ln "$MNT/sub/copy2.bin" "$MNT/sub/hard.bin"
bf16_file "$WORK/w.bf16" "$B" 7
cp "$WORK/w.bf16" "$MNT/sub/w.bf16"
float_file "$WORK/w.f32" 2 8
cp "$WORK/w.f32" "$MNT/w.f32"
truncate -s "$SPARSE" "$MNT/sparse.bin"
rand_file "$WORK/sp" 1 32
dd if="$WORK/sp" of="$MNT/sparse.bin" bs=1M seek=2 conv=notrunc status=none
rand_file "$WORK/over" 2 33
cp "$WORK/over" "$MNT/over.bin"
sync
sync -f "$MNT"

logical=$(du_logical)
check_eq "workload logical bytes" $((3 * R + B + F + SPARSE + O)) "$logical"
file_facts >"$WORK/facts1"
stats_json "$WORK/s1.json" --files "$MNT"
write_expect "$WORK/e1.json" store="\"$STORE_ABS\"" mount="\"$MNT_ABS\"" files=7 \
	logical="$logical" mapped=$((logical - SPARSE + S)) unique=$((R + B + F + S + O)) \
	dup=$((2 * R)) pack_files="$(pack_file_bytes)" no_dead=true \
	dtype_min="{\"bf16\": $((B * 9 / 10)), \"fp32\": $((F * 9 / 10)), \"other\": $(((R + S + O) * 99 / 100))}" \
	level_min="{\"raw\": $(((R + S + O) * 99 / 100)), \"mix\": $(((B + F) * 9 / 10))}" \
	alone='["/sub/w.bf16", "/w.f32", "/sparse.bin", "/over.bin"]' \
	shared='[["/rand.bin", "/copy1.bin", "/sub/copy2.bin"]]' \
	dtypes='{"/sub/w.bf16": "bf16", "/w.f32": "fp32", "/rand.bin": "other"}'
check_stats "$WORK/s1.json" "$WORK/e1.json" "$WORK/facts1"
log "part 1: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("logical", d["logical_bytes"], "unique", d["unique_bytes"], "stored", d["stored_bytes"], "chunks", d["chunks"])' "$WORK/s1.json")"

# The store directory gives the same numbers as the mount point (the
# store is not inside the mount, so no mount is named).
stats_json "$WORK/s1store.json" --files "$STORE"
python3 - "$WORK/s1.json" "$WORK/s1store.json" <<'EOF' || fail "stats of the store differs from stats of the mount"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["mount"] is None, b["mount"]
a["mount"] = None
for k in a:
    assert a[k] == b[k], "%s: mount %r, store %r" % (k, a[k], b[k])
EOF

# ---- subtrees: a directory and a file ----------------------------------
stats_json "$WORK/sub.json" --files "$MNT/sub"
python3 - "$WORK/s1.json" "$WORK/sub.json" "$R" "$B" <<'EOF' || fail "subtree /sub"
import json, sys
whole, sub = (json.load(open(p)) for p in sys.argv[1:3])
R, B = int(sys.argv[3]), int(sys.argv[4])
rows = {r["path"]: r for r in whole["files"]}
bad = []
def want(what, cond):
    if not cond:
        bad.append(what)
want("path /sub: %r" % sub["path"], sub["path"] == "/sub")
want("scope subtree", sub["scope"] == "subtree")
want("file_count 2: %r" % sub["file_count"], sub["file_count"] == 2)
want("logical R+B: %r" % sub["logical_bytes"], sub["logical_bytes"] == R + B)
want("mapped = logical", sub["mapped_bytes"] == R + B and sub["sparse_bytes"] == 0)
# copy2 holds one of three references on every chunk of the random data
want("unique R/3+B: %r" % sub["unique_bytes"], sub["unique_bytes"] == R // 3 + B)
want("dedup saved 2R/3: %r" % sub["dedup_saved_bytes"], sub["dedup_saved_bytes"] == R - R // 3)
# The same rows as in the whole store (rounding may give a byte elsewhere).
want("sub rows: %r" % sub["files"], sorted(r["path"] for r in sub["files"]) ==
     ["/sub/copy2.bin", "/sub/w.bf16"])
for r in sub["files"]:
    w = rows.get(r["path"], {})
    want("row %s" % r["path"], r["logical_bytes"] == w.get("logical_bytes") and
         abs(r["stored_bytes"] - w.get("stored_bytes", -9)) <= 1 and
         abs(r["unique_bytes"] - w.get("unique_bytes", -9)) <= 1)
want("stored = rows", sub["stored_bytes"] == sum(r["stored_bytes"] for r in sub["files"]))
for name in ("by_dtype", "by_level"):
    for f in ("unique_bytes", "stored_bytes"):
        want(name + " sums", sum(v[f] for v in sub[name].values()) == sub[f])
want("packs are the store's", sub["packs"] == whole["packs"])
want("chunks <= store's", 0 < sub["chunks"] <= whole["chunks"])
want("pending 0", sub["pending_bytes"] == 0)
for b in bad:
    print("it_stats: FAIL: subtree:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
stats_json "$WORK/one.json" "$MNT/w.f32"
python3 - "$WORK/s1.json" "$WORK/one.json" "$F" <<'EOF' || fail "subtree /w.f32"
import json, sys
whole, one = (json.load(open(p)) for p in sys.argv[1:3])
row = [r for r in whole["files"] if r["path"] == "/w.f32"][0]
assert one["path"] == "/w.f32" and one["file_count"] == 1, one
assert one["logical_bytes"] == int(sys.argv[3]) == row["logical_bytes"], one
assert abs(one["stored_bytes"] - row["stored_bytes"]) <= 1, (one["stored_bytes"], row)
assert one["unique_bytes"] == row["unique_bytes"] == int(sys.argv[3]), (one, row)
assert one["by_dtype"]["fp32"]["unique_bytes"] >= int(sys.argv[3]) * 9 // 10, one["by_dtype"]
assert "files" not in one
EOF

# ---- workload, part 2: overwrite, truncates, deletes --------------------
rand_file "$WORK/over2" 2 34
dd if="$WORK/over2" of="$MNT/over.bin" bs=1M conv=notrunc status=none
check_cmp "$WORK/over2" "$MNT/over.bin"
# Cut w.f32 inside a chunk: the chunk stays whole (up to 256 KiB of it
# unused: "slack"), and grow sparse.bin by a hole.
truncate -s $((MIB + 1000)) "$MNT/w.f32"
truncate -s $((SPARSE + MIB)) "$MNT/sparse.bin"
rm "$MNT/copy1.bin" "$MNT/sub/hard.bin"
sync
sync -f "$MNT"
F2=$((MIB + 1000))
logical=$(du_logical)
check_eq "logical after part 2" $((2 * R + B + F2 + SPARSE + MIB + O)) "$logical"
file_facts >"$WORK/facts2"
stats_json "$WORK/s2.json" --files "$MNT"
write_expect "$WORK/e2.json" store="\"$STORE_ABS\"" mount="\"$MNT_ABS\"" files=6 \
	logical="$logical" mapped=$((logical - SPARSE - MIB + S)) unique=$((R + B + F2 + S + O)) \
	slack=$((256 << 10)) dup="$R" pack_files="$(pack_file_bytes)" no_dead=false \
	dtype_min="{\"bf16\": $((B * 9 / 10)), \"other\": $(((R + S + O) * 99 / 100))}" \
	level_min="{\"raw\": $(((R + S + O) * 99 / 100))}" \
	alone='["/sub/w.bf16", "/sparse.bin", "/over.bin"]' \
	shared='[["/rand.bin", "/sub/copy2.bin"]]' dtypes='{"/sub/w.bf16": "bf16"}'
check_stats "$WORK/s2.json" "$WORK/e2.json" "$WORK/facts2"
python3 - "$WORK/s1.json" "$WORK/s2.json" "$O" <<'EOF' || fail "dead bytes after the overwrite"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
# The overwritten 2 MiB of random frames are dead now.
assert b["packs"]["dead_bytes"] >= int(sys.argv[3]), b["packs"]
EOF

# ---- unmounted: the store gives the same numbers --------------------------
mixfs_umount
stats_json "$WORK/s3.json" --files "$STORE"
python3 - "$WORK/s2.json" "$WORK/s3.json" "$STORE_ABS" <<'EOF' || fail "stats of the unmounted store"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert b["mount"] is None and b["store"] == sys.argv[3], (b["mount"], b["store"])
a = dict(a, mount=None)
for k in a:
    assert a[k] == b[k], "%s: mounted %r, unmounted %r" % (k, a[k], b[k])
EOF
check_eq "pack files = live + dead" "$(pack_file_bytes)" \
	"$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["packs"]; print(p["live_bytes"] + p["dead_bytes"])' "$WORK/s3.json")"
check_eq "disk_bytes = allocated bytes of the pack files" \
	"$(find "$STORE/packs" -type f -printf '%b\n' | awk '{n += $1 * 512} END {print n + 0}')" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packs"]["disk_bytes"])' "$WORK/s3.json")"

# ---- exit status, human output ------------------------------------------
rc=0
"$MIXFS" stats "$WORK" >/dev/null 2>"$WORK/err" || rc=$?
check_eq "stats on a plain directory exits" 1 "$rc"
grep -q "neither a mixfs store" "$WORK/err" || fail "no message for a plain directory: $(cat "$WORK/err")"
rc=0
"$MIXFS" stats >/dev/null 2>&1 || rc=$?
check_eq "stats without PATH exits" 2 "$rc"
rc=0
"$MIXFS" stats --bogus "$STORE" >/dev/null 2>&1 || rc=$?
check_eq "stats --bogus exits" 2 "$rc"
"$MIXFS" stats --help | grep -q -- "--json" || fail "stats --help does not list --json"

"$MIXFS" stats "$STORE" >"$WORK/human" || fail "mixfs stats (text) failed"
for w in "logical" "after dedup" "stored" "saved by dedup" "saved by compression" \
	"overall ratio" "pending" "by dtype" "by level" "bf16" "mix" "where the logical bytes went"; do
	grep -q "$w" "$WORK/human" || fail "text output lacks '$w': $(cat "$WORK/human")"
done
grep -q '#' "$WORK/human" || fail "no ASCII bars when stdout is not a terminal"
if LC_ALL=C grep -q "$BLOCKS" "$WORK/human"; then fail "unicode bars on a pipe"; fi
"$MIXFS" stats --bytes "$STORE" | grep -Eq "^  stored +$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stored_bytes"])' "$WORK/s3.json")\$" ||
	fail "--bytes does not print the exact stored bytes"
"$MIXFS" stats --files "$STORE" | grep -q "/sub/w.bf16" || fail "--files text lacks /sub/w.bf16"
if command -v script >/dev/null && locale -a 2>/dev/null | grep -qi '^c\.utf-\?8$'; then
	LC_ALL=C.UTF-8 script -qec "'$MIXFS' stats '$STORE'" /dev/null >"$WORK/tty" ||
		fail "mixfs stats on a terminal failed"
	LC_ALL=C grep -q "$BLOCKS" "$WORK/tty" || fail "no unicode bars on a UTF-8 terminal: $(cat "$WORK/tty")"
	LC_ALL=C.UTF-8 script -qec "'$MIXFS' stats --ascii '$STORE'" /dev/null >"$WORK/tty" ||
		fail "mixfs stats --ascii on a terminal failed"
	if LC_ALL=C grep -q "$BLOCKS" "$WORK/tty"; then fail "--ascii drew unicode bars"; fi
else
	log "no script(1) or C.UTF-8 locale: terminal output not checked"
fi

# ---- pending: a mount at level fast in a mix store ------------------------
mixfs_mount fg level=fast
rm "$MNT/w.f32" # the truncated file: no partly used chunk is left
bf16_file "$WORK/w2.bf16" $((2 * MIB)) 9
cp "$WORK/w2.bf16" "$MNT/sub/w2.bf16"
sync
sync -f "$MNT"
logical=$(du_logical)
file_facts >"$WORK/facts4"
stats_json "$WORK/s4.json" --files "$MNT"
write_expect "$WORK/e4.json" store="\"$STORE_ABS\"" mount="\"$MNT_ABS\"" files=6 \
	logical="$logical" mapped=$((logical - SPARSE - MIB + S)) \
	unique=$((R + B + S + O + 2 * MIB)) dup="$R" pack_files="$(pack_file_bytes)" no_dead=false \
	dtype_min="{\"bf16\": $(((B + 2 * MIB) * 9 / 10))}" \
	level_min="{\"fast\": $((2 * MIB * 9 / 10))}" pending_min=$((2 * MIB * 9 / 10)) \
	alone='["/sub/w.bf16", "/sub/w2.bf16", "/sparse.bin", "/over.bin"]' \
	shared='[["/rand.bin", "/sub/copy2.bin"]]' dtypes='{"/sub/w2.bf16": "bf16"}'
check_stats "$WORK/s4.json" "$WORK/e4.json" "$WORK/facts4"

# ---- series coding: the ref_* counters ------------------------------------
# Two versions of a safetensors checkpoint in one directory, the second
# differing in low mantissa bits: the second is coded against the first
# (mixfs(8), max_ref_chain), so its chunks count as series-coded.  Rebase
# (turning v2 full and v1 into a reverse delta once idle) is off here so
# that what is counted does not change under the checks; see below.
mixfs_umount
mixfs_mount fg rebase_idle=0
# st_version PATH MIB SEED FLIP: one bf16 tensor; FLIP=N > 0 flips the
# lowest mantissa bit of one element in five (which ones: seed + N).
st_version() {
	python3 - "$@" <<'EOF'
import array, json, random, struct, sys
path, mib, seed, flip = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
n = mib * 1048576 // 2
b = array.array("f", (rng.gauss(0.0, 0.02) for _ in range(n))).tobytes()
w = bytearray(2 * n)
w[0::2] = b[2::4]
w[1::2] = b[3::4]
if flip:
    r2 = random.Random(seed + flip)
    for i in range(0, 2 * n, 2):
        if r2.random() < 0.2:
            w[i] ^= 1
h = json.dumps({"w": {"dtype": "BF16", "shape": [n // 1024, 1024],
                      "data_offsets": [0, 2 * n]}}).encode()
h += b" " * (-len(h) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + w)
EOF
}
stats_json "$WORK/s5a.json" "$STORE"
mkdir "$MNT/series"
st_version "$WORK/v1.safetensors" 2 41 0
st_version "$WORK/v2.safetensors" 2 41 1
cp "$WORK/v1.safetensors" "$MNT/series/v1.safetensors"
sync -f "$MNT"
cp "$WORK/v2.safetensors" "$MNT/series/v2.safetensors"
sync -f "$MNT"
check_cmp "$WORK/v2.safetensors" "$MNT/series/v2.safetensors"
stats_json "$WORK/s5.json" "$STORE"
stats_json "$WORK/s5sub.json" "$MNT/series"
stats_json "$WORK/s5v1.json" "$MNT/series/v1.safetensors"
python3 - "$WORK/s5a.json" "$WORK/s5.json" "$WORK/s5sub.json" "$WORK/s5v1.json" \
	"$(stat -c %s "$WORK/v2.safetensors")" <<'EOF' || fail "series-coded counters"
import json, sys
a, b, sub, v1 = (json.load(open(p)) for p in sys.argv[1:5])
size = int(sys.argv[5])
bad = []
def want(what, cond):
    if not cond:
        bad.append(what)
d = {k: b[k] - a[k] for k in ("ref_chunks", "ref_raw_bytes", "ref_stored_bytes", "stored_bytes")}
want("v2 is series-coded: %r" % d, d["ref_chunks"] >= 1 and size // 2 <= d["ref_raw_bytes"] <= size)
want("series-coded chunks compress: %r" % d, 0 < d["ref_stored_bytes"] < d["ref_raw_bytes"] // 2)
want("part of stored: %r" % d, d["ref_stored_bytes"] <= d["stored_bytes"])
want("forward-coded, not yet measured: %r" % b,
     b["ref_fwd_chunks"] - a["ref_fwd_chunks"] == d["ref_chunks"] and
     b["ref_saved_bytes"] == a["ref_saved_bytes"])
# Every series-coded chunk is in /series and used once: the subtree's
# share is all of them.
for k in ("ref_chunks", "ref_raw_bytes", "ref_stored_bytes"):
    want("subtree %s %r = store's %r" % (k, sub[k], d[k]), sub[k] == d[k])
want("v1 alone has none: %r" % v1,
     v1["ref_chunks"] == 0 and v1["ref_raw_bytes"] == 0 and v1["ref_stored_bytes"] == 0)
for x in bad:
    print("it_stats: FAIL: series:", x, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
want_ref=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ref_stored_bytes"])' "$WORK/s5.json")
"$MIXFS" stats --bytes "$STORE" | grep -Eq "^  series-coded +$want_ref +\(" ||
	fail "text output lacks a series-coded line of $want_ref bytes: $("$MIXFS" stats --bytes "$STORE")"
# Rebase: mounted with a short idle time, v2 (the newest) becomes full and
# v1 a reverse delta against it; the counters move from v2 to v1, both
# files read back, and fsck agrees.
mixfs_umount
mixfs_mount fg rebase_idle=100
# done when no forward delta is left in the store (not merely when v1 has
# its first reverse delta: rebase works in groups)
wait_stats "$WORK/s5r.json" 100 's["ref_fwd_chunks"] == 0 and s["ref_chunks"] > 0' ||
	fail "rebase did not turn v2 around: $(cat "$WORK/s5r.json")"
stats_json "$WORK/s5r1.json" "$MNT/series/v1.safetensors"
stats_json "$WORK/s5r2.json" "$MNT/series/v2.safetensors"
python3 - "$WORK/s5.json" "$WORK/s5r.json" "$WORK/s5r1.json" "$WORK/s5r2.json" <<'EOF' || fail "series counters after rebase"
import json, sys
b, r, v1, v2 = (json.load(open(p)) for p in sys.argv[1:5])
assert v1["ref_chunks"] >= 1, "v1 not turned into a reverse delta: %r" % v1
assert v2["ref_chunks"] == 0, "v2 (newest) still coded against v1: %r" % v2
assert r["ref_chunks"] == v1["ref_chunks"], (r, v1)
# reverse deltas replaced full frames: what they saved is known exactly
assert r["ref_fwd_chunks"] == 0 and v1["ref_fwd_chunks"] == 0, (r, v1)
assert 0 < v1["ref_saved_bytes"] == r["ref_saved_bytes"], (r, v1)
assert v1["ref_saved_bytes"] > v1["ref_stored_bytes"], v1  # v1 mostly repeats v2
# the turned pair costs about what the forward pair did
assert r["stored_bytes"] <= b["stored_bytes"] * 11 // 10, (b["stored_bytes"], r["stored_bytes"])
EOF
check_cmp "$WORK/v1.safetensors" "$MNT/series/v1.safetensors"
check_cmp "$WORK/v2.safetensors" "$MNT/series/v2.safetensors"
want_saved=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ref_saved_bytes"])' "$WORK/s5r.json")
"$MIXFS" stats --bytes "$STORE" | grep -Eq "^  saved by series coding +$want_saved +\(" ||
	fail "text output lacks a saved-by-series line of $want_saved bytes: $("$MIXFS" stats --bytes "$STORE")"
mixfs_umount
"$MIXFS" fsck "$STORE" >"$WORK/fsck_rebase.txt" 2>&1 || fail "fsck after rebase: $(cat "$WORK/fsck_rebase.txt")"
mixfs_mount fg rebase_idle=0
# Deleting the reference keeps it alive (after rebase v1 needs v2);
# deleting both brings the counters back.
rm "$MNT/series/v2.safetensors"
sync -f "$MNT"
check_cmp "$WORK/v1.safetensors" "$MNT/series/v1.safetensors"
stats_json "$WORK/s6.json" "$STORE"
rm "$MNT/series/v1.safetensors"
sync -f "$MNT"
stats_json "$WORK/s7.json" "$STORE"
python3 - "$WORK/s5a.json" "$WORK/s5r.json" "$WORK/s6.json" "$WORK/s7.json" <<'EOF' || fail "series-coded counters after the deletes"
import json, sys
a, b, c, d = (json.load(open(p)) for p in sys.argv[1:5])
for k in ("ref_chunks", "ref_raw_bytes", "ref_stored_bytes"):
    assert c[k] == b[k], "%s after rm v2: %r, before %r" % (k, c[k], b[k])
    assert d[k] == a[k], "%s after rm v1: %r, at start %r" % (k, d[k], a[k])
EOF
# ---- bytes after dedup of a series, per file --------------------------------
# Three versions of a checkpoint in one directory, each coded against the
# one before (rebase stays off: forward deltas c3 -> c2 -> c1).  A file's
# bytes after dedup are its share of the raw bytes of the chunks its
# extents map, never its references' raw bytes while another file maps
# those: no file's exceeds its logical size (the stored bytes of a
# reference are still shared with the chunks coded against it).  Deleting
# c1 leaves its chunks alive as c2's references: their raw bytes pass to
# c2, and with c2 deleted too, on to c3.  In every state the rows add up to
# the store's totals, and a file's own stats equal its row.
mkdir "$MNT/ckpt"
for v in 1 2 3; do
	st_version "$WORK/c$v.safetensors" 2 61 $((v - 1))
	cp "$WORK/c$v.safetensors" "$MNT/ckpt/c$v.safetensors"
	sync -f "$MNT"
done
# ckpt_check STAGE HOLDER: the whole store's rows, the subtree /ckpt and
# each of its files; HOLDER is the file that holds the raw bytes of a
# deleted version's chunks (or "").
ckpt_check() {
	local stage=$1 holder=$2 f
	stats_json "$WORK/ck_$stage.json" --files "$STORE"
	stats_json "$WORK/ck_${stage}_sub.json" --files "$MNT/ckpt"
	for f in "$MNT"/ckpt/*; do
		stats_json "$WORK/ck_${stage}_one_${f##*/}.json" "$f"
	done
	python3 - "$stage" "$holder" "$WORK/ck_$stage.json" "$WORK/ck_${stage}_sub.json" \
		"$WORK"/ck_"$stage"_one_*.json <<'EOF' || fail "series bytes after dedup ($stage)"
import json, sys
stage, holder = sys.argv[1:3]
whole, sub = (json.load(open(p)) for p in sys.argv[3:5])
ones = [json.load(open(p)) for p in sys.argv[5:]]
rows = {r["path"]: r for r in whole["files"]}
bad = []
def want(what, cond):
    if not cond:
        bad.append(what)
for name, s in (("store", whole), ("/ckpt", sub)):
    for k in ("unique_bytes", "stored_bytes"):
        n = sum(r[k] for r in s["files"])
        want("%s: rows' %s %d = total %d" % (name, k, n, s[k]), n == s[k])
# every series-coded chunk is in /ckpt: the subtree's shares are all of them
# (ref_chunks counts only those its extents map, not deleted versions')
for k in ("ref_raw_bytes", "ref_stored_bytes"):
    want("/ckpt %s %r = store's %r" % (k, sub[k], whole[k]), sub[k] == whole[k])
want("/ckpt is series-coded: %r" % sub["ref_chunks"], sub["ref_chunks"] >= 1)
for r in whole["files"]:
    p, u, size = r["path"], r["unique_bytes"], r["logical_bytes"]
    if p == holder:
        want("%s holds a deleted version's chunks: after dedup %d > size %d" % (p, u, size),
             u > size)
    else:
        want("%s: after dedup %d <= size %d" % (p, u, size), u <= size)
for r in sub["files"]:
    w = rows[r["path"]]
    want("/ckpt row %s = store row %s" % (r, w),
         r["logical_bytes"] == w["logical_bytes"] and
         abs(r["unique_bytes"] - w["unique_bytes"]) <= 1 and
         abs(r["stored_bytes"] - w["stored_bytes"]) <= 1)
for o in ones:
    w = rows[o["path"]]
    want("%s alone: after dedup %d, stored %d; row %d, %d" % (o["path"], o["unique_bytes"],
         o["stored_bytes"], w["unique_bytes"], w["stored_bytes"]),
         abs(o["unique_bytes"] - w["unique_bytes"]) <= 1 and
         abs(o["stored_bytes"] - w["stored_bytes"]) <= 1)
    want("%s: series-coded raw %d <= after dedup %d" % (o["path"], o["ref_raw_bytes"],
         o["unique_bytes"]), o["ref_raw_bytes"] <= o["unique_bytes"])
    want("%s: saved by dedup %d >= 0" % (o["path"], o["dedup_saved_bytes"]),
         o["path"] == holder or o["dedup_saved_bytes"] >= 0)
    if o["path"] != "/ckpt/c1.safetensors":
        want("%s is series-coded: %r" % (o["path"], o["ref_chunks"]), o["ref_chunks"] >= 1)
print("it_stats: series, %s:" % stage, "; ".join(
      "%s logical %d, after dedup %d, stored %d" % (r["path"], r["logical_bytes"],
      r["unique_bytes"], r["stored_bytes"]) for r in sorted(sub["files"], key=lambda r: r["path"])),
      file=sys.stderr)
for b in bad:
    print("it_stats: FAIL: series after dedup:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}
ckpt_check all ""
rm "$MNT/ckpt/c1.safetensors"
sync -f "$MNT"
check_cmp "$WORK/c2.safetensors" "$MNT/ckpt/c2.safetensors"
ckpt_check no_c1 /ckpt/c2.safetensors
rm "$MNT/ckpt/c2.safetensors"
sync -f "$MNT"
check_cmp "$WORK/c3.safetensors" "$MNT/ckpt/c3.safetensors"
ckpt_check no_c2 /ckpt/c3.safetensors
log PASS
