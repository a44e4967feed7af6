// SPDX-License-Identifier: GPL-2.0
/*
 * gguf.c - reader of GGUF model files. The format, the checks and the
 * limits are described in gguf.h.
 *
 * gguf_open() parses the file front to back through a read buffer (struct
 * parser), filled with O_DIRECT reads of DIRECT_CHUNK where the file system
 * takes them (the header of a large model is about a megabyte: one read,
 * with no readahead and no copy out of the page cache), else through the
 * page cache READ_CHUNK at a time. Every count is checked against what is
 * left of the file before anything is allocated for it, and every
 * allocation is made from an arena that counts against GGUF_MAX_MEMORY. The
 * checks that need all tensors (data within the file, unique names, no
 * overlap) sort pointer arrays, so a file with many tensors costs
 * O(n log n).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads little-endian fields in place; port it to this host first"
#endif

/*
 * The chunk sizes can be set at build time (the fuzzer makes them small, so
 * that small inputs refill the buffer): the read buffer is DIRECT_CHUNK
 * bytes, so READ_CHUNK must fit in it, and DIRECT_CHUNK must be a multiple
 * of DIRECT_ALIGN (an O_DIRECT read is of whole aligned blocks).
 */
#ifdef GGUF_READ_CHUNK
#define READ_CHUNK	(GGUF_READ_CHUNK)
#else
#define READ_CHUNK	(64u * 1024)	/* parser's reads through the page cache */
#endif
#ifdef GGUF_DIRECT_CHUNK
#define DIRECT_CHUNK	(GGUF_DIRECT_CHUNK)
#else
#define DIRECT_CHUNK	(1u << 20)	/* its O_DIRECT reads, */
#endif
#define DIRECT_ALIGN	4096u		/* of aligned offset, length and memory */
_Static_assert(DIRECT_CHUNK >= DIRECT_ALIGN && DIRECT_CHUNK % DIRECT_ALIGN == 0,
	       "DIRECT_CHUNK must be a multiple of DIRECT_ALIGN");
_Static_assert(READ_CHUNK > 0 && READ_CHUNK <= DIRECT_CHUNK,
	       "READ_CHUNK must fit in the read buffer (DIRECT_CHUNK)");
#define ARENA_MIN	(16u << 10)	/* arena chunks: the first one's size, */
#define ARENA_MAX	(1u << 20)	/* doubling up to this */
#define WHERE_NAME_MAX	80		/* key/name bytes quoted in messages */

/* smallest encodings, to bound counts by the bytes left in the file */
#define MIN_STRING	8		/* u64 length, empty */
#define MIN_KV		(MIN_STRING + 1 + 4 + 1)
#define MIN_TENSOR	(MIN_STRING + 1 + 4 + 8 + 4 + 8)

static const struct gguf_type_info type_table[GGUF_TENSOR_TYPE_COUNT] = {
	[GGUF_TENSOR_F32]	= { "f32",	1,	4 },
	[GGUF_TENSOR_F16]	= { "f16",	1,	2 },
	[GGUF_TENSOR_Q4_0]	= { "q4_0",	32,	18 },
	[GGUF_TENSOR_Q4_1]	= { "q4_1",	32,	20 },
	[GGUF_TENSOR_Q5_0]	= { "q5_0",	32,	22 },
	[GGUF_TENSOR_Q5_1]	= { "q5_1",	32,	24 },
	[GGUF_TENSOR_Q8_0]	= { "q8_0",	32,	34 },
	[GGUF_TENSOR_Q8_1]	= { "q8_1",	32,	36 },
	[GGUF_TENSOR_Q2_K]	= { "q2_K",	256,	84 },
	[GGUF_TENSOR_Q3_K]	= { "q3_K",	256,	110 },
	[GGUF_TENSOR_Q4_K]	= { "q4_K",	256,	144 },
	[GGUF_TENSOR_Q5_K]	= { "q5_K",	256,	176 },
	[GGUF_TENSOR_Q6_K]	= { "q6_K",	256,	210 },
	[GGUF_TENSOR_Q8_K]	= { "q8_K",	256,	292 },
	[GGUF_TENSOR_IQ2_XXS]	= { "iq2_xxs",	256,	66 },
	[GGUF_TENSOR_IQ2_XS]	= { "iq2_xs",	256,	74 },
	[GGUF_TENSOR_IQ3_XXS]	= { "iq3_xxs",	256,	98 },
	[GGUF_TENSOR_IQ1_S]	= { "iq1_s",	256,	50 },
	[GGUF_TENSOR_IQ4_NL]	= { "iq4_nl",	32,	18 },
	[GGUF_TENSOR_IQ3_S]	= { "iq3_s",	256,	110 },
	[GGUF_TENSOR_IQ2_S]	= { "iq2_s",	256,	82 },
	[GGUF_TENSOR_IQ4_XS]	= { "iq4_xs",	256,	136 },
	[GGUF_TENSOR_I8]	= { "i8",	1,	1 },
	[GGUF_TENSOR_I16]	= { "i16",	1,	2 },
	[GGUF_TENSOR_I32]	= { "i32",	1,	4 },
	[GGUF_TENSOR_I64]	= { "i64",	1,	8 },
	[GGUF_TENSOR_F64]	= { "f64",	1,	8 },
	[GGUF_TENSOR_IQ1_M]	= { "iq1_m",	256,	56 },
	[GGUF_TENSOR_BF16]	= { "bf16",	1,	2 },
	[GGUF_TENSOR_TQ1_0]	= { "tq1_0",	256,	54 },
	[GGUF_TENSOR_TQ2_0]	= { "tq2_0",	256,	66 },
	[GGUF_TENSOR_MXFP4]	= { "mxfp4",	32,	17 },
	[GGUF_TENSOR_NVFP4]	= { "nvfp4",	64,	36 },
	[GGUF_TENSOR_Q1_0]	= { "q1_0",	128,	18 },
};

