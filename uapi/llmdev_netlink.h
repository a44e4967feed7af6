/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * llmdev: generic netlink family for peer links and collective events.
 *
 * Family LLMDEV_GENL_NAME, version LLMDEV_GENL_VERSION. Cards are named by
 * LLMDEV_A_CARD, the N of /dev/llmdevN.
 *
 * Requests:
 *   LLMDEV_GENL_CMD_LINK_GET    do: CARD and PORT -> one LINK message
 *                               dump: every port of every card
 *   LLMDEV_GENL_CMD_LINK_SET    CARD, PORT, LINK_ENABLED (u8); needs
 *                               CAP_NET_ADMIN (GENL_ADMIN_PERM) and
 *                               CAP_SYS_ADMIN, else -EPERM
 * A LINK message carries CARD, SERIAL, PORT, LINK_STATE (enum
 * llmdev_link_state), LINK_ENABLED, PEER_SERIAL,
 * PEER_PORT and PEER_CARD (when the link is up; PEER_CARD only for a card
 * of this host), DOWN_COUNT, TX_BYTES, RX_BYTES, TX_ERRORS and RX_ERRORS.
 *
 * Multicast group LLMDEV_GENL_MCGRP_EVENTS:
 *   LLMDEV_GENL_CMD_LINK_EVENT  a port changed state: a LINK message
 *   LLMDEV_GENL_CMD_LINK_ERROR  a port counted errors: a LINK message
 *   LLMDEV_GENL_CMD_COLL_ERROR  a collective failed on a card: CARD, SERIAL,
 *                               COLL_TAG, ERRNO (positive errno, as for
 *                               the fence status)
 *   LLMDEV_GENL_CMD_RESET_START a card's reset began (LLMDEV_RESET, an FLR
 *                               through sysfs, or PCIe error recovery):
 *                               CARD, SERIAL, RESET_COUNT (resets it came
 *                               back from so far), RESET_REASON (string)
 *   LLMDEV_GENL_CMD_RESET_DONE  the card is back: the same attributes, with
 *                               RESET_COUNT counting this reset
 *   LLMDEV_GENL_CMD_RESET_FAILED the card did not come back and is dead
 *                               (every call fails with EIO until a reset
 *                               succeeds): the same, and ERRNO (EIO)
 *
 * Errors: -EINVAL a missing attribute; -ERANGE PORT not below the card's
 * num_link_ports (4) or LINK_ENABLED not 0 or 1 (the netlink core's policy
 * check, with an extended-ack message); -ENODEV no such card.
 */
#ifndef _UAPI_LLMDEV_NETLINK_H
#define _UAPI_LLMDEV_NETLINK_H

#define LLMDEV_GENL_NAME		"llmdev"
#define LLMDEV_GENL_VERSION		1
#define LLMDEV_GENL_MCGRP_EVENTS	"events"

enum llmdev_genl_cmd {
	LLMDEV_GENL_CMD_UNSPEC,
	LLMDEV_GENL_CMD_LINK_GET,
	LLMDEV_GENL_CMD_LINK_SET,
	LLMDEV_GENL_CMD_LINK_EVENT,
	LLMDEV_GENL_CMD_LINK_ERROR,
	LLMDEV_GENL_CMD_COLL_ERROR,
	LLMDEV_GENL_CMD_RESET_START,
	LLMDEV_GENL_CMD_RESET_DONE,
	LLMDEV_GENL_CMD_RESET_FAILED,

	__LLMDEV_GENL_CMD_MAX,
	LLMDEV_GENL_CMD_MAX = __LLMDEV_GENL_CMD_MAX - 1
};

enum llmdev_genl_attr {
	LLMDEV_A_UNSPEC,
	LLMDEV_A_PAD,
	LLMDEV_A_CARD,		/* u32 */
	LLMDEV_A_SERIAL,	/* u64 */
	LLMDEV_A_PORT,		/* u32 */
	LLMDEV_A_LINK_STATE,	/* u32: enum llmdev_link_state */
	LLMDEV_A_LINK_ENABLED,	/* u8 */
	LLMDEV_A_PEER_SERIAL,	/* u64 */
	LLMDEV_A_PEER_PORT,	/* u32 */
	LLMDEV_A_PEER_CARD,	/* u32 */
	LLMDEV_A_DOWN_COUNT,	/* u32 */
	LLMDEV_A_TX_BYTES,	/* u64 */
	LLMDEV_A_RX_BYTES,	/* u64 */
	LLMDEV_A_TX_ERRORS,	/* u64 */
	LLMDEV_A_RX_ERRORS,	/* u64 */
	LLMDEV_A_COLL_TAG,	/* u64 */
	LLMDEV_A_ERRNO,		/* u32 */
	LLMDEV_A_RESET_COUNT,	/* u32 */
	LLMDEV_A_RESET_REASON,	/* string */

	__LLMDEV_A_MAX,
	LLMDEV_A_MAX = __LLMDEV_A_MAX - 1
};

#endif /* _UAPI_LLMDEV_NETLINK_H */
