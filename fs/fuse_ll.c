/*
 * fuse_ll.c - FUSE low-level glue: one request, one eng_* call, one reply.
 *
 * The only file that includes <fuse_lowlevel.h>.  Engine results are
 * negative errno values; the sign flips once, in reply_err().  Inode
 * numbers are the engine's own (its root is FUSE_ROOT_ID); no file handle
 * state lives here, the engine counts opens per inode.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs/engine.h"
#include "fs/fuse_ll.h"

/* Short enough that a second process looking at the store directly (stats,
 * fsck) sees fresh attributes soon; long enough to absorb the stat storm of
 * ls -l and of Python's open(). */
#define MFS_TIMEOUT 1.0

#define MFS_NAME_MAX 255
#define MFS_SYMLINK_MAX 4095

/* Largest write the kernel may send: 1 MiB is libfuse's buffer limit
 * (FUSE_MAX_MAX_PAGES) and a few chunks' worth for the chunker. */
#define MFS_MAX_WRITE (1u << 20)

struct mfs {
	struct eng *e;
	bool writeback;
	bool blocks_logical;
	uint32_t ra_kb; /* kernel readahead window to set (kernel_ra=) */
	const char *mountpoint;
	atomic_bool ra_raised;
};

/* The kernel offers FUSE 128 KiB of readahead at INIT and takes the
 * smaller of the bdi's readahead and the reply's max_readahead; so while
 * INIT is answered (the mount and its bdi exist by then) the bdi is raised
 * through sysfs (as root) and the reply asks for as much, before any file
 * can be opened.  Sequential readers get 1 MiB requests (fewer round
 * trips), several in flight, so the decoders seldom wait: idle CPU ticks
 * of a 512 MiB cold read 33-48 with 1 MiB, 15-19 with 4 MiB; cold read
 * median +2% over 1 MiB raised at the first read (docs/BENCHMARKS.md).  An
 * mmap page fault reads this much around it too, decoding every chunk in
 * it: -o kernel_ra= sets another window (128K for random mmap access: a
 * fault 1.8 ms instead of 6.5 ms).  Best effort: a failure (not root, no
 * sysfs) leaves the kernel's default. */
#define MFS_READ_AHEAD_KB 4096

static bool raise_readahead(const char *mountpoint, uint32_t kb)
{
	char line[4096], path[64], real[PATH_MAX];
	unsigned maj, min;
	bool found = false, ok = false;
	FILE *f;

	if (!mountpoint || !realpath(mountpoint, real))
		return false;
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX];
		/* id parent maj:min root mountpoint ... - fstype ... */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) == 3 &&
		    strcmp(mnt, real) == 0 && strstr(line, " - fuse.mixfs "))
			found = true;
	}
	fclose(f);
	if (!found)
		return false;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
	f = fopen(path, "r+");
	if (!f)
		return false;
	unsigned cur = 0;
	if (fscanf(f, "%u", &cur) == 1) {
		ok = cur == kb;
		if (!ok) {
			rewind(f);
			ok = fprintf(f, "%u\n", kb) > 0;
		}
	}
	if (fclose(f) != 0)
		ok = false;
	return ok;
}

static struct eng *req_eng(fuse_req_t req)
{
	return ((struct mfs *)fuse_req_userdata(req))->e;
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, -rc);
}

static bool name_too_long(const char *name)
{
	return strnlen(name, MFS_NAME_MAX + 1) > MFS_NAME_MAX;
}

static void req_cred(fuse_req_t req, struct eng_cred *cr)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	cr->uid = ctx->uid;
	cr->gid = ctx->gid;
	cr->umask = ctx->umask;
}

/* st_blocks as mounted: the stored bytes (du shows what a file takes), or
 * with blocks=logical at least the size, so that a compressed file does
 * not look sparse (coreutils' cp then copies it with copy_file_range,
 * which maps the chunks; holes stay holes either way). */
static void attr_blocks(fuse_req_t req, struct stat *st)
{
	const struct mfs *m = fuse_req_userdata(req);
	if (m->blocks_logical && S_ISREG(st->st_mode)) {
		blkcnt_t b = (blkcnt_t)(((uint64_t)st->st_size + 511) / 512);
		if (st->st_blocks < b)
			st->st_blocks = b;
	}
}

