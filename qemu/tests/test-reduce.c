/*
 * Host test of the llmdev model's collective arithmetic (reduce.c): its
 * branch-free, vectorized conversions and operations against the scalar
 * reference the model used before (the spec's wording, case by case), bit
 * for bit, and the speed of both. KTAP output.
 *
 *   test-reduce            every half and bfloat16 value, 2^24 floats
 *                          spread over all exponents plus the special
 *                          values, random element pairs, every length
 *                          0..200 and offsets, in and out of place
 *   test-reduce --all      also every one of the 2^32 floats
 *   test-reduce --bench    GB/s of the old scalar code and of the new
 *                          loops (baseline and, where the CPU has it, AVX2)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "../reduce.c"

#include <math.h>
#include <time.h>

/* ---- the reference: the model's scalar code before the rewrite ---- */

static float ref_f32(uint32_t v)
{
    float f;

    memcpy(&f, &v, 4);
    return f;
}

static uint32_t ref_f32_bits(float f)
{
    uint32_t v;

    memcpy(&v, &f, 4);
    return v;
}

static float ref_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;

    if (exp == 0x1f) {
        return ref_f32(sign | 0x7f800000 | man << 13);
    }
    if (exp == 0) {
        float f = ldexpf((float)man, -24);

        return sign ? -f : f;
    }
    return ref_f32(sign | (exp + 112) << 23 | man << 13);
}

static uint16_t ref_f32_to_f16(float f)
{
    uint32_t x = ref_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff, h, rem;
    int e;

    if (exp == 0xff) {
        return sign | 0x7c00 | (man ? 0x200 | man >> 13 : 0);
    }
    e = (int)exp - 127 + 15;
    if (e >= 31) {
        return sign | 0x7c00;
    }
    if (e <= 0) {
        unsigned int shift = 14 - e;
        uint32_t half;

        if (e < -10) {
            return sign;
        }
        man |= 0x800000;
        half = man >> shift;
        rem = man & ((1u << shift) - 1);
        if (rem > 1u << (shift - 1) ||
            (rem == 1u << (shift - 1) && (half & 1))) {
            half++;
        }
        return sign | half;
    }
    h = sign | (uint32_t)e << 10 | man >> 13;
    rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) {
        h++;
    }
    return h;
}

static float ref_bf16_to_f32(uint16_t b)
{
    return ref_f32((uint32_t)b << 16);
}

static uint16_t ref_f32_to_bf16(float f)
{
    uint32_t x = ref_f32_bits(f);

    if ((x & 0x7fffffff) > 0x7f800000) {
        return (x >> 16) | 0x40;
    }
    return (x + 0x7fff + ((x >> 16) & 1)) >> 16;
}

static float ref_fop(float a, float b, uint32_t redop)
{
    if (isnan(a)) {
        return a;
    }
    if (isnan(b)) {
        return b;
    }
    switch (redop) {
    case LLMDEV_COLL_REDOP_MIN:
        return b < a ? b : a;
    case LLMDEV_COLL_REDOP_MAX:
        return b > a ? b : a;
    }
    return a + b;
}

