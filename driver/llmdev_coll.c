// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: collective groups, AllReduce and broadcast across cards.
 *
 * A group is an ordered set of cards whose peer links form a ring. A
 * collective is programmed into the collective engine of every member;
 * the engines find each other over the links and move the data themselves
 * (docs/hardware.md, "Collective engine"). Each member reports the end
 * with an event interrupt; the fence is signalled once all have, with the
 * first error.
 *
 * Collectives run one at a time, system-wide, in submission order. An
 * engine serves one collective at a time, and one global order is what
 * keeps two groups that share cards from each waiting on the other. When
 * a member fails, the others are aborted, and a watchdog aborts a
 * collective that has not finished after coll_timeout_ms, so a fence is
 * always signalled in bounded time.
 */
#include <linux/file.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>

#include "llmdev_drv.h"

unsigned int llmdev_coll_timeout_ms = 10000;
module_param_named(coll_timeout_ms, llmdev_coll_timeout_ms, uint, 0644);
MODULE_PARM_DESC(coll_timeout_ms, "A collective that has not finished after this long is aborted on every member and fails with -ETIMEDOUT (default 10000)");

/**
 * struct llmdev_group - cards in rank order and the ports of their ring
 * @ref: held by the file's group table and by every collective on it
 * @nranks: number of cards
 * @tag: system-wide id, the high half of the engines' TAG register
 * @seq: collectives submitted on the group (under llmdev_coll_lock)
 * @card: the members, referenced
 * @tx_port: port of rank r that leads to rank r + 1
 * @rx_port: port of rank r that rank r - 1 sends to
 */
struct llmdev_group {
	struct kref ref;
	unsigned int nranks;
	u32 tag;
	u32 seq;
	struct llmdev_device *card[LLMDEV_MAX_RANKS];
	u8 tx_port[LLMDEV_MAX_RANKS];
	u8 rx_port[LLMDEV_MAX_RANKS];
};

/**
 * struct llmdev_coll_rank - one member's part of a collective
 * @src: input region (busy while the collective lives), NULL if unused
 * @dst: output region (busy while the collective lives)
 * @src_addr: HBM offset of the input
 * @dst_addr: HBM offset of the output
 * @status: 0 or the member's error
 * @done: the member has reported, or will never report
 */
struct llmdev_coll_rank {
	struct llmdev_region *src;
	struct llmdev_region *dst;
	u64 src_addr;
	u64 dst_addr;
	int status;
	bool done;
};

/**
 * struct llmdev_coll_owner - the queued collectives of one user
 * @node: in llmdev_coll_owners, whose order is the turns the users take
 * @jobs: the user's collectives, in submission order (llmdev_coll_job.node)
 * @uid: the effective uid that opened the files they were submitted on
 *
 * One collective runs at a time, on all cards. So that one user's queue
 * does not hold up another's, the users with collectives queued take
 * turns, one collective each; a user's own run in submission order. The
 * user is the file's opener, not the submitter: a file's collectives (a
 * group's among them) then never pass one another, whoever submits them.
 */
struct llmdev_coll_owner {
	struct list_head node;
	struct list_head jobs;
	kuid_t uid;
};

/**
 * struct llmdev_coll_job - one collective
 * @fence: its fence, in the submitter's file
 * @node: in its owner's jobs while it waits
 * @owner: whose queue it waits in; NULL before it is queued
 * @spare: allocated at submission, for an owner not queued yet
 * @uid: the owner's uid (llmdev_file.uid of the submitting file)
 * @group: its group (referenced)
 * @tag: value of the engines' TAG register
 * @op: value of the engines' COLL_OP register
 * @count: elements
 * @pending: members that have not reported
 * @deadline: jiffies after which the watchdog aborts it
 * @rank: the members' parts
 */
struct llmdev_coll_job {
	struct llmdev_fence fence;
	struct list_head node;
	struct llmdev_coll_owner *owner;
	struct llmdev_coll_owner *spare;
	kuid_t uid;
	struct llmdev_group *group;
	u64 tag;
	u32 op;
	u64 count;
	unsigned int pending;
	unsigned long deadline;
	struct llmdev_coll_rank rank[];
};

static void llmdev_coll_watchdog_fn(struct work_struct *work);

