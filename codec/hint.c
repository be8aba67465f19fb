/*
 * hint.c - safetensors and torch.save zip parsers for codec hints.
 *
 * The JSON reader understands exactly what a safetensors header needs and
 * skips everything else with a depth limit; all reads go through a cursor
 * bounded by the header length.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/hint.h"

#define JSON_MAX_DEPTH 32
#define SHAPE_MAX_DIMS 16

struct json_cur {
	const char *p, *end;
};

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void json_ws(struct json_cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int json_eat(struct json_cur *c, char ch)
{
	json_ws(c);
	if (c->p >= c->end || *c->p != ch)
		return -EBADMSG;
	c->p++;
	return 0;
}

/* A string token; s and n give its raw bytes (escapes left as they are, the
 * names we compare against have none). */
static int json_string(struct json_cur *c, const char **s, size_t *n)
{
	if (json_eat(c, '"'))
		return -EBADMSG;
	*s = c->p;
	while (c->p < c->end && *c->p != '"') {
		if (*c->p == '\\' && ++c->p >= c->end)
			return -EBADMSG;
		c->p++;
	}
	if (c->p >= c->end)
		return -EBADMSG;
	*n = (size_t)(c->p - *s);
	c->p++;
	return 0;
}

static int json_u64(struct json_cur *c, uint64_t *v)
{
	uint64_t x = 0;
	const char *start;

	json_ws(c);
	start = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return -EBADMSG;
		x = x * 10 + (uint64_t)(*c->p++ - '0');
	}
	if (c->p == start)
		return -EBADMSG;
	*v = x;
	return 0;
}

static int json_skip(struct json_cur *c, int depth)
{
	const char *s;
	size_t n;

	if (depth > JSON_MAX_DEPTH)
		return -EBADMSG;
	json_ws(c);
	if (c->p >= c->end)
		return -EBADMSG;
	switch (*c->p) {
	case '"':
		return json_string(c, &s, &n);
	case '{':
	case '[': {
		char close = *c->p == '{' ? '}' : ']';

		c->p++;
		json_ws(c);
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return 0;
		}
		for (;;) {
			if (close == '}' && (json_string(c, &s, &n) || json_eat(c, ':')))
				return -EBADMSG;
			if (json_skip(c, depth + 1))
				return -EBADMSG;
			json_ws(c);
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				continue;
			}
			return json_eat(c, close);
		}
	}
	default:
		/* number, true, false, null: a run of token characters */
		s = c->p;
		while (c->p < c->end && *c->p && strchr("+-.0123456789eEtruefalsn", *c->p))
			c->p++;
		return c->p > s ? 0 : -EBADMSG;
	}
}

/* Array of unsigned integers; *n gets the count (at most max are kept). */
static int json_u64_array(struct json_cur *c, uint64_t *v, size_t max, size_t *n)
{
	*n = 0;
	if (json_eat(c, '['))
		return -EBADMSG;
	json_ws(c);
	if (c->p < c->end && *c->p == ']') {
		c->p++;
		return 0;
	}
	for (;;) {
		uint64_t x;

		if (json_u64(c, &x))
			return -EBADMSG;
		if (*n < max)
			v[*n] = x;
		(*n)++;
		json_ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		return json_eat(c, ']');
	}
}

static int name_is(const char *s, size_t n, const char *lit)
{
	return n == strlen(lit) && !memcmp(s, lit, n);
}

static int st_dtype(const char *s, size_t n)
{
	if (name_is(s, n, "BF16"))
		return CODEC_DTYPE_BF16;
	if (name_is(s, n, "F16"))
		return CODEC_DTYPE_FP16;
	if (name_is(s, n, "F32"))
		return CODEC_DTYPE_FP32;
	return CODEC_DTYPE_OTHER;
}

