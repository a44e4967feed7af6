// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the shard planner (tools/shard.c). Prints TAP; exit 0 if
 * every test passed.
 *
 * Good models come from gguf_llama_write(); models with one defect (a
 * missing tensor or key, a wrong shape, another architecture, ...) from
 * write_model() below, through the GGUF writer. Every plan that is built
 * is checked by simulating the copy (verify()): each card's region is
 * filled from the file through the pieces' source ranges, then every
 * tensor is reassembled from the regions of its stage's ranks and
 * compared byte for byte with the file, each byte of a split tensor
 * coming from exactly one rank.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf-write.h"
#include "json-check.h"
#include "shard.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[] = "/tmp/shard-test.XXXXXX";
static char errbuf[512];

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		return 1;						\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	uint64_t _a = (a), _b = (b);					\
	if (_a != _b) {							\
		printf("# %s:%d: %s = %" PRIu64 ", expected %s = %" PRIu64 "\n", \
		       __FILE__, __LINE__, #a, _a, #b, _b);		\
		return 1;						\
	}								\
} while (0)

static const char *tmp_path(const char *name)
{
	static char path[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", tmpdir, name);
	return path[i];
}

static uint8_t *read_file(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		close(fd);
		return NULL;
	}
	p = malloc(st.st_size ? st.st_size : 1);
	if (p && read(fd, p, st.st_size) != st.st_size) {
		free(p);
		p = NULL;
	}
	close(fd);
	*n = st.st_size;
	return p;
}

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* ---- models with defects ------------------------------------------------ */

/**
 * struct mspec - a llama-shaped model for write_model(), and its defect
 * @layers..@vocab: the tensors' shapes (and the metadata, unless @set says
 *              otherwise)
 * @type:       of the 2-D tensors (norms are f32)
 * @key_length: head dimension; 0: embd / heads, and no key_length key
 * @arch:       general.architecture; NULL: "llama"; "": not written
 * @name:       general.name; NULL: "shard-test"
 * @tied:       no output.weight
 * @rope_freqs: add rope_freqs.weight [key_length / 2]
 * @drop_key:   a metadata key left out
 * @str_key:    a metadata key written as a string
 * @arr_key:    a metadata key written as an array of uint32
 * @set:        uint32 metadata keys written with these values instead
 * @drop_tensor: a tensor left out
 * @extra_tensor: an f32 [4] tensor added at the end
 * @reshape:    a tensor written with @reshape_nd dimensions @reshape_dims
 */
struct mspec {
	uint32_t layers, embd, heads, heads_kv, ff, vocab;
	uint32_t type;
	uint32_t key_length;
	const char *arch, *name;
	bool tied, rope_freqs;
	const char *drop_key, *str_key, *arr_key;
	struct { const char *key; uint32_t v; } set[4];
	const char *drop_tensor, *extra_tensor, *reshape;
	uint32_t reshape_nd;
	uint64_t reshape_dims[2];
};

/* MSPEC_SMALL, then the fields a case changes: later initializers win */
#pragma GCC diagnostic ignored "-Woverride-init"
#define MSPEC_SMALL .layers = 3, .embd = 64, .heads = 4, .heads_kv = 2, .ff = 128, \
		    .vocab = 50, .type = GGUF_TENSOR_F32

struct mtensor {
	char name[GGUF_MAX_NAME_LEN + 1];
	uint32_t type, n_dims;
	uint64_t dims[2];
};

static int write_model(const char *path, const struct mspec *m)
{
	uint32_t hd = m->key_length ? m->key_length : m->embd / m->heads;
	const struct { const char *key; uint32_t v; bool opt; } u32s[] = {
		{ "llama.block_count", m->layers, false },
		{ "llama.context_length", 256, false },
		{ "llama.embedding_length", m->embd, false },
		{ "llama.feed_forward_length", m->ff, false },
		{ "llama.attention.head_count", m->heads, false },
		{ "llama.attention.head_count_kv", m->heads_kv, false },
		{ "llama.attention.key_length", hd, !m->key_length },
		{ "llama.attention.value_length", hd, !m->key_length },
		{ "llama.rope.dimension_count", hd, false },
	};
	struct mtensor *t = calloc(9 * (size_t)m->layers + 5, sizeof(*t));
	struct gguf_writer *w;
	size_t n = 0;
	int ret;

	if (!t)
		return -ENOMEM;
#define ADD(ty, nd, d0, d1, ...) do {						\
	snprintf(t[n].name, sizeof(t[n].name), __VA_ARGS__);			\
	t[n].type = ty; t[n].n_dims = nd; t[n].dims[0] = d0; t[n].dims[1] = d1;	\
	n++;									\
} while (0)
	ADD(m->type, 2, m->embd, m->vocab, "token_embd.weight");
	for (uint32_t l = 0; l < m->layers; l++) {
		ADD(GGUF_TENSOR_F32, 1, m->embd, 1, "blk.%u.attn_norm.weight", l);
		ADD(m->type, 2, m->embd, m->heads * hd, "blk.%u.attn_q.weight", l);
		ADD(m->type, 2, m->embd, m->heads_kv * hd, "blk.%u.attn_k.weight", l);
		ADD(m->type, 2, m->embd, m->heads_kv * hd, "blk.%u.attn_v.weight", l);
		ADD(m->type, 2, m->heads * hd, m->embd, "blk.%u.attn_output.weight", l);
		ADD(GGUF_TENSOR_F32, 1, m->embd, 1, "blk.%u.ffn_norm.weight", l);
		ADD(m->type, 2, m->embd, m->ff, "blk.%u.ffn_gate.weight", l);
		ADD(m->type, 2, m->embd, m->ff, "blk.%u.ffn_up.weight", l);
		ADD(m->type, 2, m->ff, m->embd, "blk.%u.ffn_down.weight", l);
	}
	ADD(GGUF_TENSOR_F32, 1, m->embd, 1, "output_norm.weight");
	if (!m->tied)
		ADD(m->type, 2, m->embd, m->vocab, "output.weight");
	if (m->rope_freqs)
		ADD(GGUF_TENSOR_F32, 1, hd / 2 ?: 1, 1, "rope_freqs.weight");
	if (m->extra_tensor)
		ADD(GGUF_TENSOR_F32, 1, 4, 1, "%s", m->extra_tensor);
