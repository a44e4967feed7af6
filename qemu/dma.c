/*
 * QEMU model of the llmdev card: the DMA rings and the scrub engine.
 *
 * Each ring has a worker thread that processes its descriptors one at a
 * time (spec 4.4): fetch the descriptor, check it and the SG or vector
 * table it points to (read once), map the host memory it names, each piece
 * with the HBM offset it goes to or comes from, and the completion
 * slot, move the data, write the completion, account and raise interrupts.
 * The data moves with no lock held; the bookkeeping and the completion
 * write happen under LlmdevState.lock, so a guest that sees a completion
 * sees the registers (HEAD, counters, error log, IRQ_STATUS) that go with
 * it. The interrupt message itself is sent from the main loop (it needs the
 * BQL); a guest polling the completion ring does not wait for it.
 *
 * A doorbell that finds the worker idle processes up to 1 MiB of whole
 * descriptors at HEAD itself, in the vCPU thread, before the register write
 * returns (llmdev_ring_inline_locked()): waking the worker costs more than
 * that copy; with more queued, the worker's wake-up overlaps it.
 *
 * Guest memory is reached through the card's PCI address space, as RAM
 * only: host-to-card data by pointer into RAM, translated and referenced
 * under RCU; card-to-host data and completions through dma_memory_map(),
 * whose unmap marks the pages dirty (and drops translated code). Anything
 * that is not RAM fails the check, and no MMIO access is ever made from a
 * worker (it could need the BQL). With an IOMMU in the path the fetch and
 * the mapping run in the main loop instead (llmdev_ring_call()): an IOMMU
 * fault raises an interrupt, which needs the BQL. Only the copy stays in
 * the worker.
 *
 * A reset, a ring reset, a ring disable and exit stop the worker with
 * llmdev_worker_quiesce_locked(): the descriptor in progress is abandoned
 * (no completion, HEAD unchanged) and no byte of it reaches guest memory
 * after the register write that asked for it has returned.
 *
 * Host-to-card data of a descriptor (or of a vector descriptor's entry) of
 * 64 KiB or more is stored into HBM with non-temporal stores on an x86-64
 * host (SSE2): HBM is the card's memory, not the host's cache, and a large
 * copy that does not first read every destination line into the cache
 * moves about 1.5 times the bytes per second. A store fence ends each
 * piece, before its completion can be written. Smaller ones are copied
 * with memcpy(), which is faster for them (LLMDEV_STREAM_MIN). Card-to-host
 * data goes through the cache, as a card's writes into host memory do on
 * hardware that places them in the last-level cache. The collective
 * engine's copies store into HBM with non-temporal stores too (coll.c).
 *
 * The scrub engine fills an HBM range from its own worker. Zeroing skips
 * the blocks that were never written since they were last zeroed (they are
 * zero already) and memsets the others: no page is handed back to the host,
 * so the next DMA does not fault on it again.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sched.h>
#include <sys/resource.h>
#ifdef HOST_X86_64
#include <emmintrin.h>
#endif
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/bitmap.h"
#include "hw/pci/pci.h"
#include "exec/memory.h"
#include "sysemu/dma.h"
#include "llmdev.h"
#include "trace.h"

/* ---- Guest memory -------------------------------------------------------- */

static AddressSpace *llmdev_as(LlmdevState *s)
{
    return pci_get_address_space(PCI_DEVICE(s));
}

/*
 * Copy len bytes of guest RAM at bus address addr to buf. Anything else
 * (MMIO, unassigned, bus mastering off, no IOMMU mapping) fails, without
 * touching it.
 */
static bool llmdev_dma_read(LlmdevState *s, uint64_t addr, void *buf,
                            uint64_t len)
{
    AddressSpace *as = llmdev_as(s);
    uint8_t *out = buf;

    if (addr + len < addr) {
        return false;
    }
    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr;

        mr = address_space_translate(as, addr, &xlat, &l, false,
                                     MEMTXATTRS_UNSPECIFIED);
        if (!l || !memory_access_is_direct(mr, false)) {
            return false;
        }
        memcpy(out, (uint8_t *)memory_region_get_ram_ptr(mr) + xlat, l);
        out += l;
        addr += l;
        len -= l;
    }
    return true;
}

/*
 * Map [addr, addr + len) of guest RAM for reading: pointers appended to
 * @pieces (released by llmdev_pieces_release(), also on failure). With
 * @ref, each holds a reference to its memory region; without, the caller
 * stays in an RCU read-side critical section until it is done with them,
 * which keeps guest RAM from going away just as well.
 */
static bool llmdev_map_read(LlmdevState *s, uint64_t addr, uint64_t len,
                            GArray *pieces, bool ref)
{
    AddressSpace *as = llmdev_as(s);

    if (addr + len < addr) {
        return false;
    }
    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        LlmdevPiece p = { 0 };
        MemoryRegion *mr;

        mr = address_space_translate(as, addr, &xlat, &l, false,
                                     MEMTXATTRS_UNSPECIFIED);
        if (!l || !memory_access_is_direct(mr, false)) {
            return false;
        }
        if (ref) {
            memory_region_ref(mr);
            p.mr = mr;
        }
        p.host = (uint8_t *)memory_region_get_ram_ptr(mr) + xlat;
        p.len = l;
        g_array_append_val(pieces, p);
        addr += l;
        len -= l;
    }
    return true;
}

/*
 * Map a run of guest memory for writing, with dma_memory_map(). Memory that
 * is not writable RAM maps to QEMU's bounce buffer: given back unwritten,
 * so nothing is ever written to it.
 */
static void *llmdev_map_one_write(AddressSpace *as, uint64_t addr,
                                  dma_addr_t *len)
{
    void *p = dma_memory_map(as, addr, len, DMA_DIRECTION_FROM_DEVICE,
                             MEMTXATTRS_UNSPECIFIED);
    ram_addr_t offset;

    if (p && (!*len || !memory_region_from_host(p, &offset))) {
        dma_memory_unmap(as, p, *len, DMA_DIRECTION_FROM_DEVICE, 0);
        p = NULL;
    }
    return p;
}