static const struct {
	const char *name;
	uint8_t size;		/* bytes of one value; 0: variable */
} value_types[GGUF_TYPE_COUNT] = {
	[GGUF_TYPE_UINT8]	= { "uint8",	1 },
	[GGUF_TYPE_INT8]	= { "int8",	1 },
	[GGUF_TYPE_UINT16]	= { "uint16",	2 },
	[GGUF_TYPE_INT16]	= { "int16",	2 },
	[GGUF_TYPE_UINT32]	= { "uint32",	4 },
	[GGUF_TYPE_INT32]	= { "int32",	4 },
	[GGUF_TYPE_FLOAT32]	= { "float32",	4 },
	[GGUF_TYPE_BOOL]	= { "bool",	1 },
	[GGUF_TYPE_STRING]	= { "string",	0 },
	[GGUF_TYPE_ARRAY]	= { "array",	0 },
	[GGUF_TYPE_UINT64]	= { "uint64",	8 },
	[GGUF_TYPE_INT64]	= { "int64",	8 },
	[GGUF_TYPE_FLOAT64]	= { "float64",	8 },
};

struct arena_chunk {
	struct arena_chunk *next;
	size_t size, used;
	max_align_t data[];
};

struct gguf_file {
	int fd;
	uint32_t version;
	uint32_t alignment;
	uint64_t size;
	uint64_t data_offset;
	size_t n_kv;
	struct gguf_kv *kv;
	struct gguf_kv **kv_by_key;
	size_t n_tensors;
	struct gguf_tensor *tensors;
	struct gguf_tensor **tensor_by_name;
	struct arena_chunk *arena;
	uint64_t mem;		/* bytes allocated, against GGUF_MAX_MEMORY */
};

struct parser {
	struct gguf_file *f;
	int dfd;		/* the file with O_DIRECT, or -1 */
	uint64_t pos;		/* file offset of the next byte to parse */
	uint64_t buf_off;	/* file offset of buf[0] */
	size_t buf_len;
	char where[WHERE_NAME_MAX + 40];	/* "tensor <u64> '<name>...'" */
	char *err;
	size_t errlen;
	uint8_t *buf;		/* DIRECT_CHUNK, aligned to DIRECT_ALIGN */
};

/* ---- type table --------------------------------------------------------- */

const struct gguf_type_info *gguf_type_info(uint32_t type)
{
	if (type >= GGUF_TENSOR_TYPE_COUNT || !type_table[type].name)
		return NULL;
	return &type_table[type];
}

int gguf_type_by_name(const char *name)
{
	for (int t = 0; t < GGUF_TENSOR_TYPE_COUNT; t++)
		if (type_table[t].name && !strcasecmp(type_table[t].name, name))
			return t;
	return -1;
}

const char *gguf_value_type_name(uint32_t type)
{
	return type < GGUF_TYPE_COUNT ? value_types[type].name : "?";
}

/*
 * The size of a tensor, with the reason in @msg when it has none (@msg may
 * be NULL). Shared by gguf_open() and gguf_tensor_bytes().
 */
static int tensor_bytes(uint32_t type, uint32_t n_dims, const uint64_t *dims,
			uint64_t *n_elements, uint64_t *size,
			char *msg, size_t msglen)
{
	const struct gguf_type_info *ti = gguf_type_info(type);
	uint64_t n = 1, bytes;

#define MSG(...) (msg ? snprintf(msg, msglen, __VA_ARGS__) : 0)
	if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
		MSG("n_dims %" PRIu32 " is out of range 1..%d", n_dims, GGUF_MAX_DIMS);
		return -EINVAL;
	}
	for (uint32_t d = 0; d < n_dims; d++) {
		if (!dims[d]) {
			MSG("dims[%" PRIu32 "] is 0", d);
			return -EINVAL;
		}
		if (__builtin_mul_overflow(n, dims[d], &n) || n > INT64_MAX) {
			MSG("element count overflows int64 at dims[%" PRIu32 "] = %" PRIu64,
			    d, dims[d]);
			return -EOVERFLOW;
		}
	}
	if (!ti) {
		MSG("unknown tensor type %" PRIu32, type);
		return -EINVAL;
	}
	if (dims[0] % ti->block_size) {
		MSG("dims[0] = %" PRIu64 " is not a multiple of the %s block size %" PRIu32,
		    dims[0], ti->name, ti->block_size);
		return -EINVAL;
	}
	/* blocks x bytes per block: n / block_size is exact, see dims[0] */
	if (__builtin_mul_overflow(n / ti->block_size, (uint64_t)ti->type_size, &bytes) ||
	    bytes > INT64_MAX) {
		MSG("size in bytes overflows int64 (%" PRIu64 " elements of %s)",
		    n, ti->name);
		return -EOVERFLOW;
	}