#undef ADD

	ret = gguf_writer_open(path, &w, errbuf, sizeof(errbuf));
	if (ret) {
		free(t);
		return ret;
	}
	if (!m->arch || m->arch[0])
		gguf_writer_add(w, "general.architecture", GGUF_TYPE_STRING,
				&(const char *){ m->arch ? m->arch : "llama" });
	gguf_writer_add(w, "general.name", GGUF_TYPE_STRING,
			&(const char *){ m->name ? m->name : "shard-test" });
	for (size_t i = 0; i < N(u32s); i++) {
		uint32_t v = u32s[i].v;
		bool set = false;

		for (size_t j = 0; j < N(m->set); j++)
			if (m->set[j].key && !strcmp(m->set[j].key, u32s[i].key))
				v = m->set[j].v, set = true;
		if ((u32s[i].opt && !set) ||
		    (m->drop_key && !strcmp(m->drop_key, u32s[i].key)))
			continue;
		if (m->str_key && !strcmp(m->str_key, u32s[i].key))
			gguf_writer_add(w, u32s[i].key, GGUF_TYPE_STRING, &(const char *){ "8" });
		else if (m->arr_key && !strcmp(m->arr_key, u32s[i].key))
			gguf_writer_add_array(w, u32s[i].key, GGUF_TYPE_UINT32,
					      (uint32_t[]){ v, v, v }, 3);
		else
			gguf_writer_add(w, u32s[i].key, GGUF_TYPE_UINT32, &v);
	}
	for (size_t i = 0; i < n; i++) {
		if (m->drop_tensor && !strcmp(m->drop_tensor, t[i].name))
			continue;
		if (m->reshape && !strcmp(m->reshape, t[i].name))
			gguf_writer_add_tensor(w, t[i].name, t[i].type, m->reshape_nd,
					       m->reshape_dims);
		else
			gguf_writer_add_tensor(w, t[i].name, t[i].type, t[i].n_dims, t[i].dims);
	}
	gguf_writer_begin_data(w);
	for (size_t i = 0; i < n; i++) {
		uint64_t size;
		uint8_t buf[4096];

		if (m->drop_tensor && !strcmp(m->drop_tensor, t[i].name))
			continue;
		if (m->reshape && !strcmp(m->reshape, t[i].name))
			gguf_tensor_bytes(t[i].type, m->reshape_nd, m->reshape_dims, NULL, &size);
		else
			gguf_tensor_bytes(t[i].type, t[i].n_dims, t[i].dims, NULL, &size);
		while (size) {
			size_t c = size < sizeof(buf) ? size : sizeof(buf);

			for (size_t j = 0; j < c; j++)
				buf[j] = rnd();
			gguf_writer_write(w, buf, c);
			size -= c;
		}
	}
	free(t);
	ret = gguf_writer_close(w);
	if (ret)
		printf("# write_model: %s\n", errbuf);
	return ret;
}

/* ---- checking a plan ---------------------------------------------------- */

static enum shard_kind expect_kind(enum shard_role role, uint32_t tp)
{
	if (tp == 1)
		return SHARD_WHOLE;
	switch (role) {
	case SHARD_ROLE_ATTN_Q: case SHARD_ROLE_ATTN_K: case SHARD_ROLE_ATTN_V:
	case SHARD_ROLE_FFN_GATE: case SHARD_ROLE_FFN_UP: case SHARD_ROLE_OUTPUT:
		return SHARD_ROWS;
	case SHARD_ROLE_ATTN_OUTPUT: case SHARD_ROLE_FFN_DOWN:
		return SHARD_COLS;
	default:
		return SHARD_WHOLE;
	}
}

/* the name the piece's tensor must have */
static void expect_name(char *buf, size_t len, const struct shard_piece *pc, bool tied)
{
	static const char *const stem[SHARD_ROLE_COUNT] = {
		"token_embd", "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
		"ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "output_norm", "output",
		"rope_freqs",
	};

	if (pc->role == SHARD_ROLE_OUTPUT && tied)
		snprintf(buf, len, "token_embd.weight");
	else if (pc->layer >= 0)
		snprintf(buf, len, "blk.%d.%s.weight", pc->layer, stem[pc->role]);
	else
		snprintf(buf, len, "%s.weight", stem[pc->role]);
}

/* the pieces of one card: placement, source ranges; fills @region */
static int check_card(const struct gguf_file *g, const struct shard_plan *p,
		      const struct shard_card *c, const uint8_t *file, uint8_t *region)
{
	uint64_t end = 0, data = 0;
	char name[96];

	for (size_t j = 0; j < c->n_pieces; j++) {
		const struct shard_piece *pc = &c->pieces[j];
		const struct gguf_tensor *t = gguf_tensor(g, pc->tensor);

		CHECK(t && !strcmp(t->name, pc->name));
		expect_name(name, sizeof(name), pc, p->model.tied);
		if (strcmp(name, pc->name)) {
			printf("# card %u piece %zu: %s, role %s expects %s\n", c->card, j,
			       pc->name, shard_role_name(pc->role), name);
			return 1;
		}
		CHECK_EQ(pc->kind, expect_kind(pc->role, p->tp));
		CHECK_EQ(pc->type, t->type);
		if (pc->layer >= 0)
			CHECK((uint32_t)pc->layer >= c->layer_first &&
			      (uint32_t)pc->layer <= c->layer_last);
		CHECK_EQ(pc->dst_offset % p->align, 0);
		CHECK(pc->dst_offset >= end);
		CHECK_EQ(pc->dst_offset - end < p->align, 1);	/* no more than padding */
		CHECK_EQ(pc->bytes, pc->src_len * pc->src_count);
		CHECK(pc->src_count >= 1 && pc->src_len >= 1);
		if (pc->src_count == 1)
			CHECK_EQ(pc->src_stride, pc->src_len);
		CHECK(pc->src_offset >= t->file_offset);
		CHECK(pc->src_offset + (pc->src_count - 1) * pc->src_stride + pc->src_len <=
		      t->file_offset + t->size);
		for (uint64_t k = 0; k < pc->src_count; k++)
			memcpy(region + pc->dst_offset + k * pc->src_len,
			       file + pc->src_offset + k * pc->src_stride, pc->src_len);
		end = pc->dst_offset + pc->bytes;
		data += pc->bytes;
	}
	CHECK_EQ(c->bytes, end);
	CHECK_EQ(c->data_bytes, data);
	CHECK_EQ(c->need, (end + 4095) / 4096 * 4096);
	return 0;
}

/*
 * Piece @j, the same tensor and role on every rank of a stage: whole and
 * identical to the file, or its slices reassembled cover every byte of the
 * tensor exactly once and equal it.
 */
static int check_tensor_slices(const struct gguf_file *g, const struct shard_plan *p,
			       size_t first_card, size_t j, const uint8_t *file,
			       uint8_t *const *regions)
{
	const struct shard_piece *p0 = &p->cards[first_card].pieces[j];
	const struct gguf_tensor *t = gguf_tensor(g, p0->tensor);
	const struct gguf_type_info *ti = gguf_type_info(t->type);
	uint64_t row_bytes = t->dims[0] / ti->block_size * ti->type_size;
	uint64_t rows = t->dims[1] * t->dims[2] * t->dims[3];
	uint8_t *recon = calloc(1, t->size), *cover = calloc(1, t->size);
	int ret = 1;

	if (!recon || !cover)
		goto out;
	for (uint32_t r = 0; r < p->tp; r++) {
		const struct shard_card *c = &p->cards[first_card + r];
		const struct shard_piece *pc = &c->pieces[j];
		const uint8_t *src = regions[first_card + r] + pc->dst_offset;

		if (pc->tensor != p0->tensor || pc->role != p0->role || pc->kind != p0->kind) {
			printf("# card %u piece %zu: %s, rank 0 has %s\n", c->card, j, pc->name,
			       p0->name);
			goto out;
		}
		switch (pc->kind) {
		case SHARD_WHOLE:
			if (pc->bytes != t->size || memcmp(src, file + t->file_offset, t->size) ||
			    pc->first != 0 || pc->count != rows || pc->ne[0] != t->dims[0] ||
			    pc->ne[1] != rows) {
				printf("# card %u: %s is not the whole tensor\n", c->card, pc->name);
				goto out;
			}
			break;
		case SHARD_ROWS:
			if (pc->first + pc->count > rows || pc->ne[0] != t->dims[0] ||
			    pc->ne[1] != pc->count || pc->bytes != pc->count * row_bytes) {
				printf("# card %u: %s rows %" PRIu64 "+%" PRIu64 "\n", c->card,
				       pc->name, pc->first, pc->count);
				goto out;
			}
			for (uint64_t b = 0; b < pc->bytes; b++) {
				recon[pc->first * row_bytes + b] = src[b];
				cover[pc->first * row_bytes + b]++;
			}
			break;
		case SHARD_COLS: {
			uint64_t off = pc->first / ti->block_size * ti->type_size;
			uint64_t len = pc->count / ti->block_size * ti->type_size;

			if (pc->first + pc->count > t->dims[0] || pc->first % ti->block_size ||
			    pc->count % ti->block_size || pc->ne[0] != pc->count ||
			    pc->ne[1] != rows || pc->bytes != len * rows) {
				printf("# card %u: %s cols %" PRIu64 "+%" PRIu64 "\n", c->card,
				       pc->name, pc->first, pc->count);
				goto out;
			}
			for (uint64_t row = 0; row < rows; row++) {
				for (uint64_t b = 0; b < len; b++) {
					recon[row * row_bytes + off + b] = src[row * len + b];
					cover[row * row_bytes + off + b]++;
				}
			}
			break;
		}
		}
		/* the split of the layers' tensors is even, on head boundaries */
		if (pc->kind != SHARD_WHOLE && pc->role != SHARD_ROLE_OUTPUT &&
		    pc->count * p->tp != (pc->kind == SHARD_ROWS ? rows : t->dims[0])) {
			printf("# %s: uneven split\n", pc->name);
			goto out;
		}
		if (pc->role == SHARD_ROLE_ATTN_Q && pc->count % p->model.key_length) {
			printf("# %s: not on head boundaries\n", pc->name);
			goto out;
		}
	}
	if (p0->kind != SHARD_WHOLE) {
		for (uint64_t b = 0; b < t->size; b++) {
			if (cover[b] != 1) {
				printf("# %s: byte %" PRIu64 " placed %u times\n", t->name, b, cover[b]);
				goto out;
			}
		}
		if (memcmp(recon, file + t->file_offset, t->size)) {
			printf("# %s: reassembled slices differ from the file\n", t->name);
			goto out;
		}
	}
	ret = 0;
out:
	free(recon);
	free(cover);
	return ret;
}