static bool llmdev_map_write(LlmdevState *s, uint64_t addr, uint64_t len,
                             GArray *pieces)
{
    AddressSpace *as = llmdev_as(s);

    if (addr + len < addr) {
        return false;
    }
    while (len) {
        dma_addr_t l = len;
        LlmdevPiece p = { 0 };

        p.host = llmdev_map_one_write(as, addr, &l);
        if (!p.host) {
            return false;
        }
        p.len = l;
        g_array_append_val(pieces, p);
        addr += l;
        len -= l;
    }
    return true;
}

/* Unmap: the written part of card-to-host pieces is marked dirty. */
static void llmdev_pieces_release(LlmdevState *s, GArray *pieces,
                                  bool is_write)
{
    AddressSpace *as = llmdev_as(s);
    guint i;

    for (i = 0; i < pieces->len; i++) {
        LlmdevPiece *p = &g_array_index(pieces, LlmdevPiece, i);

        if (is_write) {
            dma_memory_unmap(as, p->host, p->len, DMA_DIRECTION_FROM_DEVICE,
                             p->done);
        } else {
            memory_region_unref(p->mr);
        }
    }
    g_array_set_size(pieces, 0);
}

/* The completion slot: 16 bytes of writable guest RAM, or NULL. */
static uint8_t *llmdev_cmpl_map(LlmdevState *s, uint64_t addr)
{
    dma_addr_t len = LLMDEV_CMPL_SIZE;
    uint8_t *p = llmdev_map_one_write(llmdev_as(s), addr, &len);

    if (p && len < LLMDEV_CMPL_SIZE) {
        dma_memory_unmap(llmdev_as(s), p, len, DMA_DIRECTION_FROM_DEVICE, 0);
        p = NULL;
    }
    return p;
}

static void llmdev_cmpl_unmap(LlmdevState *s, uint8_t *p, uint64_t written)
{
    dma_memory_unmap(llmdev_as(s), p, LLMDEV_CMPL_SIZE,
                     DMA_DIRECTION_FROM_DEVICE, written);
}

/*
 * Write a completion: the word with the phase bit last, after a barrier, so
 * that a host that sees the new phase sees the whole entry.
 */
static void llmdev_cmpl_write(uint8_t *p, uint32_t cookie, uint32_t bytes,
                              uint16_t status, uint16_t flags, uint32_t index)
{
    stl_le_p(p, cookie);
    stl_le_p(p + 4, bytes);
    stl_le_p(p + 12, index);
    /* the entry before its phase: pairs with the host's read barrier */
    smp_wmb();
    qatomic_set((uint32_t *)(p + 8),
                cpu_to_le32(status | (uint32_t)flags << 16));
}

/* ---- DMA busy time ------------------------------------------------------- */

/*
 * DMA_BUSY_NS counts the time at least one ring is working on descriptors
 * (virtual ns), so bytes / busy time is the engine's copy rate however
 * many rings run at once. A ring counts from its first descriptor to the
 * last of a run (a worker that goes on with the next descriptor at once
 * stays counted): the clock is read when the engine starts and stops, and
 * when the counter is read (llmdev_dma_busy_sync_locked()), not for every
 * descriptor.
 */
static void llmdev_busy_begin_locked(LlmdevState *s)
{
    if (!s->dma_active++) {
        s->dma_busy_mark = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    }
}

/* DMA_BUSY_NS up to now, for a reader of it. */
void llmdev_dma_busy_sync_locked(LlmdevState *s)
{
    int64_t now;

    if (s->dma_active) {
        now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
        s->perf[LLMDEV_PERF_DMA_BUSY_NS] += now - s->dma_busy_mark;
        s->dma_busy_mark = now;
    }
}

static void llmdev_busy_end_locked(LlmdevState *s)
{
    if (s->dma_active == 1) {
        llmdev_dma_busy_sync_locked(s);
    }
    s->dma_active--;
}

/* The worker of @r counts in DMA_BUSY_NS (@on), or no longer does. */
static void llmdev_ring_busy_locked(LlmdevRing *r, bool on)
{
    if (r->busy_counted != on) {
        r->busy_counted = on;
        if (on) {
            llmdev_busy_begin_locked(r->s);
        } else {
            llmdev_busy_end_locked(r->s);
        }
    }
}

/* ---- Ring interrupts ----------------------------------------------------- */

static bool llmdev_ring_runnable_locked(LlmdevRing *r)
{
    LlmdevState *s = r->s;

    return (s->control & LLMDEV_CONTROL_ENABLE) &&
           (r->ctrl & LLMDEV_RING_CTRL_ENABLE) && !r->halted &&
           !(s->fault_inject & LLMDEV_FAULT_STALL_RING(r->idx)) &&
           r->head != r->tail;
}

static void llmdev_ring_kick_locked(LlmdevRing *r)
{
    if (llmdev_ring_runnable_locked(r)) {
        qemu_cond_signal(&r->w.wake);
    }
}

void llmdev_dma_kick_locked(LlmdevState *s)
{
    unsigned int i;

    for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
        llmdev_ring_kick_locked(&s->ring[i]);
    }
}

static void llmdev_ring_signal_locked(LlmdevRing *r)
{
    timer_del(r->coal_timer);
    r->irq_pending = 0;
    llmdev_irq_raise_locked(r->s, LLMDEV_IRQ_RING(r->idx),
                            LLMDEV_VEC_RING(r->idx));
}

static void llmdev_ring_coalesce_timeout(void *opaque)
{
    LlmdevRing *r = opaque;
    LlmdevState *s = r->s;

    qemu_mutex_lock(&s->lock);
    if (r->irq_pending) {
        llmdev_ring_signal_locked(r);
    }
    qemu_mutex_unlock(&s->lock);
    llmdev_irq_kick(s);
}

/* Account for one completion that wants an interrupt (4.8). */
static void llmdev_ring_irq_request_locked(LlmdevRing *r)
{
    uint32_t count = r->coalesce & 0xffff;
    uint32_t usecs = r->coalesce >> 16;

    r->irq_pending++;
    if (count <= 1 || r->irq_pending >= count) {
        llmdev_ring_signal_locked(r);
        return;
    }
    if (usecs && !timer_pending(r->coal_timer)) {
        timer_mod(r->coal_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                  (int64_t)usecs * SCALE_US);
    }
}

