/*
 * QEMU model of the llmdev card: the collective engine (spec 13).
 *
 * The cards of one collective meet on the global card list (all ranks post
 * the same TAG) and form a session. The session advances in ticks (13.6):
 * a tick checks the links of the ring, hands each transfer to the engine of
 * the card that receives it (one worker thread per card, which moves and
 * combines the data between the cards' HBM without any lock), and when
 * every engine is done it is counted; the next tick starts when the tick's
 * link time has passed or, if the engines needed longer, at once.
 *
 * Who runs a tick: the engine that finishes the last piece of the previous
 * one, without a trip through the main loop, as long as nothing needs the
 * BQL: the link checks read the link state with qatomic_read() and the
 * counters are kept under the cards' locks. The main loop (a timer or a
 * bottom half, under the BQL) takes over when the next tick must wait for
 * its link time, when a link is not up (the session ends), when a
 * DOWN_AFTER budget is armed on a link of the ring (counting it can drop
 * the link, which raises events), and to end the session.
 *
 * The copy of SRC to DST that an out-of-place AllReduce needs is not a pass
 * of its own: every reduce-scatter step reads the receiver's SRC (the
 * receiver's DST of a segment is never written before that segment comes
 * in) and the first one reads the sender's SRC, so the result is the same
 * as copying first, without touching the data an extra time. A broadcast
 * root copies its SRC to its DST chunk by chunk, as it sends.
 *
 * A session is ended (all members finish, or a departing or reset member is
 * dropped) only under the BQL, after its engines have stopped: no engine
 * touches the HBM of a card after the card's reset or exit has returned.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sched.h>
#include "qemu/main-loop.h"
#include "llmdev.h"
#include "trace.h"

struct LlmdevSession {
    unsigned int n;
    LlmdevState *m[LLMDEV_COLL_MAX_RANKS];          /* by rank */
    uint32_t down_count[LLMDEV_COLL_MAX_RANKS];     /* tx link, at start */
    uint32_t kind;
    uint32_t redop;
    uint32_t dtype;
    uint32_t esize;
    uint32_t root;
    uint64_t tag;
    uint64_t count;
    uint64_t bytes;             /* count * esize */
    uint64_t chunk;
    unsigned int step, nsteps;
    uint64_t tick, nticks;      /* chunk steps within the step */

    /* the tick in progress */
    struct LlmdevXfer {
        unsigned int from;      /* rank that sends */
        uint64_t off;           /* byte offset in SRC/DST */
        uint64_t len;
    } x[LLMDEV_COLL_MAX_RANKS];
    unsigned int nx;
    int64_t tick_start;         /* when the tick started (13.6 timeline) */
    int64_t tick_dur;
    int64_t done_at;            /* when the engines finished the last tick */
    int pending;                /* work items the engines have not done */
    bool dead;                  /* ending: post no more work */
    QEMUTimer *tick_timer;      /* starts the next tick from the main loop */
    QEMUBH *done_bh;            /* counts the tick in the main loop */
};

typedef struct LlmdevXfer LlmdevXfer;

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

static uint64_t llmdev_coll_chunk(const LlmdevCollParams *p)
{
    return p->chunk ? p->chunk : LLMDEV_COLL_DEFAULT_CHUNK;
}

/* ---- The engines --------------------------------------------------------- */

static void llmdev_sess_engine_done(LlmdevSession *ss);

static bool llmdev_engine_run(LlmdevSession *ss, const LlmdevCollWork *wk,
                              LlmdevWorker *w, uint32_t gen)
{
    uint64_t off, n;

    for (off = 0; off < wk->len; off += n) {
        if (llmdev_worker_aborted(w, gen)) {
            return false;
        }
        /* whole elements: the chunk and the length are multiples of 4 */
        n = MIN(LLMDEV_COPY_CHUNK, wk->len - off);
        if (wk->reduce) {
            llmdev_reduce(wk->dst + off, wk->own + off, wk->in + off,
                          n / ss->esize, ss->dtype, ss->redop);
        } else {
            llmdev_copy_to_hbm(wk->dst + off, wk->in + off, n);
        }
    }
    return true;
}