/*
 * Everything about a plan of the model at @path: cards and their order,
 * layer split, placement of each tensor, and the bytes, by simulating the
 * copy. @cards: the card list given, or NULL.
 */
static int verify(const char *path, const struct gguf_file *g, const struct shard_plan *p,
		  const uint32_t *cards)
{
	size_t size, nt = gguf_tensor_count(g);
	uint8_t *file = read_file(path, &size);
	uint8_t **regions = calloc(p->n_cards, sizeof(*regions));
	bool *seen = calloc(nt, sizeof(*seen));
	uint32_t next_layer = 0;
	int ret = 1;

	if (!file || !regions || !seen)
		goto out;
	if (p->n_cards != (size_t)p->tp * p->pp)
		goto out;
	for (size_t i = 0; i < p->n_cards; i++) {
		const struct shard_card *c = &p->cards[i];
		uint32_t s = i / p->tp;
		size_t want = 9 * (size_t)(c->layer_last - c->layer_first + 1) +
			      (s == 0) + 2 * (s == p->pp - 1) +
			      !!gguf_find_tensor(g, "rope_freqs.weight");
		uint64_t base = p->model.n_layer / p->pp, extra = p->model.n_layer % p->pp;

		if (c->card != (cards ? cards[i] : i) || c->stage != s ||
		    c->tp_rank != i % p->tp || c->tp_size != p->tp ||
		    c->embeddings != (s == 0) || c->head != (s == p->pp - 1) ||
		    c->n_pieces != want) {
			printf("# card slot %zu: card %u stage %u rank %u, %zu pieces (want %zu)\n",
			       i, c->card, c->stage, c->tp_rank, c->n_pieces, want);
			goto out;
		}
		/* contiguous stages, the first ones one layer longer */
		if (c->tp_rank == 0) {
			if (c->layer_first != next_layer ||
			    c->layer_last - c->layer_first + 1 != base + (s < extra)) {
				printf("# stage %u: layers %u-%u\n", s, c->layer_first,
				       c->layer_last);
				goto out;
			}
			next_layer = c->layer_last + 1;
		} else if (c->layer_first != p->cards[i - 1].layer_first ||
			   c->layer_last != p->cards[i - 1].layer_last) {
			goto out;
		}
		regions[i] = calloc(1, c->bytes ? c->bytes : 1);
		if (!regions[i] || check_card(g, p, c, file, regions[i]))
			goto out;
		for (size_t j = 0; j < c->n_pieces; j++)
			seen[c->pieces[j].tensor] = true;
	}
	if (next_layer != p->model.n_layer)
		goto out;
	for (size_t i = 0; i < p->n_cards; i += p->tp)
		for (size_t j = 0; j < p->cards[i].n_pieces; j++)
			if (check_tensor_slices(g, p, i, j, file, regions))
				goto out;
	for (size_t i = 0; i < nt; i++) {
		if (!seen[i]) {
			printf("# tensor %s is on no card\n", gguf_tensor(g, i)->name);
			goto out;
		}
	}
	ret = 0;
out:
	if (ret)
		printf("# verify: the plan of %s is wrong\n", path);
	for (size_t i = 0; regions && i < p->n_cards; i++)
		free(regions[i]);
	free(regions);
	free(seen);
	free(file);
	return ret;
}

/* ---- tests -------------------------------------------------------------- */

static struct gguf_llama_params params(uint32_t type)
{
	struct gguf_llama_params p = GGUF_LLAMA_DEFAULTS;

	p.layers = 4;
	p.embd = 64;
	p.heads = 4;
	p.heads_kv = 2;
	p.ff = 128;
	p.vocab = 300;
	p.type = type;
	p.seed = 7;
	return p;
}

/* plan the model at @path; verify the plan if it is built */
static int plan(const char *path, const struct shard_opts *o, struct gguf_file **gp,
		struct shard_plan **pp)
{
	struct gguf_file *g;
	int ret;

	*pp = NULL;
	if (gguf_open(path, &g, errbuf, sizeof(errbuf))) {
		printf("# gguf_open: %s\n", errbuf);
		return -EIO;
	}
	ret = shard_plan_build(g, o, pp, errbuf, sizeof(errbuf));
	if (!ret && verify(path, g, *pp, o->cards)) {
		shard_plan_free(*pp);
		*pp = NULL;
		ret = -EIO;
	}
	if (gp)
		*gp = g;
	else
		gguf_close(g);
	return ret;
}