static void llmdev_ring_halt_locked(LlmdevRing *r, uint32_t code,
                                    uint64_t addr)
{
    r->halted = true;
    r->err_code = code;
    llmdev_log_error_locked(r->s, code,
                            r->idx << 16 | (r->head & (r->size - 1)), addr);
    llmdev_ring_signal_locked(r);
}

/* ---- Descriptor processing ----------------------------------------------- */

/*
 * Have fn(r) run for the worker, with the lock dropped: in the worker
 * itself, or with an IOMMU in the DMA path in the main loop, where an IOMMU
 * fault may raise its interrupt. False if the worker was told to drop the
 * descriptor meanwhile; whatever fn mapped is then the worker's to release.
 */
static bool llmdev_ring_call(LlmdevRing *r, uint32_t gen,
                             void (*fn)(LlmdevRing *r))
{
    LlmdevState *s = r->s;

    if (!r->iommu) {
        qemu_mutex_unlock(&s->lock);
        fn(r);
        qemu_mutex_lock(&s->lock);
        return !llmdev_worker_aborted(&r->w, gen);
    }
    r->call_fn = fn;
    r->call_gen = gen;
    r->call_done = false;
    qemu_bh_schedule(r->call_bh);
    /*
     * A quiesce holds the BQL, so the bottom half cannot run until it is
     * over: give up the descriptor (the bottom half, which runs under the
     * BQL too, has not started; it finds no function to call)
     */
    while (!r->call_done && !llmdev_worker_aborted(&r->w, gen) &&
           !r->w.quiescing) {
        qemu_cond_wait(&r->w.wake, &s->lock);
    }
    if (!r->call_done) {
        r->call_fn = NULL;
        return false;
    }
    return !llmdev_worker_aborted(&r->w, gen);
}

/*
 * The main loop's half of llmdev_ring_call(). An abort happens under the
 * BQL, so it cannot happen while fn runs here.
 */
static void llmdev_ring_call_bh(void *opaque)
{
    LlmdevRing *r = opaque;
    LlmdevState *s = r->s;
    void (*fn)(LlmdevRing *r);
    uint32_t gen;

    qemu_mutex_lock(&s->lock);
    fn = r->call_fn;
    gen = r->call_gen;
    r->call_fn = NULL;
    qemu_mutex_unlock(&s->lock);
    if (!fn || llmdev_worker_aborted(&r->w, gen)) {
        return;
    }
    fn(r);
    qemu_mutex_lock(&s->lock);
    r->call_done = true;
    qemu_cond_broadcast(&r->w.wake);
    qemu_mutex_unlock(&s->lock);
}

/* Check 1 (4.5): fetch the descriptor. */
static void llmdev_job_fetch(LlmdevRing *r)
{
    LlmdevJob *job = &r->job;

    job->fetched = llmdev_dma_read(r->s, job->daddr, &job->d,
                                   sizeof(job->d));
}

/*
 * A descriptor to the card of at least this many bytes is copied into HBM
 * with non-temporal stores (llmdev_copy_to_hbm()), a smaller one with
 * memcpy(): for it, the fence that ends a streamed copy and the
 * write-combining buffers it drains cost more than the cache fills they
 * save. Measured with 1000-descriptor registered batches, switching in
 * one VM, the card's busy time a descriptor: 4 KiB 0.43-0.60 us with
 * memcpy() against 0.64-0.67 us streamed, 16 KiB 1.25-1.55 against
 * 1.36-1.46 (and 1.74-1.85 against 2.03-2.19 in another VM); from 64 KiB
 * on, streaming was as fast or faster.
 */
#define LLMDEV_STREAM_MIN           (64 * KiB)

/*
 * Map @len bytes of host memory at @addr that go to or come from HBM at
 * @hbm: the pieces they take are told their HBM offsets, and whether they
 * are streamed (llmdev_copy_to_hbm()), which an extent of @stream_len
 * bytes or more is.
 */
static bool llmdev_job_map_host(LlmdevRing *r, uint64_t addr, uint64_t len,
                                uint64_t hbm, uint64_t stream_len)
{
    GArray *pieces = r->job.pieces;
    guint i = pieces->len;
    bool ok;

    if (r->c2h) {
        ok = llmdev_map_write(r->s, addr, len, pieces);
    } else {
        ok = llmdev_map_read(r->s, addr, len, pieces, !r->job.in_rcu);
    }
    for (; i < pieces->len; i++) {
        LlmdevPiece *p = &g_array_index(pieces, LlmdevPiece, i);

        p->hbm = hbm;
        p->stream = !r->c2h && stream_len >= LLMDEV_STREAM_MIN;
        hbm += p->len;
    }
    return ok;
}

/*
 * Checks 6-10 of a vector descriptor (4.2.1, 4.5), @len and @count from
 * the descriptor. The table is read once, into the ring's own buffer.
 */
static uint32_t llmdev_job_check_vec(LlmdevRing *r, uint64_t table,
                                     uint32_t len, uint32_t count,
                                     uint64_t *bad)
{
    LlmdevState *s = r->s;
    uint64_t total = 0;
    uint32_t i;

    if (!count || count > LLMDEV_DESC_MAX_SG) {
        return LLMDEV_ERR_DESC_FORMAT;
    }
    if (!llmdev_dma_read(s, table, r->vec,
                         (uint64_t)count * LLMDEV_VEC_SIZE)) {
        *bad = table;
        return LLMDEV_ERR_DESC_FETCH;
    }
    for (i = 0; i < count; i++) {
        const struct llmdev_hw_vec *v = &r->vec[i];
        uint64_t addr = le64_to_cpu(v->host_addr);
        uint64_t hbm = le64_to_cpu(v->hbm_addr);
        uint32_t el = le32_to_cpu(v->length);

        if (!el || v->reserved) {
            *bad = table + (uint64_t)i * LLMDEV_VEC_SIZE;
            return LLMDEV_ERR_DESC_FORMAT;
        }
        /* check 10 as soon as the sum passes length: nothing more mapped */
        if (el > len - total) {
            return LLMDEV_ERR_DESC_FORMAT;
        }
        if (!llmdev_hbm_range_ok(s, hbm, el)) {
            *bad = hbm;
            return LLMDEV_ERR_HBM_RANGE;
        }
        if (!llmdev_job_map_host(r, addr, el, hbm, el)) {
            *bad = addr;
            return LLMDEV_ERR_HOST_ADDR;
        }
        total += el;
    }
    return total == len ? LLMDEV_ERR_NONE : LLMDEV_ERR_DESC_FORMAT;
}

