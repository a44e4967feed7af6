// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the GGUF reader and writer (tools/gguf.c, gguf-write.c).
 * Prints TAP; exit 0 if every test passed.
 *
 * Round trips go through the writer and the llama generator gguf-gen uses.
 * The malformed files are built field by field with a separate raw
 * serializer (struct raw), so that they do not depend on the code under
 * test, and each must be refused with the expected errno and message.
 * A baseline built the same way must be accepted (raw_valid), so each
 * malformed case differs from a good file by its one defect.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf-write.h"

static char tmpdir[] = "/tmp/gguf-test.XXXXXX";
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

static int write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, p, n);
	close(fd);
	return r == (ssize_t)n ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		return NULL;
	p = malloc(st.st_size ? st.st_size : 1);
	if (p && read(fd, p, st.st_size) != st.st_size) {
		free(p);
		p = NULL;
	}
	close(fd);
	*n = st.st_size;
	return p;
}

/* open @path expecting failure @ret with @frag in the message */
static int expect_fail(const char *path, int ret, const char *frag)
{
	struct gguf_file *f;
	int r = gguf_open(path, &f, errbuf, sizeof(errbuf));

	printf("# -> %s\n", r ? errbuf : "(accepted)");
	if (!r) {
		gguf_close(f);
		printf("# accepted; expected %d '%s'\n", ret, frag);
		return 1;
	}
	if (r != ret || !strstr(errbuf, frag) || strchr(errbuf, '\n')) {
		printf("# got %d, expected %d '%s'\n", r, ret, frag);
		return 1;
	}
	return 0;
}

/* ---- type table --------------------------------------------------------- */

static int test_type_table(void)
{
	static const struct { uint32_t type; const char *name; uint32_t bs, ts; } want[] = {
		{ GGUF_TENSOR_F32, "f32", 1, 4 },	{ GGUF_TENSOR_F16, "f16", 1, 2 },
		{ GGUF_TENSOR_BF16, "bf16", 1, 2 },	{ GGUF_TENSOR_F64, "f64", 1, 8 },
		{ GGUF_TENSOR_I8, "i8", 1, 1 },		{ GGUF_TENSOR_I16, "i16", 1, 2 },
		{ GGUF_TENSOR_I32, "i32", 1, 4 },	{ GGUF_TENSOR_I64, "i64", 1, 8 },
		{ GGUF_TENSOR_Q4_0, "q4_0", 32, 18 },	{ GGUF_TENSOR_Q4_1, "q4_1", 32, 20 },
		{ GGUF_TENSOR_Q5_0, "q5_0", 32, 22 },	{ GGUF_TENSOR_Q5_1, "q5_1", 32, 24 },
		{ GGUF_TENSOR_Q8_0, "q8_0", 32, 34 },	{ GGUF_TENSOR_Q8_1, "q8_1", 32, 36 },
		{ GGUF_TENSOR_Q2_K, "q2_K", 256, 84 },	{ GGUF_TENSOR_Q3_K, "q3_K", 256, 110 },
		{ GGUF_TENSOR_Q4_K, "q4_K", 256, 144 },	{ GGUF_TENSOR_Q5_K, "q5_K", 256, 176 },
		{ GGUF_TENSOR_Q6_K, "q6_K", 256, 210 },	{ GGUF_TENSOR_Q8_K, "q8_K", 256, 292 },
		{ GGUF_TENSOR_IQ4_NL, "iq4_nl", 32, 18 }, { GGUF_TENSOR_IQ4_XS, "iq4_xs", 256, 136 },
		{ GGUF_TENSOR_MXFP4, "mxfp4", 32, 17 },
	};
	static const uint32_t unknown[] = { 4, 5, 31, 32, 33, 36, 37, 38,
					    GGUF_TENSOR_TYPE_COUNT, UINT32_MAX };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct gguf_type_info *ti = gguf_type_info(want[i].type);

		CHECK(ti);
		CHECK(!strcmp(ti->name, want[i].name));
		CHECK_EQ(ti->block_size, want[i].bs);
		CHECK_EQ(ti->type_size, want[i].ts);
	}
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		CHECK(!gguf_type_info(unknown[i]));
	for (uint32_t t = 0; t < GGUF_TENSOR_TYPE_COUNT; t++) {
		const struct gguf_type_info *ti = gguf_type_info(t);

		if (ti)
			CHECK_EQ(gguf_type_by_name(ti->name), t);
	}
	CHECK_EQ(gguf_type_by_name("Q8_0"), GGUF_TENSOR_Q8_0);
	CHECK(gguf_type_by_name("q9_0") == -1);
	CHECK(!strcmp(gguf_value_type_name(GGUF_TYPE_FLOAT64), "float64"));
	CHECK(!strcmp(gguf_value_type_name(GGUF_TYPE_COUNT), "?"));
	return 0;
}

static int test_tensor_bytes(void)
{
	uint64_t n, size;

	CHECK(!gguf_tensor_bytes(GGUF_TENSOR_Q4_K, 2, (uint64_t[]){ 512, 3 }, &n, &size));
	CHECK_EQ(n, 1536);
	CHECK_EQ(size, 2 * 3 * 144);
	CHECK(!gguf_tensor_bytes(GGUF_TENSOR_F16, 4, (uint64_t[]){ 2, 3, 5, 7 }, &n, &size));
	CHECK_EQ(size, 2 * 210);
	CHECK(gguf_tensor_bytes(GGUF_TENSOR_Q8_0, 1, (uint64_t[]){ 33 }, NULL, &size) == -EINVAL);
	CHECK(gguf_tensor_bytes(4, 1, (uint64_t[]){ 32 }, NULL, &size) == -EINVAL);
	CHECK(gguf_tensor_bytes(GGUF_TENSOR_F32, 0, (uint64_t[]){ 1 }, NULL, &size) == -EINVAL);
	CHECK(gguf_tensor_bytes(GGUF_TENSOR_F32, 5, (uint64_t[]){ 1, 1, 1, 1, 1 }, NULL,
				&size) == -EINVAL);
	CHECK(gguf_tensor_bytes(GGUF_TENSOR_F32, 2, (uint64_t[]){ 1, 0 }, NULL, &size) == -EINVAL);
	CHECK(gguf_tensor_bytes(GGUF_TENSOR_F32, 2, (uint64_t[]){ 1ull << 32, 1ull << 31 },
				NULL, &size) == -EOVERFLOW);
	CHECK(gguf_tensor_bytes(GGUF_TENSOR_F32, 1, (uint64_t[]){ 1ull << 62 }, NULL,
				&size) == -EOVERFLOW);
	return 0;
}

/* ---- writer round trip -------------------------------------------------- */

struct kv_case {
	const char *key;
	uint32_t type;
	union {
		uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32;
		int32_t i32; float f32; uint64_t u64; int64_t i64; double f64;
		const char *s;
	} v;
};