#undef MSG
	if (n_elements)
		*n_elements = n;
	*size = bytes;
	return 0;
}

int gguf_tensor_bytes(uint32_t type, uint32_t n_dims, const uint64_t *dims,
		      uint64_t *n_elements, uint64_t *size)
{
	return tensor_bytes(type, n_dims, dims, n_elements, size, NULL, 0);
}

/* ---- errors ------------------------------------------------------------- */

static int fail(struct parser *p, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "<where>: <message>" into the caller's buffer; returns @ret */
static int fail(struct parser *p, int ret, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!p->err || !p->errlen)
		return ret;
	if (p->where[0])
		n = snprintf(p->err, p->errlen, "%s: ", p->where);
	if (n < 0 || (size_t)n >= p->errlen)
		return ret;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return ret;
}

/*
 * A name from the file, fit to quote in a message: in single quotes, at
 * most WHERE_NAME_MAX bytes of it, unprintable bytes shown as '?'.
 */
#define QUOTED_MAX (WHERE_NAME_MAX + 6)

static const char *quote(char *buf, const char *name)
{
	size_t n = 0, i;

	buf[n++] = '\'';
	for (i = 0; name[i] && i < WHERE_NAME_MAX; i++)
		buf[n++] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	if (name[i]) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n++] = '\'';
	buf[n] = '\0';
	return buf;
}

/* the context of later messages: "<what> <index>" [" '<name>'"] */
static void set_where(struct parser *p, const char *what, uint64_t index,
		      const char *name)
{
	char q[QUOTED_MAX];

	snprintf(p->where, sizeof(p->where), "%s %" PRIu64 "%s%s", what, index,
		 name ? " " : "", name ? quote(q, name) : "");
}

/* ---- memory ------------------------------------------------------------- */