/*
 * Checks 2-10 (4.5), in their order, mapping the host memory on the way.
 * The SG table is read once, into the ring's own buffer.
 */
static uint32_t llmdev_job_check(LlmdevRing *r, uint64_t *bad)
{
    LlmdevState *s = r->s;
    const struct llmdev_hw_desc *d = &r->job.d;
    uint64_t host = le64_to_cpu(d->host_addr);
    uint64_t hbm = le64_to_cpu(d->hbm_addr);
    uint32_t len = le32_to_cpu(d->length);
    uint32_t flags = le32_to_cpu(d->flags);
    uint32_t count = le32_to_cpu(d->sg_count);
    uint64_t total = 0;
    bool inject;
    uint32_t i;

    /* a glance first: the lock is taken only when a fault is armed */
    inject = qatomic_read(&s->fault_inject) & LLMDEV_FAULT_FAIL_NEXT_DESC;
    if (inject) {
        qemu_mutex_lock(&s->lock);
        inject = s->fault_inject & LLMDEV_FAULT_FAIL_NEXT_DESC;
        qatomic_set(&s->fault_inject,
                    s->fault_inject & ~LLMDEV_FAULT_FAIL_NEXT_DESC);
        qemu_mutex_unlock(&s->lock);
    }
    if (inject) {
        return LLMDEV_ERR_INJECTED;
    }
    if (!len || (flags & ~LLMDEV_DESC_F_VALID_MASK)) {
        return LLMDEV_ERR_DESC_FORMAT;
    }
    if (flags & LLMDEV_DESC_F_VEC) {
        if ((flags & LLMDEV_DESC_F_SGL) || hbm) {
            return LLMDEV_ERR_DESC_FORMAT;
        }
        return llmdev_job_check_vec(r, host, len, count, bad);
    }
    if (!llmdev_hbm_range_ok(s, hbm, len)) {
        *bad = hbm;
        return LLMDEV_ERR_HBM_RANGE;
    }
    if (!(flags & LLMDEV_DESC_F_SGL)) {
        if (!llmdev_job_map_host(r, host, len, hbm, len)) {
            *bad = host;
            return LLMDEV_ERR_HOST_ADDR;
        }
        return LLMDEV_ERR_NONE;
    }

    if (!count || count > LLMDEV_DESC_MAX_SG) {
        return LLMDEV_ERR_DESC_FORMAT;
    }
    if (!llmdev_dma_read(s, host, r->sg, (uint64_t)count * LLMDEV_SG_SIZE)) {
        *bad = host;
        return LLMDEV_ERR_DESC_FETCH;
    }
    for (i = 0; i < count; i++) {
        uint64_t addr = le64_to_cpu(r->sg[i].addr);
        uint32_t sl = le32_to_cpu(r->sg[i].length);

        if (!sl || r->sg[i].reserved) {
            *bad = host + (uint64_t)i * LLMDEV_SG_SIZE;
            return LLMDEV_ERR_DESC_FORMAT;
        }
        /* check 10 as soon as the sum passes length: nothing more mapped */
        if (sl > len - total) {
            return LLMDEV_ERR_DESC_FORMAT;
        }
        if (!llmdev_job_map_host(r, addr, sl, hbm + total, len)) {
            *bad = addr;
            return LLMDEV_ERR_HOST_ADDR;
        }
        total += sl;
    }
    return total == len ? LLMDEV_ERR_NONE : LLMDEV_ERR_DESC_FORMAT;
}

/* Checks 2-10, and the completion slot for check 11 after the data. */
static void llmdev_job_map(LlmdevRing *r)
{
    LlmdevJob *job = &r->job;

    job->status = llmdev_job_check(r, &job->bad);
    job->cmpl = llmdev_cmpl_map(r->s, job->caddr);
}

static void llmdev_job_release(LlmdevRing *r)
{
    LlmdevJob *job = &r->job;

    llmdev_pieces_release(r->s, job->pieces, r->c2h);
    if (job->cmpl) {
        llmdev_cmpl_unmap(r->s, job->cmpl, 0);
        job->cmpl = NULL;
    }
}

/*
 * Copy @n bytes into HBM (from guest RAM, or from HBM: the collective
 * engine's copies): a memcpy() to a 16-byte boundary, then 64 bytes at a
 * time with non-temporal stores, then the tail; then a store fence, so
 * that the data is globally visible before anything written after it
 * (the completion).
 */
void llmdev_copy_to_hbm(uint8_t *dst, const uint8_t *src, uint64_t n)
{
#ifdef HOST_X86_64
    uint64_t head = -(uintptr_t)dst & 15;

    if (head > n) {
        head = n;
    }
    memcpy(dst, src, head);
    dst += head;
    src += head;
    n -= head;
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)src);
        __m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + 48));

        _mm_stream_si128((__m128i *)dst, a);
        _mm_stream_si128((__m128i *)(dst + 16), b);
        _mm_stream_si128((__m128i *)(dst + 32), c);
        _mm_stream_si128((__m128i *)(dst + 48), d);
    }
    memcpy(dst, src, n);
    _mm_sfence();
#else
    memcpy(dst, src, n);
#endif
}

/*
 * Move the data, with no lock held, looking for an abort between chunks.
 * Returns LLMDEV_ERR_NONE or LLMDEV_STATUS_ABORTED.
 */
