/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * llmdev card: register map, descriptor and completion formats.
 *
 * This header is the machine-readable half of docs/hardware.md and the only
 * place register offsets are written down. It is shared by the driver and by
 * the QEMU model of the card, so it uses plain C and no kernel or QEMU macros.
 * All registers are little-endian. 64-bit registers may be accessed as one
 * 64-bit access or as two 32-bit accesses (low word first).
 */
#ifndef LLMDEV_REGS_H
#define LLMDEV_REGS_H

#include <linux/types.h>	/* __le64 and friends, in and out of the kernel */

#ifdef __KERNEL__
#include <linux/bits.h>
#elif !defined(BIT)
#define BIT(nr)			(1U << (nr))	/* every register field is 32-bit */
#endif

/* ---- PCI identity ------------------------------------------------------ */
#define LLMDEV_PCI_VENDOR_ID		0x1234
#define LLMDEV_PCI_DEVICE_ID		0x4c4d
#define LLMDEV_PCI_SUBVENDOR_ID		0x1234
#define LLMDEV_PCI_SUBDEVICE_ID		0x0001
#define LLMDEV_PCI_CLASS		0x1200	/* processing accelerator */
#define LLMDEV_PCI_REVISION		0x01

#define LLMDEV_BAR_REGS			0	/* 64 KiB, 64-bit, non-prefetchable */
#define LLMDEV_BAR_HBM			2	/* HBM aperture, 64-bit, prefetchable */
#define LLMDEV_BAR_REGS_SIZE		0x10000
#define LLMDEV_MSIX_TABLE_OFFSET	0xc000	/* in BAR 0 */
#define LLMDEV_MSIX_PBA_OFFSET		0xe000	/* in BAR 0 */

/* ---- Limits --------------------------------------------------------------- */
#define LLMDEV_NUM_RINGS		4	/* rings 0-1 host-to-card, 2-3 card-to-host */
#define LLMDEV_NUM_H2C_RINGS		2
#define LLMDEV_MAX_RINGS		16	/* register space reserved for */
#define LLMDEV_RING_MIN_ENTRIES		2
#define LLMDEV_RING_MAX_ENTRIES		4096
#define LLMDEV_DESC_MAX_SG		4096	/* entries in one scatter-gather table */
#define LLMDEV_ERR_LOG_ENTRIES		16
#define LLMDEV_NUM_LINK_PORTS		4

/* ---- MSI-X vectors ------------------------------------------------------ */
#define LLMDEV_VEC_RING(n)		(n)	/* one per DMA ring */
#define LLMDEV_VEC_ERROR		4
#define LLMDEV_VEC_EVENT		5	/* scrub done, links, collectives */
#define LLMDEV_NUM_VECTORS		8	/* 6 and 7 reserved */

/* ---- Identity and control block (0x0000) --------------------------------- */
#define LLMDEV_REG_ID			0x0000	/* RO  32: LLMDEV_ID_MAGIC */
#define LLMDEV_ID_MAGIC			0x4c4c4d44	/* "LLMD" */
#define LLMDEV_REG_VERSION		0x0004	/* RO  32: spec major << 16 | minor */
#define LLMDEV_SPEC_MAJOR		1
#define LLMDEV_SPEC_MINOR		2
#define LLMDEV_REG_CAPS			0x0008	/* RO  32 */
#define LLMDEV_CAPS_H2C_RINGS(c)	((c) & 0xf)
#define LLMDEV_CAPS_C2H_RINGS(c)	(((c) >> 4) & 0xf)
#define LLMDEV_CAPS_LINK_PORTS(c)	(((c) >> 8) & 0xf)
#define LLMDEV_CAPS_SCRUB		BIT(16)
#define LLMDEV_CAPS_FAULT_INJECT	BIT(17)
#define LLMDEV_CAPS_DESC_VEC		BIT(18)	/* 1.2: LLMDEV_DESC_F_VEC */
#define LLMDEV_REG_STATUS		0x000c	/* RO  32 */
#define LLMDEV_STATUS_READY		BIT(0)
#define LLMDEV_STATUS_ERROR		BIT(1)	/* ERR_STATUS != 0 */
#define LLMDEV_STATUS_ENABLED		BIT(2)	/* CONTROL.ENABLE */
#define LLMDEV_REG_CONTROL		0x0010	/* RW  32 */
#define LLMDEV_CONTROL_ENABLE		BIT(0)	/* DMA engine may run */
#define LLMDEV_CONTROL_RESET		BIT(1)	/* WO: soft reset, self-clearing */
#define LLMDEV_REG_SCRATCH		0x0014	/* RW  32: no effect, reset 0 */
#define LLMDEV_REG_SERIAL		0x0018	/* RO  64 */
#define LLMDEV_REG_HBM_SIZE		0x0020	/* RO  64: bytes */
#define LLMDEV_REG_TIMESTAMP		0x0028	/* RO  64: ns since power-on */
#define LLMDEV_REG_NUM_VECTORS		0x0030	/* RO  32: LLMDEV_NUM_VECTORS */
#define LLMDEV_REG_RESET_COUNT		0x0034	/* RO  32: soft resets + FLRs */

