// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the shard planner (tools/shard.c), on the kernel's
 * kselftest harness (TAP; each test runs in a child of its own, with a
 * fresh temporary directory).
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

#include "kselftest_harness.h"

#include "gguf.h"
#include "gguf-write.h"
#include "llmctl-print.h"
#include "shard.h"
#include "test-json.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[64];
static char errbuf[512];

/* the tests' messages (ksft_print_msg()) leave the child before _exit() */
static void __attribute__((constructor)) line_buffered(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static void mk_tmpdir(struct __test_metadata *_metadata)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/shard-test.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(tmpdir)) TH_LOG("mkdtemp: %s", strerror(errno));
}

/* the test's temporary directory and what it holds (no subdirectories) */
static void rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	if (rmdir(tmpdir))
		ksft_print_msg("could not remove %s: %s\n", tmpdir, strerror(errno));
}

/* a fresh temporary directory for each test (tests run in children) */
FIXTURE(planner) {
};

FIXTURE_SETUP(planner)
{
	mk_tmpdir(_metadata);
}

FIXTURE_TEARDOWN(planner)
{
	rm_tmpdir();
}

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
		ksft_print_msg("write_model: %s\n", errbuf);
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
static void check_card(struct __test_metadata *_metadata, const struct gguf_file *g,
		       const struct shard_plan *p, const struct shard_card *c,
		       const uint8_t *file, uint8_t *region)
{
	uint64_t end = 0, data = 0;
	char name[96];

	for (size_t j = 0; j < c->n_pieces; j++) {
		const struct shard_piece *pc = &c->pieces[j];
		const struct gguf_tensor *t = gguf_tensor(g, pc->tensor);

		ASSERT_TRUE(t && !strcmp(t->name, pc->name));
		expect_name(name, sizeof(name), pc, p->model.tied);
		ASSERT_STREQ(name, pc->name) TH_LOG("card %u piece %zu: role %s", c->card, j,
						    shard_role_name(pc->role));
		ASSERT_EQ(expect_kind(pc->role, p->tp), pc->kind);
		ASSERT_EQ(t->type, pc->type);
		if (pc->layer >= 0) {
			ASSERT_TRUE((uint32_t)pc->layer >= c->layer_first &&
			            (uint32_t)pc->layer <= c->layer_last);
		}
		ASSERT_EQ(0, pc->dst_offset % p->align);
		ASSERT_TRUE(pc->dst_offset >= end);
		ASSERT_EQ(1, pc->dst_offset - end < p->align);	/* no more than padding */
		ASSERT_EQ(pc->src_len * pc->src_count, pc->bytes);
		ASSERT_TRUE(pc->src_count >= 1 && pc->src_len >= 1);
		if (pc->src_count == 1) {
			ASSERT_EQ(pc->src_len, pc->src_stride);
		}
		ASSERT_TRUE(pc->src_offset >= t->file_offset);
		ASSERT_TRUE(pc->src_offset + (pc->src_count - 1) * pc->src_stride + pc->src_len <=
		            t->file_offset + t->size);
		for (uint64_t k = 0; k < pc->src_count; k++)
			memcpy(region + pc->dst_offset + k * pc->src_len,
			       file + pc->src_offset + k * pc->src_stride, pc->src_len);
		end = pc->dst_offset + pc->bytes;
		data += pc->bytes;
	}
	ASSERT_EQ(end, c->bytes);
	ASSERT_EQ(data, c->data_bytes);
	ASSERT_EQ((end + 4095) / 4096 * 4096, c->need);
}

/*
 * Piece @j, the same tensor and role on every rank of a stage: whole and
 * identical to the file, or its slices reassembled cover every byte of the
 * tensor exactly once and equal it.
 */