static uint32_t llmdev_job_copy(LlmdevRing *r, uint32_t gen)
{
    LlmdevState *s = r->s;
    LlmdevJob *job = &r->job;
    uint32_t status = LLMDEV_ERR_NONE;
    guint i;

    for (i = 0; i < job->pieces->len && !status; i++) {
        LlmdevPiece *p = &g_array_index(job->pieces, LlmdevPiece, i);
        uint64_t off, n;

        for (off = 0; off < p->len; off += n) {
            uint8_t *dst = r->c2h ? p->host + off : s->hbm + p->hbm + off;
            const uint8_t *src = r->c2h ? s->hbm + p->hbm + off : p->host + off;

            n = MIN(LLMDEV_COPY_CHUNK, p->len - off);
            if (llmdev_worker_aborted(&r->w, gen)) {
                status = LLMDEV_STATUS_ABORTED;
                break;
            }
            if (p->stream) {
                llmdev_copy_to_hbm(dst, src, n);
            } else {
                memcpy(dst, src, n);
            }
            if (r->c2h) {
                p->done = off + n;
            } else {
                llmdev_hbm_written(s, p->hbm + off, n);
            }
        }
    }
    return status;
}

/* Write the completion and account for the descriptor (4.3, 4.5, 4.10). */
static void llmdev_ring_complete_locked(LlmdevRing *r)
{
    LlmdevState *s = r->s;
    LlmdevJob *job = &r->job;
    uint32_t len = le32_to_cpu(job->d.length);
    uint32_t flags = le32_to_cpu(job->d.flags);
    uint32_t status = job->status;

    if (!job->cmpl) {
        llmdev_ring_halt_locked(r, LLMDEV_ERR_CMPL_WRITE, job->caddr);
        return;
    }
    llmdev_cmpl_write(job->cmpl, le32_to_cpu(job->d.cookie),
                      status ? 0 : len, status, job->phase, job->index);
    llmdev_cmpl_unmap(s, job->cmpl, LLMDEV_CMPL_SIZE);
    job->cmpl = NULL;

    r->head++;
    r->completed++;
    s->perf[r->c2h ? LLMDEV_PERF_C2H_DESC : LLMDEV_PERF_H2C_DESC]++;
    if (status) {
        r->err_code = status;
        llmdev_log_error_locked(s, status,
                                r->idx << 16 | (job->index & (r->size - 1)),
                                job->bad);
        llmdev_ring_signal_locked(r);
    } else {
        s->perf[r->c2h ? LLMDEV_PERF_C2H_BYTES : LLMDEV_PERF_H2C_BYTES] +=
            len;
        if (flags & LLMDEV_DESC_F_IRQ) {
            llmdev_ring_irq_request_locked(r);
        }
    }
    /* idle: flush moderated interrupts */
    if (r->head == r->tail && r->irq_pending) {
        llmdev_ring_signal_locked(r);
    }
}

static void llmdev_ring_bw_expired(void *opaque)
{
    LlmdevRing *r = opaque;

    qemu_mutex_lock(&r->s->lock);
    r->bw_expired = true;
    qemu_cond_broadcast(&r->w.wake);
    qemu_mutex_unlock(&r->s->lock);
}

/* Bandwidth model (4.9): hold the descriptor for length / B virtual ns. */
static bool llmdev_ring_bw_wait_locked(LlmdevRing *r, uint32_t gen)
{
    LlmdevState *s = r->s;
    uint32_t len = le32_to_cpu(r->job.d.length);

    r->bw_expired = false;
    timer_mod(r->bw_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
              (int64_t)len * 1000 / s->bandwidth_mbps);
    while (!r->bw_expired && !llmdev_worker_aborted(&r->w, gen)) {
        qemu_cond_wait(&r->w.wake, &s->lock);
    }
    timer_del(r->bw_timer);
    return !llmdev_worker_aborted(&r->w, gen);
}

static void llmdev_job_trace(LlmdevRing *r)
{
    const struct llmdev_hw_desc *d = &r->job.d;

    trace_llmdev_desc(PCI_DEVICE(r->s)->devfn, r->idx, r->job.index,
                      le64_to_cpu(d->host_addr), le64_to_cpu(d->hbm_addr),
                      le32_to_cpu(d->length), le32_to_cpu(d->flags));
}

/*
 * After the checks and mapping: the copy, if they passed, then the host
 * memory released, its data pages marked dirty before the completion is
 * seen. Lock not held. Returns the descriptor's status.
 */
static uint32_t llmdev_job_move(LlmdevRing *r, uint32_t gen)
{
    uint32_t status = r->job.status;

    if (status == LLMDEV_ERR_NONE) {
        status = llmdev_job_copy(r, gen);
    }
    llmdev_pieces_release(r->s, r->job.pieces, r->c2h);
    return status;
}

/*
 * Fetch, check, map and copy the descriptor at HEAD in one go, with the
 * lock dropped, when nothing needs the main loop or the lock in between
 * (no IOMMU, no bandwidth model): one round trip on the device's lock a
 * descriptor where llmdev_ring_call() takes three, and guest RAM read
 * without taking and dropping a memory region reference per piece. A
 * registered batch of 1000 descriptors of 64 KiB to the card took 5.0-5.1
 * us a descriptor before, 4.5-4.7 after (three rounds each, alternated in
 * one VM).
 * Returns the data's status; job->fetched false, or a length over
 * @max_len, leave the descriptor unprocessed.
 */
static uint32_t llmdev_job_run(LlmdevRing *r, uint32_t gen, uint32_t max_len)
{
    LlmdevJob *job = &r->job;
    uint32_t status;

    RCU_READ_LOCK_GUARD();
    llmdev_job_fetch(r);
    if (!job->fetched || le32_to_cpu(job->d.length) > max_len) {
        return LLMDEV_ERR_NONE;
    }
    llmdev_job_trace(r);
    /* guest RAM read without references: see llmdev_map_read() */
    job->in_rcu = true;
    llmdev_job_map(r);
    status = llmdev_job_move(r, gen);
    job->in_rcu = false;
    return status;
}

/*
 * Process the descriptor at HEAD (4.4). Lock held; dropped meanwhile.
 * A descriptor of more than @max_len bytes is left where it is (false).
 */