static int hint_push(struct codec_hint *h, size_t *cap, const struct codec_hint_range *r)
{
	struct codec_hint_range *nr;

	if (r->len == 0)
		return 0;
	if (h->n == CODEC_HINT_MAX_RANGES)
		return -EBADMSG;
	if (h->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;

		nr = realloc(h->r, nc * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		h->r = nr;
		*cap = nc;
	}
	h->r[h->n++] = *r;
	return 0;
}

/* One tensor entry: {"dtype": ..., "shape": [...], "data_offsets": [a, b]}. */
static int st_tensor(struct json_cur *c, uint64_t base, uint64_t file_size,
                     struct codec_hint_range *r)
{
	uint64_t shape[SHAPE_MAX_DIMS], offs[2];
	size_t ndim = 0, noff = 0, n;
	const char *s;
	int have_dtype = 0;

	if (json_eat(c, '{'))
		return -EBADMSG;
	r->dtype = CODEC_DTYPE_OTHER;
	for (;;) {
		if (json_string(c, &s, &n) || json_eat(c, ':'))
			return -EBADMSG;
		if (name_is(s, n, "dtype")) {
			if (json_string(c, &s, &n))
				return -EBADMSG;
			r->dtype = st_dtype(s, n);
			have_dtype = 1;
		} else if (name_is(s, n, "shape")) {
			if (json_u64_array(c, shape, SHAPE_MAX_DIMS, &ndim))
				return -EBADMSG;
		} else if (name_is(s, n, "data_offsets")) {
			if (json_u64_array(c, offs, 2, &noff) || noff != 2)
				return -EBADMSG;
		} else if (json_skip(c, 2)) {
			return -EBADMSG;
		}
		json_ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (json_eat(c, '}'))
			return -EBADMSG;
		break;
	}
	if (!have_dtype || noff != 2 || offs[0] > offs[1] || offs[1] > UINT64_MAX - base)
		return -EBADMSG;
	if (file_size && base + offs[1] > file_size)
		return -EBADMSG;
	r->off = base + offs[0];
	r->len = offs[1] - offs[0];
	r->row_elems = 0;
	if (ndim && ndim <= SHAPE_MAX_DIMS && shape[ndim - 1] <= UINT32_MAX)
		r->row_elems = (uint32_t)shape[ndim - 1];
	return 0;
}

static int st_parse(const uint8_t *head, size_t head_len, uint64_t file_size,
                    struct codec_hint *h)
{
	uint64_t hlen = rd_le(head, 8);
	struct json_cur c;
	struct codec_hint_range r;
	size_t cap = 0, n;
	const char *s;
	int rc = -EAGAIN;

	h->need = 8 + hlen;
	if (head_len < 8 + hlen)
		goto out;
	c.p = (const char *)head + 8;
	c.end = c.p + hlen;
	rc = -EBADMSG;
	if (json_eat(&c, '{'))
		goto out;
	json_ws(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
		goto done;
	}
	for (;;) {
		if (json_string(&c, &s, &n) || json_eat(&c, ':'))
			goto out;
		if (name_is(s, n, "__metadata__")) {
			if (json_skip(&c, 1))
				goto out;
		} else {
			rc = st_tensor(&c, 8 + hlen, file_size, &r);
			if (!rc)
				rc = hint_push(h, &cap, &r);
			if (rc)
				goto out;
			rc = -EBADMSG;
		}
		json_ws(&c);
		if (c.p < c.end && *c.p == ',') {
			c.p++;
			continue;
		}
		if (json_eat(&c, '}'))
			goto out;
		break;
	}
done:
	/* Only padding may follow the object. */
	json_ws(&c);
	if (c.p != c.end)
		goto out;
	h->need = 0;
	rc = 0;
out:
	return rc;
}

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_LOCAL_FIXED 30u

/* "<anything>/data/<digits>": a torch.save tensor storage. */
static int zip_is_storage(const uint8_t *name, size_t n)
{
	size_t d = n;

	while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9')
		d--;
	return d < n && d >= 6 && !memcmp(name + d - 6, "/data/", 6);
}

/* Finds the data descriptor after an entry's data d[0..len): returns the
 * descriptor's length (16, or 24 for zip64) and the data size, or -1. */
static int64_t zip_descriptor(const uint8_t *d, size_t len, uint64_t *size)
{
	static const uint8_t sig[4] = {'P', 'K', 7, 8};
	const uint8_t *q = d, *end = d + len;

	while ((q = memmem(q, (size_t)(end - q), sig, 4)) != NULL) {
		uint64_t dist = (uint64_t)(q - d);

		if (end - q >= 16 && rd_le(q + 8, 4) == dist && rd_le(q + 12, 4) == dist) {
			*size = dist;
			return 16;
		}
		if (end - q >= 24 && rd_le(q + 8, 8) == dist && rd_le(q + 16, 8) == dist) {
			*size = dist;
			return 24;
		}
		q++;
	}
	return -1;
}

int codec_hint_zip_entry(const void *buf, size_t len, uint64_t off,
                         struct codec_hint_range *r, uint64_t *next)
{
	const uint8_t *p = buf;
	uint64_t csize, usize, data;
	uint32_t flags, method, nlen, xlen;
	int storage;

	if (!buf || !r || !next)
		return -EINVAL;
	if (len < 4)
		return -EAGAIN;
	if (rd_le(p, 4) != ZIP_LOCAL_SIG)
		return -ENOENT;
	if (len < ZIP_LOCAL_FIXED)
		return -EAGAIN;
	flags = (uint32_t)rd_le(p + 6, 2);
	method = (uint32_t)rd_le(p + 8, 2);
	csize = rd_le(p + 18, 4);
	usize = rd_le(p + 22, 4);
	nlen = (uint32_t)rd_le(p + 26, 2);
	xlen = (uint32_t)rd_le(p + 28, 2);
	if (len < ZIP_LOCAL_FIXED + nlen + xlen)
		return -EAGAIN;
	/* Zip64: sizes move to extra field 0x0001 (usize, then csize). */
	if (csize == 0xffffffffu || usize == 0xffffffffu) {
		const uint8_t *x = p + ZIP_LOCAL_FIXED + nlen, *xe = x + xlen;
		int found = 0;

		while (x + 4 <= xe) {
			uint32_t id = (uint32_t)rd_le(x, 2), sz = (uint32_t)rd_le(x + 2, 2);

			if (x + 4 + sz > xe)
				return -EBADMSG;
			if (id == 1 && sz >= 16) {
				usize = rd_le(x + 4, 8);
				csize = rd_le(x + 12, 8);
				found = 1;
				break;
			}
			x += 4 + sz;
		}
		if (!found)
			return -EBADMSG;
	}
	data = off + ZIP_LOCAL_FIXED + nlen + xlen;
	storage = method == 0 && zip_is_storage(p + ZIP_LOCAL_FIXED, nlen);
	if (flags & 0x08u) {
		/* torch.save streams its entries: the sizes follow the data in
		 * a descriptor, found by its signature and a size that matches
		 * the distance. */
		int64_t dl = zip_descriptor(p + (data - off), len - (size_t)(data - off), &csize);

		if (dl < 0) {
			if (!storage)
				return -EAGAIN;
			r->off = data;
			r->len = 0;
			r->dtype = CODEC_DTYPE_AUTO;
			r->row_elems = 0;
			*next = 0;
			return 2;
		}
		usize = csize;
		*next = data + csize + (uint64_t)dl;
	} else {
		if (csize > UINT64_MAX - data)
			return -EBADMSG;
		*next = data + csize;
	}
	if (!storage || csize != usize || csize == 0)
		return 0;
	r->off = data;
	r->len = csize;
	r->dtype = CODEC_DTYPE_AUTO;
	r->row_elems = 0;
	return 1;
}

static int zip_parse(const uint8_t *head, size_t head_len, uint64_t file_size,
                     struct codec_hint *h)
{
	struct codec_hint_range r;
	uint64_t off = 0, next;
	size_t cap = 0;
	int rc = 0;

	h->need = 0;
	while (off < head_len) {
		rc = codec_hint_zip_entry(head + off, head_len - off, off, &r, &next);
		if (rc == -ENOENT) {
			rc = 0; /* central directory: the walk is over */
			break;
		}
		if (rc == -EAGAIN) {
			h->need = off;
			rc = 0;
			break;
		}
		if (rc < 0)
			break;
		if (rc == 2) {
			/* A streamed tensor runs past the head. */
			h->need = off;
			rc = 0;
			break;
		}
		if (file_size && next > file_size) {
			rc = -EBADMSG;
			break;
		}
		if (rc == 1 && (rc = hint_push(h, &cap, &r)) != 0)
			break;
		off = next;
		if (off >= head_len && (!file_size || off < file_size))
			h->need = off;
	}
	return rc;
}

static int hint_range_cmp(const void *a, const void *b)
{
	const struct codec_hint_range *x = a, *y = b;

	return x->off < y->off ? -1 : (x->off > y->off);
}

int codec_hint_parse(const void *head, size_t head_len, uint64_t file_size,
                     struct codec_hint *h)
{
	const uint8_t *p = head;
	int rc = -EINVAL;

	if (!h)
		goto out;
	memset(h, 0, sizeof(*h));
	if (!head)
		goto out;
	rc = -EAGAIN;
	h->need = 8;
	if (head_len < 8)
		goto out;
	if (rd_le(p, 4) == ZIP_LOCAL_SIG) {
		h->format = CODEC_HINT_TORCH_ZIP;
		rc = zip_parse(p, head_len, file_size, h);
	} else {
		uint64_t hlen = rd_le(p, 8);

		/* A JSON object right after a sane length: safetensors. */
		rc = -ENOENT;
		if (hlen < 2 || hlen > CODEC_HINT_MAX_HEADER || (file_size && 8 + hlen > file_size))
			goto out;
		if (head_len > 8 && p[8] != '{' && p[8] != ' ')
			goto out;
		h->format = CODEC_HINT_SAFETENSORS;
		rc = st_parse(p, head_len, file_size, h);
	}
	if (rc)
		goto out;
	if (h->n > 1)
		qsort(h->r, h->n, sizeof(h->r[0]), hint_range_cmp);
out:
	if (rc && h) {
		uint64_t need = h->need;
		int fmt = h->format;

		codec_hint_release(h);
		if (rc == -EAGAIN) {
			h->need = need;
			h->format = fmt;
		}
	}
	return rc;
}

void codec_hint_release(struct codec_hint *h)
{
	if (!h)
		return;
	free(h->r);
	memset(h, 0, sizeof(*h));
}

static uint32_t hint_esize(int dtype)
{
	return dtype == CODEC_DTYPE_FP32 ? 4 : (dtype == CODEC_DTYPE_BF16 || dtype == CODEC_DTYPE_FP16) ? 2 : 1;
}

/* Index of the first range ending after off (ranges are sorted by start
 * and do not overlap). */
static size_t hint_first_after(const struct codec_hint *h, uint64_t off)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->r[mid].off + h->r[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t codec_hint_next_cut(const struct codec_hint *h, uint64_t off, uint64_t min_len)
{
	if (!h || !h->n)
		return 0;
	/* Small ranges are skipped, but not without end: past 16 MiB (more
	 * than any chunk) the caller asks again later anyway. */
	for (size_t i = hint_first_after(h, off); i < h->n && h->r[i].off < off + (16u << 20); i++) {
		if (h->r[i].len < min_len)
			continue;
		/* strictly after off even when a hostile header made ranges
		 * overlap (then the search above may land on one ending
		 * before off): a cut of length 0 would never advance */
		if (h->r[i].off > off)
			return h->r[i].off;
		if (h->r[i].off + h->r[i].len > off)
			return h->r[i].off + h->r[i].len;
	}
	return 0;
}

int codec_hint_chunk(const struct codec_hint *h, uint64_t off, uint64_t len,
                     struct codec_params *p)
{
	const struct codec_hint_range *best = NULL;
	uint64_t best_ov = 0, end = off + len;

	if (!p)
		return -EINVAL;
	p->dtype = CODEC_DTYPE_AUTO;
	p->elem_phase = 0;
	p->row_elems = 0;
	if (!h || !h->n || !len)
		return -ENOENT;
	for (size_t i = hint_first_after(h, off); i < h->n && h->r[i].off < end; i++) {
		uint64_t a = h->r[i].off > off ? h->r[i].off : off;
		uint64_t b = h->r[i].off + h->r[i].len < end ? h->r[i].off + h->r[i].len : end;

		if (b > a && b - a > best_ov) {
			best_ov = b - a;
			best = &h->r[i];
		}
	}
	if (!best)
		return -ENOENT;
	p->dtype = best->dtype;
	p->row_elems = best->row_elems;
	if (best->dtype != CODEC_DTYPE_AUTO) {
		uint32_t esz = hint_esize(best->dtype);

		/* Elements start at best->off + k * esz. */
		p->elem_phase = best->off >= off ? (uint32_t)((best->off - off) % esz)
		                                  : (uint32_t)((esz - (off - best->off) % esz) % esz);
	}
	return 0;
}
