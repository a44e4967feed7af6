// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: the generic netlink family (uapi/llmdev_netlink.h): the state of
 * the peer links on request, and link and collective events multicast to
 * the "events" group.
 */
#include <linux/capability.h>
#include <linux/kernel.h>
#include <linux/netlink.h>
#include <net/genetlink.h>
#include <net/netlink.h>

#include "llmdev_drv.h"
#include "../uapi/llmdev_netlink.h"

enum llmdev_nl_mcgrp {
	LLMDEV_NL_MCGRP_EVENTS,
};

static struct genl_family llmdev_nl_family;

/*
 * A LINK message at its largest: CARD, PORT, LINK_STATE, PEER_PORT,
 * PEER_CARD, DOWN_COUNT; LINK_ENABLED; SERIAL, PEER_SERIAL, TX/RX_BYTES,
 * TX/RX_ERRORS.
 */
static size_t llmdev_nl_link_size(void)
{
	return nla_total_size(sizeof(u32)) * 6 +
	       nla_total_size(sizeof(u8)) +
	       nla_total_size_64bit(sizeof(u64)) * 6;
}

static int llmdev_nl_put_link(struct sk_buff *skb, struct llmdev_device *ldev,
			      unsigned int port,
			      const struct llmdev_link_info *li)
{
	if (nla_put_u32(skb, LLMDEV_A_CARD, ldev->minor) ||
	    nla_put_u64_64bit(skb, LLMDEV_A_SERIAL, ldev->serial, LLMDEV_A_PAD) ||
	    nla_put_u32(skb, LLMDEV_A_PORT, port) ||
	    nla_put_u32(skb, LLMDEV_A_LINK_STATE, li->state) ||
	    nla_put_u8(skb, LLMDEV_A_LINK_ENABLED,
		       !!(li->link_flags & LLMDEV_LINK_ENABLED)) ||
	    nla_put_u32(skb, LLMDEV_A_DOWN_COUNT, li->down_count) ||
	    nla_put_u64_64bit(skb, LLMDEV_A_TX_BYTES, li->tx_bytes, LLMDEV_A_PAD) ||
	    nla_put_u64_64bit(skb, LLMDEV_A_RX_BYTES, li->rx_bytes, LLMDEV_A_PAD) ||
	    nla_put_u64_64bit(skb, LLMDEV_A_TX_ERRORS, li->tx_errors,
			      LLMDEV_A_PAD) ||
	    nla_put_u64_64bit(skb, LLMDEV_A_RX_ERRORS, li->rx_errors,
			      LLMDEV_A_PAD))
		return -EMSGSIZE;
	if (li->state != LLMDEV_LINK_UP)
		return 0;
	if (nla_put_u64_64bit(skb, LLMDEV_A_PEER_SERIAL, li->peer_serial,
			      LLMDEV_A_PAD) ||
	    nla_put_u32(skb, LLMDEV_A_PEER_PORT, li->peer_port))
		return -EMSGSIZE;
	if (li->peer_minor != LLMDEV_NO_CARD &&
	    nla_put_u32(skb, LLMDEV_A_PEER_CARD, li->peer_minor))
		return -EMSGSIZE;
	return 0;
}

/*
 * Append a LINK message. @wait: wait if the card is being reset (not from
 * the event handler, which a reset waits for).
 * Return: 0, -EMSGSIZE, or the error of llmdev_link_get().
 */