static DEFINE_MUTEX(llmdev_coll_lock);	/* protects the queues and the active job */
static LIST_HEAD(llmdev_coll_owners);	/* users with jobs queued, in turn order */
static struct llmdev_coll_job *llmdev_coll_active;
static DECLARE_DELAYED_WORK(llmdev_coll_watchdog, llmdev_coll_watchdog_fn);
static atomic_t llmdev_group_tags = ATOMIC_INIT(0);

/* ---- groups ------------------------------------------------------------- */

static void llmdev_group_release(struct kref *ref)
{
	struct llmdev_group *g = container_of(ref, struct llmdev_group, ref);
	unsigned int r;

	for (r = 0; r < g->nranks; r++)
		if (g->card[r])
			llmdev_put(g->card[r]);
	kfree(g);
}

static void llmdev_group_put(struct llmdev_group *g)
{
	kref_put(&g->ref, llmdev_group_release);
}

/* Find an up link from @from to @to. Return: 0 and the ports, or -ENOLINK. */
static int llmdev_find_link(struct llmdev_device *from, struct llmdev_device *to,
			    u8 *tx_port, u8 *rx_port)
{
	struct llmdev_link_info info;
	unsigned int p;

	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		if (llmdev_link_get(from, p, &info))
			continue;
		if (info.state == LLMDEV_LINK_UP && info.peer_serial == to->serial &&
		    info.peer_port < LLMDEV_NUM_LINK_PORTS) {
			*tx_port = p;
			*rx_port = info.peer_port;
			return 0;
		}
	}
	return -ENOLINK;
}

static int llmdev_group_fill(struct llmdev_group *g, const s32 *fds)
{
	unsigned int r, q;

	for (r = 0; r < g->nranks; r++) {
		struct llmdev_file *member;
		struct file *filp;

		member = llmdev_file_get(fds[r], &filp);
		if (IS_ERR(member))
			return PTR_ERR(member);
		g->card[r] = member->ldev;
		llmdev_get(g->card[r]);
		fput(filp);
		for (q = 0; q < r; q++)
			if (g->card[q] == g->card[r])
				return -EINVAL;
	}
	if (g->nranks == 1)
		return 0;
	for (r = 0; r < g->nranks; r++) {
		unsigned int next = (r + 1) % g->nranks;
		int ret;

		ret = llmdev_find_link(g->card[r], g->card[next], &g->tx_port[r],
				       &g->rx_port[next]);
		if (ret)
			return ret;
	}
	return 0;
}

/* The reply is written: the group becomes reachable by its id. */
static void llmdev_group_create_commit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_group_create *c = ucmd->cmd;

	/* the slot is reserved: storing into it allocates nothing */
	WARN_ON(xa_is_err(xa_store(&ucmd->lf->groups, c->group, ucmd->obj,
				   GFP_KERNEL)));
}

static void llmdev_group_create_abort(struct llmdev_ucmd *ucmd)
{
	struct llmdev_group_create *c = ucmd->cmd;

	xa_erase(&ucmd->lf->groups, c->group);
	llmdev_group_put(ucmd->obj);
}

int llmdev_group_ioctl_create(struct llmdev_ucmd *ucmd)
{
	struct llmdev_group_create *c = ucmd->cmd;
	struct llmdev_group *g;
	s32 *fds;
	u32 id;
	int ret;

	if (c->flags || !c->nranks || c->nranks > LLMDEV_MAX_RANKS)
		return -EINVAL;
	fds = memdup_user(u64_to_user_ptr(c->fds), c->nranks * sizeof(*fds));
	if (IS_ERR(fds))
		return PTR_ERR(fds);
	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g) {
		kfree(fds);
		return -ENOMEM;
	}
	kref_init(&g->ref);
	g->nranks = c->nranks;
	g->tag = atomic_inc_return(&llmdev_group_tags);
	ret = llmdev_group_fill(g, fds);
	kfree(fds);
	if (ret)
		goto err_put;

	/* reserve an id; it leads nowhere until the commit */
	ret = xa_alloc(&ucmd->lf->groups, &id, NULL,
		       XA_LIMIT(1, LLMDEV_MAX_GROUPS), GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY)
			ret = -EMFILE;
		goto err_put;
	}
	c->group = id;
	ucmd->obj = g;
	ucmd->commit = llmdev_group_create_commit;
	ucmd->abort = llmdev_group_create_abort;
	return 0;

