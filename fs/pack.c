/*
 * pack.c - append-only pack files through io_uring.
 *
 * Writer: frames are copied into a small set of write buffers.  A full (or
 * synced) buffer is submitted as one IORING_OP_WRITE at its file offset and
 * stays "in flight" until its completion; at most opts.write_bufs buffers
 * exist, so a writer that outpaces the disk blocks in pack_append waiting
 * for a completion (backpressure) instead of growing memory.  A frame never
 * spans two buffers (a buffer grows to hold an oversized frame), so a read
 * finds a frame either whole in one buffer or whole in the file.
 *
 * Readers: each thread gets its own ring (pthread key); pack fds are cached
 * in a small refcounted table so a pack removed by gc or evicted from the
 * table is closed only when its last in-progress read drops it (an fd number
 * must never be reused under a read in flight).
 *
 * If io_uring cannot be set up (disabled by sysctl, seccomp, old kernel) the
 * same paths run on pwrite/pread/fdatasync; this is logged once per store.
 */
#include "fs/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PACK_DEF_MAX_BYTES (1ULL << 30)
/* 1 MiB, not 4: buffered io_uring writes are copied into the page cache
 * by an io-wq worker, often on another core; 4 x 1 MiB in flight stays in
 * cache and measured ~1.5x faster append+sync than 4 x 4 MiB (bench_pack,
 * 64 KiB frames, medians of 5 on a loaded 2-core VM). */
#define PACK_DEF_BUF_BYTES (1U << 20)
#define PACK_DEF_BUFS 4U
/* Packs rolled over but not yet fdatasync'ed keep their fd open; past this
 * many we sync early rather than hold an unbounded number of fds. */
#define PACK_MAX_RETIRED 64
#define PACK_READ_RING 64
#define PACK_SMALL_BATCH 8
#define PACK_CREATE_TRIES 16
#define PACK_FD_BUCKETS 256
#define PACK_MAX_READ_FDS 256

enum req_kind { REQ_WRITE = 1, REQ_SYNC, REQ_READ };

/* Every SQE's user_data points at one of these (as the first member of the
 * owning struct), so a completion finds its buffer, offset and owner. */
struct req_hdr {
	enum req_kind kind;
};

enum wbuf_state { WB_FREE, WB_FILLING, WB_INFLIGHT };

struct wbuf {
	struct req_hdr hdr;
	uint8_t *data;
	uint32_t cap;
	uint32_t len;  /* bytes filled; readers may copy [0, len) under buf_lock */
	uint32_t done; /* bytes written so far (short writes resume here) */
	uint32_t pack_id;
	uint64_t off; /* file offset of data[0] */
	int fd;
	enum wbuf_state state;
};

struct sync_req {
	struct req_hdr hdr;
	int fd;
	int res;
	bool pending;
};

struct read_req {
	struct req_hdr hdr;
	int fd;
	uint8_t *buf;
	uint32_t len;
	uint32_t done;
	uint64_t off;
	int res; /* 1 = pending, 0 = done, <0 = error */
};

struct fd_ent {
	struct fd_ent *next;
	uint32_t id;
	int fd;
	atomic_uint refs; /* the table holds one while the entry is in it */
	atomic_ullong used;
};

struct read_ring {
	struct io_uring ring;
	struct pack_store *ps;
	struct read_ring *prev, *next;
	bool uring_ok;
	/* Set when the ring fails: it may still hold SQEs naming old buffers,
	 * so it must never be submitted again (only freed). */
	bool broken;
};

struct retired {
	uint32_t id;
	int fd;
};

struct pack_store {
	char *dir;
	int dirfd;
	struct pack_opts opts;
	pack_id_alloc_fn alloc;
	void *alloc_arg;
	bool use_uring; /* writer ring; readers decide per thread */
	/* The writer ring failed to wait: completions may name dead stack
	 * requests, so it is never waited on again (err is set too). */
	bool wbroken;
	atomic_bool logged_fallback;

	/* Lock order: wlock -> buf_lock; fd_lock and rings_lock are leaf locks
	 * never held together with another.  wlock serializes appends, syncs
	 * and the writer ring (a ring is single-threaded); buf_lock guards the
	 * buffer states/lengths that readers copy from, and is held only
	 * briefly so a writer blocked on completions does not stall reads. */
	pthread_mutex_t wlock;
	pthread_rwlock_t buf_lock;
	struct io_uring wring;
	struct wbuf *bufs;
	struct wbuf *cur; /* FILLING buffer or NULL */
	unsigned inflight;
	int err; /* sticky write/sync error */
	_Atomic uint64_t gen; /* errors cleared so far (pack_store_gen); bumped
	                         under wlock, read without it */
	uint32_t cur_id;
	int cur_fd; /* -1 before the first append */
	uint64_t tail;
	bool cur_dirty; /* current pack written since the last sync */
	bool cur_durable; /* a sync of the current pack succeeded: records may name it */
	bool seal;      /* the next append starts a new pack (pack_store_seal) */
	bool dir_dirty; /* a pack was created since the last sync */
	struct retired retired[PACK_MAX_RETIRED];
	unsigned nretired;

