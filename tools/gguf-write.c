// SPDX-License-Identifier: GPL-2.0
/*
 * gguf-write.c - the GGUF writer and the llama test-model generator; see
 * gguf-write.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf-write.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf-write.c writes little-endian fields in place; port it to this host first"
#endif

#define GGUF_WRITE_VERSION	3
#define DATA_CHUNK		(1u << 20)	/* llama generator's buffer */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

struct gguf_writer {
	FILE *fp;
	char *err;
	size_t errlen;
	int ret;		/* first error; every later call returns it */
	uint32_t alignment;
	struct buf kv, ti;	/* serialized metadata and tensor infos */
	uint64_t n_kv;
	uint64_t n_tensors;
	uint64_t *sizes;	/* bytes of each tensor */
	char **names;
	uint64_t data_size;	/* next tensor's offset */
	bool data_begun;
	uint64_t cur;		/* tensor being written */
	uint64_t written;	/* bytes of it written */
};

static int werr(struct gguf_writer *w, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int werr(struct gguf_writer *w, int ret, const char *fmt, ...)
{
	va_list ap;

	if (!w->ret) {
		w->ret = ret;
		if (w->err && w->errlen) {
			va_start(ap, fmt);
			vsnprintf(w->err, w->errlen, fmt, ap);
			va_end(ap);
		}
	}
	return w->ret;
}

static int put(struct gguf_writer *w, struct buf *b, const void *p, size_t n)
{
	if (!n)
		return 0;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *np;

		while (cap - b->len < n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return werr(w, -ENOMEM, "out of memory");
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int put_u32(struct gguf_writer *w, struct buf *b, uint32_t v)
{
	return put(w, b, &v, sizeof(v));
}

static int put_u64(struct gguf_writer *w, struct buf *b, uint64_t v)
{
	return put(w, b, &v, sizeof(v));
}

static int put_str(struct gguf_writer *w, struct buf *b, const char *s)
{
	size_t len = strlen(s);

	return put_u64(w, b, len) ?: put(w, b, s, len);
}

/* bytes of one value of a scalar type; 0 for STRING and ARRAY */
static size_t scalar_size(uint32_t type)
{
	switch (type) {
	case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL:
		return 1;
	case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:
		return 2;
	case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32:
		return 4;
	case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64:
		return 8;
	}
	return 0;
}

static int put_value(struct gguf_writer *w, uint32_t type, const void *val)
{
	if (type == GGUF_TYPE_STRING)
		return put_str(w, &w->kv, *(const char * const *)val);
	return put(w, &w->kv, val, scalar_size(type));
}

static int begin_kv(struct gguf_writer *w, const char *key, uint32_t type)
{
	if (w->ret)
		return w->ret;
	if (w->data_begun || w->n_tensors)
		return werr(w, -EINVAL, "kv '%s': metadata must come before tensors", key);
	if (type >= GGUF_TYPE_COUNT)
		return werr(w, -EINVAL, "kv '%s': unknown value type %" PRIu32, key, type);
	w->n_kv++;
	return put_str(w, &w->kv, key) ?: put_u32(w, &w->kv, type);
}

int gguf_writer_add(struct gguf_writer *w, const char *key, uint32_t type,
		    const void *val)
{
	int ret;

	if (type == GGUF_TYPE_ARRAY)
		return werr(w, -EINVAL, "kv '%s': use gguf_writer_add_array()", key);
	ret = begin_kv(w, key, type);
	if (ret)
		return ret;
	if (!strcmp(key, "general.alignment")) {
		uint32_t a = type == GGUF_TYPE_UINT32 ? *(const uint32_t *)val : 0;

		if (!a || (a & (a - 1)))
			return werr(w, -EINVAL, "general.alignment must be a uint32 power of two");
		w->alignment = a;
	}
	return put_value(w, type, val);
}

int gguf_writer_add_array(struct gguf_writer *w, const char *key,
			  uint32_t elem_type, const void *elems, uint64_t n)
{
	int ret;

	if (elem_type == GGUF_TYPE_ARRAY)
		return werr(w, -EINVAL, "kv '%s': arrays of arrays are not supported", key);
	ret = begin_kv(w, key, GGUF_TYPE_ARRAY);
	if (!ret)
		ret = put_u32(w, &w->kv, elem_type) ?: put_u64(w, &w->kv, n);
	if (ret)
		return ret;
	if (elem_type != GGUF_TYPE_STRING)
		return put(w, &w->kv, elems, n * scalar_size(elem_type));
	for (uint64_t i = 0; i < n && !ret; i++)
		ret = put_str(w, &w->kv, ((const char * const *)elems)[i]);
	return ret;
}

static uint64_t align_up(uint64_t v, uint32_t a)
{
	return (v + a - 1) & ~(uint64_t)(a - 1);
}

int gguf_writer_add_tensor(struct gguf_writer *w, const char *name,
			   uint32_t type, uint32_t n_dims, const uint64_t *dims)
{
	uint64_t size, *sizes;
	char **names;
	int ret;

	if (w->ret)
		return w->ret;
	if (w->data_begun)
		return werr(w, -EINVAL, "tensor '%s': added after the data began", name);
	ret = gguf_tensor_bytes(type, n_dims, dims, NULL, &size);
	if (ret)
		return werr(w, -EINVAL, "tensor '%s': bad type or dimensions", name);
	sizes = realloc(w->sizes, (w->n_tensors + 1) * sizeof(*sizes));
	if (sizes)
		w->sizes = sizes;
	names = realloc(w->names, (w->n_tensors + 1) * sizeof(*names));
	if (names)
		w->names = names;
	if (!sizes || !names || !(names[w->n_tensors] = strdup(name)))
		return werr(w, -ENOMEM, "out of memory");
	sizes[w->n_tensors++] = size;

	ret = put_str(w, &w->ti, name) ?: put_u32(w, &w->ti, n_dims);
	for (uint32_t d = 0; d < n_dims && !ret; d++)
		ret = put_u64(w, &w->ti, dims[d]);
	ret = ret ?: put_u32(w, &w->ti, type) ?: put_u64(w, &w->ti, w->data_size);
	w->data_size = align_up(w->data_size + size, w->alignment);
	return ret;
}

static int wr(struct gguf_writer *w, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, w->fp) != n)
		return werr(w, -errno ?: -EIO, "write: %s", strerror(errno ?: EIO));
	return 0;
}

static int pad(struct gguf_writer *w, uint64_t pos)
{
	static const uint8_t zeros[256];
	uint64_t n = align_up(pos, w->alignment) - pos;
	int ret = 0;

	while (n && !ret) {
		size_t c = n < sizeof(zeros) ? n : sizeof(zeros);

		ret = wr(w, zeros, c);
		n -= c;
	}
	return ret;
}

int gguf_writer_begin_data(struct gguf_writer *w)
{
	uint32_t version = GGUF_WRITE_VERSION;

	if (w->ret)
		return w->ret;
	if (w->data_begun)
		return 0;
	w->data_begun = true;
	return wr(w, GGUF_MAGIC, 4) ?: wr(w, &version, 4) ?:
	       wr(w, &w->n_tensors, 8) ?: wr(w, &w->n_kv, 8) ?:
	       wr(w, w->kv.p, w->kv.len) ?: wr(w, w->ti.p, w->ti.len) ?:
	       pad(w, 24 + w->kv.len + w->ti.len);
}

int gguf_writer_write(struct gguf_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int ret;

	if (w->ret)
		return w->ret;
	if (!w->data_begun)
		return werr(w, -EINVAL, "data written before gguf_writer_begin_data()");
	while (len) {
		uint64_t n;

		if (w->cur == w->n_tensors)
			return werr(w, -EINVAL, "%zu bytes of data beyond the last tensor", len);
		n = w->sizes[w->cur] - w->written;
		if (n > len)
			n = len;
		ret = wr(w, p, n);
		if (ret)
			return ret;
		p += n;
		len -= n;
		w->written += n;
		if (w->written == w->sizes[w->cur]) {
			/* padding to the next tensor, as llama.cpp writes it */
			ret = pad(w, w->written);
			if (ret)
				return ret;
			w->cur++;
			w->written = 0;
		}
	}
	return 0;
}

int gguf_writer_open(const char *path, struct gguf_writer **out,
		     char *err, size_t errlen)
{
	struct gguf_writer *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->err = err;
	w->errlen = errlen;
	w->alignment = GGUF_DEFAULT_ALIGNMENT;
	w->fp = fopen(path, "wbe");
	if (!w->fp) {
		int ret = -errno;

		snprintf(err, errlen, "%s", strerror(errno));
		free(w);
		return ret;
	}
	/* big writes go straight through; the buffer gathers the small ones */
	setvbuf(w->fp, NULL, _IOFBF, 1 << 20);
	*out = w;
	return 0;
}

int gguf_writer_close(struct gguf_writer *w)
{
	int ret;

	if (!w)
		return 0;
	if (!w->data_begun)
		gguf_writer_begin_data(w);
	if (!w->ret && w->cur < w->n_tensors)
		werr(w, -EINVAL, "tensor %" PRIu64 " '%s': %" PRIu64 " of %" PRIu64
		     " bytes of data written", w->cur, w->names[w->cur], w->written,
		     w->sizes[w->cur]);
	if (fclose(w->fp) && !w->ret)
		werr(w, -errno, "close: %s", strerror(errno));
	ret = w->ret;
	for (uint64_t i = 0; i < w->n_tensors; i++)
		free(w->names[i]);
	free(w->names);
	free(w->sizes);
	free(w->kv.p);
	free(w->ti.p);
	free(w);
	return ret;
}

/* ---- the llama test model ----------------------------------------------- */

/* xorshift64*: fast, and the same seed gives the same file everywhere */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* an f16 of random sign and mantissa, exponent field in [emin, emin + 3] */
static uint16_t rnd_half(uint64_t *s, unsigned int emin, bool sign)
{
	uint64_t r = rnd(s);

	return (sign ? (r >> 20 & 1) << 15 : 0) | (emin + (r >> 16 & 3)) << 10 |
	       (r & 0x3ff);
}

static void rnd_bytes(uint64_t *s, uint8_t *p, size_t n)
{
	while (n) {
		uint64_t r = rnd(s);
		size_t c = n < 8 ? n : 8;

		memcpy(p, &r, c);
		p += c;
		n -= c;
	}
}

/*
 * @n bytes (whole blocks) of random weights of @type; @norm: values near
 * 1.0, as a trained RMS norm weight has.
 */
static void fill_weights(uint64_t *s, uint32_t type, bool norm, uint8_t *p, size_t n)
{
	const struct gguf_type_info *ti = gguf_type_info(type);
	size_t i;

	switch (type) {
	case GGUF_TENSOR_F32:
		for (i = 0; i + 4 <= n; i += 4) {
			float v = (int32_t)(rnd(s) >> 32) * (0.05f / 2147483648.0f);

			v += norm ? 1.0f : 0.0f;
			memcpy(p + i, &v, 4);
		}
		break;
	case GGUF_TENSOR_F16:
		for (i = 0; i + 2 <= n; i += 2) {
			uint16_t h = rnd_half(s, 8, true);	/* |v| in [2^-7, 2^-3) */

			memcpy(p + i, &h, 2);
		}
		break;
	case GGUF_TENSOR_Q8_0:
	case GGUF_TENSOR_Q4_0:
		/* block: f16 scale d, then the quants (int8 or nibbles) */
		for (i = 0; i + ti->type_size <= n; i += ti->type_size) {
			uint16_t d = rnd_half(s, 3, false);	/* [2^-12, 2^-8) */

			memcpy(p + i, &d, 2);
			rnd_bytes(s, p + i + 2, ti->type_size - 2);
		}
		break;
	}
}

struct llama_tensor {
	char name[GGUF_MAX_NAME_LEN + 1];
	uint32_t type;
	uint32_t n_dims;
	uint64_t dims[2];
};

static int llama_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int llama_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int gguf_llama_check(const struct gguf_llama_params *p, char *err, size_t errlen)
{
	const struct gguf_type_info *ti = gguf_type_info(p->type);

	if (p->type != GGUF_TENSOR_F32 && p->type != GGUF_TENSOR_F16 &&
	    p->type != GGUF_TENSOR_Q8_0 && p->type != GGUF_TENSOR_Q4_0)
		return llama_err(err, errlen, "type %s: only f32, f16, q8_0 and q4_0 are generated",
				 ti ? ti->name : "?");
	if (!p->layers || p->layers > 10000)
		return llama_err(err, errlen, "layers %" PRIu32 ": must be 1..10000", p->layers);
	if (!p->heads || !p->embd || p->embd % p->heads)
		return llama_err(err, errlen, "embd %" PRIu32 " is not a multiple of heads %" PRIu32,
				 p->embd, p->heads);
	if (!p->heads_kv || p->heads % p->heads_kv)
		return llama_err(err, errlen, "heads %" PRIu32 " is not a multiple of heads-kv %"
				 PRIu32, p->heads, p->heads_kv);
	if (p->embd % ti->block_size)
		return llama_err(err, errlen, "embd %" PRIu32 " is not a multiple of the %s block size %"
				 PRIu32, p->embd, ti->name, ti->block_size);
	if (!p->ff || p->ff % ti->block_size)
		return llama_err(err, errlen, "ff %" PRIu32 " is not a multiple of the %s block size %"
				 PRIu32, p->ff, ti->name, ti->block_size);
	if (p->vocab < 3)
		return llama_err(err, errlen, "vocab %" PRIu32 ": must be at least 3", p->vocab);
	if (!p->ctx)
		return llama_err(err, errlen, "context length must not be 0");
	return 0;
}

/* the tensors of the model, in the order llama.cpp's converter writes them */
static size_t llama_tensors(const struct gguf_llama_params *p, struct llama_tensor *t)
{
	uint32_t embd_kv = p->embd / p->heads * p->heads_kv;
	static const struct {
		const char *name;
		bool norm;
		int rows;	/* 0 embd, 1 embd_kv, 2 ff */
		int cols;	/* row length: 0 embd, 2 ff */
	} blk[] = {
		{ "attn_norm",	 true,	0, 0 },
		{ "attn_q",	 false,	0, 0 },
		{ "attn_k",	 false,	1, 0 },
		{ "attn_v",	 false,	1, 0 },
		{ "attn_output", false,	0, 0 },
		{ "ffn_norm",	 true,	0, 0 },
		{ "ffn_gate",	 false,	2, 0 },
		{ "ffn_up",	 false,	2, 0 },
		{ "ffn_down",	 false,	0, 2 },
	};
	const uint32_t len[] = { p->embd, embd_kv, p->ff };
	size_t n = 0;

#define ADD(nm, ty, nd, d0, d1) do {						\
	snprintf(t[n].name, sizeof(t[n].name), "%s", nm);			\
	t[n].type = ty; t[n].n_dims = nd;					\
	t[n].dims[0] = d0; t[n].dims[1] = d1; n++;				\
} while (0)
	ADD("token_embd.weight", p->type, 2, p->embd, p->vocab);
	for (uint32_t l = 0; l < p->layers; l++) {
		for (size_t i = 0; i < sizeof(blk) / sizeof(blk[0]); i++) {
			char name[GGUF_MAX_NAME_LEN + 1];

			snprintf(name, sizeof(name), "blk.%" PRIu32 ".%s.weight", l, blk[i].name);
			if (blk[i].norm)
				ADD(name, GGUF_TENSOR_F32, 1, p->embd, 1);
			else
				ADD(name, p->type, 2, len[blk[i].cols], len[blk[i].rows]);
		}
	}
	ADD("output_norm.weight", GGUF_TENSOR_F32, 1, p->embd, 1);
	ADD("output.weight", p->type, 2, p->embd, p->vocab);
#undef ADD
	return n;
}

