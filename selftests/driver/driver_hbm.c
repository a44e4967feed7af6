// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: HBM regions. Allocation, alignment, rounding, listing,
 * persistent regions across processes and users, release at close,
 * scrubbing on free, mmap of the aperture and its coherence with DMA,
 * exhaustion and fragmentation of the first-fit allocator.
 */
#include <sched.h>

#include "driver_util.h"
#include "kselftest_harness.h"

/* In forked children: report the failing check on stderr and exit 1. */
#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# child %d: %s:%d: check failed: %s\n",\
			getpid(), __FILE__, __LINE__, #cond);		\
		_exit(1);						\
	}								\
} while (0)

FIXTURE(hbm) {
	int kmsg;		/* /dev/kmsg, for kernel reports */
	int fd;
	struct llmdev_info info;
	uint64_t used0;		/* hbm_used when the test started */
};

FIXTURE_SETUP(hbm)
{
	LD_FIXTURE_START();
	LD_FIXTURE_OPEN_CARD0();
	self->used0 = self->info.hbm_used;
}

FIXTURE_TEARDOWN(hbm)
{
	LD_FIXTURE_END();
}

/* Region sizes for the big tests: a 64th of HBM, at least 1 MiB. */
static uint64_t chunk_size(const struct llmdev_info *info)
{
	uint64_t c = info->hbm_size / 64;

	return c < LD_MIB ? LD_MIB : c;
}

TEST_F(hbm, alloc_free)
{
	struct llmdev_hbm_alloc a[5];
	struct llmdev_info i;
	uint64_t used;
	unsigned int k;

	SETUP_OR_SKIP();
	used = self->used0;
	for (k = 0; k < 5; k++) {
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, (k + 1) * 65536, 0, 0, NULL, &a[k]));
		used += (k + 1) * 65536;
		EXPECT_EQ(0, a[k].hbm_offset % 4096);
		EXPECT_EQ(a[k].hbm_offset, a[k].mmap_offset)
			TH_LOG("mmap_offset differs from hbm_offset (allowed, but note)");
		ASSERT_EQ(0, ld_info(self->fd, &i));
		EXPECT_EQ(used, i.hbm_used);
		EXPECT_EQ(i.hbm_largest_free, a[k].largest_free);
	}
	/* regions do not overlap */
	for (k = 1; k < 5; k++) {
		unsigned int j;

		for (j = 0; j < k; j++)
			EXPECT_TRUE(a[k].hbm_offset >= a[j].hbm_offset + (j + 1) * 65536 ||
				    a[j].hbm_offset >= a[k].hbm_offset + (k + 1) * 65536);
	}
	for (k = 0; k < 5; k++)
		ASSERT_EQ(0, ld_hbm_free(self->fd, a[k].handle));
	ASSERT_EQ(0, ld_info(self->fd, &i));
	EXPECT_EQ(self->used0, i.hbm_used);
	EXPECT_EQ(self->info.hbm_largest_free, i.hbm_largest_free);
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
}

TEST_F(hbm, alignment)
{
	struct llmdev_hbm_alloc pad, a;
	uint64_t align;

	SETUP_OR_SKIP();
	for (align = 4096; align <= 16 * LD_MIB && align < self->info.hbm_size / 4;
	     align <<= 1) {
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &pad));
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, align, 0, NULL, &a))
			TH_LOG("align %#llx", (unsigned long long)align);
		EXPECT_EQ(0, a.hbm_offset % align)
			TH_LOG("align %#llx: offset %#llx", (unsigned long long)align,
			       (unsigned long long)a.hbm_offset);
		ASSERT_EQ(0, ld_hbm_free(self->fd, a.handle));
		ASSERT_EQ(0, ld_hbm_free(self->fd, pad.handle));
	}
}

TEST_F(hbm, length_rounding)
{
	const uint64_t len[] = { 1, 4095, 4096, 4097, 65537, LD_MIB - 1 };
	const uint64_t want[] = { 4096, 4096, 4096, 8192, 69632, LD_MIB };
	struct llmdev_hbm_region *r;
	struct llmdev_hbm_alloc a;
	struct llmdev_info i;
	unsigned int k, n;

	SETUP_OR_SKIP();
	for (k = 0; k < sizeof(len) / sizeof(len[0]); k++) {
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, len[k], 0, 0, NULL, &a));
		ASSERT_EQ(0, ld_info(self->fd, &i));
		EXPECT_EQ(self->used0 + want[k], i.hbm_used) TH_LOG("length %llu",
			(unsigned long long)len[k]);
		ASSERT_EQ(0, ld_hbm_list(self->fd, &r, &n));
		ASSERT_NE(NULL, ld_find_region(r, n, a.handle));
		EXPECT_EQ(want[k], ld_find_region(r, n, a.handle)->length);
		free(r);
		ASSERT_EQ(0, ld_hbm_free(self->fd, a.handle));
	}
}