static void check_tensor_slices(struct __test_metadata *_metadata, const struct gguf_file *g,
				const struct shard_plan *p, size_t first_card, size_t j,
				const uint8_t *file, uint8_t *const *regions)
{
	const struct shard_piece *p0 = &p->cards[first_card].pieces[j];
	const struct gguf_tensor *t = gguf_tensor(g, p0->tensor);
	const struct gguf_type_info *ti = gguf_type_info(t->type);
	uint64_t row_bytes = t->dims[0] / ti->block_size * ti->type_size;
	uint64_t rows = t->dims[1] * t->dims[2] * t->dims[3];
	uint8_t *recon = calloc(1, t->size), *cover = calloc(1, t->size);

	ASSERT_NE(NULL, recon);
	ASSERT_NE(NULL, cover);
	for (uint32_t r = 0; r < p->tp; r++) {
		const struct shard_card *c = &p->cards[first_card + r];
		const struct shard_piece *pc = &c->pieces[j];
		const uint8_t *src = regions[first_card + r] + pc->dst_offset;

		ASSERT_FALSE(pc->tensor != p0->tensor || pc->role != p0->role ||
			     pc->kind != p0->kind)
			TH_LOG("card %u piece %zu: %s, rank 0 has %s", c->card, j, pc->name,
			       p0->name);
		switch (pc->kind) {
		case SHARD_WHOLE:
			ASSERT_FALSE(pc->bytes != t->size ||
				     memcmp(src, file + t->file_offset, t->size) ||
				     pc->first != 0 || pc->count != rows ||
				     pc->ne[0] != t->dims[0] || pc->ne[1] != rows)
				TH_LOG("card %u: %s is not the whole tensor", c->card, pc->name);
			break;
		case SHARD_ROWS:
			ASSERT_FALSE(pc->first + pc->count > rows || pc->ne[0] != t->dims[0] ||
				     pc->ne[1] != pc->count || pc->bytes != pc->count * row_bytes)
				TH_LOG("card %u: %s rows %" PRIu64 "+%" PRIu64, c->card,
				       pc->name, pc->first, pc->count);
			for (uint64_t b = 0; b < pc->bytes; b++) {
				recon[pc->first * row_bytes + b] = src[b];
				cover[pc->first * row_bytes + b]++;
			}
			break;
		case SHARD_COLS: {
			uint64_t off = pc->first / ti->block_size * ti->type_size;
			uint64_t len = pc->count / ti->block_size * ti->type_size;

			ASSERT_FALSE(pc->first + pc->count > t->dims[0] ||
				     pc->first % ti->block_size || pc->count % ti->block_size ||
				     pc->ne[0] != pc->count || pc->ne[1] != rows ||
				     pc->bytes != len * rows)
				TH_LOG("card %u: %s cols %" PRIu64 "+%" PRIu64, c->card,
				       pc->name, pc->first, pc->count);
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
		ASSERT_FALSE(pc->kind != SHARD_WHOLE && pc->role != SHARD_ROLE_OUTPUT &&
			     pc->count * p->tp != (pc->kind == SHARD_ROWS ? rows : t->dims[0]))
			TH_LOG("%s: uneven split", pc->name);
		ASSERT_FALSE(pc->role == SHARD_ROLE_ATTN_Q && pc->count % p->model.key_length)
			TH_LOG("%s: not on head boundaries", pc->name);
	}
	if (p0->kind != SHARD_WHOLE) {
		/* (braces: ASSERT_*() is two statements) */
		for (uint64_t b = 0; b < t->size; b++) {
			ASSERT_EQ(1, cover[b])
				TH_LOG("%s: byte %" PRIu64 " placed %u times", t->name, b,
				       cover[b]);
		}
		ASSERT_EQ(0, memcmp(recon, file + t->file_offset, t->size))
			TH_LOG("%s: reassembled slices differ from the file", t->name);
	}
	free(recon);
	free(cover);
}

/*
 * Everything about a plan of the model at @path: cards and their order,
 * layer split, placement of each tensor, and the bytes, by simulating the
 * copy. @cards: the card list given, or NULL.
 */
static void verify(struct __test_metadata *_metadata, const char *path,
		   const struct gguf_file *g, const struct shard_plan *p, const uint32_t *cards)
{
	size_t size, nt = gguf_tensor_count(g);
	uint8_t *file = read_file(path, &size);
	uint8_t **regions = calloc(p->n_cards, sizeof(*regions));
	bool *seen = calloc(nt, sizeof(*seen));
	uint32_t next_layer = 0;

	ASSERT_NE(NULL, file);
	ASSERT_NE(NULL, regions);
	ASSERT_NE(NULL, seen);
	ASSERT_EQ((size_t)p->tp * p->pp, p->n_cards) TH_LOG("the plan of %s is wrong", path);
	for (size_t i = 0; i < p->n_cards; i++) {
		const struct shard_card *c = &p->cards[i];
		uint32_t s = i / p->tp;
		size_t want = 9 * (size_t)(c->layer_last - c->layer_first + 1) +
			      (s == 0) + 2 * (s == p->pp - 1) +
			      !!gguf_find_tensor(g, "rope_freqs.weight");
		uint64_t base = p->model.n_layer / p->pp, extra = p->model.n_layer % p->pp;

		ASSERT_FALSE(c->card != (cards ? cards[i] : i) || c->stage != s ||
			     c->tp_rank != i % p->tp || c->tp_size != p->tp ||
			     c->embeddings != (s == 0) || c->head != (s == p->pp - 1) ||
			     c->n_pieces != want)
			TH_LOG("card slot %zu: card %u stage %u rank %u, %zu pieces (want %zu)",
			       i, c->card, c->stage, c->tp_rank, c->n_pieces, want);
		/* contiguous stages, the first ones one layer longer */
		if (c->tp_rank == 0) {
			ASSERT_FALSE(c->layer_first != next_layer ||
				     c->layer_last - c->layer_first + 1 != base + (s < extra))
				TH_LOG("stage %u: layers %u-%u", s, c->layer_first, c->layer_last);
			next_layer = c->layer_last + 1;
		} else {
			ASSERT_EQ(p->cards[i - 1].layer_first, c->layer_first);
			ASSERT_EQ(p->cards[i - 1].layer_last, c->layer_last);
		}
		regions[i] = calloc(1, c->bytes ? c->bytes : 1);
		ASSERT_NE(NULL, regions[i]);
		check_card(_metadata, g, p, c, file, regions[i]);
		for (size_t j = 0; j < c->n_pieces; j++)
			seen[c->pieces[j].tensor] = true;
	}
	ASSERT_EQ(p->model.n_layer, next_layer);
	for (size_t i = 0; i < p->n_cards; i += p->tp)
		for (size_t j = 0; j < p->cards[i].n_pieces; j++)
			check_tensor_slices(_metadata, g, p, i, j, file, regions);
	for (size_t i = 0; i < nt; i++) {
		ASSERT_TRUE(seen[i]) TH_LOG("tensor %s is on no card", gguf_tensor(g, i)->name);
	}
	for (size_t i = 0; i < p->n_cards; i++)
		free(regions[i]);
	free(regions);
	free(seen);
	free(file);
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

/*
 * Plan the model at @path and verify the plan if it is built (a wrong
 * plan fails the test). Return: what shard_plan_build() returned.
 */
static int plan(struct __test_metadata *_metadata, const char *path,
		const struct shard_opts *o, struct gguf_file **gp, struct shard_plan **pp)
{
	struct gguf_file *g;
	int ret;

	*pp = NULL;
	ASSERT_EQ(0, gguf_open(path, &g, errbuf, sizeof(errbuf))) TH_LOG("gguf_open: %s", errbuf);
	ret = shard_plan_build(g, o, pp, errbuf, sizeof(errbuf));
	if (!ret)
		verify(_metadata, path, g, *pp, o->cards);
	if (gp)
		*gp = g;
	else
		gguf_close(g);
	return ret;
}

static void plan_llama(struct __test_metadata *_metadata, uint32_t type, uint32_t tp,
		       uint32_t pp)
{
	struct gguf_llama_params lp = params(type);
	const char *path = tmp_path("llama.gguf");
	struct shard_opts o = { .tp = tp, .pp = pp };
	struct shard_plan *p;
	int ret;

	ASSERT_TRUE(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	ret = plan(_metadata, path, &o, NULL, &p);
	ASSERT_EQ(0, ret) TH_LOG("tp %u pp %u: %s", tp, pp, errbuf);
	shard_plan_free(p);
}

/* tp 1, pp 1: every tensor whole on card 0, back to back */
static void single_card(struct __test_metadata *_metadata, uint32_t type)
{
	struct gguf_llama_params lp = params(type);
	const char *path = tmp_path("llama.gguf");
	struct shard_opts o = { .tp = 1, .pp = 1 };
	struct shard_plan *p;
	struct gguf_file *g;
	uint64_t total = 0, aligned = 0;

	ASSERT_TRUE(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	ASSERT_EQ(0, plan(_metadata, path, &o, &g, &p)) TH_LOG("%s", errbuf);
	for (size_t i = 0; i < gguf_tensor_count(g); i++) {
		total += gguf_tensor(g, i)->size;
		aligned = (aligned + 255) / 256 * 256 + gguf_tensor(g, i)->size;
	}
	ASSERT_EQ(1, p->n_cards);
	ASSERT_EQ(0, p->cards[0].card);
	ASSERT_EQ(0, p->cards[0].layer_first);
	ASSERT_EQ(lp.layers - 1, p->cards[0].layer_last);
	ASSERT_TRUE(p->cards[0].embeddings && p->cards[0].head);
	ASSERT_EQ(gguf_tensor_count(g), p->cards[0].n_pieces);
	ASSERT_EQ(total, p->cards[0].data_bytes);
	ASSERT_EQ(aligned, p->cards[0].bytes);
	ASSERT_EQ(total, p->model.tensor_bytes);
	ASSERT_TRUE(!p->model.tied);
	ASSERT_EQ(lp.vocab, p->model.n_vocab);
	ASSERT_EQ(lp.embd / lp.heads, p->model.key_length);
	for (size_t j = 0; j < p->cards[0].n_pieces; j++) {
		ASSERT_EQ(SHARD_WHOLE, p->cards[0].pieces[j].kind);
	}
	/* the region order: token_embd, the blocks, output_norm, output */
	ASSERT_TRUE(!strcmp(p->cards[0].pieces[0].name, "token_embd.weight"));
	ASSERT_TRUE(!strcmp(p->cards[0].pieces[1].name, "blk.0.attn_norm.weight"));
	ASSERT_TRUE(!strcmp(p->cards[0].pieces[p->cards[0].n_pieces - 1].name, "output.weight"));
	shard_plan_free(p);
	gguf_close(g);
}

TEST_F(planner, single_f32)  { single_card(_metadata, GGUF_TENSOR_F32); }
TEST_F(planner, single_f16)  { single_card(_metadata, GGUF_TENSOR_F16); }
TEST_F(planner, single_q8_0) { single_card(_metadata, GGUF_TENSOR_Q8_0); }
TEST_F(planner, single_q4_0) { single_card(_metadata, GGUF_TENSOR_Q4_0); }

TEST_F(planner, tp2_pp2_f32)  { plan_llama(_metadata, GGUF_TENSOR_F32, 2, 2); }
TEST_F(planner, tp2_pp2_f16)  { plan_llama(_metadata, GGUF_TENSOR_F16, 2, 2); }
TEST_F(planner, tp2_pp2_q8_0) { plan_llama(_metadata, GGUF_TENSOR_Q8_0, 2, 2); }
TEST_F(planner, tp2_pp2_q4_0) { plan_llama(_metadata, GGUF_TENSOR_Q4_0, 2, 2); }
TEST_F(planner, tp2_pp1_q8_0) { plan_llama(_metadata, GGUF_TENSOR_Q8_0, 2, 1); }
TEST_F(planner, tp1_pp4_f16)  { plan_llama(_metadata, GGUF_TENSOR_F16, 1, 4); }

/* the details of one tp 2 pp 2 plan, beyond what verify() checks */
TEST_F(planner, tp2_pp2_placement)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_Q8_0);
	const char *path = tmp_path("llama.gguf");
	struct shard_opts o = { .tp = 2, .pp = 2 };
	const struct shard_piece *pc;
	struct shard_plan *p;

	ASSERT_TRUE(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);
	ASSERT_EQ(4, p->n_cards);
	for (uint32_t i = 0; i < 4; i++) {
		const struct shard_card *c = &p->cards[i];

		ASSERT_EQ(i, c->card);
		ASSERT_EQ(i / 2, c->stage);
		ASSERT_EQ(i % 2, c->tp_rank);
		ASSERT_EQ(i / 2 * 2, c->layer_first);
		ASSERT_EQ(i / 2 * 2 + 1, c->layer_last);
		ASSERT_EQ(18 + (i < 2 ? 1 : 2), c->n_pieces);
	}
	/* stage 0: token_embd whole on both ranks, first in the region */
	for (int r = 0; r < 2; r++) {
		pc = &p->cards[r].pieces[0];
		ASSERT_TRUE(!strcmp(pc->name, "token_embd.weight") && pc->kind == SHARD_WHOLE);
		ASSERT_EQ(0, pc->dst_offset);
	}
	/* rank 1's attn_q: heads 2..3 of 4 (16 rows each), one range */
	pc = &p->cards[1].pieces[2];
	ASSERT_TRUE(!strcmp(pc->name, "blk.0.attn_q.weight") && pc->kind == SHARD_ROWS);
	ASSERT_EQ(32, pc->first);
	ASSERT_EQ(32, pc->count);
	ASSERT_EQ(1, pc->src_count);
	ASSERT_EQ(32 * (64 / 32 * 34), pc->bytes);
	/* its attn_k: kv head 1 of 2 */
	pc = &p->cards[1].pieces[3];
	ASSERT_TRUE(!strcmp(pc->name, "blk.0.attn_k.weight"));
	ASSERT_EQ(16, pc->first);
	ASSERT_EQ(16, pc->count);
	/* its ffn_down: columns 64..127 of 128, one range of 2 blocks per row */
	pc = &p->cards[1].pieces[9];
	ASSERT_TRUE(!strcmp(pc->name, "blk.0.ffn_down.weight") && pc->kind == SHARD_COLS);
	ASSERT_EQ(64, pc->first);
	ASSERT_EQ(64, pc->count);
	ASSERT_EQ(64, pc->src_count);
	ASSERT_EQ(2 * 34, pc->src_len);
	ASSERT_EQ(4 * 34, pc->src_stride);
	ASSERT_EQ(64, pc->ne[0]);
	ASSERT_EQ(64, pc->ne[1]);
	/* last stage: output_norm whole, output's vocabulary halves */
	for (int r = 0; r < 2; r++) {
		const struct shard_card *c = &p->cards[2 + r];

		pc = &c->pieces[c->n_pieces - 2];
		ASSERT_TRUE(!strcmp(pc->name, "output_norm.weight") && pc->kind == SHARD_WHOLE);
		pc++;
		ASSERT_TRUE(!strcmp(pc->name, "output.weight") && pc->kind == SHARD_ROWS);
		ASSERT_EQ(150 * r, pc->first);
		ASSERT_EQ(150, pc->count);
		ASSERT_TRUE(!c->embeddings && c->head);
	}
	shard_plan_free(p);
}

/* 5 layers in 2 stages: 3 + 2; 7 in 3: 3 + 2 + 2; 4 in 4; ... */
TEST_F(planner, uneven_layers)
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
		ASSERT_TRUE(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
		ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);
		for (uint32_t s = 0; s < cases[i].pp; s++) {
			uint32_t last = s + 1 < cases[i].pp ? cases[i].first[s + 1] - 1 :
				        cases[i].layers - 1;

			for (uint32_t r = 0; r < 2; r++) {
				ASSERT_EQ(cases[i].first[s], p->cards[s * 2 + r].layer_first);
				ASSERT_EQ(last, p->cards[s * 2 + r].layer_last);
			}
		}
		shard_plan_free(p);
	}
}

/* vocab 302 over tp 4: 76, 76, 75, 75 rows of output.weight */
TEST_F(planner, uneven_vocab)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_F16);
	const char *path = tmp_path("vocab.gguf");
	struct shard_opts o = { .tp = 4, .pp = 1 };
	struct shard_plan *p;

	lp.vocab = 302;
	lp.heads_kv = 4;
	ASSERT_TRUE(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);
	for (uint32_t r = 0; r < 4; r++) {
		const struct shard_card *c = &p->cards[r];
		const struct shard_piece *pc = &c->pieces[c->n_pieces - 1];

		ASSERT_TRUE(pc->role == SHARD_ROLE_OUTPUT);
		ASSERT_EQ(r * 75 + (r < 2 ? r : 2), pc->first);
		ASSERT_EQ(r < 2 ? 76 : 75, pc->count);
	}
	shard_plan_free(p);
}

