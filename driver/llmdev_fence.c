// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: fences, the completion tokens of DMA transfers and collectives.
 *
 * A fence number is reserved on the submitting file, the work that carries
 * it is published in the file's table once the submitter has learnt the
 * number (a wait for it finds nothing before), and when the work finishes the fence is
 * signalled: it moves to the file's done list with its status, and stays
 * there until LLMDEV_FENCE_WAIT consumes it. A wait claims the fence first
 * and consumes it only once its reply is written; if the reply cannot be
 * written, the fence goes back to the done list.
 */
#include <linux/hrtimer.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "llmdev_drv.h"

/*
 * Reserve a fence number on @lf.
 * Return: 0; -EAGAIN at the limit.
 */
int llmdev_fence_reserve(struct llmdev_file *lf, struct llmdev_fence *f,
			 void (*free)(struct llmdev_fence *f))
{
	int ret = 0;

	f->file = lf;
	f->free = free;
	f->status = 0;
	f->complete = false;
	f->claimed = false;
	spin_lock(&lf->lock);
	if (lf->nfences >= LLMDEV_MAX_FENCES) {
		ret = -EAGAIN;
	} else {
		lf->nfences++;
		lf->inflight++;
		f->seqno = lf->next_fence++;
	}
	spin_unlock(&lf->lock);
	return ret;
}

/* Give back a reserved fence whose work was never started. */
void llmdev_fence_unreserve(struct llmdev_fence *f)
{
	struct llmdev_file *lf = f->file;

	spin_lock(&lf->lock);
	lf->nfences--;
	lf->inflight--;
	/* under the lock, as llmdev_fence_signal() */
	wake_up_all(&lf->wq);
	spin_unlock(&lf->lock);
}

/* Make the fence visible to LLMDEV_FENCE_WAIT. */
void llmdev_fence_publish(struct llmdev_fence *f)
{
	struct llmdev_file *lf = f->file;

	spin_lock(&lf->lock);
	hash_add(lf->fences, &f->hnode, f->seqno);
	spin_unlock(&lf->lock);
}

/* The published fence @seqno of @lf, or NULL. Caller holds lf->lock. */
static struct llmdev_fence *llmdev_fence_find(struct llmdev_file *lf,
					      u64 seqno)
{
	struct llmdev_fence *f;

	hash_for_each_possible(lf->fences, f, hnode, seqno)
		if (f->seqno == seqno)
			return f;
	return NULL;
}

/*
 * Signal @f with @status (the first error wins). A waiter may free the
 * fence as soon as this returns.
 */
void llmdev_fence_signal(struct llmdev_fence *f, int status)
{
	struct llmdev_file *lf = f->file;

	spin_lock(&lf->lock);
	if (status && !f->status)
		f->status = status;
	f->complete = true;
	list_add_tail(&f->list, &lf->done);
	lf->inflight--;
	/*
	 * Woken under the lock: with nothing in flight the file may be
	 * released, and freed, once the lock is dropped (see
	 * llmdev_fence_release_file()). A polling waiter is not on the
	 * queue: skip its lock.
	 */
	if (wq_has_sleeper(&lf->wq))
		wake_up_all(&lf->wq);
	spin_unlock(&lf->lock);
}

/* The fence is complete, or gone (consumed or claimed by another waiter). */
static bool llmdev_fence_ready(struct llmdev_file *lf, u64 seqno, bool any)
{
	struct llmdev_fence *f;
	bool ready;

	spin_lock(&lf->lock);
	if (any) {
		ready = !list_empty(&lf->done) || !lf->inflight;
	} else {
		f = llmdev_fence_find(lf, seqno);
		ready = !f || f->complete;
	}
	spin_unlock(&lf->lock);
	return ready || llmdev_gone(lf->ldev);
}

/* Claim a completed fence: no other wait can have it. Or an ERR_PTR. */
static struct llmdev_fence *llmdev_fence_claim(struct llmdev_file *lf,
					       u64 seqno, bool any)
{
	struct llmdev_fence *f;

	spin_lock(&lf->lock);
	if (any) {
		f = list_first_entry_or_null(&lf->done, struct llmdev_fence,
					     list);
		if (!f)
			f = ERR_PTR(lf->inflight ? -ETIME : -ENOENT);
	} else {
		f = llmdev_fence_find(lf, seqno);
		if (!f || f->claimed)
			f = ERR_PTR(-ENOENT);
		else if (!f->complete)
			f = ERR_PTR(-ETIME);
	}
	if (!IS_ERR(f)) {
		list_del_init(&f->list);
		f->claimed = true;
	}
	spin_unlock(&lf->lock);
	return f;
}

/* The reply is written: the fence is gone. */
static void llmdev_fence_wait_commit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_fence *f = ucmd->obj;
	struct llmdev_file *lf = f->file;

	spin_lock(&lf->lock);
	hash_del(&f->hnode);
	lf->nfences--;
	spin_unlock(&lf->lock);
	f->free(f);
}