static void fill_entry(fuse_req_t req, struct fuse_entry_param *ep, const struct eng_attr *a)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = a->st.st_ino;
	ep->generation = a->generation;
	ep->attr = a->st;
	attr_blocks(req, &ep->attr);
	ep->attr_timeout = a->unsettled ? 0.0 : MFS_TIMEOUT;
	ep->entry_timeout = MFS_TIMEOUT;
}

/* Reply to an engine call that returned rc and, on success, a new lookup
 * reference to *a.  If the reply does not reach the kernel (the request was
 * interrupted), the kernel never counts the reference and will never
 * forget it, so drop it here. */
static void reply_entry(fuse_req_t req, int rc, const struct eng_attr *a)
{
	struct fuse_entry_param ep;

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fill_entry(req, &ep, a);
	if (fuse_reply_entry(req, &ep) != 0)
		eng_forget(req_eng(req), a->st.st_ino, 1);
}

static void mfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mfs *m = userdata;

	if (conn->max_write > MFS_MAX_WRITE)
		conn->max_write = MFS_MAX_WRITE;
	if (raise_readahead(m->mountpoint, m->ra_kb)) {
		atomic_store(&m->ra_raised, true);
		conn->max_readahead = m->ra_kb * 1024;
	}
	/* The engine keeps no per-handle state and does not clear set-id bits
	 * on write, so let the kernel do it with a setattr. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* Directory operations are serialised inside the engine (one LMDB
	 * writer); lookups may run in parallel. */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* open(O_TRUNC) arrives as one open with O_TRUNC, passed to the
	 * engine, instead of open + setattr. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_EXPORT_SUPPORT;
	/* Off by default: with it the kernel writes back dirty pages when
	 * and in what order it likes, which breaks up the sequential appends
	 * the engine's write path is built for, and it keeps size and mtime
	 * itself.  -o writeback opts in, for many small writes. */
	if (m->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void mfs_destroy(void *userdata)
{
	struct mfs *m = userdata;
	int rc = eng_sync_all(m->e);

	if (rc < 0)
		syslog(LOG_ERR, "sync at unmount failed: %s", strerror(-rc));
}

static void mfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct eng_attr a;
	int rc;

	if (name_too_long(name)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	rc = eng_lookup(req_eng(req), parent, name, &a);
	if (rc == -ENOENT) {
		/* A negative entry: the kernel caches the miss for the
		 * timeout (it drops it itself when it creates the name). */
		struct fuse_entry_param ep;

		memset(&ep, 0, sizeof(ep));
		ep.entry_timeout = MFS_TIMEOUT;
		fuse_reply_entry(req, &ep);
		return;
	}
	reply_entry(req, rc, &a);
}

static void mfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	eng_forget(req_eng(req), ino, nlookup);
	fuse_reply_none(req);
}

static void mfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct eng *e = req_eng(req);
	size_t i;

	for (i = 0; i < count; i++)
		eng_forget(e, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void mfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct eng_attr a;
	int rc = eng_getattr(req_eng(req), ino, &a);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	attr_blocks(req, &a.st);
	/* st_blocks of bytes not committed yet changes at their commit (within
	 * commit_ms of a close): not cached meanwhile */
	fuse_reply_attr(req, &a.st, a.unsettled ? 0.0 : MFS_TIMEOUT);
}

static void mfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                        struct fuse_file_info *fi)
{
	struct eng_setattr sa;
	struct eng_attr a;
	struct timespec now;
	int rc;

	/* fi != NULL means ftruncate/futimens on an open file: the engine
	 * tracks opens per inode, so it is the same call. */
	memset(&sa, 0, sizeof(sa));
	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.valid |= ENG_SET_MODE;
		sa.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.valid |= ENG_SET_UID;
		sa.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.valid |= ENG_SET_GID;
		sa.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa.valid |= ENG_SET_SIZE;
		sa.size = (uint64_t)attr->st_size;
	}
	/* For "now" both the flag and the time are filled in, so the
	 * engine is right whichever of the two it looks at. */
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		sa.valid |= ENG_SET_ATIME | ENG_SET_ATIME_NOW;
		sa.atime = now;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa.valid |= ENG_SET_ATIME;
		sa.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		sa.valid |= ENG_SET_MTIME | ENG_SET_MTIME_NOW;
		sa.mtime = now;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa.valid |= ENG_SET_MTIME;
		sa.mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		sa.valid |= ENG_SET_CTIME;
		sa.ctime = attr->st_ctim;
	}
	rc = eng_setattr(req_eng(req), ino, &sa, &a);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	attr_blocks(req, &a.st);
	fuse_reply_attr(req, &a.st, MFS_TIMEOUT);
}

