/*
 * QEMU model of the llmdev LLM-inference card.
 *
 * The programming model is docs/hardware.md in the llmdev repository; the
 * register offsets come from driver/llmdev_regs.h, shared with the driver.
 *
 * Properties (-device llmdev,...):
 *   hbm-size=SIZE        size of the card's HBM and of the aperture BAR 2;
 *                        a power of two from 16M to 64G (default 256M)
 *   serial=U64           serial number register (default: a per-card value,
 *                        0x4c4d000000000000 + the order in which cards are
 *                        created)
 *   bandwidth-mbps=U32   model the PCIe link: each descriptor takes
 *                        length / bandwidth (MB/s) of virtual time; 0 (the
 *                        default) moves data as fast as the host can
 *   link-gbps=U32        line rate of each peer-link port in Gb/s, 1..1600
 *                        (default 100): a collective tick that moves B bytes
 *                        over a link takes B * 8 / link-gbps ns
 *   peer0..peer3=STR     explicit cabling: "ID.PORT" connects this card's
 *                        port N to port PORT (0-3) of the llmdev card with
 *                        id=ID. One end is enough; both ends may say it, but
 *                        must agree. If any card has a peerN property, only
 *                        explicit cables exist; otherwise the cards form a
 *                        ring in realize order (card i port 0 to card i+1
 *                        port 1). Conflicting cables (a port used twice, a
 *                        card cabled to itself, a bad port number) make the
 *                        card that completes the conflict fail to realize.
 *                        Cables are resolved against the cards that exist,
 *                        again at every realize and unrealize.
 *
 * Cards know each other through a global list: the links, the collective
 * engine (all ranks of one TAG meet there) and the cabling live on it. All
 * of it runs under the BQL; a session never outlives a card it points to
 * (a departing or reset member ends it first).
 *
 * Every address, length and index the guest gives is checked; a bad one
 * sets an error status, logs an error and raises the error vector. DMA runs
 * in bottom halves and timers, never inside the doorbell write, in bounded
 * batches, and only to or from guest RAM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qemu/units.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qemu/main-loop.h"
#include "qemu/madvise.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_regs.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "exec/memory.h"
#include "migration/vmstate.h"
#include "sysemu/dma.h"
#include "qom/object.h"
#include "trace.h"

#include "llmdev_regs.h"

#define TYPE_LLMDEV "llmdev"
OBJECT_DECLARE_SIMPLE_TYPE(LlmdevState, LLMDEV)

#define LLMDEV_HBM_MIN			(16 * MiB)
#define LLMDEV_HBM_MAX			(64 * GiB)
#define LLMDEV_HBM_DEFAULT		(256 * MiB)

/* Per bottom-half run, so a busy ring cannot starve the main loop. */
#define LLMDEV_BH_MAX_DESC		64
#define LLMDEV_BH_MAX_BYTES		(16 * MiB)
#define LLMDEV_SCRUB_CHUNK		(64 * MiB)

#define LLMDEV_PCIE_CAP_OFFSET		0x80
#define LLMDEV_MSI_CAP_OFFSET		0x60
#define LLMDEV_MSIX_CAP_OFFSET		0x70
#define LLMDEV_AER_OFFSET		0x100

#define LLMDEV_SOURCE_NONE		0xffffffffu

/* Sensor model: idle readings and the span that full activity adds. */
#define LLMDEV_TEMP_IDLE_MC		35000
#define LLMDEV_TEMP_SPAN_MC		45000
#define LLMDEV_TEMP_CRIT_MC		95000
#define LLMDEV_POWER_IDLE_MW		20000
#define LLMDEV_POWER_SPAN_MW		55000
#define LLMDEV_POWER_CAP_MW		75000
#define LLMDEV_SENSOR_TAU_NS		1000000000LL

typedef struct LlmdevRing {
	struct LlmdevState *s;
	unsigned int idx;
	bool c2h;

	uint64_t desc_base;
	uint64_t cmpl_base;
	uint32_t size;
	uint32_t ctrl;
	uint32_t head;
	uint32_t tail;
	uint32_t completed;
	uint32_t coalesce;
	uint32_t err_code;
	bool halted;

	/* F_IRQ completions not yet signalled, for interrupt moderation */
	uint32_t irq_pending;
	bool inflight;		/* bandwidth model: descriptor at head in flight */
	int64_t busy_until;	/* virtual ns when the in-flight one completes */

	QEMUBH *bh;
	QEMUTimer *bw_timer;
	QEMUTimer *coal_timer;
} LlmdevRing;

/* One peer-link port. */
typedef struct LlmdevLink {
	struct LlmdevState *s;
	unsigned int port;

	/* the cable, as resolved by llmdev_recable(): NULL = not cabled */
	struct LlmdevState *peer;
	unsigned int peer_port;
	struct LlmdevState *new_peer;	/* scratch of llmdev_recable() */
	unsigned int new_peer_port;
	bool changed;

	uint32_t ctrl;
	uint32_t fault;			/* only FORCE_DOWN is stored */
	uint32_t state;			/* LLMDEV_LINK_STATE_* */
	bool trained;			/* both ends trained: the same on both */
	uint64_t peer_serial;		/* latched when the link came up */
	uint32_t peer_port_reg;
	uint32_t down_count;
	uint64_t tx_bytes;
	uint64_t rx_bytes;
	uint64_t tx_errors;
	uint64_t rx_errors;
	uint64_t down_after;		/* tx bytes left before the link drops */
	QEMUTimer *train_timer;
} LlmdevLink;

/* Collective parameters, as programmed and as latched by START. */
typedef struct LlmdevCollParams {
	uint64_t tag;
	uint32_t op;
	uint32_t rank;
	uint32_t ports;
	uint32_t chunk;
	uint64_t count;
	uint64_t src;
	uint64_t dst;
	uint32_t timeout_us;
} LlmdevCollParams;

typedef struct LlmdevSession LlmdevSession;

typedef struct LlmdevColl {
	LlmdevCollParams reg;
	LlmdevCollParams cur;
	uint32_t status;		/* DONE/ERROR and the code of the last one */
	uint32_t completed;
	uint64_t done_tag;
	bool waiting;			/* posted, waiting for the other ranks */
	LlmdevSession *sess;		/* running */
	int64_t run_start;
	QEMUTimer *timeout_timer;
	QEMUTimer *tick_timer;		/* drives the session whose rank 0 we are */
} LlmdevColl;

struct LlmdevState {
	PCIDevice parent_obj;

	MemoryRegion bar0;
	MemoryRegion regs;
	MemoryRegion aperture;

	/* properties */
	uint64_t hbm_size;
	uint64_t serial;
	uint32_t bandwidth_mbps;

	uint8_t *hbm;
	int64_t created_ns;

	uint32_t control;
	uint32_t scratch;
	uint32_t reset_count;
	uint32_t irq_status;
	uint32_t irq_mask;
	uint32_t err_status;
	uint32_t err_count;
	uint32_t err_log_head;
	uint32_t fault_inject;
	uint8_t err_log[LLMDEV_ERR_LOG_ENTRIES][LLMDEV_ERR_LOG_STRIDE];

	uint64_t scrub_addr;
	uint64_t scrub_len;
	/* latched by START, so register writes cannot move a running scrub */
	uint64_t scrub_cur_addr;
	uint64_t scrub_cur_len;
	uint32_t scrub_cur_pattern;
	uint64_t scrub_done;
	uint32_t scrub_pattern;
	uint32_t scrub_status;
	QEMUBH *scrub_bh;

	uint64_t perf[LLMDEV_PERF_NUM_COUNTERS];
	uint64_t perf_snap[LLMDEV_PERF_NUM_COUNTERS];
	uint64_t perf_snap_time;

	/* sensor model state: smoothed activity in [0, 1] */
	double activity;
	int64_t sensor_time;
	uint64_t sensor_busy;

	LlmdevRing ring[LLMDEV_NUM_RINGS];

	/* peer links */
	uint32_t link_gbps;		/* property */
	char *peer_spec[LLMDEV_NUM_LINK_PORTS];	/* properties peer0..3 */
	char *peer_id[LLMDEV_NUM_LINK_PORTS];	/* parsed: card id or NULL */
	unsigned int peer_port[LLMDEV_NUM_LINK_PORTS];
	LlmdevLink link[LLMDEV_NUM_LINK_PORTS];
	uint32_t link_event;
	uint32_t event_cause;
	bool resetting;			/* no events to ourselves while resetting */

	LlmdevColl coll;

	/* routing table */
	uint32_t route_stage_num;
	uint32_t route_active_num;
	uint32_t route_gen;
	uint32_t route_status;
	uint8_t route_stage[LLMDEV_ROUTE_ENTRIES][LLMDEV_ROUTE_ENTRY_SIZE];
	uint8_t route_active[LLMDEV_ROUTE_ENTRIES][LLMDEV_ROUTE_ENTRY_SIZE];

	bool listed;			/* on llmdev_cards */
	QTAILQ_ENTRY(LlmdevState) next;
};

static unsigned int llmdev_instances;

static uint64_t llmdev_now(LlmdevState *s)
{
	return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - s->created_ns;
}

/* ---- Interrupts ---------------------------------------------------------- */

static void llmdev_update_intx(LlmdevState *s)
{
	PCIDevice *pdev = PCI_DEVICE(s);

	if (msix_enabled(pdev) || msi_enabled(pdev))
		return;
	pci_set_irq(pdev, !!(s->irq_status & ~s->irq_mask));
}

static void llmdev_raise(LlmdevState *s, uint32_t source, unsigned int vector)
{
	PCIDevice *pdev = PCI_DEVICE(s);
	bool was_pending = s->irq_status & ~s->irq_mask;

	s->irq_status |= source;
	if (s->irq_mask & source)
		return;

	trace_llmdev_irq(pdev->devfn, source, vector);
	if (msix_enabled(pdev)) {
		msix_notify(pdev, vector);
	} else if (msi_enabled(pdev)) {
		msi_notify(pdev, 0);
	} else {
		if (was_pending)
			return;	/* INTx already asserted */
		pci_set_irq(pdev, 1);
	}
	s->perf[LLMDEV_PERF_IRQS]++;
}

/* The event source, with the reason in EVENT_CAUSE. */
static void llmdev_raise_event(LlmdevState *s, uint32_t cause)
{
	s->event_cause |= cause;
	llmdev_raise(s, LLMDEV_IRQ_EVENT, LLMDEV_VEC_EVENT);
}

/* ---- Errors -------------------------------------------------------------- */

static void llmdev_log_error(LlmdevState *s, uint32_t code, uint32_t source,
			     uint64_t addr)
{
	uint8_t *e = s->err_log[s->err_log_head % LLMDEV_ERR_LOG_ENTRIES];

	trace_llmdev_error(PCI_DEVICE(s)->devfn, code, source, addr);
	stl_le_p(e + LLMDEV_ERR_LOG_CODE, code);
	stl_le_p(e + LLMDEV_ERR_LOG_SOURCE, source);
	stq_le_p(e + LLMDEV_ERR_LOG_ADDR, addr);
	stq_le_p(e + LLMDEV_ERR_LOG_TIME, llmdev_now(s));
	stl_le_p(e + LLMDEV_ERR_LOG_SEQ, s->err_log_head);
	s->err_log_head++;
	s->err_status |= 1u << code;
	s->err_count++;
	s->perf[LLMDEV_PERF_ERRORS]++;
	llmdev_raise(s, LLMDEV_IRQ_ERROR, LLMDEV_VEC_ERROR);
}

/* ---- Host memory checks ---------------------------------------------------- */

/*
 * True if [addr, addr + len) is guest RAM as the card sees it (through an
 * IOMMU when there is one, and not when bus mastering is off). DMA into
 * MMIO, our own BARs included, is refused.
 */
static bool llmdev_host_range_ok(LlmdevState *s, uint64_t addr, uint64_t len,
				 bool is_write)
{
	AddressSpace *as = pci_get_address_space(PCI_DEVICE(s));

	if (!len || addr + len < addr)
		return false;

	RCU_READ_LOCK_GUARD();
	while (len) {
		hwaddr xlat, l = len;
		MemoryRegion *mr;

		mr = address_space_translate(as, addr, &xlat, &l, is_write,
					     MEMTXATTRS_UNSPECIFIED);
		if (!l || !memory_region_is_ram(mr) ||
		    memory_region_is_ram_device(mr) ||
		    (is_write && mr->readonly))
			return false;
		addr += l;
		len -= l;
	}
	return true;
}

static bool llmdev_hbm_range_ok(LlmdevState *s, uint64_t addr, uint64_t len)
{
	return len <= s->hbm_size && addr <= s->hbm_size - len;
}

/* ---- DMA rings ----------------------------------------------------------- */

static bool llmdev_ring_runnable(LlmdevRing *r)
{
	LlmdevState *s = r->s;

	return (s->control & LLMDEV_CONTROL_ENABLE) &&
	       (r->ctrl & LLMDEV_RING_CTRL_ENABLE) && !r->halted &&
	       !(s->fault_inject & LLMDEV_FAULT_STALL_RING(r->idx)) &&
	       r->head != r->tail;
}

static void llmdev_ring_kick(LlmdevRing *r)
{
	if (llmdev_ring_runnable(r))
		qemu_bh_schedule(r->bh);
}

static void llmdev_kick_all(LlmdevState *s)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++)
		llmdev_ring_kick(&s->ring[i]);
}