/*
 * Wait awake for more work, a while at most, if the engine's session goes
 * on at once: its next tick comes as soon as the last engine is done with
 * this one, which on a loaded host is much sooner than a sleeping thread
 * wakes up. The CPU is given up to anything else that can run meanwhile.
 * Called and returns with the card's lock held, dropped meanwhile: true if
 * work came or the worker is to exit. Both are signalled under the lock, so
 * a caller that sleeps on false misses neither; one that went on sleeping
 * after llmdev_worker_stop() had signalled during the wait would never be
 * joined.
 */
static bool llmdev_engine_spin(LlmdevState *s, LlmdevEngine *e)
{
    LlmdevSession *ss = e->sess;
    int64_t end;

    /* the session stays while it is e->sess and we hold the lock */
    if (!ss || qatomic_read(&ss->dead) || e->w.quiescing ||
        qatomic_read(&ss->tick_dur) > LLMDEV_ENGINE_SPIN_NS) {
        return false;
    }
    end = get_clock() + LLMDEV_ENGINE_SPIN_NS;
    qemu_mutex_unlock(&s->lock);
    while (!qatomic_read(&e->nwork) && qatomic_read(&e->sess) == ss &&
           !qatomic_read(&e->w.exit) && get_clock() < end) {
        sched_yield();
    }
    qemu_mutex_lock(&s->lock);
    return e->nwork || e->w.exit;
}

static void *llmdev_engine_thread(void *opaque)
{
    LlmdevState *s = opaque;
    LlmdevEngine *e = &s->engine;

    qemu_mutex_lock(&s->lock);
    while (!e->w.exit) {
        LlmdevSession *ss = e->sess;
        uint32_t gen = e->w.gen;
        LlmdevCollWork wk;
        int64_t t0;
        bool done;

        if (!e->nwork) {
            if (!llmdev_engine_spin(s, e)) {
                qemu_cond_wait(&e->w.wake, &s->lock);
            }
            continue;
        }
        qatomic_set(&e->nwork, e->nwork - 1);
        wk = e->work[e->nwork];
        e->w.busy = true;
        qemu_mutex_unlock(&s->lock);
        t0 = get_clock();
        done = llmdev_engine_run(ss, &wk, &e->w, gen);
        trace_llmdev_coll_work(llmdev_id(s), wk.len, wk.reduce,
                               get_clock() - t0);
        /* what landed may be non-zero, done or not */
        llmdev_hbm_written(s, wk.dst - s->hbm, wk.len);
        if (done && qatomic_fetch_dec(&ss->pending) == 1) {
            llmdev_sess_engine_done(ss);
        }
        qemu_mutex_lock(&s->lock);
        e->w.busy = false;
        qemu_cond_broadcast(&e->w.idle);
    }
    qemu_mutex_unlock(&s->lock);
    return NULL;
}

/*
 * Queue work for a card's engine. Checked under the card's lock: once
 * llmdev_sess_stop() has set @dead, no engine is given work any more.
 */
static void llmdev_engine_post(LlmdevState *s, LlmdevSession *ss,
                               const LlmdevCollWork *wk)
{
    LlmdevEngine *e = &s->engine;

    qemu_mutex_lock(&s->lock);
    if (!qatomic_read(&ss->dead)) {
        assert(e->nwork < LLMDEV_COLL_MAX_WORK);
        /* both read by llmdev_engine_spin() without the lock */
        qatomic_set(&e->sess, ss);
        e->work[e->nwork] = *wk;
        qatomic_set(&e->nwork, e->nwork + 1);
        qemu_cond_signal(&e->w.wake);
    }
    qemu_mutex_unlock(&s->lock);
}

/* ---- Finishing ----------------------------------------------------------- */