static void mfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[MFS_SYMLINK_MAX + 1];
	int rc = eng_readlink(req_eng(req), ino, buf, sizeof(buf) - 1);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	buf[rc] = '\0';
	fuse_reply_readlink(req, buf);
}

static void mfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct eng_cred cr;
	struct eng_attr a;

	if (name_too_long(name)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	req_cred(req, &cr);
	reply_entry(req, eng_mknod(req_eng(req), parent, name, mode, rdev, &cr, &a), &a);
}

static void mfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct eng_cred cr;
	struct eng_attr a;

	if (name_too_long(name)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	req_cred(req, &cr);
	/* The kernel sends the permission bits only. */
	reply_entry(req, eng_mkdir(req_eng(req), parent, name, S_IFDIR | (mode & 07777), &cr, &a),
	            &a);
}

static void mfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (name_too_long(name)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	reply_err(req, eng_unlink(req_eng(req), parent, name));
}

static void mfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (name_too_long(name)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	reply_err(req, eng_rmdir(req_eng(req), parent, name));
}

static void mfs_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct eng_cred cr;
	struct eng_attr a;

	if (name_too_long(name) || strnlen(target, MFS_SYMLINK_MAX + 1) > MFS_SYMLINK_MAX) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	req_cred(req, &cr);
	reply_entry(req, eng_symlink(req_eng(req), parent, name, target, &cr, &a), &a);
}

static void mfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                       const char *newname, unsigned int flags)
{
	if (name_too_long(name) || name_too_long(newname)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	/* RENAME_WHITEOUT is for overlay upper layers; not supported. */
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		reply_err(req, -EINVAL);
		return;
	}
	reply_err(req, eng_rename(req_eng(req), parent, name, newparent, newname, flags));
}

static void mfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct eng_attr a;

	if (name_too_long(newname)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	reply_entry(req, eng_link(req_eng(req), ino, newparent, newname, &a), &a);
}

/* A file handle's fh: 1 if it was opened for writing (flush needs it). */
static uint64_t fh_writes(const struct fuse_file_info *fi)
{
	return (fi->flags & O_ACCMODE) != O_RDONLY;
}

static void mfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	int rc;

	/* With the writeback cache the kernel reads pages around partial
	 * writes through this handle, even if it was opened write-only. */
	if (m->writeback && (fi->flags & O_ACCMODE) == O_WRONLY)
		fi->flags = (fi->flags & ~O_ACCMODE) | O_RDWR;
	rc = eng_open(m->e, ino, fi->flags);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	/* Keep cached pages across opens: decoding a chunk costs far more
	 * than a disk read, and checkpoints are read again and again.  This
	 * is safe because every change goes through this mount (the kernel
	 * updates or drops the pages itself on write, truncate and punch),
	 * and AUTO_INVAL_DATA drops them when getattr shows a new mtime or
	 * size. */
	fi->keep_cache = 1;
	fi->direct_io = 0;
	fi->fh = fh_writes(fi);
	if (fuse_reply_open(req, fi) != 0)
		eng_release(m->e, ino);
}