static void *arena_alloc(struct parser *p, uint64_t size)
{
	struct gguf_file *f = p->f;
	struct arena_chunk *c = f->arena;
	size_t need, csize;

	size = (size + sizeof(max_align_t) - 1) & ~(uint64_t)(sizeof(max_align_t) - 1);
	if (size > GGUF_MAX_MEMORY - f->mem) {
		fail(p, 0, "needs more than the %llu MiB the reader allows itself",
		     GGUF_MAX_MEMORY >> 20);
		errno = E2BIG;
		return NULL;
	}
	f->mem += size;
	if (c && c->size - c->used >= size) {
		void *r = (char *)c->data + c->used;

		c->used += size;
		return r;
	}
	/* a new chunk; a big allocation gets one of its own */
	need = size;
	csize = c ? c->size * 2 : ARENA_MIN;
	if (csize > ARENA_MAX)
		csize = ARENA_MAX;
	if (need > csize / 4)
		csize = need;
	c = malloc(sizeof(*c) + csize);
	if (!c) {
		fail(p, 0, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	c->size = csize;
	c->used = need;
	if (csize == need && f->arena) {
		/* keep filling the current chunk after this one */
		c->next = f->arena->next;
		f->arena->next = c;
	} else {
		c->next = f->arena;
		f->arena = c;
	}
	return c->data;
}

/* ---- reading ------------------------------------------------------------ */

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t r = pread(fd, buf, len, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;	/* the file shrank under us */
		buf = (char *)buf + r;
		len -= r;
		off += r;
	}
	return 0;
}

static uint64_t remaining(const struct parser *p)
{
	return p->f->size - p->pos;
}

/*
 * Fill the buffer from the block holding p->pos on, with O_DIRECT. A file
 * system that refuses (EINVAL: alignment it does not take) ends O_DIRECT
 * for the rest of the parse: 1, and the caller reads through the page
 * cache. 0 done, or -errno.
 */
static int fill_direct(struct parser *p)
{
	uint64_t off = p->pos & ~(uint64_t)(DIRECT_ALIGN - 1), want = p->f->size - off;
	size_t got = 0;

	if (want > DIRECT_CHUNK)
		want = DIRECT_CHUNK;
	/* the file's last block is read whole: the read stops at its end */
	want = (want + DIRECT_ALIGN - 1) & ~(uint64_t)(DIRECT_ALIGN - 1);
	while (got < want && off + got < p->f->size) {
		ssize_t r = pread(p->dfd, p->buf + got, want - got, off + got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EINVAL && !got) {
			close(p->dfd);
			p->dfd = -1;
			return 1;
		}
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;	/* the file shrank under us */
		got += r;
		if (got % DIRECT_ALIGN)
			break;		/* the end of the file */
	}
	if (got > p->f->size - off)
		got = p->f->size - off;
	if (off + got <= p->pos)
		return -EIO;
	p->buf_off = off;
	p->buf_len = got;
	return 0;
}

static int rd_bytes_slow(struct parser *p, void *dst, uint64_t n)
{
	uint8_t *d = dst;
	int ret;

	if (n > remaining(p))
		return fail(p, -EINVAL, "truncated: %" PRIu64 " bytes needed at offset %"
			    PRIu64 ", file size %" PRIu64, n, p->pos, p->f->size);
	while (n) {
		uint64_t in_buf, chunk;

		if (p->pos >= p->buf_off && p->pos < p->buf_off + p->buf_len) {
			in_buf = p->buf_off + p->buf_len - p->pos;
			chunk = n < in_buf ? n : in_buf;
			memcpy(d, p->buf + (p->pos - p->buf_off), chunk);
		} else if (p->dfd >= 0 && (ret = fill_direct(p)) <= 0) {
			if (ret)
				goto err_io;
			continue;
		} else if (n >= READ_CHUNK) {
			chunk = n;
			ret = pread_full(p->f->fd, d, chunk, p->pos);
			if (ret)
				goto err_io;
		} else {
			chunk = remaining(p) < READ_CHUNK ? remaining(p) : READ_CHUNK;
			ret = pread_full(p->f->fd, p->buf, chunk, p->pos);
			if (ret)
				goto err_io;
			p->buf_off = p->pos;
			p->buf_len = chunk;
			continue;
		}
		d += chunk;
		n -= chunk;
		p->pos += chunk;
	}
	return 0;
err_io:
	return fail(p, ret, "read at offset %" PRIu64 ": %s", p->pos, strerror(-ret));
}

/*
 * The common case, all @n bytes in the buffer, inline: most of a header is
 * small fields and short strings (a vocabulary is tens of thousands of
 * them), and under emulation each call and check shows.
 */
static inline int rd_bytes(struct parser *p, void *dst, uint64_t n)
{
	uint64_t at = p->pos - p->buf_off;

	if (p->pos >= p->buf_off && at <= p->buf_len && n <= p->buf_len - at) {
		memcpy(dst, p->buf + at, n);
		p->pos += n;
		return 0;
	}
	return rd_bytes_slow(p, dst, n);
}

static int rd_u32(struct parser *p, uint32_t *v)
{
	return rd_bytes(p, v, sizeof(*v));
}

static int rd_u64(struct parser *p, uint64_t *v)
{
	return rd_bytes(p, v, sizeof(*v));
}

/*
 * @count things of at least @min_bytes each must fit in what is left of
 * the file, less @reserved bytes that later parts need at least.
 */
static int check_count(struct parser *p, const char *what, uint64_t count,
		       uint64_t limit, uint64_t min_bytes, uint64_t reserved)
{
	uint64_t left = remaining(p) > reserved ? remaining(p) - reserved : 0;

	if (count > limit)
		return fail(p, -E2BIG, "%s %" PRIu64 " exceeds the limit of %" PRIu64,
			    what, count, limit);
	if (count > left / min_bytes)
		return fail(p, -EINVAL, "%s %" PRIu64 " cannot fit in the %" PRIu64
			    " bytes left in the file (truncated or corrupt)",
			    what, count, left);
	return 0;
}

/* a string of at most @max bytes; @ident: a key or name, non-empty, no NUL */
static int rd_string(struct parser *p, const char *what, uint64_t max,
		     bool ident, struct gguf_str *out)
{
	uint64_t len;
	char *s;
	int ret;

	ret = rd_u64(p, &len);
	if (ret)
		return ret;
	if (len > max)
		return fail(p, -E2BIG, "%s length %" PRIu64 " exceeds the limit of %"
			    PRIu64 " bytes", what, len, max);
	if (len > remaining(p))
		return fail(p, -EINVAL, "truncated: %s of %" PRIu64 " bytes at offset %"
			    PRIu64 ", file size %" PRIu64, what, len, p->pos, p->f->size);
	if (ident && !len)
		return fail(p, -EINVAL, "empty %s", what);
	s = arena_alloc(p, len + 1);
	if (!s)
		return -errno;
	ret = rd_bytes(p, s, len);
	if (ret)
		return ret;
	s[len] = '\0';
	if (ident && memchr(s, '\0', len))
		return fail(p, -EINVAL, "%s contains a NUL byte", what);
	out->len = len;
	out->s = s;
	return 0;
}

/* ---- metadata ----------------------------------------------------------- */

static int check_bool(struct parser *p, const uint8_t *v, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (v[i] > 1)
			return fail(p, -EINVAL, "bool%s value %u at offset %" PRIu64
				    " is neither 0 nor 1", n > 1 ? " array" : "",
				    v[i], p->pos - n + i);
	return 0;
}

static int rd_array(struct parser *p, struct gguf_kv *kv)
{
	uint32_t et;
	uint64_t n, size;
	void *arr;
	int ret;

	ret = rd_u32(p, &et);
	if (ret)
		return ret;
	if (et == GGUF_TYPE_ARRAY)
		return fail(p, -EINVAL, "arrays of arrays are not supported");
	if (et >= GGUF_TYPE_COUNT)
		return fail(p, -EINVAL, "unknown array element type %" PRIu32, et);
	ret = rd_u64(p, &n);
	if (ret)
		return ret;
	size = value_types[et].size;
	ret = check_count(p, "array length", n, UINT64_MAX,
			  size ? size : MIN_STRING, 0);
	if (ret)
		return ret;
	kv->elem_type = et;
	kv->n = n;
	if (et == GGUF_TYPE_STRING) {
		struct gguf_str *s = arena_alloc(p, n * sizeof(*s));

		if (!s)
			return -errno;
		for (uint64_t i = 0; i < n; i++) {
			ret = rd_string(p, "string", GGUF_MAX_STRING_LEN, false, &s[i]);
			if (ret)
				return ret;
		}
		kv->v.arr = s;
		return 0;
	}
	arr = arena_alloc(p, n * size);
	if (!arr)
		return -errno;
	ret = rd_bytes(p, arr, n * size);
	if (ret)
		return ret;
	kv->v.arr = arr;
	return et == GGUF_TYPE_BOOL ? check_bool(p, arr, n) : 0;
}

static int rd_value(struct parser *p, struct gguf_kv *kv)
{
	union {
		uint8_t u8; int8_t i8; uint16_t u16; int16_t i16;
		uint32_t u32; int32_t i32; uint64_t u64; int64_t i64;
		float f32; double f64;
	} v;
	int ret;

	kv->elem_type = kv->type;
	kv->n = 1;
	switch (kv->type) {
	case GGUF_TYPE_STRING:
		return rd_string(p, "string", GGUF_MAX_STRING_LEN, false, &kv->v.str);
	case GGUF_TYPE_ARRAY:
		return rd_array(p, kv);
	}
	ret = rd_bytes(p, &v, value_types[kv->type].size);
	if (ret)
		return ret;
	switch (kv->type) {
	case GGUF_TYPE_UINT8:	kv->v.u = v.u8; break;
	case GGUF_TYPE_INT8:	kv->v.i = v.i8; break;
	case GGUF_TYPE_UINT16:	kv->v.u = v.u16; break;
	case GGUF_TYPE_INT16:	kv->v.i = v.i16; break;
	case GGUF_TYPE_UINT32:	kv->v.u = v.u32; break;
	case GGUF_TYPE_INT32:	kv->v.i = v.i32; break;
	case GGUF_TYPE_FLOAT32:	kv->v.f = v.f32; break;
	case GGUF_TYPE_UINT64:	kv->v.u = v.u64; break;
	case GGUF_TYPE_INT64:	kv->v.i = v.i64; break;
	case GGUF_TYPE_FLOAT64:	kv->v.f = v.f64; break;
	case GGUF_TYPE_BOOL:
		kv->v.u = v.u8;
		return check_bool(p, &v.u8, 1);
	}
	return 0;
}

static int cmp_kv(const void *a, const void *b)
{
	const struct gguf_kv *x = *(struct gguf_kv * const *)a;
	const struct gguf_kv *y = *(struct gguf_kv * const *)b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x > y) - (x < y);
}