TEST_F(hbm, list_flags)
{
	struct llmdev_hbm_alloc mine, pmine, pother, hidden;
	struct llmdev_hbm_region *r, *e;
	char n1[LLMDEV_NAME_LEN], n2[LLMDEV_NAME_LEN];
	unsigned int n;
	int fd2 = ld_open(0);

	SETUP_OR_SKIP();
	ASSERT_LE(0, fd2);
	snprintf(n1, sizeof(n1), "hbm-pm-%d", getpid());
	snprintf(n2, sizeof(n2), "hbm-po-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, "m", &mine));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 8192, 0, LLMDEV_HBM_PERSISTENT, n1, &pmine));
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 12288, 0, LLMDEV_HBM_PERSISTENT, n2, &pother));
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 4096, 0, 0, "h", &hidden));
	ASSERT_EQ(0, ld_hbm_list(self->fd, &r, &n));
	e = ld_find_region(r, n, mine.handle);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(LLMDEV_REGION_MINE, e->flags);
	EXPECT_STREQ("m", e->name);
	e = ld_find_region(r, n, pmine.handle);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(LLMDEV_REGION_MINE | LLMDEV_REGION_PERSISTENT, e->flags);
	EXPECT_EQ(8192, e->length);
	EXPECT_STREQ(n1, e->name);
	e = ld_find_region(r, n, pother.handle);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(LLMDEV_REGION_PERSISTENT, e->flags);
	EXPECT_EQ(pother.hbm_offset, e->hbm_offset);
	EXPECT_EQ(getpid(), e->owner_pid);
	EXPECT_EQ(0, e->owner_uid);
	EXPECT_EQ(NULL, ld_find_region(r, n, hidden.handle));
	free(r);
	/* and from the other file's side */
	ASSERT_EQ(0, ld_hbm_list(fd2, &r, &n));
	EXPECT_EQ(NULL, ld_find_region(r, n, mine.handle));
	ASSERT_NE(NULL, ld_find_region(r, n, pmine.handle));
	EXPECT_EQ(LLMDEV_REGION_PERSISTENT, ld_find_region(r, n, pmine.handle)->flags);
	ASSERT_NE(NULL, ld_find_region(r, n, hidden.handle));
	EXPECT_EQ(LLMDEV_REGION_MINE, ld_find_region(r, n, hidden.handle)->flags);
	free(r);
	EXPECT_EQ(0, ld_hbm_free(self->fd, pmine.handle));
	EXPECT_EQ(0, ld_hbm_free(fd2, pother.handle));
	EXPECT_EQ(0, ld_hbm_free(self->fd, mine.handle));
	close(fd2);
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
}

TEST_F(hbm, persistent_survives_exit)
{
	const uint64_t len = 65536;
	struct llmdev_hbm_region *r, *e;
	struct llmdev_hbm_open o;
	char name[LLMDEV_NAME_LEN];
	uint8_t *want = ld_alloc_buf(len), *got = ld_alloc_buf(len);
	unsigned int n;
	pid_t pid;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, got);
	snprintf(name, sizeof(name), "hbm-persist-%d", getpid());
	ld_fill(want, len, 42);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev_hbm_alloc a;
		int fd = ld_open(0);

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(!ld_hbm_alloc(fd, len, 0, LLMDEV_HBM_PERSISTENT, name, &a));
		CHILD_CHECK(!ld_xfer(fd, a.handle, 0, want, len, true, 0));
		/* exit without closing: the kernel closes */
		_exit(0);
	}
	ASSERT_EQ(0, ld_wait_child(pid));

	ASSERT_EQ(0, ld_hbm_list(self->fd, &r, &n));
	for (e = NULL; n--; )
		if (!strcmp(r[n].name, name))
			e = &r[n];
	ASSERT_NE(NULL, e) TH_LOG("persistent region gone after its creator exited");
	EXPECT_EQ(LLMDEV_REGION_PERSISTENT, e->flags);
	EXPECT_EQ(len, e->length);
	EXPECT_EQ(0, e->owner_uid);
	EXPECT_TRUE(e->owner_pid == pid || e->owner_pid == 0)
		TH_LOG("owner_pid %d, creator was %d", e->owner_pid, pid);

	ASSERT_EQ(0, ld_hbm_open(self->fd, name, &o));
	EXPECT_EQ(e->handle, o.handle);
	EXPECT_EQ(len, o.length);
	EXPECT_EQ(e->hbm_offset, o.mmap_offset) TH_LOG("mmap_offset of an opened region");
	free(r);
	ASSERT_EQ(0, ld_xfer(self->fd, o.handle, 0, got, len, false, 0));
	EXPECT_EQ(-1, ld_cmp(want, got, len)) TH_LOG("data of the persistent region changed");
	/* EEXIST still holds for the name */
	EXPECT_EQ(-EEXIST, ld_hbm_alloc(self->fd, 4096, 0, LLMDEV_HBM_PERSISTENT, name, NULL));
	EXPECT_EQ(0, ld_hbm_free(self->fd, o.handle));
	EXPECT_EQ(-ENOENT, ld_hbm_open(self->fd, name, &o));
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
	ld_free_buf(want, len);
	ld_free_buf(got, len);
}