static int llmdev_nl_fill_link(struct sk_buff *skb, struct llmdev_device *ldev,
			       unsigned int port, u32 portid, u32 seq,
			       int flags, u8 cmd, bool wait)
{
	struct llmdev_link_info li;
	void *hdr;
	int ret;

	ret = wait ? llmdev_link_get(ldev, port, &li) :
		     llmdev_link_get_now(ldev, port, &li);
	if (ret)
		return ret;
	hdr = genlmsg_put(skb, portid, seq, &llmdev_nl_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	ret = llmdev_nl_put_link(skb, ldev, port, &li);
	if (ret) {
		genlmsg_cancel(skb, hdr);
		return ret;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* The card and port a request names; the card with a reference held. */
static struct llmdev_device *llmdev_nl_card_port(struct genl_info *info,
						 unsigned int *port)
{
	struct llmdev_device *ldev;
	u32 minor;

	if (GENL_REQ_ATTR_CHECK(info, LLMDEV_A_CARD) ||
	    GENL_REQ_ATTR_CHECK(info, LLMDEV_A_PORT)) {
		GENL_SET_ERR_MSG(info, "CARD and PORT are required");
		return ERR_PTR(-EINVAL);
	}
	minor = nla_get_u32(info->attrs[LLMDEV_A_CARD]);
	*port = nla_get_u32(info->attrs[LLMDEV_A_PORT]);	/* policy: in range */

	ldev = minor <= INT_MAX ? llmdev_next_device(minor) : NULL;
	if (ldev && ldev->minor != minor) {
		llmdev_put(ldev);
		ldev = NULL;
	}
	if (!ldev) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[LLMDEV_A_CARD],
				    "no such card");
		return ERR_PTR(-ENODEV);
	}
	return ldev;
}

static int llmdev_nl_link_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct llmdev_device *ldev;
	struct sk_buff *msg;
	unsigned int port;
	int ret;

	ldev = llmdev_nl_card_port(info, &port);
	if (IS_ERR(ldev))
		return PTR_ERR(ldev);
	msg = genlmsg_new(llmdev_nl_link_size(), GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto out_put;
	}
	ret = llmdev_nl_fill_link(msg, ldev, port, info->snd_portid,
				  info->snd_seq, 0, LLMDEV_GENL_CMD_LINK_GET,
				  true);
	if (ret) {
		nlmsg_free(msg);
		goto out_put;
	}
	ret = genlmsg_reply(msg, info);
out_put:
	llmdev_put(ldev);
	return ret;
}

/* Every port of every card; cb->args[0] is the next card, [1] its port. */
static int llmdev_nl_link_get_dumpit(struct sk_buff *skb,
				     struct netlink_callback *cb)
{
	struct llmdev_device *ldev;
	int minor = cb->args[0];
	unsigned int port = cb->args[1];
	int ret = 0;

	while ((ldev = llmdev_next_device(minor))) {
		if (ldev->minor != minor)
			port = 0;
		minor = ldev->minor;
		for (; port < LLMDEV_NUM_LINK_PORTS; port++) {
			ret = llmdev_nl_fill_link(skb, ldev, port,
						  NETLINK_CB(cb->skb).portid,
						  cb->nlh->nlmsg_seq,
						  NLM_F_MULTI,
						  LLMDEV_GENL_CMD_LINK_GET, true);
			if (ret)
				break;
		}
		llmdev_put(ldev);
		/* a removed or dead card is skipped */
		if (ret && ret != -ENODEV && ret != -EIO)
			break;
		ret = 0;
		minor++;
		port = 0;
	}
	cb->args[0] = minor;
	cb->args[1] = port;
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;	/* full: continue in the next skb */
	return ret;
}

static int llmdev_nl_link_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct llmdev_device *ldev;
	unsigned int port;
	bool enable;
	int ret;

	/* GENL_ADMIN_PERM checked CAP_NET_ADMIN; links need CAP_SYS_ADMIN */
	if (!netlink_capable(skb, CAP_SYS_ADMIN))
		return -EPERM;
	if (GENL_REQ_ATTR_CHECK(info, LLMDEV_A_LINK_ENABLED)) {
		GENL_SET_ERR_MSG(info, "LINK_ENABLED is required");
		return -EINVAL;
	}
	enable = nla_get_u8(info->attrs[LLMDEV_A_LINK_ENABLED]);
	ldev = llmdev_nl_card_port(info, &port);
	if (IS_ERR(ldev))
		return PTR_ERR(ldev);
	ret = llmdev_link_set(ldev, port, enable);
	llmdev_put(ldev);
	return ret;
}

