/*
 * QEMU model of the llmdev card: peer links and cabling (spec 2.5, 12).
 *
 * Cards know each other through the global list llmdev_cards; the cables
 * are worked out from the peerN properties of the cards on it, again at
 * every realize and unrealize. Everything here runs under the BQL, but the
 * collective engines read a link's state, peer, DOWN_COUNT and DOWN_AFTER
 * without it (qatomic_read; they are written with qatomic_set), and count
 * TX_BYTES and RX_BYTES under the card's lock.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "llmdev.h"
#include "trace.h"

/* Also called by collective engines without the BQL: see coll.c. */
LlmdevLink *llmdev_link_peer(LlmdevLink *l)
{
    LlmdevState *peer = qatomic_read(&l->peer);

    return peer ? &peer->link[qatomic_read(&l->peer_port)] : NULL;
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
        llmdev_link_forced(l) || llmdev_link_forced(pl)) {
        return LLMDEV_LINK_STATE_DOWN;
    }
    return l->trained ? LLMDEV_LINK_STATE_UP : LLMDEV_LINK_STATE_TRAINING;
}

static void llmdev_link_set_state(LlmdevLink *l, uint32_t st)
{
    LlmdevState *s = l->s;
    uint32_t old = l->state;

    if (st == old) {
        return;
    }
    if (old == LLMDEV_LINK_STATE_UP) {
        qatomic_set(&l->down_count, l->down_count + 1);
        l->peer_serial = 0;
        l->peer_port_reg = ~0u;
    }
    if (st == LLMDEV_LINK_STATE_UP) {
        l->peer_serial = l->peer->serial;
        l->peer_port_reg = l->peer_port;
    }
    qatomic_set(&l->state, st);
    trace_llmdev_link_state(llmdev_id(s), l->port, old, st);
    if (s->resetting) {
        return;
    }
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
    if (pl) {
        llmdev_link_set_state(pl, llmdev_link_target(pl));
    }
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

    if (l->state != LLMDEV_LINK_STATE_UP || !pl || !count) {
        return;
    }
    trace_llmdev_link_burst(llmdev_id(l->s), l->port, count);
    l->tx_errors += count;
    pl->rx_errors += count;
    l->s->link_event |= LLMDEV_LINK_EVENT_ERROR(l->port);
    llmdev_raise_event(l->s, LLMDEV_EVENT_LINK);
    pl->s->link_event |= LLMDEV_LINK_EVENT_ERROR(pl->port);
    llmdev_raise_event(pl->s, LLMDEV_EVENT_LINK);
}

/* DOWN_AFTER ran out: the card pulls the cable itself (FORCE_DOWN). */
void llmdev_link_exhaust(LlmdevLink *l)
{
    qatomic_set(&l->down_after, 0);
    l->fault |= LLMDEV_LINK_FAULT_FORCE_DOWN;
    llmdev_link_update(l);
}

static LlmdevState *llmdev_find_card(const char *id)
{
    LlmdevState *c;

    QTAILQ_FOREACH(c, &llmdev_cards, next) {
        if (DEVICE(c)->id && !strcmp(DEVICE(c)->id, id)) {
            return c;
        }
    }
    return NULL;
}

static void llmdev_cable(LlmdevState *a, unsigned int pa, LlmdevState *b,
                         unsigned int pb)
{
    LlmdevLink *la = &a->link[pa], *lb = &b->link[pb];

    /* realize refused conflicting cables; a cable given twice is one */
    if (la->new_peer || lb->new_peer) {
        return;
    }
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
void llmdev_recable(void)
{
    LlmdevState *c, **ring;
    bool explicit = false;
    unsigned int n = 0, i, p;

    QTAILQ_FOREACH(c, &llmdev_cards, next) {
        n++;
        for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
            c->link[p].new_peer = NULL;
            c->link[p].new_peer_port = 0;
            if (c->peer_id[p]) {
                explicit = true;
            }
        }
    }
    if (explicit) {
        QTAILQ_FOREACH(c, &llmdev_cards, next) {
            for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
                LlmdevState *t;

                if (!c->peer_id[p]) {
                    continue;
                }
                t = llmdev_find_card(c->peer_id[p]);
                if (t && t != c) {
                    llmdev_cable(c, p, t, c->peer_port[p]);
                }
            }
        }
    } else if (n >= 2) {
        ring = g_new(LlmdevState *, n);
        i = 0;
        QTAILQ_FOREACH(c, &llmdev_cards, next) {
            ring[i++] = c;
        }
        for (i = 0; i < n; i++) {
            llmdev_cable(ring[i], 0, ring[(i + 1) % n], 1);
        }
        g_free(ring);
    }

    /* rewire first, then re-evaluate: both ends must see the new cable */
    QTAILQ_FOREACH(c, &llmdev_cards, next) {
        for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
            LlmdevLink *l = &c->link[p];

            if (l->new_peer == l->peer &&
                (!l->peer || l->new_peer_port == l->peer_port)) {
                continue;
            }
            l->changed = true;
            l->trained = false;
            timer_del(l->train_timer);
            qatomic_set(&l->peer_port, l->new_peer_port);
            qatomic_set(&l->peer, l->new_peer);
            if (l->peer) {
                trace_llmdev_link_cable(llmdev_id(c), p, llmdev_id(l->peer),
                                        l->peer_port);
            }
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

void llmdev_free_peers(LlmdevState *s)
{
    unsigned int p;

    for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
        g_free(s->peer_id[p]);
        s->peer_id[p] = NULL;
    }
}