	pthread_rwlock_t fd_lock;
	struct fd_ent *fds[PACK_FD_BUCKETS];
	unsigned nfds;
	atomic_ullong fd_clock;
	/* packs removed so far (under fd_lock): a read fd opened across a
	 * removal is not cached, it may be the removed pack's */
	uint64_t fd_removals;

	pthread_key_t ring_key;
	pthread_mutex_t rings_lock;
	struct read_ring *rings;
};

__attribute__((format(printf, 2, 3))) static void pack_log(const struct pack_store *ps,
                                                           const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "mixfs: pack %s: ", ps ? ps->dir : "?");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void pack_path(const char *dir, uint32_t id, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%08x.pack", dir, id);
}

static void pack_log_fallback(struct pack_store *ps, int rc)
{
	if (!atomic_exchange(&ps->logged_fallback, true))
		pack_log(ps, "io_uring unavailable (%s), using pread/pwrite", strerror(-rc));
}

/* ---- writer ring helpers ---- */

static struct io_uring_sqe *ring_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		/* SQ full: flush what is queued to make room. */
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	return sqe;
}

static int ring_submit(struct io_uring *ring)
{
	int rc;

	do
		rc = io_uring_submit(ring);
	while (rc == -EINTR || rc == -EAGAIN);
	return rc < 0 ? rc : 0;
}

/* Fallback transfer: pwrite/pread from buf+*done until len bytes moved.
 * Zero progress (EOF of a truncated pack, or a write that cannot advance)
 * is -EIO. */
static int io_plain(int fd, bool write, uint8_t *buf, uint32_t len, uint64_t off, uint32_t *done)
{
	while (*done < len) {
		ssize_t n = write ? pwrite(fd, buf + *done, len - *done, (off_t)(off + *done))
		                  : pread(fd, buf + *done, len - *done, (off_t)(off + *done));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		*done += (uint32_t)n;
	}
	return 0;
}

static void wbuf_prep(struct pack_store *ps, struct wbuf *b, struct io_uring_sqe *sqe)
{
	io_uring_prep_write(sqe, b->fd, b->data + b->done, b->len - b->done, b->off + b->done);
	io_uring_sqe_set_data(sqe, &b->hdr);
}

static void wbuf_retire(struct pack_store *ps, struct wbuf *b, int rc)
{
	if (rc < 0 && !ps->err) {
		pack_log(ps, "write of pack %08x at %llu failed: %s", b->pack_id,
		         (unsigned long long)(b->off + b->done), strerror(-rc));
		ps->err = rc;
	}
	pthread_rwlock_wrlock(&ps->buf_lock);
	b->state = WB_FREE;
	b->len = 0;
	pthread_rwlock_unlock(&ps->buf_lock);
}

/* Hand buffer b (FILLING, len > 0) to the disk.  Called with wlock. */
static int wbuf_submit(struct pack_store *ps, struct wbuf *b)
{
	struct io_uring_sqe *sqe;
	int rc;

	if (ps->cur == b)
		ps->cur = NULL;
	b->done = 0;
	pthread_rwlock_wrlock(&ps->buf_lock);
	b->state = WB_INFLIGHT;
	pthread_rwlock_unlock(&ps->buf_lock);
	if (!ps->use_uring) {
		rc = io_plain(b->fd, true, b->data, b->len, b->off, &b->done);
		wbuf_retire(ps, b, rc);
		return rc;
	}
	sqe = ring_sqe(&ps->wring);
	if (!sqe) {
		rc = -EBUSY;
		goto fail;
	}
	wbuf_prep(ps, b, sqe);
	ps->inflight++;
	rc = ring_submit(&ps->wring);
	if (rc < 0) {
		ps->inflight--;
		goto fail;
	}
	return 0;
fail:
	wbuf_retire(ps, b, rc);
	return rc;
}

static void sync_done(struct pack_store *ps, struct sync_req *s, int res)
{
	s->res = res;
	s->pending = false;
	ps->inflight--;
}

/* Handle one writer completion; resubmits short or -EAGAIN writes. */
static void wring_complete(struct pack_store *ps, struct io_uring_cqe *cqe)
{
	struct req_hdr *h = io_uring_cqe_get_data(cqe);
	int res = cqe->res;
	struct wbuf *b;
	struct io_uring_sqe *sqe;

	io_uring_cqe_seen(&ps->wring, cqe);
	if (h->kind == REQ_SYNC) {
		sync_done(ps, (struct sync_req *)h, res);
		return;
	}
	b = (struct wbuf *)h;
	if (res == -EAGAIN || res == -EINTR)
		res = 0;
	else if (res == 0) /* a regular file write of 0 bytes makes no progress */
		res = -EIO;
	if (res < 0) {
		ps->inflight--;
		wbuf_retire(ps, b, res);
		return;
	}
	b->done += (uint32_t)res;
	if (b->done == b->len) {
		ps->inflight--;
		wbuf_retire(ps, b, 0);
		return;
	}
	/* Short write (e.g. the disk filled up mid-buffer): write the rest; a
	 * real failure then comes back as an errno. */
	sqe = ring_sqe(&ps->wring);
	if (!sqe) {
		ps->inflight--;
		wbuf_retire(ps, b, -EBUSY);
		return;
	}
	wbuf_prep(ps, b, sqe);
	if (ring_submit(&ps->wring) < 0) {
		ps->inflight--;
		wbuf_retire(ps, b, -EIO);
	}
}

