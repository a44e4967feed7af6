/*
 * QEMU model of the llmdev LLM-inference card: type, properties, BARs,
 * register dispatch, interrupts, errors, reset.
 *
 * The programming model is docs/hardware.md in the llmdev repository; the
 * register offsets come from driver/llmdev_regs.h, shared with the driver.
 * llmdev.h says how the model is split and how it locks.
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
 *                        over a link takes B * 8 / link-gbps ns at least
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
 * Threads: a worker per DMA ring, one for the scrub engine and one for the
 * collective engine of each card (created at realize, joined at exit). DMA
 * data, SG tables, descriptors and completions move between guest RAM and
 * HBM in the ring workers, through the card's PCI address space (so through
 * an IOMMU when there is one); the BQL is taken only to deliver interrupts
 * (a bottom half) and, with an IOMMU, to translate addresses. Every guest
 * address, length and index is checked; a bad one sets an error status,
 * logs an error and raises the error vector. Only guest RAM is ever
 * accessed: never MMIO, never outside the guest's range.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/main-loop.h"
#include "qemu/madvise.h"
#include "qemu/bitmap.h"
#include "qemu/range.h"
#include "qapi/error.h"
#include "hw/boards.h"
#include "hw/pci/pci.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_aer.h"
#include "hw/pci/pcie_regs.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "exec/memory.h"
#include "migration/vmstate.h"
#include "llmdev.h"
#include "trace.h"

#define LLMDEV_PCIE_CAP_OFFSET      0x80
#define LLMDEV_MSI_CAP_OFFSET       0x60
#define LLMDEV_MSIX_CAP_OFFSET      0x70
#define LLMDEV_AER_OFFSET           0x100

/* Sensor model: idle readings and the span that full activity adds. */
#define LLMDEV_TEMP_IDLE_MC         35000
#define LLMDEV_TEMP_SPAN_MC         45000
#define LLMDEV_TEMP_CRIT_MC         95000
#define LLMDEV_POWER_IDLE_MW        20000
#define LLMDEV_POWER_SPAN_MW        55000
#define LLMDEV_POWER_CAP_MW         75000
#define LLMDEV_SENSOR_TAU_NS        1000000000LL

LlmdevCardList llmdev_cards = QTAILQ_HEAD_INITIALIZER(llmdev_cards);

static unsigned int llmdev_instances;

uint64_t llmdev_now(LlmdevState *s)
{
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - s->created_ns;
}

const char *llmdev_id(LlmdevState *s)
{
    const char *id = DEVICE(s)->id;

    return id ? id : "(no id)";
}

bool llmdev_hbm_range_ok(LlmdevState *s, uint64_t addr, uint64_t len)
{
    return len <= s->hbm_size && addr <= s->hbm_size - len;
}

/*
 * [addr, addr + len) of HBM was just written: the blocks may hold non-zero
 * bytes now. Called after the data landed (llmdev_scrub clears a bit before
 * it zeroes the block).
 */
void llmdev_hbm_written(LlmdevState *s, uint64_t addr, uint64_t len)
{
    uint64_t first = addr / LLMDEV_HBM_BLOCK;
    uint64_t last = (addr + len - 1) / LLMDEV_HBM_BLOCK;

    /* a write within a block marked already (the usual case) stores nothing */
    if (len && (first != last || !test_bit(first, s->hbm_written))) {
        bitmap_set_atomic(s->hbm_written, first, last - first + 1);
    }
}

/* ---- Interrupts ---------------------------------------------------------- */

/*
 * Raise a source: set it in IRQ_STATUS and, unless it is masked, queue its
 * message. llmdev_irq_kick() sends what is queued.
 */
void llmdev_irq_raise_locked(LlmdevState *s, uint32_t source,
                             unsigned int vector)
{
    s->irq_status |= source;
    if (s->irq_mask & source) {
        return;
    }
    s->irq_queued[vector]++;
}

/* INTx follows (IRQ_STATUS & ~IRQ_MASK) when neither MSI nor MSI-X is on. */
static void llmdev_update_intx(LlmdevState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool level;

    if (msix_enabled(pdev) || msi_enabled(pdev)) {
        return;
    }
    qemu_mutex_lock(&s->lock);
    level = s->irq_status & ~s->irq_mask;
    qemu_mutex_unlock(&s->lock);
    if (level != s->intx_level) {
        s->intx_level = level;
        pci_set_irq(pdev, level);
    }
}