static int32_t ref_iop(int32_t a, int32_t b, uint32_t redop)
{
    switch (redop) {
    case LLMDEV_COLL_REDOP_MIN:
        return b < a ? b : a;
    case LLMDEV_COLL_REDOP_MAX:
        return b > a ? b : a;
    }
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* the old llmdev_reduce(): acc[i] = acc[i] op in[i] */
static void ref_reduce(uint8_t *acc, const uint8_t *in, uint64_t n,
                       uint32_t dtype, uint32_t redop)
{
    uint64_t i;

    switch (dtype) {
    case LLMDEV_COLL_DTYPE_I32:
        for (i = 0; i < n; i++) {
            stl_le_p(acc + 4 * i, ref_iop(ldl_le_p(acc + 4 * i),
                                          ldl_le_p(in + 4 * i), redop));
        }
        break;
    case LLMDEV_COLL_DTYPE_F32:
        for (i = 0; i < n; i++) {
            stl_le_p(acc + 4 * i, ref_f32_bits(
                     ref_fop(ref_f32(ldl_le_p(acc + 4 * i)),
                             ref_f32(ldl_le_p(in + 4 * i)), redop)));
        }
        break;
    case LLMDEV_COLL_DTYPE_F16:
        for (i = 0; i < n; i++) {
            stw_le_p(acc + 2 * i, ref_f32_to_f16(
                     ref_fop(ref_f16_to_f32(lduw_le_p(acc + 2 * i)),
                             ref_f16_to_f32(lduw_le_p(in + 2 * i)), redop)));
        }
        break;
    case LLMDEV_COLL_DTYPE_BF16:
        for (i = 0; i < n; i++) {
            stw_le_p(acc + 2 * i, ref_f32_to_bf16(
                     ref_fop(ref_bf16_to_f32(lduw_le_p(acc + 2 * i)),
                             ref_bf16_to_f32(lduw_le_p(in + 2 * i)), redop)));
        }
        break;
    }
}

/* ---- the checks ---- */

static unsigned int test_num, test_failed;

static void result(bool ok, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void result(bool ok, const char *fmt, ...)
{
    va_list ap;

    printf("%sok %u ", ok ? "" : "not ", ++test_num);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    test_failed += !ok;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

/* a float worth testing: any bits, or one near a special value */
static uint32_t rnd_f32(void)
{
    static const uint32_t special[] = {
        0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001,
        0xffc00001, 0x7fbfffff, 0x00000001, 0x007fffff, 0x00800000,
        0x38800000, 0x387fffff, 0x477fe000, 0x477fefff, 0x477ff000,
        0x47800000, 0x33000000, 0x33000001, 0x32ffffff, 0x7f7fffff,
    };
    uint64_t r = rnd();

    switch (r % 4) {
    case 0:
        return special[(r >> 8) % ARRAY_SIZE(special)] ^
               ((r >> 40) & 1 ? 0x80000000 : 0);
    case 1:
        return special[(r >> 8) % ARRAY_SIZE(special)] +
               (int)((r >> 16) % 9) - 4;
    default:
        return r >> 32;
    }
}

static void check_conversions(bool all)
{
    uint64_t x, bad_h = 0, bad_f = 0, bad_b = 0, n = 0;
    uint32_t h;

    for (h = 0; h < 0x10000; h++) {
        if (llmdev_f16_to_f32(h) != ref_f32_bits(ref_f16_to_f32(h)) ||
            llmdev_bf16_to_f32(h) != ref_f32_bits(ref_bf16_to_f32(h))) {
            bad_h++;
        }
    }
    result(!bad_h, "f16_bf16_to_f32_all_65536 # %" PRIu64 " differ", bad_h);

    for (x = 0; x < (all ? 1ull << 32 : 1ull << 24); x++) {
        /* without --all: every 256th float, so every exponent is hit */
        uint32_t v = all ? (uint32_t)x : (uint32_t)(x << 8 | (x & 0xff));

        if (llmdev_f32_to_f16(v) != ref_f32_to_f16(ref_f32(v))) {
            if (!bad_f++) {
                printf("# f32 0x%x: f16 0x%x, reference 0x%x\n", v,
                       llmdev_f32_to_f16(v), ref_f32_to_f16(ref_f32(v)));
            }
        }
        if (llmdev_f32_to_bf16(v) != ref_f32_to_bf16(ref_f32(v))) {
            bad_b++;
        }
        n++;
    }
    for (x = 0; x < 1000000; x++) {
        uint32_t v = rnd_f32();

        bad_f += (llmdev_f32_to_f16(v) & 0xffff) !=
                 ref_f32_to_f16(ref_f32(v));
        bad_b += (llmdev_f32_to_bf16(v) & 0xffff) !=
                 ref_f32_to_bf16(ref_f32(v));
        n++;
    }
    result(!bad_f, "f32_to_f16 # %" PRIu64 " floats, %" PRIu64 " differ", n,
           bad_f);
    result(!bad_b, "f32_to_bf16 # %" PRIu64 " floats, %" PRIu64 " differ", n,
           bad_b);
}

static const char *const dtype_names[] = { "f32", "f16", "bf16", "i32" };
static const char *const redop_names[] = { "sum", "min", "max" };

/* random elements, a quarter of them special values */
static void fill(uint8_t *p, uint64_t n, uint32_t dtype)
{
    uint64_t i;

    for (i = 0; i < n; i++) {
        uint32_t v = rnd_f32();

        if (dtype == LLMDEV_COLL_DTYPE_F16) {
            v = rnd() % 3 ? ref_f32_to_f16(ref_f32(v)) : (uint16_t)rnd();
        } else if (dtype == LLMDEV_COLL_DTYPE_BF16) {
            v = rnd() % 3 ? ref_f32_to_bf16(ref_f32(v)) : (uint16_t)rnd();
        }
        if (llmdev_dtype_size(dtype) == 2) {
            stw_le_p(p + 2 * i, v);
        } else {
            stl_le_p(p + 4 * i, v);
        }
    }
}

static void check_reduce(const char *impl)
{
    enum { N = 1 << 16, SLACK = 64 };
    uint8_t *own = g_malloc(4 * N + SLACK), *in = g_malloc(4 * N + SLACK);
    uint8_t *dst = g_malloc(4 * N + SLACK), *ref = g_malloc(4 * N + SLACK);
    uint32_t dtype, redop;

    for (dtype = 0; dtype <= LLMDEV_COLL_DTYPE_I32; dtype++) {
        for (redop = 0; redop <= LLMDEV_COLL_REDOP_MAX; redop++) {
            unsigned int es = llmdev_dtype_size(dtype);
            uint64_t bad = 0, runs = 0, n, off;

            /* every short length at a few offsets, then long ones */
            for (n = 0; n <= 200 || n < N; n = n <= 200 ? n + 1 : n * 2) {
                for (off = 0; off < (n <= 200 ? 5 : 2); off++) {
                    uint64_t len = MIN(n, N) * es;

                    fill(own + off, MIN(n, N), dtype);
                    fill(in + 3 * off, MIN(n, N), dtype);
                    memcpy(ref + off, own + off, len);
                    ref_reduce(ref + off, in + 3 * off, MIN(n, N), dtype,
                               redop);
                    /* out of place, into a buffer at another offset */
                    llmdev_reduce(dst + 2 * off, own + off, in + 3 * off,
                                  MIN(n, N), dtype, redop);
                    bad += memcmp(dst + 2 * off, ref + off, len) != 0;
                    /* in place */
                    llmdev_reduce(own + off, own + off, in + 3 * off,
                                  MIN(n, N), dtype, redop);
                    bad += memcmp(own + off, ref + off, len) != 0;
                    runs += 2;
                }
            }
            result(!bad, "reduce_%s_%s_%s # %" PRIu64 " runs, %" PRIu64
                   " differ", impl, dtype_names[dtype], redop_names[redop],
                   runs, bad);
        }
    }
    g_free(own);
    g_free(in);
    g_free(dst);
    g_free(ref);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* the implementations this host can run: the baseline, and AVX2 */
static unsigned int impls(const char **names)
{
    names[0] = "base";
#ifdef HOST_X86_64
    if (__builtin_cpu_supports("avx2")) {
        names[1] = "avx2";
        return 2;
    }
#endif
    return 1;
}

static void use_impl(unsigned int i)
{
#ifdef HOST_X86_64
    llmdev_avx2 = i == 1;
#endif
}

/*
 * GB/s of input bytes (one operand) for 64 MiB operands, median of 7, in
 * CPU time of this thread (the host is shared: wall time would measure the
 * neighbours).
 */
static void bench(void)
{
    enum { BYTES = 64 << 20, RUNS = 7 };
    uint8_t *acc = g_malloc(BYTES), *in = g_malloc(BYTES);
    uint8_t *dst = g_malloc(BYTES);
    uint32_t dtype, redop;
    int impl, r;

    memset(acc, 0x3c, BYTES);
    memset(in, 0x3d, BYTES);
    memset(dst, 0, BYTES);
    for (dtype = 0; dtype <= LLMDEV_COLL_DTYPE_I32; dtype++) {
        for (redop = 0; redop <= LLMDEV_COLL_REDOP_MAX; redop += 2) {
            uint64_t n = BYTES / llmdev_dtype_size(dtype);
            const char *names[2];
            unsigned int k, nimpl = impls(names);
            double gbps[5];

            for (impl = 0; impl < 1 + 2 * (int)nimpl; impl++) {
                double t[RUNS];

                for (r = 0; r < RUNS; r++) {
                    double t0 = now_s();

                    use_impl((impl - 1) / 2);
                    if (impl == 0) {
                        ref_reduce(acc, in, n, dtype, redop);
                    } else if (impl % 2) {
                        llmdev_reduce(acc, acc, in, n, dtype, redop);
                    } else {
                        llmdev_reduce(dst, acc, in, n, dtype, redop);
                    }
                    t[r] = now_s() - t0;
                }
                qsort(t, RUNS, sizeof(t[0]), cmp_double);
                gbps[impl] = BYTES / t[RUNS / 2] / 1e9;
            }
            printf("# %-4s %s: scalar (before) %6.2f GB/s", dtype_names[dtype],
                   redop_names[redop], gbps[0]);
            for (k = 0; k < nimpl; k++) {
                printf("; %s: in place %6.2f, out of place %6.2f", names[k],
                       gbps[1 + 2 * k], gbps[2 + 2 * k]);
            }
            printf("\n");
        }
    }
    g_free(acc);
    g_free(in);
    g_free(dst);
}

int main(int argc, char **argv)
{
    bool all = argc > 1 && !strcmp(argv[1], "--all");

    if (argc > 1 && !strcmp(argv[1], "--bench")) {
        bench();
        return 0;
    }
    const char *names[2];
    unsigned int i, n = impls(names);

    printf("TAP version 13\n1..%u\n", 3 + 12 * n);
    check_conversions(all);
    for (i = 0; i < n; i++) {
        use_impl(i);
        check_reduce(names[i]);
    }
    printf("# %u passed, %u failed\n", test_num - test_failed, test_failed);
    return test_failed ? 1 : 0;
}
