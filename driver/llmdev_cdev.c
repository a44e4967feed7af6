// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: the character device, its file operations and ioctl dispatch.
 */
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/poll.h>
#include <linux/pseudo_fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "llmdev_drv.h"

#define LLMDEV_MAX_CARDS	256

static dev_t llmdev_devt;
static struct class *llmdev_class;
static DEFINE_IDA(llmdev_minors);

/* ---- the per-card inode ---------------------------------------------------- */

/*
 * Every open file of a card, whatever device node it was opened through
 * (a node made with mknod in a container, say), gets the mapping of one
 * inode of the card's own, as DRM does with its anonymous inodes: user
 * mappings of the aperture all land in that mapping, so that freeing a
 * region, a reset or an unplug zaps every one of them.
 */
#define LLMDEV_FS_MAGIC		0x4c4c4d44

static struct vfsmount *llmdev_fs_mnt;
static int llmdev_fs_cnt;

static int llmdev_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, LLMDEV_FS_MAGIC) ? 0 : -ENOMEM;
}

/*
 * No .owner: the pinned mount would hold a reference on this module for as
 * long as a card is bound, and rmmod could never unbind them. The mount
 * goes with the last card (llmdev_inode_fini() at its final put), before
 * the module's code can go: open files pin the module, and module exit
 * unbinds every card.
 */