/* Send the queued messages (BQL). */
static void llmdev_irq_flush(LlmdevState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint32_t queued[LLMDEV_NUM_VECTORS];
    uint64_t sent = 0;
    bool any = false, level;
    unsigned int v, i;

    qemu_mutex_lock(&s->lock);
    memcpy(queued, s->irq_queued, sizeof(queued));
    memset(s->irq_queued, 0, sizeof(s->irq_queued));
    level = s->irq_status & ~s->irq_mask;
    qemu_mutex_unlock(&s->lock);

    for (v = 0; v < LLMDEV_NUM_VECTORS; v++) {
        for (i = 0; i < queued[v]; i++) {
            any = true;
            trace_llmdev_irq(pdev->devfn, v);
            if (msix_enabled(pdev)) {
                msix_notify(pdev, v);
                sent++;
            } else if (msi_enabled(pdev)) {
                msi_notify(pdev, 0);
                sent++;
            }
        }
    }
    if (any && !msix_enabled(pdev) && !msi_enabled(pdev) && level &&
        !s->intx_level) {
        s->intx_level = true;
        pci_set_irq(pdev, 1);
        sent++;
    }
    if (sent) {
        qemu_mutex_lock(&s->lock);
        s->perf[LLMDEV_PERF_IRQS] += sent;
        qemu_mutex_unlock(&s->lock);
    }
}

/*
 * An interrupt message is a memory write that the guest aims: at this
 * card's registers or another card's, it runs their handlers, which may
 * raise interrupts again, or end what the sender is in the middle of (a
 * collective's session). Messages are sent at once only when none is being
 * sent on this thread already; a nested one waits for the main loop (the
 * bottom half), which bounds the recursion.
 */
static __thread unsigned int llmdev_irq_sending;

static void llmdev_irq_send(LlmdevState *s)
{
    llmdev_irq_sending++;
    llmdev_irq_flush(s);
    llmdev_irq_sending--;
}

static void llmdev_irq_bh(void *opaque)
{
    llmdev_irq_send(opaque);
}

/*
 * Deliver what was raised: at once under the BQL (unless a message is
 * being sent on this thread), else from the main loop. Not with the lock
 * held.
 */
void llmdev_irq_kick(LlmdevState *s)
{
    if (qemu_mutex_iothread_locked() && !llmdev_irq_sending) {
        llmdev_irq_send(s);
    } else {
        qemu_bh_schedule(s->irq_bh);
    }
}

/*
 * Deliver what was raised from the main loop: for code that the guest
 * must not re-enter through the message (a collective ending, an event).
 */
void llmdev_irq_kick_later(LlmdevState *s)
{
    qemu_bh_schedule(s->irq_bh);
}

/* From a worker: have the main loop send what is queued, if anything. */
void llmdev_irq_defer_locked(LlmdevState *s)
{
    unsigned int v;

    for (v = 0; v < LLMDEV_NUM_VECTORS; v++) {
        if (s->irq_queued[v]) {
            qemu_bh_schedule(s->irq_bh);
            return;
        }
    }
}

/* The event source, with the reason in EVENT_CAUSE. */
void llmdev_raise_event_locked(LlmdevState *s, uint32_t cause)
{
    s->event_cause |= cause;
    llmdev_irq_raise_locked(s, LLMDEV_IRQ_EVENT, LLMDEV_VEC_EVENT);
}

void llmdev_raise_event(LlmdevState *s, uint32_t cause)
{
    qemu_mutex_lock(&s->lock);
    llmdev_raise_event_locked(s, cause);
    qemu_mutex_unlock(&s->lock);
    llmdev_irq_kick_later(s);
}

/* ---- Errors -------------------------------------------------------------- */

void llmdev_log_error_locked(LlmdevState *s, uint32_t code, uint32_t source,
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
    llmdev_irq_raise_locked(s, LLMDEV_IRQ_ERROR, LLMDEV_VEC_ERROR);
}

void llmdev_log_error(LlmdevState *s, uint32_t code, uint32_t source,
                      uint64_t addr)
{
    qemu_mutex_lock(&s->lock);
    llmdev_log_error_locked(s, code, source, addr);
    qemu_mutex_unlock(&s->lock);
    llmdev_irq_kick(s);
}

/* ---- Worker threads ------------------------------------------------------ */