TEST_F(hbm, persistent_eexist_across_processes)
{
	struct llmdev_hbm_alloc a;
	char name[LLMDEV_NAME_LEN];
	pid_t pid;

	SETUP_OR_SKIP();
	snprintf(name, sizeof(name), "hbm-dup-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, LLMDEV_HBM_PERSISTENT, name, &a));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = ld_open(1 < ld_num_cards() ? 1 : 0);
		int fd0 = ld_open(0);

		CHILD_CHECK(fd >= 0 && fd0 >= 0);
		CHILD_CHECK(ld_hbm_alloc(fd0, 4096, 0, LLMDEV_HBM_PERSISTENT,
					 name, NULL) == -EEXIST);
		if (fd != fd0 && ld_num_cards() > 1) {
			struct llmdev_hbm_alloc b;

			/* names are per card */
			CHILD_CHECK(!ld_hbm_alloc(fd, 4096, 0, LLMDEV_HBM_PERSISTENT,
						  name, &b));
			CHILD_CHECK(!ld_hbm_free(fd, b.handle));
		}
		_exit(0);
	}
	EXPECT_EQ(0, ld_wait_child(pid));
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

/*
 * Ownership across users: root's persistent region is listed to nobody but
 * cannot be freed, opened, mapped or used for DMA; nobody's region can be
 * opened by another process of the same uid, not by another uid, and root
 * (CAP_SYS_ADMIN) may free it.
 */
TEST_F(hbm, persistent_permissions)
{
	struct llmdev_hbm_alloc root, mine, mine2;
	struct llmdev_hbm_open o;
	char rname[LLMDEV_NAME_LEN], nname[LLMDEV_NAME_LEN], nname2[LLMDEV_NAME_LEN];
	int fds[2];
	pid_t pid;
	int ret;

	SETUP_OR_SKIP();
	snprintf(rname, sizeof(rname), "hbm-root-%d", getpid());
	snprintf(nname, sizeof(nname), "hbm-nobody-%d", getpid());
	snprintf(nname2, sizeof(nname2), "hbm-nobody2-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 8192, 0, LLMDEV_HBM_PERSISTENT,
				  rname, &root));
	ASSERT_EQ(0, pipe(fds));

	/* 1: nobody vs root's region; creates its own persistent region */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev_hbm_region *r, *e;
		struct llmdev_hbm_alloc mine, priv;
		struct llmdev_hbm_open oo;
		uint8_t buf[64];
		unsigned int n;
		void *p;
		int fd;

		CHILD_CHECK(!ld_drop_privs());
		fd = ld_open(0);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(!ld_hbm_list(fd, &r, &n));
		e = ld_find_region(r, n, root.handle);
		CHILD_CHECK(e != NULL);
		CHILD_CHECK(e->flags == LLMDEV_REGION_PERSISTENT);
		CHILD_CHECK(e->owner_uid == 0);
		CHILD_CHECK(!strcmp(e->name, rname));
		CHILD_CHECK(ld_hbm_free(fd, root.handle) == -EPERM);
		CHILD_CHECK(ld_hbm_open(fd, rname, &oo) == -EPERM);
		CHILD_CHECK(ld_submit(fd, root.handle, 0, buf, 64, false, 0, NULL) == -EPERM);
		CHILD_CHECK(ld_submit(fd, root.handle, 0, buf, 64, true, 0, NULL) == -EPERM);
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, root.mmap_offset);
		CHILD_CHECK(p == MAP_FAILED);
		if (errno != EACCES && errno != EPERM)
			fprintf(stderr, "# child: mmap of root's region: %s\n", strerror(errno));
		CHILD_CHECK(errno == EACCES || errno == EPERM);
		/* its own regions work */
		CHILD_CHECK(!ld_hbm_alloc(fd, 4096, 0, 0, NULL, &priv));
		CHILD_CHECK(!ld_xfer(fd, priv.handle, 0, buf, 64, true, 0));
		CHILD_CHECK(!ld_hbm_free(fd, priv.handle));
		CHILD_CHECK(!ld_hbm_alloc(fd, 4096, 0, LLMDEV_HBM_PERSISTENT, nname, &mine));
		CHILD_CHECK(write(fds[1], &mine, sizeof(mine)) == sizeof(mine));
		CHILD_CHECK(!ld_hbm_alloc(fd, 4096, 0, LLMDEV_HBM_PERSISTENT, nname2, &mine));
		CHILD_CHECK(write(fds[1], &mine, sizeof(mine)) == sizeof(mine));
		free(r);
		_exit(0);
	}
	ASSERT_EQ(0, ld_wait_child(pid));
	ASSERT_EQ(sizeof(mine), read(fds[0], &mine, sizeof(mine)));
	ASSERT_EQ(sizeof(mine2), read(fds[0], &mine2, sizeof(mine2)));
	close(fds[0]);
	close(fds[1]);

	/* 2: another process of uid nobody may open and use it */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev_hbm_open oo;
		uint8_t buf[64] = { 1 };
		void *p;
		int fd;

		CHILD_CHECK(!ld_drop_privs());
		fd = ld_open(0);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(!ld_hbm_open(fd, nname, &oo));
		CHILD_CHECK(oo.handle == mine.handle);
		CHILD_CHECK(!ld_xfer(fd, oo.handle, 0, buf, 64, true, 0));
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 oo.mmap_offset);
		CHILD_CHECK(p != MAP_FAILED);
		CHILD_CHECK(((volatile uint8_t *)p)[0] == 1);
		munmap(p, 4096);
		_exit(0);
	}
	EXPECT_EQ(0, ld_wait_child(pid));

	/* 3: a different unprivileged uid may not */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev_hbm_open oo;
		int fd;

		CHILD_CHECK(!llmdev_become(LLMDEV_OTHER_UID, true));
		fd = ld_open(0);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(ld_hbm_open(fd, nname, &oo) == -EPERM);
		CHILD_CHECK(ld_hbm_free(fd, mine.handle) == -EPERM);
		_exit(0);
	}
	EXPECT_EQ(0, ld_wait_child(pid));

	/* root (CAP_SYS_ADMIN) may open and free anybody's region */
	ret = ld_hbm_open(self->fd, nname, &o);
	EXPECT_EQ(0, ret);
	EXPECT_EQ(0, ld_hbm_free(self->fd, mine.handle));

	/* 4: the owner uid frees its region from another process */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		CHILD_CHECK(!ld_drop_privs());
		fd = ld_open(0);
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(!ld_hbm_free(fd, mine2.handle));
		CHILD_CHECK(ld_hbm_open(fd, nname2, NULL) == -ENOENT);
		_exit(0);
	}
	EXPECT_EQ(0, ld_wait_child(pid));

	/*
	 * 5: the effective uid is the one that counts: a process whose
	 * real uid is root but effective uid another (a set-uid helper, a
	 * daemon acting for a tenant) does not reach root's region, and
	 * what it creates is that uid's
	 */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev_hbm_region *r, *e;
		struct llmdev_hbm_alloc eu;
		struct llmdev_hbm_open oo;
		unsigned int n;
		int fd = ld_open(0);

		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(!seteuid(LLMDEV_OTHER_UID));
		CHILD_CHECK(getuid() == 0);
		CHILD_CHECK(ld_hbm_open(fd, rname, &oo) == -EPERM);
		CHILD_CHECK(ld_hbm_free(fd, root.handle) == -EPERM);
		CHILD_CHECK(!ld_hbm_alloc(fd, 4096, 0, LLMDEV_HBM_PERSISTENT, nname2, &eu));
		CHILD_CHECK(!ld_hbm_list(fd, &r, &n));
		e = ld_find_region(r, n, eu.handle);
		CHILD_CHECK(e && e->owner_uid == LLMDEV_OTHER_UID);
		free(r);
		CHILD_CHECK(!ld_hbm_free(fd, eu.handle));
		_exit(0);
	}
	EXPECT_EQ(0, ld_wait_child(pid));
	EXPECT_EQ(0, ld_hbm_free(self->fd, root.handle));
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
}