/* Wait for at least one completion (if any are in flight), then reap every
 * ready one.  Called with wlock. */
static void wring_reap(struct pack_store *ps, bool wait)
{
	struct io_uring_cqe *cqe;
	int rc;

	if (!ps->use_uring || !ps->inflight || ps->wbroken)
		return;
	if (wait) {
		do
			rc = io_uring_wait_cqe(&ps->wring, &cqe);
		while (rc == -EINTR || rc == -EAGAIN);
		if (rc < 0) {
			/* Cannot happen with a healthy ring; never spin on it. */
			pack_log(ps, "wait_cqe: %s", strerror(-rc));
			if (!ps->err)
				ps->err = rc;
			ps->wbroken = true;
			return;
		}
		wring_complete(ps, cqe);
	}
	while (ps->inflight && io_uring_peek_cqe(&ps->wring, &cqe) == 0)
		wring_complete(ps, cqe);
}

/* Wait until no write or sync is in flight (buffers may then be reused
 * or freed), unless the ring broke. */
static void wring_drain(struct pack_store *ps)
{
	while (ps->inflight && !ps->wbroken)
		wring_reap(ps, true);
}

/* A free buffer with room for len bytes, blocking on completions if every
 * buffer is in flight.  Called with wlock. */
static int wbuf_get(struct pack_store *ps, uint32_t len, struct wbuf **out)
{
	struct wbuf *b = NULL;
	uint32_t cap;
	uint8_t *data;

	for (;;) {
		for (unsigned i = 0; i < ps->opts.write_bufs; i++) {
			if (ps->bufs[i].state == WB_FREE) {
				b = &ps->bufs[i];
				break;
			}
		}
		if (b)
			break;
		if (!ps->inflight)
			return -EIO; /* no free buffer yet nothing in flight: a bug */
		wring_reap(ps, true);
		if (ps->err)
			return ps->err;
	}
	cap = len > ps->opts.write_buf_bytes ? len : ps->opts.write_buf_bytes;
	if (b->cap < cap) {
		/* Aligned so the buffers would also suit O_DIRECT later. */
		if (posix_memalign((void **)&data, 4096, cap))
			return -ENOMEM;
		free(b->data);
		b->data = data;
		b->cap = cap;
	}
	*out = b;
	return 0;
}

/* ---- durability ---- */

static int fdatasync_plain(int fd, bool full)
{
	int rc = full ? fsync(fd) : fdatasync(fd);

	return rc < 0 ? -errno : 0;
}

/* fdatasync every fd in fds (and fsync the directory if dir) in one batch.
 * Called with wlock and nothing in flight. */
static int pack_sync_fds(struct pack_store *ps, const int *fds, unsigned n, bool dir)
{
	struct sync_req reqs[PACK_MAX_RETIRED + 2];
	unsigned total = n + (dir ? 1 : 0);
	struct io_uring_sqe *sqe;
	int rc = 0;

	for (unsigned i = 0; i < total; i++) {
		reqs[i].hdr.kind = REQ_SYNC;
		reqs[i].fd = i < n ? fds[i] : ps->dirfd;
		reqs[i].res = 0;
		reqs[i].pending = false;
	}
	if (!ps->use_uring) {
		for (unsigned i = 0; i < total; i++) {
			int r = fdatasync_plain(reqs[i].fd, i >= n);
			if (r < 0 && !rc)
				rc = r;
		}
		return rc;
	}
	for (unsigned i = 0; i < total; i++) {
		sqe = ring_sqe(&ps->wring);
		if (!sqe) {
			rc = -EBUSY;
			break;
		}
		/* The directory needs a full fsync: its entry is metadata. */
		io_uring_prep_fsync(sqe, reqs[i].fd, i < n ? IORING_FSYNC_DATASYNC : 0);
		io_uring_sqe_set_data(sqe, &reqs[i].hdr);
		reqs[i].pending = true;
		ps->inflight++;
	}
	if (ring_submit(&ps->wring) < 0 && !rc)
		rc = -EIO;
	wring_drain(ps);
	for (unsigned i = 0; i < total; i++) {
		if (reqs[i].pending && !rc)
			rc = -EIO;
		if (reqs[i].res < 0 && !rc)
			rc = reqs[i].res;
	}
	return rc;
}

