// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the GGUF reader and writer (tools/gguf.c, gguf-write.c),
 * on the kernel's kselftest harness (TAP; each test runs in a child of
 * its own, with a fresh temporary directory).
 *
 * Round trips go through the writer and the llama generator gguf-gen uses.
 * The malformed files are built field by field with a separate raw
 * serializer (struct raw), so that they do not depend on the code under
 * test, and each must be refused with the expected errno and message.
 * A baseline built the same way must be accepted (raw_valid), so each
 * malformed case differs from a good file by its one defect.
 */
#define _GNU_SOURCE
#include <dirent.h>
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

#include "kselftest_harness.h"

#include "gguf.h"
#include "gguf-write.h"

static char tmpdir[64];
static char errbuf[512];

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

/* the tests' messages (ksft_print_msg()) leave the child before _exit() */
static void __attribute__((constructor)) line_buffered(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static void mk_tmpdir(struct __test_metadata *_metadata)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gguf-test.XXXXXX");
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
	/* a message, no EXPECT: after a failed ASSERT its handler would run anyway */
	if (rmdir(tmpdir))
		ksft_print_msg("could not remove %s: %s\n", tmpdir, strerror(errno));
}

/* a fresh temporary directory for each test (tests run in children) */
FIXTURE(gguf_test) {
};

FIXTURE_SETUP(gguf_test)
{
	mk_tmpdir(_metadata);
}

FIXTURE_TEARDOWN(gguf_test)
{
	rm_tmpdir();
}

/* open @path expecting failure @ret with @frag (and no newline) in the message */
static void expect_fail(struct __test_metadata *_metadata, const char *path, int ret,
			const char *frag)
{
	struct gguf_file *f;
	int r = gguf_open(path, &f, errbuf, sizeof(errbuf));

	ksft_print_msg("-> %s\n", r ? errbuf : "(accepted)");
	if (!r)
		gguf_close(f);
	ASSERT_EQ(ret, r) TH_LOG("expected '%s'", frag);
	ASSERT_NE(NULL, strstr(errbuf, frag)) TH_LOG("expected '%s'", frag);
	ASSERT_EQ(NULL, strchr(errbuf, '\n'));
}

/* ---- type table --------------------------------------------------------- */

TEST_F(gguf_test, type_table)
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

		ASSERT_TRUE(ti);
		ASSERT_TRUE(!strcmp(ti->name, want[i].name));
		ASSERT_EQ(want[i].bs, ti->block_size);
		ASSERT_EQ(want[i].ts, ti->type_size);
	}
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		ASSERT_TRUE(!gguf_type_info(unknown[i]));
	}
	for (uint32_t t = 0; t < GGUF_TENSOR_TYPE_COUNT; t++) {
		const struct gguf_type_info *ti = gguf_type_info(t);

		if (ti) {
			ASSERT_EQ(t, gguf_type_by_name(ti->name));
		}
	}
	ASSERT_EQ(GGUF_TENSOR_Q8_0, gguf_type_by_name("Q8_0"));
	ASSERT_TRUE(gguf_type_by_name("q9_0") == -1);
	ASSERT_TRUE(!strcmp(gguf_value_type_name(GGUF_TYPE_FLOAT64), "float64"));
	ASSERT_TRUE(!strcmp(gguf_value_type_name(GGUF_TYPE_COUNT), "?"));
}

TEST_F(gguf_test, tensor_bytes)
{
	uint64_t n, size;

	ASSERT_TRUE(!gguf_tensor_bytes(GGUF_TENSOR_Q4_K, 2, (uint64_t[]){ 512, 3 }, &n, &size));
	ASSERT_EQ(1536, n);
	ASSERT_EQ(2 * 3 * 144, size);
	ASSERT_TRUE(!gguf_tensor_bytes(GGUF_TENSOR_F16, 4, (uint64_t[]){ 2, 3, 5, 7 }, &n, &size));
	ASSERT_EQ(2 * 210, size);
	ASSERT_TRUE(gguf_tensor_bytes(GGUF_TENSOR_Q8_0, 1, (uint64_t[]){ 33 }, NULL, &size) == -EINVAL);
	ASSERT_TRUE(gguf_tensor_bytes(4, 1, (uint64_t[]){ 32 }, NULL, &size) == -EINVAL);
	ASSERT_TRUE(gguf_tensor_bytes(GGUF_TENSOR_F32, 0, (uint64_t[]){ 1 }, NULL, &size) == -EINVAL);
	ASSERT_TRUE(gguf_tensor_bytes(GGUF_TENSOR_F32, 5, (uint64_t[]){ 1, 1, 1, 1, 1 }, NULL,
				&size) == -EINVAL);
	ASSERT_TRUE(gguf_tensor_bytes(GGUF_TENSOR_F32, 2, (uint64_t[]){ 1, 0 }, NULL, &size) == -EINVAL);
	ASSERT_TRUE(gguf_tensor_bytes(GGUF_TENSOR_F32, 2, (uint64_t[]){ 1ull << 32, 1ull << 31 },
				NULL, &size) == -EOVERFLOW);
	ASSERT_TRUE(gguf_tensor_bytes(GGUF_TENSOR_F32, 1, (uint64_t[]){ 1ull << 62 }, NULL,
				&size) == -EOVERFLOW);
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
		ksft_print_msg("writer: %s\n", errbuf);
	return ret;
}

