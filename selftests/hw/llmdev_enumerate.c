// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev enumeration: the cards the VM was started with are all there, with
 * the PCI identity, capabilities and BARs of the spec (model-semantics "PCI").
 * Reads sysfs and config space only.
 */
#define _GNU_SOURCE
#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

FIXTURE(card) {
	struct llmdev_cards cs;
};

FIXTURE_SETUP(card)
{
	LLMDEV_CARDS_SETUP(&self->cs);
}

FIXTURE_TEARDOWN(card)
{
	llmdev_cards_close(&self->cs);
}

TEST_F(card, count)
{
	uint64_t want;
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++)
		TH_LOG("card %d: %s", i, self->cs.card[i].bdf);
	if (llmdev_vmconf_u64("CARDS", &want))
		SKIP(return, "no CARDS= in " LLMDEV_VMCONF "; found %d", self->cs.n);
	ASSERT_EQ(want, (uint64_t)self->cs.n);
}

TEST_F(card, identity)
{
	static const struct { const char *attr; uint64_t want; } ids[] = {
		{ "vendor", LLMDEV_PCI_VENDOR_ID },
		{ "device", LLMDEV_PCI_DEVICE_ID },
		{ "subsystem_vendor", LLMDEV_PCI_SUBVENDOR_ID },
		{ "subsystem_device", LLMDEV_PCI_SUBDEVICE_ID },
		{ "class", LLMDEV_PCI_CLASS << 8 },
		{ "revision", LLMDEV_PCI_REVISION },
	};
	int i;
	size_t j;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		uint8_t rev, hdr;
		uint16_t v;

		for (j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
			uint64_t val = ~0ull;

			EXPECT_EQ(0, llmdev_sysfs_read_u64(c->bdf, ids[j].attr, &val))
				TH_LOG("%s: %s", c->bdf, ids[j].attr);
			EXPECT_EQ(ids[j].want, val)
				TH_LOG("%s: %s", c->bdf, ids[j].attr);
		}
		/* and the same in config space */
		EXPECT_EQ(LLMDEV_PCI_VENDOR_ID, llmdev_cfg_read16(c, PCI_VENDOR_ID));
		EXPECT_EQ(LLMDEV_PCI_DEVICE_ID, llmdev_cfg_read16(c, PCI_DEVICE_ID));
		EXPECT_EQ(LLMDEV_PCI_CLASS, llmdev_cfg_read16(c, PCI_CLASS_DEVICE));
		EXPECT_EQ(LLMDEV_PCI_SUBVENDOR_ID,
			  llmdev_cfg_read16(c, PCI_SUBSYSTEM_VENDOR_ID));
		EXPECT_EQ(LLMDEV_PCI_SUBDEVICE_ID, llmdev_cfg_read16(c, PCI_SUBSYSTEM_ID));
		ASSERT_EQ(0, llmdev_cfg_read(c, PCI_REVISION_ID, &rev, 1));
		EXPECT_EQ(LLMDEV_PCI_REVISION, rev);
		ASSERT_EQ(0, llmdev_cfg_read(c, PCI_HEADER_TYPE, &hdr, 1));
		EXPECT_EQ(PCI_HEADER_TYPE_NORMAL, hdr & 0x7f);
		v = llmdev_cfg_read16(c, PCI_STATUS);
		EXPECT_NE(0, v & PCI_STATUS_CAP_LIST);
	}
}

TEST_F(card, pcie_capability)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		unsigned int pos = llmdev_cfg_find_cap(c, PCI_CAP_ID_EXP);
		uint32_t devcap = 0;
		uint16_t flags;

		ASSERT_NE(0, pos) TH_LOG("%s: no PCI Express capability", c->bdf);
		flags = llmdev_cfg_read16(c, pos + PCI_EXP_FLAGS);
		EXPECT_EQ(PCI_EXP_TYPE_ENDPOINT, (flags & PCI_EXP_FLAGS_TYPE) >> 4)
			TH_LOG("%s: PCIe flags %#x", c->bdf, flags);
		EXPECT_LE(2, flags & PCI_EXP_FLAGS_VERS);
		ASSERT_EQ(0, llmdev_cfg_read(c, pos + PCI_EXP_DEVCAP, &devcap, 4));
		EXPECT_NE(0, devcap & PCI_EXP_DEVCAP_FLR)
			TH_LOG("%s: DevCap %#x has no FLR", c->bdf, devcap);
	}
}