/* --cards: stage-major order, any card numbers */
TEST_F(planner, card_list)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_F32);
	const char *path = tmp_path("llama.gguf");
	static const uint32_t cards[] = { 7, 3, 12, 0, 5, 1 };
	struct shard_opts o = { .tp = 2, .pp = 3, .cards = cards, .n_cards = 6 };
	struct shard_plan *p;

	ASSERT_TRUE(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);	/* verify() checks the order */
	ASSERT_EQ(12, p->cards[2].card);
	ASSERT_EQ(1, p->cards[2].stage);
	ASSERT_EQ(0, p->cards[2].tp_rank);
	ASSERT_EQ(1, p->cards[5].card);
	ASSERT_EQ(3, p->cards[5].layer_first);
	ASSERT_EQ(3, p->cards[5].layer_last);
	shard_plan_free(p);
}

/* no output.weight: the head is token_embd, split by rows on the last stage */
TEST_F(planner, tied_embeddings)
{
	struct mspec m = { MSPEC_SMALL, .tied = true };
	const char *path = tmp_path("tied.gguf");
	struct shard_opts o = { .tp = 2, .pp = 2 };
	struct shard_plan *p;

	ASSERT_EQ(0, write_model(path, &m));
	ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);
	ASSERT_TRUE(p->model.tied);
	for (uint32_t r = 0; r < 2; r++) {
		const struct shard_card *c = &p->cards[2 + r];
		const struct shard_piece *pc = &c->pieces[c->n_pieces - 1];

		ASSERT_TRUE(pc->role == SHARD_ROLE_OUTPUT && pc->kind == SHARD_ROWS);
		ASSERT_TRUE(!strcmp(pc->name, "token_embd.weight"));
		ASSERT_EQ(25, pc->count);
	}
	shard_plan_free(p);
	/* one stage: whole for the lookup, and the rank's slice for the head */
	o.pp = 1;
	ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);
	ASSERT_TRUE(p->cards[1].pieces[0].role == SHARD_ROLE_TOKEN_EMBD);
	ASSERT_TRUE(p->cards[1].pieces[p->cards[1].n_pieces - 1].role == SHARD_ROLE_OUTPUT);
	shard_plan_free(p);
}