static void check_scalar(struct __test_metadata *_metadata, const struct gguf_kv *kv,
			 const struct kv_case *c)
{
	ASSERT_TRUE(!strcmp(kv->key, c->key));
	ASSERT_EQ(c->type, kv->type);
	ASSERT_EQ(c->type, kv->elem_type);
	ASSERT_EQ(1, kv->n);
	switch (c->type) {
	case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: ASSERT_EQ(c->v.u8, kv->v.u); break;
	case GGUF_TYPE_INT8:	ASSERT_TRUE(kv->v.i == c->v.i8); break;
	case GGUF_TYPE_UINT16:	ASSERT_EQ(c->v.u16, kv->v.u); break;
	case GGUF_TYPE_INT16:	ASSERT_TRUE(kv->v.i == c->v.i16); break;
	case GGUF_TYPE_UINT32:	ASSERT_EQ(c->v.u32, kv->v.u); break;
	case GGUF_TYPE_INT32:	ASSERT_TRUE(kv->v.i == c->v.i32); break;
	case GGUF_TYPE_UINT64:	ASSERT_EQ(c->v.u64, kv->v.u); break;
	case GGUF_TYPE_INT64:	ASSERT_TRUE(kv->v.i == c->v.i64); break;
	case GGUF_TYPE_FLOAT32:	ASSERT_TRUE(kv->v.f == c->v.f32); break;
	case GGUF_TYPE_FLOAT64:	ASSERT_TRUE(kv->v.f == c->v.f64); break;
	case GGUF_TYPE_STRING:
		ASSERT_EQ(strlen(c->v.s), kv->v.str.len);
		ASSERT_TRUE(!strcmp(kv->v.str.s, c->v.s));
		break;
	default:
		ASSERT_TRUE(0);
	}
}

static void check_all_types(struct __test_metadata *_metadata, const char *path,
			    uint32_t version)
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

	ASSERT_EQ(0, gguf_open(path, &f, errbuf, sizeof(errbuf))) TH_LOG("open: %s", errbuf);
	ASSERT_EQ(version, gguf_version(f));
	ASSERT_EQ(64, gguf_alignment(f));
	ASSERT_EQ(N(scalars) + N(arrays), gguf_kv_count(f));
	for (size_t i = 0; i < N(scalars); i++) {
		check_scalar(_metadata, gguf_kv(f, i), &scalars[i]);
		ASSERT_TRUE(gguf_find_kv(f, scalars[i].key) == gguf_kv(f, i));
	}
	for (size_t i = 0; i < N(arrays); i++) {
		kv = gguf_kv(f, N(scalars) + i);
		ASSERT_TRUE(kv && !strcmp(kv->key, arrays[i].key));
		ASSERT_EQ(GGUF_TYPE_ARRAY, kv->type);
		ASSERT_EQ(arrays[i].elem_type, kv->elem_type);
		ASSERT_EQ(arrays[i].n, kv->n);
		ASSERT_TRUE(!gguf_get_array(f, arrays[i].key, arrays[i].elem_type, &elems, &n));
		ASSERT_TRUE(elems == kv->v.arr && n == arrays[i].n);
		if (arrays[i].elem_type != GGUF_TYPE_STRING) {
			ASSERT_TRUE(!memcmp(elems, arrays[i].elems, n * arrays[i].size));
			continue;
		}
		for (uint64_t j = 0; j < n; j++) {
			const struct gguf_str *gs = (const struct gguf_str *)elems + j;

			ASSERT_EQ(strlen(a_str[j]), gs->len);
			ASSERT_TRUE(!strcmp(gs->s, a_str[j]));
		}
	}
	ASSERT_TRUE(!gguf_kv(f, N(scalars) + N(arrays)));
	ASSERT_TRUE(!gguf_find_kv(f, "t.missing"));
	ASSERT_TRUE(!gguf_find_kv(f, ""));

	/* typed getters: the type must match exactly */
	ASSERT_TRUE(!gguf_get_u32(f, "t.u32", &u32) && u32 == 4000000000u);
	ASSERT_TRUE(!gguf_get_u64(f, "t.u64", &u64) && u64 == (1ull << 63) + 5);
	ASSERT_TRUE(!gguf_get_f32(f, "t.f32", &f32) && f32 == -3.25f);
	ASSERT_TRUE(!gguf_get_str(f, "t.str", &s) && !strcmp(s, scalars[9].v.s));
	ASSERT_TRUE(gguf_get_u32(f, "t.missing", &u32) == -ENOENT);
	ASSERT_TRUE(gguf_get_u64(f, "t.u32", &u64) == -EINVAL);
	ASSERT_TRUE(gguf_get_u32(f, "t.u16", &u32) == -EINVAL);
	ASSERT_TRUE(gguf_get_f32(f, "t.f64", &f32) == -EINVAL);
	ASSERT_TRUE(gguf_get_str(f, "a.str", &s) == -EINVAL);
	ASSERT_TRUE(gguf_get_array(f, "a.str", GGUF_TYPE_UINT8, &elems, &n) == -EINVAL);
	ASSERT_TRUE(gguf_get_array(f, "t.str", GGUF_TYPE_STRING, &elems, &n) == -EINVAL);
	ASSERT_TRUE(gguf_get_array(f, "a.none", GGUF_TYPE_STRING, &elems, &n) == -ENOENT);

	ASSERT_EQ(nt, gguf_tensor_count(f));
	ASSERT_EQ(0, gguf_data_offset(f) % 64);
	for (size_t i = 0; i < nt; i++) {
		const struct gguf_tensor *g = gguf_tensor(f, i);
		uint8_t buf[100];
		uint64_t off;
		ssize_t r;

		ASSERT_TRUE(g && !strcmp(g->name, t[i].name));
		ASSERT_TRUE(gguf_find_tensor(f, t[i].name) == g);
		ASSERT_EQ(t[i].type, g->type);
		ASSERT_EQ(t[i].n_dims, g->n_dims);
		for (uint32_t d = 0; d < 4; d++) {
			ASSERT_EQ(d < t[i].n_dims ? t[i].dims[d] : 1, g->dims[d]);
		}
		ASSERT_EQ(t[i].size, g->size);
		ASSERT_EQ(end, g->offset);	/* back to back, padded */
		ASSERT_EQ(gguf_data_offset(f) + g->offset, g->file_offset);
		end = (g->offset + g->size + 63) & ~63ull;
		/* the data, in pieces that do not divide the size */
		for (off = 0; (r = gguf_read_data(f, g, off, buf, sizeof(buf))) > 0; off += r)
			for (ssize_t j = 0; j < r; j++) {
				ASSERT_EQ(pattern(i, off + j), buf[j]);
			}
		ASSERT_TRUE(r == 0 && off == g->size);
		ASSERT_TRUE(gguf_read_data(f, g, g->size + 5, buf, 1) == 0);
	}
	ASSERT_TRUE(!gguf_tensor(f, nt));
	ASSERT_TRUE(!gguf_find_tensor(f, "w.nope"));
	ASSERT_EQ(gguf_data_offset(f) + end, gguf_file_size(f));
	gguf_close(f);
}