static const struct kv_case scalars[] = {
	{ "general.alignment", GGUF_TYPE_UINT32, { .u32 = 64 } },
	{ "t.u8", GGUF_TYPE_UINT8, { .u8 = 200 } },
	{ "t.i8", GGUF_TYPE_INT8, { .i8 = -100 } },
	{ "t.u16", GGUF_TYPE_UINT16, { .u16 = 60000 } },
	{ "t.i16", GGUF_TYPE_INT16, { .i16 = -30000 } },
	{ "t.u32", GGUF_TYPE_UINT32, { .u32 = 4000000000u } },
	{ "t.i32", GGUF_TYPE_INT32, { .i32 = -2000000000 } },
	{ "t.f32", GGUF_TYPE_FLOAT32, { .f32 = -3.25f } },
	{ "t.bool", GGUF_TYPE_BOOL, { .u8 = 1 } },
	{ "t.str", GGUF_TYPE_STRING, { .s = "hello, \"world\" \xe2\x96\x81\n" } },
	{ "t.empty", GGUF_TYPE_STRING, { .s = "" } },
	{ "t.u64", GGUF_TYPE_UINT64, { .u64 = (1ull << 63) + 5 } },
	{ "t.i64", GGUF_TYPE_INT64, { .i64 = -(1ll << 62) - 3 } },
	{ "t.f64", GGUF_TYPE_FLOAT64, { .f64 = 1e300 } },
};

static const uint8_t a_u8[] = { 0, 1, 255 };
static const int8_t a_i8[] = { -128, 0, 127 };
static const uint16_t a_u16[] = { 0, 65535, 7 };
static const int16_t a_i16[] = { -32768, 32767, -1 };
static const uint32_t a_u32[] = { 0, UINT32_MAX, 12345 };
static const int32_t a_i32[] = { INT32_MIN, INT32_MAX, -1 };
static const float a_f32[] = { 0.5f, -1e30f, 1e-30f };
static const uint8_t a_bool[] = { 1, 0, 1 };
static const uint64_t a_u64[] = { 0, UINT64_MAX, 1ull << 40 };
static const int64_t a_i64[] = { INT64_MIN, INT64_MAX, -7 };
static const double a_f64[] = { 0.1, -2.5e-300, 4e300 };
static const char *const a_str[] = { "a", "", "\xe2\x96\x81tok", "<0x0A>" };