/* rope_freqs on every card; key_length other than embd / heads */
TEST_F(planner, rope_freqs_key_length)
{
	struct mspec m = { MSPEC_SMALL, .rope_freqs = true, .key_length = 32 };
	const char *path = tmp_path("rope.gguf");
	struct shard_opts o = { .tp = 2, .pp = 3 };
	struct shard_plan *p;

	ASSERT_EQ(0, write_model(path, &m));
	ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);
	ASSERT_EQ(32, p->model.key_length);
	for (size_t i = 0; i < p->n_cards; i++) {
		ASSERT_TRUE(p->cards[i].pieces[0].role == SHARD_ROLE_ROPE_FREQS);
		ASSERT_TRUE(p->cards[i].pieces[0].kind == SHARD_WHOLE);
	}
	/* attn_q: 4 heads of 32 = 128 rows, 64 a rank */
	ASSERT_TRUE(!strcmp(p->cards[1].pieces[3].name, "blk.0.attn_q.weight"));
	ASSERT_EQ(64, p->cards[1].pieces[3].first);
	shard_plan_free(p);
}

/* the capacity check: exact fit passes, one byte less fails naming the card */
TEST_F(planner, capacity)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_F16);
	const char *path = tmp_path("llama.gguf");
	uint64_t free_bytes[4] = { 0 }, need;
	struct shard_opts o = { .tp = 2, .pp = 2, .free = free_bytes };
	struct shard_plan *p;
	struct gguf_file *g;
	char want[256], b1[16], b2[16];

	ASSERT_TRUE(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	ASSERT_EQ(0, plan(_metadata, path, &o, &g, &p)) TH_LOG("%s", errbuf);
	need = p->cards[3].need;
	ASSERT_TRUE(need % 4096 == 0 && need >= p->cards[3].bytes && need - p->cards[3].bytes < 4096);
	ASSERT_TRUE(p->cards[3].free == 0);
	shard_plan_free(p);

	free_bytes[3] = need;
	free_bytes[0] = 1ull << 40;
	ASSERT_TRUE(!shard_plan_build(g, &o, &p, errbuf, sizeof(errbuf)));
	ASSERT_EQ(need, p->cards[3].free);
	shard_plan_free(p);

	free_bytes[3] = need - 1;
	ASSERT_TRUE(shard_plan_build(g, &o, &p, errbuf, sizeof(errbuf)) == -ENOSPC && !p);
	snprintf(want, sizeof(want), "card 3 (stage 1, tp rank 1) needs %s (%" PRIu64
		 " bytes) but has %s (%" PRIu64 " bytes) free",
		 shard_human_bytes(need, b1, sizeof(b1)), need,
		 shard_human_bytes(need - 1, b2, sizeof(b2)), need - 1);
	ksft_print_msg("-> %s\n", errbuf);
	ASSERT_STREQ(want, errbuf);
	gguf_close(g);

	ASSERT_TRUE(!strcmp(shard_human_bytes(512, b1, sizeof(b1)), "512 B"));
	ASSERT_TRUE(!strcmp(shard_human_bytes(1536ull << 20, b1, sizeof(b1)), "1.5 GiB"));
}

/* a larger alignment; every piece on it */
TEST_F(planner, alignment)
{
	struct gguf_llama_params lp = params(GGUF_TENSOR_Q4_0);
	const char *path = tmp_path("llama.gguf");
	struct shard_opts o = { .tp = 2, .pp = 1, .align = 4096 };
	struct shard_plan *p;

	ASSERT_TRUE(!gguf_llama_write(path, &lp, errbuf, sizeof(errbuf)));
	ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);	/* verify() checks the alignment */
	ASSERT_EQ(4096, p->align);
	ASSERT_TRUE(p->cards[0].bytes > p->cards[0].data_bytes + 4096);
	shard_plan_free(p);
}

/* ---- errors ------------------------------------------------------------- */

static const uint32_t three_cards[] = { 0, 1, 2 };
static const uint32_t dup_cards[] = { 4, 5, 6, 5 };

#define TP(t, p) .o = { .tp = t, .pp = p }

/*
 * Each model or layout the planner must refuse is a variant of the
 * fixture "bad_plan": the model's defect, the options, and the errno and
 * whole message shard_plan_build() must give.
 */
FIXTURE(bad_plan) {
};

FIXTURE_VARIANT(bad_plan) {
	struct mspec m;
	struct shard_opts o;
	int ret;
	const char *msg;
};

FIXTURE_SETUP(bad_plan)
{
	mk_tmpdir(_metadata);
}

FIXTURE_TEARDOWN(bad_plan)
{
	rm_tmpdir();
}