/* pack_sync body; called with wlock. */
static int pack_sync_locked(struct pack_store *ps)
{
	int fds[PACK_MAX_RETIRED + 1];
	unsigned n = 0;
	int rc;

	if (ps->cur && ps->cur->len)
		wbuf_submit(ps, ps->cur);
	wring_drain(ps);
	rc = ps->err;
	if (rc)
		goto out;
	for (unsigned i = 0; i < ps->nretired; i++)
		fds[n++] = ps->retired[i].fd;
	if (ps->cur_dirty)
		fds[n++] = ps->cur_fd;
	if (n || ps->dir_dirty)
		rc = pack_sync_fds(ps, fds, n, ps->dir_dirty);
	if (rc) {
		/* After a failed fdatasync the page cache state is unknown
		 * (the kernel may have dropped the dirty pages): never claim
		 * durability for this store again. */
		pack_log(ps, "sync failed: %s", strerror(-rc));
		ps->err = rc;
		goto out;
	}
	for (unsigned i = 0; i < ps->nretired; i++)
		close(ps->retired[i].fd);
	ps->nretired = 0;
	ps->cur_dirty = false;
	ps->cur_durable = ps->cur_fd >= 0;
	ps->dir_dirty = false;
out:
	return rc;
}

int pack_sync(struct pack_store *ps)
{
	int rc;

	pthread_mutex_lock(&ps->wlock);
	rc = pack_sync_locked(ps);
	pthread_mutex_unlock(&ps->wlock);
	return rc;
}

int pack_flush(struct pack_store *ps)
{
	int rc;

	pthread_mutex_lock(&ps->wlock);
	if (ps->cur && ps->cur->len)
		wbuf_submit(ps, ps->cur);
	wring_drain(ps);
	rc = ps->err;
	pthread_mutex_unlock(&ps->wlock);
	return rc;
}

/* ---- append ---- */

/* Start a new pack file.  Called with wlock. */
static int pack_roll(struct pack_store *ps)
{
	char path[PATH_MAX];
	uint32_t id;
	int fd, rc;

	if (ps->cur && ps->cur->len) {
		rc = wbuf_submit(ps, ps->cur);
		if (rc)
			return rc;
	}
	if (ps->cur_fd >= 0 && ps->nretired == PACK_MAX_RETIRED) {
		rc = pack_sync_locked(ps);
		if (rc)
			return rc;
	}
	/* O_EXCL: overwriting an existing pack could destroy committed
	 * frames.  An id whose file exists was handed out before but its
	 * allocation was lost (crash before the allocator's commit reached
	 * disk): the file holds only orphans for gc, so take the next id. */
	for (int tries = 0;; tries++) {
		rc = ps->alloc(ps->alloc_arg, &id);
		if (rc)
			return rc;
		pack_path(ps->dir, id, path, sizeof(path));
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		rc = -errno;
		if (rc != -EEXIST || tries == PACK_CREATE_TRIES) {
			pack_log(ps, "create %s: %s", path, strerror(-rc));
			return rc;
		}
		pack_log(ps, "%s exists (orphan of an earlier run?), skipping id", path);
	}
	if (ps->cur_fd >= 0) {
		if (ps->cur_dirty) {
			ps->retired[ps->nretired].id = ps->cur_id;
			ps->retired[ps->nretired].fd = ps->cur_fd;
			ps->nretired++;
		} else {
			close(ps->cur_fd);
		}
	}
	ps->cur_id = id;
	ps->cur_fd = fd;
	ps->tail = 0;
	ps->cur_dirty = false;
	ps->cur_durable = false;
	ps->dir_dirty = true;
	return 0;
}

int pack_append(struct pack_store *ps, const void *frame, uint32_t len, struct pack_loc *loc)
{
	struct wbuf *b;
	int rc;

	pthread_mutex_lock(&ps->wlock);
	rc = ps->err;
	if (rc)
		goto out;
	if (ps->cur_fd < 0 || (ps->tail && ps->tail + len > ps->opts.max_pack_bytes) ||
	    (ps->seal && ps->tail)) {
		rc = pack_roll(ps);
		if (rc)
			goto out;
		ps->seal = false;
	}
	b = ps->cur;
	if (b && b->len + len > b->cap) {
		rc = wbuf_submit(ps, b);
		if (rc)
			goto out;
		b = NULL;
	}
	if (!b) {
		rc = wbuf_get(ps, len, &b);
		if (rc)
			goto out;
		/* Readers ignore FREE buffers, so the fields can be set before
		 * the state flips under buf_lock. */
		b->hdr.kind = REQ_WRITE;
		b->pack_id = ps->cur_id;
		b->fd = ps->cur_fd;
		b->off = ps->tail;
		b->len = 0;
		pthread_rwlock_wrlock(&ps->buf_lock);
		b->state = WB_FILLING;
		pthread_rwlock_unlock(&ps->buf_lock);
		ps->cur = b;
	}
	/* Bytes past b->len are invisible to readers: copy without buf_lock. */
	memcpy(b->data + b->len, frame, len);
	pthread_rwlock_wrlock(&ps->buf_lock);
	b->len += len;
	pthread_rwlock_unlock(&ps->buf_lock);
	loc->pack_id = ps->cur_id;
	loc->off = ps->tail;
	loc->len = len;
	ps->tail += len;
	ps->cur_dirty = true;
	if (b->len == b->cap)
		wbuf_submit(ps, b);
	/* Free buffers early so the next append rarely has to wait. */
	wring_reap(ps, false);
out:
	pthread_mutex_unlock(&ps->wlock);
	return rc;
}