static int plan_llama(uint32_t type, uint32_t tp, uint32_t pp)
{
	struct gguf_llama_params lp = params(type);
	const char *path = tmp_path("llama.gguf");
	struct shard_opts o = { .tp = tp, .pp = pp };
	struct shard_plan *p;
	int ret;

	CHECK(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	ret = plan(path, &o, NULL, &p);
	if (ret)
		printf("# tp %u pp %u: %d %s\n", tp, pp, ret, errbuf);
	CHECK(!ret);
	shard_plan_free(p);
	return 0;
}

/* tp 1, pp 1: every tensor whole on card 0, back to back */
static int single_card(uint32_t type)
{
	struct gguf_llama_params lp = params(type);
	const char *path = tmp_path("llama.gguf");
	struct shard_opts o = { .tp = 1, .pp = 1 };
	struct shard_plan *p;
	struct gguf_file *g;
	uint64_t total = 0, aligned = 0;

	CHECK(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	CHECK(!plan(path, &o, &g, &p));
	for (size_t i = 0; i < gguf_tensor_count(g); i++) {
		total += gguf_tensor(g, i)->size;
		aligned = (aligned + 255) / 256 * 256 + gguf_tensor(g, i)->size;
	}
	CHECK_EQ(p->n_cards, 1);
	CHECK_EQ(p->cards[0].card, 0);
	CHECK_EQ(p->cards[0].layer_first, 0);
	CHECK_EQ(p->cards[0].layer_last, lp.layers - 1);
	CHECK(p->cards[0].embeddings && p->cards[0].head);
	CHECK_EQ(p->cards[0].n_pieces, gguf_tensor_count(g));
	CHECK_EQ(p->cards[0].data_bytes, total);
	CHECK_EQ(p->cards[0].bytes, aligned);
	CHECK_EQ(p->model.tensor_bytes, total);
	CHECK(!p->model.tied);
	CHECK_EQ(p->model.n_vocab, lp.vocab);
	CHECK_EQ(p->model.key_length, lp.embd / lp.heads);
	for (size_t j = 0; j < p->cards[0].n_pieces; j++)
		CHECK_EQ(p->cards[0].pieces[j].kind, SHARD_WHOLE);
	/* the region order: token_embd, the blocks, output_norm, output */
	CHECK(!strcmp(p->cards[0].pieces[0].name, "token_embd.weight"));
	CHECK(!strcmp(p->cards[0].pieces[1].name, "blk.0.attn_norm.weight"));
	CHECK(!strcmp(p->cards[0].pieces[p->cards[0].n_pieces - 1].name, "output.weight"));
	shard_plan_free(p);
	gguf_close(g);
	return 0;
}

static int test_single_f32(void)  { return single_card(GGUF_TENSOR_F32); }
static int test_single_f16(void)  { return single_card(GGUF_TENSOR_F16); }
static int test_single_q8_0(void) { return single_card(GGUF_TENSOR_Q8_0); }
static int test_single_q4_0(void) { return single_card(GGUF_TENSOR_Q4_0); }

static int test_tp2_pp2_f32(void)  { return plan_llama(GGUF_TENSOR_F32, 2, 2); }
static int test_tp2_pp2_f16(void)  { return plan_llama(GGUF_TENSOR_F16, 2, 2); }
static int test_tp2_pp2_q8_0(void) { return plan_llama(GGUF_TENSOR_Q8_0, 2, 2); }
static int test_tp2_pp2_q4_0(void) { return plan_llama(GGUF_TENSOR_Q4_0, 2, 2); }
static int test_tp2_pp1_q8_0(void) { return plan_llama(GGUF_TENSOR_Q8_0, 2, 1); }
static int test_tp1_pp4_f16(void)  { return plan_llama(GGUF_TENSOR_F16, 1, 4); }

/* the details of one tp 2 pp 2 plan, beyond what verify() checks */
static int test_tp2_pp2_placement(void)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_Q8_0);
	const char *path = tmp_path("llama.gguf");
	struct shard_opts o = { .tp = 2, .pp = 2 };
	const struct shard_piece *pc;
	struct shard_plan *p;

	CHECK(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	CHECK(!plan(path, &o, NULL, &p));
	CHECK_EQ(p->n_cards, 4);
	for (uint32_t i = 0; i < 4; i++) {
		const struct shard_card *c = &p->cards[i];

		CHECK_EQ(c->card, i);
		CHECK_EQ(c->stage, i / 2);
		CHECK_EQ(c->tp_rank, i % 2);
		CHECK_EQ(c->layer_first, i / 2 * 2);
		CHECK_EQ(c->layer_last, i / 2 * 2 + 1);
		CHECK_EQ(c->n_pieces, 18 + (i < 2 ? 1 : 2));
	}
	/* stage 0: token_embd whole on both ranks, first in the region */
	for (int r = 0; r < 2; r++) {
		pc = &p->cards[r].pieces[0];
		CHECK(!strcmp(pc->name, "token_embd.weight") && pc->kind == SHARD_WHOLE);
		CHECK_EQ(pc->dst_offset, 0);
	}
	/* rank 1's attn_q: heads 2..3 of 4 (16 rows each), one range */
	pc = &p->cards[1].pieces[2];
	CHECK(!strcmp(pc->name, "blk.0.attn_q.weight") && pc->kind == SHARD_ROWS);
	CHECK_EQ(pc->first, 32);
	CHECK_EQ(pc->count, 32);
	CHECK_EQ(pc->src_count, 1);
	CHECK_EQ(pc->bytes, 32 * (64 / 32 * 34));
	/* its attn_k: kv head 1 of 2 */
	pc = &p->cards[1].pieces[3];
	CHECK(!strcmp(pc->name, "blk.0.attn_k.weight"));
	CHECK_EQ(pc->first, 16);
	CHECK_EQ(pc->count, 16);
	/* its ffn_down: columns 64..127 of 128, one range of 2 blocks per row */
	pc = &p->cards[1].pieces[9];
	CHECK(!strcmp(pc->name, "blk.0.ffn_down.weight") && pc->kind == SHARD_COLS);
	CHECK_EQ(pc->first, 64);
	CHECK_EQ(pc->count, 64);
	CHECK_EQ(pc->src_count, 64);
	CHECK_EQ(pc->src_len, 2 * 34);
	CHECK_EQ(pc->src_stride, 4 * 34);
	CHECK_EQ(pc->ne[0], 64);
	CHECK_EQ(pc->ne[1], 64);
	/* last stage: output_norm whole, output's vocabulary halves */
	for (int r = 0; r < 2; r++) {
		const struct shard_card *c = &p->cards[2 + r];

		pc = &c->pieces[c->n_pieces - 2];
		CHECK(!strcmp(pc->name, "output_norm.weight") && pc->kind == SHARD_WHOLE);
		pc++;
		CHECK(!strcmp(pc->name, "output.weight") && pc->kind == SHARD_ROWS);
		CHECK_EQ(pc->first, 150 * r);
		CHECK_EQ(pc->count, 150);
		CHECK(!c->embeddings && c->head);
	}
	shard_plan_free(p);
	return 0;
}

/* 5 layers in 2 stages: 3 + 2; 7 in 3: 3 + 2 + 2; 4 in 4; ... */
static int test_uneven_layers(void)
{
	static const struct { uint32_t layers, pp, first[4]; } cases[] = {
		{ 5, 2, { 0, 3 } }, { 7, 3, { 0, 3, 5 } }, { 4, 4, { 0, 1, 2, 3 } },
		{ 9, 4, { 0, 3, 5, 7 } }, { 11, 4, { 0, 3, 6, 9 } },
	};
	const char *path = tmp_path("layers.gguf");

	for (size_t i = 0; i < N(cases); i++) {
		struct gguf_llama_params lp = params(GGUF_TENSOR_F16);
		struct shard_opts o = { .tp = 2, .pp = cases[i].pp };
		struct shard_plan *p;

		lp.layers = cases[i].layers;
		CHECK(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
		CHECK(!plan(path, &o, NULL, &p));
		for (uint32_t s = 0; s < cases[i].pp; s++) {
			uint32_t last = s + 1 < cases[i].pp ? cases[i].first[s + 1] - 1 :
				        cases[i].layers - 1;

			for (uint32_t r = 0; r < 2; r++) {
				CHECK_EQ(p->cards[s * 2 + r].layer_first, cases[i].first[s]);
				CHECK_EQ(p->cards[s * 2 + r].layer_last, last);
			}
		}
		shard_plan_free(p);
	}
	return 0;
}

/* vocab 302 over tp 4: 76, 76, 75, 75 rows of output.weight */
static int test_uneven_vocab(void)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_F16);
	const char *path = tmp_path("vocab.gguf");
	struct shard_opts o = { .tp = 4, .pp = 1 };
	struct shard_plan *p;

	lp.vocab = 302;
	lp.heads_kv = 4;
	CHECK(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	CHECK(!plan(path, &o, NULL, &p));
	for (uint32_t r = 0; r < 4; r++) {
		const struct shard_card *c = &p->cards[r];
		const struct shard_piece *pc = &c->pieces[c->n_pieces - 1];

		CHECK(pc->role == SHARD_ROLE_OUTPUT);
		CHECK_EQ(pc->first, r * 75 + (r < 2 ? r : 2));
		CHECK_EQ(pc->count, r < 2 ? 76 : 75);
	}
	shard_plan_free(p);
	return 0;
}

/* --cards: stage-major order, any card numbers */
static int test_card_list(void)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_F32);
	const char *path = tmp_path("llama.gguf");
	static const uint32_t cards[] = { 7, 3, 12, 0, 5, 1 };
	struct shard_opts o = { .tp = 2, .pp = 3, .cards = cards, .n_cards = 6 };
	struct shard_plan *p;

	CHECK(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	CHECK(!plan(path, &o, NULL, &p));	/* verify() checks the order */
	CHECK_EQ(p->cards[2].card, 12);
	CHECK_EQ(p->cards[2].stage, 1);
	CHECK_EQ(p->cards[2].tp_rank, 0);
	CHECK_EQ(p->cards[5].card, 1);
	CHECK_EQ(p->cards[5].layer_first, 3);
	CHECK_EQ(p->cards[5].layer_last, 3);
	shard_plan_free(p);
	return 0;
}