static struct file_system_type llmdev_fs_type = {
	.name = LLMDEV_NAME,
	.init_fs_context = llmdev_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

int llmdev_inode_init(struct llmdev_device *ldev)
{
	struct inode *inode;
	int ret;

	ret = simple_pin_fs(&llmdev_fs_type, &llmdev_fs_mnt, &llmdev_fs_cnt);
	if (ret)
		return ret;
	inode = alloc_anon_inode(llmdev_fs_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		simple_release_fs(&llmdev_fs_mnt, &llmdev_fs_cnt);
		return PTR_ERR(inode);
	}
	ldev->anon_inode = inode;
	return 0;
}

void llmdev_inode_fini(struct llmdev_device *ldev)
{
	if (!ldev->anon_inode)
		return;
	iput(ldev->anon_inode);
	ldev->anon_inode = NULL;
	simple_release_fs(&llmdev_fs_mnt, &llmdev_fs_cnt);
}

/**
 * llmdev_zap_mappings() - take HBM out of every user mapping of the card
 * @ldev: the card
 * @offset: HBM offset (the mmap offset is the HBM offset)
 * @length: bytes; 0 means to the end
 *
 * The next access through a zapped mapping faults (llmdev_hbm.c decides
 * whether it gets the page back or SIGBUS).
 */
void llmdev_zap_mappings(struct llmdev_device *ldev, u64 offset, u64 length)
{
	unmap_mapping_range(ldev->anon_inode->i_mapping, offset, length, 1);
}

/* ---- ioctl dispatch ---------------------------------------------------------- */

static int llmdev_ioctl_info(struct llmdev_ucmd *ucmd)
{
	struct llmdev_device *ldev = ucmd->lf->ldev;
	struct pci_dev *pdev = ldev->pdev;
	struct llmdev_info *info = ucmd->cmd;

	if (info->flags)
		return -EINVAL;
	info->spec_version = ldev->spec_version;
	info->num_h2c_rings = LLMDEV_NUM_H2C_RINGS;
	info->num_c2h_rings = LLMDEV_NUM_RINGS - LLMDEV_NUM_H2C_RINGS;
	info->num_link_ports = LLMDEV_NUM_LINK_PORTS;
	info->serial = ldev->serial;
	info->hbm_size = ldev->hbm.size;
	info->hbm_used = llmdev_hbm_used(&ldev->hbm);
	info->hbm_largest_free = llmdev_hbm_largest_free(&ldev->hbm);
	info->pci_domain = pci_domain_nr(pdev->bus);
	info->pci_bus = pdev->bus->number;
	info->pci_devfn = pdev->devfn;
	info->numa_node = dev_to_node(&pdev->dev);
	info->irq_vectors = ldev->nvec;
	return 0;
}

/*
 * The table of ioctls, as iommufd has it: per command its handler, the
 * kernel's size of its struct, and the size of the struct's first version
 * (the end of its last field then), which is the least a caller may pass.
 * A struct grows by appending fields; the first version's size never
 * changes, so binaries built against any older header keep working.
 */
struct llmdev_ioctl_op {
	int (*execute)(struct llmdev_ucmd *ucmd);
	u32 size;
	u32 min_size;
	/* the struct has output fields: copy it back */
	bool reply;
	/* runs on a card that is dead (the others get -EIO) */
	bool dead_ok;
};

#define __LLMDEV_IOCTL_OP(_cmd, _fn, _type, _last, _reply, _dead_ok)	\
	[(_cmd) - LLMDEV_CMD_BASE] = {					\
		.execute = _fn,						\
		.size = sizeof(_type),					\
		.min_size = offsetofend(_type, _last),			\
		.reply = _reply,					\
		.dead_ok = _dead_ok,					\
	}
/* an ioctl that writes results into its struct */
#define LLMDEV_IOCTL_OP(_cmd, _fn, _type, _last)			\
	__LLMDEV_IOCTL_OP(_cmd, _fn, _type, _last, true, false)
/* an ioctl whose struct is input only: never written */
#define LLMDEV_IOCTL_IN(_cmd, _fn, _type, _last)			\
	__LLMDEV_IOCTL_OP(_cmd, _fn, _type, _last, false, false)

static const struct llmdev_ioctl_op llmdev_ioctl_ops[] = {
	LLMDEV_IOCTL_OP(LLMDEV_CMD_INFO, llmdev_ioctl_info, struct llmdev_info,
			irq_vectors),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_HBM_ALLOC, llmdev_hbm_ioctl_alloc,
			struct llmdev_hbm_alloc, largest_free),
	/* on a dead card too: the region is quarantined, not scrubbed */
	__LLMDEV_IOCTL_OP(LLMDEV_CMD_HBM_FREE, llmdev_hbm_ioctl_free,
			  struct llmdev_hbm_free, __reserved, false, true),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_HBM_LIST, llmdev_hbm_ioctl_list,
			struct llmdev_hbm_list, regions),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_HBM_OPEN, llmdev_hbm_ioctl_open,
			struct llmdev_hbm_open, mmap_offset),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_DMA_SUBMIT, llmdev_dma_ioctl_submit,
			struct llmdev_dma, fence),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_FENCE_WAIT, llmdev_fence_ioctl_wait,
			struct llmdev_fence_wait, __reserved),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_PERF_READ, llmdev_perf_ioctl_read,
			struct llmdev_perf, counters),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_LINK_INFO, llmdev_link_ioctl_info,
			struct llmdev_link_info, rx_errors),
	LLMDEV_IOCTL_IN(LLMDEV_CMD_LINK_SET, llmdev_link_ioctl_set,
			struct llmdev_link_set, enable),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_GROUP_CREATE, llmdev_group_ioctl_create,
			struct llmdev_group_create, fds),
	LLMDEV_IOCTL_IN(LLMDEV_CMD_GROUP_DESTROY, llmdev_group_ioctl_destroy,
			struct llmdev_group_destroy, __reserved),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_COLL_SUBMIT, llmdev_coll_ioctl_submit,
			struct llmdev_coll, fence),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_ROUTE_SET, llmdev_route_ioctl_set,
			struct llmdev_route, error_index),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_ROUTE_GET, llmdev_route_ioctl_get,
			struct llmdev_route, error_index),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_BUF_REGISTER, llmdev_buf_ioctl_register,
			struct llmdev_buf_register, __reserved),
	LLMDEV_IOCTL_IN(LLMDEV_CMD_BUF_UNREGISTER, llmdev_buf_ioctl_unregister,
			struct llmdev_buf_unregister, __reserved),
	LLMDEV_IOCTL_OP(LLMDEV_CMD_DMA_BATCH, llmdev_dma_ioctl_batch,
			struct llmdev_dma_batch, error_index),
	[LLMDEV_CMD_RESET - LLMDEV_CMD_BASE] = {
		.execute = llmdev_reset_ioctl,
		.size = sizeof(struct llmdev_reset),
		.min_size = offsetofend(struct llmdev_reset, flags),
		.dead_ok = true,
	},
};

/* Room for the argument of any ioctl. */
union llmdev_ucmd_buffer {
	struct llmdev_info info;
	struct llmdev_hbm_alloc hbm_alloc;
	struct llmdev_hbm_free hbm_free;
	struct llmdev_hbm_list hbm_list;
	struct llmdev_hbm_open hbm_open;
	struct llmdev_dma dma;
	struct llmdev_fence_wait fence_wait;
	struct llmdev_perf perf;
	struct llmdev_link_info link_info;
	struct llmdev_link_set link_set;
	struct llmdev_group_create group_create;
	struct llmdev_group_destroy group_destroy;
	struct llmdev_coll coll;
	struct llmdev_route route;
	struct llmdev_reset reset;
	struct llmdev_buf_register buf_register;
	struct llmdev_buf_unregister buf_unregister;
	struct llmdev_dma_batch dma_batch;
};

