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
	llmdev_raise(s, LLMDEV_IRQ_EVENT, LLMDEV_VEC_EVENT);
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

/* ---- Reset -------------------------------------------------------------- */

static void llmdev_soft_reset(LlmdevState *s)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++)
		llmdev_ring_reset(&s->ring[i], false);
	qemu_bh_cancel(s->scrub_bh);

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
	}
	return 0;
}

static bool llmdev_reg_write(LlmdevState *s, hwaddr addr, uint64_t val)
{
	if (addr >= LLMDEV_RING_BASE(0) &&
	    addr < LLMDEV_RING_BASE(LLMDEV_NUM_RINGS))
		return llmdev_ring_write(&s->ring[(addr - LLMDEV_RING_BASE(0)) >> 8],
					 addr & 0xff, val);

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
	switch (addr) {
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
	s->hbm = mmap(NULL, s->hbm_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->hbm == MAP_FAILED) {
		s->hbm = NULL;
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
	llmdev_soft_reset(s);
	s->reset_count = 0;
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
}

static void llmdev_exit(PCIDevice *pdev)
{
	LlmdevState *s = LLMDEV(pdev);
	unsigned int i;

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
