// SPDX-License-Identifier: GPL-2.0
/*
 * shard.c - the shard planner; what it plans and the JSON it prints are
 * described in shard.h.
 *
 * shard_plan_build() goes in four steps, each failing with its own
 * message: the options alone (counts, cards), the model's metadata and
 * how tp and pp fit it, every tensor the model must have (shape, and for
 * column splits the block boundaries), and then the layout of each card
 * and the capacity check. The tensor walk runs once to validate (and to
 * find tensors the plan would leave behind) and once per card to lay
 * pieces out; both look tensors up by name, so nothing is sized by what
 * the metadata claims before the file has shown it holds those tensors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "llmctl-print.h"
#include "shard.h"

/* the architectures with llama's tensor names, shapes and block structure */
static const char *const archs[] = { "llama" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* symbolic dimensions of the expected shapes */
enum dim {
	D_1,		/* absent: 1 */
	D_EMBD,		/* embedding_length */
	D_Q,		/* head_count * key_length */
	D_K,		/* head_count_kv * key_length */
	D_V,		/* head_count_kv * value_length */
	D_O,		/* head_count * value_length */
	D_FF,		/* feed_forward_length */
	D_VOCAB,	/* rows of token_embd */
	D_ROPE,		/* rope.dimension_count / 2 */
	D_COUNT
};

/**
 * struct role_desc - one tensor role
 * @name:  role name, and the tensor name's stem ("blk.N.<name>.weight"
 *         for roles in a block, "<name>.weight" otherwise)
 * @ne0:   expected row length, enum dim
 * @ne1:   expected rows, enum dim (D_1 for a vector)
 * @split: how tensor parallelism cuts it
 * @block: in each block
 */
struct role_desc {
	const char *name;
	uint8_t ne0, ne1;
	enum shard_kind split;
	bool block;
};

static const struct role_desc roles[SHARD_ROLE_COUNT] = {
	[SHARD_ROLE_TOKEN_EMBD]	 = { "token_embd",  D_EMBD, D_VOCAB, SHARD_WHOLE, false },
	[SHARD_ROLE_ATTN_NORM]	 = { "attn_norm",   D_EMBD, D_1,     SHARD_WHOLE, true },
	[SHARD_ROLE_ATTN_Q]	 = { "attn_q",	    D_EMBD, D_Q,     SHARD_ROWS,  true },
	[SHARD_ROLE_ATTN_K]	 = { "attn_k",	    D_EMBD, D_K,     SHARD_ROWS,  true },
	[SHARD_ROLE_ATTN_V]	 = { "attn_v",	    D_EMBD, D_V,     SHARD_ROWS,  true },
	[SHARD_ROLE_ATTN_OUTPUT] = { "attn_output", D_O,    D_EMBD,  SHARD_COLS,  true },
	[SHARD_ROLE_FFN_NORM]	 = { "ffn_norm",    D_EMBD, D_1,     SHARD_WHOLE, true },
	[SHARD_ROLE_FFN_GATE]	 = { "ffn_gate",    D_EMBD, D_FF,    SHARD_ROWS,  true },
	[SHARD_ROLE_FFN_UP]	 = { "ffn_up",	    D_EMBD, D_FF,    SHARD_ROWS,  true },
	[SHARD_ROLE_FFN_DOWN]	 = { "ffn_down",    D_FF,   D_EMBD,  SHARD_COLS,  true },
	[SHARD_ROLE_OUTPUT_NORM] = { "output_norm", D_EMBD, D_1,     SHARD_WHOLE, false },
	[SHARD_ROLE_OUTPUT]	 = { "output",	    D_EMBD, D_VOCAB, SHARD_ROWS,  false },
	[SHARD_ROLE_ROPE_FREQS]	 = { "rope_freqs",  D_ROPE, D_1,     SHARD_WHOLE, false },
};

/**
 * struct builder - state of one shard_plan_build()
 * @g:       the model
 * @p:       the plan being built
 * @err:     the caller's message buffer, or NULL
 * @errlen:  its size
 * @dim:     values of enum dim
 * @used:    per tensor of @g: the plan places it
 * @has_rope_freqs: rope_freqs.weight is present
 */
struct builder {
	const struct gguf_file *g;
	struct shard_plan *p;
	char *err;
	size_t errlen;
	uint64_t dim[D_COUNT];
	bool *used;
	bool has_rope_freqs;
};

static int fail(struct builder *b, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct builder *b, int ret, const char *fmt, ...)
{
	va_list ap;

	if (b->err && b->errlen) {
		va_start(ap, fmt);
		vsnprintf(b->err, b->errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* @s (@len bytes) for a one-line message: at most 64 bytes, non-printables as '?' */
static const char *printable(char *buf, size_t size, const char *s, size_t len)
{
	size_t i, n = len < 64 ? len : 64;

	if (n > size - 1)
		n = size - 1;
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		buf[i] = c < 0x20 || c == 0x7f ? '?' : c;
	}
	buf[i] = '\0';
	return buf;
}

const char *shard_kind_name(enum shard_kind kind)
{
	switch (kind) {
	case SHARD_WHOLE:	return "whole";
	case SHARD_ROWS:	return "rows";
	case SHARD_COLS:	return "cols";
	}
	return "?";
}

const char *shard_role_name(enum shard_role role)
{
	return (unsigned int)role < SHARD_ROLE_COUNT ? roles[role].name : "?";
}

const char *shard_human_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	unsigned int i = 0;

	while (d >= 1024 && i < N(unit) - 1) {
		d /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, unit[i]);
	return buf;
}

/* ---- metadata ----------------------------------------------------------- */

/*
 * <arch>.<key> as a uint32 >= 1, of any integer type (converters differ);
 * @def: the value if the key is absent, or 0 if it is required
 */
static int get_dim(struct builder *b, const char *key, uint32_t def, uint32_t *v)
{
	char full[128];
	const struct gguf_kv *kv;
	uint64_t u;

	snprintf(full, sizeof(full), "%s.%s", b->p->model.arch, key);
	kv = gguf_find_kv(b->g, full);
	if (!kv) {
		if (!def)
			return fail(b, -EINVAL, "missing metadata key %s", full);
		*v = def;
		return 0;
	}
	switch (kv->type) {
	case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32:
	case GGUF_TYPE_UINT64:
		u = kv->v.u;
		break;
	case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32:
	case GGUF_TYPE_INT64:
		if (kv->v.i < 0)
			return fail(b, -EINVAL, "%s is %" PRId64 ", must be at least 1",
				    full, kv->v.i);
		u = kv->v.i;
		break;
	case GGUF_TYPE_ARRAY:
		return fail(b, -EINVAL, "%s is an array: per-layer values are not supported",
			    full);
	default:
		return fail(b, -EINVAL, "%s has type %s, expected an integer", full,
			    gguf_value_type_name(kv->type));
	}
	if (u < 1 || u > UINT32_MAX)
		return fail(b, -EINVAL, "%s is %" PRIu64 ", must be 1..%" PRIu32, full, u,
			    UINT32_MAX);
	*v = u;
	return 0;
}

static int read_model(struct builder *b)
{
	struct shard_model *m = &b->p->model;
	const struct gguf_kv *kv;
	char buf[80], key[64], vkey[64];
	uint32_t rope;
	size_t i;
	int ret;

	kv = gguf_find_kv(b->g, "general.architecture");
	if (!kv)
		return fail(b, -EINVAL, "missing metadata key general.architecture");
	if (kv->type != GGUF_TYPE_STRING)
		return fail(b, -EINVAL, "general.architecture has type %s, expected string",
			    gguf_value_type_name(kv->type));
	for (i = 0; i < N(archs); i++)
		if (kv->v.str.len == strlen(archs[i]) && !strcmp(kv->v.str.s, archs[i]))
			break;
	if (i == N(archs))
		return fail(b, -EINVAL, "architecture '%s' is not supported (only llama)",
			    printable(buf, sizeof(buf), kv->v.str.s, kv->v.str.len));
	m->arch = strdup(archs[i]);
	kv = gguf_find_kv(b->g, "general.name");	/* up to a NUL in it */
	if (!m->arch || (kv && kv->type == GGUF_TYPE_STRING &&
			 !(m->name = strndup(kv->v.str.s, kv->v.str.len))))
		return fail(b, -ENOMEM, "out of memory");

	ret = get_dim(b, "block_count", 0, &m->n_layer) ?:
	      get_dim(b, "embedding_length", 0, &m->n_embd) ?:
	      get_dim(b, "feed_forward_length", 0, &m->n_ff) ?:
	      get_dim(b, "attention.head_count", 0, &m->n_head) ?:
	      get_dim(b, "attention.head_count_kv", m->n_head, &m->n_head_kv);
	if (ret)
		return ret;
	if (m->n_head % m->n_head_kv)
		return fail(b, -EINVAL, "%s.attention.head_count %" PRIu32 " is not a multiple of "
			    "%s.attention.head_count_kv %" PRIu32, m->arch, m->n_head, m->arch,
			    m->n_head_kv);
	/* as llama.cpp: both head dimensions default to embd / heads */
	snprintf(key, sizeof(key), "%s.attention.key_length", m->arch);
	snprintf(vkey, sizeof(vkey), "%s.attention.value_length", m->arch);
	if ((!gguf_find_kv(b->g, key) || !gguf_find_kv(b->g, vkey)) && m->n_embd % m->n_head)
		return fail(b, -EINVAL, "%s.embedding_length %" PRIu32 " is not a multiple of "
			    "%s.attention.head_count %" PRIu32, m->arch, m->n_embd, m->arch,
			    m->n_head);
	ret = get_dim(b, "attention.key_length", m->n_embd / m->n_head ?: 1, &m->key_length) ?:
	      get_dim(b, "attention.value_length", m->n_embd / m->n_head ?: 1, &m->value_length) ?:
	      get_dim(b, "rope.dimension_count", m->key_length, &rope);
	if (ret)
		return ret;

	b->dim[D_1] = 1;
	b->dim[D_EMBD] = m->n_embd;
	b->dim[D_Q] = (uint64_t)m->n_head * m->key_length;
	b->dim[D_K] = (uint64_t)m->n_head_kv * m->key_length;
	b->dim[D_V] = (uint64_t)m->n_head_kv * m->value_length;
	b->dim[D_O] = (uint64_t)m->n_head * m->value_length;
	b->dim[D_FF] = m->n_ff;
	b->dim[D_ROPE] = rope / 2;
	for (i = 0; i < gguf_tensor_count(b->g); i++)
		m->tensor_bytes += gguf_tensor(b->g, i)->size;	/* each < 2^63, within the file */
	return 0;
}

/* ---- options ------------------------------------------------------------ */

static int check_opts(struct builder *b, const struct shard_opts *o)
{
	uint64_t n = (uint64_t)o->tp * o->pp;

	if (!o->tp)
		return fail(b, -EINVAL, "--tp 0: must be at least 1");
	if (!o->pp)
		return fail(b, -EINVAL, "--pp 0: must be at least 1");
	if (n > SHARD_MAX_CARDS)
		return fail(b, -EINVAL, "--tp %" PRIu32 " --pp %" PRIu32 " needs %" PRIu64
			    " cards, at most %u are supported", o->tp, o->pp, n, SHARD_MAX_CARDS);
	if (o->align & (o->align - 1))
		return fail(b, -EINVAL, "alignment %" PRIu32 " is not a power of two", o->align);
	if (!o->cards)
		return 0;
	if (o->n_cards != n)
		return fail(b, -EINVAL, "--cards lists %zu card%s, --tp %" PRIu32 " --pp %" PRIu32
			    " needs %" PRIu64, o->n_cards, o->n_cards == 1 ? "" : "s",
			    o->tp, o->pp, n);
	/* n <= 4096: quadratic is fine, and says which card */
	for (size_t i = 1; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (o->cards[i] == o->cards[j])
				return fail(b, -EINVAL, "card %" PRIu32 " is listed twice in --cards",
					    o->cards[i]);
	return 0;
}

/* tp and pp against the model */
static int check_fit(struct builder *b)
{
	const struct shard_model *m = &b->p->model;
	uint32_t tp = b->p->tp;
	const struct { const char *key; uint32_t v; } div[] = {
		{ "attention.head_count", m->n_head },
		{ "attention.head_count_kv", m->n_head_kv },
		{ "feed_forward_length", m->n_ff },
	};

	if (b->p->pp > m->n_layer)
		return fail(b, -EINVAL, "--pp %" PRIu32 " exceeds %s.block_count %" PRIu32
			    " (a stage needs at least one layer)", b->p->pp, m->arch, m->n_layer);
	for (size_t i = 0; i < N(div); i++)
		if (div[i].v % tp)
			return fail(b, -EINVAL, "--tp %" PRIu32 " does not divide %s.%s %" PRIu32,
				    tp, m->arch, div[i].key, div[i].v);
	return 0;
}

/* ---- tensors ------------------------------------------------------------ */

/* gguf_tensor(g, i) is &array[i] and gguf_find_tensor() returns an element */
static size_t tensor_index(const struct gguf_file *g, const struct gguf_tensor *t)
{
	return t - gguf_tensor(g, 0);
}

static void tensor_name(char *buf, size_t size, enum shard_role role, uint32_t layer)
{
	if (roles[role].block)
		snprintf(buf, size, "blk.%" PRIu32 ".%s.weight", layer, roles[role].name);
	else
		snprintf(buf, size, "%s.weight", roles[role].name);
}

static void fmt_shape(char *buf, size_t size, uint32_t n_dims, const uint64_t *d)
{
	size_t off = 0;

	off += snprintf(buf, size, "[");
	for (uint32_t i = 0; i < n_dims && off < size; i++)
		off += snprintf(buf + off, size - off, "%s%" PRIu64, i ? ", " : "", d[i]);
	if (off < size)
		snprintf(buf + off, size - off, "]");
}

/*
 * The tensor of @role (in block @layer): present, shaped as the metadata
 * says, and, when tensor parallelism cuts its columns, cut on block
 * boundaries. Marks it used. @name: the name to look for.
 */
static int check_tensor(struct builder *b, enum shard_role role, const char *name,
			size_t *index)
{
	const struct role_desc *r = &roles[role];
	const struct gguf_tensor *t = gguf_find_tensor(b->g, name);
	const struct gguf_type_info *ti;
	uint64_t want[GGUF_MAX_DIMS] = { b->dim[r->ne0], b->dim[r->ne1], 1, 1 };
	uint32_t tp = b->p->tp;

	if (!t)
		return fail(b, -EINVAL, "missing tensor '%s'", name);
	/* trailing dimensions of 1 are the same shape, as in ggml */
	if (memcmp(t->dims, want, sizeof(want))) {
		char have[128], exp[128];

		fmt_shape(have, sizeof(have), t->n_dims, t->dims);
		fmt_shape(exp, sizeof(exp), r->ne1 == D_1 ? 1 : 2, want);
		return fail(b, -EINVAL, "tensor '%s' has shape %s, expected %s", name, have, exp);
	}
	ti = gguf_type_info(t->type);
	if (r->split == SHARD_COLS && tp > 1 && t->dims[0] / tp % ti->block_size)
		return fail(b, -EINVAL, "tensor '%s': --tp %" PRIu32 " cuts its %" PRIu64
			    " columns into slices of %" PRIu64 ", not a multiple of the %s block"
			    " size %" PRIu32, name, tp, t->dims[0], t->dims[0] / tp, ti->name,
			    ti->block_size);
	*index = tensor_index(b->g, t);
	b->used[*index] = true;
	return 0;
}

static int check_tensors(struct builder *b)
{
	struct shard_model *m = &b->p->model;
	const struct gguf_tensor *t;
	char name[GGUF_MAX_NAME_LEN + 1], buf[80];
	size_t idx, n = gguf_tensor_count(b->g);
	int ret;

	b->used = calloc(n ? n : 1, sizeof(*b->used));
	if (!b->used)
		return fail(b, -ENOMEM, "out of memory");

	/* the vocabulary size comes from token_embd itself */
	t = gguf_find_tensor(b->g, "token_embd.weight");
	if (!t)
		return fail(b, -EINVAL, "missing tensor 'token_embd.weight'");
	b->dim[D_VOCAB] = m->n_vocab = t->dims[1];
	ret = check_tensor(b, SHARD_ROLE_TOKEN_EMBD, "token_embd.weight", &idx);
	if (ret)
		return ret;
	if (m->n_vocab < b->p->tp)
		return fail(b, -EINVAL, "--tp %" PRIu32 " exceeds the vocabulary size %" PRIu64
			    " (each rank needs a slice of output.weight)", b->p->tp, m->n_vocab);

	for (uint32_t l = 0; l < m->n_layer; l++) {
		for (int r = SHARD_ROLE_ATTN_NORM; r <= SHARD_ROLE_FFN_DOWN; r++) {
			tensor_name(name, sizeof(name), r, l);
			ret = check_tensor(b, r, name, &idx);
			if (ret)
				return ret;
		}
	}
	ret = check_tensor(b, SHARD_ROLE_OUTPUT_NORM, "output_norm.weight", &idx);
	if (ret)
		return ret;
	m->tied = !gguf_find_tensor(b->g, "output.weight");
	ret = check_tensor(b, SHARD_ROLE_OUTPUT, m->tied ? "token_embd.weight" : "output.weight",
			   &idx);
	if (ret)
		return ret;
	b->has_rope_freqs = gguf_find_tensor(b->g, "rope_freqs.weight");
	if (b->has_rope_freqs) {
		ret = check_tensor(b, SHARD_ROLE_ROPE_FREQS, "rope_freqs.weight", &idx);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < n; i++) {
		if (b->used[i])
			continue;
		t = gguf_tensor(b->g, i);
		return fail(b, -EINVAL, "unexpected tensor '%s': not part of a %s model",
			    printable(buf, sizeof(buf), t->name, strlen(t->name)), m->arch);
	}
	return 0;
}

/* ---- layout ------------------------------------------------------------- */

/* part @i of @parts of @n, the first (n % parts) parts one larger */
static void split(uint64_t n, uint64_t parts, uint64_t i, uint64_t *first, uint64_t *count)
{
	uint64_t base = n / parts, extra = n % parts;

	*count = base + (i < extra);
	*first = i * base + (i < extra ? i : extra);
}

static int add_piece(struct builder *b, struct shard_card *c, size_t *cap,
		     enum shard_role role, int32_t layer, const char *name)
{
	const struct gguf_tensor *t = gguf_find_tensor(b->g, name);	/* checked */
	const struct gguf_type_info *ti = gguf_type_info(t->type);
	uint64_t row_bytes = t->dims[0] / ti->block_size * ti->type_size;
	uint64_t rows = t->dims[1] * t->dims[2] * t->dims[3];
	enum shard_kind kind = c->tp_size > 1 ? roles[role].split : SHARD_WHOLE;
	struct shard_piece *pc;
	uint64_t dst, end;

	if (c->n_pieces == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct shard_piece *np = reallocarray(c->pieces, ncap, sizeof(*np));

		if (!np)
			return fail(b, -ENOMEM, "out of memory");
		c->pieces = np;
		*cap = ncap;
	}
	pc = &c->pieces[c->n_pieces];
	memset(pc, 0, sizeof(*pc));
	pc->tensor = tensor_index(b->g, t);
	snprintf(pc->name, sizeof(pc->name), "%s", t->name);
	pc->role = role;
	pc->layer = layer;
	pc->type = t->type;
	pc->kind = kind;
	switch (kind) {
	case SHARD_WHOLE:
		pc->first = 0;
		pc->count = rows;
		pc->ne[0] = t->dims[0];
		pc->ne[1] = rows;
		pc->src_offset = t->file_offset;
		pc->src_len = t->size;
		pc->src_count = 1;
		break;
	case SHARD_ROWS:
		split(rows, c->tp_size, c->tp_rank, &pc->first, &pc->count);
		pc->ne[0] = t->dims[0];
		pc->ne[1] = pc->count;
		pc->src_offset = t->file_offset + pc->first * row_bytes;
		pc->src_len = pc->count * row_bytes;
		pc->src_count = 1;
		break;
	case SHARD_COLS:
		/* the columns divide evenly, in whole blocks: check_tensor() */
		pc->count = t->dims[0] / c->tp_size;
		pc->first = c->tp_rank * pc->count;
		pc->ne[0] = pc->count;
		pc->ne[1] = rows;
		pc->src_offset = t->file_offset + pc->first / ti->block_size * ti->type_size;
		pc->src_len = pc->count / ti->block_size * ti->type_size;
		pc->src_count = rows;
		break;
	}
	/* all within the tensor's data, which gguf_open() bounded by the file */
	pc->src_stride = kind == SHARD_COLS ? row_bytes : pc->src_len;
	pc->bytes = pc->src_len * pc->src_count;

	dst = c->bytes + (b->p->align - 1);
	if (dst < c->bytes || __builtin_add_overflow(dst & ~(uint64_t)(b->p->align - 1),
						     pc->bytes, &end))
		return fail(b, -EOVERFLOW, "card %" PRIu32 ": region size overflows", c->card);
	pc->dst_offset = dst & ~(uint64_t)(b->p->align - 1);
	c->bytes = end;
	c->data_bytes += pc->bytes;
	c->n_pieces++;
	return 0;
}

static int lay_out(struct builder *b, struct shard_card *c)
{
	const struct shard_model *m = &b->p->model;
	char name[GGUF_MAX_NAME_LEN + 1];
	size_t cap = 0;
	int ret = 0;

	if (b->has_rope_freqs)
		ret = add_piece(b, c, &cap, SHARD_ROLE_ROPE_FREQS, -1, "rope_freqs.weight");
	if (!ret && c->embeddings)
		ret = add_piece(b, c, &cap, SHARD_ROLE_TOKEN_EMBD, -1, "token_embd.weight");
	for (uint32_t l = c->layer_first; l <= c->layer_last && !ret; l++) {
		for (int r = SHARD_ROLE_ATTN_NORM; r <= SHARD_ROLE_FFN_DOWN && !ret; r++) {
			tensor_name(name, sizeof(name), r, l);
			ret = add_piece(b, c, &cap, r, l, name);
		}
	}
	if (!ret && c->head)
		ret = add_piece(b, c, &cap, SHARD_ROLE_OUTPUT_NORM, -1, "output_norm.weight") ?:
		      add_piece(b, c, &cap, SHARD_ROLE_OUTPUT, -1,
				m->tied ? "token_embd.weight" : "output.weight");
	if (ret)
		return ret;
	c->need = c->bytes + (SHARD_PAGE_SIZE - 1);
	if (c->need < c->bytes)
		return fail(b, -EOVERFLOW, "card %" PRIu32 ": region size overflows", c->card);
	c->need &= ~(uint64_t)(SHARD_PAGE_SIZE - 1);
	return 0;
}

static int build_cards(struct builder *b, const struct shard_opts *o)
{
	struct shard_plan *p = b->p;
	uint32_t n_layer = p->model.n_layer;

	p->n_cards = (size_t)p->tp * p->pp;
	p->cards = calloc(p->n_cards, sizeof(*p->cards));
	if (!p->cards)
		return fail(b, -ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_cards; i++) {
		struct shard_card *c = &p->cards[i];
		uint64_t first, count;
		int ret;

		c->card = o->cards ? o->cards[i] : i;
		c->stage = i / p->tp;
		c->tp_rank = i % p->tp;
		c->tp_size = p->tp;
		split(n_layer, p->pp, c->stage, &first, &count);	/* count >= 1 */
		c->layer_first = first;
		c->layer_last = first + count - 1;
		c->embeddings = c->stage == 0;
		c->head = c->stage == p->pp - 1;
		c->free = o->free ? o->free[i] : 0;
		ret = lay_out(b, c);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < p->n_cards; i++) {
		const struct shard_card *c = &p->cards[i];
		char need[16], avail[16];

		if (c->free && c->need > c->free)
			return fail(b, -ENOSPC, "card %" PRIu32 " (stage %" PRIu32 ", tp rank %" PRIu32
				    ") needs %s (%" PRIu64 " bytes) but has %s (%" PRIu64
				    " bytes) free", c->card, c->stage, c->tp_rank,
				    shard_human_bytes(c->need, need, sizeof(need)), c->need,
				    shard_human_bytes(c->free, avail, sizeof(avail)), c->free);
	}
	return 0;
}

int shard_plan_build(const struct gguf_file *g, const struct shard_opts *opts,
		     struct shard_plan **out, char *err, size_t errlen)
{
	struct builder b = { .g = g, .err = err, .errlen = errlen };
	int ret;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	ret = check_opts(&b, opts);
	if (ret)
		return ret;
	b.p = calloc(1, sizeof(*b.p));
	if (!b.p)
		return fail(&b, -ENOMEM, "out of memory");
	b.p->tp = opts->tp;
	b.p->pp = opts->pp;
	b.p->align = opts->align ? opts->align : SHARD_ALIGN;
	ret = read_model(&b) ?: check_fit(&b) ?: check_tensors(&b) ?: build_cards(&b, opts);
	free(b.used);
	if (ret) {
		shard_plan_free(b.p);
		return ret;
	}
	*out = b.p;
	return 0;
}

void shard_plan_free(struct shard_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_cards; i++)
		free(p->cards[i].pieces);
	free(p->cards);
	free(p->model.arch);
	free(p->model.name);
	free(p);
}

/* ---- card order --------------------------------------------------------- */

#define ORDER_BUDGET	1000000u

struct order {
	uint32_t tp, n, len;
	const bool *linked;
	uint32_t *cards;
	bool *used;
	unsigned long visits;
};

/* Fill position @i and the ones after it; true when all are filled. */
static bool order_fill(struct order *o, uint32_t i)
{
	if (i == o->len)
		return true;
	for (uint32_t c = 0; c < o->n; c++) {
		if (o->used[c] || ++o->visits > ORDER_BUDGET)
			continue;
		if (i >= o->tp && !o->linked[(size_t)o->cards[i - o->tp] * o->n + c])
			continue;
		o->cards[i] = c;
		o->used[c] = true;
		if (order_fill(o, i + 1))
			return true;
		o->used[c] = false;
	}
	return false;
}

int shard_order_cards(uint32_t tp, uint32_t pp, uint32_t n, const bool *linked,
		      uint32_t *cards)
{
	struct order o = { .tp = tp, .n = n, .linked = linked, .cards = cards };
	bool found;

	if (!tp || !pp || tp > SHARD_MAX_CARDS / pp || tp * pp > n)
		return -EINVAL;
	o.len = tp * pp;
	o.used = calloc(n, sizeof(*o.used));
	if (!o.used)
		return -ENOMEM;
	found = order_fill(&o, 0);
	free(o.used);
	return found ? 0 : -ENOENT;
}

/* ---- printing ----------------------------------------------------------- */

/* One piece: JSON always, a line of text with @verbose. */
static void print_piece(const struct shard_piece *pc, bool verbose)
{
	enum print_type t = verbose ? PRINT_ANY : PRINT_JSON;

	print_open_object(NULL);
	print_string(t, "tensor", "      %s", pc->name);
	print_u64(t, "index", " #%" PRIu64, pc->tensor);
	print_string(t, "role", " %s", shard_role_name(pc->role));
	if (pc->layer >= 0)
		print_int(t, "layer", " layer %d", pc->layer);
	else
		print_null(t, "layer", NULL, NULL);
	print_string(t, "type", " %s", gguf_type_info(pc->type)->name);
	print_string(t, "kind", " %s", shard_kind_name(pc->kind));
	print_u64(t, "first", " %" PRIu64, pc->first);
	print_u64(t, "count", "+%" PRIu64, pc->count);
	print_open_array("shape");
	print_u64(t, NULL, " [%" PRIu64, pc->ne[0]);
	print_u64(t, NULL, ", %" PRIu64 "]", pc->ne[1]);
	print_close_array();
	print_u64(t, "src_offset", "  <- file 0x%" PRIx64, pc->src_offset);
	print_u64(t, "src_len", " +%" PRIu64, pc->src_len);
	print_u64(t, "src_stride", " every %" PRIu64, pc->src_stride);
	print_u64(t, "src_count", " x %" PRIu64, pc->src_count);
	print_u64(t, "dst_offset", "  -> 0x%" PRIx64, pc->dst_offset);
	print_bytes(t, "bytes", " (%s)\n", pc->bytes);
	print_close_object();
}

static void print_card(const struct shard_card *c, bool verbose)
{
	print_open_object(NULL);
	print_uint(PRINT_ANY, "card", "%5u ", c->card);
	print_uint(PRINT_ANY, "stage", "%5u ", c->stage);
	print_uint(PRINT_ANY, "tp_rank", "%4u", c->tp_rank);
	print_uint(PRINT_ANY, "tp_size", "/%-3u ", c->tp_size);
	print_uint(PRINT_ANY, "layer_first", "%6u", c->layer_first);
	print_uint(PRINT_ANY, "layer_last", "-%-4u ", c->layer_last);
	print_bool(PRINT_ANY, "embeddings", "%-4s ", c->embeddings);
	print_bool(PRINT_ANY, "head", "%-4s ", c->head);
	print_bytes(PRINT_ANY, "bytes", "%10s ", c->bytes);
	print_bytes(PRINT_ANY, "need_bytes", "%10s ", c->need);
	if (c->free)
		print_bytes(PRINT_ANY, "free_bytes", "%10s ", c->free);
	else
		print_null(PRINT_ANY, "free_bytes", "%10s ", "-");
	print_bytes(PRINT_ANY, "data_bytes", "%10s ", c->data_bytes);
	print_text("%6zu\n", c->n_pieces);
	print_open_array("pieces");
	for (size_t j = 0; j < c->n_pieces; j++)
		print_piece(&c->pieces[j], verbose);
	print_close_array();
	print_close_object();
}

void shard_plan_print(const struct shard_plan *p, bool verbose)
{
	const struct shard_model *m = &p->model;
	uint64_t total = 0;
	char b[16];

	for (size_t i = 0; i < p->n_cards; i++)
		total += p->cards[i].need;
	print_start(SHARD_SCHEMA);
	print_open_object("model");
	print_string(PRINT_ANY, "architecture", "model %s", m->arch);
	if (m->name)
		print_string(PRINT_ANY, "name", " '%s'", m->name);
	else
		print_null(PRINT_ANY, "name", NULL, NULL);
	print_uint(PRINT_ANY, "block_count", ": %u layers", m->n_layer);
	print_uint(PRINT_ANY, "embedding_length", ", embd %u", m->n_embd);
	print_uint(PRINT_ANY, "feed_forward_length", ", ff %u", m->n_ff);
	print_uint(PRINT_ANY, "head_count", ", heads %u", m->n_head);
	print_uint(PRINT_ANY, "head_count_kv", "/%u kv", m->n_head_kv);
	print_uint(PRINT_ANY, "key_length", ", key/value length %u", m->key_length);
	print_uint(PRINT_ANY, "value_length", "/%u", m->value_length);
	print_u64(PRINT_ANY, "vocab_size", ", vocab %" PRIu64, m->n_vocab);
	print_bool(PRINT_JSON, "tied_embeddings", NULL, m->tied);
	print_text("%s", m->tied ? " (tied)" : "");
	print_bytes(PRINT_ANY, "tensor_bytes", ", %s of tensors\n", m->tensor_bytes);
	print_close_object();
	print_uint(PRINT_ANY, "tp", "plan: tp %u", p->tp);
	print_uint(PRINT_ANY, "pp", " x pp %u", p->pp);
	print_text(" on %zu cards, %s in all", p->n_cards, shard_human_bytes(total, b, sizeof(b)));
	print_uint(PRINT_ANY, "alignment", ", pieces aligned to %u bytes\n", p->align);
	print_text("%5s %5s %8s %8s    %-4s %-4s %10s %10s %10s %10s %6s\n", "card", "stage",
		   "rank/tp", "layers", "embd", "head", "bytes", "need", "free", "data",
		   "pieces");
	print_open_array("cards");
	for (size_t i = 0; i < p->n_cards; i++)
		print_card(&p->cards[i], verbose);
	print_close_array();
}
