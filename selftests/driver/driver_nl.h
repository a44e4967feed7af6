/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The llmdev generic netlink family, for the driver selftests: requests
 * (LINK_GET, LINK_SET) and the "events" multicast group, through libnl.
 *
 * Its own compilation unit, so that only it sees libnl's headers; messages
 * come back parsed into struct ld_nl_msg (command and attributes as
 * LD_NL_*), states as enum llmdev_link_state.
 *
 * Every function returns 0 or a negative errno (the kernel's, for a
 * request it refused), never exits, and is safe in forked children.
 */
#ifndef LLMDEV_DRIVER_NL_H
#define LLMDEV_DRIVER_NL_H

#include <stdbool.h>
#include <stdint.h>

/* message kinds: the family's commands */
enum ld_nl_cmd {
	LD_NL_OTHER,
	LD_NL_LINK,		/* LINK_GET reply */
	LD_NL_LINK_EVENT,
	LD_NL_LINK_ERROR,
	LD_NL_COLL_ERROR,
};

/* struct ld_nl_msg.has: which attributes the message carried */
#define LD_NL_HAS_CARD		(1u << 0)
#define LD_NL_HAS_SERIAL	(1u << 1)
#define LD_NL_HAS_PORT		(1u << 2)
#define LD_NL_HAS_STATE		(1u << 3)
#define LD_NL_HAS_ENABLED	(1u << 4)
#define LD_NL_HAS_PEER_SERIAL	(1u << 5)
#define LD_NL_HAS_PEER_PORT	(1u << 6)
#define LD_NL_HAS_PEER_CARD	(1u << 7)
#define LD_NL_HAS_DOWN_COUNT	(1u << 8)
#define LD_NL_HAS_TX_BYTES	(1u << 9)
#define LD_NL_HAS_RX_BYTES	(1u << 10)
#define LD_NL_HAS_TX_ERRORS	(1u << 11)
#define LD_NL_HAS_RX_ERRORS	(1u << 12)
#define LD_NL_HAS_COLL_TAG	(1u << 13)
#define LD_NL_HAS_ERRNO		(1u << 14)

struct ld_nl_msg {
	enum ld_nl_cmd cmd;
	uint32_t has;		/* LD_NL_HAS_* */
	uint32_t card, port, state, peer_port, peer_card, down_count, err;
	uint8_t enabled;
	uint64_t serial, peer_serial, tx_bytes, rx_bytes, tx_errors, rx_errors;
	uint64_t coll_tag;
};

struct ld_nl;

/*
 * Connect and resolve the family (and, with @events, join its "events"
 * group; the socket then only receives). -ENOENT: no family "llmdev" (the
 * driver is not loaded, or has no netlink); -EPROTONOSUPPORT no group.
 */
int ld_nl_open(struct ld_nl **nlp, bool events);
void ld_nl_close(struct ld_nl *nl);

/* LINK_GET do for one port */
int ld_nl_link_get(struct ld_nl *nl, uint32_t card, uint32_t port,
		   struct ld_nl_msg *out);
/* LINK_GET dump: up to @max messages into @out, their number in *@n */
int ld_nl_link_dump(struct ld_nl *nl, struct ld_nl_msg *out, unsigned int max,
		    unsigned int *n);
/* LINK_SET: the kernel's answer (0, -EPERM, -EINVAL, -ENODEV) */
int ld_nl_link_set(struct ld_nl *nl, uint32_t card, uint32_t port,
		   bool enable);

/* The next event of an events socket, within @timeout_ms: -ETIME if none. */
int ld_nl_next_event(struct ld_nl *nl, struct ld_nl_msg *out, int timeout_ms);
/* Drop the events received so far. */
void ld_nl_drain(struct ld_nl *nl);

#endif /* LLMDEV_DRIVER_NL_H */
