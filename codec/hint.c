/*
 * hint.c - safetensors and torch.save zip parsers for codec hints.
 *
 * The JSON reader understands exactly what a safetensors header needs and
 * skips everything else with a depth limit; all reads go through a cursor
 * bounded by the header length.  The pickle reader (torch.save's data.pkl)
 * is a stack machine of the same spirit: it keeps what names a storage's
 * dtype and a tensor's shape, treats every other value as opaque, and
 * stops at anything it does not know.
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

/* A string token opened by one of the characters in quotes and closed by
 * the same; s and n give its raw bytes (escapes left as they are, the
 * names we compare against have none). */
static int quoted(struct json_cur *c, const char *quotes, const char **s, size_t *n)
{
	char q;

	json_ws(c);
	if (c->p >= c->end || !*c->p || !strchr(quotes, *c->p))
		return -EBADMSG;
	q = *c->p++;
	*s = c->p;
	while (c->p < c->end && *c->p != q) {
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

static int json_string(struct json_cur *c, const char **s, size_t *n)
{
	return quoted(c, "\"", s, n);
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

/* Grows *p (elements of size es, *cap of them, new ones zeroed) to hold
 * want elements, at most max. */
static int hint_grow(void **p, size_t *cap, size_t want, size_t es, size_t max)
{
	size_t nc = *cap ? *cap : 16;
	void *np;

	if (want > max)
		return -EBADMSG;
	if (want <= *cap)
		return 0;
	while (nc < want)
		nc *= 2;
	if (nc > max)
		nc = max;
	np = realloc(*p, nc * es);
	if (!np)
		return -ENOMEM;
	memset((uint8_t *)np + *cap * es, 0, (nc - *cap) * es);
	*p = np;
	*cap = nc;
	return 0;
}

static int hint_push(struct codec_hint *h, const struct codec_hint_range *r)
{
	int rc;

	if (r->len == 0)
		return 0;
	rc = hint_grow((void **)&h->r, &h->cap, h->n + 1, sizeof(*r), CODEC_HINT_MAX_RANGES);
	if (rc)
		return rc;
	h->r[h->n++] = *r;
	return 0;
}

/* A tensor name's key (struct codec_hint_range): FNV-1a over the bytes as
 * they stand in the JSON (escapes included: one writer spells a name the
 * same way every time); never 0. */
static uint64_t name_key(const char *s, size_t n)
{
	uint64_t x = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		x = (x ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return x ? x : 1;
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
	size_t n;
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
			r.key = name_key(s, n);
			if (!rc)
				rc = hint_push(h, &r);
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

static uint32_t hint_esize(int dtype)
{
	return dtype == CODEC_DTYPE_FP32 ? 4 : (dtype == CODEC_DTYPE_BF16 || dtype == CODEC_DTYPE_FP16) ? 2 : 1;
}

/* ---- torch.save's data.pkl -------------------------------------------
 *
 * torch.save (protocol 2) pickles the object tree with every tensor as
 *   GLOBAL torch._utils _rebuild_tensor_v2
 *   (  (  'storage'  GLOBAL torch <Float|Half|BFloat16|...>Storage  '<key>'
 *         '<location>'  numel  TUPLE  BINPERSID
 *      storage_offset  (size...)  (stride...)  requires_grad  hooks  TUPLE
 *   REDUCE
 * with the repeated parts as BINGET of a memo entry.  The walker below is
 * a stack machine over the binary opcodes of protocols 2-5 that keeps only
 * what it needs: small ints, strings (as spans of the pickle), these two
 * globals, the persistent-id tuple and the rebuild arguments; every other
 * value is an opaque "other".  Any opcode it does not know, and anything
 * malformed, ends the walk with -EBADMSG and the caller keeps AUTO ranges.
 * Work is linear in the pickle length; the stack, marks, memo and records
 * are bounded tables (PKL_MAX_*). */

#define PKL_MAX_LEN (64u << 20)
#define PKL_MAX_STACK (1u << 14)
#define PKL_MAX_MARKS 256u
#define PKL_MAX_MEMO (1u << 20)
#define PKL_MAX_RECS (1u << 20)
#define PKL_NO_KEY UINT64_MAX

enum pk_kind {
	PK_UNSET = 0, /* a memo slot never written */
	PK_OTHER,
	PK_INT,     /* a = value (>= 0) */
	PK_STR,     /* a = offset in the pickle, b = length */
	PK_GLOBAL,  /* glob, dtype (storage classes) */
	PK_INTS,    /* tuple of ints: n, a = last, b = second to last, c = product */
	PK_PID,     /* ('storage', class, key, location, numel): a = key, c = numel */
	PK_STORAGE, /* BINPERSID of a PID: same fields */
	PK_RTARGS   /* (storage, offset, size, stride, ...): a = key, b = row, c = numel */
};

enum pk_glob { PG_OTHER = 0, PG_REBUILD, PG_STORAGE };

struct pk_val {
	uint8_t kind;  /* enum pk_kind */
	uint8_t glob;  /* enum pk_glob */
	uint8_t dtype; /* enum codec_dtype of a storage, CODEC_DTYPE_AUTO if not fp */
	uint8_t esize; /* bytes per element of a storage class, 0 if unknown */
	uint32_t n;
	uint64_t a, b, c, d; /* d: RTARGS storage numel */
};

/* What the pickle says about one use of a storage. */
struct pkl_rec {
	uint64_t key;
	uint64_t numel;  /* of the storage (persistent id) */
	uint64_t tnumel; /* of the tensor rebuilt from it, 0 for the id alone */
	uint32_t row;    /* row length of that tensor, 0 if none */
	uint8_t dtype;
	uint8_t esize;   /* bytes per element, 0 if unknown */
};

struct pkl {
	const uint8_t *base, *p, *end;
	struct pk_val *st, *memo;
	size_t sp, st_cap, memo_cap, memo_n, memo_max;
	size_t marks[PKL_MAX_MARKS];
	size_t nmarks;
	struct pkl_rec *rec; /* after pkl_walk: one per storage, sorted by key */
	size_t nrec, rec_cap;
};

static const uint8_t *pkl_take(struct pkl *k, uint64_t n)
{
	const uint8_t *q = k->p;

	if (n > (uint64_t)(k->end - k->p))
		return NULL;
	k->p += n;
	return q;
}

/* Items above the innermost mark. */
static size_t pkl_avail(const struct pkl *k)
{
	return k->sp - (k->nmarks ? k->marks[k->nmarks - 1] : 0);
}

static int pkl_push(struct pkl *k, const struct pk_val *v)
{
	int rc = hint_grow((void **)&k->st, &k->st_cap, k->sp + 1, sizeof(*v), PKL_MAX_STACK);

	if (rc)
		return rc;
	k->st[k->sp++] = *v;
	return 0;
}

static int pkl_pop_mark(struct pkl *k, size_t *base)
{
	if (!k->nmarks)
		return -EBADMSG;
	*base = k->marks[--k->nmarks];
	return 0;
}

static int pkl_record(struct pkl *k, const struct pkl_rec *r)
{
	int rc = hint_grow((void **)&k->rec, &k->rec_cap, k->nrec + 1, sizeof(*r), PKL_MAX_RECS);

	if (rc)
		return rc;
	k->rec[k->nrec++] = *r;
	return 0;
}

static int pkl_str_is(const struct pkl *k, const struct pk_val *v, const char *lit)
{
	return v->kind == PK_STR && name_is((const char *)k->base + v->a, (size_t)v->b, lit);
}

/* A decimal storage key as torch writes it ("0", "17"; no sign, no
 * leading zero), PKL_NO_KEY otherwise. */
static uint64_t pkl_key(const uint8_t *s, size_t n)
{
	uint64_t x = 0;

	if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
		return PKL_NO_KEY;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PKL_NO_KEY;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	return x;
}

static void pkl_global(const uint8_t *mod, size_t ml, const uint8_t *name, size_t nl,
                       struct pk_val *v)
{
	static const struct {
		const char *name;
		int dtype;
		uint8_t esize;
	} st[] = {
		{ "FloatStorage", CODEC_DTYPE_FP32, 4 },
		{ "HalfStorage", CODEC_DTYPE_FP16, 2 },
		{ "BFloat16Storage", CODEC_DTYPE_BF16, 2 },
		/* no dtype, but the size tells where a streamed entry ends */
		{ "DoubleStorage", CODEC_DTYPE_AUTO, 8 },
		{ "LongStorage", CODEC_DTYPE_AUTO, 8 },
		{ "IntStorage", CODEC_DTYPE_AUTO, 4 },
		{ "ShortStorage", CODEC_DTYPE_AUTO, 2 },
		{ "CharStorage", CODEC_DTYPE_AUTO, 1 },
		{ "ByteStorage", CODEC_DTYPE_AUTO, 1 },
		{ "BoolStorage", CODEC_DTYPE_AUTO, 1 },
	};

	memset(v, 0, sizeof(*v));
	v->kind = PK_GLOBAL;
	v->dtype = CODEC_DTYPE_AUTO;
	if (name_is((const char *)mod, ml, "torch._utils") &&
	    (name_is((const char *)name, nl, "_rebuild_tensor_v2") ||
	     name_is((const char *)name, nl, "_rebuild_tensor"))) {
		v->glob = PG_REBUILD;
		return;
	}
	if (!name_is((const char *)mod, ml, "torch") || nl < 7 ||
	    memcmp(name + nl - 7, "Storage", 7))
		return;
	/* Other storage classes (Double, Long, Byte, ...) stay AUTO: the
	 * codecs have no model of their own for them, and detection (which
	 * takes 4- and 8-byte integers and doubles for fp32 planes) does
	 * better on them than CODEC_DTYPE_OTHER. */
	v->glob = PG_STORAGE;
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (name_is((const char *)name, nl, st[i].name)) {
			v->dtype = (uint8_t)st[i].dtype;
			v->esize = st[i].esize;
		}
}

/* Row length in the storage of a tensor with these sizes and strides:
 * the distance between its rows (stride[-2]) when its last dimension is
 * dense, which is size[-1] for a contiguous tensor and the parent's row
 * for a slice of columns; 0 when the last dimension is not dense (a
 * transpose, a step) or the tensor has no dimension. */
static uint32_t pkl_row(const struct pk_val *size, const struct pk_val *stride)
{
	uint64_t row;

	if (size->n == 0 || stride->a != 1 || size->a < 2)
		return 0;
	row = size->a;
	if (size->n >= 2 && size->b > 1 && stride->b >= size->a)
		row = stride->b;
	return row <= UINT32_MAX ? (uint32_t)row : 0;
}

/* The value a tuple of the n items it[] becomes. */
static void pkl_tuple(const struct pkl *k, const struct pk_val *it, size_t n, struct pk_val *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	out->kind = PK_OTHER;
	if (n == 5 && pkl_str_is(k, &it[0], "storage") && it[1].kind == PK_GLOBAL &&
	    it[1].glob == PG_STORAGE && it[2].kind == PK_STR && it[4].kind == PK_INT) {
		out->a = pkl_key(k->base + it[2].a, (size_t)it[2].b);
		if (out->a != PKL_NO_KEY) {
			out->kind = PK_PID;
			out->dtype = it[1].dtype;
			out->esize = it[1].esize;
			out->c = it[4].a;
		}
		return;
	}
	if (n >= 4 && it[0].kind == PK_STORAGE && it[1].kind == PK_INT && it[2].kind == PK_INTS &&
	    it[3].kind == PK_INTS && it[2].n == it[3].n) {
		out->kind = PK_RTARGS;
		out->dtype = it[0].dtype;
		out->esize = it[0].esize;
		out->a = it[0].a;
		out->b = pkl_row(&it[2], &it[3]);
		out->c = it[2].c;
		out->d = it[0].c;
		return;
	}
	for (i = 0; i < n && it[i].kind == PK_INT; i++)
		;
	if (i < n)
		return;
	out->kind = PK_INTS;
	out->n = (uint32_t)n;
	out->a = n ? it[n - 1].a : 0;
	out->b = n > 1 ? it[n - 2].a : 0;
	out->c = 1;
	for (i = 0; i < n; i++)
		out->c = it[i].a && out->c > UINT64_MAX / it[i].a ? UINT64_MAX : out->c * it[i].a;
}

/* Replaces the top n items (n <= available) by the tuple they make. */
static int pkl_make_tuple(struct pkl *k, size_t n)
{
	struct pk_val t;

	if (pkl_avail(k) < n)
		return -EBADMSG;
	pkl_tuple(k, k->st + k->sp - n, n, &t);
	k->sp -= n;
	return pkl_push(k, &t);
}

static int pkl_memo_put(struct pkl *k, uint64_t idx)
{
	int rc;

	if (!pkl_avail(k) || idx >= k->memo_max)
		return -EBADMSG;
	rc = hint_grow((void **)&k->memo, &k->memo_cap, (size_t)idx + 1, sizeof(*k->memo),
	              k->memo_max);
	if (rc)
		return rc;
	if (k->memo[idx].kind == PK_UNSET)
		k->memo_n++;
	k->memo[idx] = k->st[k->sp - 1];
	return 0;
}

static int pkl_memo_get(struct pkl *k, uint64_t idx)
{
	if (idx >= k->memo_cap || k->memo[idx].kind == PK_UNSET)
		return -EBADMSG;
	return pkl_push(k, &k->memo[idx]);
}

/* A length-prefixed string or bytes of w bytes of length; *v gets a
 * PK_STR span (str) or PK_OTHER. */
static int pkl_span(struct pkl *k, unsigned w, int is_str, int is_signed, struct pk_val *v)
{
	const uint8_t *q = pkl_take(k, w);
	uint64_t n;

	if (!q)
		return -EBADMSG;
	n = rd_le(q, w);
	if (is_signed && (n & 0x80000000u))
		return -EBADMSG;
	q = pkl_take(k, n);
	if (!q)
		return -EBADMSG;
	memset(v, 0, sizeof(*v));
	v->kind = is_str ? PK_STR : PK_OTHER;
	v->a = (uint64_t)(q - k->base);
	v->b = n;
	return 0;
}

/* Pickle integer of n little-endian two's complement bytes: PK_INT when
 * it is >= 0 and fits 63 bits, PK_OTHER else. */
static int pkl_int(struct pkl *k, unsigned n, struct pk_val *v)
{
	const uint8_t *q = pkl_take(k, n);

	if (!q)
		return -EBADMSG;
	memset(v, 0, sizeof(*v));
	v->kind = PK_OTHER;
	if (n == 0 || n > 8 || (q[n - 1] & 0x80))
		return 0;
	v->kind = PK_INT;
	v->a = rd_le(q, n);
	return 0;
}

static int pkl_op(struct pkl *k, uint8_t op)
{
	struct pk_val v, *top;
	const uint8_t *q, *nl;
	size_t base;
	int rc;

	memset(&v, 0, sizeof(v));
	v.kind = PK_OTHER;
	switch (op) {
	case 0x80: /* PROTO */
		return pkl_take(k, 1) ? 0 : -EBADMSG;
	case 0x95: /* FRAME: the opcodes simply continue */
		return pkl_take(k, 8) ? 0 : -EBADMSG;
	case '(': /* MARK */
		if (k->nmarks == PKL_MAX_MARKS)
			return -EBADMSG;
		k->marks[k->nmarks++] = k->sp;
		return 0;
	case '0': /* POP */
		if (pkl_avail(k))
			k->sp--;
		else if (pkl_pop_mark(k, &base))
			return -EBADMSG;
		return 0;
	case '1': /* POP_MARK */
		if (pkl_pop_mark(k, &base))
			return -EBADMSG;
		k->sp = base;
		return 0;
	case '2': /* DUP */
		if (!pkl_avail(k))
			return -EBADMSG;
		v = k->st[k->sp - 1];
		break;
	case ')': /* EMPTY_TUPLE */
		return pkl_make_tuple(k, 0);
	case 0x85: /* TUPLE1 */
	case 0x86: /* TUPLE2 */
	case 0x87: /* TUPLE3 */
		return pkl_make_tuple(k, (size_t)(op - 0x84));
	case 't': /* TUPLE */
		if (pkl_pop_mark(k, &base))
			return -EBADMSG;
		pkl_tuple(k, k->st + base, k->sp - base, &v);
		k->sp = base;
		break;
	case '}': /* EMPTY_DICT */
	case ']': /* EMPTY_LIST */
	case 0x8f: /* EMPTY_SET */
	case 'N': /* NONE */
	case 0x88: /* NEWTRUE */
	case 0x89: /* NEWFALSE */
		break;
	case 'd': /* DICT */
	case 'l': /* LIST */
	case 0x91: /* FROZENSET */
		if (pkl_pop_mark(k, &base) || (op == 'd' && (k->sp - base) % 2))
			return -EBADMSG;
		k->sp = base;
		break;
	case 'X': /* BINUNICODE */
		rc = pkl_span(k, 4, 1, 0, &v);
		if (rc)
			return rc;
		break;
	case 0x8c: /* SHORT_BINUNICODE */
	case 'U':  /* SHORT_BINSTRING */
		rc = pkl_span(k, 1, 1, 0, &v);
		if (rc)
			return rc;
		break;
	case 0x8d: /* BINUNICODE8 */
		rc = pkl_span(k, 8, 1, 0, &v);
		if (rc)
			return rc;
		break;
	case 'T': /* BINSTRING */
		rc = pkl_span(k, 4, 1, 1, &v);
		if (rc)
			return rc;
		break;
	case 'B': /* BINBYTES */
	case 'C': /* SHORT_BINBYTES */
	case 0x8e: /* BINBYTES8 */
	case 0x96: /* BYTEARRAY8 */
		rc = pkl_span(k, op == 'B' ? 4 : op == 'C' ? 1 : 8, 0, 0, &v);
		if (rc)
			return rc;
		break;
	case 'c': /* GLOBAL: "module\nname\n" */
		q = k->p;
		nl = memchr(q, '\n', (size_t)(k->end - q));
		if (!nl)
			return -EBADMSG;
		k->p = nl + 1;
		nl = memchr(k->p, '\n', (size_t)(k->end - k->p));
		if (!nl)
			return -EBADMSG;
		pkl_global(q, (size_t)(k->p - 1 - q), k->p, (size_t)(nl - k->p), &v);
		k->p = nl + 1;
		break;
	case 0x93: /* STACK_GLOBAL */
		if (pkl_avail(k) < 2 || k->st[k->sp - 1].kind != PK_STR ||
		    k->st[k->sp - 2].kind != PK_STR)
			return -EBADMSG;
		top = k->st + k->sp - 2;
		pkl_global(k->base + top[0].a, (size_t)top[0].b, k->base + top[1].a,
		           (size_t)top[1].b, &v);
		k->sp -= 2;
		break;
	case 'J': /* BININT: signed */
		rc = pkl_int(k, 4, &v);
		if (rc)
			return rc;
		break;
	case 'K': /* BININT1 */
	case 'M': /* BININT2 */
		q = pkl_take(k, op == 'K' ? 1 : 2);
		if (!q)
			return -EBADMSG;
		v.kind = PK_INT;
		v.a = rd_le(q, op == 'K' ? 1 : 2);
		break;
	case 0x8a: /* LONG1 */
		q = pkl_take(k, 1);
		if (!q)
			return -EBADMSG;
		rc = pkl_int(k, q[0], &v);
		if (rc)
			return rc;
		break;
	case 0x8b: /* LONG4: too big for a size */
		rc = pkl_span(k, 4, 0, 1, &v);
		if (rc)
			return rc;
		break;
	case 'G': /* BINFLOAT */
		if (!pkl_take(k, 8))
			return -EBADMSG;
		break;
	case 'q': /* BINPUT */
	case 'r': /* LONG_BINPUT */
	case 'h': /* BINGET */
	case 'j': /* LONG_BINGET */
		q = pkl_take(k, op == 'q' || op == 'h' ? 1 : 4);
		if (!q)
			return -EBADMSG;
		if (op == 'q' || op == 'r')
			return pkl_memo_put(k, rd_le(q, op == 'q' ? 1 : 4));
		return pkl_memo_get(k, rd_le(q, op == 'h' ? 1 : 4));
	case 0x94: /* MEMOIZE */
		return pkl_memo_put(k, k->memo_n);
	case 'Q': /* BINPERSID */
		if (!pkl_avail(k))
			return -EBADMSG;
		top = &k->st[--k->sp];
		if (top->kind == PK_PID) {
			struct pkl_rec r = { .key = top->a, .numel = top->c, .dtype = top->dtype,
			                     .esize = top->esize };

			rc = pkl_record(k, &r);
			if (rc)
				return rc;
			v = *top;
			v.kind = PK_STORAGE;
		}
		break;
	case 'R': /* REDUCE */
		if (pkl_avail(k) < 2)
			return -EBADMSG;
		top = k->st + k->sp - 2;
		if (top[0].kind == PK_GLOBAL && top[0].glob == PG_REBUILD &&
		    top[1].kind == PK_RTARGS) {
			struct pkl_rec r = { .key = top[1].a, .numel = top[1].d, .tnumel = top[1].c,
			                     .row = (uint32_t)top[1].b, .dtype = top[1].dtype,
			                     .esize = top[1].esize };

			rc = pkl_record(k, &r);
			if (rc)
				return rc;
		}
		k->sp -= 2;
		break;
	case 0x81: /* NEWOBJ */
	case 0x92: /* NEWOBJ_EX */
		if (pkl_avail(k) < (op == 0x81 ? 2u : 3u))
			return -EBADMSG;
		k->sp -= op == 0x81 ? 2 : 3;
		break;
	case 'b': /* BUILD */
	case 'a': /* APPEND */
	case 's': /* SETITEM */
		if (pkl_avail(k) < (op == 's' ? 3u : 2u))
			return -EBADMSG;
		k->sp -= op == 's' ? 2 : 1;
		return 0;
	case 'u': /* SETITEMS */
	case 'e': /* APPENDS */
	case 0x90: /* ADDITEMS */
		if (pkl_pop_mark(k, &base) || (op == 'u' && (k->sp - base) % 2))
			return -EBADMSG;
		k->sp = base;
		return pkl_avail(k) ? 0 : -EBADMSG;
	default:
		return -EBADMSG;
	}
	return pkl_push(k, &v);
}

static int pkl_rec_cmp(const void *a, const void *b)
{
	const struct pkl_rec *x = a, *y = b;

	return x->key < y->key ? -1 : (x->key > y->key);
}

/* Sorts the records and folds them into one per storage: its dtype (AUTO
 * when the uses disagree) and the row of the largest tensor built on it
 * that has one. */
static void pkl_fold(struct pkl *k)
{
	size_t i, m = 0;

	if (k->nrec > 1)
		qsort(k->rec, k->nrec, sizeof(k->rec[0]), pkl_rec_cmp);
	for (i = 0; i < k->nrec; i++) {
		struct pkl_rec *r = &k->rec[i], *o = m ? &k->rec[m - 1] : NULL;

		if (!o || o->key != r->key) {
			k->rec[m++] = *r;
			continue;
		}
		if (o->dtype != r->dtype || o->numel != r->numel)
			o->dtype = CODEC_DTYPE_AUTO;
		if (o->esize != r->esize || o->numel != r->numel)
			o->esize = 0;
		if (r->row && (!o->row || r->tnumel > o->tnumel)) {
			o->row = r->row;
			o->tnumel = r->tnumel;
		}
	}
	k->nrec = m;
}

/* Walks a whole pickle; on 0, k->rec[0..nrec) maps storage keys to what
 * the pickle says about them.  -EBADMSG (unknown opcode, malformed, over
 * a bound, no STOP) or -ENOMEM. */
static int pkl_walk(struct pkl *k, const uint8_t *p, size_t len)
{
	memset(k, 0, sizeof(*k));
	if (len > PKL_MAX_LEN)
		return -EBADMSG;
	k->base = k->p = p;
	k->end = p + len;
	/* a pickler numbers memo entries from 0, one per put opcode (>= 1
	 * byte), so no real index reaches len */
	k->memo_max = len < PKL_MAX_MEMO ? len : PKL_MAX_MEMO;
	/* a stack from the start: tuples of no items point into it too */
	if (hint_grow((void **)&k->st, &k->st_cap, 1, sizeof(*k->st), PKL_MAX_STACK))
		return -ENOMEM;
	while (k->p < k->end) {
		uint8_t op = *k->p++;
		int rc;

		if (op == '.') { /* STOP */
			pkl_fold(k);
			return 0;
		}
		rc = pkl_op(k, op);
		if (rc)
			return rc;
	}
	return -EBADMSG;
}

static void pkl_free(struct pkl *k)
{
	free(k->st);
	free(k->memo);
	free(k->rec);
	memset(k, 0, sizeof(*k));
}

/* data.pkl's storages, kept in struct codec_hint for codec_hint_feed. */
struct hint_torch {
	struct pkl_rec *rec; /* sorted by key */
	size_t n;
};

/* The record of storage key, or NULL. */
static const struct pkl_rec *torch_find(const struct hint_torch *t, uint64_t key)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->rec[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n && t->rec[lo].key == key ? &t->rec[lo] : NULL;
}

/* Bytes of storage key's entry as data.pkl gives them, 0 if not known. */
static uint64_t torch_bytes(const struct hint_torch *t, uint64_t key)
{
	const struct pkl_rec *r = torch_find(t, key);

	if (!r || !r->esize || r->numel > UINT64_MAX / r->esize)
		return 0;
	return r->numel * r->esize;
}

/* What the pickle knows of the storage in a zip entry of len bytes. */
static void pkl_apply(const struct hint_torch *t, uint64_t key, struct codec_hint_range *r)
{
	const struct pkl_rec *k = torch_find(t, key);

	if (!k || k->dtype == CODEC_DTYPE_AUTO)
		return;
	/* the entry must hold exactly numel elements of that type */
	if (k->numel > r->len / hint_esize(k->dtype) || k->numel * hint_esize(k->dtype) != r->len)
		return;
	r->dtype = k->dtype;
	r->row_elems = k->row;
}

/* --- NumPy .npy (and the arrays of an .npz) -------------------------------
 * "\x93NUMPY", major (1, 2 or 3), minor, the header's length (u16 LE for
 * major 1, u32 LE after), the header: a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by '\n'; then the array's bytes, itemsize
 * times the product of the shape.  numpy reads the header with
 * ast.literal_eval, so other writers may quote or space it otherwise:
 * the reader below takes either quote, any spacing and key order, and
 * skips keys it does not know.  '<f4' is fp32, '<f2' fp16, 'bfloat16'
 * bf16, a 2-byte void AUTO ('<V2': numpy has no bfloat16, and np.save
 * writes ml_dtypes' bfloat16 so; the detector decides); any other plain
 * dtype, big-endian floats too, OTHER (a tensor boundary, no float
 * model).  Object arrays (their bytes are a pickle) and structured dtypes
 * give no range. */

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20) /* numpy writes a few hundred bytes */

struct npy_info {
	uint64_t data;   /* bytes from the magic to the array's first byte */
	uint64_t nbytes; /* the array's bytes */
	int dtype;       /* enum codec_dtype, or AUTO */
	uint32_t row;    /* elements per row (C order: shape[-1]), 0 if none */
};

/* A Python string: '...' or "...". */
static int py_string(struct json_cur *c, const char **s, size_t *n)
{
	return quoted(c, "'\"", s, n);
}

static int py_word(struct json_cur *c, const char *lit)
{
	size_t n = strlen(lit);

	json_ws(c);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n))
		return 0;
	c->p += n;
	return 1;
}

/* Skips one literal: a string, a bracketed group (nested), or a bare token
 * (number, True, None) up to the next ',', ':' or closing bracket. */
static int py_skip(struct json_cur *c, int depth)
{
	const char *s;
	size_t n;

	if (depth > JSON_MAX_DEPTH)
		return -EBADMSG;
	json_ws(c);
	if (c->p >= c->end)
		return -EBADMSG;
	if (*c->p == '\'' || *c->p == '"')
		return py_string(c, &s, &n);
	if (*c->p == '(' || *c->p == '[' || *c->p == '{') {
		char close = *c->p == '(' ? ')' : *c->p == '[' ? ']' : '}';

		c->p++;
		for (;;) {
			json_ws(c);
			if (c->p >= c->end)
				return -EBADMSG;
			if (*c->p == close) {
				c->p++;
				return 0;
			}
			if (*c->p == ',' || *c->p == ':') {
				c->p++;
				continue;
			}
			if (py_skip(c, depth + 1))
				return -EBADMSG;
		}
	}
	s = c->p;
	while (c->p < c->end && !strchr(",:)]} \t\r\n", *c->p))
		c->p++;
	return c->p == s ? -EBADMSG : 0;
}

/* shape: a tuple of non-negative ints, "()" for a scalar ("3L" from
 * Python 2 writers too); *ne the product, *first and *last the first and
 * the last dimension (0 for a scalar). */
static int py_shape(struct json_cur *c, uint64_t *ne, uint64_t *first, uint64_t *last)
{
	uint64_t v;
	int nd = 0;

	*ne = 1;
	*first = *last = 0;
	if (json_eat(c, '('))
		return -EBADMSG;
	for (;;) {
		json_ws(c);
		if (c->p < c->end && *c->p == ')') {
			c->p++;
			return 0;
		}
		if (json_u64(c, &v))
			return -EBADMSG;
		if (c->p < c->end && *c->p == 'L')
			c->p++;
		if (v && *ne > (UINT64_MAX >> 2) / v)
			return -EBADMSG;
		*ne *= v;
		*last = v;
		if (nd++ == 0)
			*first = v;
		json_ws(c);
		if (c->p < c->end && *c->p == ',')
			c->p++;
		else if (c->p >= c->end || *c->p != ')')
			return -EBADMSG;
	}
}

/* descr "<f4": byte order, kind, itemsize (and a unit, "<M8[ns]").  Sets
 * *esize and *dtype; 1 for a dtype without a fixed layout (object). */
static int npy_descr(const char *s, size_t n, uint64_t *esize, int *dtype)
{
	uint64_t sz = 0;
	size_t i = 2;
	char order, kind;

	if (name_is(s, n, "bfloat16")) {
		/* a dtype's name (str(dtype)), as writers that keep ml_dtypes'
		 * bfloat16 put it; np.save itself writes '<V2' */
		*esize = 2;
		*dtype = CODEC_DTYPE_BF16;
		return 0;
	}
	if (n < 2)
		return -EBADMSG;
	order = s[0];
	kind = s[1];
	if (!order || !strchr("<>|=", order))
		return -EBADMSG;
	if (kind == 'O')
		return 1;
	if (!kind || !strchr("biufcmMSUV", kind) || i >= n || s[i] < '0' || s[i] > '9')
		return -EBADMSG;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (sz > (1u << 30))
			return -EBADMSG;
		sz = sz * 10 + (uint64_t)(s[i] - '0');
	}
	if (i < n && s[i] != '[') /* "<M8[ns]": a unit, not a size */
		return -EBADMSG;
	if (kind == 'U')
		sz *= 4; /* UCS-4 characters */
	if (sz == 0)
		return 1; /* "|V0", "<U0": no bytes to describe */
	*esize = sz;
	*dtype = CODEC_DTYPE_OTHER;
	/* '=' is the writer's own order, which numpy never writes to a file */
	if (kind == 'f' && order == '<' && sz == 4)
		*dtype = CODEC_DTYPE_FP32;
	else if (kind == 'f' && order == '<' && sz == 2)
		*dtype = CODEC_DTYPE_FP16;
	else if (kind == 'V' && sz == 2)
		*dtype = CODEC_DTYPE_AUTO;
	return 0;
}

/* The .npy header at p[0..len).  0 with *info set; 1 for a well-formed
 * header of an array without a fixed layout (object, structured);
 * -ENOENT (no magic), -EAGAIN (need info->data bytes), -EBADMSG. */
static int npy_head(const uint8_t *p, size_t len, struct npy_info *info)
{
	uint64_t hl, esize = 0, ne = 1, first = 0, last = 0;
	const char *s, *text;
	struct json_cur c;
	int fortran = 0, plain = 0, have_shape = 0, rc;
	unsigned hsz;
	size_t n;

	memset(info, 0, sizeof(*info));
	if (memcmp(p, NPY_MAGIC, len < 6 ? len : 6))
		return -ENOENT;
	info->data = 10;
	if (len < 10)
		return -EAGAIN;
	if (p[6] < 1 || p[6] > 3)
		return -EBADMSG;
	hsz = p[6] == 1 ? 2 : 4;
	info->data = 8 + hsz;
	if (len < info->data)
		return -EAGAIN;
	hl = rd_le(p + 8, hsz);
	if (hl > NPY_MAX_HEADER)
		return -EBADMSG;
	info->data += hl;
	if (len < info->data)
		return -EAGAIN;
	text = (const char *)p + 8 + hsz;
	c.p = text;
	c.end = text + hl;
	if (json_eat(&c, '{'))
		return -EBADMSG;
	for (;;) {
		json_ws(&c);
		if (c.p < c.end && *c.p == '}') {
			c.p++;
			break;
		}
		if (py_string(&c, &s, &n) || json_eat(&c, ':'))
			return -EBADMSG;
		if (name_is(s, n, "descr")) {
			json_ws(&c);
			if (c.p < c.end && (*c.p == '\'' || *c.p == '"')) {
				if (py_string(&c, &s, &n))
					return -EBADMSG;
				rc = npy_descr(s, n, &esize, &info->dtype);
				if (rc < 0)
					return rc;
				plain = rc == 0;
			} else if (py_skip(&c, 1)) { /* a structured dtype: a list */
				return -EBADMSG;
			} else {
				plain = 0;
			}
		} else if (name_is(s, n, "fortran_order")) {
			if (py_word(&c, "True"))
				fortran = 1;
			else if (py_word(&c, "False"))
				fortran = 0;
			else
				return -EBADMSG;
		} else if (name_is(s, n, "shape")) {
			if (py_shape(&c, &ne, &first, &last))
				return -EBADMSG;
			have_shape = 1;
		} else if (py_skip(&c, 1)) {
			return -EBADMSG;
		}
		json_ws(&c);
		if (c.p < c.end && *c.p == ',')
			c.p++;
		else if (c.p >= c.end || *c.p != '}')
			return -EBADMSG;
	}
	json_ws(&c); /* the padding, and the '\n' */
	if (c.p != c.end || !have_shape)
		return -EBADMSG;
	if (!plain)
		return 1;
	if (ne && esize > (UINT64_MAX >> 2) / ne)
		return -EBADMSG;
	info->nbytes = ne * esize;
	/* the fastest dimension: the last in C order, the first in Fortran's */
	if ((info->dtype == CODEC_DTYPE_FP32 || info->dtype == CODEC_DTYPE_FP16 ||
	     info->dtype == CODEC_DTYPE_BF16) &&
	    (fortran ? first : last) <= UINT32_MAX)
		info->row = (uint32_t)(fortran ? first : last);
	return 0;
}

/* A .npy file: one range, the array. */
static int npy_parse(const uint8_t *head, size_t head_len, uint64_t file_size, struct codec_hint *h)
{
	struct npy_info in;
	struct codec_hint_range r;
	int rc = npy_head(head, head_len, &in);

	if (rc == -EAGAIN) {
		h->need = in.data;
		return rc;
	}
	h->need = 0;
	if (rc == 1)
		return 0; /* well-formed, no layout to hint */
	if (rc < 0)
		return -EBADMSG;
	if (file_size && (in.data > file_size || in.nbytes > file_size - in.data))
		return -EBADMSG;
	/* no key: the array has no name (a header names only a dtype and a
	 * shape, which many arrays share) */
	r = (struct codec_hint_range){ in.data, in.nbytes, in.dtype, in.row, 0 };
	return hint_push(h, &r);
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

/* "<anything>/data.pkl" (or "data.pkl"): torch.save's pickle. */
static int zip_is_pickle(const uint8_t *name, size_t n)
{
	return (n == 8 || (n > 8 && name[n - 9] == '/')) && !memcmp(name + n - 8, "data.pkl", 8);
}

/* The storage key of a "<anything>/data/<key>" entry. */
static uint64_t zip_key(const uint8_t *name, size_t n)
{
	size_t d = n;

	while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9')
		d--;
	return pkl_key(name + d, n - d);
}

/* A complete stored entry's name and data, for zip_parse. */
struct zip_ent {
	const uint8_t *name;
	size_t nlen;
	uint64_t data, size; /* file offset and length of the stored bytes */
	uint32_t method;
	int npy; /* an .npz array: the range is the array after its header */
};

#define ZIP_DESC_SIG 0x08074b50u

/* zip_entry for a stored .npy entry (e: its name and data, which start at
 * p[at]) whose array header in is read: 1 and the array's range; 2 when
 * the entry is streamed and its descriptor lies past buf (e->size is then
 * the entry's length from the array header); 0 when the sizes disagree
 * with the header (an ordinary entry, then). */
static int zip_npy(const uint8_t *p, size_t len, size_t at, uint32_t flags, uint64_t csize,
                   uint64_t usize, const struct npy_info *in, struct codec_hint_range *r,
                   uint64_t *next, struct zip_ent *e)
{
	const uint64_t total = in->data + in->nbytes, data = e->data;

	if (flags & 0x08u) {
		/* streamed: the descriptor follows the array */
		const uint8_t *d = p + at + total;

		if (total > len - at || len - at - total < 24) {
			*next = 0;
		} else if (rd_le(d, 4) != ZIP_DESC_SIG) {
			return 0;
		} else if (rd_le(d + 8, 4) == total && rd_le(d + 12, 4) == total) {
			*next = data + total + 16;
		} else if (rd_le(d + 8, 8) == total && rd_le(d + 16, 8) == total) {
			*next = data + total + 24;
		} else {
			return 0;
		}
	} else if ((csize == 0 && usize == 0) || (csize == total && usize == total)) {
		*next = data + total; /* zero: the sizes are not written yet */
	} else {
		return 0;
	}
	e->size = total;
	e->npy = 1;
	*r = (struct codec_hint_range){ data + in->data, in->nbytes, in->dtype, in->row,
	                                name_key((const char *)e->name, e->nlen) };
	return *next ? 1 : 2;
}

/* codec_hint_zip_entry, and on 0 or 1 *e describes the entry. */
static int zip_entry(const uint8_t *p, size_t len, uint64_t off, struct codec_hint_range *r,
                     uint64_t *next, struct zip_ent *e)
{
	uint64_t csize, usize, data;
	uint32_t flags, method, nlen, xlen;
	int storage;

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
	e->name = p + ZIP_LOCAL_FIXED;
	e->nlen = nlen;
	e->data = data;
	e->method = method;
	e->npy = 0;
	if (method == 0 && nlen > 4 && !memcmp(p + ZIP_LOCAL_FIXED + nlen - 4, ".npy", 4)) {
		/* an .npz array: its own header says how long it is, which
		 * the local header may not yet (Python's zipfile writes zero
		 * sizes first and the real ones after the data) */
		struct npy_info in;
		int nrc = npy_head(p + (data - off), len - (size_t)(data - off), &in);

		if (nrc == -EAGAIN)
			return -EAGAIN; /* the array header is not whole in buf */
		if (nrc == 0 && in.nbytes <= UINT64_MAX / 4 - in.data &&
		    (nrc = zip_npy(p, len, (size_t)(data - off), flags, csize, usize, &in, r, next,
		                   e)) > 0)
			return nrc;
	}
	if (flags & 0x08u) {
		/* torch.save streams its entries: the sizes follow the data in
		 * a descriptor, found by its signature and a size that matches
		 * the distance. */
		int64_t dl = zip_descriptor(p + (data - off), len - (size_t)(data - off), &csize);

		if (dl < 0) {
			if (!storage)
				return -EAGAIN;
			e->size = 0;
			r->off = data;
			r->len = 0;
			r->dtype = CODEC_DTYPE_AUTO;
			r->row_elems = 0;
			r->key = zip_key(e->name, nlen) + 1;
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
	e->size = csize;
	if (!storage || csize != usize || csize == 0)
		return 0;
	r->off = data;
	r->len = csize;
	r->dtype = CODEC_DTYPE_AUTO;
	r->row_elems = 0;
	r->key = zip_key(e->name, nlen) + 1; /* PKL_NO_KEY: 0 */
	return 1;
}

int codec_hint_zip_entry(const void *buf, size_t len, uint64_t off,
                         struct codec_hint_range *r, uint64_t *next)
{
	struct zip_ent e;

	if (!buf || !r || !next)
		return -EINVAL;
	return zip_entry(buf, len, off, r, next, &e);
}

/* The zip's entries in head: a range per stored tensor storage, with the
 * dtype and row length data.pkl gives it when that pickle comes first
 * (torch.save writes it so), lies whole in head and reads cleanly. */
static int zip_parse(const uint8_t *head, size_t head_len, uint64_t file_size,
                     struct codec_hint *h)
{
	struct codec_hint_range r;
	struct zip_ent e;
	struct pkl k;
	uint64_t off = 0, next;
	int rc = 0, pkl_state = 0; /* 0 not seen, 1 read, -1 unreadable */
	int npz = 0;               /* an .npy entry seen: NumPy's savez */

	memset(&k, 0, sizeof(k));
	h->need = 0;
	while (off < head_len) {
		rc = zip_entry(head + off, head_len - off, off, &r, &next, &e);
		if (rc == -ENOENT) {
			rc = 0; /* central directory: the walk is over */
			break;
		}
		if (rc == -EAGAIN && pkl_state == 0 && !npz && head_len < CODEC_HINT_MAX_HEADER &&
		    (!file_size || head_len < file_size)) {
			/* data.pkl (torch.save writes it first) is not whole in
			 * head: without it the walk could not go on past the head
			 * (entry sizes), so ask for more rather than give up */
			h->need = head_len < CODEC_HINT_MAX_HEADER / 2 ? 2 * (uint64_t)head_len
			                                               : CODEC_HINT_MAX_HEADER;
			break;
		}
		if (rc == -EAGAIN) {
			h->need = off;
			rc = 0;
			break;
		}
		if (rc < 0)
			break;
		if (rc == 2 && e.npy) {
			/* a streamed array runs past the head: its own header
			 * gave its length, the walk goes on at its descriptor
			 * (checked when those bytes arrive) */
			rc = file_size && (e.data > file_size || e.size > file_size - e.data)
			             ? -EBADMSG
			             : hint_push(h, &r);
			h->need = e.data + e.size;
			h->dsize = e.size;
			break;
		}
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
		if (rc == 0 && pkl_state == 0 && zip_is_pickle(e.name, e.nlen)) {
			pkl_state = -1;
			if (e.method == 0 && e.size <= head_len && e.data <= head_len - e.size) {
				rc = pkl_walk(&k, head + e.data, (size_t)e.size);
				if (rc == -ENOMEM)
					break;
				pkl_state = rc ? -1 : 1;
				rc = 0;
			}
		}
		npz |= rc >= 1 && e.npy;
		if (rc == 1 && pkl_state == 1 && !e.npy) {
			struct hint_torch t = { k.rec, k.nrec };

			pkl_apply(&t, zip_key(e.name, e.nlen), &r);
		}
		if (rc == 1 && (rc = hint_push(h, &r)) != 0)
			break;
		off = next;
		if (off >= head_len && (!file_size || off < file_size))
			h->need = off;
	}
	if (rc >= 0 && pkl_state == 1 && h->need) {
		/* the walk goes on past the head: keep the storage table */
		struct hint_torch *t = malloc(sizeof(*t));

		if (!t)
			rc = -ENOMEM;
		else {
			t->rec = k.rec;
			t->n = k.nrec;
			k.rec = NULL;
			h->torch = t;
		}
	}
	pkl_free(&k);
	return rc;
}

/* --- GGUF (llama.cpp) ---------------------------------------------------
 * "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata count; the
 * metadata key/value pairs (keys and strings: u64 length + bytes; typed
 * values, arrays of them); the tensor infos (name, u32 n_dims <= 4, u64
 * dims, fastest first, u32 ggml type, u64 offset from the data section);
 * the data section starts at the next multiple of general.alignment
 * (default 32) after the infos. */

#define GGUF_MAGIC 0x46554747u /* "GGUF" */
#define GGUF_MAX_DIMS 4u
#define GGUF_MAX_KV (1u << 20)
#define GGUF_T_STRING 8u
#define GGUF_T_ARRAY 9u
#define GGUF_T_COUNT 13u

struct gcur {
	const uint8_t *p, *end;
};

static int g_take(struct gcur *c, uint64_t n, const uint8_t **out)
{
	if (n > (uint64_t)(c->end - c->p))
		return n > CODEC_HINT_MAX_HEADER ? -EBADMSG : -EAGAIN;
	if (out)
		*out = c->p;
	c->p += n;
	return 0;
}

static int g_uint(struct gcur *c, unsigned n, uint64_t *v)
{
	const uint8_t *b;
	int rc = g_take(c, n, &b);

	if (!rc)
		*v = rd_le(b, n);
	return rc;
}

static int g_str(struct gcur *c, const uint8_t **s, uint64_t *n)
{
	int rc = g_uint(c, 8, n);

	return rc ? rc : g_take(c, *n, s);
}

/* Bytes of one value of a fixed-size type, 0 for string and array. */
static unsigned g_size(uint32_t t)
{
	static const uint8_t sz[GGUF_T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

	return t < GGUF_T_COUNT ? sz[t] : 0;
}

static int g_skip(struct gcur *c, uint32_t t, unsigned depth)
{
	uint64_t n, et, len;
	int rc;

	if (t >= GGUF_T_COUNT)
		return -EBADMSG;
	if (t == GGUF_T_STRING)
		return g_str(c, NULL, &len);
	if (t != GGUF_T_ARRAY)
		return g_take(c, g_size(t), NULL);
	if (depth >= 2)
		return -EBADMSG;
	if ((rc = g_uint(c, 4, &et)) || (rc = g_uint(c, 8, &n)))
		return rc;
	if (et >= GGUF_T_COUNT)
		return -EBADMSG;
	if (g_size((uint32_t)et))
		return n > CODEC_HINT_MAX_HEADER ? -EBADMSG : g_take(c, n * g_size((uint32_t)et), NULL);
	/* strings and arrays take 8 bytes or more each: n is bounded by the
	 * bytes left, so the loop is too */
	if (n > (uint64_t)(c->end - c->p) / 8)
		return n > CODEC_HINT_MAX_HEADER / 8 ? -EBADMSG : -EAGAIN;
	for (uint64_t i = 0; i < n; i++)
		if ((rc = g_skip(c, (uint32_t)et, depth + 1)))
			return rc;
	return 0;
}

/* Bytes, dtype and whether a row length applies, of a tensor of ne
 * elements (ne0 the fastest dimension) of ggml type t; 0 bytes when the
 * type's layout is not known here (the tensor then gets no range). */
static uint64_t g_tensor_bytes(uint32_t t, uint64_t ne, uint64_t ne0, int *dtype)
{
	static const struct {
		uint8_t type, blk_log2; /* block of 2^blk_log2 elements */
		uint16_t bytes;         /* per block */
	} q[] = {
		{2, 5, 18}, {3, 5, 20}, {6, 5, 22}, {7, 5, 24}, {8, 5, 34}, {9, 5, 36},
		{10, 8, 84}, {11, 8, 110}, {12, 8, 144}, {13, 8, 176}, {14, 8, 210}, {15, 8, 292},
		/* IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS */
		{16, 8, 66}, {17, 8, 74}, {18, 8, 98}, {19, 8, 50}, {20, 5, 18}, {21, 8, 110},
		{22, 8, 82}, {23, 8, 136},
		/* IQ1_M, TQ1_0, TQ2_0, MXFP4 (an e8m0 scale byte, 16 bytes of e2m1) */
		{29, 8, 56}, {34, 8, 54}, {35, 8, 66}, {39, 5, 17},
	};

	*dtype = CODEC_DTYPE_OTHER;
	switch (t) {
	case 0: /* F32 */
		*dtype = CODEC_DTYPE_FP32;
		return ne * 4;
	case 1: /* F16 */
		*dtype = CODEC_DTYPE_FP16;
		return ne * 2;
	case 30: /* BF16 */
		*dtype = CODEC_DTYPE_BF16;
		return ne * 2;
	case 24: /* I8 */
		return ne;
	case 25: /* I16 */
		return ne * 2;
	case 26: /* I32 */
		return ne * 4;
	case 27: /* I64 */
	case 28: /* F64 */
		return ne * 8;
	}
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		if (q[i].type == t)
			return ne0 % (1u << q[i].blk_log2) ? 0 : (ne >> q[i].blk_log2) * q[i].bytes;
	return 0;
}

static int gguf_parse(const uint8_t *head, size_t head_len, uint64_t file_size, struct codec_hint *h)
{
	struct gcur c = { head, head + head_len };
	uint64_t ver, nt, nkv, align = 32, v, data;
	int rc;

	if ((rc = g_uint(&c, 4, &v)) || (rc = g_uint(&c, 4, &ver)) || (rc = g_uint(&c, 8, &nt)) ||
	    (rc = g_uint(&c, 8, &nkv)))
		goto out;
	rc = -EBADMSG;
	if (ver < 2 || ver > 3 || nt > CODEC_HINT_MAX_RANGES || nkv > GGUF_MAX_KV)
		goto out;
	for (uint64_t i = 0; i < nkv; i++) {
		const uint8_t *key;
		uint64_t kl, t;

		if ((rc = g_str(&c, &key, &kl)) || (rc = g_uint(&c, 4, &t)))
			goto out;
		if (kl == 17 && !memcmp(key, "general.alignment", 17) && t == 4) {
			if ((rc = g_uint(&c, 4, &align)))
				goto out;
			rc = -EBADMSG;
			if (align == 0 || (align & (align - 1)) || align > (1u << 20))
				goto out;
		} else if ((rc = g_skip(&c, (uint32_t)t, 0))) {
			goto out;
		}
	}
	/* the infos: offsets relative to the data section until its start is known */
	for (uint64_t i = 0; i < nt; i++) {
		const uint8_t *name;
		uint64_t nl, nd, d, ne = 1, ne0 = 0, t, off, len;
		struct codec_hint_range r = {0};

		if ((rc = g_str(&c, &name, &nl)) || (rc = g_uint(&c, 4, &nd)))
			goto out;
		rc = -EBADMSG;
		if (nd == 0 || nd > GGUF_MAX_DIMS)
			goto out;
		for (uint64_t k = 0; k < nd; k++) {
			if ((rc = g_uint(&c, 8, &d)))
				goto out;
			rc = -EBADMSG;
			if (d == 0 || ne > (UINT64_MAX >> 4) / d)
				goto out;
			ne *= d;
			if (k == 0)
				ne0 = d;
		}
		if ((rc = g_uint(&c, 4, &t)) || (rc = g_uint(&c, 8, &off)))
			goto out;
		len = g_tensor_bytes((uint32_t)t, ne, ne0, &r.dtype);
		if (len == 0)
			continue;
		rc = -EBADMSG;
		if (off > UINT64_MAX / 2 || len > UINT64_MAX / 2)
			goto out;
		r.off = off;
		r.len = len;
		if (r.dtype != CODEC_DTYPE_OTHER && ne0 <= UINT32_MAX)
			r.row_elems = (uint32_t)ne0;
		r.key = name_key((const char *)name, (size_t)nl);
		if ((rc = hint_push(h, &r)))
			goto out;
	}
	data = (uint64_t)(c.p - head);
	data = (data + align - 1) & ~(align - 1);
	rc = -EBADMSG;
	for (size_t i = 0; i < h->n; i++) {
		h->r[i].off += data;
		if (file_size && h->r[i].off + h->r[i].len > file_size)
			goto out;
	}
	rc = 0;
out:
	if (rc == -EAGAIN) {
		/* the infos end somewhere past head: half as much again */
		uint64_t need = (uint64_t)head_len + head_len / 2 + 65536;

		h->need = need < CODEC_HINT_MAX_HEADER ? need : CODEC_HINT_MAX_HEADER;
		if (head_len >= CODEC_HINT_MAX_HEADER)
			rc = -EBADMSG;
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
	} else if (!memcmp(p, NPY_MAGIC, 6)) {
		h->format = CODEC_HINT_NPY;
		rc = npy_parse(p, head_len, file_size, h);
	} else if (rd_le(p, 4) == GGUF_MAGIC) {
		h->format = CODEC_HINT_GGUF;
		rc = gguf_parse(p, head_len, file_size, h);
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
	struct hint_torch *t;

	if (!h)
		return;
	t = h->torch;
	if (t)
		free(t->rec);
	free(t);
	free(h->r);
	memset(h, 0, sizeof(*h));
}

size_t codec_hint_mem(const struct codec_hint *h)
{
	const struct hint_torch *t = h ? h->torch : NULL;

	if (!h)
		return 0;
	return sizeof(*h) + h->cap * sizeof(*h->r) + (t ? sizeof(*t) + t->n * sizeof(*t->rec) : 0);
}

int codec_hint_feed(struct codec_hint *h, const void *buf, size_t len, uint64_t off)
{
	const struct hint_torch *t;
	int added = 0, rc = 0;

	if (!h || (!buf && len))
		return -EINVAL;
	t = h->torch;
	if (h->format != CODEC_HINT_TORCH_ZIP || !h->need)
		return 0;
	while (rc >= 0 && h->need >= off && h->need - off < len) {
		const uint8_t *q = (const uint8_t *)buf + (h->need - off);
		size_t avail = (size_t)(len - (h->need - off));
		struct codec_hint_range r;
		struct zip_ent e;
		uint64_t next, sz;

		if (h->dsize) {
			/* the descriptor after a streamed entry: sizes must agree */
			if (avail < 16)
				break;
			if (rd_le(q, 4) != ZIP_DESC_SIG) {
				rc = -EBADMSG;
			} else if (rd_le(q + 8, 4) == (h->dsize & 0xffffffffu) &&
			           rd_le(q + 12, 4) == (h->dsize & 0xffffffffu)) {
				h->need += 16;
				h->dsize = 0;
			} else if (avail < 24) {
				break;
			} else if (rd_le(q + 8, 8) == h->dsize && rd_le(q + 16, 8) == h->dsize) {
				h->need += 24;
				h->dsize = 0;
			} else {
				rc = -EBADMSG;
			}
			continue;
		}
		rc = zip_entry(q, avail, h->need, &r, &next, &e);
		if (rc == -EAGAIN) {
			rc = 0; /* the header (or a small entry) is not whole in buf */
			break;
		}
		if (rc == 2) {
			/* a streamed entry running past buf: an .npz array's
			 * header knows its size, data.pkl a torch storage's */
			sz = e.npy ? e.size : t ? torch_bytes(t, zip_key(e.name, e.nlen)) : 0;
			if (!sz || sz > UINT64_MAX - e.data) {
				rc = -ENOENT;
				break;
			}
			if (!e.npy)
				r.len = sz;
			next = e.data + sz;
			h->dsize = sz;
			rc = 1;
		}
		if (rc == 1) {
			if (t && !e.npy)
				pkl_apply(t, zip_key(e.name, e.nlen), &r);
			rc = hint_push(h, &r);
			added += rc == 0;
		}
		if (rc >= 0)
			h->need = next;
	}
	if (rc < 0)
		h->need = 0; /* -ENOENT: the central directory, or a size not known */
	return rc < 0 && rc != -ENOENT ? rc : added;
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