FIXTURE_VARIANT_ADD(bad_plan, tp_0) {
	.m = { MSPEC_SMALL }, TP(0, 1), .ret = -EINVAL,
	.msg = "--tp 0: must be at least 1",
};

FIXTURE_VARIANT_ADD(bad_plan, pp_0) {
	.m = { MSPEC_SMALL }, TP(1, 0), .ret = -EINVAL,
	.msg = "--pp 0: must be at least 1",
};

FIXTURE_VARIANT_ADD(bad_plan, too_many_cards) {
	.m = { MSPEC_SMALL }, TP(64, 65), .ret = -EINVAL,
	.msg = "--tp 64 --pp 65 needs 4160 cards, at most 4096 are supported",
};

FIXTURE_VARIANT_ADD(bad_plan, huge_tp) {
	.m = { MSPEC_SMALL }, TP(UINT32_MAX, UINT32_MAX), .ret = -EINVAL,
	.msg = "--tp 4294967295 --pp 4294967295 needs 18446744065119617025 cards, at most 4096 are supported",
};

FIXTURE_VARIANT_ADD(bad_plan, cards_too_few) {
	.m = { MSPEC_SMALL }, .o = { .tp = 2, .pp = 2, .cards = three_cards, .n_cards = 3 }, .ret = -EINVAL,
	.msg = "--cards lists 3 cards, --tp 2 --pp 2 needs 4",
};

FIXTURE_VARIANT_ADD(bad_plan, cards_too_many) {
	.m = { MSPEC_SMALL }, .o = { .tp = 1, .pp = 2, .cards = three_cards, .n_cards = 3 }, .ret = -EINVAL,
	.msg = "--cards lists 3 cards, --tp 1 --pp 2 needs 2",
};

FIXTURE_VARIANT_ADD(bad_plan, cards_duplicate) {
	.m = { MSPEC_SMALL }, .o = { .tp = 2, .pp = 2, .cards = dup_cards, .n_cards = 4 }, .ret = -EINVAL,
	.msg = "card 5 is listed twice in --cards",
};

FIXTURE_VARIANT_ADD(bad_plan, alignment) {
	.m = { MSPEC_SMALL }, .o = { .tp = 1, .pp = 1, .align = 96 }, .ret = -EINVAL,
	.msg = "alignment 96 is not a power of two",
};

FIXTURE_VARIANT_ADD(bad_plan, architecture) {
	.m = { MSPEC_SMALL, .arch = "gpt2" }, TP(1, 1), .ret = -EINVAL,
	.msg = "architecture 'gpt2' is not supported (only llama)",
};

FIXTURE_VARIANT_ADD(bad_plan, architecture_with_a_newline) {
	.m = { MSPEC_SMALL, .arch = "lla\nma" }, TP(1, 1), .ret = -EINVAL,
	.msg = "architecture 'lla?ma' is not supported (only llama)",
};

FIXTURE_VARIANT_ADD(bad_plan, no_architecture) {
	.m = { MSPEC_SMALL, .arch = "" }, TP(1, 1), .ret = -EINVAL,
	.msg = "missing metadata key general.architecture",
};

FIXTURE_VARIANT_ADD(bad_plan, no_block_count) {
	.m = { MSPEC_SMALL, .drop_key = "llama.block_count" }, TP(1, 1), .ret = -EINVAL,
	.msg = "missing metadata key llama.block_count",
};

FIXTURE_VARIANT_ADD(bad_plan, no_head_count) {
	.m = { MSPEC_SMALL, .drop_key = "llama.attention.head_count" }, TP(1, 1), .ret = -EINVAL,
	.msg = "missing metadata key llama.attention.head_count",
};

FIXTURE_VARIANT_ADD(bad_plan, block_count_a_string) {
	.m = { MSPEC_SMALL, .str_key = "llama.block_count" }, TP(1, 1), .ret = -EINVAL,
	.msg = "llama.block_count has type string, expected an integer",
};

FIXTURE_VARIANT_ADD(bad_plan, head_count_kv_an_array) {
	.m = { MSPEC_SMALL, .arr_key = "llama.attention.head_count_kv" }, TP(1, 1), .ret = -EINVAL,
	.msg = "llama.attention.head_count_kv is an array: per-layer values are not supported",
};

FIXTURE_VARIANT_ADD(bad_plan, block_count_0) {
	.m = { MSPEC_SMALL, .set = { { "llama.block_count", 0 } } }, TP(1, 1), .ret = -EINVAL,
	.msg = "llama.block_count is 0, must be 1..4294967295",
};

FIXTURE_VARIANT_ADD(bad_plan, head_count_not_a_multiple_of_head_count_kv) {
	.m = { MSPEC_SMALL, .set = { { "llama.attention.head_count_kv", 3 } } }, TP(1, 1), .ret = -EINVAL,
	.msg = "llama.attention.head_count 4 is not a multiple of llama.attention.head_count_kv 3",
};

FIXTURE_VARIANT_ADD(bad_plan, embedding_length_not_a_multiple_of_head_count) {
	.m = { MSPEC_SMALL, .heads_kv = 3, .set = { { "llama.attention.head_count", 3 } } }, TP(1, 1), .ret = -EINVAL,
	.msg = "llama.embedding_length 64 is not a multiple of llama.attention.head_count 3",
};

FIXTURE_VARIANT_ADD(bad_plan, pp_block_count) {
	.m = { MSPEC_SMALL }, TP(1, 4), .ret = -EINVAL,
	.msg = "--pp 4 exceeds llama.block_count 3 (a stage needs at least one layer)",
};

FIXTURE_VARIANT_ADD(bad_plan, tp_does_not_divide_head_count) {
	.m = { MSPEC_SMALL, .heads = 8, .heads_kv = 8 }, TP(3, 1), .ret = -EINVAL,
	.msg = "--tp 3 does not divide llama.attention.head_count 8",
};

FIXTURE_VARIANT_ADD(bad_plan, tp_does_not_divide_head_count_kv) {
	.m = { MSPEC_SMALL, .embd = 96, .heads = 24, .heads_kv = 8, .ff = 96 }, TP(3, 1), .ret = -EINVAL,
	.msg = "--tp 3 does not divide llama.attention.head_count_kv 8",
};

FIXTURE_VARIANT_ADD(bad_plan, tp_does_not_divide_feed_forward_length) {
	.m = { MSPEC_SMALL, .heads_kv = 4, .ff = 90 }, TP(4, 1), .ret = -EINVAL,
	.msg = "--tp 4 does not divide llama.feed_forward_length 90",
};

FIXTURE_VARIANT_ADD(bad_plan, tp_exceeds_the_vocabulary) {
	.m = { MSPEC_SMALL, .heads_kv = 4, .vocab = 3 }, TP(4, 1), .ret = -EINVAL,
	.msg = "--tp 4 exceeds the vocabulary size 3 (each rank needs a slice of output.weight)",
};