err_put:
	llmdev_group_put(g);
	return ret;
}

int llmdev_group_ioctl_destroy(struct llmdev_ucmd *ucmd)
{
	struct llmdev_group_destroy *d = ucmd->cmd;
	struct xarray *groups = &ucmd->lf->groups;
	struct llmdev_group *g;

	if (d->flags || d->__reserved)
		return -EINVAL;
	/* a reserved id (a create not yet replied) is no group: leave it */
	xa_lock(groups);
	g = xa_load(groups, d->group);
	if (g)
		__xa_erase(groups, d->group);
	xa_unlock(groups);
	if (!g)
		return -ENOENT;
	llmdev_group_put(g);
	return 0;
}

void llmdev_coll_release_file(struct llmdev_file *lf)
{
	struct llmdev_group *g;
	unsigned long id;

	xa_for_each(&lf->groups, id, g) {
		xa_erase(&lf->groups, id);
		llmdev_group_put(g);
	}
	xa_destroy(&lf->groups);
}

/* ---- the engine ---------------------------------------------------------- */

static int llmdev_coll_errno(u32 code)
{
	switch (code) {
	case LLMDEV_COLL_ERR_NONE:
		return 0;
	case LLMDEV_COLL_ERR_LINK_DOWN:
		return -ENOLINK;
	case LLMDEV_COLL_ERR_TOPOLOGY:
		return -EHOSTUNREACH;
	case LLMDEV_COLL_ERR_TIMEOUT:
		return -ETIMEDOUT;
	case LLMDEV_COLL_ERR_ABORTED:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

static void llmdev_coll_job_release(struct llmdev_coll_job *job)
{
	struct llmdev_group *g = job->group;
	unsigned int r;

	for (r = 0; r < g->nranks; r++) {
		struct llmdev_coll_rank *rk = &job->rank[r];

		if (rk->src)
			llmdev_region_put(g->card[r], rk->src);
		if (rk->dst)
			llmdev_region_put(g->card[r], rk->dst);
		rk->src = NULL;
		rk->dst = NULL;
	}
}

static void llmdev_coll_free_fence(struct llmdev_fence *f)
{
	struct llmdev_coll_job *job = container_of(f, struct llmdev_coll_job,
						   fence);

	llmdev_group_put(job->group);
	kfree(job);
}

static int llmdev_coll_status(struct llmdev_coll_job *job)
{
	unsigned int r;
	int status = 0;

	/* the first member's own error, not the aborts it caused */
	for (r = 0; r < job->group->nranks; r++) {
		int s = job->rank[r].status;

		if (s && (!status || status == -ECANCELED))
			status = s;
	}
	return status;
}

/* Record that rank @r is finished; a failure aborts the others. */
static void llmdev_coll_rank_done(struct llmdev_coll_job *job, unsigned int r,
				  int status)
{
	struct llmdev_group *g = job->group;
	unsigned int q;
	int idx;

	job->rank[r].done = true;
	job->rank[r].status = status;
	job->pending--;
	if (!status)
		return;
	llmdev_nl_coll_error(g->card[r], job->tag, -status);
	for (q = 0; q < g->nranks; q++) {
		if (job->rank[q].done || !llmdev_enter(g->card[q], &idx))
			continue;
		llmdev_wr32(g->card[q], LLMDEV_REG_COLL_CTRL,
			    LLMDEV_COLL_CTRL_ABORT);
		llmdev_exit(g->card[q], idx);
	}
}

static void llmdev_coll_start_next(void);

/* Signal the active job. Called under the lock. */
static void llmdev_coll_complete(struct llmdev_coll_job *job)
{
	int status = llmdev_coll_status(job);

	llmdev_coll_active = NULL;
	llmdev_coll_job_release(job);
	/* the waiter may free the job from here on */
	llmdev_fence_signal(&job->fence, status);
}

/* Signal the active job and start the next one. Called under the lock. */
static void llmdev_coll_finish(struct llmdev_coll_job *job)
{
	llmdev_coll_complete(job);
	llmdev_coll_start_next();
}

/*
 * Program and start every member. Called under the lock. A job none of
 * whose members could start is completed here, and the caller
 * (llmdev_coll_start_next()) goes on with the next: not by recursion, so
 * that a long queue of such jobs cannot overflow the stack.
 */
static void llmdev_coll_start(struct llmdev_coll_job *job)
{
	struct llmdev_group *g = job->group;
	unsigned long timeout = msecs_to_jiffies(llmdev_coll_timeout_ms);
	unsigned int r;
	int idx;

	llmdev_coll_active = job;
	job->pending = g->nranks;
	job->deadline = jiffies + timeout;
	/* a member already gone or dead: start nobody */
	for (r = 0; r < g->nranks; r++) {
		int gone = llmdev_gone(g->card[r]);

		if (gone) {
			for (r = 0; r < g->nranks; r++) {
				job->rank[r].done = true;
				job->rank[r].status = gone;
			}
			job->pending = 0;
			break;
		}
	}
	for (r = 0; r < g->nranks; r++) {
		struct llmdev_device *ldev = g->card[r];
		struct llmdev_coll_rank *rk = &job->rank[r];

		if (rk->done)
			continue;
		if (!llmdev_enter(ldev, &idx)) {
			llmdev_coll_rank_done(job, r, llmdev_gone(ldev) ?: -EIO);
			continue;
		}
		llmdev_wr64(ldev, LLMDEV_REG_COLL_TAG, job->tag);
		llmdev_wr32(ldev, LLMDEV_REG_COLL_OP, job->op);
		llmdev_wr32(ldev, LLMDEV_REG_COLL_RANK, r | g->nranks << 8);
		llmdev_wr32(ldev, LLMDEV_REG_COLL_PORTS,
			    g->tx_port[r] | g->rx_port[r] << 4);
		llmdev_wr32(ldev, LLMDEV_REG_COLL_CHUNK, 0);
		llmdev_wr64(ldev, LLMDEV_REG_COLL_COUNT, job->count);
		llmdev_wr64(ldev, LLMDEV_REG_COLL_SRC, rk->src_addr);
		llmdev_wr64(ldev, LLMDEV_REG_COLL_DST, rk->dst_addr);
		llmdev_wr32(ldev, LLMDEV_REG_COLL_TIMEOUT_US,
			    min_t(u64, (u64)llmdev_coll_timeout_ms * 1000, U32_MAX));
		llmdev_wr32(ldev, LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_START);
		llmdev_exit(ldev, idx);
	}
	if (!job->pending)
		llmdev_coll_complete(job);
	else
		mod_delayed_work(system_wq, &llmdev_coll_watchdog, timeout + 1);
}

/* Is a member being reset? Then the job waits (llmdev_coll_kick()). */
static bool llmdev_coll_must_wait(struct llmdev_coll_job *job)
{
	unsigned int r;

	for (r = 0; r < job->group->nranks; r++)
		if (READ_ONCE(job->group->card[r]->state) == LLMDEV_STATE_RESETTING &&
		    !READ_ONCE(job->group->card[r]->unplugged))
			return true;
	return false;
}

/* Take @job off its owner's queue; an owner left with none goes. */
static void llmdev_coll_dequeue(struct llmdev_coll_job *job)
{
	struct llmdev_coll_owner *o = job->owner;

	list_del(&job->node);
	job->owner = NULL;
	if (list_empty(&o->jobs)) {
		list_del(&o->node);
		kfree(o);
	}
}

/*
 * The next job: the oldest of the first user in turn whose oldest job
 * need not wait for a reset; that user's turn is then over. NULL if none.
 */
static struct llmdev_coll_job *llmdev_coll_next(void)
{
	struct llmdev_coll_owner *o;
	struct llmdev_coll_job *job;

	list_for_each_entry(o, &llmdev_coll_owners, node) {
		job = list_first_entry(&o->jobs, struct llmdev_coll_job, node);
		if (llmdev_coll_must_wait(job))
			continue;
		list_move_tail(&o->node, &llmdev_coll_owners);
		llmdev_coll_dequeue(job);
		return job;
	}
	return NULL;
}

static void llmdev_coll_start_next(void)
{
	struct llmdev_coll_job *job;

	lockdep_assert_held(&llmdev_coll_lock);
	while (!llmdev_coll_active) {
		job = llmdev_coll_next();
		if (!job)
			return;
		llmdev_coll_start(job);
	}
}

/* A card is back from a reset: start what waited for it. */
void llmdev_coll_kick(void)
{
	mutex_lock(&llmdev_coll_lock);
	llmdev_coll_start_next();
	mutex_unlock(&llmdev_coll_lock);
}

/* The card raised an event: see whether its part of the active job ended. */
void llmdev_coll_handle_event(struct llmdev_device *ldev)
{
	struct llmdev_coll_job *job;
	unsigned int r;
	u32 status;
	int idx, ret;

	mutex_lock(&llmdev_coll_lock);
	job = llmdev_coll_active;
	if (!job)
		goto out;
	for (r = 0; r < job->group->nranks; r++)
		if (job->group->card[r] == ldev)
			break;
	if (r == job->group->nranks || job->rank[r].done)
		goto out;
	if (!llmdev_enter(ldev, &idx))
		goto out;
	status = llmdev_rd32(ldev, LLMDEV_REG_COLL_STATUS);
	if (status & LLMDEV_COLL_STATUS_BUSY ||
	    !(status & (LLMDEV_COLL_STATUS_DONE | LLMDEV_COLL_STATUS_ERROR)) ||
	    llmdev_rd64(ldev, LLMDEV_REG_COLL_DONE_TAG) != job->tag) {
		llmdev_exit(ldev, idx);
		goto out;
	}
	llmdev_exit(ldev, idx);
	ret = 0;
	if (status & LLMDEV_COLL_STATUS_ERROR) {
		ret = llmdev_coll_errno(LLMDEV_COLL_STATUS_ERR(status));
		if (!ret)
			ret = -EIO;
	}
	llmdev_coll_rank_done(job, r, ret);
	if (!job->pending)
		llmdev_coll_finish(job);
out:
	mutex_unlock(&llmdev_coll_lock);
}

static void llmdev_coll_watchdog_fn(struct work_struct *work)
{
	struct llmdev_coll_job *job;
	unsigned int r;

	mutex_lock(&llmdev_coll_lock);
	job = llmdev_coll_active;
	if (job && time_after_eq(jiffies, job->deadline)) {
		for (r = 0; r < job->group->nranks; r++) {
			if (job->rank[r].done)
				continue;
			dev_warn(&job->group->card[r]->dev,
				 "collective %#llx timed out, aborting it\n",
				 job->tag);
			llmdev_coll_rank_done(job, r, -ETIMEDOUT);
		}
		llmdev_coll_finish(job);
	} else if (job) {
		mod_delayed_work(system_wq, &llmdev_coll_watchdog,
				 job->deadline - jiffies + 1);
	}
	mutex_unlock(&llmdev_coll_lock);
}

/**
 * llmdev_coll_fail_card() - a card can no longer take part
 * @ldev: the card: removed, being reset, or dead; its engine is stopped
 * @status: the card's error in the running collective
 * @queued: fail the queued collectives it is a member of too (with
 *          -ENODEV if it was removed, else @status); otherwise they wait
 *
 * The other members of the running collective are aborted.
 */
void llmdev_coll_fail_card(struct llmdev_device *ldev, int status, bool queued)
{
	struct llmdev_coll_owner *o, *otmp;
	struct llmdev_coll_job *job, *tmp;
	LIST_HEAD(failed);
	unsigned int r;

	mutex_lock(&llmdev_coll_lock);
	job = llmdev_coll_active;
	if (job) {
		for (r = 0; r < job->group->nranks; r++)
			if (job->group->card[r] == ldev && !job->rank[r].done)
				llmdev_coll_rank_done(job, r, status);
		if (!job->pending)
			llmdev_coll_finish(job);
	}
	list_for_each_entry_safe(o, otmp, &llmdev_coll_owners, node) {
		list_for_each_entry_safe(job, tmp, &o->jobs, node) {
			for (r = 0; queued && r < job->group->nranks; r++) {
				if (job->group->card[r] == ldev) {
					list_move_tail(&job->node, &failed);
					job->owner = NULL;
					break;
				}
			}
		}
		/* not before: the loop above reads o->jobs to its end */
		if (list_empty(&o->jobs)) {
			list_del(&o->node);
			kfree(o);
		}
	}
	/* the head may have waited for this card */
	llmdev_coll_start_next();
	mutex_unlock(&llmdev_coll_lock);

	list_for_each_entry_safe(job, tmp, &failed, node) {
		list_del(&job->node);
		llmdev_coll_job_release(job);
		llmdev_fence_signal(&job->fence, status);
	}
}

void llmdev_coll_fini(void)
{
	cancel_delayed_work_sync(&llmdev_coll_watchdog);
}

/* ---- submission ------------------------------------------------------------ */

static unsigned int llmdev_dtype_size(u32 dtype)
{
	switch (dtype) {
	case LLMDEV_DTYPE_F32:
	case LLMDEV_DTYPE_I32:
		return 4;
	case LLMDEV_DTYPE_F16:
	case LLMDEV_DTYPE_BF16:
		return 2;
	default:
		return 0;
	}
}

/* Check op, dtype, redop and root; return the engine's COLL_OP value. */
static int llmdev_coll_op(const struct llmdev_coll *c, unsigned int nranks,
			  u32 *op)
{
	if (!llmdev_dtype_size(c->dtype))
		return -EINVAL;
	switch (c->op) {
	case LLMDEV_COLL_ALLREDUCE:
		if (c->redop > LLMDEV_REDOP_MAX || c->root)
			return -EINVAL;
		*op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, c->redop,
				     c->dtype, 0);
		return 0;
	case LLMDEV_COLL_BROADCAST:
		if (c->redop || c->root >= nranks)
			return -EINVAL;
		*op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_BROADCAST, 0, c->dtype,
				     c->root);
		return 0;
	default:
		return -EINVAL;
	}
}