/* ---- read fd table ---- */

static void fd_ent_put(struct fd_ent *e)
{
	if (atomic_fetch_sub(&e->refs, 1) == 1) {
		close(e->fd);
		free(e);
	}
}

/* Unlist and unref the least recently used entry.  fd_lock held for
 * writing. */
static void fd_table_evict(struct pack_store *ps)
{
	struct fd_ent **victim = NULL;
	unsigned long long best = ~0ULL;

	for (unsigned i = 0; i < PACK_FD_BUCKETS; i++) {
		for (struct fd_ent **pp = &ps->fds[i]; *pp; pp = &(*pp)->next) {
			unsigned long long u = atomic_load(&(*pp)->used);
			if (u < best) {
				best = u;
				victim = pp;
			}
		}
	}
	if (victim) {
		struct fd_ent *e = *victim;
		*victim = e->next;
		ps->nfds--;
		fd_ent_put(e);
	}
}

static struct fd_ent *fd_table_find(struct pack_store *ps, uint32_t id)
{
	for (struct fd_ent *e = ps->fds[id % PACK_FD_BUCKETS]; e; e = e->next)
		if (e->id == id)
			return e;
	return NULL;
}

/* A referenced read fd for pack id; drop it with fd_ent_put. */
static int fd_table_get(struct pack_store *ps, uint32_t id, struct fd_ent **out)
{
	char path[PATH_MAX];
	struct fd_ent *e, *other;
	uint64_t removals;
	int fd;

	pthread_rwlock_rdlock(&ps->fd_lock);
	e = fd_table_find(ps, id);
	if (e) {
		atomic_fetch_add(&e->refs, 1);
		atomic_store(&e->used, atomic_fetch_add(&ps->fd_clock, 1));
	}
	removals = ps->fd_removals;
	pthread_rwlock_unlock(&ps->fd_lock);
	if (e)
		goto done;

	pack_path(ps->dir, id, path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	e = calloc(1, sizeof(*e));
	if (!e) {
		close(fd);
		return -ENOMEM;
	}
	e->id = id;
	e->fd = fd;
	atomic_init(&e->refs, 2); /* the table's and the caller's */
	atomic_init(&e->used, atomic_fetch_add(&ps->fd_clock, 1));

	pthread_rwlock_wrlock(&ps->fd_lock);
	other = fd_table_find(ps, id);
	if (other) {
		/* Another thread opened it meanwhile: use theirs. */
		atomic_fetch_add(&other->refs, 1);
		pthread_rwlock_unlock(&ps->fd_lock);
		close(fd);
		free(e);
		e = other;
		goto done;
	}
	if (ps->fd_removals != removals) {
		/* a pack was removed since the miss (its file unlinked, then
		 * its entry dropped): this fd may be of that file, and cached
		 * it would keep its space until unmount.  This read's only. */
		pthread_rwlock_unlock(&ps->fd_lock);
		atomic_store(&e->refs, 1);
		goto done;
	}
	if (ps->nfds >= PACK_MAX_READ_FDS)
		fd_table_evict(ps);
	e->next = ps->fds[id % PACK_FD_BUCKETS];
	ps->fds[id % PACK_FD_BUCKETS] = e;
	ps->nfds++;
	pthread_rwlock_unlock(&ps->fd_lock);
done:
	*out = e;
	return 0;
}

/* Unlist pack id's fd after its file was unlinked (a reader that opened
 * it before sees the removal count move and does not cache its fd). */
static void fd_table_drop(struct pack_store *ps, uint32_t id)
{
	struct fd_ent **pp, *e = NULL;

	pthread_rwlock_wrlock(&ps->fd_lock);
	ps->fd_removals++;
	for (pp = &ps->fds[id % PACK_FD_BUCKETS]; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			e = *pp;
			*pp = e->next;
			ps->nfds--;
			break;
		}
	}
	pthread_rwlock_unlock(&ps->fd_lock);
	if (e)
		fd_ent_put(e);
}

/* ---- per-thread read rings ---- */

static void read_ring_destroy(struct read_ring *r)
{
	if (r->uring_ok)
		io_uring_queue_exit(&r->ring);
	free(r);
}