TEST_F(gguf_test, roundtrip_all_types)
{
	const char *path = tmp_path("all.gguf");

	ASSERT_EQ(0, write_all_types(path));
	check_all_types(_metadata, path, 3);
}

/* version 2 has the same layout for little-endian files */
TEST_F(gguf_test, roundtrip_v2)
{
	const char *path = tmp_path("all.gguf"), *v2 = tmp_path("v2.gguf");
	size_t n;
	uint8_t *p;

	ASSERT_EQ(0, write_all_types(path));
	p = read_file(path, &n);
	ASSERT_TRUE(p && n > 8);
	p[4] = 2;
	ASSERT_TRUE(!write_file(v2, p, n));
	free(p);
	check_all_types(_metadata, v2, 2);
}

TEST_F(gguf_test, writer_errors)
{
	const char *path = tmp_path("werr.gguf");
	struct gguf_writer *w;
	uint8_t b[64] = { 0 };

	ASSERT_TRUE(gguf_writer_open(tmp_path("nodir/x.gguf"), &w, errbuf, sizeof(errbuf)) == -ENOENT);
	/* bad tensor shape; later calls keep the first error */
	ASSERT_TRUE(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	ASSERT_TRUE(gguf_writer_add_tensor(w, "x", GGUF_TENSOR_Q8_0, 1, (uint64_t[]){ 31 }) == -EINVAL);
	ASSERT_TRUE(strstr(errbuf, "tensor 'x'"));
	ASSERT_TRUE(gguf_writer_close(w) == -EINVAL);
	/* too much data, too little data, metadata after tensors */
	ASSERT_TRUE(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	ASSERT_TRUE(!gguf_writer_add_tensor(w, "x", GGUF_TENSOR_F32, 1, (uint64_t[]){ 8 }));
	ASSERT_TRUE(gguf_writer_add(w, "k", GGUF_TYPE_UINT8, b) == -EINVAL);
	ASSERT_TRUE(gguf_writer_close(w) == -EINVAL);
	ASSERT_TRUE(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	ASSERT_TRUE(!gguf_writer_add_tensor(w, "x", GGUF_TENSOR_F32, 1, (uint64_t[]){ 8 }));
	ASSERT_TRUE(!gguf_writer_begin_data(w));
	ASSERT_TRUE(gguf_writer_write(w, b, 33) == -EINVAL);
	ASSERT_TRUE(strstr(errbuf, "beyond the last tensor"));
	ASSERT_TRUE(gguf_writer_close(w) == -EINVAL);
	ASSERT_TRUE(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	ASSERT_TRUE(!gguf_writer_add_tensor(w, "x", GGUF_TENSOR_F32, 1, (uint64_t[]){ 8 }));
	ASSERT_TRUE(!gguf_writer_begin_data(w));
	ASSERT_TRUE(!gguf_writer_write(w, b, 31));
	ASSERT_TRUE(gguf_writer_close(w) == -EINVAL);
	ASSERT_TRUE(strstr(errbuf, "31 of 32 bytes"));
	/* a power-of-two alignment only */
	ASSERT_TRUE(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	ASSERT_TRUE(gguf_writer_add(w, "general.alignment", GGUF_TYPE_UINT32, &(uint32_t){ 48 }) == -EINVAL);
	ASSERT_TRUE(gguf_writer_close(w) == -EINVAL);
	/* an empty file: header only, valid */
	ASSERT_TRUE(!gguf_writer_open(path, &w, errbuf, sizeof(errbuf)));
	ASSERT_TRUE(!gguf_writer_close(w));
	{
		struct gguf_file *f;

		ASSERT_TRUE(!gguf_open(path, &f, errbuf, sizeof(errbuf)));
		ASSERT_TRUE(gguf_kv_count(f) == 0 && gguf_tensor_count(f) == 0);
		gguf_close(f);
	}
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

static void check_u32(struct __test_metadata *_metadata, struct gguf_file *f,
		      const char *key, uint32_t want)
{
	uint32_t v = 0;

	ASSERT_EQ(0, gguf_get_u32(f, key, &v)) TH_LOG("%s", key);
	ASSERT_EQ(want, v) TH_LOG("%s", key);
}

static void check_shape(struct __test_metadata *_metadata, struct gguf_file *f,
			const char *name, uint32_t type, uint64_t d0, uint64_t d1)
{
	const struct gguf_tensor *t = gguf_find_tensor(f, name);

	ASSERT_NE(NULL, t) TH_LOG("tensor %s missing", name);
	ASSERT_EQ(type, t->type) TH_LOG("tensor %s", name);
	ASSERT_EQ(d1 ? 2u : 1u, t->n_dims) TH_LOG("tensor %s", name);
	ASSERT_EQ(d0, t->dims[0]) TH_LOG("tensor %s", name);
	ASSERT_EQ(d1 ? d1 : 1, t->dims[1]) TH_LOG("tensor %s", name);
}

static void llama_roundtrip(struct __test_metadata *_metadata, uint32_t type)
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

	ASSERT_EQ(0, gguf_llama_write(path, &p, errbuf, sizeof(errbuf))) TH_LOG("%s", errbuf);
	ASSERT_EQ(0, gguf_open(path, &f, errbuf, sizeof(errbuf))) TH_LOG("%s", errbuf);
	ASSERT_TRUE(!gguf_get_str(f, "general.architecture", &s) && !strcmp(s, "llama"));
	ASSERT_TRUE(!gguf_get_str(f, "general.name", &s) && !strcmp(s, p.name));
	check_u32(_metadata, f, "general.alignment", 32);
	check_u32(_metadata, f, "llama.context_length", p.ctx);
	check_u32(_metadata, f, "llama.embedding_length", p.embd);
	check_u32(_metadata, f, "llama.block_count", p.layers);
	check_u32(_metadata, f, "llama.feed_forward_length", p.ff);
	check_u32(_metadata, f, "llama.attention.head_count", p.heads);
	check_u32(_metadata, f, "llama.attention.head_count_kv", p.heads_kv);
	check_u32(_metadata, f, "llama.rope.dimension_count", p.embd / p.heads);
	ASSERT_TRUE(!gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f);
	ASSERT_TRUE(!gguf_get_str(f, "tokenizer.ggml.model", &s) && !strcmp(s, "llama"));
	ASSERT_TRUE(!gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &elems, &n));
	ASSERT_EQ(p.vocab, n);
	tok = elems;
	ASSERT_TRUE(!strcmp(tok[0].s, "<unk>") && !strcmp(tok[1].s, "<s>") &&
	            !strcmp(tok[3].s, "<0x00>") && !strcmp(tok[258].s, "<0xFF>"));
	ASSERT_TRUE(!gguf_get_array(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &elems, &n));
	ASSERT_EQ(p.vocab, n);
	ASSERT_TRUE(!gguf_get_array(f, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &elems, &n));
	ASSERT_EQ(p.vocab, n);

	ASSERT_EQ(3 + 9 * p.layers, gguf_tensor_count(f));
	check_shape(_metadata, f, "token_embd.weight", type, p.embd, p.vocab);
	check_shape(_metadata, f, "output_norm.weight", GGUF_TENSOR_F32, p.embd, 0);
	check_shape(_metadata, f, "output.weight", type, p.embd, p.vocab);
	for (uint32_t l = 0; l < p.layers; l++) {
		static const char *const sq[] = { "attn_q", "attn_output" };
		static const char *const kvn[] = { "attn_k", "attn_v" };
		static const char *const up[] = { "ffn_gate", "ffn_up" };
		static const char *const norm[] = { "attn_norm", "ffn_norm" };

		for (int i = 0; i < 2; i++) {
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, sq[i]);
			check_shape(_metadata, f, name, type, p.embd, p.embd);
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, kvn[i]);
			check_shape(_metadata, f, name, type, p.embd, kv);
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, up[i]);
			check_shape(_metadata, f, name, type, p.embd, p.ff);
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, norm[i]);
			check_shape(_metadata, f, name, GGUF_TENSOR_F32, p.embd, 0);
		}
		snprintf(name, sizeof(name), "blk.%u.ffn_down.weight", l);
		check_shape(_metadata, f, name, type, p.ff, p.embd);
	}
	for (size_t i = 0; i < gguf_tensor_count(f); i++) {
		const struct gguf_tensor *t = gguf_tensor(f, i);

		ASSERT_EQ(end, t->offset);
		end = (t->offset + t->size + 31) & ~31ull;
	}
	ASSERT_EQ(gguf_data_offset(f) + end, gguf_file_size(f));

	/* the block layout: quantized blocks start with a positive f16 scale */
	if (type == GGUF_TENSOR_Q8_0 || type == GGUF_TENSOR_Q4_0) {
		const struct gguf_tensor *t = gguf_find_tensor(f, "blk.1.ffn_down.weight");
		uint32_t bs = gguf_type_info(type)->type_size;
		uint8_t *buf = malloc(t->size);

		ASSERT_TRUE(buf && gguf_read_data(f, t, 0, buf, t->size) == (ssize_t)t->size);
		for (uint64_t b = 0; b < t->size; b += bs) {
			uint16_t d = buf[b] | buf[b + 1] << 8;

			ASSERT_FALSE((d & 0x8000) || (d >> 10) == 0 || (d >> 10) == 31)
				TH_LOG("block at %" PRIu64 ": scale 0x%04x", b, d);
		}
		free(buf);
	}
	/* norms are near 1 */
	{
		const struct gguf_tensor *t = gguf_find_tensor(f, "output_norm.weight");
		float v[64];

		ASSERT_TRUE(gguf_read_data(f, t, 0, v, sizeof(v)) == sizeof(v));
		for (int i = 0; i < 64; i++) {
			ASSERT_TRUE(fabsf(v[i] - 1.0f) < 0.1f);
		}
	}
	gguf_close(f);
}

