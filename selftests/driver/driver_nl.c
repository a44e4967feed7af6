// SPDX-License-Identifier: GPL-2.0
/*
 * The llmdev generic netlink family through libnl: see driver_nl.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "llmdev_netlink.h"
#include "driver_nl.h"

#define LD_NL_QUEUE	64	/* events parsed but not yet returned */
#define LD_NL_RCVTIMEO	5	/* seconds a request waits for its answer */

struct ld_nl {
	struct nl_sock *sk;
	int family;
	bool events;
	/* events socket: a datagram may hold several messages */
	struct ld_nl_msg queue[LD_NL_QUEUE];
	unsigned int head, len;
	int overrun;
};

static struct nla_policy ld_nl_policy[LLMDEV_A_MAX + 1] = {
	[LLMDEV_A_CARD]		= { .type = NLA_U32 },
	[LLMDEV_A_SERIAL]	= { .type = NLA_U64 },
	[LLMDEV_A_PORT]		= { .type = NLA_U32 },
	[LLMDEV_A_LINK_STATE]	= { .type = NLA_U32 },
	[LLMDEV_A_LINK_ENABLED]	= { .type = NLA_U8 },
	[LLMDEV_A_PEER_SERIAL]	= { .type = NLA_U64 },
	[LLMDEV_A_PEER_PORT]	= { .type = NLA_U32 },
	[LLMDEV_A_PEER_CARD]	= { .type = NLA_U32 },
	[LLMDEV_A_DOWN_COUNT]	= { .type = NLA_U32 },
	[LLMDEV_A_TX_BYTES]	= { .type = NLA_U64 },
	[LLMDEV_A_RX_BYTES]	= { .type = NLA_U64 },
	[LLMDEV_A_TX_ERRORS]	= { .type = NLA_U64 },
	[LLMDEV_A_RX_ERRORS]	= { .type = NLA_U64 },
	[LLMDEV_A_COLL_TAG]	= { .type = NLA_U64 },
	[LLMDEV_A_ERRNO]	= { .type = NLA_U32 },
};

/* A libnl error as an errno. */
static int ld_nl_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_PERM:
		return -EPERM;
	case NLE_AGAIN:
		return -ETIMEDOUT;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_NODEV:
		return -ENODEV;
	default:
		return -EIO;
	}
}

static int ld_nl_parse(struct nl_msg *msg, struct ld_nl_msg *out)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *gh = nlmsg_data(nlh);
	struct nlattr *tb[LLMDEV_A_MAX + 1];
	int ret;

	memset(out, 0, sizeof(*out));
	ret = genlmsg_parse(nlh, 0, tb, LLMDEV_A_MAX, ld_nl_policy);
	if (ret < 0)
		return ld_nl_errno(ret);
	switch (gh->cmd) {
	case LLMDEV_GENL_CMD_LINK_GET:
		out->cmd = LD_NL_LINK;
		break;
	case LLMDEV_GENL_CMD_LINK_EVENT:
		out->cmd = LD_NL_LINK_EVENT;
		break;
	case LLMDEV_GENL_CMD_LINK_ERROR:
		out->cmd = LD_NL_LINK_ERROR;
		break;
	case LLMDEV_GENL_CMD_COLL_ERROR:
		out->cmd = LD_NL_COLL_ERROR;
		break;
	default:
		out->cmd = LD_NL_OTHER;
		break;
	}