/* Thread-exit destructor. */
static void read_ring_release(void *p)
{
	struct read_ring *r = p;
	struct pack_store *ps = r->ps;

	pthread_mutex_lock(&ps->rings_lock);
	if (r->prev)
		r->prev->next = r->next;
	else
		ps->rings = r->next;
	if (r->next)
		r->next->prev = r->prev;
	pthread_mutex_unlock(&ps->rings_lock);
	read_ring_destroy(r);
}

static struct read_ring *read_ring_get(struct pack_store *ps)
{
	struct read_ring *r = pthread_getspecific(ps->ring_key);
	int rc;

	if (r)
		return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ps = ps;
	rc = ps->use_uring ? io_uring_queue_init(PACK_READ_RING, &r->ring, 0) : -ENOSYS;
	r->uring_ok = rc == 0;
	if (rc && ps->use_uring)
		pack_log_fallback(ps, rc);
	if (pthread_setspecific(ps->ring_key, r)) {
		read_ring_destroy(r);
		return NULL;
	}
	pthread_mutex_lock(&ps->rings_lock);
	r->next = ps->rings;
	if (r->next)
		r->next->prev = r;
	ps->rings = r;
	pthread_mutex_unlock(&ps->rings_lock);
	return r;
}

/* ---- reads ---- */

/* Copy loc from a write buffer if it is still there.  Returns true if it
 * was served. */
static bool pack_read_mem(struct pack_store *ps, const struct pack_loc *loc, void *buf)
{
	bool hit = false;

	if (!ps->bufs)
		return false;
	pthread_rwlock_rdlock(&ps->buf_lock);
	for (unsigned i = 0; i < ps->opts.write_bufs; i++) {
		const struct wbuf *b = &ps->bufs[i];
		/* no overflow: loc comes from an index record, maybe damaged */
		if (b->state != WB_FREE && b->pack_id == loc->pack_id && loc->off >= b->off &&
		    loc->len <= b->len && loc->off - b->off <= b->len - loc->len) {
			memcpy(buf, b->data + (loc->off - b->off), loc->len);
			hit = true;
			break;
		}
	}
	pthread_rwlock_unlock(&ps->buf_lock);
	return hit;
}

static int read_req_plain(struct read_req *q)
{
	return io_plain(q->fd, false, q->buf, q->len, q->off, &q->done);
}

static void read_req_prep(struct io_uring_sqe *sqe, struct read_req *q)
{
	io_uring_prep_read(sqe, q->fd, q->buf + q->done, q->len - q->done, q->off + q->done);
	io_uring_sqe_set_data(sqe, &q->hdr);
}

/* Run every pending (res == 1) request of qs to completion on ring r,
 * resubmitting short reads and -EAGAIN. */
static void read_reqs_run(struct read_ring *r, struct read_req **qs, int n)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int next = 0, inflight = 0, rc = 0;

	if (!r->uring_ok || r->broken) {
		for (int i = 0; i < n; i++)
			if (qs[i]->res == 1)
				qs[i]->res = read_req_plain(qs[i]);
		return;
	}
	for (;;) {
		for (; next < n && inflight < PACK_READ_RING; next++) {
			if (qs[next]->res != 1)
				continue;
			sqe = io_uring_get_sqe(&r->ring);
			if (!sqe)
				break;
			read_req_prep(sqe, qs[next]);
			inflight++;
		}
		if (!inflight)
			break;
		rc = ring_submit(&r->ring);
		if (rc == 0 || rc == -EBUSY) /* EBUSY: reap below, then retry */
			do
				rc = io_uring_wait_cqe(&r->ring, &cqe);
			while (rc == -EINTR || rc == -EAGAIN);
		if (rc < 0) {
			/* Ring broken: finish the queued requests by hand. */
			r->broken = true;
			for (int i = 0; i < n; i++)
				if (qs[i]->res == 1)
					qs[i]->res = read_req_plain(qs[i]);
			return;
		}
		do {
			struct read_req *q = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			io_uring_cqe_seen(&r->ring, cqe);
			inflight--;
			if (res == -EAGAIN || res == -EINTR) {
				res = 0;
			} else if (res == 0) {
				q->res = -EIO; /* EOF before the frame ended */
				continue;
			} else if (res < 0) {
				q->res = res;
				continue;
			}
			q->done += (uint32_t)res;
			if (q->done == q->len) {
				q->res = 0;
				continue;
			}
			sqe = io_uring_get_sqe(&r->ring);
			if (!sqe) {
				q->res = read_req_plain(q);
				continue;
			}
			read_req_prep(sqe, q);
			inflight++;
		} while (io_uring_peek_cqe(&r->ring, &cqe) == 0);
	}
}

