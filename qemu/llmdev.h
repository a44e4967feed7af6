/*
 * QEMU model of the llmdev LLM-inference card: what the parts share.
 *
 * core.c     type, properties, BARs, register dispatch, interrupts, errors,
 *            reset, realize/exit
 * dma.c      the DMA rings and the scrub engine, each with a worker thread
 * links.c    peer links and cabling
 * coll.c     the collective engine: sessions, ticks, a worker per card
 * reduce.c   the collective arithmetic
 * route.c    the routing table
 *
 * Locking. Three kinds of state:
 *  - the register file that worker threads touch (interrupt and error
 *    state, perf counters, CONTROL, FAULT_INJECT, the rings, the scrub
 *    engine, the collective work queue) is protected by LlmdevState.lock;
 *  - the rest (links, cabling, the collective engine's registers and
 *    sessions, the routing table) is protected by the BQL;
 *  - HBM contents are not locked: the spec leaves concurrent DMA, scrub,
 *    collectives and aperture accesses to one range undefined.
 * Lock order: the BQL, then LlmdevState.lock. Several cards' locks are held
 * at once only under the BQL. Worker threads never take the BQL, and hold
 * LlmdevState.lock only for bookkeeping, never while they move data. So a
 * reset, which holds the BQL and waits for the workers, cannot deadlock.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_LLMDEV_H
#define HW_MISC_LLMDEV_H

#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qemu/queue.h"
#include "qemu/units.h"
#include "hw/pci/pci.h"
#include "qom/object.h"

#include "llmdev_regs.h"

#define TYPE_LLMDEV "llmdev"
OBJECT_DECLARE_SIMPLE_TYPE(LlmdevState, LLMDEV)

#define LLMDEV_HBM_MIN              (16 * MiB)
#define LLMDEV_HBM_MAX              (64 * GiB)
#define LLMDEV_HBM_DEFAULT          (256 * MiB)
/* HBM is mapped with this alignment, for transparent huge pages */
#define LLMDEV_HBM_ALIGN            (2 * MiB)
/* granule of the map of HBM blocks that may hold non-zero bytes */
#define LLMDEV_HBM_BLOCK            (2 * MiB)

/* data moved between two looks at an abort request */
#define LLMDEV_COPY_CHUNK           (1 * MiB)
/* a doorbell processes this much at HEAD itself, when the worker is idle */
#define LLMDEV_INLINE_BYTES         (1 * MiB)
/*
 * ... while the worker, woken for the rest, waits this long at most, awake;
 * the doorbell stops at the next descriptor once it is there
 */
#define LLMDEV_INLINE_SPIN_NS       (1000 * 1000)
/* a ring worker's nice value, where the host allows it (dma.c) */
#define LLMDEV_RING_NICE            (-5)
#define LLMDEV_SCRUB_CHUNK          LLMDEV_HBM_BLOCK
/*
 * A collective engine that is done with its part of a tick waits this long
 * at most for the next tick's work, awake, when the tick's link time is no
 * longer than that (the engines, not the links, set the pace)
 */
#define LLMDEV_ENGINE_SPIN_NS       (200 * 1000)

#define LLMDEV_SOURCE_NONE          0xffffffffu

/* internal descriptor status: abandoned by a reset, no completion */
#define LLMDEV_STATUS_ABORTED       0xffffu

typedef struct LlmdevState LlmdevState;
typedef struct LlmdevSession LlmdevSession;

/*
 * A worker thread. It sleeps on @wake with LlmdevState.lock held, sets
 * @busy while it works on something with the lock dropped, and gives up
 * that work as soon as it sees @gen change (llmdev_worker_quiesce_locked()).
 */
typedef struct LlmdevWorker {
    QemuThread thread;
    QemuCond wake;          /* work, a timer, an abort or exit */
    QemuCond idle;          /* @busy went false */
    bool busy;
    bool exit;
    uint32_t gen;           /* written under the lock, read without it */
    unsigned int quiescing; /* a BQL holder waits for it to stop */
    bool started;
} LlmdevWorker;