/* no output.weight: the head is token_embd, split by rows on the last stage */
static int test_tied_embeddings(void)
{
	struct mspec m = { MSPEC_SMALL, .tied = true };
	const char *path = tmp_path("tied.gguf");
	struct shard_opts o = { .tp = 2, .pp = 2 };
	struct shard_plan *p;

	CHECK(!write_model(path, &m));
	CHECK(!plan(path, &o, NULL, &p));
	CHECK(p->model.tied);
	for (uint32_t r = 0; r < 2; r++) {
		const struct shard_card *c = &p->cards[2 + r];
		const struct shard_piece *pc = &c->pieces[c->n_pieces - 1];

		CHECK(pc->role == SHARD_ROLE_OUTPUT && pc->kind == SHARD_ROWS);
		CHECK(!strcmp(pc->name, "token_embd.weight"));
		CHECK_EQ(pc->count, 25);
	}
	shard_plan_free(p);
	/* one stage: whole for the lookup, and the rank's slice for the head */
	o.pp = 1;
	CHECK(!plan(path, &o, NULL, &p));
	CHECK(p->cards[1].pieces[0].role == SHARD_ROLE_TOKEN_EMBD);
	CHECK(p->cards[1].pieces[p->cards[1].n_pieces - 1].role == SHARD_ROLE_OUTPUT);
	shard_plan_free(p);
	return 0;
}

/* rope_freqs on every card; key_length other than embd / heads */
static int test_rope_freqs_key_length(void)
{
	struct mspec m = { MSPEC_SMALL, .rope_freqs = true, .key_length = 32 };
	const char *path = tmp_path("rope.gguf");
	struct shard_opts o = { .tp = 2, .pp = 3 };
	struct shard_plan *p;

	CHECK(!write_model(path, &m));
	CHECK(!plan(path, &o, NULL, &p));
	CHECK_EQ(p->model.key_length, 32);
	for (size_t i = 0; i < p->n_cards; i++) {
		CHECK(p->cards[i].pieces[0].role == SHARD_ROLE_ROPE_FREQS);
		CHECK(p->cards[i].pieces[0].kind == SHARD_WHOLE);
	}
	/* attn_q: 4 heads of 32 = 128 rows, 64 a rank */
	CHECK(!strcmp(p->cards[1].pieces[3].name, "blk.0.attn_q.weight"));
	CHECK_EQ(p->cards[1].pieces[3].first, 64);
	shard_plan_free(p);
	return 0;
}

/* the capacity check: exact fit passes, one byte less fails naming the card */
static int test_capacity(void)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_F16);
	const char *path = tmp_path("llama.gguf");
	uint64_t free_bytes[4] = { 0 }, need;
	struct shard_opts o = { .tp = 2, .pp = 2, .free = free_bytes };
	struct shard_plan *p;
	struct gguf_file *g;
	char want[256], b1[16], b2[16];

	CHECK(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	CHECK(!plan(path, &o, &g, &p));
	need = p->cards[3].need;
	CHECK(need % 4096 == 0 && need >= p->cards[3].bytes && need - p->cards[3].bytes < 4096);
	CHECK(p->cards[3].free == 0);
	shard_plan_free(p);

	free_bytes[3] = need;
	free_bytes[0] = 1ull << 40;
	CHECK(!shard_plan_build(g, &o, &p, errbuf, sizeof(errbuf)));
	CHECK_EQ(p->cards[3].free, need);
	shard_plan_free(p);

	free_bytes[3] = need - 1;
	CHECK(shard_plan_build(g, &o, &p, errbuf, sizeof(errbuf)) == -ENOSPC && !p);
	snprintf(want, sizeof(want), "card 3 (stage 1, tp rank 1) needs %s (%" PRIu64
		 " bytes) but has %s (%" PRIu64 " bytes) free",
		 shard_human_bytes(need, b1, sizeof(b1)), need,
		 shard_human_bytes(need - 1, b2, sizeof(b2)), need - 1);
	printf("# -> %s\n", errbuf);
	CHECK(!strcmp(errbuf, want));
	gguf_close(g);

	CHECK(!strcmp(shard_human_bytes(512, b1, sizeof(b1)), "512 B"));
	CHECK(!strcmp(shard_human_bytes(1536ull << 20, b1, sizeof(b1)), "1.5 GiB"));
	return 0;
}

/* a larger alignment; every piece on it */
static int test_alignment(void)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_Q4_0);
	const char *path = tmp_path("llama.gguf");
	struct shard_opts o = { .tp = 2, .pp = 1, .align = 4096 };
	struct shard_plan *p;

	CHECK(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	CHECK(!plan(path, &o, NULL, &p));	/* verify() checks the alignment */
	CHECK_EQ(p->align, 4096);
	CHECK(p->cards[0].bytes > p->cards[0].data_bytes + 4096);
	shard_plan_free(p);
	return 0;
}

/* ---- errors ------------------------------------------------------------- */

struct ecase {
	const char *name;
	struct mspec m;
	struct shard_opts o;
	int ret;
	const char *msg;	/* the whole message */
};

static const uint32_t three_cards[] = { 0, 1, 2 };
static const uint32_t dup_cards[] = { 4, 5, 6, 5 };

#define TP(t, p) .o = { .tp = t, .pp = p }