/* ---- Interrupt block (0x0100) -------------------------------------------- */
#define LLMDEV_REG_IRQ_STATUS		0x0100	/* RW1C 32: pending sources */
#define LLMDEV_REG_IRQ_MASK		0x0104	/* RW  32: 1 = masked, reset all ones */
#define LLMDEV_IRQ_RING(n)		BIT(n)
#define LLMDEV_IRQ_ERROR		BIT(16)
#define LLMDEV_IRQ_EVENT		BIT(17)
#define LLMDEV_IRQ_ALL			(0xffffu | LLMDEV_IRQ_ERROR | LLMDEV_IRQ_EVENT)
#define LLMDEV_REG_EVENT_CAUSE		0x0108	/* RW1C 32: why IRQ_EVENT was raised */
#define LLMDEV_EVENT_SCRUB		BIT(0)	/* scrub finished */
#define LLMDEV_EVENT_LINK		BIT(1)	/* see LINK_EVENT */
#define LLMDEV_EVENT_COLL		BIT(2)	/* a collective finished */

/* ---- Error block (0x0200) ------------------------------------------------ */
#define LLMDEV_REG_ERR_STATUS		0x0200	/* RW1C 32: one bit per error kind */
#define LLMDEV_REG_ERR_COUNT		0x0204	/* RO  32: errors since reset */
#define LLMDEV_REG_ERR_LOG_HEAD		0x0208	/* RO  32: entries ever logged */
#define LLMDEV_REG_FAULT_INJECT		0x0210	/* RW  32: test mode, see below */
#define LLMDEV_FAULT_FAIL_NEXT_DESC	BIT(0)	/* self-clears when used */
#define LLMDEV_FAULT_RAISE_ERROR	BIT(1)	/* WO: log an injected error */
#define LLMDEV_FAULT_STALL_RING(n)	BIT(8 + (n))	/* ring stops fetching */
#define LLMDEV_FAULT_VALID_MASK		(0x3u | (0xffffu << 8))
#define LLMDEV_REG_ERR_LOG		0x0400	/* RO: LLMDEV_ERR_LOG_ENTRIES x 32 bytes */
#define LLMDEV_ERR_LOG_STRIDE		0x20
/* error log entry i is at ERR_LOG + (seq % ENTRIES) * STRIDE */
#define LLMDEV_ERR_LOG_CODE		0x00	/* 32: LLMDEV_ERR_* code */
#define LLMDEV_ERR_LOG_SOURCE		0x04	/* 32: ring << 16 | slot, ~0 for none */
#define LLMDEV_ERR_LOG_ADDR		0x08	/* 64: offending address or value */
#define LLMDEV_ERR_LOG_TIME		0x10	/* 64: TIMESTAMP when logged */
#define LLMDEV_ERR_LOG_SEQ		0x18	/* 32: sequence number, from 0 */

/* error codes; ERR_STATUS bit n is set for code n */
#define LLMDEV_ERR_NONE			0
#define LLMDEV_ERR_DESC_FETCH		1	/* descriptor or SG table not in host RAM */
#define LLMDEV_ERR_HOST_ADDR		2	/* data buffer not in host RAM */
#define LLMDEV_ERR_HBM_RANGE		3	/* HBM address + length beyond HBM */
#define LLMDEV_ERR_DESC_FORMAT		4	/* zero length, bad flags, bad SG count */
#define LLMDEV_ERR_DOORBELL		5	/* tail beyond head + size, ring not enabled */
#define LLMDEV_ERR_RING_CONFIG		6	/* bad base alignment or size on enable */
#define LLMDEV_ERR_CMPL_WRITE		7	/* completion write-back failed */
#define LLMDEV_ERR_INJECTED		8	/* fault injection */
#define LLMDEV_ERR_SCRUB		9	/* scrub range beyond HBM */
#define LLMDEV_ERR_REG_ACCESS		10	/* write to a read-only or reserved register */
#define LLMDEV_ERR_MAX			10