static void mfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                       struct fuse_file_info *fi)
{
	struct mfs *m = fuse_req_userdata(req);
	struct fuse_entry_param ep;
	struct eng_cred cr;
	struct eng_attr a;
	int rc;

	if (name_too_long(name)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	if (m->writeback && (fi->flags & O_ACCMODE) == O_WRONLY)
		fi->flags = (fi->flags & ~O_ACCMODE) | O_RDWR;
	req_cred(req, &cr);
	rc = eng_create(m->e, parent, name, S_IFREG | (mode & 07777), fi->flags, &cr, &a);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fill_entry(req, &ep, &a);
	fi->keep_cache = 1;
	fi->direct_io = 0;
	fi->fh = fh_writes(fi);
	if (fuse_reply_create(req, &ep, fi) != 0) {
		eng_release(m->e, a.st.st_ino);
		eng_forget(m->e, a.st.st_ino, 1);
	}
}

static void mfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	void *buf = NULL;
	ssize_t n;
	struct mfs *m = fuse_req_userdata(req);

	/* INIT could not raise it (the mount not found in mountinfo yet?):
	 * once more, after INIT now; files opened already keep their window */
	if (!atomic_exchange(&m->ra_raised, true))
		raise_readahead(m->mountpoint, m->ra_kb);
	if (off < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	if (size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* common case: the bytes go from the decoded-chunk cache straight to
	 * /dev/fuse (writev), no copy through a reply buffer */
	struct eng_rdvec *v = malloc(sizeof(*v));
	if (v) {
		n = eng_read_vec(m->e, ino, (uint64_t)off, size, v);
		if (n >= 0) {
			if (n == 0)
				fuse_reply_buf(req, NULL, 0);
			else
				fuse_reply_iov(req, v->iov, (int)v->n);
			eng_rdvec_release(m->e, v);
			free(v);
			return;
		}
		free(v);
		if (n != -EAGAIN) {
			reply_err(req, (int)n);
			return;
		}
	}
	buf = malloc(size);
	if (buf == NULL) {
		reply_err(req, -ENOMEM);
		return;
	}
	n = eng_read(req_eng(req), ino, (uint64_t)off, size, buf);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void mfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
	ssize_t n;

	if (off < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	n = eng_write(req_eng(req), ino, (uint64_t)off, buf, size);
	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	fuse_reply_write(req, (size_t)n);
}

static void mfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* The close of a descriptor opened read-only stores nothing and
	 * reports nothing (as NFS does): it neither waits for other
	 * writers' bytes nor returns their write-back error (ENOSPC) to a
	 * reader.  Writers' closes, fsync and the unmount store them. */
	if (!fi->fh) {
		fuse_reply_err(req, 0);
		return;
	}
	reply_err(req, eng_flush(req_eng(req), ino));
}

static void mfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close(2) has already returned; an error here has nobody to go to
	 * (flush reported the interesting ones). */
	reply_err(req, eng_release(req_eng(req), ino));
}

static void mfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	reply_err(req, eng_fsync(req_eng(req), ino, datasync != 0));
}

static void mfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int rc = eng_opendir(req_eng(req), ino);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fuse_reply_open(req, fi);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size;
	size_t pos;
};

static int dirbuf_add(void *arg, const char *name, const struct stat *st, int64_t next_off)
{
	struct dirbuf *d = arg;
	size_t len = fuse_add_direntry(d->req, d->buf + d->pos, d->size - d->pos, name, st,
	                               (off_t)next_off);

	/* Too big for the rest of the reply: the next readdir resumes here. */
	if (len > d->size - d->pos)
		return 1;
	d->pos += len;
	return 0;
}

static void mfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
	struct dirbuf d = { .req = req, .size = size };
	int rc;

	d.buf = malloc(size > 0 ? size : 1);
	if (d.buf == NULL) {
		reply_err(req, -ENOMEM);
		return;
	}
	rc = eng_readdir(req_eng(req), ino, off, dirbuf_add, &d);
	/* Entries already packed are worth more than the error: the next
	 * call starts after them and meets the error again. */
	if (rc < 0 && d.pos == 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, d.buf, d.pos);
	free(d.buf);
}

static void mfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void mfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	reply_err(req, eng_fsyncdir(req_eng(req), ino));
}

static void mfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc = eng_statfs(req_eng(req), &sv);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fuse_reply_statfs(req, &sv);
}

static void mfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                         size_t size, int flags)
{
	reply_err(req, eng_setxattr(req_eng(req), ino, name, value, size, flags));
}

/* getxattr and listxattr share the size-query protocol: size 0 asks for the
 * length only (fuse_reply_xattr), otherwise the value is sent. */
static void reply_xattr_result(fuse_req_t req, int rc, const void *buf, size_t size)
{
	if (rc < 0)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
}

/* Reply buffer for an xattr value or list; size 0 is a size query and
 * needs none. */
static void *xattr_buf(fuse_req_t req, size_t size, bool *failed)
{
	void *buf = NULL;

	*failed = false;
	if (size > 0 && (buf = malloc(size)) == NULL) {
		reply_err(req, -ENOMEM);
		*failed = true;
	}
	return buf;
}

static void mfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	bool failed;
	void *buf = xattr_buf(req, size, &failed);

	if (failed)
		return;
	reply_xattr_result(req, eng_getxattr(req_eng(req), ino, name, buf, size), buf, size);
	free(buf);
}

static void mfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	bool failed;
	char *buf = xattr_buf(req, size, &failed);

	if (failed)
		return;
	reply_xattr_result(req, eng_listxattr(req_eng(req), ino, buf, size), buf, size);
	free(buf);
}

static void mfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	reply_err(req, eng_removexattr(req_eng(req), ino, name));
}