static const struct ecase ecases[] = {
	{ "tp 0", { MSPEC_SMALL }, TP(0, 1), -EINVAL, "--tp 0: must be at least 1" },
	{ "pp 0", { MSPEC_SMALL }, TP(1, 0), -EINVAL, "--pp 0: must be at least 1" },
	{ "too many cards", { MSPEC_SMALL }, TP(64, 65), -EINVAL,
	  "--tp 64 --pp 65 needs 4160 cards, at most 4096 are supported" },
	{ "huge tp", { MSPEC_SMALL }, TP(UINT32_MAX, UINT32_MAX), -EINVAL,
	  "--tp 4294967295 --pp 4294967295 needs 18446744065119617025 cards, at most 4096 are supported" },
	{ "cards: too few", { MSPEC_SMALL },
	  { .tp = 2, .pp = 2, .cards = three_cards, .n_cards = 3 }, -EINVAL,
	  "--cards lists 3 cards, --tp 2 --pp 2 needs 4" },
	{ "cards: too many", { MSPEC_SMALL },
	  { .tp = 1, .pp = 2, .cards = three_cards, .n_cards = 3 }, -EINVAL,
	  "--cards lists 3 cards, --tp 1 --pp 2 needs 2" },
	{ "cards: duplicate", { MSPEC_SMALL },
	  { .tp = 2, .pp = 2, .cards = dup_cards, .n_cards = 4 }, -EINVAL,
	  "card 5 is listed twice in --cards" },
	{ "alignment", { MSPEC_SMALL }, { .tp = 1, .pp = 1, .align = 96 }, -EINVAL,
	  "alignment 96 is not a power of two" },
	{ "architecture", { MSPEC_SMALL, .arch = "gpt2" }, TP(1, 1), -EINVAL,
	  "architecture 'gpt2' is not supported (only llama)" },
	{ "architecture with a newline", { MSPEC_SMALL, .arch = "lla\nma" }, TP(1, 1), -EINVAL,
	  "architecture 'lla?ma' is not supported (only llama)" },
	{ "no architecture", { MSPEC_SMALL, .arch = "" }, TP(1, 1), -EINVAL,
	  "missing metadata key general.architecture" },
	{ "no block_count", { MSPEC_SMALL, .drop_key = "llama.block_count" }, TP(1, 1), -EINVAL,
	  "missing metadata key llama.block_count" },
	{ "no head_count", { MSPEC_SMALL, .drop_key = "llama.attention.head_count" }, TP(1, 1),
	  -EINVAL, "missing metadata key llama.attention.head_count" },
	{ "block_count a string", { MSPEC_SMALL, .str_key = "llama.block_count" }, TP(1, 1),
	  -EINVAL, "llama.block_count has type string, expected an integer" },
	{ "head_count_kv an array", { MSPEC_SMALL, .arr_key = "llama.attention.head_count_kv" },
	  TP(1, 1), -EINVAL,
	  "llama.attention.head_count_kv is an array: per-layer values are not supported" },
	{ "block_count 0", { MSPEC_SMALL, .set = { { "llama.block_count", 0 } } }, TP(1, 1),
	  -EINVAL, "llama.block_count is 0, must be 1..4294967295" },
	{ "head_count not a multiple of head_count_kv",
	  { MSPEC_SMALL, .set = { { "llama.attention.head_count_kv", 3 } } }, TP(1, 1), -EINVAL,
	  "llama.attention.head_count 4 is not a multiple of llama.attention.head_count_kv 3" },
	{ "embedding_length not a multiple of head_count",
	  { MSPEC_SMALL, .heads_kv = 3, .set = { { "llama.attention.head_count", 3 } } },
	  TP(1, 1), -EINVAL,
	  "llama.embedding_length 64 is not a multiple of llama.attention.head_count 3" },
	{ "pp > block_count", { MSPEC_SMALL }, TP(1, 4), -EINVAL,
	  "--pp 4 exceeds llama.block_count 3 (a stage needs at least one layer)" },
	{ "tp does not divide head_count", { MSPEC_SMALL, .heads = 8, .heads_kv = 8 },
	  TP(3, 1), -EINVAL, "--tp 3 does not divide llama.attention.head_count 8" },
	{ "tp does not divide head_count_kv",
	  { MSPEC_SMALL, .embd = 96, .heads = 24, .heads_kv = 8, .ff = 96 }, TP(3, 1), -EINVAL,
	  "--tp 3 does not divide llama.attention.head_count_kv 8" },
	{ "tp does not divide feed_forward_length", { MSPEC_SMALL, .heads_kv = 4, .ff = 90 },
	  TP(4, 1), -EINVAL, "--tp 4 does not divide llama.feed_forward_length 90" },
	{ "tp exceeds the vocabulary", { MSPEC_SMALL, .heads_kv = 4, .vocab = 3 }, TP(4, 1),
	  -EINVAL, "--tp 4 exceeds the vocabulary size 3 (each rank needs a slice of output.weight)" },
	{ "missing token_embd", { MSPEC_SMALL, .drop_tensor = "token_embd.weight" }, TP(1, 1),
	  -EINVAL, "missing tensor 'token_embd.weight'" },
	{ "missing ffn_up", { MSPEC_SMALL, .drop_tensor = "blk.1.ffn_up.weight" }, TP(1, 1),
	  -EINVAL, "missing tensor 'blk.1.ffn_up.weight'" },
	{ "missing output_norm", { MSPEC_SMALL, .drop_tensor = "output_norm.weight" }, TP(2, 1),
	  -EINVAL, "missing tensor 'output_norm.weight'" },
	{ "block_count beyond the blocks",
	  { MSPEC_SMALL, .set = { { "llama.block_count", 4 } } }, TP(1, 1), -EINVAL,
	  "missing tensor 'blk.3.attn_norm.weight'" },
	{ "blocks beyond block_count", { MSPEC_SMALL, .set = { { "llama.block_count", 2 } } },
	  TP(1, 1), -EINVAL, "unexpected tensor 'blk.2.attn_norm.weight': not part of a llama model" },
	{ "unexpected tensor", { MSPEC_SMALL, .extra_tensor = "blk.0.attn_q.bias" }, TP(1, 1),
	  -EINVAL, "unexpected tensor 'blk.0.attn_q.bias': not part of a llama model" },
	{ "attn_q rows", { MSPEC_SMALL, .reshape = "blk.0.attn_q.weight", .reshape_nd = 2,
			   .reshape_dims = { 64, 63 } }, TP(1, 1), -EINVAL,
	  "tensor 'blk.0.attn_q.weight' has shape [64, 63], expected [64, 64]" },
	{ "attn_k 1-D", { MSPEC_SMALL, .reshape = "blk.2.attn_k.weight", .reshape_nd = 1,
			  .reshape_dims = { 64 } }, TP(1, 1), -EINVAL,
	  "tensor 'blk.2.attn_k.weight' has shape [64], expected [64, 32]" },
	{ "ffn_down transposed", { MSPEC_SMALL, .reshape = "blk.1.ffn_down.weight",
				   .reshape_nd = 2, .reshape_dims = { 64, 128 } }, TP(2, 1),
	  -EINVAL, "tensor 'blk.1.ffn_down.weight' has shape [64, 128], expected [128, 64]" },
	{ "norm length", { MSPEC_SMALL, .reshape = "blk.0.ffn_norm.weight", .reshape_nd = 1,
			   .reshape_dims = { 63 } }, TP(1, 1), -EINVAL,
	  "tensor 'blk.0.ffn_norm.weight' has shape [63], expected [64]" },
	{ "norm 2-D", { MSPEC_SMALL, .reshape = "output_norm.weight", .reshape_nd = 2,
			.reshape_dims = { 64, 2 } }, TP(1, 1), -EINVAL,
	  "tensor 'output_norm.weight' has shape [64, 2], expected [64]" },
	{ "output vocabulary", { MSPEC_SMALL, .reshape = "output.weight", .reshape_nd = 2,
				 .reshape_dims = { 64, 49 } }, TP(1, 1), -EINVAL,
	  "tensor 'output.weight' has shape [64, 49], expected [64, 50]" },
	{ "token_embd width", { MSPEC_SMALL, .reshape = "token_embd.weight", .reshape_nd = 2,
				.reshape_dims = { 32, 50 } }, TP(1, 1), -EINVAL,
	  "tensor 'token_embd.weight' has shape [32, 50], expected [64, 50]" },
	{ "rope_freqs length", { MSPEC_SMALL, .rope_freqs = true, .reshape = "rope_freqs.weight",
				 .reshape_nd = 1, .reshape_dims = { 16 } }, TP(1, 1), -EINVAL,
	  "tensor 'rope_freqs.weight' has shape [16], expected [8]" },
	{ "q4_0: ffn_down not on blocks", { MSPEC_SMALL, .ff = 96, .type = GGUF_TENSOR_Q4_0 },
	  TP(2, 1), -EINVAL,
	  "tensor 'blk.0.ffn_down.weight': --tp 2 cuts its 96 columns into slices of 48, "
	  "not a multiple of the q4_0 block size 32" },
	{ "q4_0: attn_output not on blocks",
	  { MSPEC_SMALL, .heads_kv = 4, .type = GGUF_TENSOR_Q4_0 }, TP(4, 1), -EINVAL,
	  "tensor 'blk.0.attn_output.weight': --tp 4 cuts its 64 columns into slices of 16, "
	  "not a multiple of the q4_0 block size 32" },
};