/*
 * The uid alone is not enough: a region made with CAP_SYS_ADMIN (say,
 * the weights `llmctl load` made as root) stays out of reach of a uid 0
 * that lacks it (a container given the card via CDI, without a user
 * namespace): it cannot open, map, transfer to or free it; what such a
 * process makes is its own, usable from its other open files. A region
 * made in another user namespace is out of reach of the same kuid outside
 * it.
 */
TEST_F(hbm, persistent_admin_only)
{
	struct llmdev_hbm_alloc root, mine;
	char rname[LLMDEV_NAME_LEN], cname[LLMDEV_NAME_LEN], uname[LLMDEV_NAME_LEN];
	struct llmdev_hbm_open o;
	int fds[2], st;
	pid_t pid;

	SETUP_OR_SKIP();
	if (geteuid())
		SKIP(return, "needs root with CAP_SYS_ADMIN");
	snprintf(rname, sizeof(rname), "hbm-admin-%d", getpid());
	snprintf(cname, sizeof(cname), "hbm-nocap-%d", getpid());
	snprintf(uname, sizeof(uname), "hbm-userns-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 8192, 0, LLMDEV_HBM_PERSISTENT,
				  rname, &root));
	ASSERT_EQ(0, pipe(fds));

	/* 1: uid 0 without CAP_SYS_ADMIN vs root's region; makes its own */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev_hbm_region *r, *e;
		struct llmdev_hbm_open oo;
		struct llmdev_hbm_alloc own;
		uint8_t buf[64] = { 7 };
		unsigned int n;
		void *p;
		int fd, fd2;

		CHILD_CHECK(!ld_drop_cap(CAP_SYS_ADMIN));
		CHILD_CHECK(geteuid() == 0);
		fd = ld_open(0);
		CHILD_CHECK(fd >= 0);
		/* listed, with its owner, as before */
		CHILD_CHECK(!ld_hbm_list(fd, &r, &n));
		e = ld_find_region(r, n, root.handle);
		CHILD_CHECK(e && e->owner_uid == 0 && !strcmp(e->name, rname));
		CHILD_CHECK(!(e->flags & LLMDEV_REGION_UNPRIVILEGED));
		free(r);
		CHILD_CHECK(ld_hbm_open(fd, rname, &oo) == -EPERM);
		CHILD_CHECK(ld_submit(fd, root.handle, 0, buf, 64, false, 0, NULL) == -EPERM);
		CHILD_CHECK(ld_submit(fd, root.handle, 0, buf, 64, true, 0, NULL) == -EPERM);
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, root.mmap_offset);
		CHILD_CHECK(p == MAP_FAILED && errno == EACCES);
		CHILD_CHECK(ld_hbm_free(fd, root.handle) == -EPERM);

		/* its own persistent region, from another open file too */
		CHILD_CHECK(!ld_hbm_alloc(fd, 4096, 0, LLMDEV_HBM_PERSISTENT, cname, &own));
		fd2 = ld_open(0);
		CHILD_CHECK(fd2 >= 0);
		CHILD_CHECK(!ld_hbm_open(fd2, cname, &oo));
		CHILD_CHECK(oo.handle == own.handle);
		CHILD_CHECK(!ld_xfer(fd2, oo.handle, 0, buf, 64, true, 0));
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2, oo.mmap_offset);
		CHILD_CHECK(p != MAP_FAILED);
		CHILD_CHECK(((volatile uint8_t *)p)[0] == 7);
		munmap(p, 4096);
		close(fd);
		CHILD_CHECK(!ld_hbm_free(fd2, own.handle));
		CHILD_CHECK(ld_hbm_open(fd2, cname, NULL) == -ENOENT);
		/* and one it leaves behind, for root */
		CHILD_CHECK(!ld_hbm_alloc(fd2, 4096, 0, LLMDEV_HBM_PERSISTENT, cname, &own));
		CHILD_CHECK(write(fds[1], &own, sizeof(own)) == sizeof(own));
		_exit(0);
	}
	/* on a failure, go on: root's region is freed at the end */
	EXPECT_EQ(0, ld_wait_child(pid));
	close(fds[1]);
	if (read(fds[0], &mine, sizeof(mine)) == sizeof(mine)) {
		struct llmdev_hbm_region *r, *e;
		unsigned int n;

		/* owned by uid 0 too, but said to be made without CAP_SYS_ADMIN */
		ASSERT_EQ(0, ld_hbm_list(self->fd, &r, &n));
		e = ld_find_region(r, n, mine.handle);
		ASSERT_NE(NULL, e);
		EXPECT_EQ(0, e->owner_uid);
		EXPECT_EQ(LLMDEV_REGION_PERSISTENT | LLMDEV_REGION_UNPRIVILEGED, e->flags);
		free(r);
		/* CAP_SYS_ADMIN may use what uid 0 without it made */
		EXPECT_EQ(0, ld_hbm_open(self->fd, cname, &o));
		EXPECT_EQ(mine.handle, o.handle);
		EXPECT_EQ(0, ld_hbm_free(self->fd, mine.handle));
	}
	close(fds[0]);

	/*
	 * 2: the same kuid (0) in a user namespace of its own: its region is
	 * out of reach of uid 0 outside (without CAP_SYS_ADMIN), and root's
	 * is out of its reach
	 */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev_hbm_alloc own;
		int fd = ld_open(0), fd2;

		CHILD_CHECK(fd >= 0);
		if (unshare(CLONE_NEWUSER))
			_exit(4);	/* no user namespaces here */
		CHILD_CHECK(ld_hbm_open(fd, rname, NULL) == -EPERM);
		CHILD_CHECK(!ld_hbm_alloc(fd, 4096, 0, LLMDEV_HBM_PERSISTENT, uname, &own));
		/* another open file in the same namespace may use it */
		fd2 = ld_open(0);
		CHILD_CHECK(fd2 >= 0);
		CHILD_CHECK(!ld_hbm_open(fd2, uname, NULL));
		_exit(0);
	}
	st = ld_wait_child(pid);
	if (st == 4) {
		TH_LOG("unshare(CLONE_NEWUSER) refused: user-namespace case not run");
	} else {
		EXPECT_EQ(0, st);
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			int fd;

			CHILD_CHECK(!ld_drop_cap(CAP_SYS_ADMIN));
			fd = ld_open(0);
			CHILD_CHECK(fd >= 0);
			CHILD_CHECK(ld_hbm_open(fd, uname, NULL) == -EPERM);
			_exit(0);
		}
		EXPECT_EQ(0, ld_wait_child(pid));
		/* CAP_SYS_ADMIN frees it */
		st = ld_hbm_open(self->fd, uname, &o);
		EXPECT_EQ(0, st);
		if (!st)
			EXPECT_EQ(0, ld_hbm_free(self->fd, o.handle));
	}

	/* root, with CAP_SYS_ADMIN, still has its own */
	EXPECT_EQ(0, ld_hbm_open(self->fd, rname, &o));
	EXPECT_EQ(0, ld_hbm_free(self->fd, root.handle));
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
}