/* The reply could not be written: the fence waits to be consumed again. */
static void llmdev_fence_wait_abort(struct llmdev_ucmd *ucmd)
{
	struct llmdev_fence *f = ucmd->obj;
	struct llmdev_file *lf = f->file;

	spin_lock(&lf->lock);
	f->claimed = false;
	list_add(&f->list, &lf->done);
	spin_unlock(&lf->lock);
	wake_up_all(&lf->wq);
}

struct llmdev_fence_waiter {
	struct llmdev_file *lf;
	u64 seqno;
	bool any;
};

static bool llmdev_fence_waiter_ready(void *arg)
{
	struct llmdev_fence_waiter *w = arg;

	return llmdev_fence_ready(w->lf, w->seqno, w->any);
}

/*
 * Poll the card's completion rings for a while (poll_us): a short transfer
 * is usually done before the interrupt would even have been handled. With
 * more queued than a poll window covers, sleep first (an interrupt ends the
 * sleep early), until the queued bytes should be nearly done, at most half
 * of @timeout_ns: the wake-up then overlaps the transfer, not its end. (The
 * caller's deadline counts from before this: the whole wait ends at its
 * timeout, not before.) A waiter that goes on to sleep has the quiet jobs
 * looked after.
 */
static bool llmdev_fence_poll_ready(struct llmdev_file *lf, u64 seqno, bool any,
				    u64 timeout_ns)
{
	struct llmdev_fence_waiter w = { .lf = lf, .seqno = seqno, .any = any };
	u64 delay;

	if (llmdev_fence_ready(lf, seqno, any))
		return true;
	if (READ_ONCE(llmdev_poll_us)) {
		delay = min(llmdev_dma_poll_delay(lf->ldev), timeout_ns / 2);
		if (delay)
			wait_event_interruptible_hrtimeout(lf->wq,
							   llmdev_fence_ready(lf, seqno, any),
							   ns_to_ktime(delay));
		if (llmdev_dma_poll_until(lf->ldev, llmdev_fence_waiter_ready, &w))
			return true;
	}
	llmdev_dma_sweep(lf->ldev);
	return false;
}

/* When a wait of @timeout_ns, from now, ends; KTIME_MAX: never. */
static ktime_t llmdev_fence_deadline(u64 timeout_ns)
{
	ktime_t now = ktime_get();

	if (timeout_ns >= (u64)(KTIME_MAX - now))
		return KTIME_MAX;
	return ktime_add_ns(now, timeout_ns);
}

/*
 * While quiet jobs are out, a sleeping waiter wakes this often to look for
 * completions itself: they raise no interrupt, and the watchdogs' sweep
 * (llmdev_dma_sweep()) runs once a jiffy. A pool's swap of 4 blocks of 64
 * KiB, submitted and waited for in one call, had a p99 of 5.4-6.8 ms with
 * HZ=250 (a waiter that had polled its window out), against a median of
 * 37-41 us.
 */
#define LLMDEV_QUIET_NAP_NS	(100 * NSEC_PER_USEC)

/* One sleep of up to @t; see llmdev_fence_sleep(). */
static int llmdev_fence_sleep_once(struct llmdev_file *lf, u64 seqno, bool any,
				   ktime_t t, bool killable)
{
	if (!killable)
		return wait_event_interruptible_hrtimeout(lf->wq,
				llmdev_fence_ready(lf, seqno, any), t);
	/*
	 * the kernel has no wait_event_killable_hrtimeout(): what
	 * wait_event_interruptible_hrtimeout() does, in TASK_KILLABLE
	 */
	if (llmdev_fence_ready(lf, seqno, any))
		return 0;
	return __wait_event_hrtimeout(lf->wq, llmdev_fence_ready(lf, seqno, any),
				      t, TASK_KILLABLE);
}

/*
 * Sleep until fence @seqno (any, with @any) is ready or @deadline has
 * passed. An hrtimer ends the sleep, so that no wait ends before its
 * timeout: a sleep of whole jiffies can end up to a tick early (a 1 ms
 * wait returned -ETIME after 0.76 ms with HZ=250). While the card has
 * quiet jobs out, the sleep is cut into naps of LLMDEV_QUIET_NAP_NS, each
 * followed by a look at the completion rings. @killable: only a fatal
 * signal ends the sleep, else any signal does.
 * Return: 0 ready, -ETIME, or -ERESTARTSYS (a signal).
 */