/* ---- HBM scrub engine (0x0300) ------------------------------------------- */
#define LLMDEV_REG_SCRUB_ADDR		0x0300	/* RW  64: HBM offset, 4 KiB aligned */
#define LLMDEV_REG_SCRUB_LEN		0x0308	/* RW  64: bytes, multiple of 4 KiB */
#define LLMDEV_REG_SCRUB_PATTERN	0x0310	/* RW  32: fill word */
#define LLMDEV_REG_SCRUB_CTRL		0x0314	/* RW  32 */
#define LLMDEV_SCRUB_CTRL_START		BIT(0)	/* WO: start */
#define LLMDEV_REG_SCRUB_STATUS		0x0318	/* RO  32 */
#define LLMDEV_SCRUB_STATUS_BUSY	BIT(0)
#define LLMDEV_SCRUB_STATUS_DONE	BIT(1)	/* cleared by START */
#define LLMDEV_SCRUB_STATUS_ERROR	BIT(2)	/* cleared by START */
#define LLMDEV_SCRUB_ALIGN		4096

/* ---- DMA rings (0x1000 + n * 0x100) ------------------------------------- */
#define LLMDEV_RING_BASE(n)		(0x1000 + (n) * 0x100)
#define LLMDEV_RING_DESC_BASE		0x00	/* RW  64: IOVA, 64-byte aligned */
#define LLMDEV_RING_CMPL_BASE		0x08	/* RW  64: IOVA, 64-byte aligned */
#define LLMDEV_RING_SIZE		0x10	/* RW  32: entries, power of two */
#define LLMDEV_RING_CTRL		0x14	/* RW  32 */
#define LLMDEV_RING_CTRL_ENABLE		BIT(0)
#define LLMDEV_RING_CTRL_RESET		BIT(1)	/* WO: abort, zero indices */
#define LLMDEV_RING_HEAD		0x18	/* RO  32: descriptors consumed (free-running) */
#define LLMDEV_RING_TAIL		0x1c	/* RW  32: doorbell, descriptors posted */
#define LLMDEV_RING_STATUS		0x20	/* RO  32 */
#define LLMDEV_RING_STATUS_ENABLED	BIT(0)
#define LLMDEV_RING_STATUS_BUSY		BIT(1)	/* HEAD != TAIL, work pending */
#define LLMDEV_RING_STATUS_HALTED	BIT(2)	/* stopped on a ring-level error */
#define LLMDEV_RING_STATUS_STALLED	BIT(3)	/* fault injection */
#define LLMDEV_RING_DIR			0x24	/* RO  32: LLMDEV_DIR_* */
#define LLMDEV_DIR_H2C			0
#define LLMDEV_DIR_C2H			1
#define LLMDEV_RING_IRQ_COALESCE	0x28	/* RW  32: count [15:0], usecs [31:16] */
#define LLMDEV_RING_COMPLETED		0x2c	/* RO  32: completions written (free-running) */
#define LLMDEV_RING_ERR_CODE		0x30	/* RO  32: last ring-level error code */

/*
 * Descriptor, 32 bytes, in host memory at DESC_BASE + (index % size) * 32.
 * Without LLMDEV_DESC_F_SGL, host_addr is one contiguous buffer of length
 * bytes. With it, host_addr points to sg_count struct llmdev_hw_sg entries
 * whose lengths add up to length. With LLMDEV_DESC_F_VEC (spec 1.2,
 * LLMDEV_CAPS_DESC_VEC), host_addr points to sg_count struct llmdev_hw_vec
 * entries, each a host buffer and an HBM address of its own, whose lengths
 * add up to length; hbm_addr must then be 0.
 */
struct llmdev_hw_desc {
	__le64 host_addr;
	__le64 hbm_addr;
	__le32 length;
	__le32 flags;
	__le32 sg_count;
	__le32 cookie;		/* echoed in the completion */
};

#define LLMDEV_DESC_SIZE		32
#define LLMDEV_DESC_F_SGL		BIT(0)
#define LLMDEV_DESC_F_IRQ		BIT(1)	/* interrupt after completion */
#define LLMDEV_DESC_F_VEC		BIT(2)	/* 1.2: a vector of transfers */
#define LLMDEV_DESC_F_VALID_MASK	(LLMDEV_DESC_F_SGL | LLMDEV_DESC_F_IRQ | \
					 LLMDEV_DESC_F_VEC)