#define LLAMA_TENSORS(p) (3 + 9 * (size_t)(p)->layers)

static uint32_t llama_file_type(uint32_t type)
{
	switch (type) {	/* llama.cpp's enum llama_ftype */
	case GGUF_TENSOR_F32:	return 0;	/* ALL_F32 */
	case GGUF_TENSOR_F16:	return 1;	/* MOSTLY_F16 */
	case GGUF_TENSOR_Q4_0:	return 2;	/* MOSTLY_Q4_0 */
	default:		return 7;	/* MOSTLY_Q8_0 */
	}
}

/* the SentencePiece-style vocabulary: <unk> <s> </s>, bytes, then words */
static int llama_vocab(struct gguf_writer *w, uint32_t vocab)
{
	const char **tokens = calloc(vocab, sizeof(*tokens));
	char *text = malloc((size_t)vocab * 16);
	float *scores = calloc(vocab, sizeof(*scores));
	int32_t *types = calloc(vocab, sizeof(*types));
	int ret;

	if (!tokens || !text || !scores || !types) {
		ret = werr(w, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < vocab; i++) {
		char *s = text + (size_t)i * 16;

		if (i < 3) {
			snprintf(s, 16, "%s", (const char *[]){ "<unk>", "<s>", "</s>" }[i]);
			types[i] = i ? 3 : 2;		/* CONTROL, UNKNOWN */
		} else if (i < 3 + 256) {
			snprintf(s, 16, "<0x%02X>", i - 3);
			types[i] = 6;			/* BYTE */
		} else {
			snprintf(s, 16, "\xe2\x96\x81t%" PRIu32, i);	/* "▁tN" */
			types[i] = 1;			/* NORMAL */
			scores[i] = -(float)i;
		}
		tokens[i] = s;
	}
	ret = gguf_writer_add(w, "tokenizer.ggml.model", GGUF_TYPE_STRING, &(const char *){ "llama" }) ?:
	      gguf_writer_add_array(w, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, tokens, vocab) ?:
	      gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, vocab) ?:
	      gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, vocab) ?:
	      gguf_writer_add(w, "tokenizer.ggml.bos_token_id", GGUF_TYPE_UINT32, &(uint32_t){ 1 }) ?:
	      gguf_writer_add(w, "tokenizer.ggml.eos_token_id", GGUF_TYPE_UINT32, &(uint32_t){ 2 }) ?:
	      gguf_writer_add(w, "tokenizer.ggml.unknown_token_id", GGUF_TYPE_UINT32, &(uint32_t){ 0 });
