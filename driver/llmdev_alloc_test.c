// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of the HBM extent allocator. Built as llmdev_kunit.ko on
 * kernels with CONFIG_KUNIT; the suite runs when the module is loaded.
 */
#include <kunit/test.h>
#include <linux/sizes.h>

#include "llmdev_alloc.c"

#define SZ	((u64)SZ_1G)

struct llmdev_alloc_test {
	struct list_head used;
	struct llmdev_extent ext[16];
	unsigned int n;
};

static int llmdev_alloc_test_init(struct kunit *test)
{
	struct llmdev_alloc_test *t;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	INIT_LIST_HEAD(&t->used);
	test->priv = t;
	return 0;
}

/* Allocate like the driver does: find, then insert after prev. */
static int take(struct kunit *test, u64 len, u64 align, u64 *offset)
{
	struct llmdev_alloc_test *t = test->priv;
	struct list_head *prev;
	int ret;

	ret = llmdev_extent_find(&t->used, SZ, len, align, offset, &prev);
	if (ret)
		return ret;
	KUNIT_ASSERT_LT(test, t->n, ARRAY_SIZE(t->ext));
	t->ext[t->n].offset = *offset;
	t->ext[t->n].length = len;
	list_add(&t->ext[t->n].node, prev);
	t->n++;
	return 0;
}

static void llmdev_alloc_empty(struct kunit *test)
{
	struct llmdev_alloc_test *t = test->priv;
	u64 off;

	KUNIT_EXPECT_EQ(test, llmdev_extent_largest_free(&t->used, SZ), SZ);
	KUNIT_EXPECT_EQ(test, take(test, SZ, 4096, &off), 0);
	KUNIT_EXPECT_EQ(test, off, 0ULL);
	KUNIT_EXPECT_EQ(test, llmdev_extent_largest_free(&t->used, SZ), 0ULL);
	KUNIT_EXPECT_EQ(test, take(test, 4096, 4096, &off), -ENOSPC);
}

static void llmdev_alloc_too_big(struct kunit *test)
{
	u64 off;

	KUNIT_EXPECT_EQ(test, take(test, SZ + 4096, 4096, &off), -ENOSPC);
}

static void llmdev_alloc_first_fit(struct kunit *test)
{
	struct llmdev_alloc_test *t = test->priv;
	u64 a, b, c, off;

	KUNIT_ASSERT_EQ(test, take(test, 4096, 4096, &a), 0);
	KUNIT_ASSERT_EQ(test, take(test, 8192, 4096, &b), 0);
	KUNIT_ASSERT_EQ(test, take(test, 4096, 4096, &c), 0);
	KUNIT_EXPECT_EQ(test, a, 0ULL);
	KUNIT_EXPECT_EQ(test, b, 4096ULL);
	KUNIT_EXPECT_EQ(test, c, 12288ULL);

	/* free the middle one: an 8 KiB hole, then the tail */
	list_del(&t->ext[1].node);
	KUNIT_EXPECT_EQ(test, llmdev_extent_largest_free(&t->used, SZ),
			SZ - 16384);
	KUNIT_EXPECT_EQ(test, take(test, 4096, 4096, &off), 0);
	KUNIT_EXPECT_EQ(test, off, 4096ULL);	/* first fit: the hole */
	KUNIT_EXPECT_EQ(test, take(test, 8192, 4096, &off), 0);
	KUNIT_EXPECT_EQ(test, off, 16384ULL);	/* hole too small now */
	KUNIT_EXPECT_EQ(test, take(test, 4096, 4096, &off), 0);
	KUNIT_EXPECT_EQ(test, off, 8192ULL);	/* the rest of the hole */
}

static void llmdev_alloc_alignment(struct kunit *test)
{
	u64 off;

	KUNIT_ASSERT_EQ(test, take(test, 4096, 4096, &off), 0);
	KUNIT_EXPECT_EQ(test, take(test, 4096, 1 << 20, &off), 0);
	KUNIT_EXPECT_EQ(test, off, 1ULL << 20);
	KUNIT_EXPECT_EQ(test, take(test, 4096, 4096, &off), 0);
	KUNIT_EXPECT_EQ(test, off, 4096ULL);	/* the gap before it */
	/* an alignment larger than the space fits only at 0, which is used */
	KUNIT_EXPECT_EQ(test, take(test, 4096, 1ULL << 63, &off), -ENOSPC);
}

static void llmdev_alloc_largest_free(struct kunit *test)
{
	struct llmdev_alloc_test *t = test->priv;
	u64 off;
	int i;

	for (i = 0; i < 8; i++)
		KUNIT_ASSERT_EQ(test, take(test, SZ / 8, 4096, &off), 0);
	KUNIT_EXPECT_EQ(test, llmdev_extent_largest_free(&t->used, SZ), 0ULL);
	/* free every other one: fragmented, each hole SZ / 8 */
	for (i = 0; i < 8; i += 2)
		list_del(&t->ext[i].node);
	KUNIT_EXPECT_EQ(test, llmdev_extent_largest_free(&t->used, SZ), SZ / 8);
	KUNIT_EXPECT_EQ(test, take(test, SZ / 4, 4096, &off), -ENOSPC);
	KUNIT_EXPECT_EQ(test, take(test, SZ / 8, 4096, &off), 0);
	KUNIT_EXPECT_EQ(test, off, 0ULL);
}

static struct kunit_case llmdev_alloc_cases[] = {
	KUNIT_CASE(llmdev_alloc_empty),
	KUNIT_CASE(llmdev_alloc_too_big),
	KUNIT_CASE(llmdev_alloc_first_fit),
	KUNIT_CASE(llmdev_alloc_alignment),
	KUNIT_CASE(llmdev_alloc_largest_free),
	{}
};

static struct kunit_suite llmdev_alloc_suite = {
	.name = "llmdev_alloc",
	.init = llmdev_alloc_test_init,
	.test_cases = llmdev_alloc_cases,
};

kunit_test_suite(llmdev_alloc_suite);

MODULE_DESCRIPTION("KUnit tests for the llmdev HBM allocator");
MODULE_LICENSE("GPL");