/* One run of guest memory, mapped for the duration of a descriptor. */
typedef struct LlmdevPiece {
    uint8_t *host;
    uint64_t len;
    uint64_t done;          /* bytes written (card-to-host pieces) */
    uint64_t hbm;           /* the HBM offset it is copied to or from */
    bool stream;            /* to the card with non-temporal stores */
    /* host-to-card pieces: the reference held, or NULL (mapped in RCU) */
    MemoryRegion *mr;
} LlmdevPiece;

/* The descriptor a ring worker is processing. */
typedef struct LlmdevJob {
    uint32_t index;         /* HEAD when it was fetched */
    uint64_t daddr;
    uint64_t caddr;
    uint16_t phase;
    bool fetched;
    bool in_rcu;            /* map host-to-card pieces with no reference */
    struct llmdev_hw_desc d;
    uint32_t status;        /* LLMDEV_ERR_* of the checks (4.5) */
    uint64_t bad;           /* the address to log with it */
    GArray *pieces;         /* of LlmdevPiece */
    uint8_t *cmpl;          /* the completion slot, mapped, or NULL */
} LlmdevJob;

typedef struct LlmdevRing {
    LlmdevState *s;
    unsigned int idx;
    bool c2h;

    /* registers and moderation state, under LlmdevState.lock */
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
    uint32_t irq_pending;   /* F_IRQ completions not yet signalled */
    QEMUTimer *coal_timer;

    /* the worker, under LlmdevState.lock */
    LlmdevWorker w;
    bool waiting;           /* the worker waits awake for a doorbell's copy */
    bool busy_counted;      /* the worker counts in LlmdevState.dma_active */
    bool iommu;             /* an IOMMU translates the card's DMA */
    QEMUTimer *bw_timer;    /* bandwidth model: ends the modelled time */
    bool bw_expired;
    /*
     * With an IOMMU in the DMA path the worker has the main loop run
     * @call_fn (a translation can raise a fault interrupt, which needs the
     * BQL): llmdev_ring_call().
     */
    QEMUBH *call_bh;
    void (*call_fn)(struct LlmdevRing *r);
    uint32_t call_gen;
    bool call_done;

    /* the worker's own */
    LlmdevJob job;
    struct llmdev_hw_sg *sg;    /* LLMDEV_DESC_MAX_SG entries */
    struct llmdev_hw_vec *vec;  /* LLMDEV_DESC_MAX_SG entries */
} LlmdevRing;

typedef struct LlmdevScrub {
    LlmdevWorker w;
    /* registers, under LlmdevState.lock */
    uint64_t addr;
    uint64_t len;
    uint32_t pattern;
    uint32_t status;
    /* latched by START, so register writes cannot move a running scrub */
    uint64_t cur_addr;
    uint64_t cur_len;
    uint32_t cur_pattern;
    uint64_t done;
} LlmdevScrub;