static bool llmdev_ranges_clash(u64 a, u64 b, u64 len)
{
	return a != b && a < b + len && b < a + len;
}

/* Look up and pin rank @r's regions, as the file @b->fd may use them. */
static int llmdev_coll_get_rank(struct llmdev_coll_job *job, unsigned int r,
				const struct llmdev_coll_buf *b, bool need_src,
				u64 bytes)
{
	struct llmdev_coll_rank *rk = &job->rank[r];
	struct llmdev_file *member;
	struct llmdev_region *reg;
	struct file *filp;
	int ret = 0;

	if (b->__reserved)
		return -EINVAL;
	member = llmdev_file_get(b->fd, &filp);
	if (IS_ERR(member))
		return PTR_ERR(member);
	if (member->ldev != job->group->card[r]) {
		ret = -EINVAL;
		goto out;
	}
	if (need_src) {
		reg = llmdev_region_get(member, b->src_handle, b->src_offset,
					bytes);
		if (IS_ERR(reg)) {
			ret = PTR_ERR(reg);
			goto out;
		}
		rk->src = reg;
		rk->src_addr = reg->ext.offset + b->src_offset;
	}
	reg = llmdev_region_get(member, b->dst_handle, b->dst_offset, bytes);
	if (IS_ERR(reg)) {
		ret = PTR_ERR(reg);
		goto out;
	}
	rk->dst = reg;
	rk->dst_addr = reg->ext.offset + b->dst_offset;
	if (!need_src)
		rk->src_addr = rk->dst_addr;
	else if (llmdev_ranges_clash(rk->src_addr, rk->dst_addr, bytes))
		ret = -EINVAL;
out:
	fput(filp);
	return ret;
}