struct llmdev_hw_sg {
	__le64 addr;
	__le32 length;
	__le32 reserved;		/* must be zero */
};

#define LLMDEV_SG_SIZE			16

struct llmdev_hw_vec {
	__le64 host_addr;
	__le64 hbm_addr;
	__le32 length;
	__le32 reserved;		/* must be zero */
};

#define LLMDEV_VEC_SIZE			24

/*
 * Completion, 16 bytes, written at CMPL_BASE + (n % size) * 16 for the n-th
 * completed descriptor. The phase bit is 1 on the first pass through the
 * ring, 0 on the second, and so on: an entry is new when its phase matches
 * the pass the host expects.
 */
struct llmdev_hw_cmpl {
	__le32 cookie;
	__le32 bytes;		/* bytes moved */
	__le16 status;		/* LLMDEV_ERR_* code, 0 = success */
	__le16 flags;
	__le32 desc_index;	/* free-running index of the descriptor */
};

#define LLMDEV_CMPL_SIZE		16
#define LLMDEV_CMPL_F_PHASE		BIT(0)

/* ---- Perf counters (0x2000) ------------------------------------------- */
#define LLMDEV_REG_PERF_CTRL		0x2000	/* RW  32 */
#define LLMDEV_PERF_CTRL_SNAPSHOT	BIT(0)	/* WO: latch all counters */
#define LLMDEV_REG_PERF_NUM		0x2004	/* RO  32: number of counters */
#define LLMDEV_REG_PERF_SNAP_TIME	0x2008	/* RO  64: TIMESTAMP of the latch */
#define LLMDEV_REG_PERF_LIVE		0x2100	/* RO  64 each: live counters */
#define LLMDEV_REG_PERF_SNAP		0x2200	/* RO  64 each: latched counters */
#define LLMDEV_PERF_MAX			32	/* room reserved */

enum llmdev_perf_counter {
	LLMDEV_PERF_H2C_BYTES,
	LLMDEV_PERF_C2H_BYTES,
	LLMDEV_PERF_H2C_DESC,
	LLMDEV_PERF_C2H_DESC,
	LLMDEV_PERF_IRQS,
	LLMDEV_PERF_APERTURE_RD_BYTES,
	LLMDEV_PERF_APERTURE_WR_BYTES,
	LLMDEV_PERF_ERRORS,
	LLMDEV_PERF_DMA_BUSY_NS,
	LLMDEV_PERF_SCRUB_BYTES,
	LLMDEV_PERF_DOORBELLS,
	LLMDEV_PERF_LINK_TX_BYTES,	/* all ports */
	LLMDEV_PERF_LINK_RX_BYTES,
	LLMDEV_PERF_COLL_OPS,		/* collectives finished */
	LLMDEV_PERF_COLL_BUSY_NS,	/* time with a collective running */
	LLMDEV_PERF_NUM_COUNTERS,
};

/* ---- Sensors (0x2800) -------------------------------------------------- */
#define LLMDEV_REG_TEMP_MC		0x2800	/* RO  32: die temperature, m°C */
#define LLMDEV_REG_TEMP_CRIT_MC		0x2804	/* RO  32: critical limit, m°C */
#define LLMDEV_REG_POWER_MW		0x2808	/* RO  32: board power, mW */
#define LLMDEV_REG_POWER_CAP_MW		0x280c	/* RO  32: power cap, mW */