static void llmdev_coll_finish(LlmdevState *s, uint32_t err)
{
    LlmdevColl *c = &s->coll;

    qemu_mutex_lock(&s->lock);
    if (c->sess) {
        s->perf[LLMDEV_PERF_COLL_BUSY_NS] +=
            qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - c->run_start;
    }
    s->perf[LLMDEV_PERF_COLL_OPS]++;
    llmdev_raise_event_locked(s, LLMDEV_EVENT_COLL);
    qemu_mutex_unlock(&s->lock);
    c->sess = NULL;
    c->waiting = false;
    timer_del(c->timeout_timer);
    c->status = err ? LLMDEV_COLL_STATUS_ERROR | err << 8 :
                LLMDEV_COLL_STATUS_DONE;
    c->done_tag = c->cur.tag;
    c->completed++;
    trace_llmdev_coll_finish(llmdev_id(s), c->cur.tag, err);
    /* not now: the message could end the session we are ending (sess_end) */
    llmdev_irq_kick_later(s);
}

/*
 * Stop the members' engines: none touches HBM or the session after it. An
 * engine that is running a tick is waited for; what it queued is dropped.
 */
static void llmdev_sess_stop(LlmdevSession *ss)
{
    unsigned int r;

    qatomic_set(&ss->dead, true);
    /* @dead before the locks below: pairs with llmdev_engine_post() */
    smp_mb();
    for (r = 0; r < ss->n; r++) {
        LlmdevState *m = ss->m[r];
        LlmdevEngine *e = &m->engine;

        qemu_mutex_lock(&m->lock);
        if (e->sess == ss) {
            qatomic_set(&e->nwork, 0);
            llmdev_worker_quiesce_locked(m, &e->w);
            qatomic_set(&e->sess, NULL);
        }
        qemu_mutex_unlock(&m->lock);
    }
    timer_free(ss->tick_timer);
    qemu_bh_delete(ss->done_bh);
}

/* End a session on every member but skip (which is going away or resetting). */
static void llmdev_sess_end(LlmdevSession *ss, uint32_t err, LlmdevState *skip)
{
    unsigned int r;

    llmdev_sess_stop(ss);
    for (r = 0; r < ss->n; r++) {
        LlmdevState *m = ss->m[r];

        if (m->coll.sess != ss) {
            continue;
        }
        if (m == skip) {
            m->coll.sess = NULL;
            continue;
        }
        llmdev_coll_finish(m, err);
    }
    g_free(ss);
}

/* ---- Ticks --------------------------------------------------------------- */

static LlmdevLink *llmdev_sess_tx(LlmdevSession *ss, unsigned int r)
{
    LlmdevState *m = ss->m[r];

    return &m->link[llmdev_coll_txp(&m->coll.cur)];
}

static uint64_t llmdev_seg_elems(LlmdevSession *ss, unsigned int k)
{
    return ss->count / ss->n + (k < ss->count % ss->n ? 1 : 0);
}

static uint64_t llmdev_seg_start(LlmdevSession *ss, unsigned int k)
{
    return k * (ss->count / ss->n) + MIN(k, ss->count % ss->n);
}

/* The transfers of the current tick (13.5, 13.6). */
static void llmdev_sess_xfers(LlmdevSession *ss)
{
    unsigned int n = ss->n, r, i, k = 0;
    uint64_t off = ss->tick * ss->chunk;
    LlmdevXfer *x = ss->x;

    if (n < 2) {
        ss->nx = 0;
        return;
    }
    if (ss->kind == LLMDEV_COLL_KIND_ALLREDUCE) {
        unsigned int s = ss->step;

        for (r = 0; r < n; r++) {
            unsigned int seg = s < n - 1 ? (r + n - s) % n :
                               (r + 1 + n - (s - (n - 1))) % n;
            uint64_t len = llmdev_seg_elems(ss, seg) * ss->esize;

            if (off >= len) {
                continue;
            }
            x[k].from = r;
            x[k].off = llmdev_seg_start(ss, seg) * ss->esize + off;
            x[k].len = MIN(ss->chunk, len - off);
            k++;
        }
        ss->nx = k;
        return;
    }
    /* broadcast: position i of the chain sends chunk tick - i */
    for (i = 0; i + 1 < n; i++) {
        uint64_t c;

        if (ss->tick < i) {
            break;
        }
        c = ss->tick - i;
        if (c * ss->chunk >= ss->bytes) {
            continue;
        }
        x[k].from = (ss->root + i) % n;
        x[k].off = c * ss->chunk;
        x[k].len = MIN(ss->chunk, ss->bytes - c * ss->chunk);
        k++;
    }
    ss->nx = k;
}