static struct llmdev_group *llmdev_group_lookup(struct llmdev_file *lf, u32 id)
{
	struct llmdev_group *g;

	xa_lock(&lf->groups);
	g = xa_load(&lf->groups, id);
	if (g)
		kref_get(&g->ref);
	xa_unlock(&lf->groups);
	return g;
}

/* The reply is written: the collective gets its fence and is queued. */
static void llmdev_coll_submit_commit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_coll_job *job = ucmd->obj;
	struct llmdev_group *g = job->group;
	struct llmdev_coll_owner *o, *spare = job->spare;

	/* job may be done and freed once started: nothing of it after that */
	job->spare = NULL;
	llmdev_usage_coll(ucmd->lf);
	llmdev_fence_publish(&job->fence);
	mutex_lock(&llmdev_coll_lock);
	job->tag = (u64)g->tag << 32 | ++g->seq;
	list_for_each_entry(o, &llmdev_coll_owners, node)
		if (uid_eq(o->uid, job->uid))
			goto found;
	/* a user with nothing queued waits for the turns of all the others */
	o = spare;
	spare = NULL;
	o->uid = job->uid;
	INIT_LIST_HEAD(&o->jobs);
	list_add_tail(&o->node, &llmdev_coll_owners);
found:
	job->owner = o;
	list_add_tail(&job->node, &o->jobs);
	llmdev_coll_start_next();
	mutex_unlock(&llmdev_coll_lock);
	kfree(spare);
}

