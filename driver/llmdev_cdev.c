// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: the character device, its file operations and ioctl dispatch.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "llmdev_drv.h"

#define LLMDEV_MAX_CARDS	256

static dev_t llmdev_devt;
static struct class *llmdev_class;
static DEFINE_IDA(llmdev_minors);

/**
 * llmdev_copy_from_user() - read a size-first ioctl argument
 * @dst: kernel copy, ksize bytes
 * @ksize: the kernel's size of the struct
 * @min_size: the size of the struct's first version
 * @src: user pointer; the struct starts with its __u32 size
 *
 * Return: 0; -EFAULT; -EINVAL if the caller's size is below @min_size;
 * -E2BIG if it is larger than @ksize with non-zero bytes past @ksize.
 * On success @dst->size still holds the caller's size, so the reply can be
 * cut to what the caller knows (llmdev_copy_to_user()).
 */
int llmdev_copy_from_user(void *dst, size_t ksize, size_t min_size,
			  const void __user *src)
{
	u32 usize;
	int ret;

	if (get_user(usize, (const u32 __user *)src))
		return -EFAULT;
	if (usize < min_size)
		return -EINVAL;
	ret = copy_struct_from_user(dst, ksize, src, usize);
	*(u32 *)dst = usize;
	return ret;
}

static int llmdev_ioctl_info(struct llmdev_file *lf, void __user *arg)
{
	struct llmdev_device *ldev = lf->ldev;
	struct pci_dev *pdev = ldev->pdev;
	struct llmdev_info info;
	int ret;

	ret = llmdev_copy_from_user(&info, sizeof(info), sizeof(info), arg);
	if (ret)
		return ret;
	if (info.flags)
		return -EINVAL;

	info.spec_version = ldev->spec_version;
	info.num_h2c_rings = LLMDEV_NUM_H2C_RINGS;
	info.num_c2h_rings = LLMDEV_NUM_RINGS - LLMDEV_NUM_H2C_RINGS;
	info.num_link_ports = LLMDEV_NUM_LINK_PORTS;
	info.serial = ldev->serial;
	info.hbm_size = ldev->hbm.size;
	info.hbm_used = llmdev_hbm_used(&ldev->hbm);
	info.hbm_largest_free = llmdev_hbm_largest_free(&ldev->hbm);
	info.pci_domain = pci_domain_nr(pdev->bus);
	info.pci_bus = pdev->bus->number;
	info.pci_devfn = pdev->devfn;
	info.numa_node = dev_to_node(&pdev->dev);
	info.irq_vectors = ldev->nvec;
	return copy_to_user(arg, &info, min_t(u32, info.size, sizeof(info))) ?
	       -EFAULT : 0;
}

typedef int (*llmdev_ioctl_fn)(struct llmdev_file *lf, void __user *arg);

static const llmdev_ioctl_fn llmdev_ioctls[] = {
	[LLMDEV_CMD_INFO - LLMDEV_CMD_BASE] = llmdev_ioctl_info,
	[LLMDEV_CMD_HBM_ALLOC - LLMDEV_CMD_BASE] = llmdev_hbm_ioctl_alloc,
	[LLMDEV_CMD_HBM_FREE - LLMDEV_CMD_BASE] = llmdev_hbm_ioctl_free,
	[LLMDEV_CMD_HBM_LIST - LLMDEV_CMD_BASE] = llmdev_hbm_ioctl_list,
	[LLMDEV_CMD_HBM_OPEN - LLMDEV_CMD_BASE] = llmdev_hbm_ioctl_open,
	[LLMDEV_CMD_DMA_SUBMIT - LLMDEV_CMD_BASE] = llmdev_dma_ioctl_submit,
	[LLMDEV_CMD_FENCE_WAIT - LLMDEV_CMD_BASE] = llmdev_fence_ioctl_wait,
	[LLMDEV_CMD_PERF_READ - LLMDEV_CMD_BASE] = llmdev_perf_ioctl_read,
	[LLMDEV_CMD_LINK_INFO - LLMDEV_CMD_BASE] = llmdev_link_ioctl_info,
	[LLMDEV_CMD_LINK_SET - LLMDEV_CMD_BASE] = llmdev_link_ioctl_set,
	[LLMDEV_CMD_GROUP_CREATE - LLMDEV_CMD_BASE] = llmdev_group_ioctl_create,
	[LLMDEV_CMD_GROUP_DESTROY - LLMDEV_CMD_BASE] = llmdev_group_ioctl_destroy,
	[LLMDEV_CMD_COLL_SUBMIT - LLMDEV_CMD_BASE] = llmdev_coll_ioctl_submit,
	[LLMDEV_CMD_ROUTE_SET - LLMDEV_CMD_BASE] = llmdev_route_ioctl_set,
	[LLMDEV_CMD_ROUTE_GET - LLMDEV_CMD_BASE] = llmdev_route_ioctl_get,
};

static long llmdev_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct llmdev_file *lf = filp->private_data;
	unsigned int nr = _IOC_NR(cmd);

	if (cmd != _IO(LLMDEV_TYPE, nr) || nr < LLMDEV_CMD_BASE ||
	    nr - LLMDEV_CMD_BASE >= ARRAY_SIZE(llmdev_ioctls))
		return -ENOTTY;
	/*
	 * Handlers that touch the hardware guard it with llmdev_enter();
	 * this early check only spares the others useless work.
	 */
	if (READ_ONCE(lf->ldev->unplugged))
		return -ENODEV;
	return llmdev_ioctls[nr - LLMDEV_CMD_BASE](lf, (void __user *)arg);
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
	xa_init_flags(&lf->fences, XA_FLAGS_ALLOC1);
	INIT_LIST_HEAD(&lf->done);
	init_waitqueue_head(&lf->wq);
	xa_init_flags(&lf->groups, XA_FLAGS_ALLOC1);
	lf->next_fence = 1;
	mutex_lock(&ldev->files_lock);
	list_add_tail(&lf->node, &ldev->files);
	if (!ldev->mapping)
		ldev->mapping = inode->i_mapping;
	mutex_unlock(&ldev->files_lock);
	filp->private_data = lf;
	return nonseekable_open(inode, filp);
}

static int llmdev_release(struct inode *inode, struct file *filp)
{
	struct llmdev_file *lf = filp->private_data;
	struct llmdev_device *ldev = lf->ldev;

	llmdev_coll_release_file(lf);
	llmdev_fence_release_file(lf);
	llmdev_hbm_release_file(lf);
	mutex_lock(&ldev->files_lock);
	list_del(&lf->node);
	mutex_unlock(&ldev->files_lock);
	xa_destroy(&lf->fences);
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
	if (READ_ONCE(lf->ldev->unplugged))
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
