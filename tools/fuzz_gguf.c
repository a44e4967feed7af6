// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness of the GGUF reader: each input is written to a memfd
 * and opened with gguf_open() by its /proc/self/fd path, as a file on disk
 * would be. A refused input must come with a one-line message; an
 * accepted one is walked completely (every value, every lookup, the first
 * and last bytes of every tensor's data) and its invariants checked, so
 * that ASan and UBSan see every byte the reader hands out.
 *
 *   make -C tools O=... fuzz; $(O)/fuzz/fuzz_gguf [libFuzzer options] CORPUS...
 *
 * $(O)/host-tests/gguf_fuzz_smoke runs it briefly on seeds from gguf-gen.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf.h"

#define REQUIRE(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_gguf: %s:%d: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

static volatile uint64_t sink;

static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += b[i];
	sink += s;
}

static size_t elem_size(uint32_t type)
{
	switch (type) {
	case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
	case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
	case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
	default: return 8;
	}
}

static void walk_kv(const struct gguf_file *f, const struct gguf_kv *kv)
{
	const void *elems;
	uint64_t n;

	REQUIRE(kv->key[0] && gguf_find_kv(f, kv->key) == kv);
	REQUIRE(kv->type < GGUF_TYPE_COUNT && kv->elem_type < GGUF_TYPE_COUNT);
	if (kv->type == GGUF_TYPE_STRING) {
		REQUIRE(kv->v.str.s[kv->v.str.len] == '\0');
		touch(kv->v.str.s, kv->v.str.len);
	} else if (kv->type == GGUF_TYPE_ARRAY) {
		REQUIRE(kv->elem_type != GGUF_TYPE_ARRAY);
		REQUIRE(!gguf_get_array(f, kv->key, kv->elem_type, &elems, &n));
		REQUIRE(elems == kv->v.arr && n == kv->n);
		if (kv->elem_type != GGUF_TYPE_STRING) {
			touch(elems, n * elem_size(kv->elem_type));
			return;
		}
		for (uint64_t i = 0; i < n; i++) {
			const struct gguf_str *s = (const struct gguf_str *)elems + i;

			REQUIRE(s->s[s->len] == '\0');
			touch(s->s, s->len);
		}
	} else {
		REQUIRE(kv->n == 1 && kv->elem_type == kv->type);
		sink += kv->v.u;
	}
}

static void walk_tensor(const struct gguf_file *f, const struct gguf_tensor *t)
{
	uint64_t n, size;
	uint8_t buf[64];
	ssize_t r;

	REQUIRE(gguf_find_tensor(f, t->name) == t);
	REQUIRE(gguf_type_info(t->type));
	REQUIRE(!gguf_tensor_bytes(t->type, t->n_dims, t->dims, &n, &size));
	REQUIRE(n == t->n_elements && size == t->size && size > 0);
	REQUIRE(t->offset % gguf_alignment(f) == 0);
	REQUIRE(t->file_offset == gguf_data_offset(f) + t->offset);
	REQUIRE(t->file_offset + t->size <= gguf_file_size(f));
	r = gguf_read_data(f, t, 0, buf, sizeof(buf));
	REQUIRE(r == (ssize_t)(t->size < sizeof(buf) ? t->size : sizeof(buf)));
	touch(buf, r);
	r = gguf_read_data(f, t, t->size - 1, buf, sizeof(buf));
	REQUIRE(r == 1);
	REQUIRE(gguf_read_data(f, t, t->size, buf, sizeof(buf)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct gguf_file *f;
	char err[512];
	const void *elems;
	const char *s;
	uint32_t u32;
	uint64_t n;
	size_t done = 0;

	if (fd < 0) {
		fd = memfd_create("fuzz_gguf", MFD_CLOEXEC);
		REQUIRE(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	REQUIRE(!ftruncate(fd, 0));
	while (done < size) {
		ssize_t w = pwrite(fd, data + done, size - done, done);

		REQUIRE(w > 0);
		done += w;
	}

	if (gguf_open(path, &f, err, sizeof(err))) {
		REQUIRE(err[0] && !strchr(err, '\n'));
		return 0;
	}
	REQUIRE(gguf_version(f) == 2 || gguf_version(f) == 3);
	REQUIRE(gguf_data_offset(f) % gguf_alignment(f) == 0);
	for (size_t i = 0; i < gguf_kv_count(f); i++)
		walk_kv(f, gguf_kv(f, i));
	for (size_t i = 0; i < gguf_tensor_count(f); i++)
		walk_tensor(f, gguf_tensor(f, i));
	REQUIRE(!gguf_kv(f, gguf_kv_count(f)) && !gguf_tensor(f, gguf_tensor_count(f)));
	/* the lookups llmctl makes */
	if (!gguf_get_str(f, "general.architecture", &s))
		touch(s, strlen(s));
	if (!gguf_get_u32(f, "llama.block_count", &u32))
		sink += u32;
	if (!gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &elems, &n))
		sink += n;
	gguf_close(f);
	return 0;
}