static bool llmdev_ring_process_locked(LlmdevRing *r, uint32_t max_len)
{
    LlmdevState *s = r->s;
    LlmdevJob *job = &r->job;
    uint32_t gen = r->w.gen;
    uint32_t status = LLMDEV_ERR_NONE;
    bool done = true;

    job->index = r->head;
    job->daddr = r->desc_base +
                 (uint64_t)(r->head & (r->size - 1)) * LLMDEV_DESC_SIZE;
    job->caddr = r->cmpl_base +
                 (uint64_t)(r->completed & (r->size - 1)) * LLMDEV_CMPL_SIZE;
    job->phase = (r->completed / r->size) & 1 ? 0 : LLMDEV_CMPL_F_PHASE;
    job->status = LLMDEV_ERR_NONE;
    job->bad = 0;
    job->cmpl = NULL;
    job->fetched = false;
    r->w.busy = true;

    if (!r->iommu && !s->bandwidth_mbps) {
        qemu_mutex_unlock(&s->lock);
        status = llmdev_job_run(r, gen, max_len);
        qemu_mutex_lock(&s->lock);
        if (llmdev_worker_aborted(&r->w, gen)) {
            goto out;
        }
    } else {
        if (!llmdev_ring_call(r, gen, llmdev_job_fetch)) {
            goto out;
        }
        if (job->fetched && le32_to_cpu(job->d.length) <= max_len) {
            llmdev_job_trace(r);
            if (s->bandwidth_mbps && !llmdev_ring_bw_wait_locked(r, gen)) {
                goto out;
            }
            if (!llmdev_ring_call(r, gen, llmdev_job_map)) {
                goto out;
            }
            qemu_mutex_unlock(&s->lock);
            status = llmdev_job_move(r, gen);
            qemu_mutex_lock(&s->lock);
            if (llmdev_worker_aborted(&r->w, gen)) {
                goto out;
            }
        }
    }
    if (!job->fetched) {
        llmdev_ring_halt_locked(r, LLMDEV_ERR_DESC_FETCH, job->daddr);
        goto out;
    }
    if (le32_to_cpu(job->d.length) > max_len) {
        done = false;
        goto out;
    }
    if (status == LLMDEV_STATUS_ABORTED) {
        goto out;
    }
    job->status = status;
    llmdev_ring_complete_locked(r);

out:
    llmdev_job_release(r);
    r->w.busy = false;
    qemu_cond_broadcast(&r->w.idle);
    return done;
}

/*
 * A doorbell that finds the worker idle has the descriptors at HEAD
 * processed here, in the thread that rang it, up to LLMDEV_INLINE_BYTES:
 * waking the worker costs 50-150 us under TCG on a busy host, more than a
 * small copy. With more than one descriptor queued the worker is woken
 * first, so that its wake-up overlaps the copy here; once it is up, this
 * stops at the next descriptor (the worker waits awake for that, in
 * llmdev_ring_thread()) and leaves it the rest. Only without an
 * IOMMU or a bandwidth model (whose waits need the main loop), and only
 * with the BQL held: no quiesce can then begin meanwhile.
 */
static void llmdev_ring_inline_locked(LlmdevRing *r)
{
    uint32_t budget = LLMDEV_INLINE_BYTES;
    uint32_t before;

    if (r->iommu || r->s->bandwidth_mbps || !qemu_mutex_iothread_locked()) {
        return;
    }
    if (!r->w.busy && r->tail - r->head > 1) {
        qemu_cond_signal(&r->w.wake);
    }
    /* counted in DMA_BUSY_NS on its own (nothing resets meanwhile: BQL) */
    llmdev_busy_begin_locked(r->s);
    while (!r->w.busy && !r->w.quiescing && !qatomic_read(&r->waiting) &&
           llmdev_ring_runnable_locked(r)) {
        before = r->completed;
        if (!llmdev_ring_process_locked(r, budget)) {
            break;
        }
        if (r->completed == before) {
            break;      /* halted, or aborted: not ours to go on with */
        }
        budget -= MIN(budget, le32_to_cpu(r->job.d.length));
        if (!budget) {
            break;
        }
    }
    llmdev_busy_end_locked(r->s);
}

/*
 * A card's DMA engines do not share the host's CPUs with the software that
 * feeds them; the model's ring workers do. On a host with fewer cores than
 * runnable threads, a vCPU that builds the next descriptors, or polls for
 * the completion of these, takes CPU time from the copies it waits for.
 * So a ring worker asks for a larger share (LLMDEV_RING_NICE; on Linux a
 * thread has a nice value of its own) where the host lets QEMU raise it
 * (CAP_SYS_NICE or RLIMIT_NICE); elsewhere it runs as it is, only slower.
 * A worker runs only while descriptors are queued, so a vCPU it delays
 * waits at most as long as the ring's queue takes to copy. Measured in
 * docs/bench.md ("Ring workers at nice -5").
 */
static void llmdev_ring_nice(void)
{
#ifdef CONFIG_LINUX
    setpriority(PRIO_PROCESS, qemu_get_thread_id(), LLMDEV_RING_NICE);
#endif
}

static void *llmdev_ring_thread(void *opaque)
{
    LlmdevRing *r = opaque;
    LlmdevState *s = r->s;
    int64_t spin_end = 0;

    rcu_register_thread();
    llmdev_ring_nice();
    qemu_mutex_lock(&s->lock);
    while (!r->w.exit) {
        if (r->w.quiescing || r->w.busy || !llmdev_ring_runnable_locked(r)) {
            llmdev_ring_busy_locked(r, false);
        }
        if (r->w.busy && !r->w.quiescing) {
            /* a doorbell copies: wait for the rest awake, a while at most */
            if (!spin_end) {
                spin_end = get_clock() + LLMDEV_INLINE_SPIN_NS;
            }
            if (get_clock() < spin_end) {
                /* the doorbell hands over at its next descriptor */
                qatomic_set(&r->waiting, true);
                qemu_mutex_unlock(&s->lock);
                /* yielding: the doorbell's thread may share our CPU */
                while (qatomic_read(&r->w.busy) && get_clock() < spin_end) {
                    sched_yield();
                }
                qemu_mutex_lock(&s->lock);
                qatomic_set(&r->waiting, false);
                continue;
            }
        } else {
            spin_end = 0;
        }
        if (r->w.quiescing || r->w.busy || !llmdev_ring_runnable_locked(r)) {
            qemu_cond_wait(&r->w.wake, &s->lock);
            continue;
        }
        llmdev_ring_busy_locked(r, true);
        llmdev_ring_process_locked(r, UINT32_MAX);
        llmdev_irq_defer_locked(s);
    }
    llmdev_ring_busy_locked(r, false);
    qemu_mutex_unlock(&s->lock);
    rcu_unregister_thread();
    return NULL;
}