TEST_F(hbm, freed_at_close)
{
	struct llmdev_hbm_alloc a, p;
	char name[LLMDEV_NAME_LEN];
	uint64_t used;
	unsigned int k;
	int fd2 = ld_open(0);

	SETUP_OR_SKIP();
	ASSERT_LE(0, fd2);
	snprintf(name, sizeof(name), "hbm-close-%d", getpid());
	for (k = 0; k < 8; k++)
		ASSERT_EQ(0, ld_hbm_alloc(fd2, 65536 * (k + 1), 0, 0, NULL, &a));
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 65536, 0, LLMDEV_HBM_PERSISTENT, name, &p));
	ASSERT_EQ(0, ld_sysfs_u64(0, "hbm_used", &used));
	EXPECT_EQ(self->used0 + 65536 * (36 + 1), used);
	close(fd2);
	used = ld_hbm_used_settle(0, self->used0 + 65536);
	EXPECT_EQ(self->used0 + 65536, used) TH_LOG("regions not freed at close");
	/* the persistent one stays, without an owning file */
	ASSERT_EQ(0, ld_hbm_open(self->fd, name, NULL));
	EXPECT_EQ(0, ld_hbm_free(self->fd, p.handle));
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
}

/* Read a region back with DMA; the first non-zero byte, or -1. */
static long region_nonzero(int fd, uint32_t handle, uint64_t len)
{
	uint8_t *buf = ld_alloc_buf(len);
	long ret;

	if (!buf)
		return -2;
	memset(buf, 0xcc, len);
	ret = ld_xfer(fd, handle, 0, buf, len, false, 0);
	ret = ret ? -3 : ld_nonzero(buf, len);
	ld_free_buf(buf, len);
	return ret;
}

TEST_F(hbm, scrub_on_free)
{
	const uint64_t len = LD_MIB;
	struct llmdev_hbm_alloc a, b;
	struct llmdev_perf p0, p1;
	uint8_t *buf = ld_alloc_buf(len);
	volatile uint8_t *map;
	long nz;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, 0, NULL, &a));
	/* a fresh region reads zero */
	EXPECT_EQ(-1, region_nonzero(self->fd, a.handle, len));
	ld_fill(buf, len, 99);
	ASSERT_EQ(0, ld_xfer(self->fd, a.handle, 0, buf, len, true, 1));
	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		   a.mmap_offset + len - 8192);
	ASSERT_NE(MAP_FAILED, map);
	map[8191] = 0x77;
	munmap((void *)map, 8192);
	ASSERT_EQ(0, ld_perf(self->fd, &p0));
	ASSERT_EQ(0, ld_hbm_free(self->fd, a.handle));
	ASSERT_EQ(0, ld_perf(self->fd, &p1));
	EXPECT_LE(p0.counters[LLMDEV_COUNTER_SCRUB_BYTES] + len,
		  p1.counters[LLMDEV_COUNTER_SCRUB_BYTES]);

	ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, 0, NULL, &b));
	EXPECT_EQ(a.hbm_offset, b.hbm_offset) TH_LOG("first fit did not reuse the extent");
	nz = region_nonzero(self->fd, b.handle, len);
	EXPECT_EQ(-1, nz) TH_LOG("byte %ld of a freed region survived", nz);
	EXPECT_EQ(0, ld_hbm_free(self->fd, b.handle));
	ld_free_buf(buf, len);
}