static int run_ecase(const struct ecase *e)
{
	const char *path = tmp_path("bad.gguf");
	struct shard_plan *p = (void *)1;
	struct gguf_file *g;
	int r;

	if (write_model(path, &e->m))
		return 1;
	if (gguf_open(path, &g, errbuf, sizeof(errbuf))) {
		printf("# gguf_open: %s\n", errbuf);
		return 1;
	}
	r = shard_plan_build(g, &e->o, &p, errbuf, sizeof(errbuf));
	printf("# -> %s\n", r ? errbuf : "(planned)");
	gguf_close(g);
	if (!r)
		shard_plan_free(p);
	if (r != e->ret || p || strcmp(errbuf, e->msg)) {
		printf("# got %d, expected %d '%s'\n", r, e->ret, e->msg);
		return 1;
	}
	return 0;
}

/*
 * Random metadata against random tensors, all of which gguf_open()
 * accepts: the planner either makes a plan that verify() accepts or fails
 * with one line, and never crashes.
 */
static int test_random_models(void)
{
	static const uint32_t embd[] = { 4, 8, 12, 16 }, heads[] = { 1, 2, 3, 4, 4, 4 },
			      ff[] = { 4, 8, 12 }, vocab[] = { 3, 5, 8 };
	const char *path = tmp_path("random.gguf");
	int planned = 0, refused = 0;

	for (int i = 0; i < 300; i++) {
		struct mspec m = {
			.layers = 1 + rnd() % 3, .embd = embd[rnd() % 4],
			.heads = heads[rnd() % 6], .ff = ff[rnd() % 3],
			.vocab = vocab[rnd() % 3], .type = GGUF_TENSOR_F32,
			.tied = rnd() % 4 == 0, .rope_freqs = rnd() % 4 == 0,
		};
		struct shard_opts o = { .tp = 1 << rnd() % 3, .pp = 1 + rnd() % (1 + m.layers) };
		static const char *const keys[] = {
			"llama.block_count", "llama.embedding_length",
			"llama.feed_forward_length", "llama.attention.head_count",
			"llama.attention.head_count_kv", "llama.attention.key_length",
			"llama.attention.value_length",
		};
		struct shard_plan *p;
		int r;

		if (m.embd % m.heads)
			m.heads = 1;
		m.heads_kv = m.heads % 2 ? m.heads : m.heads / (1 + rnd() % 2);
		if (m.heads % o.tp && rnd() % 2)
			o.tp = 1;
		/* a metadata value or two off, or none */
		for (int k = 0; k < 2; k++)
			if (rnd() % 6 == 0)
				m.set[k].key = keys[rnd() % N(keys)], m.set[k].v = rnd() % 17;
		if (rnd() % 8 == 0) {
			m.reshape = "blk.0.attn_v.weight";
			m.reshape_nd = 2;
			m.reshape_dims[0] = embd[rnd() % 4];
			m.reshape_dims[1] = 1 + rnd() % 16;
		}
		CHECK(!write_model(path, &m));
		r = plan(path, &o, NULL, &p);
		if (r == -EIO)
			return 1;
		if (r) {
			CHECK(r == -EINVAL && errbuf[0] && !strchr(errbuf, '\n'));
			refused++;
		} else {
			planned++;
		}
		shard_plan_free(p);
	}
	printf("# %d planned, %d refused\n", planned, refused);
	CHECK(planned > 20 && refused > 20);
	return 0;
}

/* ---- printing ----------------------------------------------------------- */

struct nums {
	uint64_t src[256], card[16];
	size_t n_src, n_card;
};

static void collect(void *arg, const char *key, uint64_t v)
{
	struct nums *n = arg;

	if (!strcmp(key, "src_offset") && n->n_src < N(n->src))
		n->src[n->n_src++] = v;
	if (!strcmp(key, "card") && n->n_card < N(n->card))
		n->card[n->n_card++] = v;
}