static int cmp_tensor_name(const void *a, const void *b)
{
	const struct gguf_tensor *x = *(struct gguf_tensor * const *)a;
	const struct gguf_tensor *y = *(struct gguf_tensor * const *)b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x > y) - (x < y);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
	const struct gguf_tensor *x = *(struct gguf_tensor * const *)a;
	const struct gguf_tensor *y = *(struct gguf_tensor * const *)b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return (x > y) - (x < y);
}

static int rd_metadata(struct parser *p, uint64_t n_kv)
{
	struct gguf_file *f = p->f;
	struct gguf_str key;
	int ret;

	f->kv = arena_alloc(p, n_kv * sizeof(*f->kv));
	f->kv_by_key = arena_alloc(p, n_kv * sizeof(*f->kv_by_key));
	if (!f->kv || !f->kv_by_key)
		return -errno;
	for (uint64_t i = 0; i < n_kv; i++) {
		struct gguf_kv *kv = &f->kv[i];

		set_where(p, "kv", i, NULL);
		ret = rd_string(p, "key", GGUF_MAX_KEY_LEN, true, &key);
		if (ret)
			return ret;
		kv->key = key.s;
		set_where(p, "kv", i, kv->key);
		ret = rd_u32(p, &kv->type);
		if (ret)
			return ret;
		if (kv->type >= GGUF_TYPE_COUNT)
			return fail(p, -EINVAL, "unknown value type %" PRIu32, kv->type);
		ret = rd_value(p, kv);
		if (ret)
			return ret;
		f->kv_by_key[i] = kv;
		f->n_kv = i + 1;
	}

	qsort(f->kv_by_key, n_kv, sizeof(*f->kv_by_key), cmp_kv);
	for (uint64_t i = 1; i < n_kv; i++) {
		const struct gguf_kv *a = f->kv_by_key[i - 1], *b = f->kv_by_key[i];

		if (!strcmp(a->key, b->key)) {
			set_where(p, "kv", b - f->kv, b->key);
			return fail(p, -EINVAL, "duplicate key (first at kv %zu)",
				    (size_t)(a - f->kv));
		}
	}
	return 0;
}