/* ---- Ring registers ------------------------------------------------------ */

/* Stop the worker and drop its descriptor and moderated interrupt. */
static void llmdev_ring_abort_locked(LlmdevRing *r)
{
    llmdev_worker_quiesce_locked(r->s, &r->w);
    timer_del(r->bw_timer);
    timer_del(r->coal_timer);
    r->irq_pending = 0;
}

static void llmdev_ring_reset_locked(LlmdevRing *r, bool keep_config)
{
    trace_llmdev_ring_reset(PCI_DEVICE(r->s)->devfn, r->idx);
    llmdev_ring_abort_locked(r);
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

uint64_t llmdev_ring_read_locked(LlmdevRing *r, hwaddr off)
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

static bool llmdev_ring_write_locked(LlmdevRing *r, hwaddr off, uint64_t val)
{
    LlmdevState *s = r->s;
    bool enabled = r->ctrl & LLMDEV_RING_CTRL_ENABLE;

    switch (off) {
    case LLMDEV_RING_DESC_BASE:
    case LLMDEV_RING_CMPL_BASE:
    case LLMDEV_RING_SIZE:
        if (enabled) {
            return false;
        }
        if (off == LLMDEV_RING_DESC_BASE) {
            r->desc_base = val;
        } else if (off == LLMDEV_RING_CMPL_BASE) {
            r->cmpl_base = val;
        } else {
            r->size = val;
        }
        return true;
    case LLMDEV_RING_CTRL:
        if (val & LLMDEV_RING_CTRL_RESET) {
            llmdev_ring_reset_locked(r, true);
            return true;
        }
        if ((val & LLMDEV_RING_CTRL_ENABLE) && !enabled &&
            !llmdev_ring_config_ok(r)) {
            llmdev_log_error_locked(s, LLMDEV_ERR_RING_CONFIG,
                                    r->idx << 16 | 0xffff, r->desc_base);
            return true;
        }
        if (!(val & LLMDEV_RING_CTRL_ENABLE) && enabled) {
            /* the descriptor in progress is not consumed: it runs again */
            llmdev_ring_abort_locked(r);
        }
        if ((val & LLMDEV_RING_CTRL_ENABLE) && !enabled) {
            /*
             * Whether an IOMMU is in the way is known once the machine is
             * built (an IOMMU created after the card still translates for
             * it); asking needs the BQL, which a ring write holds.
             */
            r->iommu = pci_device_iommu_address_space(PCI_DEVICE(s)) !=
                       &address_space_memory;
        }
        r->ctrl = val & LLMDEV_RING_CTRL_ENABLE;
        llmdev_ring_kick_locked(r);
        return true;
    case LLMDEV_RING_TAIL:
        trace_llmdev_doorbell(PCI_DEVICE(s)->devfn, r->idx, (uint32_t)val,
                              r->head);
        if (!enabled || (uint32_t)((uint32_t)val - r->head) > r->size) {
            llmdev_log_error_locked(s, LLMDEV_ERR_DOORBELL,
                                    r->idx << 16 | 0xffff, val);
            return true;
        }
        r->tail = val;
        s->perf[LLMDEV_PERF_DOORBELLS]++;
        llmdev_ring_inline_locked(r);
        llmdev_ring_kick_locked(r);
        return true;
    case LLMDEV_RING_IRQ_COALESCE:
        r->coalesce = val;
        return true;
    }
    return false;
}

bool llmdev_ring_write(LlmdevRing *r, hwaddr off, uint64_t val)
{
    LlmdevState *s = r->s;
    bool ok;

    qemu_mutex_lock(&s->lock);
    ok = llmdev_ring_write_locked(r, off, val);
    qemu_mutex_unlock(&s->lock);
    llmdev_irq_kick(s);
    return ok;
}

/* ---- Scrub engine -------------------------------------------------------- */

/*
 * Fill [addr, addr + len) of HBM, which starts and ends on a 4 KiB boundary.
 * A zero fill skips the blocks that hold no non-zero byte.
 */
static void llmdev_scrub_fill(LlmdevState *s, uint64_t addr, uint64_t len,
                              uint32_t pattern)
{
    uint64_t end = addr + len, next, i, word;

    if (!pattern) {
        for (; addr < end; addr = next) {
            uint64_t block = addr / LLMDEV_HBM_BLOCK;

            next = MIN((block + 1) * LLMDEV_HBM_BLOCK, end);
            if (addr == block * LLMDEV_HBM_BLOCK &&
                next == (block + 1) * LLMDEV_HBM_BLOCK) {
                /* the whole block: clear its bit first, then zero it */
                if (bitmap_test_and_clear_atomic(s->hbm_written, block, 1)) {
                    memset(s->hbm + addr, 0, next - addr);
                }
            } else if (test_bit(block, s->hbm_written)) {
                memset(s->hbm + addr, 0, next - addr);
            }
        }
        return;
    }
    word = (uint64_t)pattern << 32 | pattern;
    for (i = addr; i < end; i += 8) {
        stq_le_p(s->hbm + i, word);
    }
    llmdev_hbm_written(s, addr, len);
}

static void *llmdev_scrub_thread(void *opaque)
{
    LlmdevState *s = opaque;
    LlmdevScrub *sc = &s->scrub;

    qemu_mutex_lock(&s->lock);
    while (!sc->w.exit) {
        uint32_t gen = sc->w.gen, pattern = sc->cur_pattern;
        uint64_t addr = sc->cur_addr + sc->done, n;

        /*
         * A reset waits for the chunk in progress only (2.6): while it
         * quiesces us, no next chunk, or the whole fill would run first.
         */
        if (sc->w.quiescing || !(sc->status & LLMDEV_SCRUB_STATUS_BUSY)) {
            qemu_cond_wait(&sc->w.wake, &s->lock);
            continue;
        }
        /* up to the next block boundary, so whole blocks are seen whole */
        n = MIN(sc->cur_len - sc->done,
                LLMDEV_SCRUB_CHUNK - addr % LLMDEV_SCRUB_CHUNK);
        sc->w.busy = true;
        qemu_mutex_unlock(&s->lock);
        llmdev_scrub_fill(s, addr, n, pattern);
        qemu_mutex_lock(&s->lock);
        sc->w.busy = false;
        qemu_cond_broadcast(&sc->w.idle);
        if (llmdev_worker_aborted(&sc->w, gen)) {
            continue;
        }
        sc->done += n;
        s->perf[LLMDEV_PERF_SCRUB_BYTES] += n;
        if (sc->done == sc->cur_len) {
            sc->status = LLMDEV_SCRUB_STATUS_DONE;
            trace_llmdev_scrub_done(PCI_DEVICE(s)->devfn, sc->cur_addr,
                                    sc->cur_len);
            llmdev_raise_event_locked(s, LLMDEV_EVENT_SCRUB);
            llmdev_irq_defer_locked(s);
        }
    }
    qemu_mutex_unlock(&s->lock);
    return NULL;
}

static void llmdev_scrub_start_locked(LlmdevState *s)
{
    LlmdevScrub *sc = &s->scrub;

    if (sc->status & LLMDEV_SCRUB_STATUS_BUSY) {
        return;
    }
    if (!sc->len || (sc->addr | sc->len) % LLMDEV_SCRUB_ALIGN ||
        !llmdev_hbm_range_ok(s, sc->addr, sc->len)) {
        sc->status = LLMDEV_SCRUB_STATUS_ERROR;
        llmdev_log_error_locked(s, LLMDEV_ERR_SCRUB, LLMDEV_SOURCE_NONE,
                                sc->addr);
        return;
    }
    trace_llmdev_scrub_start(PCI_DEVICE(s)->devfn, sc->addr, sc->len,
                             sc->pattern);
    sc->status = LLMDEV_SCRUB_STATUS_BUSY;
    sc->cur_addr = sc->addr;
    sc->cur_len = sc->len;
    sc->cur_pattern = sc->pattern;
    sc->done = 0;
    qemu_cond_signal(&sc->w.wake);
}

uint64_t llmdev_scrub_read_locked(LlmdevState *s, hwaddr addr)
{
    switch (addr) {
    case LLMDEV_REG_SCRUB_ADDR:
        return s->scrub.addr;
    case LLMDEV_REG_SCRUB_LEN:
        return s->scrub.len;
    case LLMDEV_REG_SCRUB_PATTERN:
        return s->scrub.pattern;
    case LLMDEV_REG_SCRUB_STATUS:
        return s->scrub.status;
    }
    return 0;
}

bool llmdev_scrub_write(LlmdevState *s, hwaddr addr, uint64_t val)
{
    LlmdevScrub *sc = &s->scrub;
    bool ok = true;

    qemu_mutex_lock(&s->lock);
    if (addr == LLMDEV_REG_SCRUB_CTRL) {
        if (val & LLMDEV_SCRUB_CTRL_START) {
            llmdev_scrub_start_locked(s);
        }
    } else if (sc->status & LLMDEV_SCRUB_STATUS_BUSY) {
        ok = false;
    } else if (addr == LLMDEV_REG_SCRUB_ADDR) {
        sc->addr = val;
    } else if (addr == LLMDEV_REG_SCRUB_LEN) {
        sc->len = val;
    } else {
        sc->pattern = val;
    }
    qemu_mutex_unlock(&s->lock);
    llmdev_irq_kick(s);
    return ok;
}

/* ---- Life cycle ---------------------------------------------------------- */

/* Reset (spec 10.2): every ring aborted and cleared, the scrub aborted. */
void llmdev_dma_reset_locked(LlmdevState *s)
{
    LlmdevScrub *sc = &s->scrub;
    unsigned int i;

    for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
        llmdev_ring_reset_locked(&s->ring[i], false);
        /* DMA_BUSY_NS starts again from nothing (the caller's) */
        s->ring[i].busy_counted = false;
    }
    llmdev_worker_quiesce_locked(s, &sc->w);
    sc->addr = sc->len = sc->done = 0;
    sc->cur_addr = sc->cur_len = 0;
    sc->cur_pattern = 0;
    sc->pattern = 0;
    sc->status = 0;
}