TEST_F(hbm, scrub_on_close)
{
	const uint64_t len = 256 * LD_KIB;
	struct llmdev_hbm_alloc a, b;
	uint8_t *buf = ld_alloc_buf(len);
	int fd2 = ld_open(0);
	long nz;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ld_hbm_alloc(fd2, len, 0, 0, NULL, &a));
	ld_fill(buf, len, 5);
	ASSERT_EQ(0, ld_xfer(fd2, a.handle, 0, buf, len, true, 0));
	close(fd2);
	ASSERT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, 0, NULL, &b));
	EXPECT_EQ(a.hbm_offset, b.hbm_offset);
	nz = region_nonzero(self->fd, b.handle, len);
	EXPECT_EQ(-1, nz) TH_LOG("byte %ld of the closed file's region survived", nz);
	EXPECT_EQ(0, ld_hbm_free(self->fd, b.handle));
	ld_free_buf(buf, len);
}

TEST_F(hbm, mmap_coherent_with_dma)
{
	const uint64_t len = 256 * LD_KIB;
	struct llmdev_hbm_alloc a;
	uint8_t *want = ld_alloc_buf(len), *got = ld_alloc_buf(len);
	uint8_t *map, *part;
	long bad;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, got);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, 0, NULL, &a));
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		   a.mmap_offset);
	ASSERT_NE(MAP_FAILED, map) TH_LOG("mmap: %s", strerror(errno));

	/* CPU writes through the aperture, the card reads them */
	ld_fill(want, len, 11);
	memcpy(map, want, len);
	__sync_synchronize();
	ASSERT_EQ(0, ld_xfer(self->fd, a.handle, 0, got, len, false, 0));
	bad = ld_cmp(want, got, len);
	EXPECT_EQ(-1, bad) TH_LOG("mmap write -> DMA read differs at %ld", bad);

	/* the card writes, the CPU reads through the aperture */
	ld_fill(want, len, 12);
	ASSERT_EQ(0, ld_xfer(self->fd, a.handle, 0, want, len, true, 1));
	memcpy(got, map, len);
	bad = ld_cmp(want, got, len);
	EXPECT_EQ(-1, bad) TH_LOG("DMA write -> mmap read differs at %ld", bad);

	/* a mapping of part of the region, at an offset */
	part = mmap(NULL, 8192, PROT_READ, MAP_SHARED, self->fd,
		    a.mmap_offset + 3 * 4096);
	ASSERT_NE(MAP_FAILED, part);
	EXPECT_EQ(-1, ld_cmp(want + 3 * 4096, part, 8192));
	munmap(part, 8192);
	/* odd-sized accesses through the map */
	((volatile uint8_t *)map)[12345] = 0xab;
	((volatile uint16_t *)(map + 20000))[0] = 0x1234;
	((volatile uint32_t *)(map + 30000))[0] = 0xdeadbeef;
	((volatile uint64_t *)(map + 40000))[0] = 0x0123456789abcdefULL;
	ASSERT_EQ(0, ld_xfer(self->fd, a.handle, 0, got, len, false, 1));
	EXPECT_EQ(0xab, got[12345]);
	EXPECT_EQ(0x1234, *(uint16_t *)(got + 20000));
	EXPECT_EQ(0xdeadbeef, *(uint32_t *)(got + 30000));
	EXPECT_EQ(0x0123456789abcdefULL, *(uint64_t *)(got + 40000));

	munmap(map, len);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	ld_free_buf(want, len);
	ld_free_buf(got, len);
}

TEST_F(hbm, mmap_errors)
{
	struct llmdev_hbm_alloc a, b, other;
	int fd2 = ld_open(0);
	void *p;

	SETUP_OR_SKIP();
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &a));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &b));
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 65536, 0, 0, NULL, &other));

	/* beyond the region */
	p = mmap(NULL, 65536 + 4096, PROT_READ, MAP_SHARED, self->fd, a.mmap_offset);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno) TH_LOG("mmap beyond the region: %s", strerror(errno));
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, self->fd,
		 a.mmap_offset + 65536 - 4096);
	EXPECT_EQ(MAP_FAILED, p);
	/* an offset that is no region */
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, self->info.hbm_size);
	EXPECT_EQ(MAP_FAILED, p);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, 1ULL << 44);
	EXPECT_EQ(MAP_FAILED, p);
	/* a private mapping of device memory */
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, self->fd, a.mmap_offset);
	EXPECT_EQ(MAP_FAILED, p) TH_LOG("MAP_PRIVATE of HBM accepted");
	if (p != MAP_FAILED)
		munmap(p, 4096);
	else
		EXPECT_EQ(EINVAL, errno) TH_LOG("MAP_PRIVATE: %s", strerror(errno));
	/* another file's non-persistent region (uapi: "Who may use a region") */
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, other.mmap_offset);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EACCES, errno) TH_LOG("mmap of another file's region: %s",
					strerror(errno));
	if (p != MAP_FAILED)
		munmap(p, 4096);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	EXPECT_EQ(0, ld_hbm_free(self->fd, b.handle));
	close(fd2);
}

/* "Existing mmaps of the region are zapped; later accesses get SIGBUS." */
TEST_F(hbm, mmap_after_free)
{
	struct llmdev_hbm_alloc a, b;
	uint8_t *buf = ld_alloc_buf(8192);
	volatile uint8_t *map;
	uint8_t v = 0;
	int sig;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 8192, 0, 0, NULL, &a));
	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		   a.mmap_offset);
	ASSERT_NE(MAP_FAILED, map);
	map[0] = 0x11;
	EXPECT_EQ(0, ld_touch(map + 4096, false, &v));
	ASSERT_EQ(0, ld_hbm_free(self->fd, a.handle));
	sig = ld_touch(map, false, &v);
	EXPECT_EQ(SIGBUS, sig) TH_LOG("read after free: signal %d, value %#x", sig, v);
	sig = ld_touch(map + 4096, true, NULL);
	EXPECT_EQ(SIGBUS, sig) TH_LOG("write after free: signal %d", sig);

	/* the space is reused; the old mapping must not reach the new tenant */
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 8192, 0, 0, NULL, &b));
	ld_fill(buf, 8192, 3);
	ASSERT_EQ(0, ld_xfer(self->fd, b.handle, 0, buf, 8192, true, 0));
	sig = ld_touch(map + 100, false, &v);
	EXPECT_EQ(SIGBUS, sig) TH_LOG("stale mapping read %#x (signal %d)", v, sig);
	sig = ld_touch(map + 100, true, NULL);
	EXPECT_EQ(SIGBUS, sig);
	/* and the write through it did not land */
	memset(buf, 0, 8192);
	ASSERT_EQ(0, ld_xfer(self->fd, b.handle, 0, buf, 8192, false, 0));
	if (sig != SIGBUS) {
		EXPECT_NE(0x5a, buf[100]) TH_LOG("a stale mapping wrote into another region");
	}
	munmap((void *)map, 8192);
	EXPECT_EQ(0, ld_hbm_free(self->fd, b.handle));
	ld_free_buf(buf, 8192);
}