FIXTURE_VARIANT_ADD(bad_plan, missing_token_embd) {
	.m = { MSPEC_SMALL, .drop_tensor = "token_embd.weight" }, TP(1, 1), .ret = -EINVAL,
	.msg = "missing tensor 'token_embd.weight'",
};

FIXTURE_VARIANT_ADD(bad_plan, missing_ffn_up) {
	.m = { MSPEC_SMALL, .drop_tensor = "blk.1.ffn_up.weight" }, TP(1, 1), .ret = -EINVAL,
	.msg = "missing tensor 'blk.1.ffn_up.weight'",
};

FIXTURE_VARIANT_ADD(bad_plan, missing_output_norm) {
	.m = { MSPEC_SMALL, .drop_tensor = "output_norm.weight" }, TP(2, 1), .ret = -EINVAL,
	.msg = "missing tensor 'output_norm.weight'",
};

FIXTURE_VARIANT_ADD(bad_plan, block_count_beyond_the_blocks) {
	.m = { MSPEC_SMALL, .set = { { "llama.block_count", 4 } } }, TP(1, 1), .ret = -EINVAL,
	.msg = "missing tensor 'blk.3.attn_norm.weight'",
};

FIXTURE_VARIANT_ADD(bad_plan, blocks_beyond_block_count) {
	.m = { MSPEC_SMALL, .set = { { "llama.block_count", 2 } } }, TP(1, 1), .ret = -EINVAL,
	.msg = "unexpected tensor 'blk.2.attn_norm.weight': not part of a llama model",
};

FIXTURE_VARIANT_ADD(bad_plan, unexpected_tensor) {
	.m = { MSPEC_SMALL, .extra_tensor = "blk.0.attn_q.bias" }, TP(1, 1), .ret = -EINVAL,
	.msg = "unexpected tensor 'blk.0.attn_q.bias': not part of a llama model",
};

FIXTURE_VARIANT_ADD(bad_plan, attn_q_rows) {
	.m = { MSPEC_SMALL, .reshape = "blk.0.attn_q.weight", .reshape_nd = 2, .reshape_dims = { 64, 63 } }, TP(1, 1), .ret = -EINVAL,
	.msg = "tensor 'blk.0.attn_q.weight' has shape [64, 63], expected [64, 64]",
};

FIXTURE_VARIANT_ADD(bad_plan, attn_k_1_D) {
	.m = { MSPEC_SMALL, .reshape = "blk.2.attn_k.weight", .reshape_nd = 1, .reshape_dims = { 64 } }, TP(1, 1), .ret = -EINVAL,
	.msg = "tensor 'blk.2.attn_k.weight' has shape [64], expected [64, 32]",
};

FIXTURE_VARIANT_ADD(bad_plan, ffn_down_transposed) {
	.m = { MSPEC_SMALL, .reshape = "blk.1.ffn_down.weight", .reshape_nd = 2, .reshape_dims = { 64, 128 } }, TP(2, 1), .ret = -EINVAL,
	.msg = "tensor 'blk.1.ffn_down.weight' has shape [64, 128], expected [128, 64]",
};

FIXTURE_VARIANT_ADD(bad_plan, norm_length) {
	.m = { MSPEC_SMALL, .reshape = "blk.0.ffn_norm.weight", .reshape_nd = 1, .reshape_dims = { 63 } }, TP(1, 1), .ret = -EINVAL,
	.msg = "tensor 'blk.0.ffn_norm.weight' has shape [63], expected [64]",
};

FIXTURE_VARIANT_ADD(bad_plan, norm_2_D) {
	.m = { MSPEC_SMALL, .reshape = "output_norm.weight", .reshape_nd = 2, .reshape_dims = { 64, 2 } }, TP(1, 1), .ret = -EINVAL,
	.msg = "tensor 'output_norm.weight' has shape [64, 2], expected [64]",
};

FIXTURE_VARIANT_ADD(bad_plan, output_vocabulary) {
	.m = { MSPEC_SMALL, .reshape = "output.weight", .reshape_nd = 2, .reshape_dims = { 64, 49 } }, TP(1, 1), .ret = -EINVAL,
	.msg = "tensor 'output.weight' has shape [64, 49], expected [64, 50]",
};

FIXTURE_VARIANT_ADD(bad_plan, token_embd_width) {
	.m = { MSPEC_SMALL, .reshape = "token_embd.weight", .reshape_nd = 2, .reshape_dims = { 32, 50 } }, TP(1, 1), .ret = -EINVAL,
	.msg = "tensor 'token_embd.weight' has shape [32, 50], expected [64, 50]",
};

FIXTURE_VARIANT_ADD(bad_plan, rope_freqs_length) {
	.m = { MSPEC_SMALL, .rope_freqs = true, .reshape = "rope_freqs.weight", .reshape_nd = 1, .reshape_dims = { 16 } }, TP(1, 1), .ret = -EINVAL,
	.msg = "tensor 'rope_freqs.weight' has shape [16], expected [8]",
};

FIXTURE_VARIANT_ADD(bad_plan, q4_0_ffn_down_not_on_blocks) {
	.m = { MSPEC_SMALL, .ff = 96, .type = GGUF_TENSOR_Q4_0 }, TP(2, 1), .ret = -EINVAL,
	.msg = "tensor 'blk.0.ffn_down.weight': --tp 2 cuts its 96 columns into slices of 48, "
		"not a multiple of the q4_0 block size 32",
};

FIXTURE_VARIANT_ADD(bad_plan, q4_0_attn_output_not_on_blocks) {
	.m = { MSPEC_SMALL, .heads_kv = 4, .type = GGUF_TENSOR_Q4_0 }, TP(4, 1), .ret = -EINVAL,
	.msg = "tensor 'blk.0.attn_output.weight': --tp 4 cuts its 64 columns into slices of 16, "
		"not a multiple of the q4_0 block size 32",
};

TEST_F(bad_plan, refused)
{
	const char *path = tmp_path("bad.gguf");
	struct shard_plan *p = (void *)1;
	struct gguf_file *g;
	int r;

	ASSERT_EQ(0, write_model(path, &variant->m));
	ASSERT_EQ(0, gguf_open(path, &g, errbuf, sizeof(errbuf))) TH_LOG("gguf_open: %s", errbuf);
	r = shard_plan_build(g, &variant->o, &p, errbuf, sizeof(errbuf));
	ksft_print_msg("-> %s\n", r ? errbuf : "(planned)");
	gguf_close(g);
	if (!r)
		shard_plan_free(p);
	ASSERT_EQ(variant->ret, r);
	ASSERT_EQ(NULL, p);
	ASSERT_STREQ(variant->msg, errbuf);
}

/*
 * Random metadata against random tensors, all of which gguf_open()
 * accepts: the planner either makes a plan that verify() accepts or fails
 * with one line, and never crashes.
 */