void llmdev_worker_start(LlmdevState *s, LlmdevWorker *w, const char *what,
                         void *(*fn)(void *), void *opaque)
{
    g_autofree char *name = g_strdup_printf("llmdev-%s", what);

    qemu_cond_init(&w->wake);
    qemu_cond_init(&w->idle);
    w->busy = false;
    w->exit = false;
    w->gen = 0;
    qemu_thread_create(&w->thread, name, fn, opaque, QEMU_THREAD_JOINABLE);
    w->started = true;
}

/*
 * Make the worker drop what it is doing, and wait until it has: it looks at
 * @gen between chunks of work (at most LLMDEV_COPY_CHUNK bytes) and in its
 * waits, and needs nothing but the lock to stop, so this returns in bounded
 * time. Waits with the lock dropped.
 */
void llmdev_worker_quiesce_locked(LlmdevState *s, LlmdevWorker *w)
{
    /*
     * Until this returns the worker starts nothing new: with the lock
     * dropped it could otherwise take the next descriptor, under the new
     * @gen, and wait for the main loop, which needs the BQL we hold.
     */
    w->quiescing++;
    qatomic_set(&w->gen, w->gen + 1);
    qemu_cond_broadcast(&w->wake);
    while (w->busy) {
        qemu_cond_wait(&w->idle, &s->lock);
    }
    w->quiescing--;
    qemu_cond_broadcast(&w->wake);
}

void llmdev_worker_stop(LlmdevState *s, LlmdevWorker *w)
{
    if (!w->started) {
        return;
    }
    qemu_mutex_lock(&s->lock);
    w->exit = true;
    llmdev_worker_quiesce_locked(s, w);
    qemu_mutex_unlock(&s->lock);
    qemu_thread_join(&w->thread);
    qemu_cond_destroy(&w->wake);
    qemu_cond_destroy(&w->idle);
    w->started = false;
}

/* ---- Sensors ------------------------------------------------------------- */

static void llmdev_sensors_update_locked(LlmdevState *s)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    int64_t dt = now - s->sensor_time;
    uint64_t busy;

    llmdev_dma_busy_sync_locked(s);
    busy = s->perf[LLMDEV_PERF_DMA_BUSY_NS] - s->sensor_busy;
    double frac, alpha;

    if (dt <= 0) {
        return;
    }
    frac = MIN(1.0, (double)busy / dt);
    alpha = 1.0 - exp(-(double)dt / LLMDEV_SENSOR_TAU_NS);
    s->activity += alpha * (frac - s->activity);
    s->sensor_time = now;
    s->sensor_busy = s->perf[LLMDEV_PERF_DMA_BUSY_NS];
}

/* ---- Reset --------------------------------------------------------------- */

/*
 * Soft reset, FLR and system reset (spec 10). Complete when this returns:
 * the workers have stopped (no DMA after it), nothing they raised is still
 * to be delivered, a collective with this card fails on the others.
 */
static void llmdev_soft_reset(LlmdevState *s)
{
    qemu_mutex_lock(&s->lock);
    llmdev_dma_reset_locked(s);
    s->control = 0;
    s->irq_status = 0;
    s->irq_mask = 0xffffffff;
    memset(s->irq_queued, 0, sizeof(s->irq_queued));
    s->event_cause = 0;
    s->err_status = 0;
    s->err_count = 0;
    s->err_log_head = 0;
    qatomic_set(&s->fault_inject, 0);
    memset(s->err_log, 0, sizeof(s->err_log));
    memset(s->perf, 0, sizeof(s->perf));
    memset(s->perf_snap, 0, sizeof(s->perf_snap));
    s->perf_snap_time = 0;
    s->dma_active = 0;
    s->activity = 0;
    s->sensor_time = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    s->sensor_busy = 0;
    qemu_mutex_unlock(&s->lock);

    /* other members of a running collective fail; peers see our links go */
    s->resetting = true;
    llmdev_coll_reset(s);
    llmdev_links_reset(s);
    s->resetting = false;
    llmdev_route_reset(s);
    /* nothing raised for us in between counts: we were resetting */
    qemu_mutex_lock(&s->lock);
    s->irq_status = 0;
    s->event_cause = 0;
    memset(s->irq_queued, 0, sizeof(s->irq_queued));
    qemu_mutex_unlock(&s->lock);

    s->scratch = 0;
    s->reset_count++;
    llmdev_update_intx(s);
    trace_llmdev_reset(PCI_DEVICE(s)->devfn, s->reset_count);
}

/* ---- Register access ----------------------------------------------------- */