/* The engines' work for the current tick; returns how many items. */
static unsigned int llmdev_sess_work(LlmdevSession *ss, LlmdevCollWork *wk,
                                     LlmdevState **on)
{
    unsigned int i, k = 0;

    if (ss->n < 2) {
        LlmdevState *m = ss->m[0];
        const LlmdevCollParams *p = &m->coll.cur;

        if (p->src != p->dst) {
            wk[k] = (LlmdevCollWork) {
                .dst = m->hbm + p->dst, .in = m->hbm + p->src,
                .len = ss->bytes,
            };
            on[k++] = m;
        }
        return k;
    }
    for (i = 0; i < ss->nx; i++) {
        const LlmdevXfer *x = &ss->x[i];
        LlmdevState *from = ss->m[x->from];
        LlmdevState *to = ss->m[(x->from + 1) % ss->n];
        const LlmdevCollParams *pf = &from->coll.cur, *pt = &to->coll.cur;
        LlmdevCollWork w = {
            .dst = to->hbm + pt->dst + x->off, .len = x->len,
        };

        if (ss->kind == LLMDEV_COLL_KIND_ALLREDUCE &&
            ss->step < ss->n - 1) {
            /* reduce-scatter: the receiver's own value is still in SRC */
            w.reduce = true;
            w.own = to->hbm + pt->src + x->off;
            w.in = from->hbm + (ss->step ? pf->dst : pf->src) + x->off;
        } else if (ss->kind == LLMDEV_COLL_KIND_BROADCAST &&
                   x->from == ss->root) {
            w.in = from->hbm + pf->src + x->off;
            if (pf->src != pf->dst) {
                /* the root's own copy of the chunk it sends */
                wk[k] = (LlmdevCollWork) {
                    .dst = from->hbm + pf->dst + x->off, .in = w.in,
                    .len = x->len,
                };
                on[k++] = from;
            }
        } else {
            w.in = from->hbm + pf->dst + x->off;
        }
        wk[k] = w;
        on[k++] = to;
    }
    return k;
}

/* What stops a tick from running without the BQL. */
typedef enum LlmdevLinksCheck {
    LLMDEV_LINKS_OK,
    LLMDEV_LINKS_DOWN,          /* a ring link is not up, or was down */
    LLMDEV_LINKS_BUDGET,        /* a DOWN_AFTER budget is armed */
} LlmdevLinksCheck;

/*
 * Every link of the ring is up, still leads to the next rank and has been
 * up since the start (13.8); whether a budget is armed. Exact under the
 * BQL, a snapshot without it.
 */
static LlmdevLinksCheck llmdev_sess_links(LlmdevSession *ss)
{
    LlmdevLinksCheck ret = LLMDEV_LINKS_OK;
    unsigned int r;

    for (r = 0; r < ss->n && ss->n > 1; r++) {
        LlmdevLink *l = llmdev_sess_tx(ss, r);

        if (qatomic_read(&l->state) != LLMDEV_LINK_STATE_UP ||
            qatomic_read(&l->peer) != ss->m[(r + 1) % ss->n] ||
            qatomic_read(&l->down_count) != ss->down_count[r]) {
            return LLMDEV_LINKS_DOWN;
        }
        if (qatomic_read(&l->down_after)) {
            ret = LLMDEV_LINKS_BUDGET;
        }
    }
    return ret;
}