static int llmdev_fence_sleep(struct llmdev_file *lf, u64 seqno, bool any,
			      ktime_t deadline, bool killable)
{
	struct llmdev_device *ldev = lf->ldev;
	ktime_t left, nap;
	int ret, idx;

	for (;;) {
		left = KTIME_MAX;
		if (deadline != KTIME_MAX) {
			left = ktime_sub(deadline, ktime_get());
			if (left <= 0)
				return llmdev_fence_ready(lf, seqno, any) ? 0 : -ETIME;
		}
		nap = left;
		if (atomic_read(&ldev->quiet_jobs))
			nap = min_t(ktime_t, left, LLMDEV_QUIET_NAP_NS);
		ret = llmdev_fence_sleep_once(lf, seqno, any, nap, killable);
		if (ret != -ETIME || nap == left)
			return ret;
		if (llmdev_enter(ldev, &idx)) {
			llmdev_dma_poll(ldev);
			llmdev_exit(ldev, idx);
		}
	}
}

/* The fence is claimed: its reply is ready to go out, then it goes. */
static void llmdev_fence_claimed(struct llmdev_ucmd *ucmd,
				 struct llmdev_fence *f)
{
	ucmd->obj = f;
	ucmd->commit = llmdev_fence_wait_commit;
	ucmd->abort = llmdev_fence_wait_abort;
}

int llmdev_fence_ioctl_wait(struct llmdev_ucmd *ucmd)
{
	struct llmdev_fence_wait *w = ucmd->cmd;
	struct llmdev_file *lf = ucmd->lf;
	struct llmdev_fence *f;
	ktime_t deadline;
	bool any;
	int ret;

	if ((w->flags & ~LLMDEV_WAIT_ANY) || w->__reserved)
		return -EINVAL;
	any = w->flags & LLMDEV_WAIT_ANY;

	deadline = llmdev_fence_deadline(w->timeout_ns);
	if (w->timeout_ns &&
	    !llmdev_fence_poll_ready(lf, w->fence, any, w->timeout_ns)) {
		ret = llmdev_fence_sleep(lf, w->fence, any, deadline, false);
		if (ret == -ERESTARTSYS) {
			/* restart with what is left of the caller's timeout */
			s64 left = ktime_to_ns(ktime_sub(deadline, ktime_get()));

			if (deadline != KTIME_MAX)
				w->timeout_ns = max_t(s64, left, 0);
			ucmd->reply_on_error = true;
			return -ERESTARTSYS;
		}
	}

	f = llmdev_fence_claim(lf, w->fence, any);
	if (IS_ERR(f)) {
		ret = llmdev_gone(lf->ldev);
		return ret ?: PTR_ERR(f);
	}
	w->fence = f->seqno;
	w->status = f->status;
	llmdev_fence_claimed(ucmd, f);
	return 0;
}

/**
 * llmdev_fence_wait_queued() - wait for the fence a call has just queued
 * @ucmd: the call (its reply is written again afterwards)
 * @seqno: the fence
 * @timeout_ns: how long
 * @status: out: the fence's status, when it completed
 *
 * For submit-and-wait (LLMDEV_BATCH_WAIT). The work is queued already and
 * the call cannot be restarted, so signals do not end the wait; a fatal
 * signal does, and so does @timeout_ns. On success the fence is claimed
 * and consumed once the reply is written.
 *
 * Return: 0; -ETIME not complete yet (the fence stays); -EINTR a fatal
 * signal; -ENODEV, -EIO the card is gone or dead (the fence stays).
 */
int llmdev_fence_wait_queued(struct llmdev_ucmd *ucmd, u64 seqno, u64 timeout_ns,
			     s32 *status)
{
	struct llmdev_file *lf = ucmd->lf;
	ktime_t deadline = llmdev_fence_deadline(timeout_ns);
	struct llmdev_fence *f;

	if (timeout_ns && !llmdev_fence_poll_ready(lf, seqno, false, timeout_ns) &&
	    llmdev_fence_sleep(lf, seqno, false, deadline, true) == -ERESTARTSYS)
		return -EINTR;
	f = llmdev_fence_claim(lf, seqno, false);
	if (IS_ERR(f))
		return PTR_ERR(f) == -ETIME ? (llmdev_gone(lf->ldev) ?: -ETIME) :
		       PTR_ERR(f);
	*status = f->status;
	llmdev_fence_claimed(ucmd, f);
	return 0;
}

__poll_t llmdev_fence_poll(struct llmdev_file *lf)
{
	__poll_t mask;

	spin_lock(&lf->lock);
	mask = list_empty(&lf->done) ? 0 : EPOLLIN | EPOLLRDNORM;
	spin_unlock(&lf->lock);
	if (!mask)
		llmdev_dma_sweep(lf->ldev);
	return mask;
}

/* The file is closing: let its work finish, then drop its fences. */
void llmdev_fence_release_file(struct llmdev_file *lf)
{
	struct llmdev_fence *f;
	struct hlist_node *tmp;
	unsigned int i;

	wait_event(lf->wq, !READ_ONCE(lf->inflight));
	/* the last signaller has left its critical section, and lf alone */
	spin_lock(&lf->lock);
	spin_unlock(&lf->lock);
	hash_for_each_safe(lf->fences, i, tmp, f, hnode) {
		hash_del(&f->hnode);
		f->free(f);
	}
}