static int get_alignment(struct parser *p)
{
	struct gguf_file *f = p->f;
	const struct gguf_kv *kv = gguf_find_kv(f, "general.alignment");

	f->alignment = GGUF_DEFAULT_ALIGNMENT;
	if (!kv)
		return 0;
	set_where(p, "kv", kv - f->kv, kv->key);
	if (kv->type != GGUF_TYPE_UINT32)
		return fail(p, -EINVAL, "has type %s, expected uint32",
			    gguf_value_type_name(kv->type));
	if (!kv->v.u || (kv->v.u & (kv->v.u - 1)))
		return fail(p, -EINVAL, "alignment %" PRIu64 " is not a power of two",
			    kv->v.u);
	f->alignment = kv->v.u;
	return 0;
}

/* ---- tensors ------------------------------------------------------------ */

static int rd_tensor_info(struct parser *p, uint64_t i, struct gguf_tensor *t)
{
	struct gguf_str name;
	char msg[160];
	int ret;

	set_where(p, "tensor", i, NULL);
	ret = rd_string(p, "name", GGUF_MAX_NAME_LEN, true, &name);
	if (ret)
		return ret;
	t->name = name.s;
	set_where(p, "tensor", i, t->name);
	ret = rd_u32(p, &t->n_dims);
	if (ret)
		return ret;
	if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
		return fail(p, -EINVAL, "n_dims %" PRIu32 " is out of range 1..%d",
			    t->n_dims, GGUF_MAX_DIMS);
	for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
		t->dims[d] = 1;
	ret = rd_bytes(p, t->dims, t->n_dims * sizeof(t->dims[0]));
	if (ret)
		return ret;
	ret = rd_u32(p, &t->type);
	if (ret)
		return ret;
	ret = rd_u64(p, &t->offset);
	if (ret)
		return ret;
	ret = tensor_bytes(t->type, t->n_dims, t->dims, &t->n_elements, &t->size,
			   msg, sizeof(msg));
	if (ret)
		return fail(p, ret == -EOVERFLOW ? -EINVAL : ret, "%s", msg);
	if (t->offset % p->f->alignment)
		return fail(p, -EINVAL, "offset %" PRIu64 " is not a multiple of the alignment %"
			    PRIu32, t->offset, p->f->alignment);
	return 0;
}

/* data within the file, names unique, no two tensors overlapping */
static int check_tensors(struct parser *p)
{
	struct gguf_file *f = p->f;
	size_t n = f->n_tensors;
	struct gguf_tensor **by_off, *last = NULL;
	char q[QUOTED_MAX];
	uint64_t end = 0;

	for (size_t i = 0; i < n; i++) {
		struct gguf_tensor *t = &f->tensors[i];
		uint64_t room;

		set_where(p, "tensor", i, t->name);
		room = f->data_offset <= f->size ? f->size - f->data_offset : 0;
		if (f->data_offset > f->size || t->offset > room)
			return fail(p, -EINVAL, "data offset %" PRIu64 " (data section at %"
				    PRIu64 ") beyond end of file (size %" PRIu64 ")",
				    t->offset, f->data_offset, f->size);
		t->file_offset = f->data_offset + t->offset;
		if (t->size > room - t->offset)
			return fail(p, -EINVAL, "data [%" PRIu64 ", +%" PRIu64
				    ") beyond end of file (size %" PRIu64 ")",
				    t->file_offset, t->size, f->size);
		f->tensor_by_name[i] = t;
	}

	qsort(f->tensor_by_name, n, sizeof(*f->tensor_by_name), cmp_tensor_name);
	for (size_t i = 1; i < n; i++) {
		const struct gguf_tensor *a = f->tensor_by_name[i - 1];
		const struct gguf_tensor *b = f->tensor_by_name[i];

		if (!strcmp(a->name, b->name)) {
			set_where(p, "tensor", b - f->tensors, b->name);
			return fail(p, -EINVAL, "duplicate name (first at tensor %zu)",
				    (size_t)(a - f->tensors));
		}
	}

	by_off = arena_alloc(p, n * sizeof(*by_off));
	if (!by_off)
		return -errno;
	memcpy(by_off, f->tensor_by_name, n * sizeof(*by_off));
	qsort(by_off, n, sizeof(*by_off), cmp_tensor_offset);
	for (size_t i = 0; i < n; i++) {
		struct gguf_tensor *t = by_off[i];

		if (last && t->offset < end) {
			set_where(p, "tensor", t - f->tensors, t->name);
			return fail(p, -EINVAL, "data [%" PRIu64 ", +%" PRIu64 ") overlaps "
				    "tensor %zu %s [%" PRIu64 ", +%" PRIu64 ")",
				    t->file_offset, t->size, (size_t)(last - f->tensors),
				    quote(q, last->name), last->file_offset, last->size);
		}
		if (t->offset + t->size > end) {
			end = t->offset + t->size;
			last = t;
		}
	}
	return 0;
}