#define GET(attr, bit, field, type)					\
	do {								\
		if (tb[attr]) {						\
			out->field = nla_get_##type(tb[attr]);		\
			out->has |= bit;				\
		}							\
	} while (0)
	GET(LLMDEV_A_CARD, LD_NL_HAS_CARD, card, u32);
	GET(LLMDEV_A_SERIAL, LD_NL_HAS_SERIAL, serial, u64);
	GET(LLMDEV_A_PORT, LD_NL_HAS_PORT, port, u32);
	GET(LLMDEV_A_LINK_STATE, LD_NL_HAS_STATE, state, u32);
	GET(LLMDEV_A_LINK_ENABLED, LD_NL_HAS_ENABLED, enabled, u8);
	GET(LLMDEV_A_PEER_SERIAL, LD_NL_HAS_PEER_SERIAL, peer_serial, u64);
	GET(LLMDEV_A_PEER_PORT, LD_NL_HAS_PEER_PORT, peer_port, u32);
	GET(LLMDEV_A_PEER_CARD, LD_NL_HAS_PEER_CARD, peer_card, u32);
	GET(LLMDEV_A_DOWN_COUNT, LD_NL_HAS_DOWN_COUNT, down_count, u32);
	GET(LLMDEV_A_TX_BYTES, LD_NL_HAS_TX_BYTES, tx_bytes, u64);
	GET(LLMDEV_A_RX_BYTES, LD_NL_HAS_RX_BYTES, rx_bytes, u64);
	GET(LLMDEV_A_TX_ERRORS, LD_NL_HAS_TX_ERRORS, tx_errors, u64);
	GET(LLMDEV_A_RX_ERRORS, LD_NL_HAS_RX_ERRORS, rx_errors, u64);
	GET(LLMDEV_A_COLL_TAG, LD_NL_HAS_COLL_TAG, coll_tag, u64);
	GET(LLMDEV_A_ERRNO, LD_NL_HAS_ERRNO, err, u32);
#undef GET
	return 0;
}

int ld_nl_open(struct ld_nl **nlp, bool events)
{
	struct timeval tv = { .tv_sec = LD_NL_RCVTIMEO };
	struct ld_nl *nl;
	int ret, grp;

	*nlp = NULL;
	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->events = events;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		free(nl);
		return -ENOMEM;
	}
	ret = genl_connect(nl->sk);
	if (ret < 0)
		goto err;
	ret = genl_ctrl_resolve(nl->sk, LLMDEV_GENL_NAME);
	if (ret < 0)
		goto err;
	nl->family = ret;
	if (events) {
		grp = genl_ctrl_resolve_grp(nl->sk, LLMDEV_GENL_NAME,
					    LLMDEV_GENL_MCGRP_EVENTS);
		if (grp < 0) {
			ld_nl_close(nl);
			return grp == -NLE_OBJ_NOTFOUND ? -EPROTONOSUPPORT :
			       ld_nl_errno(grp);
		}
		ret = nl_socket_add_membership(nl->sk, grp);
		if (ret < 0)
			goto err;
		nl_socket_set_buffer_size(nl->sk, 4 << 20, 0);
		ret = nl_socket_set_nonblocking(nl->sk);
		if (ret < 0)
			goto err;
	} else {
		setsockopt(nl_socket_get_fd(nl->sk), SOL_SOCKET, SO_RCVTIMEO,
			   &tv, sizeof(tv));
	}
	*nlp = nl;
	return 0;
err:
	ld_nl_close(nl);
	return ld_nl_errno(ret);
}

void ld_nl_close(struct ld_nl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk);
	free(nl);
}

/* ---- requests ------------------------------------------------------------ */

struct ld_nl_req {
	int err;		/* > 0: waiting; else the result */
	struct ld_nl_msg *out;
	unsigned int max, n;
};

static int ld_nl_valid_cb(struct nl_msg *msg, void *arg)
{
	struct ld_nl_req *req = arg;

	if (req->n < req->max && ld_nl_parse(msg, &req->out[req->n]))
		return NL_OK;	/* unparsable: not counted */
	req->n++;
	return NL_OK;
}

static int ld_nl_err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct ld_nl_req *req = arg;

	(void)nla;
	req->err = e->error;
	return NL_STOP;
}

static int ld_nl_done_cb(struct nl_msg *msg, void *arg)
{
	struct ld_nl_req *req = arg;

	(void)msg;
	req->err = 0;
	return NL_STOP;
}

/* Send @cmd with the attributes given (card/port if not NULL, enable if >= 0). */
static int ld_nl_request(struct ld_nl *nl, uint8_t cmd, int flags,
			 const uint32_t *card, const uint32_t *port, int enable,
			 struct ld_nl_req *req)
{
	struct nl_msg *msg;
	struct nl_cb *cb;
	int ret;