static const struct {
	const char *key;
	uint32_t elem_type;
	const void *elems;
	uint64_t n;
	size_t size;
} arrays[] = {
	{ "a.u8", GGUF_TYPE_UINT8, a_u8, 3, 1 },
	{ "a.i8", GGUF_TYPE_INT8, a_i8, 3, 1 },
	{ "a.u16", GGUF_TYPE_UINT16, a_u16, 3, 2 },
	{ "a.i16", GGUF_TYPE_INT16, a_i16, 3, 2 },
	{ "a.u32", GGUF_TYPE_UINT32, a_u32, 3, 4 },
	{ "a.i32", GGUF_TYPE_INT32, a_i32, 3, 4 },
	{ "a.f32", GGUF_TYPE_FLOAT32, a_f32, 3, 4 },
	{ "a.bool", GGUF_TYPE_BOOL, a_bool, 3, 1 },
	{ "a.u64", GGUF_TYPE_UINT64, a_u64, 3, 8 },
	{ "a.i64", GGUF_TYPE_INT64, a_i64, 3, 8 },
	{ "a.f64", GGUF_TYPE_FLOAT64, a_f64, 3, 8 },
	{ "a.str", GGUF_TYPE_STRING, a_str, 4, 0 },
	{ "a.empty", GGUF_TYPE_UINT32, a_u32, 0, 4 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static uint8_t pattern(size_t tensor, uint64_t i)
{
	return (uint8_t)(i * 7 + tensor * 13 + (i >> 8));
}

/* one tensor of every known type, then F32 tensors of 1..4 dimensions */
struct rt_tensor {
	char name[32];
	uint32_t type, n_dims;
	uint64_t dims[4], size;
};

static size_t rt_tensors(struct rt_tensor *t)
{
	size_t n = 0;

	for (uint32_t ty = 0; ty < GGUF_TENSOR_TYPE_COUNT; ty++) {
		const struct gguf_type_info *ti = gguf_type_info(ty);

		if (!ti)
			continue;
		snprintf(t[n].name, sizeof(t[n].name), "w.%s", ti->name);
		t[n].type = ty;
		t[n].n_dims = 2;
		t[n].dims[0] = ti->block_size * 2;
		t[n].dims[1] = 3;
		n++;
	}
	for (uint32_t d = 1; d <= 4; d++) {
		snprintf(t[n].name, sizeof(t[n].name), "dims%u", d);
		t[n].type = GGUF_TENSOR_F32;
		t[n].n_dims = d;
		for (uint32_t i = 0; i < d; i++)
			t[n].dims[i] = i + 2;
		n++;
	}
	for (size_t i = 0; i < n; i++)
		gguf_tensor_bytes(t[i].type, t[i].n_dims, t[i].dims, NULL, &t[i].size);
	return n;
}

static int write_all_types(const char *path)
{
	struct rt_tensor t[GGUF_TENSOR_TYPE_COUNT + 4];
	size_t nt = rt_tensors(t);
	struct gguf_writer *w;
	int ret;

	if (gguf_writer_open(path, &w, errbuf, sizeof(errbuf)))
		return -1;
	for (size_t i = 0; i < N(scalars); i++)
		gguf_writer_add(w, scalars[i].key, scalars[i].type, &scalars[i].v);
	for (size_t i = 0; i < N(arrays); i++)
		gguf_writer_add_array(w, arrays[i].key, arrays[i].elem_type, arrays[i].elems,
				      arrays[i].n);
	for (size_t i = 0; i < nt; i++)
		gguf_writer_add_tensor(w, t[i].name, t[i].type, t[i].n_dims, t[i].dims);
	gguf_writer_begin_data(w);
	for (size_t i = 0; i < nt; i++) {
		/* in odd pieces, to cross the writer's tensor boundaries */
		for (uint64_t off = 0; off < t[i].size;) {
			uint8_t buf[37];
			size_t n = t[i].size - off < sizeof(buf) ? t[i].size - off : sizeof(buf);

			for (size_t j = 0; j < n; j++)
				buf[j] = pattern(i, off + j);
			gguf_writer_write(w, buf, n);
			off += n;
		}
	}
	ret = gguf_writer_close(w);
	if (ret)
		printf("# writer: %s\n", errbuf);
	return ret;
}

static int check_scalar(const struct gguf_kv *kv, const struct kv_case *c)
{
	CHECK(!strcmp(kv->key, c->key));
	CHECK_EQ(kv->type, c->type);
	CHECK_EQ(kv->elem_type, c->type);
	CHECK_EQ(kv->n, 1);
	switch (c->type) {
	case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: CHECK_EQ(kv->v.u, c->v.u8); break;
	case GGUF_TYPE_INT8:	CHECK(kv->v.i == c->v.i8); break;
	case GGUF_TYPE_UINT16:	CHECK_EQ(kv->v.u, c->v.u16); break;
	case GGUF_TYPE_INT16:	CHECK(kv->v.i == c->v.i16); break;
	case GGUF_TYPE_UINT32:	CHECK_EQ(kv->v.u, c->v.u32); break;
	case GGUF_TYPE_INT32:	CHECK(kv->v.i == c->v.i32); break;
	case GGUF_TYPE_UINT64:	CHECK_EQ(kv->v.u, c->v.u64); break;
	case GGUF_TYPE_INT64:	CHECK(kv->v.i == c->v.i64); break;
	case GGUF_TYPE_FLOAT32:	CHECK(kv->v.f == c->v.f32); break;
	case GGUF_TYPE_FLOAT64:	CHECK(kv->v.f == c->v.f64); break;
	case GGUF_TYPE_STRING:
		CHECK_EQ(kv->v.str.len, strlen(c->v.s));
		CHECK(!strcmp(kv->v.str.s, c->v.s));
		break;
	default:
		CHECK(0);
	}
	return 0;
}

static int check_all_types(const char *path, uint32_t version)
{
	struct rt_tensor t[GGUF_TENSOR_TYPE_COUNT + 4];
	size_t nt = rt_tensors(t);
	struct gguf_file *f;
	const struct gguf_kv *kv;
	const void *elems;
	const char *s;
	uint64_t n, u64, end = 0;
	uint32_t u32;
	float f32;

	if (gguf_open(path, &f, errbuf, sizeof(errbuf))) {
		printf("# open: %s\n", errbuf);
		return 1;
	}
	CHECK_EQ(gguf_version(f), version);
	CHECK_EQ(gguf_alignment(f), 64);
	CHECK_EQ(gguf_kv_count(f), N(scalars) + N(arrays));
	for (size_t i = 0; i < N(scalars); i++) {
		CHECK(!check_scalar(gguf_kv(f, i), &scalars[i]));
		CHECK(gguf_find_kv(f, scalars[i].key) == gguf_kv(f, i));
	}
	for (size_t i = 0; i < N(arrays); i++) {
		kv = gguf_kv(f, N(scalars) + i);
		CHECK(kv && !strcmp(kv->key, arrays[i].key));
		CHECK_EQ(kv->type, GGUF_TYPE_ARRAY);
		CHECK_EQ(kv->elem_type, arrays[i].elem_type);
		CHECK_EQ(kv->n, arrays[i].n);
		CHECK(!gguf_get_array(f, arrays[i].key, arrays[i].elem_type, &elems, &n));
		CHECK(elems == kv->v.arr && n == arrays[i].n);
		if (arrays[i].elem_type != GGUF_TYPE_STRING) {
			CHECK(!memcmp(elems, arrays[i].elems, n * arrays[i].size));
			continue;
		}
		for (uint64_t j = 0; j < n; j++) {
			const struct gguf_str *gs = (const struct gguf_str *)elems + j;

			CHECK_EQ(gs->len, strlen(a_str[j]));
			CHECK(!strcmp(gs->s, a_str[j]));
		}
	}
	CHECK(!gguf_kv(f, N(scalars) + N(arrays)));
	CHECK(!gguf_find_kv(f, "t.missing"));
	CHECK(!gguf_find_kv(f, ""));

	/* typed getters: the type must match exactly */
	CHECK(!gguf_get_u32(f, "t.u32", &u32) && u32 == 4000000000u);
	CHECK(!gguf_get_u64(f, "t.u64", &u64) && u64 == (1ull << 63) + 5);
	CHECK(!gguf_get_f32(f, "t.f32", &f32) && f32 == -3.25f);
	CHECK(!gguf_get_str(f, "t.str", &s) && !strcmp(s, scalars[9].v.s));
	CHECK(gguf_get_u32(f, "t.missing", &u32) == -ENOENT);
	CHECK(gguf_get_u64(f, "t.u32", &u64) == -EINVAL);
	CHECK(gguf_get_u32(f, "t.u16", &u32) == -EINVAL);
	CHECK(gguf_get_f32(f, "t.f64", &f32) == -EINVAL);
	CHECK(gguf_get_str(f, "a.str", &s) == -EINVAL);
	CHECK(gguf_get_array(f, "a.str", GGUF_TYPE_UINT8, &elems, &n) == -EINVAL);
	CHECK(gguf_get_array(f, "t.str", GGUF_TYPE_STRING, &elems, &n) == -EINVAL);
	CHECK(gguf_get_array(f, "a.none", GGUF_TYPE_STRING, &elems, &n) == -ENOENT);

	CHECK_EQ(gguf_tensor_count(f), nt);
	CHECK_EQ(gguf_data_offset(f) % 64, 0);
	for (size_t i = 0; i < nt; i++) {
		const struct gguf_tensor *g = gguf_tensor(f, i);
		uint8_t buf[100];
		uint64_t off;
		ssize_t r;

		CHECK(g && !strcmp(g->name, t[i].name));
		CHECK(gguf_find_tensor(f, t[i].name) == g);
		CHECK_EQ(g->type, t[i].type);
		CHECK_EQ(g->n_dims, t[i].n_dims);
		for (uint32_t d = 0; d < 4; d++)
			CHECK_EQ(g->dims[d], d < t[i].n_dims ? t[i].dims[d] : 1);
		CHECK_EQ(g->size, t[i].size);
		CHECK_EQ(g->offset, end);	/* back to back, padded */
		CHECK_EQ(g->file_offset, gguf_data_offset(f) + g->offset);
		end = (g->offset + g->size + 63) & ~63ull;
		/* the data, in pieces that do not divide the size */
		for (off = 0; (r = gguf_read_data(f, g, off, buf, sizeof(buf))) > 0; off += r)
			for (ssize_t j = 0; j < r; j++)
				CHECK_EQ(buf[j], pattern(i, off + j));
		CHECK(r == 0 && off == g->size);
		CHECK(gguf_read_data(f, g, g->size + 5, buf, 1) == 0);
	}
	CHECK(!gguf_tensor(f, nt));
	CHECK(!gguf_find_tensor(f, "w.nope"));
	CHECK_EQ(gguf_file_size(f), gguf_data_offset(f) + end);
	gguf_close(f);
	return 0;
}

static int test_roundtrip_all_types(void)
{
	const char *path = tmp_path("all.gguf");

	CHECK(!write_all_types(path));
	return check_all_types(path, 3);
}

/* version 2 has the same layout for little-endian files */
static int test_roundtrip_v2(void)
{
	const char *path = tmp_path("all.gguf"), *v2 = tmp_path("v2.gguf");
	size_t n;
	uint8_t *p = read_file(path, &n);

	CHECK(p && n > 8);
	p[4] = 2;
	CHECK(!write_file(v2, p, n));
	free(p);
	return check_all_types(v2, 2);
}

static int test_writer_errors(void)
{
	const char *path = tmp_path("werr.gguf");
	struct gguf_writer *w;
	uint8_t b[64] = { 0 };

	CHECK(gguf_writer_open(tmp_path("nodir/x.gguf"), &w, errbuf, sizeof(errbuf)) == -ENOENT);
	/* bad tensor shape; later calls keep the first error */
	CHECK(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	CHECK(gguf_writer_add_tensor(w, "x", GGUF_TENSOR_Q8_0, 1, (uint64_t[]){ 31 }) == -EINVAL);
	CHECK(strstr(errbuf, "tensor 'x'"));
	CHECK(gguf_writer_close(w) == -EINVAL);
	/* too much data, too little data, metadata after tensors */
	CHECK(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	CHECK(!gguf_writer_add_tensor(w, "x", GGUF_TENSOR_F32, 1, (uint64_t[]){ 8 }));
	CHECK(gguf_writer_add(w, "k", GGUF_TYPE_UINT8, b) == -EINVAL);
	CHECK(gguf_writer_close(w) == -EINVAL);
	CHECK(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	CHECK(!gguf_writer_add_tensor(w, "x", GGUF_TENSOR_F32, 1, (uint64_t[]){ 8 }));
	CHECK(!gguf_writer_begin_data(w));
	CHECK(gguf_writer_write(w, b, 33) == -EINVAL);
	CHECK(strstr(errbuf, "beyond the last tensor"));
	CHECK(gguf_writer_close(w) == -EINVAL);
	CHECK(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	CHECK(!gguf_writer_add_tensor(w, "x", GGUF_TENSOR_F32, 1, (uint64_t[]){ 8 }));
	CHECK(!gguf_writer_begin_data(w));
	CHECK(!gguf_writer_write(w, b, 31));
	CHECK(gguf_writer_close(w) == -EINVAL);
	CHECK(strstr(errbuf, "31 of 32 bytes"));
	/* a power-of-two alignment only */
	CHECK(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	CHECK(gguf_writer_add(w, "general.alignment", GGUF_TYPE_UINT32, &(uint32_t){ 48 }) == -EINVAL);
	CHECK(gguf_writer_close(w) == -EINVAL);
	/* an empty file: header only, valid */
	CHECK(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	CHECK(!gguf_writer_close(w));
	{
		struct gguf_file *f;

		CHECK(!gguf_open(path, &f, errbuf, sizeof(errbuf)));
		CHECK(gguf_kv_count(f) == 0 && gguf_tensor_count(f) == 0);
		gguf_close(f);
	}
	return 0;
}

/* ---- the llama model ---------------------------------------------------- */

static struct gguf_llama_params small_params(uint32_t type)
{
	struct gguf_llama_params p = GGUF_LLAMA_DEFAULTS;

	p.layers = 3;
	p.embd = 64;
	p.heads = 4;
	p.heads_kv = 2;
	p.ff = 96;
	p.vocab = 300;
	p.type = type;
	p.seed = 42;
	return p;
}

static int check_u32(struct gguf_file *f, const char *key, uint32_t want)
{
	uint32_t v;

	if (gguf_get_u32(f, key, &v) || v != want) {
		printf("# %s: expected %u\n", key, want);
		return 1;
	}
	return 0;
}

static int check_shape(struct gguf_file *f, const char *name, uint32_t type,
		       uint64_t d0, uint64_t d1)
{
	const struct gguf_tensor *t = gguf_find_tensor(f, name);

	if (!t || t->type != type || t->n_dims != (d1 ? 2u : 1u) ||
	    t->dims[0] != d0 || t->dims[1] != (d1 ? d1 : 1)) {
		printf("# tensor %s: missing or wrong shape/type\n", name);
		return 1;
	}
	return 0;
}

static int llama_roundtrip(uint32_t type)
{
	struct gguf_llama_params p = small_params(type);
	const char *path = tmp_path("llama.gguf");
	const struct gguf_str *tok;
	const void *elems;
	struct gguf_file *f;
	uint64_t n, end = 0;
	const char *s;
	float eps;
	uint32_t kv = p.embd / p.heads * p.heads_kv;
	char name[64];

	if (gguf_llama_write(path, &p, errbuf, sizeof(errbuf)) ||
	    gguf_open(path, &f, errbuf, sizeof(errbuf))) {
		printf("# %s\n", errbuf);
		return 1;
	}
	CHECK(!gguf_get_str(f, "general.architecture", &s) && !strcmp(s, "llama"));
	CHECK(!gguf_get_str(f, "general.name", &s) && !strcmp(s, p.name));
	CHECK(!check_u32(f, "general.alignment", 32));
	CHECK(!check_u32(f, "llama.context_length", p.ctx));
	CHECK(!check_u32(f, "llama.embedding_length", p.embd));
	CHECK(!check_u32(f, "llama.block_count", p.layers));
	CHECK(!check_u32(f, "llama.feed_forward_length", p.ff));
	CHECK(!check_u32(f, "llama.attention.head_count", p.heads));
	CHECK(!check_u32(f, "llama.attention.head_count_kv", p.heads_kv));
	CHECK(!check_u32(f, "llama.rope.dimension_count", p.embd / p.heads));
	CHECK(!gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f);
	CHECK(!gguf_get_str(f, "tokenizer.ggml.model", &s) && !strcmp(s, "llama"));
	CHECK(!gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &elems, &n));
	CHECK_EQ(n, p.vocab);
	tok = elems;
	CHECK(!strcmp(tok[0].s, "<unk>") && !strcmp(tok[1].s, "<s>") &&
	      !strcmp(tok[3].s, "<0x00>") && !strcmp(tok[258].s, "<0xFF>"));
	CHECK(!gguf_get_array(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &elems, &n));
	CHECK_EQ(n, p.vocab);
	CHECK(!gguf_get_array(f, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &elems, &n));
	CHECK_EQ(n, p.vocab);

	CHECK_EQ(gguf_tensor_count(f), 3 + 9 * p.layers);
	CHECK(!check_shape(f, "token_embd.weight", type, p.embd, p.vocab));
	CHECK(!check_shape(f, "output_norm.weight", GGUF_TENSOR_F32, p.embd, 0));
	CHECK(!check_shape(f, "output.weight", type, p.embd, p.vocab));
	for (uint32_t l = 0; l < p.layers; l++) {
		static const char *const sq[] = { "attn_q", "attn_output" };
		static const char *const kvn[] = { "attn_k", "attn_v" };
		static const char *const up[] = { "ffn_gate", "ffn_up" };
		static const char *const norm[] = { "attn_norm", "ffn_norm" };

		for (int i = 0; i < 2; i++) {
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, sq[i]);
			CHECK(!check_shape(f, name, type, p.embd, p.embd));
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, kvn[i]);
			CHECK(!check_shape(f, name, type, p.embd, kv));
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, up[i]);
			CHECK(!check_shape(f, name, type, p.embd, p.ff));
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, norm[i]);
			CHECK(!check_shape(f, name, GGUF_TENSOR_F32, p.embd, 0));
		}
		snprintf(name, sizeof(name), "blk.%u.ffn_down.weight", l);
		CHECK(!check_shape(f, name, type, p.ff, p.embd));
	}
	for (size_t i = 0; i < gguf_tensor_count(f); i++) {
		const struct gguf_tensor *t = gguf_tensor(f, i);

		CHECK_EQ(t->offset, end);
		end = (t->offset + t->size + 31) & ~31ull;
	}
	CHECK_EQ(gguf_file_size(f), gguf_data_offset(f) + end);

	/* the block layout: quantized blocks start with a positive f16 scale */
	if (type == GGUF_TENSOR_Q8_0 || type == GGUF_TENSOR_Q4_0) {
		const struct gguf_tensor *t = gguf_find_tensor(f, "blk.1.ffn_down.weight");
		uint32_t bs = gguf_type_info(type)->type_size;
		uint8_t *buf = malloc(t->size);

		CHECK(buf && gguf_read_data(f, t, 0, buf, t->size) == (ssize_t)t->size);
		for (uint64_t b = 0; b < t->size; b += bs) {
			uint16_t d = buf[b] | buf[b + 1] << 8;

			if ((d & 0x8000) || (d >> 10) == 0 || (d >> 10) == 31) {
				printf("# block at %" PRIu64 ": scale 0x%04x\n", b, d);
				free(buf);
				return 1;
			}
		}
		free(buf);
	}
	/* norms are near 1 */
	{
		const struct gguf_tensor *t = gguf_find_tensor(f, "output_norm.weight");
		float v[64];

		CHECK(gguf_read_data(f, t, 0, v, sizeof(v)) == sizeof(v));
		for (int i = 0; i < 64; i++)
			CHECK(fabsf(v[i] - 1.0f) < 0.1f);
	}
	gguf_close(f);
	return 0;
}

static int test_llama_f32(void)  { return llama_roundtrip(GGUF_TENSOR_F32); }
static int test_llama_f16(void)  { return llama_roundtrip(GGUF_TENSOR_F16); }
static int test_llama_q8_0(void) { return llama_roundtrip(GGUF_TENSOR_Q8_0); }
static int test_llama_q4_0(void) { return llama_roundtrip(GGUF_TENSOR_Q4_0); }

static int test_llama_seed(void)
{
	struct gguf_llama_params p = small_params(GGUF_TENSOR_Q8_0);
	const char *a = tmp_path("s1.gguf"), *b = tmp_path("s2.gguf");
	uint8_t *x, *y;
	size_t nx, ny;
	int same;

	CHECK(!gguf_llama_write(a, &p, errbuf, sizeof(errbuf)));
	CHECK(!gguf_llama_write(b, &p, errbuf, sizeof(errbuf)));
	x = read_file(a, &nx);
	y = read_file(b, &ny);
	CHECK(x && y && nx == ny && !memcmp(x, y, nx));
	free(y);
	p.seed = 43;
	CHECK(!gguf_llama_write(b, &p, errbuf, sizeof(errbuf)));
	y = read_file(b, &ny);
	CHECK(y && nx == ny);
	same = !memcmp(x, y, nx);
	free(x);
	free(y);
	CHECK(!same);
	return 0;
}

static int test_llama_check(void)
{
	static const char *const frag[] = {
		"only f32, f16, q8_0 and q4_0", "layers 0", "not a multiple of heads",
		"not a multiple of heads-kv", "embd 48 is not a multiple of the q8_0 block",
		"ff 40 is not a multiple of the q8_0 block", "vocab 2",
	};

	for (size_t i = 0; i < N(frag); i++) {
		struct gguf_llama_params p = small_params(GGUF_TENSOR_Q8_0);

		switch (i) {
		case 0: p.type = GGUF_TENSOR_Q4_K; break;
		case 1: p.layers = 0; break;
		case 2: p.heads = 5; break;
		case 3: p.heads_kv = 3; break;
		case 4: p.embd = 48; break;
		case 5: p.ff = 40; break;
		case 6: p.vocab = 2; break;
		}
		CHECK(gguf_llama_write(tmp_path("bad.gguf"), &p, errbuf, sizeof(errbuf)) == -EINVAL);
		if (!strstr(errbuf, frag[i])) {
			printf("# case %zu: '%s', expected '%s'\n", i, errbuf, frag[i]);
			return 1;
		}
	}
	return 0;
}

/* ---- malformed files ---------------------------------------------------- */

struct raw {
	size_t len;
	uint8_t p[8192];
};

static void r_bytes(struct raw *r, const void *p, size_t n)
{
	if (n > sizeof(r->p) - r->len)
		abort();	/* a test bug */
	memcpy(r->p + r->len, p, n);
	r->len += n;
}

static void r_u32(struct raw *r, uint32_t v) { r_bytes(r, &v, 4); }
static void r_u64(struct raw *r, uint64_t v) { r_bytes(r, &v, 8); }

static void r_strn(struct raw *r, const char *s, size_t n)
{
	r_u64(r, n);
	r_bytes(r, s, n);
}

static void r_str(struct raw *r, const char *s) { r_strn(r, s, strlen(s)); }

static void r_header(struct raw *r, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
	r_bytes(r, "GGUF", 4);
	r_u32(r, version);
	r_u64(r, n_tensors);
	r_u64(r, n_kv);
}

static void r_kv_u32(struct raw *r, const char *key, uint32_t v)
{
	r_str(r, key);
	r_u32(r, GGUF_TYPE_UINT32);
	r_u32(r, v);
}

static void r_tensor(struct raw *r, const char *name, uint32_t n_dims,
		     const uint64_t *dims, uint32_t type, uint64_t offset)
{
	r_str(r, name);
	r_u32(r, n_dims);
	for (uint32_t d = 0; d < n_dims; d++)
		r_u64(r, dims[d]);
	r_u32(r, type);
	r_u64(r, offset);
}

/* pad to 32, then @n bytes of data */
static void r_data(struct raw *r, size_t n)
{
	static const uint8_t zeros[4096];

	r_bytes(r, zeros, (32 - r->len % 32) % 32);
	r_bytes(r, zeros, n);
}

#define F32 GGUF_TENSOR_F32
#define Q8_0 GGUF_TENSOR_Q8_0
#define DIMS(...) (uint64_t[]){ __VA_ARGS__ }

/*
 * The baseline: 2 kv, tensors a (f32 [8], 32 bytes at 0) and b (q8_0
 * [32, 2], 68 bytes at 32), 100 bytes of data; the data section begins at
 * 192.
 */
static void base_kv(struct raw *r)
{
	r_str(r, "general.name");
	r_u32(r, GGUF_TYPE_STRING);
	r_str(r, "x");
	r_kv_u32(r, "general.alignment", 32);
}

static void base_valid(struct raw *r)
{
	r_header(r, 3, 2, 2);
	base_kv(r);
	r_tensor(r, "a", 1, DIMS(8), F32, 0);
	r_tensor(r, "b", 2, DIMS(32, 2), Q8_0, 32);
	r_data(r, 100);
}

/* header(3, 0, 1) and a key "k" of @type */
static void one_kv(struct raw *r, uint32_t type)
{
	r_header(r, 3, 0, 1);
	r_str(r, "k");
	r_u32(r, type);
}

/* header(3, 1, 2), the base kv and tensor "a" up to its n_dims */
static void one_tensor(struct raw *r, const char *name, uint32_t n_dims)
{
	r_header(r, 3, 1, 2);
	base_kv(r);
	r_str(r, name);
	r_u32(r, n_dims);
}

static void patch_u32(struct raw *r, size_t at, uint32_t v) { memcpy(r->p + at, &v, 4); }
static void patch_u64(struct raw *r, size_t at, uint64_t v) { memcpy(r->p + at, &v, 8); }

#define CASE(fn) static void fn(struct raw *r)

CASE(m_magic)		{ base_valid(r); memcpy(r->p, "ggjt", 4); }
CASE(m_version1)	{ base_valid(r); patch_u32(r, 4, 1); }
CASE(m_version4)	{ base_valid(r); patch_u32(r, 4, 4); }
CASE(m_big_endian)	{ base_valid(r); patch_u32(r, 4, 0x03000000); }
CASE(m_short_header)	{ r_bytes(r, "GGUF\3\0", 6); }
CASE(m_empty)		{ (void)r; }
CASE(m_tensors_huge)	{ base_valid(r); patch_u64(r, 8, 1ull << 40); }
CASE(m_tensors_many)	{ base_valid(r); patch_u64(r, 8, 1000); }
CASE(m_kv_huge)		{ base_valid(r); patch_u64(r, 16, UINT64_MAX); }
CASE(m_kv_many)		{ base_valid(r); patch_u64(r, 16, 100); }
CASE(m_key_huge)	{ r_header(r, 3, 0, 1); r_u64(r, 1ull << 63); r_u64(r, 0); }
CASE(m_key_empty)	{ r_header(r, 3, 0, 1); r_str(r, ""); r_u32(r, 0); r_u32(r, 0); }
CASE(m_key_nul)		{ r_header(r, 3, 0, 1); r_strn(r, "a\0b", 3); r_u32(r, 0); r_u32(r, 0); }
CASE(m_str_huge)	{ one_kv(r, GGUF_TYPE_STRING); r_u64(r, 1ull << 40); }
CASE(m_str_eof)		{ one_kv(r, GGUF_TYPE_STRING); r_u64(r, 1000); r_bytes(r, "0123456789", 10); }
CASE(m_value_type)	{ one_kv(r, 13); r_u32(r, 0); }
CASE(m_value_eof)	{ one_kv(r, GGUF_TYPE_UINT64); r_u32(r, 0); }
CASE(m_bool)		{ one_kv(r, GGUF_TYPE_BOOL); r_bytes(r, "\2", 1); }
CASE(m_array_huge)	{ one_kv(r, GGUF_TYPE_ARRAY); r_u32(r, GGUF_TYPE_UINT32); r_u64(r, 1ull << 60); }
CASE(m_array_strs)	{ one_kv(r, GGUF_TYPE_ARRAY); r_u32(r, GGUF_TYPE_STRING); r_u64(r, 3); r_u64(r, 0); r_u64(r, 0); }
CASE(m_array_nested)	{ one_kv(r, GGUF_TYPE_ARRAY); r_u32(r, GGUF_TYPE_ARRAY); r_u64(r, 1); r_u32(r, 0); r_u64(r, 0); }
CASE(m_array_type)	{ one_kv(r, GGUF_TYPE_ARRAY); r_u32(r, 99); r_u64(r, 0); }
CASE(m_array_bool)	{ one_kv(r, GGUF_TYPE_ARRAY); r_u32(r, GGUF_TYPE_BOOL); r_u64(r, 3); r_bytes(r, "\1\0\5", 3); }
CASE(m_key_dup)
{
	r_header(r, 3, 0, 3);
	r_kv_u32(r, "a", 1);
	r_kv_u32(r, "b", 2);
	r_kv_u32(r, "a", 3);
}
CASE(m_key_long)
{
	char key[201];

	memset(key, 'k', 200);
	key[200] = '\0';
	r_header(r, 3, 0, 1);
	r_str(r, key);
	r_u32(r, 77);
}
CASE(m_align_type)
{
	r_header(r, 3, 0, 2);
	r_kv_u32(r, "a", 1);
	r_str(r, "general.alignment");
	r_u32(r, GGUF_TYPE_UINT64);
	r_u64(r, 32);
}
CASE(m_align_24)	{ r_header(r, 3, 0, 1); r_kv_u32(r, "general.alignment", 24); }
CASE(m_align_0)		{ r_header(r, 3, 0, 1); r_kv_u32(r, "general.alignment", 0); }
CASE(m_name_long)
{
	r_header(r, 3, 1, 0);
	r_str(r, "0123456789012345678901234567890123456789012345678901234567890123");
}
CASE(m_name_empty)	{ one_tensor(r, "", 1); }
CASE(m_name_nul)	{ r_header(r, 3, 1, 0); r_strn(r, "a\0", 2); r_u32(r, 1); r_data(r, 32); }
CASE(m_name_ctrl)	{ one_tensor(r, "\x1b[2J", 0); r_u32(r, F32); r_u64(r, 0); }
CASE(m_ndims_0)		{ one_tensor(r, "a", 0); r_u32(r, F32); r_u64(r, 0); }
CASE(m_ndims_5)		{ one_tensor(r, "a", 5); for (int i = 0; i < 5; i++) r_u64(r, 1); }
CASE(m_dim_0)		{ r_header(r, 3, 1, 0); r_tensor(r, "a", 2, DIMS(8, 0), F32, 0); }
CASE(m_dims_overflow)	{ r_header(r, 3, 1, 0); r_tensor(r, "a", 2, DIMS(1ull << 32, 1ull << 32), F32, 0); }
CASE(m_size_overflow)	{ r_header(r, 3, 1, 0); r_tensor(r, "a", 1, DIMS(1ull << 62), GGUF_TENSOR_F64, 0); }
CASE(m_type_unknown)	{ r_header(r, 3, 1, 0); r_tensor(r, "a", 1, DIMS(8), 42, 0); }
CASE(m_type_removed)	{ r_header(r, 3, 1, 0); r_tensor(r, "a", 1, DIMS(32), 4, 0); }
CASE(m_block)		{ r_header(r, 3, 1, 0); r_tensor(r, "a", 2, DIMS(48, 2), Q8_0, 0); r_data(r, 102); }
CASE(m_misaligned)
{
	r_header(r, 3, 2, 2);
	base_kv(r);
	r_tensor(r, "a", 1, DIMS(8), F32, 0);
	r_tensor(r, "b", 2, DIMS(32, 2), Q8_0, 48);
	r_data(r, 200);
}
CASE(m_misaligned_64)
{
	r_header(r, 3, 2, 1);
	r_kv_u32(r, "general.alignment", 64);
	r_tensor(r, "a", 1, DIMS(8), F32, 0);
	r_tensor(r, "b", 2, DIMS(32, 2), Q8_0, 32);
	r_data(r, 200);
}
CASE(m_beyond_eof)	{ base_valid(r); r->len -= 1; }
CASE(m_offset_huge)
{
	r_header(r, 3, 1, 0);
	r_tensor(r, "a", 1, DIMS(8), F32, 1ull << 62);
	r_data(r, 32);
}
CASE(m_no_data)		{ r_header(r, 3, 1, 0); r_tensor(r, "a", 1, DIMS(8), F32, 0); }
CASE(m_overlap)
{
	r_header(r, 3, 2, 2);
	base_kv(r);
	r_tensor(r, "a", 1, DIMS(16), F32, 0);
	r_tensor(r, "b", 2, DIMS(32, 2), Q8_0, 32);
	r_data(r, 100);
}
CASE(m_overlap_ctrl)
{
	/* found by the fuzzer: the other tensor's name went into the message raw */
	r_header(r, 3, 2, 0);
	r_tensor(r, "a\nb", 1, DIMS(16), F32, 0);
	r_tensor(r, "b", 1, DIMS(8), F32, 32);
	r_data(r, 64);
}
CASE(m_overlap_order)
{
	/* b is first in the file but last in the data; c lies inside a */
	r_header(r, 3, 3, 0);
	r_tensor(r, "b", 1, DIMS(8), F32, 256);
	r_tensor(r, "a", 1, DIMS(64), F32, 0);
	r_tensor(r, "c", 1, DIMS(8), F32, 64);
	r_data(r, 288);
}
CASE(m_name_dup)
{
	r_header(r, 3, 2, 2);
	base_kv(r);
	r_tensor(r, "a", 1, DIMS(8), F32, 0);
	r_tensor(r, "a", 2, DIMS(32, 2), Q8_0, 32);
	r_data(r, 100);
}

static const struct mcase {
	const char *name;
	void (*build)(struct raw *r);
	int ret;
	const char *frag;
} mcases[] = {
	{ "bad magic", m_magic, -EINVAL, "header: bad magic 67 67 6a 74, expected \"GGUF\"" },
	{ "version 1", m_version1, -EINVAL, "header: unsupported version 1 " },
	{ "version 4", m_version4, -EINVAL, "header: unsupported version 4 " },
	{ "big-endian", m_big_endian, -EINVAL, "a big-endian GGUF file" },
	{ "truncated header", m_short_header, -EINVAL,
	  "header: truncated: 4 bytes needed at offset 4, file size 6" },
	{ "empty file", m_empty, -EINVAL, "header: truncated: 4 bytes needed at offset 0, file size 0" },
	{ "huge tensor count", m_tensors_huge, -E2BIG,
	  "tensor count 1099511627776 exceeds the limit of 1048576" },
	{ "tensor count beyond file", m_tensors_many, -EINVAL, "tensor count 1000 cannot fit in the" },
	{ "huge kv count", m_kv_huge, -E2BIG, "metadata kv count 18446744073709551615 exceeds" },
	{ "kv count beyond file", m_kv_many, -EINVAL, "metadata kv count 100 cannot fit" },
	{ "huge key length", m_key_huge, -E2BIG,
	  "kv 0: key length 9223372036854775808 exceeds the limit of 65535 bytes" },
	{ "empty key", m_key_empty, -EINVAL, "kv 0: empty key" },
	{ "NUL in key", m_key_nul, -EINVAL, "kv 0: key contains a NUL byte" },
	{ "huge string length", m_str_huge, -E2BIG,
	  "kv 0 'k': string length 1099511627776 exceeds the limit of 1048576 bytes" },
	{ "string beyond file", m_str_eof, -EINVAL,
	  "kv 0 'k': truncated: string of 1000 bytes at offset 45, file size 55" },
	{ "unknown value type", m_value_type, -EINVAL, "kv 0 'k': unknown value type 13" },
	{ "value beyond file", m_value_eof, -EINVAL, "kv 0 'k': truncated: 8 bytes needed" },
	{ "bool 2", m_bool, -EINVAL, "kv 0 'k': bool value 2 at offset 37 is neither 0 nor 1" },
	{ "bool array", m_array_bool, -EINVAL, "bool array value 5 at offset 51" },
	{ "huge array length", m_array_huge, -EINVAL,
	  "kv 0 'k': array length 1152921504606846976 cannot fit" },
	{ "string array beyond file", m_array_strs, -EINVAL, "array length 3 cannot fit in the 16 bytes" },
	{ "array of arrays", m_array_nested, -EINVAL, "kv 0 'k': arrays of arrays are not supported" },
	{ "unknown array type", m_array_type, -EINVAL, "unknown array element type 99" },
	{ "duplicate key", m_key_dup, -EINVAL, "kv 2 'a': duplicate key (first at kv 0)" },
	{ "long key in message", m_key_long, -EINVAL, "kkkkkkkkkk...': unknown value type 77" },
	{ "alignment type", m_align_type, -EINVAL,
	  "kv 1 'general.alignment': has type uint64, expected uint32" },
	{ "alignment 24", m_align_24, -EINVAL, "alignment 24 is not a power of two" },
	{ "alignment 0", m_align_0, -EINVAL, "alignment 0 is not a power of two" },
	{ "tensor name too long", m_name_long, -E2BIG,
	  "tensor 0: name length 64 exceeds the limit of 63 bytes" },
	{ "empty tensor name", m_name_empty, -EINVAL, "tensor 0: empty name" },
	{ "NUL in tensor name", m_name_nul, -EINVAL, "tensor 0: name contains a NUL byte" },
	{ "unprintable name", m_name_ctrl, -EINVAL, "tensor 0 '?[2J': n_dims 0" },
	{ "n_dims 0", m_ndims_0, -EINVAL, "tensor 0 'a': n_dims 0 is out of range 1..4" },
	{ "n_dims 5", m_ndims_5, -EINVAL, "tensor 0 'a': n_dims 5 is out of range 1..4" },
	{ "zero dimension", m_dim_0, -EINVAL, "tensor 0 'a': dims[1] is 0" },
	{ "dims product overflow", m_dims_overflow, -EINVAL,
	  "tensor 0 'a': element count overflows int64 at dims[1] = 4294967296" },
	{ "size overflow", m_size_overflow, -EINVAL, "size in bytes overflows int64" },
	{ "unknown tensor type", m_type_unknown, -EINVAL, "tensor 0 'a': unknown tensor type 42" },
	{ "removed tensor type", m_type_removed, -EINVAL, "unknown tensor type 4" },
	{ "dims[0] not a block multiple", m_block, -EINVAL,
	  "tensor 0 'a': dims[0] = 48 is not a multiple of the q8_0 block size 32" },
	{ "misaligned offset", m_misaligned, -EINVAL,
	  "tensor 1 'b': offset 48 is not a multiple of the alignment 32" },
	{ "misaligned for alignment 64", m_misaligned_64, -EINVAL,
	  "offset 32 is not a multiple of the alignment 64" },
	{ "data beyond end of file", m_beyond_eof, -EINVAL,
	  "tensor 1 'b': data [224, +68) beyond end of file (size 291)" },
	{ "offset far beyond file", m_offset_huge, -EINVAL,
	  "tensor 0 'a': data offset 4611686018427387904 (data section at 64) beyond end of file" },
	{ "no data section", m_no_data, -EINVAL, "tensor 0 'a': data offset 0 (data section at 64) beyond" },
	{ "overlapping tensors", m_overlap, -EINVAL,
	  "tensor 1 'b': data [224, +68) overlaps tensor 0 'a' [192, +64)" },
	{ "overlap with unprintable name", m_overlap_ctrl, -EINVAL, "overlaps tensor 0 'a?b' [" },
	{ "overlap out of order", m_overlap_order, -EINVAL,
	  "tensor 2 'c': data [192, +32) overlaps tensor 1 'a' [128, +256)" },
	{ "duplicate tensor name", m_name_dup, -EINVAL, "tensor 1 'a': duplicate name (first at tensor 0)" },
};

static int run_mcase(const struct mcase *c)
{
	static struct raw r;
	const char *path = tmp_path("bad.gguf");

	r.len = 0;
	c->build(&r);
	CHECK(!write_file(path, r.p, r.len));
	return expect_fail(path, c->ret, c->frag);
}

static int test_raw_valid(void)
{
	static struct raw r;
	const char *path = tmp_path("base.gguf");
	struct gguf_file *f;

	base_valid(&r);
	CHECK(!write_file(path, r.p, r.len));
	if (gguf_open(path, &f, errbuf, sizeof(errbuf))) {
		printf("# %s\n", errbuf);
		return 1;
	}
	CHECK_EQ(gguf_tensor_count(f), 2);
	CHECK_EQ(gguf_data_offset(f), 192);
	CHECK_EQ(gguf_find_tensor(f, "b")->file_offset, 224);
	gguf_close(f);
	return 0;
}

static int test_not_a_file(void)
{
	const char *fifo = tmp_path("fifo");

	CHECK(!expect_fail(tmpdir, -EINVAL, "not a regular file or block device"));
	/* a FIFO without a writer: refused, not waited for */
	CHECK(!mkfifo(fifo, 0600));
	CHECK(!expect_fail(fifo, -EINVAL, "not a regular file or block device"));
	return expect_fail(tmp_path("missing.gguf"), -ENOENT, "No such file");
}

/* an array larger than the memory limit, in a sparse file that can hold it */
static int test_memory_limit(void)
{
	static struct raw r;
	const char *path = tmp_path("sparse.gguf");
	int fd;

	r.len = 0;
	one_kv(&r, GGUF_TYPE_ARRAY);
	r_u32(&r, GGUF_TYPE_UINT8);
	r_u64(&r, (GGUF_MAX_MEMORY) + 1);
	CHECK(!write_file(path, r.p, r.len));
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(!ftruncate(fd, GGUF_MAX_MEMORY + 4096));
	close(fd);
	return expect_fail(path, -E2BIG, "kv 0 'k': needs more than the 256 MiB");
}

/*
 * Every prefix of a good file: each cut in the header, metadata, tensor
 * infos and padding, and cuts through the data (every 61st byte, and each
 * tensor's last byte) must fail cleanly; cuts in the final padding leave
 * a valid file.
 */
static int truncate_all(const char *src)
{
	const char *path = tmp_path("cut.gguf");
	uint64_t data, last_end = 0;
	struct gguf_file *f;
	size_t size, cuts = 0;
	uint8_t *p;
	int fd, ret = 0;

	CHECK(!gguf_open(src, &f, errbuf, sizeof(errbuf)));
	data = gguf_data_offset(f);
	for (size_t i = 0; i < gguf_tensor_count(f); i++) {
		const struct gguf_tensor *t = gguf_tensor(f, i);

		if (t->file_offset + t->size > last_end)
			last_end = t->file_offset + t->size;
	}
	gguf_close(f);
	p = read_file(src, &size);
	CHECK(p);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	for (uint64_t cut = 0; cut <= size && !ret; cut++) {
		bool valid = cut >= last_end;
		int r;

		if (cut > data && cut < last_end - 1 && cut % 61)
			continue;
		if (ftruncate(fd, 0) || pwrite(fd, p, cut, 0) != (ssize_t)cut) {
			ret = 1;
			break;
		}
		cuts++;
		r = gguf_open(path, &f, errbuf, sizeof(errbuf));
		if (!r)
			gguf_close(f);
		if (valid ? r != 0 :
		    r != -EINVAL || !(strstr(errbuf, "truncated") ||
				      strstr(errbuf, "cannot fit") ||
				      strstr(errbuf, "beyond end of file"))) {
			printf("# cut at %" PRIu64 " of %zu: %d '%s'\n", cut, size, r,
			       r ? errbuf : "accepted");
			ret = 1;
		}
	}
	printf("# %zu cuts of %zu bytes (header region %" PRIu64 ")\n", cuts, size, data);
	close(fd);
	free(p);
	return ret;
}

static int test_truncate_all_types(void)
{
	return truncate_all(tmp_path("all.gguf"));
}

static int test_truncate_llama(void)
{
	struct gguf_llama_params p = small_params(GGUF_TENSOR_Q4_0);
	const char *path = tmp_path("llama-cut.gguf");

	CHECK(!gguf_llama_write(path, &p, errbuf, sizeof(errbuf)));
	return truncate_all(path);
}

/* ---- main --------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "type table", test_type_table },
	{ "tensor bytes", test_tensor_bytes },
	{ "round trip: every value type and tensor type", test_roundtrip_all_types },
	{ "round trip: version 2", test_roundtrip_v2 },
	{ "writer errors", test_writer_errors },
	{ "llama f32", test_llama_f32 },
	{ "llama f16", test_llama_f16 },
	{ "llama q8_0", test_llama_q8_0 },
	{ "llama q4_0", test_llama_q4_0 },
	{ "llama seed", test_llama_seed },
	{ "llama parameter checks", test_llama_check },
	{ "raw baseline accepted", test_raw_valid },
	{ "not a file", test_not_a_file },
	{ "memory limit", test_memory_limit },
	{ "truncated at every offset: all types", test_truncate_all_types },
	{ "truncated at every offset: llama q4_0", test_truncate_llama },
};

static int rm_tmp(void)
{
	static const char *const names[] = {
		"all.gguf", "v2.gguf", "werr.gguf", "llama.gguf", "s1.gguf", "s2.gguf",
		"bad.gguf", "base.gguf", "sparse.gguf", "cut.gguf", "llama-cut.gguf", "fifo",
	};

	for (size_t i = 0; i < N(names); i++)
		unlink(tmp_path(names[i]));
	return rmdir(tmpdir);
}

int main(void)
{
	size_t n = N(tests) + N(mcases), k = 0;
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
	for (size_t i = 0; i < N(mcases); i++) {
		int r = run_mcase(&mcases[i]);

		failed += r != 0;
		printf("%sok %zu malformed: %s\n", r ? "not " : "", ++k, mcases[i].name);
	}
	if (rm_tmp())
		printf("# could not remove %s\n", tmpdir);
	return failed ? 1 : 0;
}