/* Hand the tick's transfers to the engines that receive them. */
static void llmdev_sess_dispatch(LlmdevSession *ss)
{
    LlmdevCollWork wk[2 * LLMDEV_COLL_MAX_RANKS];
    LlmdevState *on[2 * LLMDEV_COLL_MAX_RANKS];
    int64_t dur = 1;
    unsigned int i, nw;

    for (i = 0; i < ss->nx; i++) {
        dur = MAX(dur, DIV_ROUND_UP(ss->x[i].len * 8,
                                    ss->m[ss->x[i].from]->link_gbps));
    }
    /*
     * By 13.6 this tick started when the previous one's time had passed
     * or when the engines were done with it, whichever was later; that we
     * only get here a little after that (a timer, a thread's wake-up) is
     * the host's delay, not the link's, and must not add up tick by tick.
     */
    ss->tick_start = MAX(ss->tick_start + ss->tick_dur, ss->done_at);
    qatomic_set(&ss->tick_dur, dur);    /* read by llmdev_engine_spin() */
    trace_llmdev_coll_tick(ss->tag, ss->step, ss->tick, ss->nx, dur);

    nw = llmdev_sess_work(ss, wk, on);
    if (!nw) {
        /* nothing to move (a one-card copy of nothing): count it now */
        ss->done_at = ss->tick_start;
        qemu_bh_schedule(ss->done_bh);
        return;
    }
    qatomic_set(&ss->pending, nw);
    for (i = 0; i < nw; i++) {
        llmdev_engine_post(on[i], ss, &wk[i]);
    }
}

/*
 * Count the tick's transfers (13.5) and step on to the next tick. A budget
 * is counted only under the BQL: running out drops the link.
 */
static void llmdev_sess_account(LlmdevSession *ss, bool bql)
{
    unsigned int i;

    for (i = 0; i < ss->nx; i++) {
        const LlmdevXfer *x = &ss->x[i];
        LlmdevState *from = ss->m[x->from];
        LlmdevLink *l = llmdev_sess_tx(ss, x->from);
        LlmdevLink *pl = llmdev_link_peer(l);

        qemu_mutex_lock(&from->lock);
        l->tx_bytes += x->len;
        from->perf[LLMDEV_PERF_LINK_TX_BYTES] += x->len;
        qemu_mutex_unlock(&from->lock);
        if (pl) {
            qemu_mutex_lock(&pl->s->lock);
            pl->rx_bytes += x->len;
            pl->s->perf[LLMDEV_PERF_LINK_RX_BYTES] += x->len;
            qemu_mutex_unlock(&pl->s->lock);
        }
        if (bql && l->down_after) {
            /* a budget written during the tick may be below its chunk */
            qatomic_set(&l->down_after, l->down_after > x->len ?
                        l->down_after - x->len : 0);
            if (!l->down_after) {
                llmdev_link_exhaust(l);
            }
        }
    }
    if (++ss->tick >= ss->nticks) {
        ss->tick = 0;
        ss->step++;
    }
}

/* Start the current tick, or end the session (main loop, BQL). */
static void llmdev_sess_tick(void *opaque)
{
    LlmdevSession *ss = opaque;
    unsigned int i;

    if (ss->step >= ss->nsteps) {
        llmdev_sess_end(ss, LLMDEV_COLL_ERR_NONE, NULL);
        return;
    }
    llmdev_sess_xfers(ss);
    if (llmdev_sess_links(ss) == LLMDEV_LINKS_DOWN) {
        llmdev_sess_end(ss, LLMDEV_COLL_ERR_LINK_DOWN, NULL);
        return;
    }
    /* a chunk that does not fit the DOWN_AFTER budget drops the link */
    for (i = 0; i < ss->nx; i++) {
        LlmdevLink *l = llmdev_sess_tx(ss, ss->x[i].from);

        if (l->down_after && ss->x[i].len > l->down_after) {
            llmdev_link_exhaust(l);
            llmdev_sess_end(ss, LLMDEV_COLL_ERR_LINK_DOWN, NULL);
            return;
        }
    }
    llmdev_sess_dispatch(ss);
}