static void llmdev_ring_signal(LlmdevRing *r)
{
	timer_del(r->coal_timer);
	r->irq_pending = 0;
	llmdev_raise(r->s, LLMDEV_IRQ_RING(r->idx), LLMDEV_VEC_RING(r->idx));
}

static void llmdev_ring_coalesce_timeout(void *opaque)
{
	LlmdevRing *r = opaque;

	if (r->irq_pending)
		llmdev_ring_signal(r);
}

/* Account for one completion that wants an interrupt. */
static void llmdev_ring_irq_request(LlmdevRing *r)
{
	uint32_t count = r->coalesce & 0xffff;
	uint32_t usecs = r->coalesce >> 16;

	r->irq_pending++;
	if (count <= 1 || r->irq_pending >= count) {
		llmdev_ring_signal(r);
		return;
	}
	if (usecs && !timer_pending(r->coal_timer))
		timer_mod(r->coal_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
			  (int64_t)usecs * SCALE_US);
}

static void llmdev_ring_halt(LlmdevRing *r, uint32_t code, uint64_t addr)
{
	r->halted = true;
	r->err_code = code;
	llmdev_log_error(r->s, code,
			 r->idx << 16 | (r->head & (r->size - 1)), addr);
	llmdev_ring_signal(r);
}

static uint32_t llmdev_check_sgl(LlmdevRing *r, uint64_t table, uint32_t count,
				 uint32_t length, uint64_t *bad)
{
	LlmdevState *s = r->s;
	uint64_t total = 0;
	uint32_t i;

	if (!count || count > LLMDEV_DESC_MAX_SG)
		return LLMDEV_ERR_DESC_FORMAT;
	if (!llmdev_host_range_ok(s, table, (uint64_t)count * LLMDEV_SG_SIZE,
				  false)) {
		*bad = table;
		return LLMDEV_ERR_DESC_FETCH;
	}
	for (i = 0; i < count; i++) {
		struct llmdev_hw_sg sg;
		uint64_t addr;
		uint32_t len;

		if (pci_dma_read(PCI_DEVICE(s), table + i * LLMDEV_SG_SIZE, &sg,
				 sizeof(sg)) != MEMTX_OK) {
			*bad = table;
			return LLMDEV_ERR_DESC_FETCH;
		}
		addr = le64_to_cpu(sg.addr);
		len = le32_to_cpu(sg.length);
		if (!len || sg.reserved) {
			*bad = table + i * LLMDEV_SG_SIZE;
			return LLMDEV_ERR_DESC_FORMAT;
		}
		if (!llmdev_host_range_ok(s, addr, len, r->c2h)) {
			*bad = addr;
			return LLMDEV_ERR_HOST_ADDR;
		}
		total += len;
	}
	if (total != length)
		return LLMDEV_ERR_DESC_FORMAT;
	return LLMDEV_ERR_NONE;
}

/* Move one segment between host memory and HBM. */
static uint32_t llmdev_move(LlmdevRing *r, uint64_t host, uint64_t hbm,
			    uint32_t len)
{
	LlmdevState *s = r->s;
	MemTxResult res;

	if (r->c2h)
		res = pci_dma_write(PCI_DEVICE(s), host, s->hbm + hbm, len);
	else
		res = pci_dma_read(PCI_DEVICE(s), host, s->hbm + hbm, len);
	return res == MEMTX_OK ? LLMDEV_ERR_NONE : LLMDEV_ERR_HOST_ADDR;
}

static uint32_t llmdev_do_desc(LlmdevRing *r, const struct llmdev_hw_desc *d,
			       uint64_t *bad)
{
	LlmdevState *s = r->s;
	uint64_t host = le64_to_cpu(d->host_addr);
	uint64_t hbm = le64_to_cpu(d->hbm_addr);
	uint32_t len = le32_to_cpu(d->length);
	uint32_t flags = le32_to_cpu(d->flags);
	uint32_t count = le32_to_cpu(d->sg_count);
	uint32_t err, i;

	if (s->fault_inject & LLMDEV_FAULT_FAIL_NEXT_DESC) {
		s->fault_inject &= ~LLMDEV_FAULT_FAIL_NEXT_DESC;
		return LLMDEV_ERR_INJECTED;
	}
	if (!len || (flags & ~LLMDEV_DESC_F_VALID_MASK))
		return LLMDEV_ERR_DESC_FORMAT;
	if (!llmdev_hbm_range_ok(s, hbm, len)) {
		*bad = hbm;
		return LLMDEV_ERR_HBM_RANGE;
	}

	if (!(flags & LLMDEV_DESC_F_SGL)) {
		if (!llmdev_host_range_ok(s, host, len, r->c2h)) {
			*bad = host;
			return LLMDEV_ERR_HOST_ADDR;
		}
		return llmdev_move(r, host, hbm, len);
	}

	err = llmdev_check_sgl(r, host, count, len, bad);
	if (err)
		return err;
	for (i = 0; i < count; i++) {
		struct llmdev_hw_sg sg;
		uint32_t sl;

		/* checked above; a guest racing with us gets what it wrote */
		if (pci_dma_read(PCI_DEVICE(s), host + i * LLMDEV_SG_SIZE, &sg,
				 sizeof(sg)) != MEMTX_OK) {
			*bad = host;
			return LLMDEV_ERR_DESC_FETCH;
		}
		sl = le32_to_cpu(sg.length);
		if (sl > len || !llmdev_host_range_ok(s, le64_to_cpu(sg.addr),
						     sl, r->c2h)) {
			*bad = le64_to_cpu(sg.addr);
			return LLMDEV_ERR_HOST_ADDR;
		}
		err = llmdev_move(r, le64_to_cpu(sg.addr), hbm, sl);
		if (err)
			return err;
		hbm += sl;
		len -= sl;
	}
	return LLMDEV_ERR_NONE;
}

/*
 * Process the descriptor at head: fetch, check, move, complete.
 * Returns the number of bytes it moved, or -1 if the ring halted.
 */
static int64_t llmdev_ring_step(LlmdevRing *r)
{
	LlmdevState *s = r->s;
	uint32_t slot = r->head & (r->size - 1);
	uint64_t daddr = r->desc_base + (uint64_t)slot * LLMDEV_DESC_SIZE;
	uint64_t caddr = r->cmpl_base +
			 (uint64_t)(r->completed & (r->size - 1)) * LLMDEV_CMPL_SIZE;
	struct llmdev_hw_desc d;
	struct llmdev_hw_cmpl c;
	uint64_t bad = 0;
	uint32_t status, len, flags;
	int64_t t0 = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

	if (!llmdev_host_range_ok(s, daddr, sizeof(d), false) ||
	    pci_dma_read(PCI_DEVICE(s), daddr, &d, sizeof(d)) != MEMTX_OK) {
		llmdev_ring_halt(r, LLMDEV_ERR_DESC_FETCH, daddr);
		return -1;
	}
	len = le32_to_cpu(d.length);
	flags = le32_to_cpu(d.flags);
	trace_llmdev_desc(PCI_DEVICE(s)->devfn, r->idx, r->head,
			  le64_to_cpu(d.host_addr), le64_to_cpu(d.hbm_addr),
			  len, flags);

	if (s->bandwidth_mbps && !r->inflight) {
		/* hold the descriptor for length / bandwidth of virtual time */
		r->inflight = true;
		r->busy_until = t0 + (int64_t)len * 1000 / s->bandwidth_mbps;
		timer_mod(r->bw_timer, r->busy_until);
		return 0;
	}
	if (r->inflight) {
		/* the modelled transfer time counts as busy time */
		s->perf[LLMDEV_PERF_DMA_BUSY_NS] += (uint64_t)len * 1000 /
						    s->bandwidth_mbps;
		r->inflight = false;
	}

	status = llmdev_do_desc(r, &d, &bad);

	memset(&c, 0, sizeof(c));
	c.cookie = d.cookie;
	c.bytes = cpu_to_le32(status ? 0 : len);
	c.status = cpu_to_le16(status);
	c.flags = cpu_to_le16((r->completed / r->size) & 1 ? 0 : LLMDEV_CMPL_F_PHASE);
	c.desc_index = cpu_to_le32(r->head);
	/* the word holding the phase bit goes last, so a new phase is whole */
	if (!llmdev_host_range_ok(s, caddr, sizeof(c), true) ||
	    pci_dma_write(PCI_DEVICE(s), caddr, &c, 8) != MEMTX_OK ||
	    pci_dma_write(PCI_DEVICE(s), caddr + 12, (uint8_t *)&c + 12, 4) != MEMTX_OK ||
	    pci_dma_write(PCI_DEVICE(s), caddr + 8, (uint8_t *)&c + 8, 4) != MEMTX_OK) {
		llmdev_ring_halt(r, LLMDEV_ERR_CMPL_WRITE, caddr);
		return -1;
	}

	r->head++;
	r->completed++;
	s->perf[r->c2h ? LLMDEV_PERF_C2H_DESC : LLMDEV_PERF_H2C_DESC]++;
	s->perf[LLMDEV_PERF_DMA_BUSY_NS] +=
		qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - t0;
	if (status) {
		r->err_code = status;
		llmdev_log_error(s, status, r->idx << 16 | slot, bad);
		llmdev_ring_signal(r);
		return 0;
	}
	s->perf[r->c2h ? LLMDEV_PERF_C2H_BYTES : LLMDEV_PERF_H2C_BYTES] += len;
	if (flags & LLMDEV_DESC_F_IRQ)
		llmdev_ring_irq_request(r);
	return len;
}

static void llmdev_ring_run(void *opaque)
{
	LlmdevRing *r = opaque;
	uint64_t bytes = 0;
	unsigned int n = 0;

	while (llmdev_ring_runnable(r)) {
		int64_t moved;

		if (r->inflight &&
		    qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) < r->busy_until)
			return;	/* bw_timer brings us back */
		moved = llmdev_ring_step(r);
		if (moved < 0)
			return;
		if (r->inflight)
			return;
		bytes += moved;
		if (++n >= LLMDEV_BH_MAX_DESC || bytes >= LLMDEV_BH_MAX_BYTES) {
			qemu_bh_schedule(r->bh);
			return;
		}
	}
	/* idle: flush moderated interrupts */
	if (r->head == r->tail && r->irq_pending)
		llmdev_ring_signal(r);
}

static void llmdev_ring_abort(LlmdevRing *r)
{
	qemu_bh_cancel(r->bh);
	timer_del(r->bw_timer);
	timer_del(r->coal_timer);
	r->inflight = false;
	r->irq_pending = 0;
}

static void llmdev_ring_reset(LlmdevRing *r, bool keep_config)
{
	llmdev_ring_abort(r);
	r->head = r->tail = r->completed = 0;
	r->halted = false;
	r->ctrl = 0;
	r->err_code = 0;
	if (!keep_config) {
		r->desc_base = r->cmpl_base = 0;
		r->size = 0;
		r->coalesce = 0;
	}
}

static bool llmdev_ring_config_ok(LlmdevRing *r)
{
	return r->size >= LLMDEV_RING_MIN_ENTRIES &&
	       r->size <= LLMDEV_RING_MAX_ENTRIES && is_power_of_2(r->size) &&
	       !(r->desc_base & 63) && !(r->cmpl_base & 63);
}

/* ---- Scrub engine ------------------------------------------------------- */

static void llmdev_scrub_run(void *opaque)
{
	LlmdevState *s = opaque;
	uint64_t left = s->scrub_cur_len - s->scrub_done;
	uint64_t n = MIN(left, LLMDEV_SCRUB_CHUNK);
	uint8_t *p = s->hbm + s->scrub_cur_addr + s->scrub_done;
	uint64_t i;

	if (s->scrub_cur_pattern == 0 &&
	    QEMU_IS_ALIGNED((uintptr_t)p | n, qemu_real_host_page_size())) {
		/* the store is anonymous memory: dropped pages read as zero */
		if (qemu_madvise(p, n, QEMU_MADV_DONTNEED))
			memset(p, 0, n);
	} else if (s->scrub_cur_pattern == 0) {
		memset(p, 0, n);
	} else {
		for (i = 0; i < n; i += 4)
			stl_le_p(p + i, s->scrub_cur_pattern);
	}
	s->scrub_done += n;
	s->perf[LLMDEV_PERF_SCRUB_BYTES] += n;
	if (s->scrub_done < s->scrub_cur_len) {
		qemu_bh_schedule(s->scrub_bh);
		return;
	}
	s->scrub_status = LLMDEV_SCRUB_STATUS_DONE;
	llmdev_raise_event(s, LLMDEV_EVENT_SCRUB);
}

static void llmdev_scrub_start(LlmdevState *s)
{
	if (s->scrub_status & LLMDEV_SCRUB_STATUS_BUSY)
		return;
	if (!s->scrub_len || (s->scrub_addr | s->scrub_len) % LLMDEV_SCRUB_ALIGN ||
	    !llmdev_hbm_range_ok(s, s->scrub_addr, s->scrub_len)) {
		s->scrub_status = LLMDEV_SCRUB_STATUS_ERROR;
		llmdev_log_error(s, LLMDEV_ERR_SCRUB, LLMDEV_SOURCE_NONE,
				 s->scrub_addr);
		return;
	}
	s->scrub_status = LLMDEV_SCRUB_STATUS_BUSY;
	s->scrub_cur_addr = s->scrub_addr;
	s->scrub_cur_len = s->scrub_len;
	s->scrub_cur_pattern = s->scrub_pattern;
	s->scrub_done = 0;
	qemu_bh_schedule(s->scrub_bh);
}

