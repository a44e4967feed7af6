/*
 * How should the llmdev model zero HBM for a scrub? Host benchmark of the
 * end-to-end cost: zero a written region, then copy into all of it (as the
 * next host-to-card DMA does), on 4 KiB pages and on transparent huge pages,
 * zeroing by MADV_DONTNEED (the pages are freed; the copy faults them back
 * in, zero-filled by the kernel) or by memset (the pages stay).
 *
 *   cc -O2 -o bench-scrub bench-scrub.c && ./bench-scrub [MiB]
 *
 * Times are CPU time of the thread (user + system, page faults included),
 * median of 7 runs: the host is shared, wall time would measure neighbours.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define RUNS    7
#define ALIGN   (2u << 20)

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static uint8_t *map(size_t len, int advice)
{
    uint8_t *p = mmap(NULL, len + ALIGN, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    p = (uint8_t *)(((uintptr_t)p + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    madvise(p, len, advice);
    return p;
}

int main(int argc, char **argv)
{
    size_t len = (argc > 1 ? strtoul(argv[1], NULL, 0) : 256) << 20;
    uint8_t *src = map(len, MADV_HUGEPAGE);
    static const struct {
        const char *name;
        int advice;
        int dontneed;
    } how[] = {
        { "4 KiB pages, MADV_DONTNEED", MADV_NOHUGEPAGE, 1 },
        { "4 KiB pages, memset", MADV_NOHUGEPAGE, 0 },
        { "huge pages, MADV_DONTNEED", MADV_HUGEPAGE, 1 },
        { "huge pages, memset", MADV_HUGEPAGE, 0 },
    };
    unsigned int h, r;

    memset(src, 0x5a, len);
    printf("%zu MiB: scrub to zero, then copy %zu MiB in (CPU ms, median "
           "of %d)\n", len >> 20, len >> 20, RUNS);
    for (h = 0; h < sizeof(how) / sizeof(how[0]); h++) {
        uint8_t *hbm = map(len, how[h].advice);
        double scrub[RUNS], copy[RUNS], total[RUNS];

        memset(hbm, 0x33, len);
        for (r = 0; r < RUNS; r++) {
            double t0 = cpu_s(), t1, t2;

            if (how[h].dontneed) {
                madvise(hbm, len, MADV_DONTNEED);
            } else {
                memset(hbm, 0, len);
            }
            t1 = cpu_s();
            memcpy(hbm, src, len);
            t2 = cpu_s();
            scrub[r] = (t1 - t0) * 1e3;
            copy[r] = (t2 - t1) * 1e3;
            total[r] = (t2 - t0) * 1e3;
        }
        qsort(scrub, RUNS, sizeof(double), cmp);
        qsort(copy, RUNS, sizeof(double), cmp);
        qsort(total, RUNS, sizeof(double), cmp);
        printf("  %-28s scrub %7.1f  copy %7.1f  total %7.1f  (copy %.2f "
               "GB/s)\n", how[h].name, scrub[RUNS / 2], copy[RUNS / 2],
               total[RUNS / 2], len / copy[RUNS / 2] / 1e6);
        munmap(hbm, len);
    }
    return 0;
}