void llmdev_dma_init(LlmdevState *s)
{
    unsigned int i;

    for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
        LlmdevRing *r = &s->ring[i];
        g_autofree char *name = g_strdup_printf("ring%u", i);

        r->s = s;
        r->idx = i;
        r->c2h = i >= LLMDEV_NUM_H2C_RINGS;
        r->coal_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
                                     llmdev_ring_coalesce_timeout, r);
        r->bw_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
                                   llmdev_ring_bw_expired, r);
        r->call_bh = qemu_bh_new(llmdev_ring_call_bh, r);
        r->job.pieces = g_array_new(false, false, sizeof(LlmdevPiece));
        r->sg = g_new(struct llmdev_hw_sg, LLMDEV_DESC_MAX_SG);
        r->vec = g_new(struct llmdev_hw_vec, LLMDEV_DESC_MAX_SG);
        llmdev_worker_start(s, &r->w, name, llmdev_ring_thread, r);
    }
    llmdev_worker_start(s, &s->scrub.w, "scrub", llmdev_scrub_thread, s);
}

void llmdev_dma_fini(LlmdevState *s)
{
    unsigned int i;

    for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
        LlmdevRing *r = &s->ring[i];

        llmdev_worker_stop(s, &r->w);
        timer_free(r->coal_timer);
        timer_free(r->bw_timer);
        qemu_bh_delete(r->call_bh);
        g_array_free(r->job.pieces, true);
        g_free(r->sg);
        g_free(r->vec);
    }
    llmdev_worker_stop(s, &s->scrub.w);
}