/* ---- Sensors ------------------------------------------------------------ */

static void llmdev_sensors_update(LlmdevState *s)
{
	int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
	int64_t dt = now - s->sensor_time;
	uint64_t busy = s->perf[LLMDEV_PERF_DMA_BUSY_NS] - s->sensor_busy;
	double frac, alpha;

	if (dt <= 0)
		return;
	frac = MIN(1.0, (double)busy / dt);
	alpha = 1.0 - exp(-(double)dt / LLMDEV_SENSOR_TAU_NS);
	s->activity += alpha * (frac - s->activity);
	s->sensor_time = now;
	s->sensor_busy = s->perf[LLMDEV_PERF_DMA_BUSY_NS];
}

/* ---- Peer links ---------------------------------------------------------- */

/* Every realized card, in realize order: the default ring follows it. */
static QTAILQ_HEAD(, LlmdevState) llmdev_cards =
	QTAILQ_HEAD_INITIALIZER(llmdev_cards);

static const char *llmdev_id(LlmdevState *s)
{
	const char *id = DEVICE(s)->id;

	return id ? id : "(no id)";
}

static LlmdevLink *llmdev_link_peer(LlmdevLink *l)
{
	return l->peer ? &l->peer->link[l->peer_port] : NULL;
}

static bool llmdev_link_forced(LlmdevLink *l)
{
	return l->fault & LLMDEV_LINK_FAULT_FORCE_DOWN;
}

/* Both ends enabled, neither forced down: the pair may train and stay up. */
static bool llmdev_link_can_train(LlmdevLink *l)
{
	LlmdevLink *pl = llmdev_link_peer(l);

	return pl && (l->ctrl & LLMDEV_LINK_CTRL_ENABLE) &&
	       (pl->ctrl & LLMDEV_LINK_CTRL_ENABLE) &&
	       !llmdev_link_forced(l) && !llmdev_link_forced(pl);
}

/*
 * The state a port should be in: DOWN when disabled, not cabled or forced
 * down at either end; UP when the pair finished training; else TRAINING
 * (enabled and cabled: training, or waiting for the other end's ENABLE).
 */
static uint32_t llmdev_link_target(LlmdevLink *l)
{
	LlmdevLink *pl = llmdev_link_peer(l);

	if (!(l->ctrl & LLMDEV_LINK_CTRL_ENABLE) || !pl ||
	    llmdev_link_forced(l) || llmdev_link_forced(pl))
		return LLMDEV_LINK_STATE_DOWN;
	return l->trained ? LLMDEV_LINK_STATE_UP : LLMDEV_LINK_STATE_TRAINING;
}

static void llmdev_link_set_state(LlmdevLink *l, uint32_t st)
{
	LlmdevState *s = l->s;
	uint32_t old = l->state;

	if (st == old)
		return;
	if (old == LLMDEV_LINK_STATE_UP) {
		l->down_count++;
		l->peer_serial = 0;
		l->peer_port_reg = ~0u;
	}
	if (st == LLMDEV_LINK_STATE_UP) {
		l->peer_serial = l->peer->serial;
		l->peer_port_reg = l->peer_port;
	}
	l->state = st;
	trace_llmdev_link_state(llmdev_id(s), l->port, old, st);
	if (s->resetting)
		return;
	s->link_event |= LLMDEV_LINK_EVENT_STATE(l->port);
	llmdev_raise_event(s, LLMDEV_EVENT_LINK);
}

/* Re-evaluate a port and the port at the other end of its cable. */
static void llmdev_link_update(LlmdevLink *l)
{
	LlmdevLink *pl = llmdev_link_peer(l);

	if (!llmdev_link_can_train(l)) {
		l->trained = false;
		timer_del(l->train_timer);
		if (pl) {
			pl->trained = false;
			timer_del(pl->train_timer);
		}
	} else if (!l->trained && !timer_pending(l->train_timer) &&
		   !timer_pending(pl->train_timer)) {
		timer_mod(l->train_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
			  LLMDEV_LINK_TRAIN_NS);
	}
	llmdev_link_set_state(l, llmdev_link_target(l));
	if (pl)
		llmdev_link_set_state(pl, llmdev_link_target(pl));
}

static void llmdev_link_trained(void *opaque)
{
	LlmdevLink *l = opaque;

	if (llmdev_link_can_train(l)) {
		l->trained = true;
		llmdev_link_peer(l)->trained = true;
	}
	llmdev_link_update(l);
}

/* ERROR_BURST: count CRC errors at both ends of an up link. */
static void llmdev_link_burst(LlmdevLink *l, uint32_t count)
{
	LlmdevLink *pl = llmdev_link_peer(l);

	if (l->state != LLMDEV_LINK_STATE_UP || !pl || !count)
		return;
	trace_llmdev_link_burst(llmdev_id(l->s), l->port, count);
	l->tx_errors += count;
	pl->rx_errors += count;
	l->s->link_event |= LLMDEV_LINK_EVENT_ERROR(l->port);
	llmdev_raise_event(l->s, LLMDEV_EVENT_LINK);
	pl->s->link_event |= LLMDEV_LINK_EVENT_ERROR(pl->port);
	llmdev_raise_event(pl->s, LLMDEV_EVENT_LINK);
}

/* DOWN_AFTER ran out: the card pulls the cable itself (FORCE_DOWN). */
static void llmdev_link_exhaust(LlmdevLink *l)
{
	l->down_after = 0;
	l->fault |= LLMDEV_LINK_FAULT_FORCE_DOWN;
	llmdev_link_update(l);
}

static LlmdevState *llmdev_find_card(const char *id)
{
	LlmdevState *c;

	QTAILQ_FOREACH(c, &llmdev_cards, next) {
		if (DEVICE(c)->id && !strcmp(DEVICE(c)->id, id))
			return c;
	}
	return NULL;
}

static void llmdev_cable(LlmdevState *a, unsigned int pa, LlmdevState *b,
			 unsigned int pb)
{
	LlmdevLink *la = &a->link[pa], *lb = &b->link[pb];

	/* realize refused conflicting cables; a cable given twice is one */
	if (la->new_peer || lb->new_peer)
		return;
	la->new_peer = b;
	la->new_peer_port = pb;
	lb->new_peer = a;
	lb->new_peer_port = pa;
}

/*
 * Work out the cables between the cards that exist now. A port whose cable
 * leads somewhere else than before loses its link (and retrains with the
 * new peer if both ends are enabled).
 */
static void llmdev_recable(void)
{
	LlmdevState *c, **ring;
	bool explicit = false;
	unsigned int n = 0, i, p;

	QTAILQ_FOREACH(c, &llmdev_cards, next) {
		n++;
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			c->link[p].new_peer = NULL;
			c->link[p].new_peer_port = 0;
			if (c->peer_id[p])
				explicit = true;
		}
	}
	if (explicit) {
		QTAILQ_FOREACH(c, &llmdev_cards, next) {
			for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
				LlmdevState *t;

				if (!c->peer_id[p])
					continue;
				t = llmdev_find_card(c->peer_id[p]);
				if (t && t != c)
					llmdev_cable(c, p, t, c->peer_port[p]);
			}
		}
	} else if (n >= 2) {
		ring = g_new(LlmdevState *, n);
		i = 0;
		QTAILQ_FOREACH(c, &llmdev_cards, next)
			ring[i++] = c;
		for (i = 0; i < n; i++)
			llmdev_cable(ring[i], 0, ring[(i + 1) % n], 1);
		g_free(ring);
	}

	/* rewire first, then re-evaluate: both ends must see the new cable */
	QTAILQ_FOREACH(c, &llmdev_cards, next) {
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			LlmdevLink *l = &c->link[p];

			if (l->new_peer == l->peer &&
			    (!l->peer || l->new_peer_port == l->peer_port))
				continue;
			l->changed = true;
			l->trained = false;
			timer_del(l->train_timer);
			l->peer = l->new_peer;
			l->peer_port = l->new_peer_port;
			if (l->peer)
				trace_llmdev_link_cable(llmdev_id(c), p,
							llmdev_id(l->peer),
							l->peer_port);
		}
	}
	QTAILQ_FOREACH(c, &llmdev_cards, next) {
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			if (c->link[p].changed) {
				c->link[p].changed = false;
				llmdev_link_update(&c->link[p]);
			}
		}
	}
}

static void llmdev_free_peers(LlmdevState *s)
{
	unsigned int p;

	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		g_free(s->peer_id[p]);
		s->peer_id[p] = NULL;
	}
}

/* Parse the peerN properties ("ID.PORT"). */
static bool llmdev_parse_peers(LlmdevState *s, Error **errp)
{
	unsigned int p;

	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		const char *spec = s->peer_spec[p], *dot;

		if (!spec || !*spec)
			continue;
		dot = strrchr(spec, '.');
		if (!dot || dot == spec || dot[1] < '0' ||
		    dot[1] >= '0' + LLMDEV_NUM_LINK_PORTS || dot[2]) {
			error_setg(errp, "llmdev: peer%u=%s: expected ID.PORT with "
				   "PORT 0..%u", p, spec, LLMDEV_NUM_LINK_PORTS - 1);
			return false;
		}
		s->peer_id[p] = g_strndup(spec, dot - spec);
		s->peer_port[p] = dot[1] - '0';
		if (DEVICE(s)->id && !strcmp(DEVICE(s)->id, s->peer_id[p])) {
			error_setg(errp, "llmdev: peer%u=%s: a cable must lead to "
				   "another card", p, spec);
			return false;
		}
	}
	return true;
}

typedef struct LlmdevCableSpec {
	char *a;		/* card id, or a unique name for a card without */
	unsigned int pa;
	const char *b;
	unsigned int pb;
} LlmdevCableSpec;

static bool llmdev_same_end(const char *a, unsigned int pa, const char *b,
			    unsigned int pb)
{
	return pa == pb && !strcmp(a, b);
}

/*
 * The explicit cables of the cards that exist plus this new one must not
 * use a port twice. Cables between cards that do not exist yet count too,
 * so the result does not depend on the order in which cards appear.
 */
static void llmdev_add_cables(GArray *cables, LlmdevState *c)
{
	unsigned int p;

	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		LlmdevCableSpec cs;

		if (!c->peer_id[p])
			continue;
		cs.a = DEVICE(c)->id ? g_strdup(DEVICE(c)->id) :
		       g_strdup_printf("\001%p", c);
		cs.pa = p;
		cs.b = c->peer_id[p];
		cs.pb = c->peer_port[p];
		g_array_append_val(cables, cs);
	}
}

static bool llmdev_check_cables(LlmdevState *s, Error **errp)
{
	GArray *cables = g_array_new(false, true, sizeof(LlmdevCableSpec));
	LlmdevState *c;
	bool ok = true;
	unsigned int i, j;

	QTAILQ_FOREACH(c, &llmdev_cards, next)
		llmdev_add_cables(cables, c);
	llmdev_add_cables(cables, s);
	for (i = 0; i < cables->len && ok; i++) {
		LlmdevCableSpec *x = &g_array_index(cables, LlmdevCableSpec, i);

		for (j = i + 1; j < cables->len && ok; j++) {
			LlmdevCableSpec *y = &g_array_index(cables, LlmdevCableSpec, j);
			bool same = (llmdev_same_end(x->a, x->pa, y->a, y->pa) &&
				     llmdev_same_end(x->b, x->pb, y->b, y->pb)) ||
				    (llmdev_same_end(x->a, x->pa, y->b, y->pb) &&
				     llmdev_same_end(x->b, x->pb, y->a, y->pa));

			if (same)
				continue;
			if (llmdev_same_end(x->a, x->pa, y->a, y->pa) ||
			    llmdev_same_end(x->a, x->pa, y->b, y->pb) ||
			    llmdev_same_end(x->b, x->pb, y->a, y->pa) ||
			    llmdev_same_end(x->b, x->pb, y->b, y->pb)) {
				error_setg(errp, "llmdev: cable %s.%u-%s.%u conflicts "
					   "with cable %s.%u-%s.%u (a port takes one "
					   "cable)",
					   x->a[0] == 1 ? "(no id)" : x->a, x->pa,
					   x->b, x->pb,
					   y->a[0] == 1 ? "(no id)" : y->a, y->pa,
					   y->b, y->pb);
				ok = false;
			}
		}
	}
	for (i = 0; i < cables->len; i++)
		g_free(g_array_index(cables, LlmdevCableSpec, i).a);
	g_array_free(cables, true);
	return ok;
}

static uint64_t llmdev_link_read(LlmdevLink *l, hwaddr off)
{
	LlmdevLink *pl = llmdev_link_peer(l);

	switch (off) {
	case LLMDEV_LINK_CTRL:
		return l->ctrl;
	case LLMDEV_LINK_STATUS:
		return l->state |
		       (pl ? LLMDEV_LINK_STATUS_CABLED : 0) |
		       (llmdev_link_forced(l) || (pl && llmdev_link_forced(pl)) ?
			LLMDEV_LINK_STATUS_FORCED_DOWN : 0);
	case LLMDEV_LINK_PEER_SERIAL:
		return l->peer_serial;
	case LLMDEV_LINK_PEER_PORT:
		return l->peer_port_reg;
	case LLMDEV_LINK_DOWN_COUNT:
		return l->down_count;
	case LLMDEV_LINK_TX_BYTES:
		return l->tx_bytes;
	case LLMDEV_LINK_RX_BYTES:
		return l->rx_bytes;
	case LLMDEV_LINK_TX_ERRORS:
		return l->tx_errors;
	case LLMDEV_LINK_RX_ERRORS:
		return l->rx_errors;
	case LLMDEV_LINK_FAULT:
		return l->fault;
	case LLMDEV_LINK_DOWN_AFTER:
		return l->down_after;
	}
	return 0;
}