/*
 * A second device node for the same card, made with mknod (as a container
 * gets one): a mapping made through it is zapped when the region is freed
 * through the first node, and never reaches the next tenant of that HBM.
 */
TEST_F(hbm, mmap_through_mknod_node_zapped)
{
	char node[64], pname[LLMDEV_NAME_LEN];
	struct llmdev_hbm_alloc a, b;
	struct llmdev_hbm_open o;
	volatile uint8_t *map;
	uint8_t *buf = ld_alloc_buf(8192);
	struct stat st;
	uint8_t v = 0;
	int fd2, sig;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, stat("/dev/llmdev0", &st));
	snprintf(node, sizeof(node), "/tmp/llmdev0-mknod-%d", getpid());
	unlink(node);
	ASSERT_EQ(0, mknod(node, S_IFCHR | 0600, st.st_rdev)) TH_LOG("mknod: %m");
	fd2 = open(node, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2) TH_LOG("open %s: %m", node);

	snprintf(pname, sizeof(pname), "mknod-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 8192, 0, LLMDEV_HBM_PERSISTENT,
				  pname, &a));
	ASSERT_EQ(0, ld_hbm_open(fd2, pname, &o));
	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd2,
		   o.mmap_offset);
	ASSERT_NE(MAP_FAILED, map);
	map[4096 + 7] = 0x37;
	EXPECT_EQ(0, ld_touch(map + 4096 + 7, false, &v));
	EXPECT_EQ(0x37, v);

	/* freed through the first node */
	ASSERT_EQ(0, ld_hbm_free(self->fd, a.handle));
	sig = ld_touch(map + 4096 + 7, false, &v);
	EXPECT_EQ(SIGBUS, sig) TH_LOG("read through the mknod node after free: signal %d, value %#x",
				      sig, v);

	/* the next tenant of the HBM is out of reach of the stale mapping */
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 8192, 0, 0, NULL, &b));
	EXPECT_EQ(a.hbm_offset, b.hbm_offset) TH_LOG("the HBM was not reused; the check is weaker");
	ld_fill(buf, 8192, 5);
	ASSERT_EQ(0, ld_xfer(self->fd, b.handle, 0, buf, 8192, true, 0));
	sig = ld_touch(map + 100, false, &v);
	EXPECT_EQ(SIGBUS, sig) TH_LOG("stale mapping read %#x (signal %d)", v, sig);
	EXPECT_EQ(SIGBUS, ld_touch(map + 100, true, NULL));
	memset(buf, 0, 8192);
	ASSERT_EQ(0, ld_xfer(self->fd, b.handle, 0, buf, 8192, false, 0));
	EXPECT_NE(0x5a, buf[100]) TH_LOG("a stale mapping wrote into another region");

	munmap((void *)map, 8192);
	EXPECT_EQ(0, ld_hbm_free(self->fd, b.handle));
	close(fd2);
	unlink(node);
	ld_free_buf(buf, 8192);
}

/* A region stays mapped after its file is closed (the vma holds the file). */
TEST_F(hbm, mmap_outlives_close)
{
	struct llmdev_hbm_alloc a;
	volatile uint8_t *map;
	int fd2 = ld_open(0);
	uint8_t v = 0;

	SETUP_OR_SKIP();
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 4096, 0, 0, NULL, &a));
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, a.mmap_offset);
	ASSERT_NE(MAP_FAILED, map);
	map[10] = 0x42;
	close(fd2);
	/* the file is still referenced by the mapping: the region lives on */
	EXPECT_EQ(0, ld_touch(map + 10, false, &v));
	EXPECT_EQ(0x42, v);
	munmap((void *)map, 4096);
	/* now the file is released and its region freed */
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
}

struct handles {
	uint32_t h[4096];
	unsigned int n;
};

static void free_all(int fd, struct handles *hs)
{
	while (hs->n)
		ld_hbm_free(fd, hs->h[--hs->n]);
}