/* Parse the peerN properties ("ID.PORT"). */
bool llmdev_parse_peers(LlmdevState *s, Error **errp)
{
    unsigned int p;

    for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
        const char *spec = s->peer_spec[p], *dot;

        if (!spec || !*spec) {
            continue;
        }
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
    char *a;            /* card id, or a unique name for a card without */
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

        if (!c->peer_id[p]) {
            continue;
        }
        cs.a = DEVICE(c)->id ? g_strdup(DEVICE(c)->id) :
               g_strdup_printf("\001%p", c);
        cs.pa = p;
        cs.b = c->peer_id[p];
        cs.pb = c->peer_port[p];
        g_array_append_val(cables, cs);
    }
}

static const char *llmdev_cable_name(const char *a)
{
    return a[0] == 1 ? "(no id)" : a;
}

bool llmdev_check_cables(LlmdevState *s, Error **errp)
{
    GArray *cables = g_array_new(false, true, sizeof(LlmdevCableSpec));
    LlmdevState *c;
    bool ok = true;
    unsigned int i, j;

    QTAILQ_FOREACH(c, &llmdev_cards, next) {
        llmdev_add_cables(cables, c);
    }
    llmdev_add_cables(cables, s);
    for (i = 0; i < cables->len && ok; i++) {
        LlmdevCableSpec *x = &g_array_index(cables, LlmdevCableSpec, i);

        for (j = i + 1; j < cables->len && ok; j++) {
            LlmdevCableSpec *y = &g_array_index(cables, LlmdevCableSpec, j);
            bool same = (llmdev_same_end(x->a, x->pa, y->a, y->pa) &&
                         llmdev_same_end(x->b, x->pb, y->b, y->pb)) ||
                        (llmdev_same_end(x->a, x->pa, y->b, y->pb) &&
                         llmdev_same_end(x->b, x->pb, y->a, y->pa));

            if (same) {
                continue;
            }
            if (llmdev_same_end(x->a, x->pa, y->a, y->pa) ||
                llmdev_same_end(x->a, x->pa, y->b, y->pb) ||
                llmdev_same_end(x->b, x->pb, y->a, y->pa) ||
                llmdev_same_end(x->b, x->pb, y->b, y->pb)) {
                error_setg(errp, "llmdev: cable %s.%u-%s.%u conflicts with "
                           "cable %s.%u-%s.%u (a port takes one cable)",
                           llmdev_cable_name(x->a), x->pa, x->b, x->pb,
                           llmdev_cable_name(y->a), y->pa, y->b, y->pb);
                ok = false;
            }
        }
    }
    for (i = 0; i < cables->len; i++) {
        g_free(g_array_index(cables, LlmdevCableSpec, i).a);
    }
    g_array_free(cables, true);
    return ok;
}

uint64_t llmdev_link_read(LlmdevLink *l, hwaddr off)
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

bool llmdev_link_write(LlmdevLink *l, hwaddr off, uint64_t val)
{
    switch (off) {
    case LLMDEV_LINK_CTRL:
        l->ctrl = val & LLMDEV_LINK_CTRL_ENABLE;
        llmdev_link_update(l);
        return true;
    case LLMDEV_LINK_FAULT:
        /* the burst sees the link as it was before this write */
        if (val & LLMDEV_LINK_FAULT_ERROR_BURST) {
            llmdev_link_burst(l, LLMDEV_LINK_FAULT_BURST_COUNT(val));
        }
        l->fault = val & LLMDEV_LINK_FAULT_FORCE_DOWN;
        llmdev_link_update(l);
        return true;
    case LLMDEV_LINK_DOWN_AFTER:
        qatomic_set(&l->down_after, val);
        return true;
    }
    return false;
}

/* Reset (spec 10.2): every port disabled and cleared; the peers see it. */
void llmdev_links_reset(LlmdevState *s)
{
    unsigned int p;

    for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
        LlmdevLink *l = &s->link[p];

        l->ctrl = 0;
        l->fault = 0;
        llmdev_link_update(l);  /* the peer sees the link go */
        qatomic_set(&l->down_count, 0);
        qemu_mutex_lock(&s->lock);
        l->tx_bytes = l->rx_bytes = 0;
        qemu_mutex_unlock(&s->lock);
        l->tx_errors = l->rx_errors = 0;
        qatomic_set(&l->down_after, 0);
        l->peer_serial = 0;
        l->peer_port_reg = ~0u;
    }
    s->link_event = 0;
}

/* The card goes away: its ports go down as if disabled. */
void llmdev_links_unplug(LlmdevState *s)
{
    unsigned int p;

    for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
        s->link[p].ctrl = 0;
        llmdev_link_update(&s->link[p]);
    }
}

void llmdev_links_init(LlmdevState *s)
{
    unsigned int p;

    for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
        LlmdevLink *l = &s->link[p];

        l->s = s;
        l->port = p;
        l->peer_port_reg = ~0u;
        l->train_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL,
                                      llmdev_link_trained, l);
    }
}

void llmdev_links_fini(LlmdevState *s)
{
    unsigned int p;

    for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
        timer_free(s->link[p].train_timer);
    }
}