static bool llmdev_link_write(LlmdevLink *l, hwaddr off, uint64_t val)
{
	switch (off) {
	case LLMDEV_LINK_CTRL:
		l->ctrl = val & LLMDEV_LINK_CTRL_ENABLE;
		llmdev_link_update(l);
		return true;
	case LLMDEV_LINK_FAULT:
		/* the burst sees the link as it was before this write */
		if (val & LLMDEV_LINK_FAULT_ERROR_BURST)
			llmdev_link_burst(l, LLMDEV_LINK_FAULT_BURST_COUNT(val));
		l->fault = val & LLMDEV_LINK_FAULT_FORCE_DOWN;
		llmdev_link_update(l);
		return true;
	case LLMDEV_LINK_DOWN_AFTER:
		l->down_after = val;
		return true;
	}
	return false;
}

static void llmdev_links_reset(LlmdevState *s)
{
	unsigned int p;

	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		LlmdevLink *l = &s->link[p];

		l->ctrl = 0;
		l->fault = 0;
		llmdev_link_update(l);	/* the peer sees the link go */
		l->down_count = 0;
		l->tx_bytes = l->rx_bytes = 0;
		l->tx_errors = l->rx_errors = 0;
		l->down_after = 0;
		l->peer_serial = 0;
		l->peer_port_reg = ~0u;
	}
	s->link_event = 0;
}

/* ---- Collective engine --------------------------------------------------- */

/* Bytes per transfer per timer run, so a huge chunk cannot stall QEMU. */
#define LLMDEV_COLL_BATCH		(4 * MiB)
/* SRC -> DST copies: bytes per timer run over all members */
#define LLMDEV_COLL_COPY_BATCH		(64 * MiB)

struct LlmdevSession {
	unsigned int n;
	LlmdevState *m[LLMDEV_COLL_MAX_RANKS];	/* by rank */
	uint32_t down_count[LLMDEV_COLL_MAX_RANKS];	/* tx link, at start */
	uint32_t kind;
	uint32_t redop;
	uint32_t dtype;
	uint32_t esize;
	uint32_t root;
	uint64_t tag;
	uint64_t count;
	uint64_t bytes;		/* count * esize */
	uint64_t chunk;
	uint64_t copied;	/* SRC -> DST copy progress */
	unsigned int step, nsteps;
	uint64_t tick, nticks;	/* chunk steps within the step */
	uint64_t done;		/* bytes of this tick's transfers moved so far */
};

/* One rank sends len bytes at DST + off to the next rank's DST + off. */
typedef struct LlmdevXfer {
	unsigned int from;
	uint64_t off;
	uint64_t len;
} LlmdevXfer;

static unsigned int llmdev_dtype_size(uint32_t dtype)
{
	return dtype == LLMDEV_COLL_DTYPE_F16 ||
	       dtype == LLMDEV_COLL_DTYPE_BF16 ? 2 : 4;
}

static uint64_t llmdev_coll_chunk(const LlmdevCollParams *p)
{
	return p->chunk ? p->chunk : LLMDEV_COLL_DEFAULT_CHUNK;
}

static unsigned int llmdev_coll_nranks(const LlmdevCollParams *p)
{
	return (p->rank >> 8) & 0xff;
}

static unsigned int llmdev_coll_txp(const LlmdevCollParams *p)
{
	return p->ports & 0xf;
}

static unsigned int llmdev_coll_rxp(const LlmdevCollParams *p)
{
	return (p->ports >> 4) & 0xf;
}

/* -- arithmetic: IEEE half and bfloat16 through float, round to nearest even */

static float llmdev_f32(uint32_t v)
{
	float f;

	memcpy(&f, &v, 4);
	return f;
}

static uint32_t llmdev_f32_bits(float f)
{
	uint32_t v;

	memcpy(&v, &f, 4);
	return v;
}

static float llmdev_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;

	if (exp == 0x1f)	/* inf, NaN (payload kept) */
		return llmdev_f32(sign | 0x7f800000 | man << 13);
	if (exp == 0) {		/* zero, subnormal: man * 2^-24, exact */
		float f = ldexpf((float)man, -24);

		return sign ? -f : f;
	}
	return llmdev_f32(sign | (exp + 112) << 23 | man << 13);
}

static uint16_t llmdev_f32_to_f16(float f)
{
	uint32_t x = llmdev_f32_bits(f);
	uint32_t sign = (x >> 16) & 0x8000;
	uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff, h, rem;
	int e;

	if (exp == 0xff)	/* inf; NaN stays a (quiet) NaN */
		return sign | 0x7c00 | (man ? 0x200 | man >> 13 : 0);
	e = (int)exp - 127 + 15;
	if (e >= 31)
		return sign | 0x7c00;
	if (e <= 0) {		/* half subnormal (or zero) */
		unsigned int shift = 14 - e;
		uint32_t half;

		if (e < -10)
			return sign;
		man |= 0x800000;
		half = man >> shift;
		rem = man & ((1u << shift) - 1);
		if (rem > 1u << (shift - 1) ||
		    (rem == 1u << (shift - 1) && (half & 1)))
			half++;
		return sign | half;
	}
	h = sign | (uint32_t)e << 10 | man >> 13;
	rem = man & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++;		/* may carry into the exponent, up to inf */
	return h;
}

static float llmdev_bf16_to_f32(uint16_t b)
{
	return llmdev_f32((uint32_t)b << 16);
}

static uint16_t llmdev_f32_to_bf16(float f)
{
	uint32_t x = llmdev_f32_bits(f);

	if ((x & 0x7fffffff) > 0x7f800000)	/* NaN: quiet, keep the top */
		return (x >> 16) | 0x40;
	return (x + 0x7fff + ((x >> 16) & 1)) >> 16;
}

/* receiver's value a op incoming value b; a NaN operand gives that NaN */
static float llmdev_fop(float a, float b, uint32_t redop)
{
	if (isnan(a))
		return a;
	if (isnan(b))
		return b;
	switch (redop) {
	case LLMDEV_COLL_REDOP_MIN:
		return b < a ? b : a;
	case LLMDEV_COLL_REDOP_MAX:
		return b > a ? b : a;
	}
	return a + b;
}

static int32_t llmdev_iop(int32_t a, int32_t b, uint32_t redop)
{
	switch (redop) {
	case LLMDEV_COLL_REDOP_MIN:
		return b < a ? b : a;
	case LLMDEV_COLL_REDOP_MAX:
		return b > a ? b : a;
	}
	return (int32_t)((uint32_t)a + (uint32_t)b);	/* wraps */
}

/* acc[i] = acc[i] op in[i] for n elements */
static void llmdev_reduce(uint8_t *acc, const uint8_t *in, uint64_t n,
			  uint32_t dtype, uint32_t redop)
{
	uint64_t i;

	switch (dtype) {
	case LLMDEV_COLL_DTYPE_I32:
		for (i = 0; i < n; i++)
			stl_le_p(acc + 4 * i,
				 llmdev_iop(ldl_le_p(acc + 4 * i),
					    ldl_le_p(in + 4 * i), redop));
		break;
	case LLMDEV_COLL_DTYPE_F32:
		for (i = 0; i < n; i++)
			stl_le_p(acc + 4 * i, llmdev_f32_bits(
				 llmdev_fop(llmdev_f32(ldl_le_p(acc + 4 * i)),
					    llmdev_f32(ldl_le_p(in + 4 * i)),
					    redop)));
		break;
	case LLMDEV_COLL_DTYPE_F16:
		for (i = 0; i < n; i++)
			stw_le_p(acc + 2 * i, llmdev_f32_to_f16(
				 llmdev_fop(llmdev_f16_to_f32(lduw_le_p(acc + 2 * i)),
					    llmdev_f16_to_f32(lduw_le_p(in + 2 * i)),
					    redop)));
		break;
	case LLMDEV_COLL_DTYPE_BF16:
		for (i = 0; i < n; i++)
			stw_le_p(acc + 2 * i, llmdev_f32_to_bf16(
				 llmdev_fop(llmdev_bf16_to_f32(lduw_le_p(acc + 2 * i)),
					    llmdev_bf16_to_f32(lduw_le_p(in + 2 * i)),
					    redop)));
		break;
	}
}

/* -- posting, matching, finishing */

static void llmdev_coll_finish(LlmdevState *s, uint32_t err)
{
	LlmdevColl *c = &s->coll;

	if (c->sess)
		s->perf[LLMDEV_PERF_COLL_BUSY_NS] +=
			qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - c->run_start;
	c->sess = NULL;
	c->waiting = false;
	timer_del(c->timeout_timer);
	timer_del(c->tick_timer);
	c->status = err ? LLMDEV_COLL_STATUS_ERROR | err << 8 :
		    LLMDEV_COLL_STATUS_DONE;
	c->done_tag = c->cur.tag;
	c->completed++;
	s->perf[LLMDEV_PERF_COLL_OPS]++;
	trace_llmdev_coll_finish(llmdev_id(s), c->cur.tag, err);
	llmdev_raise_event(s, LLMDEV_EVENT_COLL);
}

/* End a session on every member but skip (which is going away or resetting). */
static void llmdev_sess_end(LlmdevSession *ss, uint32_t err, LlmdevState *skip)
{
	unsigned int r;

	for (r = 0; r < ss->n; r++) {
		LlmdevState *m = ss->m[r];

		if (m->coll.sess != ss)
			continue;
		if (m == skip) {
			m->coll.sess = NULL;
			timer_del(m->coll.tick_timer);
			continue;
		}
		llmdev_coll_finish(m, err);
	}
	g_free(ss);
}

static LlmdevLink *llmdev_sess_tx(LlmdevSession *ss, unsigned int r)
{
	LlmdevState *m = ss->m[r];

	return &m->link[llmdev_coll_txp(&m->coll.cur)];
}

/* Every member posted and agrees: run. */
static void llmdev_sess_start(LlmdevState **m, unsigned int n)
{
	LlmdevSession *ss = g_new0(LlmdevSession, 1);
	const LlmdevCollParams *p = &m[0]->coll.cur;
	int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
	unsigned int r;
	uint64_t seg0;

	ss->n = n;
	ss->kind = LLMDEV_COLL_OP_KIND(p->op);
	ss->redop = LLMDEV_COLL_OP_REDOP(p->op);
	ss->dtype = LLMDEV_COLL_OP_DTYPE(p->op);
	ss->root = LLMDEV_COLL_OP_ROOT(p->op);
	ss->esize = llmdev_dtype_size(ss->dtype);
	ss->tag = p->tag;
	ss->count = p->count;
	ss->bytes = p->count * ss->esize;
	ss->chunk = llmdev_coll_chunk(p);
	if (n < 2) {
		ss->nsteps = 0;
	} else if (ss->kind == LLMDEV_COLL_KIND_ALLREDUCE) {
		seg0 = (ss->count / n + (ss->count % n ? 1 : 0)) * ss->esize;
		ss->nsteps = 2 * (n - 1);
		ss->nticks = DIV_ROUND_UP(seg0, ss->chunk);
	} else {
		ss->nsteps = 1;
		ss->nticks = DIV_ROUND_UP(ss->bytes, ss->chunk) + n - 2;
	}
	for (r = 0; r < n; r++) {
		ss->m[r] = m[r];
		m[r]->coll.waiting = false;
		m[r]->coll.sess = ss;
		m[r]->coll.run_start = now;
		timer_del(m[r]->coll.timeout_timer);
		ss->down_count[r] = llmdev_sess_tx(ss, r)->down_count;
	}
	trace_llmdev_coll_run(ss->tag, n, ss->nsteps, ss->nticks);
	timer_mod(m[0]->coll.tick_timer, now);
}

/*
 * A card just posted a collective with this tag: if the cards waiting with
 * the tag hold every rank of some member's nranks, check the group and run
 * it or fail it.
 */