/* One peer-link port (BQL). */
typedef struct LlmdevLink {
    LlmdevState *s;
    unsigned int port;

    /* the cable, as resolved by llmdev_recable(): NULL = not cabled */
    LlmdevState *peer;
    unsigned int peer_port;
    LlmdevState *new_peer;      /* scratch of llmdev_recable() */
    unsigned int new_peer_port;
    bool changed;

    uint32_t ctrl;
    uint32_t fault;             /* only FORCE_DOWN is stored */
    uint32_t state;             /* LLMDEV_LINK_STATE_* */
    bool trained;               /* both ends trained: the same on both */
    uint64_t peer_serial;       /* latched when the link came up */
    uint32_t peer_port_reg;
    uint32_t down_count;
    uint64_t tx_bytes;          /* these two under LlmdevState.lock */
    uint64_t rx_bytes;
    uint64_t tx_errors;
    uint64_t rx_errors;
    uint64_t down_after;        /* tx bytes left before the link drops */
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

/* The collective registers and state of one card (BQL). */
typedef struct LlmdevColl {
    LlmdevCollParams reg;
    LlmdevCollParams cur;
    uint32_t status;            /* DONE/ERROR and the code of the last one */
    uint32_t completed;
    uint64_t done_tag;
    bool waiting;               /* posted, waiting for the other ranks */
    LlmdevSession *sess;        /* running */
    int64_t run_start;
    QEMUTimer *timeout_timer;
} LlmdevColl;

/* A piece of collective arithmetic for one card's engine. */
typedef struct LlmdevCollWork {
    uint8_t *dst;
    const uint8_t *own;         /* reduce: dst = own op in */
    const uint8_t *in;          /* copy: dst = in */
    uint64_t len;
    bool reduce;
} LlmdevCollWork;

#define LLMDEV_COLL_MAX_WORK    2

/* The card's collective engine: a worker and its queue (under lock). */
typedef struct LlmdevEngine {
    LlmdevWorker w;
    LlmdevSession *sess;        /* the session @work belongs to */
    LlmdevCollWork work[LLMDEV_COLL_MAX_WORK];
    unsigned int nwork;
} LlmdevEngine;

struct LlmdevState {
    PCIDevice parent_obj;

    MemoryRegion bar0;
    MemoryRegion regs;
    MemoryRegion aperture;

    /* properties */
    uint64_t hbm_size;
    uint64_t serial;
    uint32_t bandwidth_mbps;
    uint32_t link_gbps;
    char *peer_spec[LLMDEV_NUM_LINK_PORTS];

    uint8_t *hbm;
    /* a bit per LLMDEV_HBM_BLOCK; clear: the block is all zero bytes */
    unsigned long *hbm_written;
    int64_t created_ns;
    QEMUBH *irq_bh;             /* delivers what the workers raised */

    /* ---- under lock (see the top of the file) ---- */
    QemuMutex lock;
    uint32_t control;
    uint32_t irq_status;
    uint32_t irq_mask;
    uint32_t irq_queued[LLMDEV_NUM_VECTORS];    /* messages to send */
    uint32_t event_cause;
    uint32_t err_status;
    uint32_t err_count;
    uint32_t err_log_head;
    uint32_t fault_inject;
    uint8_t err_log[LLMDEV_ERR_LOG_ENTRIES][LLMDEV_ERR_LOG_STRIDE];
    uint64_t perf[LLMDEV_PERF_NUM_COUNTERS];
    uint64_t perf_snap[LLMDEV_PERF_NUM_COUNTERS];
    uint64_t perf_snap_time;
    /* DMA_BUSY_NS: rings with a descriptor in progress, since when */
    unsigned int dma_active;
    int64_t dma_busy_mark;
    /* sensor model state: smoothed activity in [0, 1] */
    double activity;
    int64_t sensor_time;
    uint64_t sensor_busy;
    LlmdevRing ring[LLMDEV_NUM_RINGS];
    LlmdevScrub scrub;
    LlmdevEngine engine;

    /* ---- under the BQL ---- */
    bool intx_level;
    uint32_t lnkcap;        /* PCIe Link Capabilities as realized */
    uint32_t scratch;
    uint32_t reset_count;
    char *peer_id[LLMDEV_NUM_LINK_PORTS];   /* parsed peerN: card id */
    unsigned int peer_port[LLMDEV_NUM_LINK_PORTS];
    LlmdevLink link[LLMDEV_NUM_LINK_PORTS];
    uint32_t link_event;
    bool resetting;             /* no events to ourselves while resetting */
    LlmdevColl coll;
    uint32_t route_stage_num;
    uint32_t route_active_num;
    uint32_t route_gen;
    uint32_t route_status;
    uint8_t route_stage[LLMDEV_ROUTE_ENTRIES][LLMDEV_ROUTE_ENTRY_SIZE];
    uint8_t route_active[LLMDEV_ROUTE_ENTRIES][LLMDEV_ROUTE_ENTRY_SIZE];
    bool listed;                /* on llmdev_cards */
    bool fail_reset;            /* x-fail-reset: the next reset kills it */
    bool dead;                  /* BAR 0 reads all ones (10.5) */
    QTAILQ_ENTRY(LlmdevState) next;
};

/* Every realized card, in realize order (BQL). */
typedef QTAILQ_HEAD(, LlmdevState) LlmdevCardList;
extern LlmdevCardList llmdev_cards;

/* core.c */
uint64_t llmdev_now(LlmdevState *s);
const char *llmdev_id(LlmdevState *s);
bool llmdev_hbm_range_ok(LlmdevState *s, uint64_t addr, uint64_t len);
void llmdev_hbm_written(LlmdevState *s, uint64_t addr, uint64_t len);
void llmdev_copy_to_hbm(uint8_t *dst, const uint8_t *src, uint64_t n);
void llmdev_irq_raise_locked(LlmdevState *s, uint32_t source,
                             unsigned int vector);
void llmdev_irq_kick(LlmdevState *s);
void llmdev_irq_kick_later(LlmdevState *s);
void llmdev_irq_defer_locked(LlmdevState *s);
void llmdev_raise_event_locked(LlmdevState *s, uint32_t cause);
void llmdev_raise_event(LlmdevState *s, uint32_t cause);
void llmdev_log_error_locked(LlmdevState *s, uint32_t code, uint32_t source,
                             uint64_t addr);
void llmdev_log_error(LlmdevState *s, uint32_t code, uint32_t source,
                      uint64_t addr);
void llmdev_worker_start(LlmdevState *s, LlmdevWorker *w, const char *what,
                         void *(*fn)(void *), void *opaque);
void llmdev_worker_stop(LlmdevState *s, LlmdevWorker *w);
void llmdev_worker_quiesce_locked(LlmdevState *s, LlmdevWorker *w);

static inline bool llmdev_worker_aborted(LlmdevWorker *w, uint32_t gen)
{
    return qatomic_read(&w->gen) != gen;
}

/* dma.c */
void llmdev_dma_init(LlmdevState *s);
void llmdev_dma_fini(LlmdevState *s);
void llmdev_dma_reset_locked(LlmdevState *s);
void llmdev_dma_kick_locked(LlmdevState *s);
void llmdev_dma_busy_sync_locked(LlmdevState *s);
uint64_t llmdev_ring_read_locked(LlmdevRing *r, hwaddr off);
bool llmdev_ring_write(LlmdevRing *r, hwaddr off, uint64_t val);
uint64_t llmdev_scrub_read_locked(LlmdevState *s, hwaddr addr);
bool llmdev_scrub_write(LlmdevState *s, hwaddr addr, uint64_t val);

/* links.c */
void llmdev_links_init(LlmdevState *s);
void llmdev_links_fini(LlmdevState *s);
void llmdev_links_reset(LlmdevState *s);
void llmdev_links_unplug(LlmdevState *s);
uint64_t llmdev_link_read(LlmdevLink *l, hwaddr off);
bool llmdev_link_write(LlmdevLink *l, hwaddr off, uint64_t val);
LlmdevLink *llmdev_link_peer(LlmdevLink *l);
void llmdev_link_exhaust(LlmdevLink *l);
bool llmdev_parse_peers(LlmdevState *s, Error **errp);
bool llmdev_check_cables(LlmdevState *s, Error **errp);
void llmdev_free_peers(LlmdevState *s);
void llmdev_recable(void);

/* coll.c */
void llmdev_coll_init(LlmdevState *s);
void llmdev_coll_fini(LlmdevState *s);
void llmdev_coll_reset(LlmdevState *s);
void llmdev_coll_unplug(LlmdevState *s);
uint64_t llmdev_coll_read(LlmdevState *s, hwaddr addr);
bool llmdev_coll_write(LlmdevState *s, hwaddr addr, uint64_t val);

/* reduce.c */
unsigned int llmdev_dtype_size(uint32_t dtype);
void llmdev_reduce(uint8_t *dst, const uint8_t *own, const uint8_t *in,
                   uint64_t count, uint32_t dtype, uint32_t redop);

/* route.c */
void llmdev_route_reset(LlmdevState *s);
uint64_t llmdev_route_read(LlmdevState *s, hwaddr addr, bool wide);
bool llmdev_route_write(LlmdevState *s, hwaddr addr, uint64_t val, bool wide);

#endif /* HW_MISC_LLMDEV_H */