TEST_F(hbm, exhaustion)
{
	const uint64_t chunk = chunk_size(&self->info);
	struct llmdev_hbm_alloc a, pad;
	struct llmdev_info i;
	struct handles *hs = calloc(1, sizeof(*hs));
	int ret;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, hs);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 3 * 4096, 0, 0, NULL, &pad));
	for (;;) {
		ret = ld_hbm_alloc(self->fd, chunk, 0, 0, NULL, &a);
		if (ret)
			break;
		ASSERT_LT(hs->n, 4096);
		hs->h[hs->n++] = a.handle;
	}
	EXPECT_EQ(-ENOSPC, ret);
	EXPECT_LT(a.largest_free, chunk);
	ASSERT_EQ(0, ld_info(self->fd, &i));
	EXPECT_EQ(i.hbm_largest_free, a.largest_free);
	EXPECT_LE(chunk - 3 * 4096, a.largest_free)
		TH_LOG("expected the tail extent: largest_free %#llx",
		       (unsigned long long)a.largest_free);
	/* exactly largest_free fits, until nothing is left */
	while (a.largest_free >= 4096) {
		uint64_t lf = a.largest_free;

		ASSERT_LT(hs->n, 4096);
		ret = ld_hbm_alloc(self->fd, lf, 0, 0, NULL, &a);
		ASSERT_EQ(0, ret) TH_LOG("alloc of largest_free %#llx: %d",
					 (unsigned long long)lf, ret);
		hs->h[hs->n++] = a.handle;
	}
	EXPECT_EQ(-ENOSPC, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &a));
	EXPECT_EQ(0, a.largest_free);
	ASSERT_EQ(0, ld_info(self->fd, &i));
	EXPECT_EQ(i.hbm_size, i.hbm_used);
	EXPECT_EQ(0, i.hbm_largest_free);
	free_all(self->fd, hs);
	EXPECT_EQ(0, ld_hbm_free(self->fd, pad.handle));
	ASSERT_EQ(0, ld_info(self->fd, &i));
	EXPECT_EQ(self->used0, i.hbm_used);
	EXPECT_EQ(self->info.hbm_largest_free, i.hbm_largest_free);
	free(hs);
}

TEST_F(hbm, fragmentation)
{
	const uint64_t chunk = chunk_size(&self->info);
	struct llmdev_hbm_alloc a;
	struct handles *hs = calloc(1, sizeof(*hs)), *rest = calloc(1, sizeof(*rest));
	unsigned int k, freed = 0;
	int ret;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, hs);
	ASSERT_NE(NULL, rest);
	while (!(ret = ld_hbm_alloc(self->fd, chunk, 0, 0, NULL, &a))) {
		ASSERT_LT(hs->n, 4096);
		hs->h[hs->n++] = a.handle;
	}
	ASSERT_EQ(-ENOSPC, ret);
	ASSERT_LE(4, hs->n);
	/* fill any remaining holes */
	while (a.largest_free >= 4096) {
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, a.largest_free, 0, 0, NULL, &a));
		rest->h[rest->n++] = a.handle;
	}
	/* free every other chunk */
	for (k = 0; k < hs->n; k += 2) {
		ASSERT_EQ(0, ld_hbm_free(self->fd, hs->h[k]));
		hs->h[k] = 0;
		freed++;
	}
	ret = ld_hbm_alloc(self->fd, 2 * chunk, 0, 0, NULL, &a);
	EXPECT_EQ(-ENOSPC, ret) TH_LOG("2 chunks fit in a fragmented HBM");
	EXPECT_EQ(chunk, a.largest_free);
	ret = ld_hbm_alloc(self->fd, chunk + 4096, 0, 0, NULL, &a);
	EXPECT_EQ(-ENOSPC, ret);
	/* but every hole takes a chunk */
	for (k = 0; k < freed; k++) {
		ret = ld_hbm_alloc(self->fd, chunk, 0, 0, NULL, &a);
		ASSERT_EQ(0, ret) TH_LOG("hole %u of %u", k, freed);
		rest->h[rest->n++] = a.handle;
	}
	EXPECT_EQ(-ENOSPC, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &a));
	for (k = 1; k < hs->n; k += 2)
		EXPECT_EQ(0, ld_hbm_free(self->fd, hs->h[k]));
	free_all(self->fd, rest);
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
	free(hs);
	free(rest);
}

TEST_F(hbm, many_regions)
{
	struct handles *hs = calloc(1, sizeof(*hs));
	struct llmdev_hbm_region *r;
	struct llmdev_hbm_alloc a;
	unsigned int k, n, mine = 0;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, hs);
	for (k = 0; k < 1000; k++) {
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &a));
		hs->h[hs->n++] = a.handle;
	}
	ASSERT_EQ(0, ld_hbm_list(self->fd, &r, &n));
	for (k = 0; k < n; k++)
		if (r[k].flags & LLMDEV_REGION_MINE)
			mine++;
	EXPECT_EQ(1000, mine);
	/* sorted by offset or not, handles are unique */
	for (k = 1; k < hs->n; k++)
		EXPECT_NE(hs->h[k - 1], hs->h[k]);
	free(r);
	free_all(self->fd, hs);
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
	free(hs);
}

/*
 * "Transfers in flight on the region finish first": when HBM_FREE returns,
 * their fences are complete. Repeated, the window being small.
 */
TEST_F(hbm, free_waits_for_transfers)
{
	const uint64_t len = 2 * LD_MIB;
	struct llmdev_hbm_alloc a;
	uint8_t *src = ld_alloc_buf(len), *dst = ld_alloc_buf(len);
	uint64_t f1, f2;
	unsigned int i, late = 0;
	int s1, s2, r1, r2;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ld_fill(src, len, 8);
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, 0, NULL, &a));
		ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, src, len, true, i % 2, &f1));
		ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, dst, len, false, i % 2, &f2));
		ASSERT_EQ(0, ld_hbm_free(self->fd, a.handle));
		s1 = s2 = 1;
		r1 = ld_wait(self->fd, f1, 0, &s1);
		r2 = ld_wait(self->fd, f2, 0, &s2);
		if (r1 || r2) {
			late++;
			TH_LOG("round %u: fences still pending after HBM_FREE returned: %d %d",
			       i, r1, r2);
			if (r1)
				ASSERT_EQ(0, ld_wait(self->fd, f1, LD_LONG_WAIT, &s1));
			if (r2)
				ASSERT_EQ(0, ld_wait(self->fd, f2, LD_LONG_WAIT, &s2));
		}
		EXPECT_EQ(0, s1);
		EXPECT_EQ(0, s2);
	}
	EXPECT_EQ(0, late);
	ld_free_buf(src, len);
	ld_free_buf(dst, len);
}

TEST_HARNESS_MAIN