static char *print_to_string(const struct shard_plan *p, enum shard_format fmt)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (shard_plan_print(f, p, fmt)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	return buf;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static int test_json(void)
{
	static const uint32_t cards[] = { 9, 2, 4, 6 };
	static const uint64_t free_bytes[] = { 1ull << 30, 0, 0, 0 };
	struct mspec m = { MSPEC_SMALL, .name = "a \"q\" \\ \n\t \x01 \xff caf\xc3\xa9 \xe2\x96\x81" };
	const char *path = tmp_path("json.gguf");
	struct shard_opts o = { .tp = 2, .pp = 2, .cards = cards, .n_cards = 4,
				.free = free_bytes };
	struct nums *n = calloc(1, sizeof(*n));
	struct shard_plan *p;
	size_t k = 0;
	char *s;

	CHECK(n);
	CHECK(!write_model(path, &m));
	CHECK(!plan(path, &o, NULL, &p));
	s = print_to_string(p, SHARD_PRINT_JSON);
	CHECK(s);
	if (json_check(s, collect, n)) {
		printf("# invalid JSON:\n%s", s);
		return 1;
	}
	CHECK(!strncmp(s, "{\"schema\":\"llmdev.shard-plan/1\",", 32));
	CHECK(strstr(s, "\"name\":\"a \\\"q\\\" \\\\ \\n\\t \\u0001 \\ufffd caf\xc3\xa9 \xe2\x96\x81\""));
	CHECK(strstr(s, "\"tp\":2,\"pp\":2,\"alignment\":256"));
	CHECK(strstr(s, "\"free_bytes\":1073741824,"));
	CHECK(strstr(s, "\"free_bytes\":null,"));
	CHECK(strstr(s, "\"layer\":null"));
	CHECK(strstr(s, "\"role\":\"ffn_down\",\"layer\":2,\"type\":\"f32\",\"kind\":\"cols\""));
	/* the numbers are the plan's, in its order */
	CHECK_EQ(n->n_card, 4);
	for (size_t i = 0; i < 4; i++) {
		CHECK_EQ(n->card[i], cards[i]);
		for (size_t j = 0; j < p->cards[i].n_pieces; j++, k++)
			CHECK(k < n->n_src && n->src[k] == p->cards[i].pieces[j].src_offset);
	}
	CHECK_EQ(n->n_src, k);
	free(s);

	/* the validator itself refuses what is not JSON */
	CHECK(json_check("{\"a\":1,}", NULL, NULL));
	CHECK(json_check("{\"a\":\"\x01\"}", NULL, NULL));
	CHECK(json_check("{\"a\":01}", NULL, NULL));
	CHECK(json_check("[1] x", NULL, NULL));
	CHECK(json_check("\"\xff\"", NULL, NULL));
	CHECK(!json_check(" {\"a\":[true,null,-1.5e3,\"\\u00e9\"]} ", NULL, NULL));
	CHECK(json_check("{\"a\":1,\"a\":2}", NULL, NULL));
	CHECK(json_check("\"\\ud800\"", NULL, NULL));
	CHECK(json_check("\"\xed\xa0\x80\"", NULL, NULL));
	CHECK(json_check("[1,]", NULL, NULL));
	{
		struct json *v = json_parse("{\"a\":[1,{\"b\":\"\\ud83d\\ude00\"}],\"c\":null}",
					    NULL, 0);

		CHECK(v);
		CHECK_EQ(json_get_uint(v, "a/0", 9), 1);
		CHECK(!strcmp(json_get_str(v, "a/1/b"), "\xf0\x9f\x98\x80"));
		CHECK(json_is_null(v, "c"));
		CHECK(!json_get(v, "a/2"));
		json_free(v);
	}

	/* the table: two header lines, the column names, a line per card */
	s = print_to_string(p, SHARD_PRINT_TABLE);
	CHECK(s);
	printf("# %.*s\n", (int)(strchr(s, '\n') - s), s);
	CHECK_EQ(count_lines(s), 3 + 4);
	CHECK(strstr(s, "\\x0a"));	/* the name's newline, escaped */
	free(s);
	/* verbose: and a line per piece */
	s = print_to_string(p, SHARD_PRINT_VERBOSE);
	CHECK(s);
	k = 0;
	for (size_t i = 0; i < p->n_cards; i++)
		k += p->cards[i].n_pieces;
	CHECK_EQ(count_lines(s), 3 + 4 + k);
	CHECK(strstr(s, "blk.2.ffn_down.weight  <- file"));
	free(s);
	CHECK(shard_plan_print(stdout, p, 7) == -EINVAL);
	CHECK(!strcmp(shard_kind_name(SHARD_COLS), "cols"));
	CHECK(!strcmp(shard_role_name(SHARD_ROLE_COUNT), "?"));
	shard_plan_free(p);
	free(n);
	return 0;
}

/* ---- card order --------------------------------------------------------- */

/* cable card a to card b (both ways) in the n x n matrix @m */
static void cable(bool *m, uint32_t n, uint32_t a, uint32_t b)
{
	m[a * n + b] = true;
	m[b * n + a] = true;
}

/* every hop of @cards is in @m and no card is used twice */
static int check_order(const bool *m, uint32_t n, uint32_t tp, uint32_t pp,
		       const uint32_t *cards)
{
	bool used[64] = { false };

	for (uint32_t i = 0; i < tp * pp; i++) {
		CHECK(cards[i] < n && !used[cards[i]]);
		used[cards[i]] = true;
		if (i >= tp)
			CHECK(m[cards[i - tp] * n + cards[i]]);
	}
	return 0;
}

static int test_card_order(void)
{
	bool ring4[16] = { false }, ring8[64] = { false }, line3[9] = { false };
	bool none[16] = { false }, full[64];
	uint32_t c[64];

	/* the VM's default cabling: a ring 0-1-2-3-0 */
	for (uint32_t i = 0; i < 4; i++)
		cable(ring4, 4, i, (i + 1) % 4);
	CHECK(!shard_order_cards(2, 2, 4, ring4, c));
	CHECK(c[0] == 0 && c[1] == 1 && c[2] == 3 && c[3] == 2);
	CHECK(!check_order(ring4, 4, 2, 2, c));
	CHECK(!shard_order_cards(1, 4, 4, ring4, c));
	CHECK(c[0] == 0 && c[1] == 1 && c[2] == 2 && c[3] == 3);
	CHECK(!shard_order_cards(4, 1, 4, none, c));	/* no hops: 0..3 */
	CHECK(c[0] == 0 && c[1] == 1 && c[2] == 2 && c[3] == 3);
	CHECK(!shard_order_cards(1, 2, 4, ring4, c));
	CHECK(c[0] == 0 && c[1] == 1);
	CHECK(shard_order_cards(2, 2, 4, none, c) == -ENOENT);
	/* tp 4 x pp 2 on a ring of 8 */
	for (uint32_t i = 0; i < 8; i++)
		cable(ring8, 8, i, (i + 1) % 8);
	CHECK(!shard_order_cards(4, 2, 8, ring8, c));
	CHECK(!check_order(ring8, 8, 4, 2, c));
	CHECK(!shard_order_cards(2, 4, 8, ring8, c));
	CHECK(!check_order(ring8, 8, 2, 4, c));
	/* a line 0-1-2: pp 3 has to start at an end */
	cable(line3, 3, 0, 1);
	cable(line3, 3, 1, 2);
	CHECK(!shard_order_cards(1, 3, 3, line3, c));
	CHECK(c[0] == 0 && c[1] == 1 && c[2] == 2);
	cable(line3, 3, 0, 2);		/* now a triangle */
	CHECK(!shard_order_cards(1, 3, 3, line3, c));
	CHECK(!check_order(line3, 3, 1, 3, c));
	/* bad layouts */
	CHECK(shard_order_cards(3, 2, 4, ring4, c) == -EINVAL);
	CHECK(shard_order_cards(0, 2, 4, ring4, c) == -EINVAL);
	CHECK(shard_order_cards(2, 0, 4, ring4, c) == -EINVAL);
	CHECK(shard_order_cards(SHARD_MAX_CARDS, 2, UINT32_MAX, ring4, c) == -EINVAL);
	/* no order among 40 unlinked cards: the search ends (its budget) */
	bool *big = calloc(40 * 40, sizeof(*big));

	CHECK(big);
	CHECK(shard_order_cards(20, 2, 40, big, c) == -ENOENT);
	free(big);
	/* fully connected 8 cards: the identity order */
	for (uint32_t i = 0; i < 64; i++)
		full[i] = i % 9 != 0;
	CHECK(!shard_order_cards(2, 4, 8, full, c));
	for (uint32_t i = 0; i < 8; i++)
		CHECK(c[i] == i);
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "tp 1 pp 1: f32", test_single_f32 },
	{ "tp 1 pp 1: f16", test_single_f16 },
	{ "tp 1 pp 1: q8_0", test_single_q8_0 },
	{ "tp 1 pp 1: q4_0", test_single_q4_0 },
	{ "tp 2 pp 2: f32", test_tp2_pp2_f32 },
	{ "tp 2 pp 2: f16", test_tp2_pp2_f16 },
	{ "tp 2 pp 2: q8_0", test_tp2_pp2_q8_0 },
	{ "tp 2 pp 2: q4_0", test_tp2_pp2_q4_0 },
	{ "tp 2 pp 1: q8_0", test_tp2_pp1_q8_0 },
	{ "tp 1 pp 4: f16", test_tp1_pp4_f16 },
	{ "tp 2 pp 2: placement", test_tp2_pp2_placement },
	{ "uneven layer split", test_uneven_layers },
	{ "uneven vocabulary split", test_uneven_vocab },
	{ "card list", test_card_list },
	{ "tied embeddings", test_tied_embeddings },
	{ "rope_freqs and key_length", test_rope_freqs_key_length },
	{ "capacity", test_capacity },
	{ "alignment", test_alignment },
	{ "random models", test_random_models },
	{ "JSON and table", test_json },
	{ "card order", test_card_order },
};

static int rm_tmp(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	return rmdir(tmpdir);
}

int main(void)
{
	size_t n = N(tests) + N(ecases), k = 0;
	int failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	printf("TAP version 13\n1..%zu\n", n);
	for (size_t i = 0; i < N(tests); i++) {
		int r = tests[i].fn();

		failed += r != 0;
		printf("%sok %zu %s\n", r ? "not " : "", ++k, tests[i].name);
	}
	for (size_t i = 0; i < N(ecases); i++) {
		int r = run_ecase(&ecases[i]);

		failed += r != 0;
		printf("%sok %zu error: %s\n", r ? "not " : "", ++k, ecases[i].name);
	}
	if (rm_tmp())
		printf("# could not remove %s\n", tmpdir);
	return failed ? 1 : 0;
}
