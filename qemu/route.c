/*
 * QEMU model of the llmdev card: the shard routing table (spec 14).
 *
 * The card only stores the table: a staging copy the guest writes, and an
 * active copy that a COMMIT replaces all or nothing. Runs under the BQL.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "llmdev.h"
#include "trace.h"

#define LLMDEV_ROUTE_LEN    (LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE)

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
    trace_llmdev_route_commit(llmdev_id(s), n, s->route_status,
                              s->route_gen);
}

void llmdev_route_reset(LlmdevState *s)
{
    memset(s->route_stage, 0, sizeof(s->route_stage));
    memset(s->route_active, 0, sizeof(s->route_active));
    s->route_stage_num = 0;
    s->route_active_num = 0;
    s->route_gen = 0;
    s->route_status = 0;
}

/* An entry field: a 64-bit register when wide, else a 32-bit one. */
static uint8_t *llmdev_route_field(uint8_t (*table)[LLMDEV_ROUTE_ENTRY_SIZE],
                                   hwaddr o)
{
    return &table[o / LLMDEV_ROUTE_ENTRY_SIZE][o % LLMDEV_ROUTE_ENTRY_SIZE];
}

uint64_t llmdev_route_read(LlmdevState *s, hwaddr addr, bool wide)
{
    uint8_t *e = NULL;

    if (addr >= LLMDEV_REG_ROUTE_STAGE &&
        addr < LLMDEV_REG_ROUTE_STAGE + LLMDEV_ROUTE_LEN) {
        e = llmdev_route_field(s->route_stage,
                               addr - LLMDEV_REG_ROUTE_STAGE);
    } else if (addr >= LLMDEV_REG_ROUTE_ACTIVE &&
               addr < LLMDEV_REG_ROUTE_ACTIVE + LLMDEV_ROUTE_LEN) {
        e = llmdev_route_field(s->route_active,
                               addr - LLMDEV_REG_ROUTE_ACTIVE);
    }
    if (e) {
        return wide ? ldq_le_p(e) : ldl_le_p(e);
    }
    switch (addr) {
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

bool llmdev_route_write(LlmdevState *s, hwaddr addr, uint64_t val, bool wide)
{
    if (addr >= LLMDEV_REG_ROUTE_STAGE &&
        addr < LLMDEV_REG_ROUTE_STAGE + LLMDEV_ROUTE_LEN) {
        uint8_t *e = llmdev_route_field(s->route_stage,
                                        addr - LLMDEV_REG_ROUTE_STAGE);

        if (wide) {
            stq_le_p(e, val);
        } else {
            stl_le_p(e, val);
        }
        return true;
    }
    switch (addr) {
    case LLMDEV_REG_ROUTE_CTRL:
        if (val & LLMDEV_ROUTE_CTRL_COMMIT) {
            llmdev_route_commit(s);
        }
        return true;
    case LLMDEV_REG_ROUTE_STAGE_NUM:
        s->route_stage_num = val;
        return true;
    }
    return false;
}