TEST_F(card, msix_capability)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		unsigned int pos = llmdev_cfg_find_cap(c, PCI_CAP_ID_MSIX);
		uint32_t table = 0, pba = 0;
		uint16_t ctrl;

		ASSERT_NE(0, pos) TH_LOG("%s: no MSI-X capability", c->bdf);
		ctrl = llmdev_cfg_read16(c, pos + PCI_MSIX_FLAGS);
		EXPECT_EQ(LLMDEV_NUM_VECTORS, (ctrl & PCI_MSIX_FLAGS_QSIZE) + 1);
		/* nobody enabled it: there is no driver */
		EXPECT_EQ(0, ctrl & PCI_MSIX_FLAGS_ENABLE);
		ASSERT_EQ(0, llmdev_cfg_read(c, pos + PCI_MSIX_TABLE, &table, 4));
		ASSERT_EQ(0, llmdev_cfg_read(c, pos + PCI_MSIX_PBA, &pba, 4));
		EXPECT_EQ(LLMDEV_BAR_REGS, table & PCI_MSIX_TABLE_BIR);
		EXPECT_EQ(LLMDEV_MSIX_TABLE_OFFSET, table & PCI_MSIX_TABLE_OFFSET);
		EXPECT_EQ(LLMDEV_BAR_REGS, pba & PCI_MSIX_PBA_BIR);
		EXPECT_EQ(LLMDEV_MSIX_PBA_OFFSET, pba & PCI_MSIX_PBA_OFFSET);
	}
}

TEST_F(card, msi_capability)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		unsigned int pos = llmdev_cfg_find_cap(c, PCI_CAP_ID_MSI);
		uint16_t ctrl;

		ASSERT_NE(0, pos) TH_LOG("%s: no MSI capability", c->bdf);
		ctrl = llmdev_cfg_read16(c, pos + PCI_MSI_FLAGS);
		/* one vector: Multiple Message Capable = 0 */
		EXPECT_EQ(0, ctrl & PCI_MSI_FLAGS_QMASK);
		EXPECT_EQ(0, ctrl & PCI_MSI_FLAGS_ENABLE);
	}
}

TEST_F(card, aer_capability)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		unsigned int pos = llmdev_cfg_find_ext_cap(c, PCI_EXT_CAP_ID_ERR);

		EXPECT_LE(PCI_CFG_SPACE_SIZE, pos)
			TH_LOG("%s: no AER extended capability", c->bdf);
	}
}

TEST_F(card, bars)
{
	uint64_t hbm_size = 0;
	int i;

	LLMDEV_REQUIRE(&self->cs);
	if (llmdev_vmconf_u64("HBM_SIZE", &hbm_size))
		TH_LOG("no HBM_SIZE= in " LLMDEV_VMCONF ": checking power of two only");
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		struct llmdev_bar *b0 = &c->res[LLMDEV_BAR_REGS];
		struct llmdev_bar *b2 = &c->res[LLMDEV_BAR_HBM];
		uint32_t raw0 = 0, raw2 = 0;

		TH_LOG("%s: BAR0 %#" PRIx64 "+%#" PRIx64 " flags %#" PRIx64
		       ", BAR2 %#" PRIx64 "+%#" PRIx64 " flags %#" PRIx64,
		       c->bdf, b0->start, b0->size, b0->flags, b2->start,
		       b2->size, b2->flags);
		EXPECT_EQ(LLMDEV_BAR_REGS_SIZE, b0->size);
		EXPECT_NE(0, b0->flags & LLMDEV_IORESOURCE_MEM);
		EXPECT_NE(0, b0->flags & LLMDEV_IORESOURCE_MEM_64);
		EXPECT_EQ(0, b0->flags & LLMDEV_IORESOURCE_PREFETCH);

		EXPECT_NE(0, b2->flags & LLMDEV_IORESOURCE_MEM);
		EXPECT_NE(0, b2->flags & LLMDEV_IORESOURCE_MEM_64);
		EXPECT_NE(0, b2->flags & LLMDEV_IORESOURCE_PREFETCH);
		EXPECT_EQ(0, b2->size & (b2->size - 1));
		EXPECT_LE(16ull << 20, b2->size);
		if (hbm_size)
			EXPECT_EQ(hbm_size, b2->size);

		/* the 64-bit BARs use the next slot for their upper half */
		EXPECT_EQ(0, c->res[LLMDEV_BAR_REGS + 1].size);
		EXPECT_EQ(0, c->res[LLMDEV_BAR_HBM + 1].size);
		EXPECT_EQ(0, c->res[4].size);

		ASSERT_EQ(0, llmdev_cfg_read(c, PCI_BASE_ADDRESS_0, &raw0, 4));
		ASSERT_EQ(0, llmdev_cfg_read(c, PCI_BASE_ADDRESS_2, &raw2, 4));
		EXPECT_EQ(PCI_BASE_ADDRESS_SPACE_MEMORY, raw0 & PCI_BASE_ADDRESS_SPACE);
		EXPECT_EQ(PCI_BASE_ADDRESS_MEM_TYPE_64, raw0 & PCI_BASE_ADDRESS_MEM_TYPE_MASK);
		EXPECT_EQ(0, raw0 & PCI_BASE_ADDRESS_MEM_PREFETCH);
		EXPECT_EQ(PCI_BASE_ADDRESS_MEM_TYPE_64, raw2 & PCI_BASE_ADDRESS_MEM_TYPE_MASK);
		EXPECT_NE(0, raw2 & PCI_BASE_ADDRESS_MEM_PREFETCH);
	}
}

LLMDEV_HARNESS_MAIN