out:
	free(tokens);
	free(text);
	free(scores);
	free(types);
	return ret;
}

static int llama_metadata(struct gguf_writer *w, const struct gguf_llama_params *p)
{
#define U32(key, v) gguf_writer_add(w, key, GGUF_TYPE_UINT32, &(uint32_t){ v })
	return gguf_writer_add(w, "general.architecture", GGUF_TYPE_STRING, &(const char *){ "llama" }) ?:
	       gguf_writer_add(w, "general.name", GGUF_TYPE_STRING, &p->name) ?:
	       U32("general.alignment", GGUF_DEFAULT_ALIGNMENT) ?:
	       U32("llama.context_length", p->ctx) ?:
	       U32("llama.embedding_length", p->embd) ?:
	       U32("llama.block_count", p->layers) ?:
	       U32("llama.feed_forward_length", p->ff) ?:
	       U32("llama.rope.dimension_count", p->embd / p->heads) ?:
	       U32("llama.attention.head_count", p->heads) ?:
	       U32("llama.attention.head_count_kv", p->heads_kv) ?:
	       gguf_writer_add(w, "llama.attention.layer_norm_rms_epsilon", GGUF_TYPE_FLOAT32,
			       &(float){ 1e-5f }) ?:
	       U32("general.file_type", llama_file_type(p->type)) ?:
	       U32("general.quantization_version", 2) ?:
	       llama_vocab(w, p->vocab);
#undef U32
}