/*
 * Run one step of a call and write its reply: then make its object
 * visible, or undo it if the reply cannot be written.
 */
static int llmdev_ioctl_step(struct llmdev_ucmd *ucmd,
			     const struct llmdev_ioctl_op *op, void __user *uarg,
			     int (*fn)(struct llmdev_ucmd *ucmd))
{
	int ret = fn(ucmd);

	if (op->reply && (!ret || ucmd->reply_on_error) &&
	    copy_to_user(uarg, ucmd->cmd, min(ucmd->user_size, op->size))) {
		if (!ret && ucmd->abort)
			ucmd->abort(ucmd);
		return -EFAULT;
	}
	if (!ret && ucmd->commit)
		ucmd->commit(ucmd);
	return ret;
}

/*
 * One copy in, one copy out: handlers see a kernel struct. The caller's
 * size may be anything from the first version's size up; a larger struct
 * must have a zero tail (copy_struct_from_user()), a smaller one reads as
 * zero-extended, and the reply is cut to the caller's size. A handler that
 * creates an object leaves it invisible until the reply is written (commit)
 * or undoes it when the reply cannot be written (abort), so no other
 * thread can reach an object whose creation is then undone.
 */
static long llmdev_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct llmdev_file *lf = filp->private_data;
	void __user *uarg = (void __user *)arg;
	const struct llmdev_ioctl_op *op;
	/*
	 * Not cleared first (the kernel's automatic stack initialisation
	 * would, all 288 bytes, on every call): the handler reads only its
	 * own struct, op->size bytes that copy_struct_from_user() fills.
	 */
	union llmdev_ucmd_buffer buf __uninitialized;
	struct llmdev_ucmd ucmd = { .lf = lf, .cmd = &buf };
	unsigned int nr = _IOC_NR(cmd);
	u32 usize;
	int ret;

	if (cmd != _IO(LLMDEV_TYPE, nr) || nr < LLMDEV_CMD_BASE ||
	    nr - LLMDEV_CMD_BASE >= ARRAY_SIZE(llmdev_ioctl_ops))
		return -ENOTTY;
	op = &llmdev_ioctl_ops[nr - LLMDEV_CMD_BASE];
	if (!op->execute)
		return -ENOTTY;
	/*
	 * Handlers that touch the hardware guard it themselves; this early
	 * check only spares the others useless work.
	 */
	ret = llmdev_gone(lf->ldev);
	if (ret && !(ret == -EIO && op->dead_ok))
		return ret;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (usize < op->min_size)
		return -EINVAL;
	ret = copy_struct_from_user(&buf, op->size, uarg, usize);
	if (ret)
		return ret;
	ucmd.user_size = usize;

	ret = llmdev_ioctl_step(&ucmd, op, uarg, op->execute);
	if (!ret && ucmd.finish) {
		/* the first step's object is visible now; its second step */
		ucmd.commit = NULL;
		ucmd.abort = NULL;
		ucmd.reply_on_error = false;
		ret = llmdev_ioctl_step(&ucmd, op, uarg, ucmd.finish);
	}
	return ret;
}

static int llmdev_open(struct inode *inode, struct file *filp)
{
	struct llmdev_device *ldev = container_of(inode->i_cdev,
						  struct llmdev_device, cdev);
	struct llmdev_file *lf;

	if (READ_ONCE(ldev->unplugged))
		return -ENODEV;
	lf = kzalloc(sizeof(*lf), GFP_KERNEL);
	if (!lf)
		return -ENOMEM;
	llmdev_get(ldev);
	lf->ldev = ldev;
	spin_lock_init(&lf->lock);
	hash_init(lf->fences);
	INIT_LIST_HEAD(&lf->done);
	init_waitqueue_head(&lf->wq);
	xa_init_flags(&lf->groups, XA_FLAGS_ALLOC1);
	xa_init_flags(&lf->bufs, XA_FLAGS_ALLOC1);
	mutex_init(&lf->buf_lock);
	INIT_LIST_HEAD(&lf->buf_list);
	lf->next_fence = 1;
	lf->uid = filp->f_cred->euid;
	llmdev_usage_init(&lf->usage);
	mutex_lock(&ldev->files_lock);
	list_add_tail(&lf->node, &ldev->files);
	mutex_unlock(&ldev->files_lock);
	filp->private_data = lf;
	/* user mappings go to the card's inode, whatever node this is */
	filp->f_mapping = ldev->anon_inode->i_mapping;
	return nonseekable_open(inode, filp);
}