static const struct nla_policy llmdev_nl_policy[LLMDEV_A_MAX + 1] = {
	[LLMDEV_A_CARD] = { .type = NLA_U32 },
	[LLMDEV_A_SERIAL] = { .type = NLA_U64 },
	[LLMDEV_A_PORT] = NLA_POLICY_MAX(NLA_U32, LLMDEV_NUM_LINK_PORTS - 1),
	[LLMDEV_A_LINK_STATE] = { .type = NLA_U32 },
	[LLMDEV_A_LINK_ENABLED] = NLA_POLICY_MAX(NLA_U8, 1),
	[LLMDEV_A_PEER_SERIAL] = { .type = NLA_U64 },
	[LLMDEV_A_PEER_PORT] = { .type = NLA_U32 },
	[LLMDEV_A_PEER_CARD] = { .type = NLA_U32 },
	[LLMDEV_A_DOWN_COUNT] = { .type = NLA_U32 },
	[LLMDEV_A_TX_BYTES] = { .type = NLA_U64 },
	[LLMDEV_A_RX_BYTES] = { .type = NLA_U64 },
	[LLMDEV_A_TX_ERRORS] = { .type = NLA_U64 },
	[LLMDEV_A_RX_ERRORS] = { .type = NLA_U64 },
	[LLMDEV_A_COLL_TAG] = { .type = NLA_U64 },
	[LLMDEV_A_ERRNO] = { .type = NLA_U32 },
	[LLMDEV_A_RESET_COUNT] = { .type = NLA_U32 },
	[LLMDEV_A_RESET_REASON] = { .type = NLA_NUL_STRING },
};

static const struct genl_small_ops llmdev_nl_ops[] = {
	{
		.cmd = LLMDEV_GENL_CMD_LINK_GET,
		.doit = llmdev_nl_link_get_doit,
		.dumpit = llmdev_nl_link_get_dumpit,
	},
	{
		.cmd = LLMDEV_GENL_CMD_LINK_SET,
		.flags = GENL_ADMIN_PERM,
		.doit = llmdev_nl_link_set_doit,
	},
};

static const struct genl_multicast_group llmdev_nl_mcgrps[] = {
	[LLMDEV_NL_MCGRP_EVENTS] = { .name = LLMDEV_GENL_MCGRP_EVENTS },
};

static struct genl_family llmdev_nl_family __ro_after_init = {
	.name = LLMDEV_GENL_NAME,
	.version = LLMDEV_GENL_VERSION,
	.maxattr = LLMDEV_A_MAX,
	.policy = llmdev_nl_policy,
	.netnsok = false,
	/*
	 * Without genl_mutex: the handlers hold only a card reference and
	 * the card's own locks, and wait out a reset (up to 30 s of AER
	 * recovery) that must not hold up every other generic netlink family.
	 */
	.parallel_ops = true,
	.module = THIS_MODULE,
	.small_ops = llmdev_nl_ops,
	.n_small_ops = ARRAY_SIZE(llmdev_nl_ops),
	.mcgrps = llmdev_nl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(llmdev_nl_mcgrps),
};

static void llmdev_nl_multicast(struct llmdev_device *ldev,
				struct sk_buff *skb)
{
	int ret;

	ret = genlmsg_multicast(&llmdev_nl_family, skb, 0,
				LLMDEV_NL_MCGRP_EVENTS, GFP_KERNEL);
	if (ret && ret != -ESRCH)	/* -ESRCH: nobody listens */
		dev_dbg(&ldev->dev, "netlink event lost: %d\n", ret);
}

static bool llmdev_nl_listened(void)
{
	return genl_has_listeners(&llmdev_nl_family, &init_net,
				  LLMDEV_NL_MCGRP_EVENTS);
}