static int llama_data(struct gguf_writer *w, const struct gguf_llama_params *p,
		      const struct llama_tensor *t, size_t n)
{
	uint8_t *buf = malloc(DATA_CHUNK);
	uint64_t seed = p->seed ? p->seed : 0x9e3779b97f4a7c15ull;	/* never 0 */
	int ret = 0;

	if (!buf)
		return werr(w, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n && !ret; i++) {
		const struct gguf_type_info *ti = gguf_type_info(t[i].type);
		uint64_t left;
		size_t chunk = DATA_CHUNK / ti->type_size * ti->type_size;

		gguf_tensor_bytes(t[i].type, t[i].n_dims, t[i].dims, NULL, &left);
		while (left && !ret) {
			size_t c = left < chunk ? left : chunk;

			fill_weights(&seed, t[i].type, t[i].n_dims == 1, buf, c);
			ret = gguf_writer_write(w, buf, c);
			left -= c;
		}
	}
	free(buf);
	return ret;
}

int gguf_llama_write(const char *path, const struct gguf_llama_params *p,
		     char *err, size_t errlen)
{
	struct llama_tensor *t;
	struct gguf_writer *w;
	size_t n;
	int ret;

	ret = gguf_llama_check(p, err, errlen);
	if (ret)
		return ret;
	t = calloc(LLAMA_TENSORS(p), sizeof(*t));
	if (!t)
		return llama_err(err, errlen, "out of memory"), -ENOMEM;
	n = llama_tensors(p, t);
	ret = gguf_writer_open(path, &w, err, errlen);
	if (ret)
		goto out;
	ret = llama_metadata(w, p);
	for (size_t i = 0; i < n && !ret; i++)
		ret = gguf_writer_add_tensor(w, t[i].name, t[i].type, t[i].n_dims, t[i].dims);
	ret = ret ?: gguf_writer_begin_data(w) ?: llama_data(w, p, t, n);
	ret = gguf_writer_close(w) ?: ret;
out:
	free(t);
	return ret;
}