static int llmdev_release(struct inode *inode, struct file *filp)
{
	struct llmdev_file *lf = filp->private_data;
	struct llmdev_device *ldev = lf->ldev;

	llmdev_coll_release_file(lf);
	llmdev_fence_release_file(lf);
	/* the file's transfers are over: its buffers are free to go */
	llmdev_buf_release_file(lf);
	llmdev_hbm_release_file(lf);
	mutex_lock(&ldev->files_lock);
	list_del(&lf->node);
	mutex_unlock(&ldev->files_lock);
	kfree(lf);
	llmdev_put(ldev);
	return 0;
}

static __poll_t llmdev_poll(struct file *filp, poll_table *wait)
{
	struct llmdev_file *lf = filp->private_data;
	__poll_t mask;

	poll_wait(filp, &lf->wq, wait);
	mask = llmdev_fence_poll(lf);
	if (llmdev_gone(lf->ldev))
		mask |= EPOLLERR | EPOLLHUP;
	return mask;
}

static int llmdev_mmap(struct file *filp, struct vm_area_struct *vma)
{
	return llmdev_hbm_mmap(filp->private_data, vma);
}

static const struct file_operations llmdev_fops = {
	.owner = THIS_MODULE,
	.open = llmdev_open,
	.release = llmdev_release,
	.unlocked_ioctl = llmdev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = llmdev_poll,
	.mmap = llmdev_mmap,
	.show_fdinfo = llmdev_show_fdinfo,
};

/**
 * llmdev_file_get() - the llmdev file behind a descriptor
 * @fd: file descriptor of the caller
 * @filp: out: the file, to fput() when done with the result
 *
 * Return: the file's context, ERR_PTR(-EBADF) if @fd is not open,
 * ERR_PTR(-EINVAL) if it is not an llmdev card.
 */
struct llmdev_file *llmdev_file_get(int fd, struct file **filp)
{
	struct file *f = fget(fd);

	if (!f)
		return ERR_PTR(-EBADF);
	if (f->f_op != &llmdev_fops) {
		fput(f);
		return ERR_PTR(-EINVAL);
	}
	*filp = f;
	return f->private_data;
}

/* Name the device and prepare its cdev; the node appears at device_add(). */
int llmdev_cdev_add(struct llmdev_device *ldev)
{
	int minor, ret;

	minor = ida_alloc_max(&llmdev_minors, LLMDEV_MAX_CARDS - 1, GFP_KERNEL);
	if (minor < 0)
		return minor;
	ret = dev_set_name(&ldev->dev, LLMDEV_NAME "%d", minor);
	if (ret) {
		ida_free(&llmdev_minors, minor);
		return ret;
	}
	ldev->minor = minor;
	ldev->dev.class = llmdev_class;
	ldev->dev.devt = MKDEV(MAJOR(llmdev_devt), minor);
	cdev_init(&ldev->cdev, &llmdev_fops);
	ldev->cdev.owner = THIS_MODULE;
	cdev_set_parent(&ldev->cdev, &ldev->dev.kobj);
	return 0;
}

void llmdev_cdev_del(struct llmdev_device *ldev)
{
	if (ldev->minor >= 0)
		ida_free(&llmdev_minors, ldev->minor);
	ldev->minor = -1;
}

int llmdev_cdev_init(void)
{
	int ret;

	ret = alloc_chrdev_region(&llmdev_devt, 0, LLMDEV_MAX_CARDS, LLMDEV_NAME);
	if (ret)
		return ret;
	llmdev_class = llmdev_class_create(LLMDEV_NAME);
	if (IS_ERR(llmdev_class)) {
		unregister_chrdev_region(llmdev_devt, LLMDEV_MAX_CARDS);
		return PTR_ERR(llmdev_class);
	}
	return 0;
}

void llmdev_cdev_fini(void)
{
	class_destroy(llmdev_class);
	unregister_chrdev_region(llmdev_devt, LLMDEV_MAX_CARDS);
	ida_destroy(&llmdev_minors);
}