static void llmdev_coll_match(uint64_t tag)
{
	GPtrArray *g = g_ptr_array_new();
	LlmdevState *c, *m[LLMDEV_COLL_MAX_RANKS];
	const LlmdevCollParams *p0;
	uint32_t err = LLMDEV_COLL_ERR_NONE, seen;
	bool complete = false;
	unsigned int i, j, n;

	QTAILQ_FOREACH(c, &llmdev_cards, next) {
		if (c->coll.waiting && c->coll.cur.tag == tag)
			g_ptr_array_add(g, c);
	}
	for (i = 0; i < g->len && !complete; i++) {
		n = llmdev_coll_nranks(&((LlmdevState *)g->pdata[i])->coll.cur);
		seen = 0;
		for (j = 0; j < g->len; j++) {
			unsigned int r = ((LlmdevState *)g->pdata[j])->coll.cur.rank & 0xff;

			if (r < n)
				seen |= 1u << r;
		}
		complete = seen == (1u << n) - 1;
	}
	if (!complete)
		goto out;

	p0 = &((LlmdevState *)g->pdata[0])->coll.cur;
	n = llmdev_coll_nranks(p0);
	memset(m, 0, sizeof(m));
	if (g->len != n)
		err = LLMDEV_COLL_ERR_MISMATCH;
	for (i = 0; i < g->len && !err; i++) {
		const LlmdevCollParams *p = &((LlmdevState *)g->pdata[i])->coll.cur;
		unsigned int r = p->rank & 0xff;
		uint32_t kind = LLMDEV_COLL_OP_KIND(p->op);

		if (llmdev_coll_nranks(p) != n || m[r] ||
		    kind != LLMDEV_COLL_OP_KIND(p0->op) ||
		    LLMDEV_COLL_OP_DTYPE(p->op) != LLMDEV_COLL_OP_DTYPE(p0->op) ||
		    p->count != p0->count ||
		    llmdev_coll_chunk(p) != llmdev_coll_chunk(p0) ||
		    (kind == LLMDEV_COLL_KIND_ALLREDUCE &&
		     LLMDEV_COLL_OP_REDOP(p->op) != LLMDEV_COLL_OP_REDOP(p0->op)) ||
		    (kind == LLMDEV_COLL_KIND_BROADCAST &&
		     LLMDEV_COLL_OP_ROOT(p->op) != LLMDEV_COLL_OP_ROOT(p0->op)))
			err = LLMDEV_COLL_ERR_MISMATCH;
		else
			m[r] = g->pdata[i];
	}
	/* rank r's tx cable must arrive on rank r + 1's rx port */
	for (i = 0; i < n && !err; i++) {
		LlmdevState *next = m[(i + 1) % n];
		LlmdevLink *tx = &m[i]->link[llmdev_coll_txp(&m[i]->coll.cur)];

		if (tx->peer != next ||
		    tx->peer_port != llmdev_coll_rxp(&next->coll.cur))
			err = LLMDEV_COLL_ERR_TOPOLOGY;
	}
	for (i = 0; i < n && !err; i++) {
		if (m[i]->link[llmdev_coll_txp(&m[i]->coll.cur)].state !=
		    LLMDEV_LINK_STATE_UP)
			err = LLMDEV_COLL_ERR_LINK_DOWN;
	}
	if (err) {
		for (i = 0; i < g->len; i++)
			llmdev_coll_finish(g->pdata[i], err);
		goto out;
	}
	llmdev_sess_start(m, n);
out:
	g_ptr_array_free(g, true);
}

/* Parameter checks at START; returns an LLMDEV_COLL_ERR_* code. */
static uint32_t llmdev_coll_check(LlmdevState *s)
{
	const LlmdevCollParams *p = &s->coll.cur;
	uint32_t kind = LLMDEV_COLL_OP_KIND(p->op);
	uint32_t dtype = LLMDEV_COLL_OP_DTYPE(p->op);
	unsigned int rank = p->rank & 0xff, n = llmdev_coll_nranks(p);
	uint64_t bytes;
	bool src_used;

	if ((p->op & ~0x00ff0fffu) || (p->rank & ~0xffffu) ||
	    (p->ports & ~0xffu))
		return LLMDEV_COLL_ERR_PARAM;
	if (kind != LLMDEV_COLL_KIND_ALLREDUCE &&
	    kind != LLMDEV_COLL_KIND_BROADCAST)
		return LLMDEV_COLL_ERR_PARAM;
	if (dtype > LLMDEV_COLL_DTYPE_I32)
		return LLMDEV_COLL_ERR_PARAM;
	if (kind == LLMDEV_COLL_KIND_ALLREDUCE &&
	    LLMDEV_COLL_OP_REDOP(p->op) > LLMDEV_COLL_REDOP_MAX)
		return LLMDEV_COLL_ERR_PARAM;
	if (!n || n > LLMDEV_COLL_MAX_RANKS || rank >= n)
		return LLMDEV_COLL_ERR_PARAM;
	if (kind == LLMDEV_COLL_KIND_BROADCAST && LLMDEV_COLL_OP_ROOT(p->op) >= n)
		return LLMDEV_COLL_ERR_PARAM;
	if (llmdev_coll_txp(p) >= LLMDEV_NUM_LINK_PORTS ||
	    llmdev_coll_rxp(p) >= LLMDEV_NUM_LINK_PORTS)
		return LLMDEV_COLL_ERR_PARAM;
	if (!p->count || p->chunk % LLMDEV_COLL_CHUNK_ALIGN)
		return LLMDEV_COLL_ERR_PARAM;
	if (p->count > s->hbm_size / llmdev_dtype_size(dtype))
		return LLMDEV_COLL_ERR_PARAM;
	bytes = p->count * llmdev_dtype_size(dtype);
	src_used = kind == LLMDEV_COLL_KIND_ALLREDUCE ||
		   rank == LLMDEV_COLL_OP_ROOT(p->op);
	if (!llmdev_hbm_range_ok(s, p->dst, bytes))
		return LLMDEV_COLL_ERR_PARAM;
	if (src_used && !llmdev_hbm_range_ok(s, p->src, bytes))
		return LLMDEV_COLL_ERR_PARAM;
	if (src_used && p->src != p->dst && p->src < p->dst + bytes &&
	    p->dst < p->src + bytes)
		return LLMDEV_COLL_ERR_PARAM;
	return LLMDEV_COLL_ERR_NONE;
}

static void llmdev_coll_start(LlmdevState *s)
{
	LlmdevColl *c = &s->coll;
	uint32_t err;

	c->cur = c->reg;
	c->status = 0;
	trace_llmdev_coll_start(llmdev_id(s), c->cur.tag, c->cur.op,
				c->cur.rank & 0xff, llmdev_coll_nranks(&c->cur));
	err = llmdev_coll_check(s);
	if (err) {
		llmdev_coll_finish(s, err);
		return;
	}
	if (llmdev_coll_nranks(&c->cur) == 1) {
		llmdev_sess_start(&s, 1);
		return;
	}
	if (s->link[llmdev_coll_txp(&c->cur)].state != LLMDEV_LINK_STATE_UP ||
	    s->link[llmdev_coll_rxp(&c->cur)].state != LLMDEV_LINK_STATE_UP) {
		llmdev_coll_finish(s, LLMDEV_COLL_ERR_LINK_DOWN);
		return;
	}
	c->waiting = true;
	if (c->cur.timeout_us)
		timer_mod(c->timeout_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
			  (int64_t)c->cur.timeout_us * SCALE_US);
	llmdev_coll_match(c->cur.tag);
}

static void llmdev_coll_abort(LlmdevState *s)
{
	if (s->coll.sess)
		llmdev_sess_end(s->coll.sess, LLMDEV_COLL_ERR_ABORTED, NULL);
	else if (s->coll.waiting)
		llmdev_coll_finish(s, LLMDEV_COLL_ERR_ABORTED);
}

static void llmdev_coll_timeout(void *opaque)
{
	LlmdevState *s = opaque;

	if (s->coll.waiting)
		llmdev_coll_finish(s, LLMDEV_COLL_ERR_TIMEOUT);
}

/* -- data movement */

static uint64_t llmdev_seg_elems(LlmdevSession *ss, unsigned int k)
{
	return ss->count / ss->n + (k < ss->count % ss->n ? 1 : 0);
}

static uint64_t llmdev_seg_start(LlmdevSession *ss, unsigned int k)
{
	return k * (ss->count / ss->n) + MIN(k, ss->count % ss->n);
}

/* The transfers of the current tick; returns how many. */
static unsigned int llmdev_sess_xfers(LlmdevSession *ss, LlmdevXfer *x)
{
	unsigned int n = ss->n, r, i, k = 0;
	uint64_t off = ss->tick * ss->chunk;

	if (ss->kind == LLMDEV_COLL_KIND_ALLREDUCE) {
		unsigned int s = ss->step;

		for (r = 0; r < n; r++) {
			unsigned int seg = s < n - 1 ? (r + n - s) % n :
					   (r + 1 + n - (s - (n - 1))) % n;
			uint64_t len = llmdev_seg_elems(ss, seg) * ss->esize;

			if (off >= len)
				continue;
			x[k].from = r;
			x[k].off = llmdev_seg_start(ss, seg) * ss->esize + off;
			x[k].len = MIN(ss->chunk, len - off);
			k++;
		}
		return k;
	}
	/* broadcast: position i of the chain sends chunk tick - i */
	for (i = 0; i + 1 < n; i++) {
		uint64_t c;

		if (ss->tick < i)
			break;
		c = ss->tick - i;
		if (c * ss->chunk >= ss->bytes)
			continue;
		x[k].from = (ss->root + i) % n;
		x[k].off = c * ss->chunk;
		x[k].len = MIN(ss->chunk, ss->bytes - c * ss->chunk);
		k++;
	}
	return k;
}

/* SRC -> DST on the members that need it, a batch per timer run. */
static bool llmdev_sess_copy(LlmdevSession *ss)
{
	uint64_t batch = LLMDEV_COLL_COPY_BATCH / ss->n, len;
	unsigned int r;

	if (ss->copied >= ss->bytes)
		return false;
	len = MIN(batch, ss->bytes - ss->copied);
	for (r = 0; r < ss->n; r++) {
		LlmdevState *m = ss->m[r];
		const LlmdevCollParams *p = &m->coll.cur;

		if (p->src == p->dst ||
		    (ss->kind == LLMDEV_COLL_KIND_BROADCAST && r != ss->root))
			continue;
		memcpy(m->hbm + p->dst + ss->copied, m->hbm + p->src + ss->copied,
		       len);
	}
	ss->copied += len;
	return true;
}

static void llmdev_coll_tick(void *opaque)
{
	LlmdevState *s = opaque;
	LlmdevSession *ss = s->coll.sess;
	LlmdevXfer x[LLMDEV_COLL_MAX_RANKS];
	int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
	uint64_t maxlen = 0, dur = 1, len;
	unsigned int nx, i, r;

	if (!ss || ss->m[0] != s)
		return;
	if (llmdev_sess_copy(ss)) {
		timer_mod(s->coll.tick_timer, now);
		return;
	}
	if (ss->step >= ss->nsteps) {
		llmdev_sess_end(ss, LLMDEV_COLL_ERR_NONE, NULL);
		return;
	}
	nx = llmdev_sess_xfers(ss, x);

	if (!ss->done) {
		/* every link of the ring is up, and has been since the start */
		for (r = 0; r < ss->n; r++) {
			LlmdevLink *l = llmdev_sess_tx(ss, r);

			if (l->state != LLMDEV_LINK_STATE_UP ||
			    l->peer != ss->m[(r + 1) % ss->n] ||
			    l->down_count != ss->down_count[r]) {
				llmdev_sess_end(ss, LLMDEV_COLL_ERR_LINK_DOWN, NULL);
				return;
			}
		}
		/* a chunk that does not fit the DOWN_AFTER budget drops the link */
		for (i = 0; i < nx; i++) {
			LlmdevLink *l = llmdev_sess_tx(ss, x[i].from);

			if (l->down_after && x[i].len > l->down_after) {
				llmdev_link_exhaust(l);
				llmdev_sess_end(ss, LLMDEV_COLL_ERR_LINK_DOWN, NULL);
				return;
			}
		}
	}

	/* move this run's slice of every transfer */
	for (i = 0; i < nx; i++) {
		LlmdevState *from = ss->m[x[i].from];
		LlmdevState *to = ss->m[(x[i].from + 1) % ss->n];
		uint8_t *src, *dst;

		maxlen = MAX(maxlen, x[i].len);
		if (ss->done >= x[i].len)
			continue;
		len = MIN(LLMDEV_COLL_BATCH, x[i].len - ss->done);
		src = from->hbm + from->coll.cur.dst + x[i].off + ss->done;
		dst = to->hbm + to->coll.cur.dst + x[i].off + ss->done;
		if (ss->kind == LLMDEV_COLL_KIND_ALLREDUCE && ss->step < ss->n - 1)
			llmdev_reduce(dst, src, len / ss->esize, ss->dtype, ss->redop);
		else
			memcpy(dst, src, len);
	}
	ss->done += LLMDEV_COLL_BATCH;
	if (ss->done < maxlen) {
		timer_mod(s->coll.tick_timer, now);
		return;
	}

	/* the tick is complete: count it, and wait for the slowest link */
	for (i = 0; i < nx; i++) {
		LlmdevState *from = ss->m[x[i].from];
		LlmdevLink *l = llmdev_sess_tx(ss, x[i].from);
		LlmdevLink *pl = llmdev_link_peer(l);

		l->tx_bytes += x[i].len;
		pl->rx_bytes += x[i].len;
		from->perf[LLMDEV_PERF_LINK_TX_BYTES] += x[i].len;
		pl->s->perf[LLMDEV_PERF_LINK_RX_BYTES] += x[i].len;
		dur = MAX(dur, DIV_ROUND_UP(x[i].len * 8, from->link_gbps));
		if (l->down_after) {
			l->down_after -= x[i].len;
			if (!l->down_after)
				llmdev_link_exhaust(l);
		}
	}
	ss->done = 0;
	if (++ss->tick >= ss->nticks) {
		ss->tick = 0;
		ss->step++;
	}
	timer_mod(s->coll.tick_timer, now + dur);
}