TEST_F(gguf_test, llama_f32)  { llama_roundtrip(_metadata, GGUF_TENSOR_F32); }
TEST_F(gguf_test, llama_f16)  { llama_roundtrip(_metadata, GGUF_TENSOR_F16); }
TEST_F(gguf_test, llama_q8_0) { llama_roundtrip(_metadata, GGUF_TENSOR_Q8_0); }
TEST_F(gguf_test, llama_q4_0) { llama_roundtrip(_metadata, GGUF_TENSOR_Q4_0); }

TEST_F(gguf_test, llama_seed)
{
	struct gguf_llama_params p = small_params(GGUF_TENSOR_Q8_0);
	const char *a = tmp_path("s1.gguf"), *b = tmp_path("s2.gguf");
	uint8_t *x, *y;
	size_t nx, ny;
	int same;

	ASSERT_TRUE(!gguf_llama_write(a, &p, errbuf, sizeof(errbuf)));
	ASSERT_TRUE(!gguf_llama_write(b, &p, errbuf, sizeof(errbuf)));
	x = read_file(a, &nx);
	y = read_file(b, &ny);
	ASSERT_TRUE(x && y && nx == ny && !memcmp(x, y, nx));
	free(y);
	p.seed = 43;
	ASSERT_TRUE(!gguf_llama_write(b, &p, errbuf, sizeof(errbuf)));
	y = read_file(b, &ny);
	ASSERT_TRUE(y && nx == ny);
	same = !memcmp(x, y, nx);
	free(x);
	free(y);
	ASSERT_TRUE(!same);
}