/* The next tick: at once if its time has come, else from the timer. */
static void llmdev_sess_next(LlmdevSession *ss)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    if (now >= ss->tick_start + ss->tick_dur) {
        llmdev_sess_tick(ss);
    } else {
        timer_mod(ss->tick_timer, ss->tick_start + ss->tick_dur);
    }
}

/* The engines are done with the tick: count it in the main loop. */
static void llmdev_sess_done(void *opaque)
{
    LlmdevSession *ss = opaque;

    llmdev_sess_account(ss, true);
    llmdev_sess_next(ss);
}

/*
 * The engines are done with the tick; called by the one that finished last,
 * without the BQL. It counts the tick and runs the next one itself if it
 * can, or leaves it to the main loop.
 */
static void llmdev_sess_engine_done(LlmdevSession *ss)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    ss->done_at = now;
    if (llmdev_sess_links(ss) == LLMDEV_LINKS_BUDGET) {
        qemu_bh_schedule(ss->done_bh);
        return;
    }
    llmdev_sess_account(ss, false);
    if (ss->step >= ss->nsteps || now < ss->tick_start + ss->tick_dur) {
        timer_mod(ss->tick_timer, MAX(now, ss->tick_start + ss->tick_dur));
        return;
    }
    llmdev_sess_xfers(ss);
    if (llmdev_sess_links(ss) != LLMDEV_LINKS_OK) {
        timer_mod(ss->tick_timer, now);
        return;
    }
    llmdev_sess_dispatch(ss);
}

/* ---- Posting and matching ------------------------------------------------ */

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
        /* the local copy only */
        ss->nsteps = 1;
        ss->nticks = 1;
    } else if (ss->kind == LLMDEV_COLL_KIND_ALLREDUCE) {
        seg0 = (ss->count / n + (ss->count % n ? 1 : 0)) * ss->esize;
        ss->nsteps = 2 * (n - 1);
        ss->nticks = DIV_ROUND_UP(seg0, ss->chunk);
    } else {
        ss->nsteps = 1;
        ss->nticks = DIV_ROUND_UP(ss->bytes, ss->chunk) + n - 2;
    }
    ss->tick_start = now;       /* the first tick starts now */
    ss->done_at = now;
    ss->tick_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, llmdev_sess_tick, ss);
    ss->done_bh = qemu_bh_new(llmdev_sess_done, ss);
    for (r = 0; r < n; r++) {
        ss->m[r] = m[r];
        m[r]->coll.waiting = false;
        m[r]->coll.sess = ss;
        m[r]->coll.run_start = now;
        timer_del(m[r]->coll.timeout_timer);
        ss->down_count[r] = llmdev_sess_tx(ss, r)->down_count;
    }
    trace_llmdev_coll_run(ss->tag, n, ss->nsteps, ss->nticks);
    timer_mod(ss->tick_timer, now);
}