static int rd_tensors(struct parser *p, uint64_t n)
{
	struct gguf_file *f = p->f;
	int ret;

	f->tensors = arena_alloc(p, n * sizeof(*f->tensors));
	f->tensor_by_name = arena_alloc(p, n * sizeof(*f->tensor_by_name));
	if (!f->tensors || !f->tensor_by_name)
		return -errno;
	for (uint64_t i = 0; i < n; i++) {
		ret = rd_tensor_info(p, i, &f->tensors[i]);
		if (ret)
			return ret;
		f->n_tensors = i + 1;
	}
	p->where[0] = '\0';
	/* pos <= size < 2^63 and alignment <= 2^31: no overflow */
	f->data_offset = (p->pos + f->alignment - 1) & ~(uint64_t)(f->alignment - 1);
	return check_tensors(p);
}

/* ---- header ------------------------------------------------------------- */

static int rd_header(struct parser *p, uint64_t *n_tensors, uint64_t *n_kv)
{
	uint8_t magic[4];
	uint32_t v;
	int ret;

	snprintf(p->where, sizeof(p->where), "header");
	ret = rd_bytes(p, magic, sizeof(magic));
	if (ret)
		return ret;
	if (memcmp(magic, GGUF_MAGIC, 4))
		return fail(p, -EINVAL, "bad magic %02x %02x %02x %02x, expected \"GGUF\"",
			    magic[0], magic[1], magic[2], magic[3]);
	ret = rd_u32(p, &v);
	if (ret)
		return ret;
	if (v != 2 && v != 3) {
		uint32_t swapped = __builtin_bswap32(v);

		if (swapped >= 1 && swapped <= 3)
			return fail(p, -EINVAL, "unsupported version 0x%08" PRIx32
				    ": a big-endian GGUF file", v);
		return fail(p, -EINVAL, "unsupported version %" PRIu32
			    " (this reader reads 2 and 3)", v);
	}
	p->f->version = v;
	ret = rd_u64(p, n_tensors);
	if (ret)
		return ret;
	ret = rd_u64(p, n_kv);
	if (ret)
		return ret;
	ret = check_count(p, "metadata kv count", *n_kv, GGUF_MAX_KV, MIN_KV, 0);
	if (ret)
		return ret;
	return check_count(p, "tensor count", *n_tensors, GGUF_MAX_TENSORS, MIN_TENSOR,
			   *n_kv * MIN_KV);
}

/*
 * The same open file again, with O_DIRECT (through /proc, so that it is
 * the file we checked, not whatever the path names now), or -1: no /proc,
 * or a file system that refuses O_DIRECT; then the page cache it is.
 */
static int open_direct(int fd)
{
	char path[40];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_DIRECT);
}

static int file_size(int fd, uint64_t *size)
{
	struct stat st;
	off_t end;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = st.st_size;
		return 0;
	}
	if (!S_ISBLK(st.st_mode))
		return -EINVAL;
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	*size = end;
	return 0;
}

int gguf_open(const char *path, struct gguf_file **out, char *err, size_t errlen)
{
	struct gguf_file *f;
	struct parser *p;
	uint64_t n_tensors, n_kv;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	*out = NULL;
	f = calloc(1, sizeof(*f));
	p = malloc(sizeof(*p));
	if (!f || !p) {
		ret = -ENOMEM;
		if (err)
			snprintf(err, errlen, "out of memory");
		goto err_free;
	}
	memset(p, 0, sizeof(*p));
	p->dfd = -1;
	p->f = f;
	p->err = err;
	p->errlen = errlen;
	if (posix_memalign((void **)&p->buf, DIRECT_ALIGN, DIRECT_CHUNK)) {
		p->buf = NULL;
		ret = fail(p, -ENOMEM, "out of memory");
		goto err_free;
	}

	/* O_NONBLOCK: a FIFO must not hang us; it is refused below */
	f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (f->fd < 0) {
		ret = fail(p, -errno, "%s", strerror(errno));
		goto err_free;
	}
	ret = file_size(f->fd, &f->size);
	if (ret) {
		ret = fail(p, ret, "%s", ret == -EINVAL ? "not a regular file or block device"
							: strerror(-ret));
		goto err_close;
	}
	p->dfd = open_direct(f->fd);

	ret = rd_header(p, &n_tensors, &n_kv);
	if (ret)
		goto err_close;
	ret = rd_metadata(p, n_kv);
	if (ret)
		goto err_close;
	ret = get_alignment(p);
	if (ret)
		goto err_close;
	ret = rd_tensors(p, n_tensors);
	if (ret)
		goto err_close;

	if (p->dfd >= 0)
		close(p->dfd);
	free(p->buf);
	free(p);
	*out = f;
	return 0;

err_close:
	gguf_close(f);
	f = NULL;
err_free:
	if (p && p->dfd >= 0)
		close(p->dfd);
	if (p)
		free(p->buf);
	free(p);
	free(f);
	return ret;
}