TEST_F(gguf_test, llama_check)
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
		ASSERT_TRUE(gguf_llama_write(tmp_path("bad.gguf"), &p, errbuf, sizeof(errbuf)) == -EINVAL);
		ASSERT_NE(NULL, strstr(errbuf, frag[i]))
			TH_LOG("case %zu: '%s', expected '%s'", i, errbuf, frag[i]);
	}
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

/*
 * Each malformed file is a variant of the fixture "malformed": its
 * builder, and the errno and message fragment gguf_open() must give.
 */
FIXTURE(malformed) {
};

FIXTURE_VARIANT(malformed) {
	void (*build)(struct raw *r);
	int ret;
	const char *frag;
};

FIXTURE_SETUP(malformed)
{
	mk_tmpdir(_metadata);
}

FIXTURE_TEARDOWN(malformed)
{
	rm_tmpdir();
}

FIXTURE_VARIANT_ADD(malformed, bad_magic) {
	.build = m_magic, .ret = -EINVAL,
	.frag = "header: bad magic 67 67 6a 74, expected \"GGUF\"",
};

FIXTURE_VARIANT_ADD(malformed, version_1) {
	.build = m_version1, .ret = -EINVAL,
	.frag = "header: unsupported version 1 ",
};

FIXTURE_VARIANT_ADD(malformed, version_4) {
	.build = m_version4, .ret = -EINVAL,
	.frag = "header: unsupported version 4 ",
};