int pack_read_many(struct pack_store *ps, const struct pack_loc *locs, void *const *bufs,
                   int n, int *res)
{
	/* Small batches (every pack_read) stay off the heap. */
	struct read_req sreqs[PACK_SMALL_BATCH], *sqs[PACK_SMALL_BATCH];
	struct fd_ent *sents[PACK_SMALL_BATCH];
	struct read_req *reqs = sreqs, **qs = sqs;
	struct fd_ent **ents = sents;
	struct read_ring *r;
	int rc = 0, m = 0;

	if (n <= 0)
		return 0;
	if (n > PACK_SMALL_BATCH) {
		reqs = calloc((size_t)n, sizeof(*reqs));
		qs = calloc((size_t)n, sizeof(*qs));
		ents = calloc((size_t)n, sizeof(*ents));
	} else {
		memset(sreqs, 0, sizeof(sreqs));
		memset(sents, 0, sizeof(sents));
	}
	r = read_ring_get(ps);
	if (!reqs || !qs || !ents || !r) {
		for (int i = 0; i < n; i++)
			res[i] = -ENOMEM;
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		res[i] = 0;
		if (!locs[i].len || pack_read_mem(ps, &locs[i], bufs[i]))
			continue;
		res[i] = fd_table_get(ps, locs[i].pack_id, &ents[i]);
		if (res[i])
			continue;
		reqs[i].hdr.kind = REQ_READ;
		reqs[i].fd = ents[i]->fd;
		reqs[i].buf = bufs[i];
		reqs[i].len = locs[i].len;
		reqs[i].off = locs[i].off;
		reqs[i].res = 1;
		qs[m++] = &reqs[i];
	}
	read_reqs_run(r, qs, m);
	for (int i = 0; i < n; i++) {
		if (ents[i]) {
			res[i] = reqs[i].res;
			fd_ent_put(ents[i]);
		}
		if (res[i] && !rc)
			rc = res[i];
	}
out:
	if (n > PACK_SMALL_BATCH) {
		free(ents);
		free(qs);
		free(reqs);
	}
	return rc;
}

int pack_read(struct pack_store *ps, const struct pack_loc *loc, void *buf)
{
	void *bufs[1] = { buf };
	int res;

	return pack_read_many(ps, loc, bufs, 1, &res);
}

/* ---- store ---- */

int pack_store_open(const char *dir, const struct pack_opts *opts, pack_id_alloc_fn alloc,
                    void *alloc_arg, struct pack_store **out)
{
	struct pack_store *ps;
	unsigned entries;
	int rc;

	*out = NULL;
	if (!dir || !alloc)
		return -EINVAL;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->dirfd = -1;
	ps->cur_fd = -1;
	ps->alloc = alloc;
	ps->alloc_arg = alloc_arg;
	ps->opts.max_pack_bytes = opts && opts->max_pack_bytes ? opts->max_pack_bytes : PACK_DEF_MAX_BYTES;
	ps->opts.write_buf_bytes = opts && opts->write_buf_bytes ? opts->write_buf_bytes : PACK_DEF_BUF_BYTES;
	ps->opts.write_bufs = opts && opts->write_bufs ? opts->write_bufs : PACK_DEF_BUFS;
	ps->dir = strdup(dir);
	if (!ps->dir) {
		rc = -ENOMEM;
		goto err_free;
	}
	ps->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ps->dirfd < 0) {
		rc = -errno;
		goto err_dir;
	}
	ps->bufs = calloc(ps->opts.write_bufs, sizeof(*ps->bufs));
	if (!ps->bufs) {
		rc = -ENOMEM;
		goto err_dirfd;
	}
	rc = pthread_key_create(&ps->ring_key, read_ring_release);
	if (rc) {
		rc = -rc;
		goto err_bufs;
	}
	/* Room for every buffer write plus one sync batch. */
	entries = ps->opts.write_bufs + PACK_MAX_RETIRED + 2;
	/* MIXFS_PACK_NO_URING forces the fallback so tests can cover it. */
	rc = getenv("MIXFS_PACK_NO_URING") ? -ENOSYS : io_uring_queue_init(entries, &ps->wring, 0);
	ps->use_uring = rc == 0;
	if (rc)
		pack_log_fallback(ps, rc);
	pthread_mutex_init(&ps->wlock, NULL);
	pthread_rwlock_init(&ps->buf_lock, NULL);
	pthread_rwlock_init(&ps->fd_lock, NULL);
	pthread_mutex_init(&ps->rings_lock, NULL);
	*out = ps;
	return 0;

err_bufs:
	free(ps->bufs);
err_dirfd:
	close(ps->dirfd);
err_dir:
	free(ps->dir);
err_free:
	free(ps);
	return rc;
}