void gguf_close(struct gguf_file *f)
{
	struct arena_chunk *c, *next;

	if (!f)
		return;
	for (c = f->arena; c; c = next) {
		next = c->next;
		free(c);
	}
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

/* ---- lookups ------------------------------------------------------------ */

uint32_t gguf_version(const struct gguf_file *f)
{
	return f->version;
}

uint32_t gguf_alignment(const struct gguf_file *f)
{
	return f->alignment;
}

uint64_t gguf_data_offset(const struct gguf_file *f)
{
	return f->data_offset;
}

uint64_t gguf_file_size(const struct gguf_file *f)
{
	return f->size;
}

int gguf_fd(const struct gguf_file *f)
{
	return f->fd;
}

size_t gguf_kv_count(const struct gguf_file *f)
{
	return f->n_kv;
}

const struct gguf_kv *gguf_kv(const struct gguf_file *f, size_t i)
{
	return i < f->n_kv ? &f->kv[i] : NULL;
}

static int cmp_key(const void *key, const void *elem)
{
	return strcmp(key, (*(struct gguf_kv * const *)elem)->key);
}

const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key)
{
	struct gguf_kv **kv = bsearch(key, f->kv_by_key, f->n_kv,
				      sizeof(*f->kv_by_key), cmp_key);

	return kv ? *kv : NULL;
}

static int find_typed(const struct gguf_file *f, const char *key, uint32_t type,
		      const struct gguf_kv **kv)
{
	*kv = gguf_find_kv(f, key);
	if (!*kv)
		return -ENOENT;
	return (*kv)->type == type ? 0 : -EINVAL;
}

int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *v)
{
	const struct gguf_kv *kv;
	int ret = find_typed(f, key, GGUF_TYPE_UINT32, &kv);

	if (!ret)
		*v = kv->v.u;
	return ret;
}

int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *v)
{
	const struct gguf_kv *kv;
	int ret = find_typed(f, key, GGUF_TYPE_UINT64, &kv);

	if (!ret)
		*v = kv->v.u;
	return ret;
}

int gguf_get_f32(const struct gguf_file *f, const char *key, float *v)
{
	const struct gguf_kv *kv;
	int ret = find_typed(f, key, GGUF_TYPE_FLOAT32, &kv);

	if (!ret)
		*v = kv->v.f;
	return ret;
}

int gguf_get_str(const struct gguf_file *f, const char *key, const char **v)
{
	const struct gguf_kv *kv;
	int ret = find_typed(f, key, GGUF_TYPE_STRING, &kv);

	if (!ret)
		*v = kv->v.str.s;
	return ret;
}

int gguf_get_array(const struct gguf_file *f, const char *key,
		   uint32_t elem_type, const void **elems, uint64_t *n)
{
	const struct gguf_kv *kv;
	int ret = find_typed(f, key, GGUF_TYPE_ARRAY, &kv);

	if (ret)
		return ret;
	if (kv->elem_type != elem_type)
		return -EINVAL;
	*elems = kv->v.arr;
	*n = kv->n;
	return 0;
}

size_t gguf_tensor_count(const struct gguf_file *f)
{
	return f->n_tensors;
}

const struct gguf_tensor *gguf_tensor(const struct gguf_file *f, size_t i)
{
	return i < f->n_tensors ? &f->tensors[i] : NULL;
}

static int cmp_name(const void *name, const void *elem)
{
	return strcmp(name, (*(struct gguf_tensor * const *)elem)->name);
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f,
					   const char *name)
{
	struct gguf_tensor **t = bsearch(name, f->tensor_by_name, f->n_tensors,
					 sizeof(*f->tensor_by_name), cmp_name);

	return t ? *t : NULL;
}

ssize_t gguf_read_data(const struct gguf_file *f, const struct gguf_tensor *t,
		       uint64_t off, void *buf, size_t len)
{
	int ret;

	if (off >= t->size)
		return 0;
	if (len > t->size - off)
		len = t->size - off;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	ret = pread_full(f->fd, buf, len, t->file_offset + off);
	return ret ? ret : (ssize_t)len;
}