/*
 * A card just posted a collective with this tag: if the cards waiting with
 * the tag hold every rank of some member's nranks, check the group and run
 * it or fail it (13.3).
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
        if (c->coll.waiting && c->coll.cur.tag == tag) {
            g_ptr_array_add(g, c);
        }
    }
    for (i = 0; i < g->len && !complete; i++) {
        n = llmdev_coll_nranks(&((LlmdevState *)g->pdata[i])->coll.cur);
        seen = 0;
        for (j = 0; j < g->len; j++) {
            LlmdevState *cj = g->pdata[j];
            unsigned int r = cj->coll.cur.rank & 0xff;

            if (r < n) {
                seen |= 1u << r;
            }
        }
        complete = seen == (1u << n) - 1;
    }
    if (!complete) {
        goto out;
    }

    p0 = &((LlmdevState *)g->pdata[0])->coll.cur;
    n = llmdev_coll_nranks(p0);
    memset(m, 0, sizeof(m));
    if (g->len != n) {
        err = LLMDEV_COLL_ERR_MISMATCH;
    }
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
             LLMDEV_COLL_OP_ROOT(p->op) != LLMDEV_COLL_OP_ROOT(p0->op))) {
            err = LLMDEV_COLL_ERR_MISMATCH;
        } else {
            m[r] = g->pdata[i];
        }
    }
    /* rank r's tx cable must arrive on rank r + 1's rx port */
    for (i = 0; i < n && !err; i++) {
        LlmdevState *next = m[(i + 1) % n];
        LlmdevLink *tx = &m[i]->link[llmdev_coll_txp(&m[i]->coll.cur)];

        if (tx->peer != next ||
            tx->peer_port != llmdev_coll_rxp(&next->coll.cur)) {
            err = LLMDEV_COLL_ERR_TOPOLOGY;
        }
    }
    for (i = 0; i < n && !err; i++) {
        if (m[i]->link[llmdev_coll_txp(&m[i]->coll.cur)].state !=
            LLMDEV_LINK_STATE_UP) {
            err = LLMDEV_COLL_ERR_LINK_DOWN;
        }
    }
    if (err) {
        for (i = 0; i < g->len; i++) {
            llmdev_coll_finish(g->pdata[i], err);
        }
        goto out;
    }
    llmdev_sess_start(m, n);
out:
    g_ptr_array_free(g, true);
}

/* Parameter checks at START (13.2); returns an LLMDEV_COLL_ERR_* code. */
static uint32_t llmdev_coll_check(LlmdevState *s)
{
    const LlmdevCollParams *p = &s->coll.cur;
    uint32_t kind = LLMDEV_COLL_OP_KIND(p->op);
    uint32_t dtype = LLMDEV_COLL_OP_DTYPE(p->op);
    unsigned int rank = p->rank & 0xff, n = llmdev_coll_nranks(p);
    uint64_t bytes;
    bool src_used;

    if ((p->op & ~0x00ff0fffu) || (p->rank & ~0xffffu) ||
        (p->ports & ~0xffu)) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (kind != LLMDEV_COLL_KIND_ALLREDUCE &&
        kind != LLMDEV_COLL_KIND_BROADCAST) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (dtype > LLMDEV_COLL_DTYPE_I32) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (kind == LLMDEV_COLL_KIND_ALLREDUCE &&
        LLMDEV_COLL_OP_REDOP(p->op) > LLMDEV_COLL_REDOP_MAX) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (!n || n > LLMDEV_COLL_MAX_RANKS || rank >= n) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (kind == LLMDEV_COLL_KIND_BROADCAST &&
        LLMDEV_COLL_OP_ROOT(p->op) >= n) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (llmdev_coll_txp(p) >= LLMDEV_NUM_LINK_PORTS ||
        llmdev_coll_rxp(p) >= LLMDEV_NUM_LINK_PORTS) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (!p->count || p->chunk % LLMDEV_COLL_CHUNK_ALIGN) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (p->count > s->hbm_size / llmdev_dtype_size(dtype)) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    bytes = p->count * llmdev_dtype_size(dtype);
    src_used = kind == LLMDEV_COLL_KIND_ALLREDUCE ||
               rank == LLMDEV_COLL_OP_ROOT(p->op);
    if (!llmdev_hbm_range_ok(s, p->dst, bytes)) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (src_used && !llmdev_hbm_range_ok(s, p->src, bytes)) {
        return LLMDEV_COLL_ERR_PARAM;
    }
    if (src_used && p->src != p->dst && p->src < p->dst + bytes &&
        p->dst < p->src + bytes) {
        return LLMDEV_COLL_ERR_PARAM;
    }
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
    if (c->cur.timeout_us) {
        timer_mod(c->timeout_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                  (int64_t)c->cur.timeout_us * SCALE_US);
    }
    llmdev_coll_match(c->cur.tag);
}

static void llmdev_coll_abort(LlmdevState *s)
{
    if (s->coll.sess) {
        llmdev_sess_end(s->coll.sess, LLMDEV_COLL_ERR_ABORTED, NULL);
    } else if (s->coll.waiting) {
        llmdev_coll_finish(s, LLMDEV_COLL_ERR_ABORTED);
    }
}