FIXTURE_VARIANT_ADD(malformed, big_endian) {
	.build = m_big_endian, .ret = -EINVAL,
	.frag = "a big-endian GGUF file",
};

FIXTURE_VARIANT_ADD(malformed, truncated_header) {
	.build = m_short_header, .ret = -EINVAL,
	.frag = "header: truncated: 4 bytes needed at offset 4, file size 6",
};

FIXTURE_VARIANT_ADD(malformed, empty_file) {
	.build = m_empty, .ret = -EINVAL,
	.frag = "header: truncated: 4 bytes needed at offset 0, file size 0",
};

FIXTURE_VARIANT_ADD(malformed, huge_tensor_count) {
	.build = m_tensors_huge, .ret = -E2BIG,
	.frag = "tensor count 1099511627776 exceeds the limit of 1048576",
};

FIXTURE_VARIANT_ADD(malformed, tensor_count_beyond_file) {
	.build = m_tensors_many, .ret = -EINVAL,
	.frag = "tensor count 1000 cannot fit in the",
};

FIXTURE_VARIANT_ADD(malformed, huge_kv_count) {
	.build = m_kv_huge, .ret = -E2BIG,
	.frag = "metadata kv count 18446744073709551615 exceeds",
};

FIXTURE_VARIANT_ADD(malformed, kv_count_beyond_file) {
	.build = m_kv_many, .ret = -EINVAL,
	.frag = "metadata kv count 100 cannot fit",
};

FIXTURE_VARIANT_ADD(malformed, huge_key_length) {
	.build = m_key_huge, .ret = -E2BIG,
	.frag = "kv 0: key length 9223372036854775808 exceeds the limit of 65535 bytes",
};

FIXTURE_VARIANT_ADD(malformed, empty_key) {
	.build = m_key_empty, .ret = -EINVAL,
	.frag = "kv 0: empty key",
};

FIXTURE_VARIANT_ADD(malformed, NUL_in_key) {
	.build = m_key_nul, .ret = -EINVAL,
	.frag = "kv 0: key contains a NUL byte",
};

FIXTURE_VARIANT_ADD(malformed, huge_string_length) {
	.build = m_str_huge, .ret = -E2BIG,
	.frag = "kv 0 'k': string length 1099511627776 exceeds the limit of 1048576 bytes",
};

FIXTURE_VARIANT_ADD(malformed, string_beyond_file) {
	.build = m_str_eof, .ret = -EINVAL,
	.frag = "kv 0 'k': truncated: string of 1000 bytes at offset 45, file size 55",
};

FIXTURE_VARIANT_ADD(malformed, unknown_value_type) {
	.build = m_value_type, .ret = -EINVAL,
	.frag = "kv 0 'k': unknown value type 13",
};

FIXTURE_VARIANT_ADD(malformed, value_beyond_file) {
	.build = m_value_eof, .ret = -EINVAL,
	.frag = "kv 0 'k': truncated: 8 bytes needed",
};

FIXTURE_VARIANT_ADD(malformed, bool_2) {
	.build = m_bool, .ret = -EINVAL,
	.frag = "kv 0 'k': bool value 2 at offset 37 is neither 0 nor 1",
};

FIXTURE_VARIANT_ADD(malformed, bool_array) {
	.build = m_array_bool, .ret = -EINVAL,
	.frag = "bool array value 5 at offset 51",
};

FIXTURE_VARIANT_ADD(malformed, huge_array_length) {
	.build = m_array_huge, .ret = -EINVAL,
	.frag = "kv 0 'k': array length 1152921504606846976 cannot fit",
};

FIXTURE_VARIANT_ADD(malformed, string_array_beyond_file) {
	.build = m_array_strs, .ret = -EINVAL,
	.frag = "array length 3 cannot fit in the 16 bytes",
};

FIXTURE_VARIANT_ADD(malformed, array_of_arrays) {
	.build = m_array_nested, .ret = -EINVAL,
	.frag = "kv 0 'k': arrays of arrays are not supported",
};

FIXTURE_VARIANT_ADD(malformed, unknown_array_type) {
	.build = m_array_type, .ret = -EINVAL,
	.frag = "unknown array element type 99",
};

FIXTURE_VARIANT_ADD(malformed, duplicate_key) {
	.build = m_key_dup, .ret = -EINVAL,
	.frag = "kv 2 'a': duplicate key (first at kv 0)",
};

FIXTURE_VARIANT_ADD(malformed, long_key_in_message) {
	.build = m_key_long, .ret = -EINVAL,
	.frag = "kkkkkkkkkk...': unknown value type 77",
};

