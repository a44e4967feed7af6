/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the llmdev hardware selftests: the "card" fixture part and small
 * assertions on the error block. Include after kselftest_harness.h.
 */
#ifndef LLMDEV_TEST_H
#define LLMDEV_TEST_H

#include <errno.h>
#include <inttypes.h>

#include "llmdev_hw.h"

/*
 * Open every card or SKIP. SKIP() in a fixture setup does not stop the test
 * body on older harnesses (6.1), hence LLMDEV_REQUIRE() at the top of each
 * test as well.
 */
#define LLMDEV_CARDS_SETUP(cs) do {					\
	int __ret = llmdev_cards_open(cs);				\
	if (__ret == -ENODEV)						\
		SKIP(return, "%s", (cs)->err);				\
	ASSERT_EQ(0, __ret) TH_LOG("%s", (cs)->err);			\
} while (0)

#define LLMDEV_REQUIRE(cs) do {						\
	if (_metadata->skip)	/* the setup skipped after the cards */	\
		return;							\
	if (!(cs)->n)							\
		SKIP(return, "%s", (cs)->err[0] ? (cs)->err : "no card"); \
} while (0)

/* soft reset of card c, or the test ends */
#define LLMDEV_RESET(c) \
	ASSERT_EQ(0, llmdev_soft_reset(c)) TH_LOG("%s", (c)->err)

/* the error log entry of sequence number seq */
static inline uint32_t llmdev_log_rd32(struct llmdev_card *c, uint32_t seq,
				       uint32_t field)
{
	return llmdev_rd32(c, LLMDEV_REG_ERR_LOG +
			   (seq % LLMDEV_ERR_LOG_ENTRIES) * LLMDEV_ERR_LOG_STRIDE + field);
}

static inline uint64_t llmdev_log_rd64(struct llmdev_card *c, uint32_t seq,
				       uint32_t field)
{
	return llmdev_rd64(c, LLMDEV_REG_ERR_LOG +
			   (seq % LLMDEV_ERR_LOG_ENTRIES) * LLMDEV_ERR_LOG_STRIDE + field);
}

/*
 * The next error logged (sequence number seq) has this code and source:
 * ERR_LOG_HEAD moved past it, ERR_STATUS has the bit, the entry matches.
 */
#define EXPECT_ERR_LOGGED(c, seq, code, source) do {			\
	EXPECT_LT((uint32_t)(seq), llmdev_rd32(c, LLMDEV_REG_ERR_LOG_HEAD)); \
	EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_ERR_STATUS) & (1u << (code))); \
	EXPECT_EQ((uint32_t)(code), llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE)); \
	EXPECT_EQ((uint32_t)(source), llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_SOURCE)); \
	EXPECT_EQ((uint32_t)(seq), llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_SEQ)); \
} while (0)

#define LLMDEV_SRC_NONE		0xffffffffu
#define LLMDEV_SRC(ring, slot)	((uint32_t)(ring) << 16 | (slot))

/*
 * TEST_HARNESS_MAIN, but the whole binary says SKIP (exit 4) when it cannot
 * run at all: not root, or no card.
 */
#define LLMDEV_HARNESS_MAIN						\
	int main(int argc, char **argv)					\
	{								\
		char __bdf[1][32], __drv[64];				\
									\
		if (geteuid()) {					\
			ksft_print_header();				\
			ksft_exit_skip("needs root (sysfs BAR mmap, pagemap)\n"); \
		}							\
		if (!llmdev_find_cards(__bdf, 1)) {			\
			ksft_print_header();				\
			ksft_exit_skip("no llmdev card (%04x:%04x)\n",	\
				       LLMDEV_PCI_VENDOR_ID, LLMDEV_PCI_DEVICE_ID); \
		}							\
		if (llmdev_card_driver(__bdf[0], __drv, sizeof(__drv))) { \
			ksft_print_header();				\
			ksft_exit_skip("%s is bound to driver %s; these tests need unbound cards\n", \
				       __bdf[0], __drv);		\
		}							\
		return test_harness_run(argc, argv);			\
	}

#endif /* LLMDEV_TEST_H */