TEST_F(planner, random_models)
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
		ASSERT_EQ(0, write_model(path, &m));
		r = plan(_metadata, path, &o, NULL, &p);
		if (r) {
			ASSERT_TRUE(r == -EINVAL && errbuf[0] && !strchr(errbuf, '\n'));
			refused++;
		} else {
			planned++;
		}
		shard_plan_free(p);
	}
	ksft_print_msg("%d planned, %d refused\n", planned, refused);
	ASSERT_TRUE(planned > 20 && refused > 20);
}

/* ---- printing ----------------------------------------------------------- */

/* the plan printed as text or JSON (tools/llmctl-print.c), or NULL */
static char *print_to_string(const struct shard_plan *p, bool json, bool verbose)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (!f)
		return NULL;
	print_init(f, json);
	shard_plan_print(p, verbose);
	ret = print_end();
	print_init(stdout, false);
	fclose(f);
	if (ret) {
		free(buf);
		return NULL;
	}
	return buf;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* every member of @v in @keys, of its type (docs in shard.h) */
static void check_members(struct __test_metadata *_metadata, struct json_object *v,
			  const char *what, const char *const *keys, const json_type *types)
{
	for (size_t i = 0; keys[i]; i++) {
		struct json_object *m = NULL;

		ASSERT_TRUE(json_object_object_get_ex(v, keys[i], &m))
			TH_LOG("%s: no member %s", what, keys[i]);
		ASSERT_TRUE(json_object_is_type(m, types[i]) ||
			    (types[i] == json_type_null && json_object_is_type(m, json_type_int)))
			TH_LOG("%s: %s is %s, expected %s", what, keys[i],
			       json_type_to_name(json_object_get_type(m)),
			       json_type_to_name(types[i]));
	}
}

#define I json_type_int
#define S json_type_string
#define B json_type_boolean
#define A json_type_array
#define O json_type_object
#define IN json_type_null	/* an integer or null */

TEST_F(planner, json)
{
	static const char *const top_keys[] = { "schema", "model", "tp", "pp", "alignment",
						"cards", NULL };
	static const json_type top_types[] = { S, O, I, I, I, A };
	static const char *const model_keys[] = {
		"architecture", "name", "block_count", "embedding_length",
		"feed_forward_length", "head_count", "head_count_kv", "key_length",
		"value_length", "vocab_size", "tied_embeddings", "tensor_bytes", NULL };
	static const json_type model_types[] = { S, S, I, I, I, I, I, I, I, I, B, I };
	static const char *const card_keys[] = {
		"card", "stage", "tp_rank", "tp_size", "layer_first", "layer_last",
		"embeddings", "head", "bytes", "need_bytes", "free_bytes", "data_bytes",
		"pieces", NULL };
	static const json_type card_types[] = { I, I, I, I, I, I, B, B, I, I, IN, I, A };
	static const char *const piece_keys[] = {
		"tensor", "index", "role", "layer", "type", "kind", "first", "count", "shape",
		"src_offset", "src_len", "src_stride", "src_count", "dst_offset", "bytes", NULL };
	static const json_type piece_types[] = { S, I, S, IN, S, S, I, I, A, I, I, I, I, I, I };
	static const uint32_t cards[] = { 9, 2, 4, 6 };
	static const uint64_t free_bytes[] = { 1ull << 30, 0, 0, 0 };
	struct mspec m = { MSPEC_SMALL, .name = "a \"q\" \\ \n\t \x01 \xff caf\xc3\xa9 \xe2\x96\x81" };
	const char *path = tmp_path("json.gguf");
	struct shard_opts o = { .tp = 2, .pp = 2, .cards = cards, .n_cards = 4,
				.free = free_bytes };
	struct json_object *j;
	struct shard_plan *p;
	bool ffn_down = false;
	char err[128];
	size_t k = 0;
	char *s;

	ASSERT_EQ(0, write_model(path, &m));
	ASSERT_EQ(0, plan(_metadata, path, &o, NULL, &p)) TH_LOG("%s", errbuf);
	s = print_to_string(p, true, false);
	ASSERT_NE(NULL, s);
	j = jparse(s, err, sizeof(err));
	ASSERT_NE(NULL, j) TH_LOG("not JSON (%s): %s", err, s);
	EXPECT_EQ(1, count_lines(s));	/* one object, one line */
	ASSERT_STREQ("llmdev.shard-plan/1", jstr(j, "schema"));
	check_members(_metadata, j, "plan", top_keys, top_types);
	check_members(_metadata, jget(j, "model"), "model", model_keys, model_types);
	/* the name as it was, but each invalid byte as U+FFFD */
	EXPECT_STREQ("a \"q\" \\ \n\t \x01 \xef\xbf\xbd caf\xc3\xa9 \xe2\x96\x81",
		     jstr(j, "model/name"));
	EXPECT_EQ(2, juint(j, "tp", 0));
	EXPECT_EQ(2, juint(j, "pp", 0));
	EXPECT_EQ(256, juint(j, "alignment", 0));
	EXPECT_EQ(3, juint(j, "model/block_count", 0));
	EXPECT_EQ(1ull << 30, juint(j, "cards/0/free_bytes", 0));
	EXPECT_TRUE(jnull(j, "cards/1/free_bytes"));
	/* the numbers are the plan's, in its order */
	ASSERT_EQ(4, jlen(j, "cards"));
	for (size_t i = 0; i < 4; i++) {
		const struct shard_card *c = &p->cards[i];
		struct json_object *jc = jat(j, "cards", i);

		check_members(_metadata, jc, "card", card_keys, card_types);
		EXPECT_EQ(cards[i], juint(jc, "card", 99));
		EXPECT_EQ(c->need, juint(jc, "need_bytes", 0));
		ASSERT_EQ(c->n_pieces, (size_t)jlen(jc, "pieces"));
		for (size_t n = 0; n < c->n_pieces; n++, k++) {
			const struct shard_piece *pc = &c->pieces[n];
			struct json_object *jp = jat(jc, "pieces", n);

			check_members(_metadata, jp, "piece", piece_keys, piece_types);
			EXPECT_STREQ(pc->name, jstr(jp, "tensor"));
			EXPECT_EQ(pc->src_offset, juint(jp, "src_offset", 0));
			EXPECT_EQ(pc->dst_offset, juint(jp, "dst_offset", 1));
			EXPECT_EQ(pc->ne[1], juint(jp, "shape/1", 0));
			if (pc->layer < 0) {
				EXPECT_TRUE(jnull(jp, "layer"));
			} else {
				EXPECT_EQ(pc->layer, jint(jp, "layer", -1));
			}
			if (pc->role == SHARD_ROLE_FFN_DOWN && pc->layer == 2) {
				EXPECT_STREQ("f32", jstr(jp, "type"));
				EXPECT_STREQ("cols", jstr(jp, "kind"));
				ffn_down = true;
			}
		}
	}
	EXPECT_TRUE(ffn_down);
	json_object_put(j);
	free(s);

	/* what the tests read JSON with refuses what is not strict JSON */
	EXPECT_EQ(NULL, jparse("{\"a\":1,}", NULL, 0));
	EXPECT_EQ(NULL, jparse("{\"a\":01}", NULL, 0));
	EXPECT_EQ(NULL, jparse("[1] x", NULL, 0));
	EXPECT_EQ(NULL, jparse("[\"\xff\"]", NULL, 0));
	EXPECT_EQ(NULL, jparse("[1,]", NULL, 0));
	EXPECT_EQ(NULL, jparse("{\"a\":", NULL, 0));
	EXPECT_EQ(NULL, jparse("\"a\"", NULL, 0));
	j = jparse(" {\"a\":[1,{\"b\":\"\\ud83d\\ude00\"}],\"c\":null,\"d\":-1} \n", NULL, 0);
	ASSERT_NE(NULL, j);
	EXPECT_EQ(1, juint(j, "a/0", 9));
	EXPECT_STREQ("\xf0\x9f\x98\x80", jstr(j, "a/1/b"));
	EXPECT_TRUE(jnull(j, "c"));
	EXPECT_EQ(9, juint(j, "d", 9));		/* not a uint */
	EXPECT_EQ(-1, jint(j, "d", 9));
	EXPECT_EQ(NULL, jget(j, "a/2"));
	EXPECT_EQ(NULL, jstr(j, "a/0"));	/* not a string */
	json_object_put(j);

	/* the table: two header lines, the column names, a line per card */
	s = print_to_string(p, false, false);
	ASSERT_NE(NULL, s);
	ksft_print_msg("%.*s\n", (int)(strchr(s, '\n') - s), s);
	EXPECT_EQ(3 + 4, count_lines(s));
	EXPECT_NE(NULL, strstr(s, "\\x0a"));	/* the name's newline, escaped */
	EXPECT_NE(NULL, strstr(s, "\\x5c"));	/* and its backslash */
	free(s);
	/* verbose: and a line per piece */
	s = print_to_string(p, false, true);
	ASSERT_NE(NULL, s);
	k = 0;
	for (size_t i = 0; i < p->n_cards; i++)
		k += p->cards[i].n_pieces;
	EXPECT_EQ(3 + 4 + k, count_lines(s));
	EXPECT_NE(NULL, strstr(s, "blk.2.ffn_down.weight #"));
	free(s);
	ASSERT_TRUE(!strcmp(shard_kind_name(SHARD_COLS), "cols"));
	ASSERT_TRUE(!strcmp(shard_role_name(SHARD_ROLE_COUNT), "?"));
	shard_plan_free(p);
}