FIXTURE_VARIANT_ADD(malformed, alignment_type) {
	.build = m_align_type, .ret = -EINVAL,
	.frag = "kv 1 'general.alignment': has type uint64, expected uint32",
};

FIXTURE_VARIANT_ADD(malformed, alignment_24) {
	.build = m_align_24, .ret = -EINVAL,
	.frag = "alignment 24 is not a power of two",
};

FIXTURE_VARIANT_ADD(malformed, alignment_0) {
	.build = m_align_0, .ret = -EINVAL,
	.frag = "alignment 0 is not a power of two",
};

FIXTURE_VARIANT_ADD(malformed, tensor_name_too_long) {
	.build = m_name_long, .ret = -E2BIG,
	.frag = "tensor 0: name length 64 exceeds the limit of 63 bytes",
};

FIXTURE_VARIANT_ADD(malformed, empty_tensor_name) {
	.build = m_name_empty, .ret = -EINVAL,
	.frag = "tensor 0: empty name",
};

FIXTURE_VARIANT_ADD(malformed, NUL_in_tensor_name) {
	.build = m_name_nul, .ret = -EINVAL,
	.frag = "tensor 0: name contains a NUL byte",
};

FIXTURE_VARIANT_ADD(malformed, unprintable_name) {
	.build = m_name_ctrl, .ret = -EINVAL,
	.frag = "tensor 0 '?[2J': n_dims 0",
};

FIXTURE_VARIANT_ADD(malformed, n_dims_0) {
	.build = m_ndims_0, .ret = -EINVAL,
	.frag = "tensor 0 'a': n_dims 0 is out of range 1..4",
};

FIXTURE_VARIANT_ADD(malformed, n_dims_5) {
	.build = m_ndims_5, .ret = -EINVAL,
	.frag = "tensor 0 'a': n_dims 5 is out of range 1..4",
};

FIXTURE_VARIANT_ADD(malformed, zero_dimension) {
	.build = m_dim_0, .ret = -EINVAL,
	.frag = "tensor 0 'a': dims[1] is 0",
};

FIXTURE_VARIANT_ADD(malformed, dims_product_overflow) {
	.build = m_dims_overflow, .ret = -EINVAL,
	.frag = "tensor 0 'a': element count overflows int64 at dims[1] = 4294967296",
};

FIXTURE_VARIANT_ADD(malformed, size_overflow) {
	.build = m_size_overflow, .ret = -EINVAL,
	.frag = "size in bytes overflows int64",
};

FIXTURE_VARIANT_ADD(malformed, unknown_tensor_type) {
	.build = m_type_unknown, .ret = -EINVAL,
	.frag = "tensor 0 'a': unknown tensor type 42",
};

FIXTURE_VARIANT_ADD(malformed, removed_tensor_type) {
	.build = m_type_removed, .ret = -EINVAL,
	.frag = "unknown tensor type 4",
};

FIXTURE_VARIANT_ADD(malformed, dims_0_not_a_block_multiple) {
	.build = m_block, .ret = -EINVAL,
	.frag = "tensor 0 'a': dims[0] = 48 is not a multiple of the q8_0 block size 32",
};

FIXTURE_VARIANT_ADD(malformed, misaligned_offset) {
	.build = m_misaligned, .ret = -EINVAL,
	.frag = "tensor 1 'b': offset 48 is not a multiple of the alignment 32",
};

FIXTURE_VARIANT_ADD(malformed, misaligned_for_alignment_64) {
	.build = m_misaligned_64, .ret = -EINVAL,
	.frag = "offset 32 is not a multiple of the alignment 64",
};

FIXTURE_VARIANT_ADD(malformed, data_beyond_end_of_file) {
	.build = m_beyond_eof, .ret = -EINVAL,
	.frag = "tensor 1 'b': data [224, +68) beyond end of file (size 291)",
};

FIXTURE_VARIANT_ADD(malformed, offset_far_beyond_file) {
	.build = m_offset_huge, .ret = -EINVAL,
	.frag = "tensor 0 'a': data offset 4611686018427387904 (data section at 64) beyond end of file",
};

FIXTURE_VARIANT_ADD(malformed, no_data_section) {
	.build = m_no_data, .ret = -EINVAL,
	.frag = "tensor 0 'a': data offset 0 (data section at 64) beyond",
};

FIXTURE_VARIANT_ADD(malformed, overlapping_tensors) {
	.build = m_overlap, .ret = -EINVAL,
	.frag = "tensor 1 'b': data [224, +68) overlaps tensor 0 'a' [192, +64)",
};

FIXTURE_VARIANT_ADD(malformed, overlap_with_unprintable_name) {
	.build = m_overlap_ctrl, .ret = -EINVAL,
	.frag = "overlaps tensor 0 'a?b' [",
};

FIXTURE_VARIANT_ADD(malformed, overlap_out_of_order) {
	.build = m_overlap_order, .ret = -EINVAL,
	.frag = "tensor 2 'c': data [192, +32) overlaps tensor 1 'a' [128, +256)",
};