static void mfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                          struct fuse_file_info *fi)
{
	if (off < 0 || len <= 0) {
		reply_err(req, -EINVAL);
		return;
	}
	reply_err(req, eng_fallocate(req_eng(req), ino, mode, (uint64_t)off, (uint64_t)len));
}

static void mfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                      struct fuse_file_info *fi)
{
	int64_t r;

	/* The kernel answers SEEK_SET/CUR/END itself. */
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		reply_err(req, -EINVAL);
		return;
	}
	r = eng_lseek(req_eng(req), ino, off, whence);
	if (r < 0) {
		reply_err(req, (int)r);
		return;
	}
	fuse_reply_lseek(req, (off_t)r);
}

static void mfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                                struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                                struct fuse_file_info *fi_out, size_t len, int flags)
{
	ssize_t n;

	(void)fi_in;
	(void)fi_out;
	if (off_in < 0 || off_out < 0 || flags < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	/* at most ENG_COPY_MAX a call: the reply's count is 32 bits wide;
	 * callers loop on a short count */
	n = eng_copy_range(req_eng(req), ino_in, (uint64_t)off_in, ino_out, (uint64_t)off_out, len,
	                   (unsigned)flags);
	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	fuse_reply_write(req, (size_t)n);
}

static const struct fuse_lowlevel_ops mfs_ops = {
	.init = mfs_init,
	.destroy = mfs_destroy,
	.lookup = mfs_lookup,
	.forget = mfs_forget,
	.forget_multi = mfs_forget_multi,
	.getattr = mfs_getattr,
	.setattr = mfs_setattr,
	.readlink = mfs_readlink,
	.mknod = mfs_mknod,
	.mkdir = mfs_mkdir,
	.unlink = mfs_unlink,
	.rmdir = mfs_rmdir,
	.symlink = mfs_symlink,
	.rename = mfs_rename,
	.link = mfs_link,
	.open = mfs_open,
	.read = mfs_read,
	.write = mfs_write,
	.flush = mfs_flush,
	.release = mfs_release,
	.fsync = mfs_fsync,
	.opendir = mfs_opendir,
	.readdir = mfs_readdir,
	.releasedir = mfs_releasedir,
	.fsyncdir = mfs_fsyncdir,
	.statfs = mfs_statfs,
	.setxattr = mfs_setxattr,
	.getxattr = mfs_getxattr,
	.listxattr = mfs_listxattr,
	.removexattr = mfs_removexattr,
	.create = mfs_create,
	.fallocate = mfs_fallocate,
	.lseek = mfs_lseek,
	.copy_file_range = mfs_copy_file_range,
};

const char *mixfs_store_strerror(int rc)
{
	switch (rc) {
	case -ENOENT:
		return "no mixfs store there (run mixfs mkfs first)";
	case -EINVAL:
		return "not a mixfs store";
	case -EUCLEAN:
		return "its index (index/data.mdb) is damaged (run mixfs fsck --repair)";
	case -EPROTONOSUPPORT:
		return "store was made by a newer mixfs (format version too new)";
	case -EACCES:
	case -EPERM:
		return "permission denied";
	case -EBUSY:
	case -EAGAIN:
		return "store is in use (mounted elsewhere?)";
	case -ELOOP:
		return "part of the store is a symbolic link (refused: the daemon never follows links out of the store)";
	default:
		return strerror(-rc);
	}
}

const char *mixfs_fuse_version(void)
{
	return fuse_pkgversion();
}

void mixfs_fuse_help(void)
{
	fuse_lowlevel_help();
}

/* Escape ',' and '\' so a path survives libfuse's -o option parsing. */
static int add_path_opt(struct fuse_args *args, const char *key, const char *path)
{
	char *opt = NULL;
	char *opts = NULL;
	int rc = -ENOMEM;

	if (asprintf(&opt, "%s=%s", key, path) < 0) {
		opt = NULL;
		goto out;
	}
	if (fuse_opt_add_opt_escaped(&opts, opt) != 0)
		goto out;
	if (fuse_opt_add_arg(args, "-o") != 0 || fuse_opt_add_arg(args, opts) != 0)
		goto out;
	rc = 0;
out:
	free(opts);
	free(opt);
	return rc;
}

/* Daemon start-up: the child reports one status byte through a pipe once the
 * store is open and mounted (or failed); the parent waits for it. */
static int daemon_fork(int *report_fd)
{
	int fds[2];
	pid_t pid;
	unsigned char status = 1;
	ssize_t n;

	if (pipe(fds) != 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int err = errno;

		close(fds[0]);
		close(fds[1]);
		return -err;
	}
	if (pid == 0) {
		close(fds[0]);
		*report_fd = fds[1];
		if (setsid() < 0)
			perror("mixfs: setsid");
		return 0;
	}
	close(fds[1]);
	do
		n = read(fds[0], &status, 1);
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	/* No byte: the child died before it could report. */
	_exit(n == 1 ? status : 1);
}

static void daemon_report(int *report_fd, unsigned char status)
{
	ssize_t n;

	if (*report_fd < 0)
		return;
	do
		n = write(*report_fd, &status, 1);
	while (n < 0 && errno == EINTR);
	close(*report_fd);
	*report_fd = -1;
}

/* Detach from the terminal once mounted, as fuse_daemonize() would. */
static void daemon_detach(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (chdir("/") != 0)
		perror("mixfs: chdir /");
	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

int mixfs_fuse_main(const struct mixfs_mount_cfg *cfg, struct fuse_args *args)
{
	const char *prog = cfg->progname ? cfg->progname : "mixfs";
	struct mfs m = { .writeback = cfg->writeback, .blocks_logical = cfg->blocks_logical,
	                 .ra_kb = cfg->kernel_ra_kb ? cfg->kernel_ra_kb : MFS_READ_AHEAD_KB,
	                 .mountpoint = cfg->mountpoint };
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc = NULL;
	int report_fd = -1;
	bool signals = false, mounted = false;
	int rc, status = 1;

	/* Permission checks by the kernel: the engine stores modes and
	 * owners but does not check them. */
	if (fuse_opt_add_arg(args, "-odefault_permissions") != 0 ||
	    add_path_opt(args, "fsname", cfg->store) != 0 ||
	    fuse_opt_add_arg(args, "-osubtype=mixfs") != 0) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	/* The engine reports corrupt chunks and failed write-backs with
	 * syslog(3); in the foreground they are copied to the terminal. */
	openlog("mixfs", LOG_PID | (cfg->foreground ? LOG_PERROR : 0), LOG_DAEMON);
	if (!cfg->foreground) {
		rc = daemon_fork(&report_fd);
		if (rc < 0) {
			fprintf(stderr, "%s: fork: %s\n", prog, strerror(-rc));
			return 1;
		}
	}
	rc = eng_store_open(cfg->store, &cfg->eng, &m.e);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot open store %s: %s\n", prog, cfg->store,
		        mixfs_store_strerror(rc));
		m.e = NULL;
		goto out;
	}
	se = fuse_session_new(args, &mfs_ops, sizeof(mfs_ops), &m);
	if (se == NULL) {
		fprintf(stderr, "%s: bad FUSE options (see mixfs mount --help)\n", prog);
		status = 2; /* usage, as for a bad mixfs option */
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "%s: cannot set signal handlers\n", prog);
		goto out;
	}
	signals = true;
	if (fuse_session_mount(se, cfg->mountpoint) != 0) {
		fprintf(stderr, "%s: cannot mount on %s\n", prog, cfg->mountpoint);
		goto out;
	}
	mounted = true;
	daemon_report(&report_fd, 0);
	if (!cfg->foreground)
		daemon_detach();

	if (cfg->single_thread) {
		rc = fuse_session_loop(se);
	} else {
		lc = fuse_loop_cfg_create();
		if (lc == NULL) {
			rc = -ENOMEM;
		} else {
			/* One /dev/fuse fd per thread avoids a shared wakeup. */
			fuse_loop_cfg_set_clone_fd(lc, 1);
			fuse_loop_cfg_set_idle_threads(lc, 10);
			rc = fuse_session_loop_mt(se, lc);
		}
	}
	/* The loop returns the signal number that ended it, or an error. */
	status = rc < 0 ? 1 : 0;
	if (rc < 0)
		syslog(LOG_ERR, "session loop: %s", strerror(-rc));
out:
	daemon_report(&report_fd, (unsigned char)status);
	if (lc != NULL)
		fuse_loop_cfg_destroy(lc);
	if (mounted)
		fuse_session_unmount(se);
	if (signals)
		fuse_remove_signal_handlers(se);
	/* Calls mfs_destroy (final sync) if the kernel had initialised. */
	if (se != NULL)
		fuse_session_destroy(se);
	rc = eng_store_close(m.e);
	if (rc < 0) {
		syslog(LOG_ERR, "closing store %s: %s", cfg->store, strerror(-rc));
		status = 1;
	}
	closelog();
	return status;
}