static uint64_t llmdev_coll_status(LlmdevState *s)
{
	LlmdevColl *c = &s->coll;

	return c->status |
	       (c->waiting || c->sess ? LLMDEV_COLL_STATUS_BUSY : 0) |
	       (c->sess ? LLMDEV_COLL_STATUS_RUNNING : 0);
}

static void llmdev_coll_reset(LlmdevState *s)
{
	LlmdevColl *c = &s->coll;

	if (c->sess)
		llmdev_sess_end(c->sess, LLMDEV_COLL_ERR_ABORTED, s);
	timer_del(c->timeout_timer);
	timer_del(c->tick_timer);
	c->waiting = false;
	memset(&c->reg, 0, sizeof(c->reg));
	memset(&c->cur, 0, sizeof(c->cur));
	c->status = 0;
	c->completed = 0;
	c->done_tag = 0;
}

/* ---- Routing table ------------------------------------------------------- */

static bool llmdev_route_entry_ok(LlmdevState *s, const uint8_t *e)
{
	uint32_t layers = ldl_le_p(e + LLMDEV_ROUTE_E_LAYERS);
	uint32_t tp = ldl_le_p(e + LLMDEV_ROUTE_E_TP);
	uint64_t off = ldq_le_p(e + LLMDEV_ROUTE_E_HBM_OFFSET);
	uint64_t len = ldq_le_p(e + LLMDEV_ROUTE_E_HBM_LENGTH);
	uint32_t rank = tp & 0xff, size = (tp >> 8) & 0xff;
	uint32_t hop = (tp >> 16) & 0xff, flags = tp >> 24;

	return flags == LLMDEV_ROUTE_F_VALID &&
	       (layers & 0xffff) <= layers >> 16 &&
	       size && rank < size &&
	       (hop < LLMDEV_NUM_LINK_PORTS || hop == LLMDEV_ROUTE_HOP_HOST) &&
	       len && llmdev_hbm_range_ok(s, off, len) &&
	       !ldl_le_p(e + LLMDEV_ROUTE_E_RESERVED);
}

static void llmdev_route_commit(LlmdevState *s)
{
	uint32_t n = s->route_stage_num, i;

	if (n > LLMDEV_ROUTE_ENTRIES) {
		s->route_status = LLMDEV_ROUTE_STATUS_ERROR |
				  LLMDEV_ROUTE_ENTRIES << 8;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!llmdev_route_entry_ok(s, s->route_stage[i])) {
			s->route_status = LLMDEV_ROUTE_STATUS_ERROR | i << 8;
			goto out;
		}
	}
	memset(s->route_active, 0, sizeof(s->route_active));
	memcpy(s->route_active, s->route_stage, n * LLMDEV_ROUTE_ENTRY_SIZE);
	s->route_active_num = n;
	s->route_gen++;
	s->route_status = 0;
out:
	trace_llmdev_route_commit(llmdev_id(s), n, s->route_status, s->route_gen);
}

static void llmdev_route_reset(LlmdevState *s)
{
	memset(s->route_stage, 0, sizeof(s->route_stage));
	memset(s->route_active, 0, sizeof(s->route_active));
	s->route_stage_num = 0;
	s->route_active_num = 0;
	s->route_gen = 0;
	s->route_status = 0;
}

/* ---- Reset -------------------------------------------------------------- */

static void llmdev_soft_reset(LlmdevState *s)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++)
		llmdev_ring_reset(&s->ring[i], false);
	qemu_bh_cancel(s->scrub_bh);
	/* other members of a running collective fail; peers see our links go */
	s->resetting = true;
	llmdev_coll_reset(s);
	llmdev_links_reset(s);
	s->resetting = false;
	llmdev_route_reset(s);
	s->event_cause = 0;

	s->control = 0;
	s->scratch = 0;
	s->irq_status = 0;
	s->irq_mask = 0xffffffff;
	s->err_status = 0;
	s->err_count = 0;
	s->err_log_head = 0;
	s->fault_inject = 0;
	memset(s->err_log, 0, sizeof(s->err_log));
	s->scrub_addr = s->scrub_len = s->scrub_done = 0;
	s->scrub_cur_addr = s->scrub_cur_len = 0;
	s->scrub_cur_pattern = 0;
	s->scrub_pattern = 0;
	s->scrub_status = 0;
	memset(s->perf, 0, sizeof(s->perf));
	memset(s->perf_snap, 0, sizeof(s->perf_snap));
	s->perf_snap_time = 0;
	s->activity = 0;
	s->sensor_time = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
	s->sensor_busy = 0;
	s->reset_count++;
	llmdev_update_intx(s);
	trace_llmdev_reset(PCI_DEVICE(s)->devfn, s->reset_count);
}

/* ---- Register access ------------------------------------------------------ */

static uint64_t llmdev_ring_read(LlmdevRing *r, hwaddr off)
{
	switch (off) {
	case LLMDEV_RING_DESC_BASE:
		return r->desc_base;
	case LLMDEV_RING_CMPL_BASE:
		return r->cmpl_base;
	case LLMDEV_RING_SIZE:
		return r->size;
	case LLMDEV_RING_CTRL:
		return r->ctrl;
	case LLMDEV_RING_HEAD:
		return r->head;
	case LLMDEV_RING_TAIL:
		return r->tail;
	case LLMDEV_RING_STATUS:
		return ((r->ctrl & LLMDEV_RING_CTRL_ENABLE) ?
			LLMDEV_RING_STATUS_ENABLED : 0) |
		       (r->head != r->tail ? LLMDEV_RING_STATUS_BUSY : 0) |
		       (r->halted ? LLMDEV_RING_STATUS_HALTED : 0) |
		       ((r->s->fault_inject & LLMDEV_FAULT_STALL_RING(r->idx)) ?
			LLMDEV_RING_STATUS_STALLED : 0);
	case LLMDEV_RING_DIR:
		return r->c2h ? LLMDEV_DIR_C2H : LLMDEV_DIR_H2C;
	case LLMDEV_RING_IRQ_COALESCE:
		return r->coalesce;
	case LLMDEV_RING_COMPLETED:
		return r->completed;
	case LLMDEV_RING_ERR_CODE:
		return r->err_code;
	}
	return 0;
}

/* Returns false if the write was not allowed. */
static bool llmdev_ring_write(LlmdevRing *r, hwaddr off, uint64_t val)
{
	LlmdevState *s = r->s;
	bool enabled = r->ctrl & LLMDEV_RING_CTRL_ENABLE;

	switch (off) {
	case LLMDEV_RING_DESC_BASE:
	case LLMDEV_RING_CMPL_BASE:
	case LLMDEV_RING_SIZE:
		if (enabled)
			return false;
		if (off == LLMDEV_RING_DESC_BASE)
			r->desc_base = val;
		else if (off == LLMDEV_RING_CMPL_BASE)
			r->cmpl_base = val;
		else
			r->size = val;
		return true;
	case LLMDEV_RING_CTRL:
		if (val & LLMDEV_RING_CTRL_RESET) {
			llmdev_ring_reset(r, true);
			return true;
		}
		if ((val & LLMDEV_RING_CTRL_ENABLE) && !enabled &&
		    !llmdev_ring_config_ok(r)) {
			llmdev_log_error(s, LLMDEV_ERR_RING_CONFIG,
					 r->idx << 16 | 0xffff, r->desc_base);
			return true;
		}
		if (!(val & LLMDEV_RING_CTRL_ENABLE) && enabled)
			llmdev_ring_abort(r);
		r->ctrl = val & LLMDEV_RING_CTRL_ENABLE;
		llmdev_ring_kick(r);
		return true;
	case LLMDEV_RING_TAIL:
		trace_llmdev_doorbell(PCI_DEVICE(s)->devfn, r->idx, (uint32_t)val,
				      r->head);
		if (!enabled || (uint32_t)((uint32_t)val - r->head) > r->size) {
			llmdev_log_error(s, LLMDEV_ERR_DOORBELL,
					 r->idx << 16 | 0xffff, val);
			return true;
		}
		r->tail = val;
		s->perf[LLMDEV_PERF_DOORBELLS]++;
		llmdev_ring_kick(r);
		return true;
	case LLMDEV_RING_IRQ_COALESCE:
		r->coalesce = val;
		return true;
	}
	return false;
}

static bool llmdev_is_reg64(hwaddr addr);

static uint64_t llmdev_reg_read(LlmdevState *s, hwaddr addr)
{
	if (addr >= LLMDEV_RING_BASE(0) &&
	    addr < LLMDEV_RING_BASE(LLMDEV_NUM_RINGS))
		return llmdev_ring_read(&s->ring[(addr - LLMDEV_RING_BASE(0)) >> 8],
					addr & 0xff);
	if (addr >= LLMDEV_REG_ERR_LOG &&
	    addr < LLMDEV_REG_ERR_LOG +
		   LLMDEV_ERR_LOG_ENTRIES * LLMDEV_ERR_LOG_STRIDE) {
		hwaddr o = addr - LLMDEV_REG_ERR_LOG;
		uint8_t *e = &s->err_log[o / LLMDEV_ERR_LOG_STRIDE]
					[o % LLMDEV_ERR_LOG_STRIDE];

		return llmdev_is_reg64(addr) ? ldq_le_p(e) : ldl_le_p(e);
	}
	if (addr >= LLMDEV_REG_PERF_LIVE &&
	    addr < LLMDEV_REG_PERF_LIVE + 8 * LLMDEV_PERF_NUM_COUNTERS)
		return s->perf[(addr - LLMDEV_REG_PERF_LIVE) / 8];
	if (addr >= LLMDEV_REG_PERF_SNAP &&
	    addr < LLMDEV_REG_PERF_SNAP + 8 * LLMDEV_PERF_NUM_COUNTERS)
		return s->perf_snap[(addr - LLMDEV_REG_PERF_SNAP) / 8];
	if (addr >= LLMDEV_LINK_BASE(0) &&
	    addr < LLMDEV_LINK_BASE(LLMDEV_NUM_LINK_PORTS))
		return llmdev_link_read(&s->link[(addr - LLMDEV_LINK_BASE(0)) >> 8],
					addr & 0xff);
	if (addr >= LLMDEV_REG_ROUTE_STAGE &&
	    addr < LLMDEV_REG_ROUTE_STAGE +
		   LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE) {
		hwaddr o = addr - LLMDEV_REG_ROUTE_STAGE;
		uint8_t *e = &s->route_stage[o / LLMDEV_ROUTE_ENTRY_SIZE]
					    [o % LLMDEV_ROUTE_ENTRY_SIZE];

		return llmdev_is_reg64(addr) ? ldq_le_p(e) : ldl_le_p(e);
	}
	if (addr >= LLMDEV_REG_ROUTE_ACTIVE &&
	    addr < LLMDEV_REG_ROUTE_ACTIVE +
		   LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE) {
		hwaddr o = addr - LLMDEV_REG_ROUTE_ACTIVE;
		uint8_t *e = &s->route_active[o / LLMDEV_ROUTE_ENTRY_SIZE]
					     [o % LLMDEV_ROUTE_ENTRY_SIZE];

		return llmdev_is_reg64(addr) ? ldq_le_p(e) : ldl_le_p(e);
	}

	switch (addr) {
	case LLMDEV_REG_ID:
		return LLMDEV_ID_MAGIC;
	case LLMDEV_REG_VERSION:
		return LLMDEV_SPEC_MAJOR << 16 | LLMDEV_SPEC_MINOR;
	case LLMDEV_REG_CAPS:
		return LLMDEV_NUM_H2C_RINGS |
		       (LLMDEV_NUM_RINGS - LLMDEV_NUM_H2C_RINGS) << 4 |
		       LLMDEV_NUM_LINK_PORTS << 8 | LLMDEV_CAPS_SCRUB |
		       LLMDEV_CAPS_FAULT_INJECT;
	case LLMDEV_REG_STATUS:
		return LLMDEV_STATUS_READY |
		       (s->err_status ? LLMDEV_STATUS_ERROR : 0) |
		       (s->control & LLMDEV_CONTROL_ENABLE ?
			LLMDEV_STATUS_ENABLED : 0);
	case LLMDEV_REG_CONTROL:
		return s->control;
	case LLMDEV_REG_SCRATCH:
		return s->scratch;
	case LLMDEV_REG_SERIAL:
		return s->serial;
	case LLMDEV_REG_HBM_SIZE:
		return s->hbm_size;
	case LLMDEV_REG_TIMESTAMP:
		return llmdev_now(s);
	case LLMDEV_REG_NUM_VECTORS:
		return LLMDEV_NUM_VECTORS;
	case LLMDEV_REG_RESET_COUNT:
		return s->reset_count;
	case LLMDEV_REG_IRQ_STATUS:
		return s->irq_status;
	case LLMDEV_REG_IRQ_MASK:
		return s->irq_mask;
	case LLMDEV_REG_EVENT_CAUSE:
		return s->event_cause;
	case LLMDEV_REG_ERR_STATUS:
		return s->err_status;
	case LLMDEV_REG_ERR_COUNT:
		return s->err_count;
	case LLMDEV_REG_ERR_LOG_HEAD:
		return s->err_log_head;
	case LLMDEV_REG_FAULT_INJECT:
		return s->fault_inject;
	case LLMDEV_REG_SCRUB_ADDR:
		return s->scrub_addr;
	case LLMDEV_REG_SCRUB_LEN:
		return s->scrub_len;
	case LLMDEV_REG_SCRUB_PATTERN:
		return s->scrub_pattern;
	case LLMDEV_REG_SCRUB_STATUS:
		return s->scrub_status;
	case LLMDEV_REG_PERF_NUM:
		return LLMDEV_PERF_NUM_COUNTERS;
	case LLMDEV_REG_PERF_SNAP_TIME:
		return s->perf_snap_time;
	case LLMDEV_REG_TEMP_MC:
		llmdev_sensors_update(s);
		return LLMDEV_TEMP_IDLE_MC +
		       (uint32_t)(s->activity * LLMDEV_TEMP_SPAN_MC);
	case LLMDEV_REG_TEMP_CRIT_MC:
		return LLMDEV_TEMP_CRIT_MC;
	case LLMDEV_REG_POWER_MW:
		llmdev_sensors_update(s);
		return LLMDEV_POWER_IDLE_MW +
		       (uint32_t)(s->activity * LLMDEV_POWER_SPAN_MW);
	case LLMDEV_REG_POWER_CAP_MW:
		return LLMDEV_POWER_CAP_MW;
	case LLMDEV_REG_LINK_EVENT:
		return s->link_event;
	case LLMDEV_REG_LINK_GBPS:
		return s->link_gbps;
	case LLMDEV_REG_COLL_STATUS:
		return llmdev_coll_status(s);
	case LLMDEV_REG_COLL_TAG:
		return s->coll.reg.tag;
	case LLMDEV_REG_COLL_OP:
		return s->coll.reg.op;
	case LLMDEV_REG_COLL_RANK:
		return s->coll.reg.rank;
	case LLMDEV_REG_COLL_PORTS:
		return s->coll.reg.ports;
	case LLMDEV_REG_COLL_CHUNK:
		return s->coll.reg.chunk;
	case LLMDEV_REG_COLL_COUNT:
		return s->coll.reg.count;
	case LLMDEV_REG_COLL_SRC:
		return s->coll.reg.src;
	case LLMDEV_REG_COLL_DST:
		return s->coll.reg.dst;
	case LLMDEV_REG_COLL_TIMEOUT_US:
		return s->coll.reg.timeout_us;
	case LLMDEV_REG_COLL_COMPLETED:
		return s->coll.completed;
	case LLMDEV_REG_COLL_DONE_TAG:
		return s->coll.done_tag;
	case LLMDEV_REG_ROUTE_STAGE_NUM:
		return s->route_stage_num;
	case LLMDEV_REG_ROUTE_ACTIVE_NUM:
		return s->route_active_num;
	case LLMDEV_REG_ROUTE_GEN:
		return s->route_gen;
	case LLMDEV_REG_ROUTE_STATUS:
		return s->route_status;
	}
	return 0;
}