	if (nl->events)
		return -EINVAL;
	msg = nlmsg_alloc();
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!msg || !cb) {
		nlmsg_free(msg);
		nl_cb_put(cb);
		return -ENOMEM;
	}
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, flags,
			 cmd, LLMDEV_GENL_VERSION) ||
	    (card && nla_put_u32(msg, LLMDEV_A_CARD, *card) < 0) ||
	    (port && nla_put_u32(msg, LLMDEV_A_PORT, *port) < 0) ||
	    (enable >= 0 && nla_put_u8(msg, LLMDEV_A_LINK_ENABLED, enable) < 0)) {
		ret = -ENOMEM;
		goto out;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, ld_nl_valid_cb, req);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, ld_nl_done_cb, req);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, ld_nl_done_cb, req);
	nl_cb_err(cb, NL_CB_CUSTOM, ld_nl_err_cb, req);
	req->err = 1;
	ret = nl_send_auto(nl->sk, msg);
	if (ret < 0) {
		ret = ld_nl_errno(ret);
		goto out;
	}
	while (req->err > 0) {
		ret = nl_recvmsgs(nl->sk, cb);
		if (ret < 0 && req->err > 0) {
			req->err = ld_nl_errno(ret);
			break;
		}
	}
	ret = req->err;
out:
	nlmsg_free(msg);
	nl_cb_put(cb);
	return ret;
}

int ld_nl_link_get(struct ld_nl *nl, uint32_t card, uint32_t port,
		   struct ld_nl_msg *out)
{
	struct ld_nl_req req = { .out = out, .max = 1 };
	int ret;

	ret = ld_nl_request(nl, LLMDEV_GENL_CMD_LINK_GET, NLM_F_ACK, &card, &port,
			    -1, &req);
	if (!ret && req.n != 1)
		ret = -EPROTO;
	return ret;
}

int ld_nl_link_dump(struct ld_nl *nl, struct ld_nl_msg *out, unsigned int max,
		    unsigned int *n)
{
	struct ld_nl_req req = { .out = out, .max = max };
	int ret;

	ret = ld_nl_request(nl, LLMDEV_GENL_CMD_LINK_GET, NLM_F_DUMP, NULL, NULL, -1,
			    &req);
	*n = req.n;
	return ret;
}

int ld_nl_link_set(struct ld_nl *nl, uint32_t card, uint32_t port, bool enable)
{
	struct ld_nl_req req = { .max = 0 };

	return ld_nl_request(nl, LLMDEV_GENL_CMD_LINK_SET, NLM_F_ACK, &card, &port,
			     enable, &req);
}

/* ---- events ---------------------------------------------------------------- */

static int ld_nl_event_cb(struct nl_msg *msg, void *arg)
{
	struct ld_nl *nl = arg;
	struct ld_nl_msg m;

	if (ld_nl_parse(msg, &m))
		return NL_OK;
	if (nl->len == LD_NL_QUEUE) {
		nl->overrun = 1;
		return NL_OK;
	}
	nl->queue[(nl->head + nl->len++) % LD_NL_QUEUE] = m;
	return NL_OK;
}

/* multicast messages have no sequence number of ours */
static int ld_nl_no_seq_check(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_OK;
}

/* Read what the socket holds now into the queue. */
static int ld_nl_pump(struct ld_nl *nl)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int ret;

	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, ld_nl_no_seq_check, NULL);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, ld_nl_event_cb, nl);
	ret = nl_recvmsgs(nl->sk, cb);
	nl_cb_put(cb);
	if (ret == -NLE_AGAIN)
		return 0;
	return ret < 0 ? ld_nl_errno(ret) : 0;
}

int ld_nl_next_event(struct ld_nl *nl, struct ld_nl_msg *out, int timeout_ms)
{
	struct pollfd p = { .fd = nl_socket_get_fd(nl->sk), .events = POLLIN };
	struct timespec t0, t;
	int ret, left = timeout_ms;

	if (!nl->events)
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!nl->len) {
		if (nl->overrun)
			return -ENOBUFS;
		ret = poll(&p, 1, left);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret > 0) {
			ret = ld_nl_pump(nl);
			if (ret)
				return ret;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 +
					  (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (!nl->len && left <= 0)
			return -ETIME;
	}
	*out = nl->queue[nl->head];
	nl->head = (nl->head + 1) % LD_NL_QUEUE;
	nl->len--;
	return 0;
}

void ld_nl_drain(struct ld_nl *nl)
{
	struct ld_nl_msg m;

	while (!ld_nl_next_event(nl, &m, 0))
		;
	nl->overrun = 0;
}