static void llmdev_coll_timeout(void *opaque)
{
    LlmdevState *s = opaque;

    if (s->coll.waiting) {
        llmdev_coll_finish(s, LLMDEV_COLL_ERR_TIMEOUT);
    }
}

/* ---- Registers ----------------------------------------------------------- */

uint64_t llmdev_coll_read(LlmdevState *s, hwaddr addr)
{
    LlmdevColl *c = &s->coll;

    switch (addr) {
    case LLMDEV_REG_COLL_STATUS:
        return c->status |
               (c->waiting || c->sess ? LLMDEV_COLL_STATUS_BUSY : 0) |
               (c->sess ? LLMDEV_COLL_STATUS_RUNNING : 0);
    case LLMDEV_REG_COLL_TAG:
        return c->reg.tag;
    case LLMDEV_REG_COLL_OP:
        return c->reg.op;
    case LLMDEV_REG_COLL_RANK:
        return c->reg.rank;
    case LLMDEV_REG_COLL_PORTS:
        return c->reg.ports;
    case LLMDEV_REG_COLL_CHUNK:
        return c->reg.chunk;
    case LLMDEV_REG_COLL_COUNT:
        return c->reg.count;
    case LLMDEV_REG_COLL_SRC:
        return c->reg.src;
    case LLMDEV_REG_COLL_DST:
        return c->reg.dst;
    case LLMDEV_REG_COLL_TIMEOUT_US:
        return c->reg.timeout_us;
    case LLMDEV_REG_COLL_COMPLETED:
        return c->completed;
    case LLMDEV_REG_COLL_DONE_TAG:
        return c->done_tag;
    }
    return 0;
}

/* Parameters, CTRL: refused (false) while a collective is posted. */
bool llmdev_coll_write(LlmdevState *s, hwaddr addr, uint64_t val)
{
    LlmdevColl *c = &s->coll;
    LlmdevCollParams *p = &c->reg;
    bool busy = c->waiting || c->sess;

    if (addr == LLMDEV_REG_COLL_CTRL) {
        if (val & LLMDEV_COLL_CTRL_ABORT) {
            llmdev_coll_abort(s);
        } else if (val & LLMDEV_COLL_CTRL_START) {
            if (busy) {
                return false;
            }
            llmdev_coll_start(s);
        }
        return true;
    }
    if (busy) {
        return false;
    }
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

/* ---- Reset and life cycle ------------------------------------------------ */

/*
 * Reset (spec 10.2): a running collective fails on the others with
 * ABORTED, a posted one is dropped silently; the registers are cleared.
 */
void llmdev_coll_reset(LlmdevState *s)
{
    LlmdevColl *c = &s->coll;

    if (c->sess) {
        llmdev_sess_end(c->sess, LLMDEV_COLL_ERR_ABORTED, s);
    }
    timer_del(c->timeout_timer);
    c->waiting = false;
    memset(&c->reg, 0, sizeof(c->reg));
    memset(&c->cur, 0, sizeof(c->cur));
    c->status = 0;
    c->completed = 0;
    c->done_tag = 0;
}

/* The card goes away: its collective fails on the others with LINK_DOWN. */
void llmdev_coll_unplug(LlmdevState *s)
{
    if (s->coll.sess) {
        llmdev_sess_end(s->coll.sess, LLMDEV_COLL_ERR_LINK_DOWN, s);
    }
    s->coll.waiting = false;
    timer_del(s->coll.timeout_timer);
}

void llmdev_coll_init(LlmdevState *s)
{
    s->coll.timeout_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
                                         llmdev_coll_timeout, s);
    llmdev_worker_start(s, &s->engine.w, "coll", llmdev_engine_thread, s);
}

void llmdev_coll_fini(LlmdevState *s)
{
    llmdev_worker_stop(s, &s->engine.w);
    timer_free(s->coll.timeout_timer);
}