/* Collective parameters: refused while a collective is posted or running. */
static bool llmdev_coll_write(LlmdevState *s, hwaddr addr, uint64_t val)
{
	LlmdevCollParams *p = &s->coll.reg;

	if (s->coll.waiting || s->coll.sess)
		return false;
	switch (addr) {
	case LLMDEV_REG_COLL_TAG:
		p->tag = val;
		break;
	case LLMDEV_REG_COLL_OP:
		p->op = val;
		break;
	case LLMDEV_REG_COLL_RANK:
		p->rank = val;
		break;
	case LLMDEV_REG_COLL_PORTS:
		p->ports = val;
		break;
	case LLMDEV_REG_COLL_CHUNK:
		p->chunk = val;
		break;
	case LLMDEV_REG_COLL_COUNT:
		p->count = val;
		break;
	case LLMDEV_REG_COLL_SRC:
		p->src = val;
		break;
	case LLMDEV_REG_COLL_DST:
		p->dst = val;
		break;
	case LLMDEV_REG_COLL_TIMEOUT_US:
		p->timeout_us = val;
		break;
	default:
		return false;
	}
	return true;
}

static bool llmdev_reg_write(LlmdevState *s, hwaddr addr, uint64_t val)
{
	if (addr >= LLMDEV_RING_BASE(0) &&
	    addr < LLMDEV_RING_BASE(LLMDEV_NUM_RINGS))
		return llmdev_ring_write(&s->ring[(addr - LLMDEV_RING_BASE(0)) >> 8],
					 addr & 0xff, val);
	if (addr >= LLMDEV_LINK_BASE(0) &&
	    addr < LLMDEV_LINK_BASE(LLMDEV_NUM_LINK_PORTS))
		return llmdev_link_write(&s->link[(addr - LLMDEV_LINK_BASE(0)) >> 8],
					 addr & 0xff, val);
	if (addr >= LLMDEV_REG_COLL_TAG && addr <= LLMDEV_REG_COLL_TIMEOUT_US)
		return llmdev_coll_write(s, addr, val);
	if (addr >= LLMDEV_REG_ROUTE_STAGE &&
	    addr < LLMDEV_REG_ROUTE_STAGE +
		   LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE) {
		hwaddr o = addr - LLMDEV_REG_ROUTE_STAGE;
		uint8_t *e = &s->route_stage[o / LLMDEV_ROUTE_ENTRY_SIZE]
					    [o % LLMDEV_ROUTE_ENTRY_SIZE];

		if (llmdev_is_reg64(addr))
			stq_le_p(e, val);
		else
			stl_le_p(e, val);
		return true;
	}

	switch (addr) {
	case LLMDEV_REG_CONTROL:
		if (val & LLMDEV_CONTROL_RESET) {
			llmdev_soft_reset(s);
			return true;
		}
		s->control = val & LLMDEV_CONTROL_ENABLE;
		llmdev_kick_all(s);
		return true;
	case LLMDEV_REG_SCRATCH:
		s->scratch = val;
		return true;
	case LLMDEV_REG_IRQ_STATUS:
		s->irq_status &= ~val;
		llmdev_update_intx(s);
		return true;
	case LLMDEV_REG_IRQ_MASK:
		s->irq_mask = val;
		llmdev_update_intx(s);
		return true;
	case LLMDEV_REG_EVENT_CAUSE:
		s->event_cause &= ~val;
		return true;
	case LLMDEV_REG_ERR_STATUS:
		s->err_status &= ~val;
		return true;
	case LLMDEV_REG_FAULT_INJECT:
		if (val & LLMDEV_FAULT_RAISE_ERROR)
			llmdev_log_error(s, LLMDEV_ERR_INJECTED,
					 LLMDEV_SOURCE_NONE, 0);
		s->fault_inject = val & LLMDEV_FAULT_VALID_MASK &
				  ~LLMDEV_FAULT_RAISE_ERROR;
		llmdev_kick_all(s);
		return true;
	case LLMDEV_REG_SCRUB_ADDR:
	case LLMDEV_REG_SCRUB_LEN:
	case LLMDEV_REG_SCRUB_PATTERN:
		if (s->scrub_status & LLMDEV_SCRUB_STATUS_BUSY)
			return false;
		if (addr == LLMDEV_REG_SCRUB_ADDR)
			s->scrub_addr = val;
		else if (addr == LLMDEV_REG_SCRUB_LEN)
			s->scrub_len = val;
		else
			s->scrub_pattern = val;
		return true;
	case LLMDEV_REG_SCRUB_CTRL:
		if (val & LLMDEV_SCRUB_CTRL_START)
			llmdev_scrub_start(s);
		return true;
	case LLMDEV_REG_PERF_CTRL:
		if (val & LLMDEV_PERF_CTRL_SNAPSHOT) {
			memcpy(s->perf_snap, s->perf, sizeof(s->perf));
			s->perf_snap_time = llmdev_now(s);
		}
		return true;
	case LLMDEV_REG_LINK_EVENT:
		s->link_event &= ~val;
		return true;
	case LLMDEV_REG_COLL_CTRL:
		if (val & LLMDEV_COLL_CTRL_ABORT) {
			llmdev_coll_abort(s);
			return true;
		}
		if (val & LLMDEV_COLL_CTRL_START) {
			if (s->coll.waiting || s->coll.sess)
				return false;
			llmdev_coll_start(s);
		}
		return true;
	case LLMDEV_REG_ROUTE_CTRL:
		if (val & LLMDEV_ROUTE_CTRL_COMMIT)
			llmdev_route_commit(s);
		return true;
	case LLMDEV_REG_ROUTE_STAGE_NUM:
		s->route_stage_num = val;
		return true;
	}
	return false;
}

/* 64-bit registers: their offsets, so 32-bit halves can be merged. */
static bool llmdev_is_reg64(hwaddr addr)
{
	hwaddr ro;

	if (addr >= LLMDEV_RING_BASE(0) &&
	    addr < LLMDEV_RING_BASE(LLMDEV_NUM_RINGS)) {
		ro = addr & 0xff;
		return ro == LLMDEV_RING_DESC_BASE || ro == LLMDEV_RING_CMPL_BASE;
	}
	if (addr >= LLMDEV_REG_ERR_LOG &&
	    addr < LLMDEV_REG_ERR_LOG +
		   LLMDEV_ERR_LOG_ENTRIES * LLMDEV_ERR_LOG_STRIDE) {
		ro = (addr - LLMDEV_REG_ERR_LOG) % LLMDEV_ERR_LOG_STRIDE;
		return ro == LLMDEV_ERR_LOG_ADDR || ro == LLMDEV_ERR_LOG_TIME;
	}
	if (addr >= LLMDEV_REG_PERF_LIVE &&
	    addr < LLMDEV_REG_PERF_SNAP + 8 * LLMDEV_PERF_MAX)
		return !(addr & 7);
	if (addr >= LLMDEV_LINK_BASE(0) &&
	    addr < LLMDEV_LINK_BASE(LLMDEV_NUM_LINK_PORTS)) {
		ro = addr & 0xff;
		return ro == LLMDEV_LINK_PEER_SERIAL || ro == LLMDEV_LINK_TX_BYTES ||
		       ro == LLMDEV_LINK_RX_BYTES || ro == LLMDEV_LINK_TX_ERRORS ||
		       ro == LLMDEV_LINK_RX_ERRORS || ro == LLMDEV_LINK_DOWN_AFTER;
	}
	if ((addr >= LLMDEV_REG_ROUTE_STAGE &&
	     addr < LLMDEV_REG_ROUTE_STAGE +
		    LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE) ||
	    (addr >= LLMDEV_REG_ROUTE_ACTIVE &&
	     addr < LLMDEV_REG_ROUTE_ACTIVE +
		    LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE)) {
		ro = addr & (LLMDEV_ROUTE_ENTRY_SIZE - 1);
		return ro == LLMDEV_ROUTE_E_HBM_OFFSET || ro == LLMDEV_ROUTE_E_HBM_LENGTH;
	}
	switch (addr) {
	case LLMDEV_REG_COLL_TAG:
	case LLMDEV_REG_COLL_COUNT:
	case LLMDEV_REG_COLL_SRC:
	case LLMDEV_REG_COLL_DST:
	case LLMDEV_REG_COLL_DONE_TAG:
	case LLMDEV_REG_SERIAL:
	case LLMDEV_REG_HBM_SIZE:
	case LLMDEV_REG_TIMESTAMP:
	case LLMDEV_REG_SCRUB_ADDR:
	case LLMDEV_REG_SCRUB_LEN:
	case LLMDEV_REG_PERF_SNAP_TIME:
		return true;
	}
	return false;
}

static uint64_t llmdev_mmio_read(void *opaque, hwaddr addr, unsigned int size)
{
	LlmdevState *s = opaque;
	uint64_t val = 0;

	if (size == 8 && !(addr & 7) && llmdev_is_reg64(addr)) {
		val = llmdev_reg_read(s, addr);
	} else if (size == 4 && !(addr & 3)) {
		if (llmdev_is_reg64(addr))
			val = (uint32_t)llmdev_reg_read(s, addr);
		else if ((addr & 4) && llmdev_is_reg64(addr - 4))
			val = llmdev_reg_read(s, addr - 4) >> 32;
		else
			val = (uint32_t)llmdev_reg_read(s, addr);
	}
	trace_llmdev_mmio_read(PCI_DEVICE(s)->devfn, addr, size, val);
	return val;
}

static void llmdev_mmio_write(void *opaque, hwaddr addr, uint64_t val,
			      unsigned int size)
{
	LlmdevState *s = opaque;
	bool ok = false;

	trace_llmdev_mmio_write(PCI_DEVICE(s)->devfn, addr, size, val);
	if (size == 8 && !(addr & 7) && llmdev_is_reg64(addr)) {
		ok = llmdev_reg_write(s, addr, val);
	} else if (size == 4 && !(addr & 3)) {
		if (llmdev_is_reg64(addr)) {
			uint64_t cur = llmdev_reg_read(s, addr);

			ok = llmdev_reg_write(s, addr,
					      (cur & ~0xffffffffull) | val);
		} else if ((addr & 4) && llmdev_is_reg64(addr - 4)) {
			uint64_t cur = llmdev_reg_read(s, addr - 4);

			ok = llmdev_reg_write(s, addr - 4,
					      (cur & 0xffffffffull) | val << 32);
		} else {
			ok = llmdev_reg_write(s, addr, val);
		}
	}
	if (!ok) {
		qemu_log_mask(LOG_GUEST_ERROR,
			      "llmdev: bad register write 0x%" HWADDR_PRIx
			      " size %u\n", addr, size);
		llmdev_log_error(s, LLMDEV_ERR_REG_ACCESS, LLMDEV_SOURCE_NONE,
				 addr);
	}
}