int pack_store_clear_error(struct pack_store *ps)
{
	int rc;

	pthread_mutex_lock(&ps->wlock);
	rc = ps->err;
	if (!rc || ps->wbroken) /* a broken ring stays failed: see wbroken */
		goto out;
	if (ps->cur) { /* frames never submitted: dropped with the error */
		wbuf_retire(ps, ps->cur, 0);
		ps->cur = NULL;
	}
	wring_drain(ps);
	for (unsigned i = 0; i < ps->nretired; i++)
		close(ps->retired[i].fd);
	ps->nretired = 0;
	/* The failed pack may end in a torn write: never append after it.
	 * Unless no sync of it ever succeeded: then nothing committed names
	 * it, and it is emptied and reused (a disk that stays full would
	 * otherwise get an empty pack per failed attempt). */
	if (ps->cur_fd >= 0 && !ps->cur_durable && ftruncate(ps->cur_fd, 0) == 0) {
		ps->tail = 0;
	} else if (ps->cur_fd >= 0) {
		close(ps->cur_fd);
		ps->cur_fd = -1;
	}
	ps->cur_dirty = false;
	ps->err = 0;
	atomic_fetch_add(&ps->gen, 1);
out:
	pthread_mutex_unlock(&ps->wlock);
	return rc;
}

uint64_t pack_store_gen(struct pack_store *ps)
{
	/* no lock: callers hold wlock or plock of the engine (lock order) */
	return atomic_load(&ps->gen);
}

void pack_store_close(struct pack_store *ps)
{
	struct read_ring *r, *next;
	int rc;

	if (!ps)
		return;
	pthread_mutex_lock(&ps->wlock);
	rc = pack_sync_locked(ps);
	if (rc)
		pack_log(ps, "close: unsynced data lost: %s", strerror(-rc));
	wring_drain(ps); /* after an error buffers may still be in flight */
	pthread_mutex_unlock(&ps->wlock);

	/* Past this point no destructor of ours runs at thread exit, so the
	 * rings still listed are ours alone to free.  (A thread exiting while
	 * close runs could still be inside read_ring_release: the caller must
	 * have stopped using the store in every thread, as for any free.) */
	pthread_key_delete(ps->ring_key);
	for (r = ps->rings; r; r = next) {
		next = r->next;
		read_ring_destroy(r);
	}
	for (unsigned i = 0; i < PACK_FD_BUCKETS; i++) {
		while (ps->fds[i]) {
			struct fd_ent *e = ps->fds[i];
			ps->fds[i] = e->next;
			fd_ent_put(e);
		}
	}
	for (unsigned i = 0; i < ps->nretired; i++)
		close(ps->retired[i].fd);
	if (ps->cur_fd >= 0)
		close(ps->cur_fd);
	if (ps->use_uring)
		io_uring_queue_exit(&ps->wring);
	/* With a broken ring the kernel may still read the buffers: leak them. */
	for (unsigned i = 0; i < ps->opts.write_bufs && !ps->wbroken; i++)
		free(ps->bufs[i].data);
	if (!ps->wbroken)
		free(ps->bufs);
	pthread_mutex_destroy(&ps->rings_lock);
	pthread_rwlock_destroy(&ps->fd_lock);
	pthread_rwlock_destroy(&ps->buf_lock);
	pthread_mutex_destroy(&ps->wlock);
	close(ps->dirfd);
	free(ps->dir);
	free(ps);
}

void pack_store_seal(struct pack_store *ps)
{
	pthread_mutex_lock(&ps->wlock);
	/* an empty pack is not sealed: the next append goes to it (a flag
	 * left set would roll the pack over after that append) */
	if (ps->tail)
		ps->seal = true;
	pthread_mutex_unlock(&ps->wlock);
}

uint32_t pack_store_current(struct pack_store *ps)
{
	uint32_t id;

	pthread_mutex_lock(&ps->wlock);
	id = ps->cur_fd >= 0 ? ps->cur_id : 0;
	/* sealed: nothing more goes to cur_id, the next append opens a pack
	 * with a higher id */
	if (id && ps->seal && ps->tail)
		id++;
	pthread_mutex_unlock(&ps->wlock);
	return id;
}

int64_t pack_file_size(struct pack_store *ps, uint32_t id)
{
	char path[PATH_MAX];
	struct stat st;

	pack_path(ps->dir, id, path, sizeof(path));
	if (stat(path, &st) < 0)
		return -errno;
	return (int64_t)st.st_size;
}

int pack_remove(struct pack_store *ps, uint32_t id)
{
	char path[PATH_MAX];
	bool busy;
	int rc = 0;

	pthread_mutex_lock(&ps->wlock);
	busy = ps->cur_fd >= 0 && id == ps->cur_id;
	if (busy && ps->seal && ps->tail && !ps->cur && !ps->inflight && !ps->cur_dirty) {
		/* sealed, all of it written and synced: nothing more goes
		 * there, the next append opens a new pack anyway */
		close(ps->cur_fd);
		ps->cur_fd = -1;
		ps->seal = false;
		busy = false;
	}
	for (unsigned i = 0; i < ps->nretired; i++)
		busy |= ps->retired[i].id == id;
	pthread_mutex_unlock(&ps->wlock);
	if (busy)
		return -EBUSY;
	pack_path(ps->dir, id, path, sizeof(path));
	if (unlink(path) < 0)
		rc = -errno;
	fd_table_drop(ps, id);
	return rc;
}