/* ---- Peer links (0x3000 + p * 0x100, p < LLMDEV_NUM_LINK_PORTS) -------- */
#define LLMDEV_LINK_BASE(p)		(0x3000 + (p) * 0x100)
#define LLMDEV_LINK_CTRL		0x00	/* RW  32 */
#define LLMDEV_LINK_CTRL_ENABLE		BIT(0)	/* train when cabled; 0 = down */
#define LLMDEV_LINK_STATUS		0x04	/* RO  32 */
#define LLMDEV_LINK_STATE(s)		((s) & 0x3)
#define LLMDEV_LINK_STATE_DOWN		0
#define LLMDEV_LINK_STATE_TRAINING	1
#define LLMDEV_LINK_STATE_UP		2
#define LLMDEV_LINK_STATUS_CABLED	BIT(8)	/* a cable leads to another card */
#define LLMDEV_LINK_STATUS_FORCED_DOWN	BIT(9)	/* LINK_FAULT.FORCE_DOWN on either end */
#define LLMDEV_LINK_PEER_SERIAL		0x08	/* RO  64: peer card's SERIAL, 0 unless up */
#define LLMDEV_LINK_PEER_PORT		0x10	/* RO  32: peer's port, ~0 unless up */
#define LLMDEV_LINK_DOWN_COUNT		0x14	/* RO  32: up -> down transitions */
#define LLMDEV_LINK_TX_BYTES		0x18	/* RO  64: bytes sent */
#define LLMDEV_LINK_RX_BYTES		0x20	/* RO  64: bytes received */
#define LLMDEV_LINK_TX_ERRORS		0x28	/* RO  64: frames replayed */
#define LLMDEV_LINK_RX_ERRORS		0x30	/* RO  64: frames received with CRC errors */
#define LLMDEV_LINK_FAULT		0x38	/* RW  32: test mode */
#define LLMDEV_LINK_FAULT_FORCE_DOWN	BIT(0)	/* cable "pulled" while set */
#define LLMDEV_LINK_FAULT_ERROR_BURST	BIT(1)	/* WO: BURST_COUNT CRC errors */
#define LLMDEV_LINK_FAULT_BURST_COUNT(f) (((f) >> 16) & 0xffff)
#define LLMDEV_LINK_FAULT_VALID_MASK	(0x3u | (0xffffu << 16))
#define LLMDEV_LINK_DOWN_AFTER		0x40	/* RW  64: tx bytes left before a drop, 0 = never */
#define LLMDEV_LINK_TRAIN_NS		1000000	/* training takes 1 ms of card time */

#define LLMDEV_REG_LINK_EVENT		0x3f00	/* RW1C 32: what changed since last clear */
#define LLMDEV_LINK_EVENT_STATE(p)	BIT(p)		/* port p changed state */
#define LLMDEV_LINK_EVENT_ERROR(p)	BIT(8 + (p))	/* port p counted errors */
#define LLMDEV_REG_LINK_GBPS		0x3f04	/* RO  32: line rate of each port, Gb/s */

/* ---- Collective engine (0x4000) ---------------------------------------- */
#define LLMDEV_REG_COLL_CTRL		0x4000	/* WO  32 */
#define LLMDEV_COLL_CTRL_START		BIT(0)	/* post the programmed collective */
#define LLMDEV_COLL_CTRL_ABORT		BIT(1)	/* give up: ERROR with ABORTED */
#define LLMDEV_REG_COLL_STATUS		0x4004	/* RO  32 */
#define LLMDEV_COLL_STATUS_BUSY		BIT(0)	/* posted, waiting or running */
#define LLMDEV_COLL_STATUS_DONE		BIT(1)	/* last one finished; cleared by START */
#define LLMDEV_COLL_STATUS_ERROR	BIT(2)	/* last one failed; cleared by START */
#define LLMDEV_COLL_STATUS_RUNNING	BIT(3)	/* every member posted, data moving */
#define LLMDEV_COLL_STATUS_ERR(s)	(((s) >> 8) & 0xff)	/* LLMDEV_COLL_ERR_* */
#define LLMDEV_REG_COLL_TAG		0x4008	/* RW  64: the same on every member */
#define LLMDEV_REG_COLL_OP		0x4010	/* RW  32: see LLMDEV_COLL_OP() */
#define LLMDEV_REG_COLL_RANK		0x4014	/* RW  32: rank [7:0], nranks [15:8] */
#define LLMDEV_REG_COLL_PORTS		0x4018	/* RW  32: tx port [3:0], rx port [7:4] */
#define LLMDEV_REG_COLL_CHUNK		0x401c	/* RW  32: bytes per chunk, 0 = 1 MiB */
#define LLMDEV_REG_COLL_COUNT		0x4020	/* RW  64: elements */
#define LLMDEV_REG_COLL_SRC		0x4028	/* RW  64: HBM offset */
#define LLMDEV_REG_COLL_DST		0x4030	/* RW  64: HBM offset, may equal SRC */
#define LLMDEV_REG_COLL_TIMEOUT_US	0x4038	/* RW  32: 0 = wait for peers forever */
#define LLMDEV_REG_COLL_COMPLETED	0x403c	/* RO  32: collectives finished, either way */
#define LLMDEV_REG_COLL_DONE_TAG	0x4040	/* RO  64: TAG of the last one finished */

#define LLMDEV_COLL_OP(kind, redop, dtype, root) \
	((kind) | (redop) << 4 | (dtype) << 8 | (root) << 16)