static const MemoryRegionOps llmdev_mmio_ops = {
	.read = llmdev_mmio_read,
	.write = llmdev_mmio_write,
	.endianness = DEVICE_LITTLE_ENDIAN,
	.valid = { .min_access_size = 1, .max_access_size = 8 },
	.impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* ---- HBM aperture ------------------------------------------------------- */

static uint64_t llmdev_aperture_read(void *opaque, hwaddr addr,
				     unsigned int size)
{
	LlmdevState *s = opaque;

	if (addr + size > s->hbm_size)
		return 0;
	s->perf[LLMDEV_PERF_APERTURE_RD_BYTES] += size;
	return ldn_le_p(s->hbm + addr, size);
}

static void llmdev_aperture_write(void *opaque, hwaddr addr, uint64_t val,
				  unsigned int size)
{
	LlmdevState *s = opaque;

	if (addr + size > s->hbm_size)
		return;
	s->perf[LLMDEV_PERF_APERTURE_WR_BYTES] += size;
	stn_le_p(s->hbm + addr, size, val);
}

static const MemoryRegionOps llmdev_aperture_ops = {
	.read = llmdev_aperture_read,
	.write = llmdev_aperture_write,
	.endianness = DEVICE_LITTLE_ENDIAN,
	.valid = { .min_access_size = 1, .max_access_size = 8,
		   .unaligned = true },
	.impl = { .min_access_size = 1, .max_access_size = 8,
		  .unaligned = true },
};

/* ---- Device life cycle ---------------------------------------------------- */

/* The card's PCIe link: 16 GT/s x16, trained at that. */
static void llmdev_set_link(PCIDevice *pdev)
{
	uint8_t *exp = pdev->config + pdev->exp.exp_cap;

	pci_long_test_and_clear_mask(exp + PCI_EXP_LNKCAP,
				     PCI_EXP_LNKCAP_MLW | PCI_EXP_LNKCAP_SLS);
	pci_long_test_and_set_mask(exp + PCI_EXP_LNKCAP,
				   QEMU_PCI_EXP_LNKCAP_MLW(QEMU_PCI_EXP_LNK_X16) |
				   QEMU_PCI_EXP_LNKCAP_MLS(QEMU_PCI_EXP_LNK_16GT));
	pci_set_long(exp + PCI_EXP_LNKCAP2, PCI_EXP_LNKCAP2_SLS_2_5GB |
		     PCI_EXP_LNKCAP2_SLS_5_0GB | PCI_EXP_LNKCAP2_SLS_8_0GB |
		     PCI_EXP_LNKCAP2_SLS_16_0GB);
	pci_word_test_and_clear_mask(exp + PCI_EXP_LNKSTA,
				     PCI_EXP_LNKSTA_CLS | PCI_EXP_LNKSTA_NLW);
	pci_word_test_and_set_mask(exp + PCI_EXP_LNKSTA,
				   QEMU_PCI_EXP_LNKSTA_NLW(QEMU_PCI_EXP_LNK_X16) |
				   QEMU_PCI_EXP_LNKSTA_CLS(QEMU_PCI_EXP_LNK_16GT));
}

static void llmdev_realize(PCIDevice *pdev, Error **errp)
{
	LlmdevState *s = LLMDEV(pdev);
	unsigned int i;
	int ret;

	if (s->hbm_size < LLMDEV_HBM_MIN || s->hbm_size > LLMDEV_HBM_MAX ||
	    !is_power_of_2(s->hbm_size)) {
		error_setg(errp, "llmdev: hbm-size must be a power of two from "
			   "16M to 64G, not %" PRIu64, s->hbm_size);
		return;
	}
	if (s->link_gbps < 1 || s->link_gbps > 1600) {
		error_setg(errp, "llmdev: link-gbps must be 1..1600, not %u",
			   s->link_gbps);
		return;
	}
	if (!llmdev_parse_peers(s, errp) || !llmdev_check_cables(s, errp)) {
		llmdev_free_peers(s);
		return;
	}
	s->hbm = mmap(NULL, s->hbm_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->hbm == MAP_FAILED) {
		s->hbm = NULL;
		llmdev_free_peers(s);
		error_setg_errno(errp, errno, "llmdev: cannot allocate %" PRIu64
				 " bytes of HBM", s->hbm_size);
		return;
	}
	if (!s->serial)
		s->serial = 0x4c4d000000000000ull + llmdev_instances;
	llmdev_instances++;
	s->created_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

	pci_config_set_interrupt_pin(pdev->config, 1);
	pci_set_word(pdev->config + PCI_SUBSYSTEM_VENDOR_ID,
		     LLMDEV_PCI_SUBVENDOR_ID);
	pci_set_word(pdev->config + PCI_SUBSYSTEM_ID, LLMDEV_PCI_SUBDEVICE_ID);

	memory_region_init(&s->bar0, OBJECT(s), "llmdev-bar0",
			   LLMDEV_BAR_REGS_SIZE);
	memory_region_init_io(&s->regs, OBJECT(s), &llmdev_mmio_ops, s,
			      "llmdev-regs", LLMDEV_REG_RESERVED_END);
	memory_region_add_subregion(&s->bar0, 0, &s->regs);
	memory_region_init_io(&s->aperture, OBJECT(s), &llmdev_aperture_ops, s,
			      "llmdev-hbm", s->hbm_size);

	ret = pcie_endpoint_cap_init(pdev, LLMDEV_PCIE_CAP_OFFSET);
	if (ret < 0) {
		error_setg(errp, "llmdev: cannot add the PCIe capability");
		goto err_unmap;
	}
	pcie_cap_deverr_init(pdev);
	pcie_cap_flr_init(pdev);
	llmdev_set_link(pdev);
	ret = pcie_aer_init(pdev, PCI_ERR_VER, LLMDEV_AER_OFFSET,
			    PCI_ERR_SIZEOF, errp);
	if (ret < 0)
		goto err_pcie;
	ret = msix_init(pdev, LLMDEV_NUM_VECTORS, &s->bar0, LLMDEV_BAR_REGS,
			LLMDEV_MSIX_TABLE_OFFSET, &s->bar0, LLMDEV_BAR_REGS,
			LLMDEV_MSIX_PBA_OFFSET, LLMDEV_MSIX_CAP_OFFSET, errp);
	if (ret < 0)
		goto err_aer;
	for (i = 0; i < LLMDEV_NUM_VECTORS; i++)
		msix_vector_use(pdev, i);
	ret = msi_init(pdev, LLMDEV_MSI_CAP_OFFSET, 1, true, false, errp);
	if (ret < 0)
		goto err_msix;

	pci_register_bar(pdev, LLMDEV_BAR_REGS,
			 PCI_BASE_ADDRESS_SPACE_MEMORY |
			 PCI_BASE_ADDRESS_MEM_TYPE_64, &s->bar0);
	pci_register_bar(pdev, LLMDEV_BAR_HBM,
			 PCI_BASE_ADDRESS_SPACE_MEMORY |
			 PCI_BASE_ADDRESS_MEM_TYPE_64 |
			 PCI_BASE_ADDRESS_MEM_PREFETCH, &s->aperture);

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		LlmdevRing *r = &s->ring[i];

		r->s = s;
		r->idx = i;
		r->c2h = i >= LLMDEV_NUM_H2C_RINGS;
		r->bh = qemu_bh_new(llmdev_ring_run, r);
		r->bw_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, llmdev_ring_run, r);
		r->coal_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
					     llmdev_ring_coalesce_timeout, r);
	}
	s->scrub_bh = qemu_bh_new(llmdev_scrub_run, s);
	for (i = 0; i < LLMDEV_NUM_LINK_PORTS; i++) {
		LlmdevLink *l = &s->link[i];

		l->s = s;
		l->port = i;
		l->train_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
					      llmdev_link_trained, l);
	}
	s->coll.timeout_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
					     llmdev_coll_timeout, s);
	s->coll.tick_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
					  llmdev_coll_tick, s);
	llmdev_soft_reset(s);
	s->reset_count = 0;

	/* known to the other cards from now on; cables are worked out again */
	QTAILQ_INSERT_TAIL(&llmdev_cards, s, next);
	s->listed = true;
	llmdev_recable();
	return;

err_msix:
	msix_uninit(pdev, &s->bar0, &s->bar0);
err_aer:
	pcie_aer_exit(pdev);
err_pcie:
	pcie_cap_exit(pdev);
err_unmap:
	munmap(s->hbm, s->hbm_size);
	s->hbm = NULL;
	llmdev_free_peers(s);
}

static void llmdev_exit(PCIDevice *pdev)
{
	LlmdevState *s = LLMDEV(pdev);
	unsigned int i;

	if (s->listed) {
		/* the others of a running collective lose their ring */
		if (s->coll.sess)
			llmdev_sess_end(s->coll.sess, LLMDEV_COLL_ERR_LINK_DOWN, s);
		s->coll.waiting = false;
		/* the peers see our links go down, then the cables are redone */
		s->resetting = true;
		for (i = 0; i < LLMDEV_NUM_LINK_PORTS; i++) {
			s->link[i].ctrl = 0;
			llmdev_link_update(&s->link[i]);
		}
		QTAILQ_REMOVE(&llmdev_cards, s, next);
		s->listed = false;
		llmdev_recable();
	}
	for (i = 0; i < LLMDEV_NUM_LINK_PORTS; i++)
		timer_free(s->link[i].train_timer);
	timer_free(s->coll.timeout_timer);
	timer_free(s->coll.tick_timer);
	llmdev_free_peers(s);

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		LlmdevRing *r = &s->ring[i];

		llmdev_ring_abort(r);
		qemu_bh_delete(r->bh);
		timer_free(r->bw_timer);
		timer_free(r->coal_timer);
	}
	qemu_bh_delete(s->scrub_bh);
	msi_uninit(pdev);
	msix_uninit(pdev, &s->bar0, &s->bar0);
	pcie_aer_exit(pdev);
	pcie_cap_exit(pdev);
	munmap(s->hbm, s->hbm_size);
	s->hbm = NULL;
}

static void llmdev_reset(DeviceState *dev)
{
	LlmdevState *s = LLMDEV(dev);

	llmdev_soft_reset(s);
}

static void llmdev_write_config(PCIDevice *pdev, uint32_t addr, uint32_t val,
				int len)
{
	pci_default_write_config(pdev, addr, val, len);
	pcie_cap_flr_write_config(pdev, addr, val, len);
}

static Property llmdev_properties[] = {
	DEFINE_PROP_SIZE("hbm-size", LlmdevState, hbm_size, LLMDEV_HBM_DEFAULT),
	DEFINE_PROP_UINT64("serial", LlmdevState, serial, 0),
	DEFINE_PROP_UINT32("bandwidth-mbps", LlmdevState, bandwidth_mbps, 0),
	DEFINE_PROP_UINT32("link-gbps", LlmdevState, link_gbps, 100),
	DEFINE_PROP_STRING("peer0", LlmdevState, peer_spec[0]),
	DEFINE_PROP_STRING("peer1", LlmdevState, peer_spec[1]),
	DEFINE_PROP_STRING("peer2", LlmdevState, peer_spec[2]),
	DEFINE_PROP_STRING("peer3", LlmdevState, peer_spec[3]),
	DEFINE_PROP_END_OF_LIST(),
};

static const VMStateDescription llmdev_vmstate = {
	.name = TYPE_LLMDEV,
	.unmigratable = 1,
};

static void llmdev_class_init(ObjectClass *klass, void *data)
{
	DeviceClass *dc = DEVICE_CLASS(klass);
	PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

	k->realize = llmdev_realize;
	k->exit = llmdev_exit;
	k->config_write = llmdev_write_config;
	k->vendor_id = LLMDEV_PCI_VENDOR_ID;
	k->device_id = LLMDEV_PCI_DEVICE_ID;
	k->revision = LLMDEV_PCI_REVISION;
	k->class_id = LLMDEV_PCI_CLASS;
	dc->desc = "llmdev LLM inference card";
	dc->reset = llmdev_reset;
	dc->vmsd = &llmdev_vmstate;
	device_class_set_props(dc, llmdev_properties);
	object_class_property_set_description(klass, "hbm-size",
		"HBM size and aperture BAR size, power of two, 16M..64G");
	object_class_property_set_description(klass, "serial",
		"serial number register (0: per-card default)");
	object_class_property_set_description(klass, "bandwidth-mbps",
		"modelled DMA bandwidth in MB/s of virtual time (0: unlimited)");
	object_class_property_set_description(klass, "link-gbps",
		"line rate of each peer-link port in Gb/s, 1..1600");
	object_class_property_set_description(klass, "peer0",
		"cable from port 0 to ID.PORT (another llmdev's id and port)");
	object_class_property_set_description(klass, "peer1",
		"cable from port 1 to ID.PORT");
	object_class_property_set_description(klass, "peer2",
		"cable from port 2 to ID.PORT");
	object_class_property_set_description(klass, "peer3",
		"cable from port 3 to ID.PORT");
	set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo llmdev_types[] = {
	{
		.name = TYPE_LLMDEV,
		.parent = TYPE_PCI_DEVICE,
		.instance_size = sizeof(LlmdevState),
		.class_init = llmdev_class_init,
		.interfaces = (InterfaceInfo[]) {
			{ INTERFACE_PCIE_DEVICE },
			{ }
		},
	},
};

DEFINE_TYPES(llmdev_types)