/**
 * llmdev_nl_link_event() - multicast the state of a port
 * @ldev: the card
 * @port: the port
 * @cmd: LLMDEV_GENL_CMD_LINK_EVENT or LLMDEV_GENL_CMD_LINK_ERROR
 *
 * Context: process context.
 */
void llmdev_nl_link_event(struct llmdev_device *ldev, unsigned int port,
			  u8 cmd)
{
	struct sk_buff *skb;

	if (!llmdev_nl_listened())
		return;
	skb = genlmsg_new(llmdev_nl_link_size(), GFP_KERNEL);
	if (!skb)
		return;
	if (llmdev_nl_fill_link(skb, ldev, port, 0, 0, 0, cmd, false)) {
		nlmsg_free(skb);
		return;
	}
	llmdev_nl_multicast(ldev, skb);
}

/**
 * llmdev_nl_coll_error() - multicast the failure of a collective
 * @ldev: the card on which it failed
 * @tag: the collective's tag
 * @err: the errno it failed with (its sign is ignored)
 *
 * Context: process context.
 */
void llmdev_nl_coll_error(struct llmdev_device *ldev, u64 tag, int err)
{
	struct sk_buff *skb;
	void *hdr;

	if (!llmdev_nl_listened())
		return;
	skb = genlmsg_new(nla_total_size(sizeof(u32)) * 2 +
			  nla_total_size_64bit(sizeof(u64)) * 2, GFP_KERNEL);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &llmdev_nl_family, 0,
			  LLMDEV_GENL_CMD_COLL_ERROR);
	if (!hdr ||
	    nla_put_u32(skb, LLMDEV_A_CARD, ldev->minor) ||
	    nla_put_u64_64bit(skb, LLMDEV_A_SERIAL, ldev->serial, LLMDEV_A_PAD) ||
	    nla_put_u64_64bit(skb, LLMDEV_A_COLL_TAG, tag, LLMDEV_A_PAD) ||
	    nla_put_u32(skb, LLMDEV_A_ERRNO, abs(err))) {
		nlmsg_free(skb);
		return;
	}
	genlmsg_end(skb, hdr);
	llmdev_nl_multicast(ldev, skb);
}

/**
 * llmdev_nl_reset_event() - multicast the start or end of a card's reset
 * @ldev: the card
 * @cmd: LLMDEV_GENL_CMD_RESET_START, _DONE or _FAILED
 * @err: for _FAILED, the errno calls now fail with (positive); else 0
 *
 * Context: process context.
 */
void llmdev_nl_reset_event(struct llmdev_device *ldev, u8 cmd, int err)
{
	const char *reason = ldev->reset_reason ?: "";
	struct sk_buff *skb;
	void *hdr;

	if (!llmdev_nl_listened())
		return;
	skb = genlmsg_new(nla_total_size(sizeof(u32)) * 3 +
			  nla_total_size_64bit(sizeof(u64)) +
			  nla_total_size(strlen(reason) + 1), GFP_KERNEL);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &llmdev_nl_family, 0, cmd);
	if (!hdr ||
	    nla_put_u32(skb, LLMDEV_A_CARD, ldev->minor) ||
	    nla_put_u64_64bit(skb, LLMDEV_A_SERIAL, ldev->serial, LLMDEV_A_PAD) ||
	    nla_put_u32(skb, LLMDEV_A_RESET_COUNT, READ_ONCE(ldev->reset_count)) ||
	    nla_put_string(skb, LLMDEV_A_RESET_REASON, reason) ||
	    (err && nla_put_u32(skb, LLMDEV_A_ERRNO, abs(err)))) {
		nlmsg_free(skb);
		return;
	}
	genlmsg_end(skb, hdr);
	llmdev_nl_multicast(ldev, skb);
}

int llmdev_netlink_init(void)
{
	return genl_register_family(&llmdev_nl_family);
}

void llmdev_netlink_fini(void)
{
	genl_unregister_family(&llmdev_nl_family);
}