static void llmdev_coll_job_destroy(struct llmdev_coll_job *job)
{
	kfree(job->spare);
	llmdev_coll_job_release(job);
	llmdev_fence_unreserve(&job->fence);
	llmdev_group_put(job->group);
	kfree(job);
}

static void llmdev_coll_submit_abort(struct llmdev_ucmd *ucmd)
{
	llmdev_coll_job_destroy(ucmd->obj);
}

int llmdev_coll_ioctl_submit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_coll *c = ucmd->cmd;
	struct llmdev_coll_job *job;
	struct llmdev_group *g;
	unsigned int r, esize;
	u64 bytes;
	u32 op;
	int ret;

	esize = llmdev_dtype_size(c->dtype);
	if (c->flags || c->buf_size < LLMDEV_COLL_BUF_SIZE_VER0 || !esize ||
	    !c->count || c->count > LLMDEV_COLL_MAX_BYTES / esize)
		return -EINVAL;
	bytes = c->count * esize;
	g = llmdev_group_lookup(ucmd->lf, c->group);
	if (!g)
		return -ENOENT;
	ret = llmdev_coll_op(c, g->nranks, &op);
	if (ret) {
		llmdev_group_put(g);
		return ret;
	}

	/* queued without bound but LLMDEV_MAX_FENCES a file: charged */
	job = kzalloc(struct_size(job, rank, g->nranks), GFP_KERNEL_ACCOUNT);
	if (!job) {
		llmdev_group_put(g);
		return -ENOMEM;
	}
	job->group = g;
	job->op = op;
	job->count = c->count;
	job->uid = ucmd->lf->uid;
	job->spare = kzalloc(sizeof(*job->spare), GFP_KERNEL_ACCOUNT);
	if (!job->spare) {
		llmdev_group_put(g);
		kfree(job);
		return -ENOMEM;
	}
	ret = llmdev_fence_reserve(ucmd->lf, &job->fence, llmdev_coll_free_fence);
	if (ret) {
		llmdev_group_put(g);
		kfree(job->spare);
		kfree(job);
		return ret;
	}

	for (r = 0; r < g->nranks; r++) {
		void __user *ub = u64_to_user_ptr(c->bufs + (u64)r * c->buf_size);
		struct llmdev_coll_buf b;

		ret = copy_struct_from_user(&b, sizeof(b), ub, c->buf_size);
		if (ret)
			goto err;
		ret = llmdev_coll_get_rank(job, r, &b,
					   c->op == LLMDEV_COLL_ALLREDUCE ||
					   r == c->root, bytes);
		if (ret)
			goto err;
	}
	/*
	 * A member being reset takes the ring's links down: the collective
	 * waits for the end of the reset (a card is LIVE again once its links
	 * have trained, llmdev_restart()), then looks at them.
	 */
	for (r = 0; r < g->nranks; r++) {
		ret = llmdev_wait_reset(g->card[r], true);
		if (ret)
			goto err;
	}
	for (r = 0; r < g->nranks; r++) {
		/* a one-card group has no link to check, but its card may be gone */
		ret = llmdev_gone(g->card[r]);
		if (!ret && g->nranks > 1 &&
		    !llmdev_link_is_up(g->card[r], g->tx_port[r]))
			ret = llmdev_gone(g->card[r]) ?: -ENOLINK;
		if (ret)
			goto err;
	}

	c->fence = job->fence.seqno;
	ucmd->obj = job;
	ucmd->commit = llmdev_coll_submit_commit;
	ucmd->abort = llmdev_coll_submit_abort;
	return 0;

err:
	llmdev_coll_job_destroy(job);
	return ret;
}