#undef I
#undef S
#undef B
#undef A
#undef O
#undef IN

/* ---- card order --------------------------------------------------------- */

/* cable card a to card b (both ways) in the n x n matrix @m */
static void cable(bool *m, uint32_t n, uint32_t a, uint32_t b)
{
	m[a * n + b] = true;
	m[b * n + a] = true;
}

/* every hop of @cards is in @m and no card is used twice */
static void check_order(struct __test_metadata *_metadata, const bool *m, uint32_t n,
			uint32_t tp, uint32_t pp, const uint32_t *cards)
{
	bool used[64] = { false };

	for (uint32_t i = 0; i < tp * pp; i++) {
		ASSERT_TRUE(cards[i] < n && !used[cards[i]]);
		used[cards[i]] = true;
		if (i >= tp) {
			ASSERT_TRUE(m[cards[i - tp] * n + cards[i]]);
		}
	}
}

TEST_F(planner, card_order)
{
	bool ring4[16] = { false }, ring8[64] = { false }, line3[9] = { false };
	bool none[16] = { false }, full[64];
	uint32_t c[64];

	/* the VM's default cabling: a ring 0-1-2-3-0 */
	for (uint32_t i = 0; i < 4; i++)
		cable(ring4, 4, i, (i + 1) % 4);
	ASSERT_TRUE(!shard_order_cards(2, 2, 4, ring4, c));
	ASSERT_TRUE(c[0] == 0 && c[1] == 1 && c[2] == 3 && c[3] == 2);
	check_order(_metadata, ring4, 4, 2, 2, c);
	ASSERT_TRUE(!shard_order_cards(1, 4, 4, ring4, c));
	ASSERT_TRUE(c[0] == 0 && c[1] == 1 && c[2] == 2 && c[3] == 3);
	ASSERT_TRUE(!shard_order_cards(4, 1, 4, none, c));	/* no hops: 0..3 */
	ASSERT_TRUE(c[0] == 0 && c[1] == 1 && c[2] == 2 && c[3] == 3);
	ASSERT_TRUE(!shard_order_cards(1, 2, 4, ring4, c));
	ASSERT_TRUE(c[0] == 0 && c[1] == 1);
	ASSERT_TRUE(shard_order_cards(2, 2, 4, none, c) == -ENOENT);
	/* tp 4 x pp 2 on a ring of 8 */
	for (uint32_t i = 0; i < 8; i++)
		cable(ring8, 8, i, (i + 1) % 8);
	ASSERT_TRUE(!shard_order_cards(4, 2, 8, ring8, c));
	check_order(_metadata, ring8, 8, 4, 2, c);
	ASSERT_TRUE(!shard_order_cards(2, 4, 8, ring8, c));
	check_order(_metadata, ring8, 8, 2, 4, c);
	/* a line 0-1-2: pp 3 has to start at an end */
	cable(line3, 3, 0, 1);
	cable(line3, 3, 1, 2);
	ASSERT_TRUE(!shard_order_cards(1, 3, 3, line3, c));
	ASSERT_TRUE(c[0] == 0 && c[1] == 1 && c[2] == 2);
	cable(line3, 3, 0, 2);		/* now a triangle */
	ASSERT_TRUE(!shard_order_cards(1, 3, 3, line3, c));
	check_order(_metadata, line3, 3, 1, 3, c);
	/* bad layouts */
	ASSERT_TRUE(shard_order_cards(3, 2, 4, ring4, c) == -EINVAL);
	ASSERT_TRUE(shard_order_cards(0, 2, 4, ring4, c) == -EINVAL);
	ASSERT_TRUE(shard_order_cards(2, 0, 4, ring4, c) == -EINVAL);
	ASSERT_TRUE(shard_order_cards(SHARD_MAX_CARDS, 2, UINT32_MAX, ring4, c) == -EINVAL);
	/* no order among 40 unlinked cards: the search ends (its budget) */
	bool *big = calloc(40 * 40, sizeof(*big));

	ASSERT_TRUE(big);
	ASSERT_TRUE(shard_order_cards(20, 2, 40, big, c) == -ENOENT);
	free(big);
	/* fully connected 8 cards: the identity order */
	for (uint32_t i = 0; i < 64; i++)
		full[i] = i % 9 != 0;
	ASSERT_TRUE(!shard_order_cards(2, 4, 8, full, c));
	for (uint32_t i = 0; i < 8; i++) {
		ASSERT_TRUE(c[i] == i);
	}
}

TEST_HARNESS_MAIN