static bool llmdev_in(hwaddr addr, hwaddr base, hwaddr len)
{
    return addr >= base && addr < base + len;
}

#define LLMDEV_RINGS_LEN        (LLMDEV_RING_BASE(LLMDEV_NUM_RINGS) - \
                                 LLMDEV_RING_BASE(0))
#define LLMDEV_LINKS_LEN        (LLMDEV_LINK_BASE(LLMDEV_NUM_LINK_PORTS) - \
                                 LLMDEV_LINK_BASE(0))
#define LLMDEV_ERR_LOG_LEN      (LLMDEV_ERR_LOG_ENTRIES * \
                                 LLMDEV_ERR_LOG_STRIDE)
#define LLMDEV_PERF_LEN         (8 * LLMDEV_PERF_NUM_COUNTERS)
#define LLMDEV_ROUTE_LEN        (LLMDEV_ROUTE_ENTRIES * \
                                 LLMDEV_ROUTE_ENTRY_SIZE)
#define LLMDEV_BLOCK_OFFSET     0xff

/* 64-bit registers: their offsets, so 32-bit halves can be merged. */
static bool llmdev_is_reg64(hwaddr addr)
{
    hwaddr ro;

    if (llmdev_in(addr, LLMDEV_RING_BASE(0), LLMDEV_RINGS_LEN)) {
        ro = addr & LLMDEV_BLOCK_OFFSET;
        return ro == LLMDEV_RING_DESC_BASE || ro == LLMDEV_RING_CMPL_BASE;
    }
    if (llmdev_in(addr, LLMDEV_REG_ERR_LOG, LLMDEV_ERR_LOG_LEN)) {
        ro = (addr - LLMDEV_REG_ERR_LOG) % LLMDEV_ERR_LOG_STRIDE;
        return ro == LLMDEV_ERR_LOG_ADDR || ro == LLMDEV_ERR_LOG_TIME;
    }
    if (addr >= LLMDEV_REG_PERF_LIVE &&
        addr < LLMDEV_REG_PERF_SNAP + 8 * LLMDEV_PERF_MAX) {
        return !(addr & 7);
    }
    if (llmdev_in(addr, LLMDEV_LINK_BASE(0), LLMDEV_LINKS_LEN)) {
        ro = addr & LLMDEV_BLOCK_OFFSET;
        return ro == LLMDEV_LINK_PEER_SERIAL || ro == LLMDEV_LINK_TX_BYTES ||
               ro == LLMDEV_LINK_RX_BYTES || ro == LLMDEV_LINK_TX_ERRORS ||
               ro == LLMDEV_LINK_RX_ERRORS || ro == LLMDEV_LINK_DOWN_AFTER;
    }
    if (llmdev_in(addr, LLMDEV_REG_ROUTE_STAGE, LLMDEV_ROUTE_LEN) ||
        llmdev_in(addr, LLMDEV_REG_ROUTE_ACTIVE, LLMDEV_ROUTE_LEN)) {
        ro = addr & (LLMDEV_ROUTE_ENTRY_SIZE - 1);
        return ro == LLMDEV_ROUTE_E_HBM_OFFSET ||
               ro == LLMDEV_ROUTE_E_HBM_LENGTH;
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

static uint64_t llmdev_caps(void)
{
    return LLMDEV_NUM_H2C_RINGS |
           (LLMDEV_NUM_RINGS - LLMDEV_NUM_H2C_RINGS) << 4 |
           LLMDEV_NUM_LINK_PORTS << 8 | LLMDEV_CAPS_SCRUB |
           LLMDEV_CAPS_FAULT_INJECT | LLMDEV_CAPS_DESC_VEC;
}

/* Read a register (the whole of a 64-bit one). Called with the lock held. */
static uint64_t llmdev_reg_read_locked(LlmdevState *s, hwaddr addr)
{
    if (llmdev_in(addr, LLMDEV_RING_BASE(0), LLMDEV_RINGS_LEN)) {
        unsigned int n = (addr - LLMDEV_RING_BASE(0)) >> 8;

        return llmdev_ring_read_locked(&s->ring[n],
                                       addr & LLMDEV_BLOCK_OFFSET);
    }
    if (llmdev_in(addr, LLMDEV_REG_ERR_LOG, LLMDEV_ERR_LOG_LEN)) {
        hwaddr o = addr - LLMDEV_REG_ERR_LOG;
        uint8_t *e = &s->err_log[o / LLMDEV_ERR_LOG_STRIDE]
                                [o % LLMDEV_ERR_LOG_STRIDE];

        return llmdev_is_reg64(addr) ? ldq_le_p(e) : ldl_le_p(e);
    }
    if (llmdev_in(addr, LLMDEV_REG_PERF_LIVE, LLMDEV_PERF_LEN)) {
        llmdev_dma_busy_sync_locked(s);
        return s->perf[(addr - LLMDEV_REG_PERF_LIVE) / 8];
    }
    if (llmdev_in(addr, LLMDEV_REG_PERF_SNAP, LLMDEV_PERF_LEN)) {
        return s->perf_snap[(addr - LLMDEV_REG_PERF_SNAP) / 8];
    }
    if (llmdev_in(addr, LLMDEV_LINK_BASE(0), LLMDEV_LINKS_LEN)) {
        unsigned int p = (addr - LLMDEV_LINK_BASE(0)) >> 8;

        return llmdev_link_read(&s->link[p], addr & LLMDEV_BLOCK_OFFSET);
    }
    if (llmdev_in(addr, LLMDEV_REG_ROUTE_STAGE, LLMDEV_ROUTE_LEN) ||
        llmdev_in(addr, LLMDEV_REG_ROUTE_ACTIVE, LLMDEV_ROUTE_LEN)) {
        return llmdev_route_read(s, addr, llmdev_is_reg64(addr));
    }
    if (llmdev_in(addr, LLMDEV_REG_COLL_CTRL, LLMDEV_REG_COLL_DONE_TAG + 8 -
                  LLMDEV_REG_COLL_CTRL)) {
        return llmdev_coll_read(s, addr);
    }

    switch (addr) {
    case LLMDEV_REG_ID:
        return LLMDEV_ID_MAGIC;
    case LLMDEV_REG_VERSION:
        return LLMDEV_SPEC_MAJOR << 16 | LLMDEV_SPEC_MINOR;
    case LLMDEV_REG_CAPS:
        return llmdev_caps();
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
    case LLMDEV_REG_SCRUB_LEN:
    case LLMDEV_REG_SCRUB_PATTERN:
    case LLMDEV_REG_SCRUB_STATUS:
        return llmdev_scrub_read_locked(s, addr);
    case LLMDEV_REG_PERF_NUM:
        return LLMDEV_PERF_NUM_COUNTERS;
    case LLMDEV_REG_PERF_SNAP_TIME:
        return s->perf_snap_time;
    case LLMDEV_REG_TEMP_MC:
        llmdev_sensors_update_locked(s);
        return LLMDEV_TEMP_IDLE_MC +
               (uint32_t)(s->activity * LLMDEV_TEMP_SPAN_MC);
    case LLMDEV_REG_TEMP_CRIT_MC:
        return LLMDEV_TEMP_CRIT_MC;
    case LLMDEV_REG_POWER_MW:
        llmdev_sensors_update_locked(s);
        return LLMDEV_POWER_IDLE_MW +
               (uint32_t)(s->activity * LLMDEV_POWER_SPAN_MW);
    case LLMDEV_REG_POWER_CAP_MW:
        return LLMDEV_POWER_CAP_MW;
    case LLMDEV_REG_LINK_EVENT:
        return s->link_event;
    case LLMDEV_REG_LINK_GBPS:
        return s->link_gbps;
    case LLMDEV_REG_ROUTE_STAGE_NUM:
    case LLMDEV_REG_ROUTE_ACTIVE_NUM:
    case LLMDEV_REG_ROUTE_GEN:
    case LLMDEV_REG_ROUTE_STATUS:
        return llmdev_route_read(s, addr, false);
    }
    return 0;
}

static uint64_t llmdev_reg_read(LlmdevState *s, hwaddr addr)
{
    uint64_t val;

    qemu_mutex_lock(&s->lock);
    val = llmdev_reg_read_locked(s, addr);
    qemu_mutex_unlock(&s->lock);
    return val;
}

/* The registers of the global blocks that the lock protects. */
static bool llmdev_reg_write_locked(LlmdevState *s, hwaddr addr,
                                    uint64_t val)
{
    switch (addr) {
    case LLMDEV_REG_CONTROL:
        s->control = val & LLMDEV_CONTROL_ENABLE;
        llmdev_dma_kick_locked(s);
        return true;
    case LLMDEV_REG_IRQ_STATUS:
        s->irq_status &= ~val;
        return true;
    case LLMDEV_REG_IRQ_MASK:
        s->irq_mask = val;
        return true;
    case LLMDEV_REG_EVENT_CAUSE:
        s->event_cause &= ~val;
        return true;
    case LLMDEV_REG_ERR_STATUS:
        s->err_status &= ~val;
        return true;
    case LLMDEV_REG_FAULT_INJECT:
        if (val & LLMDEV_FAULT_RAISE_ERROR) {
            llmdev_log_error_locked(s, LLMDEV_ERR_INJECTED,
                                    LLMDEV_SOURCE_NONE, 0);
        }
        /* under the lock, but a ring worker glances at it without */
        qatomic_set(&s->fault_inject, val & LLMDEV_FAULT_VALID_MASK &
                    ~LLMDEV_FAULT_RAISE_ERROR);
        llmdev_dma_kick_locked(s);
        return true;
    case LLMDEV_REG_PERF_CTRL:
        if (val & LLMDEV_PERF_CTRL_SNAPSHOT) {
            llmdev_dma_busy_sync_locked(s);
            memcpy(s->perf_snap, s->perf, sizeof(s->perf));
            s->perf_snap_time = llmdev_now(s);
        }
        return true;
    }
    return false;
}

/* Returns false if the write was not allowed. */
static bool llmdev_reg_write(LlmdevState *s, hwaddr addr, uint64_t val)
{
    bool ok;

    if (llmdev_in(addr, LLMDEV_RING_BASE(0), LLMDEV_RINGS_LEN)) {
        unsigned int n = (addr - LLMDEV_RING_BASE(0)) >> 8;

        return llmdev_ring_write(&s->ring[n], addr & LLMDEV_BLOCK_OFFSET,
                                 val);
    }
    if (llmdev_in(addr, LLMDEV_LINK_BASE(0), LLMDEV_LINKS_LEN)) {
        unsigned int p = (addr - LLMDEV_LINK_BASE(0)) >> 8;

        return llmdev_link_write(&s->link[p], addr & LLMDEV_BLOCK_OFFSET,
                                 val);
    }
    if (llmdev_in(addr, LLMDEV_REG_COLL_CTRL, LLMDEV_REG_COLL_DONE_TAG + 8 -
                  LLMDEV_REG_COLL_CTRL)) {
        return llmdev_coll_write(s, addr, val);
    }
    if (llmdev_in(addr, LLMDEV_REG_ROUTE_STAGE, LLMDEV_ROUTE_LEN) ||
        addr == LLMDEV_REG_ROUTE_CTRL || addr == LLMDEV_REG_ROUTE_STAGE_NUM) {
        return llmdev_route_write(s, addr, val, llmdev_is_reg64(addr));
    }

    switch (addr) {
    case LLMDEV_REG_CONTROL:
        if (val & LLMDEV_CONTROL_RESET) {
            llmdev_soft_reset(s);
            return true;
        }
        break;
    case LLMDEV_REG_SCRATCH:
        s->scratch = val;
        return true;
    case LLMDEV_REG_LINK_EVENT:
        s->link_event &= ~val;
        return true;
    case LLMDEV_REG_SCRUB_ADDR:
    case LLMDEV_REG_SCRUB_LEN:
    case LLMDEV_REG_SCRUB_PATTERN:
    case LLMDEV_REG_SCRUB_CTRL:
        return llmdev_scrub_write(s, addr, val);
    }

    qemu_mutex_lock(&s->lock);
    ok = llmdev_reg_write_locked(s, addr, val);
    qemu_mutex_unlock(&s->lock);
    if (addr == LLMDEV_REG_IRQ_STATUS || addr == LLMDEV_REG_IRQ_MASK) {
        llmdev_update_intx(s);
    }
    llmdev_irq_kick(s);
    return ok;
}

static uint64_t llmdev_mmio_read(void *opaque, hwaddr addr, unsigned int size)
{
    LlmdevState *s = opaque;
    uint64_t val = 0;

    if (s->dead) {
        /* a card that did not come back from its reset (10.5) */
        val = size == 8 ? UINT64_MAX : UINT32_MAX;
    } else if (size == 8 && !(addr & 7) && llmdev_is_reg64(addr)) {
        val = llmdev_reg_read(s, addr);
    } else if (size == 4 && !(addr & 3)) {
        if ((addr & 4) && llmdev_is_reg64(addr - 4)) {
            val = llmdev_reg_read(s, addr - 4) >> 32;
        } else {
            val = (uint32_t)llmdev_reg_read(s, addr);
        }
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
    if (s->dead) {
        return;
    }
    if (size == 8 && !(addr & 7) && llmdev_is_reg64(addr)) {
        ok = llmdev_reg_write(s, addr, val);
    } else if (size == 4 && !(addr & 3)) {
        if (llmdev_is_reg64(addr)) {
            uint64_t cur = llmdev_reg_read(s, addr);

            ok = llmdev_reg_write(s, addr, (cur & ~0xffffffffull) | val);
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
        llmdev_log_error(s, LLMDEV_ERR_REG_ACCESS, LLMDEV_SOURCE_NONE, addr);
    }
}

static const MemoryRegionOps llmdev_mmio_ops = {
    .read = llmdev_mmio_read,
    .write = llmdev_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* ---- HBM aperture -------------------------------------------------------- */

static uint64_t llmdev_aperture_read(void *opaque, hwaddr addr,
                                     unsigned int size)
{
    LlmdevState *s = opaque;

    if (addr + size > s->hbm_size) {
        return 0;
    }
    qemu_mutex_lock(&s->lock);
    s->perf[LLMDEV_PERF_APERTURE_RD_BYTES] += size;
    qemu_mutex_unlock(&s->lock);
    return ldn_le_p(s->hbm + addr, size);
}

static void llmdev_aperture_write(void *opaque, hwaddr addr, uint64_t val,
                                  unsigned int size)
{
    LlmdevState *s = opaque;

    if (addr + size > s->hbm_size) {
        return;
    }
    stn_le_p(s->hbm + addr, size, val);
    llmdev_hbm_written(s, addr, size);
    qemu_mutex_lock(&s->lock);
    s->perf[LLMDEV_PERF_APERTURE_WR_BYTES] += size;
    qemu_mutex_unlock(&s->lock);
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

/* ---- Device life cycle --------------------------------------------------- */

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

/*
 * HBM: anonymous memory, not reserved (it reads as zeros and takes host
 * memory only where it is written), aligned for and advised to use
 * transparent huge pages: fewer page faults and TLB misses in DMA. Like
 * guest RAM, it stays out of a core dump of QEMU when the machine says
 * dump-guest-core=off.
 */
static bool llmdev_hbm_alloc(LlmdevState *s, Error **errp)
{
    size_t total = s->hbm_size + LLMDEV_HBM_ALIGN;
    uint8_t *p, *hbm;

    p = mmap(NULL, total, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        error_setg_errno(errp, errno, "llmdev: cannot allocate %" PRIu64
                         " bytes of HBM", s->hbm_size);
        return false;
    }
    hbm = (uint8_t *)ROUND_UP((uintptr_t)p, LLMDEV_HBM_ALIGN);
    if (hbm > p) {
        munmap(p, hbm - p);
    }
    if (p + total > hbm + s->hbm_size) {
        munmap(hbm + s->hbm_size, p + total - (hbm + s->hbm_size));
    }
    s->hbm = hbm;
    /* without huge pages where the host has none: not an error */
    qemu_madvise(s->hbm, s->hbm_size, QEMU_MADV_HUGEPAGE);
    if (!machine_dump_guest_core(current_machine)) {
        qemu_madvise(s->hbm, s->hbm_size, QEMU_MADV_DONTDUMP);
    }
    s->hbm_written = bitmap_new(s->hbm_size / LLMDEV_HBM_BLOCK);
    return true;
}

static void llmdev_hbm_free(LlmdevState *s)
{
    if (s->hbm) {
        munmap(s->hbm, s->hbm_size);
        s->hbm = NULL;
    }
    g_free(s->hbm_written);
    s->hbm_written = NULL;
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
        goto err_peers;
    }
    if (!llmdev_hbm_alloc(s, errp)) {
        goto err_peers;
    }
    if (!s->serial) {
        s->serial = 0x4c4d000000000000ull + llmdev_instances;
    }
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
        goto err_hbm;
    }
    pcie_cap_deverr_init(pdev);
    pcie_cap_flr_init(pdev);
    llmdev_set_link(pdev);
    s->lnkcap = pci_get_long(pdev->config + pdev->exp.exp_cap +
                             PCI_EXP_LNKCAP);
    ret = pcie_aer_init(pdev, PCI_ERR_VER, LLMDEV_AER_OFFSET,
                        PCI_ERR_SIZEOF, errp);
    if (ret < 0) {
        goto err_pcie;
    }
    ret = msix_init(pdev, LLMDEV_NUM_VECTORS, &s->bar0, LLMDEV_BAR_REGS,
                    LLMDEV_MSIX_TABLE_OFFSET, &s->bar0, LLMDEV_BAR_REGS,
                    LLMDEV_MSIX_PBA_OFFSET, LLMDEV_MSIX_CAP_OFFSET, errp);
    if (ret < 0) {
        goto err_aer;
    }
    for (i = 0; i < LLMDEV_NUM_VECTORS; i++) {
        msix_vector_use(pdev, i);
    }
    ret = msi_init(pdev, LLMDEV_MSI_CAP_OFFSET, 1, true, false, errp);
    if (ret < 0) {
        goto err_msix;
    }

    pci_register_bar(pdev, LLMDEV_BAR_REGS,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->bar0);
    pci_register_bar(pdev, LLMDEV_BAR_HBM,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH, &s->aperture);

    qemu_mutex_init(&s->lock);
    s->irq_bh = qemu_bh_new(llmdev_irq_bh, s);
    llmdev_dma_init(s);
    llmdev_links_init(s);
    llmdev_coll_init(s);
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
err_hbm:
    llmdev_hbm_free(s);
err_peers:
    llmdev_free_peers(s);
}

static void llmdev_exit(PCIDevice *pdev)
{
    LlmdevState *s = LLMDEV(pdev);

    if (s->listed) {
        /* the others of a running collective lose their ring */
        llmdev_coll_unplug(s);
        /* the peers see our links go down, then the cables are redone */
        s->resetting = true;
        llmdev_links_unplug(s);
        QTAILQ_REMOVE(&llmdev_cards, s, next);
        s->listed = false;
        llmdev_recable();
    }
    llmdev_coll_fini(s);
    llmdev_links_fini(s);
    llmdev_dma_fini(s);
    qemu_bh_delete(s->irq_bh);
    qemu_mutex_destroy(&s->lock);
    msi_uninit(pdev);
    msix_uninit(pdev, &s->bar0, &s->bar0);
    pcie_aer_exit(pdev);
    pcie_cap_exit(pdev);
    llmdev_hbm_free(s);
    llmdev_free_peers(s);
}

static void llmdev_reset(DeviceState *dev)
{
    LlmdevState *s = LLMDEV(dev);

    /* the PCI core deasserts INTx with the rest of config space */
    s->intx_level = false;
    llmdev_soft_reset(s);
    /* x-fail-reset: this reset is the one the card does not survive */
    s->dead = s->fail_reset;
}

static bool llmdev_get_fail_reset(Object *obj, Error **errp)
{
    return LLMDEV(obj)->fail_reset;
}

static void llmdev_set_fail_reset(Object *obj, bool value, Error **errp)
{
    LLMDEV(obj)->fail_reset = value;
}

/*
 * Link Capabilities is read-only, but QEMU 7.2's pcie_aer_inject_error
 * stores Device Status as 32 bits for an uncorrectable error, clearing
 * the register's low half (width, speed, ASPM) after it: what the card
 * was realized with is put back before any read that sees it.
 */
static uint32_t llmdev_read_config(PCIDevice *pdev, uint32_t addr, int len)
{
    uint32_t lnkcap = pdev->exp.exp_cap + PCI_EXP_LNKCAP;

    if (ranges_overlap(addr, len, lnkcap, 4)) {
        pci_set_long(pdev->config + lnkcap, LLMDEV(pdev)->lnkcap);
    }
    return pci_default_read_config(pdev, addr, len);
}

static void llmdev_write_config(PCIDevice *pdev, uint32_t addr, uint32_t val,
                                int len)
{
    pci_default_write_config(pdev, addr, val, len);
    pcie_cap_flr_write_config(pdev, addr, val, len);
    pcie_aer_write_config(pdev, addr, val, len);
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
    k->config_read = llmdev_read_config;
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
    /* settable at run time (qom-set), for tests of a card that dies */
    object_class_property_add_bool(klass, "x-fail-reset",
                                   llmdev_get_fail_reset,
                                   llmdev_set_fail_reset);
    object_class_property_set_description(klass, "x-fail-reset",
        "test: every device reset (FLR, bus reset) leaves the card dead, "
        "BAR 0 reading all ones, until a reset with this off");
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