#define LLMDEV_COLL_OP_KIND(o)		((o) & 0xf)
#define LLMDEV_COLL_OP_REDOP(o)		(((o) >> 4) & 0xf)
#define LLMDEV_COLL_OP_DTYPE(o)		(((o) >> 8) & 0xf)
#define LLMDEV_COLL_OP_ROOT(o)		(((o) >> 16) & 0xff)
#define LLMDEV_COLL_KIND_ALLREDUCE	1
#define LLMDEV_COLL_KIND_BROADCAST	2
#define LLMDEV_COLL_REDOP_SUM		0
#define LLMDEV_COLL_REDOP_MIN		1
#define LLMDEV_COLL_REDOP_MAX		2
#define LLMDEV_COLL_DTYPE_F32		0
#define LLMDEV_COLL_DTYPE_F16		1
#define LLMDEV_COLL_DTYPE_BF16		2
#define LLMDEV_COLL_DTYPE_I32		3
#define LLMDEV_COLL_MAX_RANKS		16
#define LLMDEV_COLL_DEFAULT_CHUNK	0x100000	/* 1 MiB */
#define LLMDEV_COLL_CHUNK_ALIGN		64

#define LLMDEV_COLL_ERR_NONE		0
#define LLMDEV_COLL_ERR_PARAM		1	/* bad op, ranks, ports or HBM range */
#define LLMDEV_COLL_ERR_LINK_DOWN	2	/* a link of the ring is not up */
#define LLMDEV_COLL_ERR_MISMATCH	3	/* members disagree on op or count */
#define LLMDEV_COLL_ERR_TIMEOUT		4	/* peers did not post in time */
#define LLMDEV_COLL_ERR_ABORTED		5	/* COLL_CTRL.ABORT on any member */
#define LLMDEV_COLL_ERR_TOPOLOGY	6	/* tx port does not reach rank + 1 */

/* ---- Shard routing table (0x5000) --------------------------------------- */
#define LLMDEV_REG_ROUTE_CTRL		0x5000	/* WO  32 */
#define LLMDEV_ROUTE_CTRL_COMMIT	BIT(0)	/* staging -> active, all or none */
#define LLMDEV_REG_ROUTE_STAGE_NUM	0x5004	/* RW  32: staging entries to commit */
#define LLMDEV_REG_ROUTE_ACTIVE_NUM	0x5008	/* RO  32: entries in the active table */
#define LLMDEV_REG_ROUTE_GEN		0x500c	/* RO  32: successful commits */
#define LLMDEV_REG_ROUTE_STATUS		0x5010	/* RO  32: result of the last commit */
#define LLMDEV_ROUTE_STATUS_ERROR	BIT(0)	/* refused, active table unchanged */
#define LLMDEV_ROUTE_STATUS_INDEX(s)	(((s) >> 8) & 0xff)	/* first bad entry */
#define LLMDEV_REG_ROUTE_STAGE		0x5100	/* RW: LLMDEV_ROUTE_ENTRIES x 32 bytes */
#define LLMDEV_REG_ROUTE_ACTIVE		0x5800	/* RO: LLMDEV_ROUTE_ENTRIES x 32 bytes */
#define LLMDEV_ROUTE_ENTRIES		32
#define LLMDEV_ROUTE_ENTRY_SIZE		32

/*
 * Routing entry, 32 bytes, as 32-bit registers: this card serves layers
 * layer_first..layer_last (inclusive) for tensor-parallel rank tp_rank of
 * tp_size from hbm_length bytes at hbm_offset, and sends activations on to
 * next_hop: a link port, or LLMDEV_ROUTE_HOP_HOST.
 */
#define LLMDEV_ROUTE_E_LAYERS		0x00	/* first [15:0], last [31:16] */
/* rank [7:0], size [15:8], next hop [23:16], flags [31:24] */
#define LLMDEV_ROUTE_E_TP		0x04
#define LLMDEV_ROUTE_E_HBM_OFFSET	0x08	/* 64 */
#define LLMDEV_ROUTE_E_HBM_LENGTH	0x10	/* 64 */
#define LLMDEV_ROUTE_E_TAG		0x18	/* 32: software's, e.g. region handle */
#define LLMDEV_ROUTE_E_RESERVED		0x1c	/* 32: must be zero */
#define LLMDEV_ROUTE_HOP_HOST		0xff
#define LLMDEV_ROUTE_F_VALID		BIT(0)

#define LLMDEV_REG_RESERVED_END		0xc000	/* MSI-X table follows */

#endif /* LLMDEV_REGS_H */