FIXTURE_VARIANT_ADD(malformed, duplicate_tensor_name) {
	.build = m_name_dup, .ret = -EINVAL,
	.frag = "tensor 1 'a': duplicate name (first at tensor 0)",
};

TEST_F(malformed, refused)
{
	static struct raw r;
	const char *path = tmp_path("bad.gguf");

	r.len = 0;
	variant->build(&r);
	ASSERT_EQ(0, write_file(path, r.p, r.len));
	expect_fail(_metadata, path, variant->ret, variant->frag);
}

TEST_F(gguf_test, raw_valid)
{
	static struct raw r;
	const char *path = tmp_path("base.gguf");
	struct gguf_file *f;

	base_valid(&r);
	ASSERT_TRUE(!write_file(path, r.p, r.len));
	ASSERT_EQ(0, gguf_open(path, &f, errbuf, sizeof(errbuf))) TH_LOG("%s", errbuf);
	ASSERT_EQ(2, gguf_tensor_count(f));
	ASSERT_EQ(192, gguf_data_offset(f));
	ASSERT_EQ(224, gguf_find_tensor(f, "b")->file_offset);
	gguf_close(f);
}

TEST_F(gguf_test, not_a_file)
{
	const char *fifo = tmp_path("fifo");

	expect_fail(_metadata, tmpdir, -EINVAL, "not a regular file or block device");
	/* a FIFO without a writer: refused, not waited for */
	ASSERT_TRUE(!mkfifo(fifo, 0600));
	expect_fail(_metadata, fifo, -EINVAL, "not a regular file or block device");
	expect_fail(_metadata, tmp_path("missing.gguf"), -ENOENT, "No such file");
}

/* an array larger than the memory limit, in a sparse file that can hold it */
TEST_F(gguf_test, memory_limit)
{
	static struct raw r;
	const char *path = tmp_path("sparse.gguf");
	int fd;

	r.len = 0;
	one_kv(&r, GGUF_TYPE_ARRAY);
	r_u32(&r, GGUF_TYPE_UINT8);
	r_u64(&r, (GGUF_MAX_MEMORY) + 1);
	ASSERT_TRUE(!write_file(path, r.p, r.len));
	fd = open(path, O_WRONLY);
	ASSERT_TRUE(fd >= 0);
	ASSERT_TRUE(!ftruncate(fd, GGUF_MAX_MEMORY + 4096));
	close(fd);
	expect_fail(_metadata, path, -E2BIG, "kv 0 'k': needs more than the 256 MiB");
}

/*
 * Every prefix of a good file: each cut in the header, metadata, tensor
 * infos and padding, and cuts through the data (every 61st byte, and each
 * tensor's last byte) must fail cleanly; cuts in the final padding leave
 * a valid file.
 */
static void truncate_all(struct __test_metadata *_metadata, const char *src)
{
	const char *path = tmp_path("cut.gguf");
	uint64_t data, last_end = 0;
	struct gguf_file *f;
	size_t size, cuts = 0;
	uint8_t *p;
	int fd, ret = 0;

	ASSERT_TRUE(!gguf_open(src, &f, errbuf, sizeof(errbuf)));
	data = gguf_data_offset(f);
	for (size_t i = 0; i < gguf_tensor_count(f); i++) {
		const struct gguf_tensor *t = gguf_tensor(f, i);

		if (t->file_offset + t->size > last_end)
			last_end = t->file_offset + t->size;
	}
	gguf_close(f);
	p = read_file(src, &size);
	ASSERT_TRUE(p);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_TRUE(fd >= 0);
	for (uint64_t cut = 0; cut <= size && !ret; cut++) {
		bool valid = cut >= last_end;
		int r;

		if (cut > data && cut < last_end - 1 && cut % 61)
			continue;
		if (ftruncate(fd, 0) || pwrite(fd, p, cut, 0) != (ssize_t)cut) {
			TH_LOG("writing %" PRIu64 " bytes: %s", cut, strerror(errno));
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
			TH_LOG("cut at %" PRIu64 " of %zu: %d '%s'", cut, size, r,
			       r ? errbuf : "accepted");
			ret = 1;
		}
	}
	ksft_print_msg("%zu cuts of %zu bytes (header region %" PRIu64 ")\n", cuts, size, data);
	close(fd);
	free(p);
	ASSERT_EQ(0, ret);
}

/* every prefix of a file: minutes on a busy disk, not the 30 s default */
TEST_F_TIMEOUT(gguf_test, truncate_all_types, 300)
{
	const char *path = tmp_path("all.gguf");

	ASSERT_EQ(0, write_all_types(path));
	truncate_all(_metadata, path);
}

TEST_F_TIMEOUT(gguf_test, truncate_llama, 300)
{
	struct gguf_llama_params p = small_params(GGUF_TENSOR_Q4_0);
	const char *path = tmp_path("llama-cut.gguf");

	ASSERT_TRUE(!gguf_llama_write(path, &p, errbuf, sizeof(errbuf)));
	truncate_all(_metadata, path);
}

TEST_HARNESS_MAIN
