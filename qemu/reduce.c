/*
 * QEMU model of the llmdev card: the collective arithmetic (spec 13.7).
 *
 * llmdev_reduce() computes dst[i] = own[i] op in[i]: own is the receiving
 * card's value, in the incoming one. Elements are little-endian at any byte
 * offset. F16 and BF16 are converted exactly to single precision, combined
 * there and rounded back to nearest even; a NaN operand gives that NaN (the
 * receiver's first), quiet for F16 and BF16 with the top payload bits kept.
 *
 * Every element function below is branch-free: the special cases (NaN,
 * infinity, overflow, subnormals) are computed alongside and selected, so
 * the compiler turns each loop into vector code. The loops run over blocks
 * of LLMDEV_REDUCE_BLOCK elements, a multiple of any vector length, which
 * GCC's default cost model at -O2 ("very cheap") needs; the remainder runs
 * the same body element by element. Each combination of data type and
 * operation is its own loop (the arguments are constants once inlined), and
 * so is the in-place case (dst == own), which may not be declared restrict.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "llmdev.h"

#define LLMDEV_REDUCE_BLOCK     32

/*
 * x86-64 hosts: an AVX2 copy of every loop beside the baseline (SSE2) one,
 * taken when the CPU has AVX2: twice as wide, with blend instructions.
 */
#ifdef HOST_X86_64
#define LLMDEV_AVX2     __attribute__((target("avx2")))

static bool llmdev_avx2;

static void __attribute__((constructor)) llmdev_reduce_init(void)
{
    __builtin_cpu_init();
    llmdev_avx2 = __builtin_cpu_supports("avx2");
}
#endif

unsigned int llmdev_dtype_size(uint32_t dtype)
{
    return dtype == LLMDEV_COLL_DTYPE_F16 ||
           dtype == LLMDEV_COLL_DTYPE_BF16 ? 2 : 4;
}

static inline float llmdev_f32(uint32_t v)
{
    float f;

    memcpy(&f, &v, sizeof(f));
    return f;
}

static inline uint32_t llmdev_bits(float f)
{
    uint32_t v;

    memcpy(&v, &f, sizeof(v));
    return v;
}

/* c ? a : b for c 0 or 1, without a branch (the vectorizer's blend) */
static inline uint32_t llmdev_sel(uint32_t c, uint32_t a, uint32_t b)
{
    uint32_t m = -c;

    return (a & m) | (b & ~m);
}

static inline uint32_t llmdev_is_nan(uint32_t x)
{
    return (x & 0x7fffffff) > 0x7f800000;
}

/* IEEE half to single, exact; a NaN keeps its payload. */
static inline uint32_t llmdev_f16_to_f32(uint32_t h)
{
    uint32_t sign = (h & 0x8000) << 16;
    uint32_t em = h & 0x7fff;
    uint32_t normal = (em << 13) + ((127 - 15) << 23);
    uint32_t infnan = (em << 13) | 0x7f800000;
    /* subnormal or zero: em * 2^-24, exact in single precision */
    uint32_t sub = llmdev_bits((float)(int32_t)em * (1.0f / (1 << 24)));
    uint32_t r = llmdev_sel(em >= 0x400, normal, sub);

    return sign | llmdev_sel(em >= 0x7c00, infnan, r);
}

/*
 * Single to IEEE half, round to nearest even: overflow gives infinity,
 * results below half the smallest subnormal give a signed zero, a NaN stays
 * a quiet NaN with the top payload bits.
 */
static inline uint32_t llmdev_f32_to_f16(uint32_t x)
{
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffff;
    uint32_t man = x & 0x7fffff;
    uint32_t nan = 0x7c00 | llmdev_sel(man != 0, 0x200 | man >> 13, 0);
    /* normal: drop 13 bits with the rounding carry, rebias the exponent */
    uint32_t normal = ((ax + 0xfff + ((ax >> 13) & 1)) >> 13) -
                      ((127 - 15) << 10);
    /* below 2^-14: adding 0.5 (ulp 2^-24) rounds to the subnormal's bits */
    uint32_t sub = llmdev_bits(llmdev_f32(ax) + 0.5f) - llmdev_bits(0.5f);
    uint32_t r = llmdev_sel(ax < 0x38800000, sub, normal);

    r = llmdev_sel(ax >= 0x47800000, 0x7c00, r);
    return sign | llmdev_sel(ax >= 0x7f800000, nan, r);
}

static inline uint32_t llmdev_bf16_to_f32(uint32_t b)
{
    return b << 16;
}

static inline uint32_t llmdev_f32_to_bf16(uint32_t x)
{
    uint32_t rne = (x + 0x7fff + ((x >> 16) & 1)) >> 16;

    return llmdev_sel(llmdev_is_nan(x), (x >> 16) | 0x40, rne);
}

/* a op b on single-precision bits; a is the receiver's value */
static inline uint32_t llmdev_fop(uint32_t a, uint32_t b, uint32_t redop)
{
    float fa = llmdev_f32(a), fb = llmdev_f32(b);
    uint32_t r;

    if (redop == LLMDEV_COLL_REDOP_MIN) {
        r = llmdev_sel(fb < fa, b, a);
    } else if (redop == LLMDEV_COLL_REDOP_MAX) {
        r = llmdev_sel(fb > fa, b, a);
    } else {
        r = llmdev_bits(fa + fb);
    }
    r = llmdev_sel(llmdev_is_nan(b), b, r);
    return llmdev_sel(llmdev_is_nan(a), a, r);
}

static inline uint32_t llmdev_iop(uint32_t a, uint32_t b, uint32_t redop)
{
    if (redop == LLMDEV_COLL_REDOP_MIN) {
        return llmdev_sel((int32_t)b < (int32_t)a, b, a);
    } else if (redop == LLMDEV_COLL_REDOP_MAX) {
        return llmdev_sel((int32_t)b > (int32_t)a, b, a);
    }
    return a + b;       /* wraps */
}

/* element i: dst = own op in */
static inline QEMU_ALWAYS_INLINE void
llmdev_reduce_elem(uint8_t *dst, const uint8_t *own, const uint8_t *in,
                   uint64_t i, uint32_t dtype, uint32_t redop)
{
    uint32_t a, b;

    switch (dtype) {
    case LLMDEV_COLL_DTYPE_I32:
        a = ldl_le_p(own + 4 * i);
        b = ldl_le_p(in + 4 * i);
        stl_le_p(dst + 4 * i, llmdev_iop(a, b, redop));
        break;
    case LLMDEV_COLL_DTYPE_F32:
        a = ldl_le_p(own + 4 * i);
        b = ldl_le_p(in + 4 * i);
        stl_le_p(dst + 4 * i, llmdev_fop(a, b, redop));
        break;
    case LLMDEV_COLL_DTYPE_F16:
        a = llmdev_f16_to_f32(lduw_le_p(own + 2 * i));
        b = llmdev_f16_to_f32(lduw_le_p(in + 2 * i));
        stw_le_p(dst + 2 * i, llmdev_f32_to_f16(llmdev_fop(a, b, redop)));
        break;
    case LLMDEV_COLL_DTYPE_BF16:
        a = llmdev_bf16_to_f32(lduw_le_p(own + 2 * i));
        b = llmdev_bf16_to_f32(lduw_le_p(in + 2 * i));
        stw_le_p(dst + 2 * i, llmdev_f32_to_bf16(llmdev_fop(a, b, redop)));
        break;
    }
}

static inline QEMU_ALWAYS_INLINE void
llmdev_reduce_out(uint8_t *restrict dst, const uint8_t *restrict own,
                  const uint8_t *restrict in, uint64_t count,
                  uint32_t dtype, uint32_t redop)
{
    uint64_t i = 0, j;

    for (; i + LLMDEV_REDUCE_BLOCK <= count; i += LLMDEV_REDUCE_BLOCK) {
        for (j = 0; j < LLMDEV_REDUCE_BLOCK; j++) {
            llmdev_reduce_elem(dst, own, in, i + j, dtype, redop);
        }
    }
    for (; i < count; i++) {
        llmdev_reduce_elem(dst, own, in, i, dtype, redop);
    }
}

static inline QEMU_ALWAYS_INLINE void
llmdev_reduce_in(uint8_t *restrict acc, const uint8_t *restrict in,
                 uint64_t count, uint32_t dtype, uint32_t redop)
{
    uint64_t i = 0, j;

    for (; i + LLMDEV_REDUCE_BLOCK <= count; i += LLMDEV_REDUCE_BLOCK) {
        for (j = 0; j < LLMDEV_REDUCE_BLOCK; j++) {
            llmdev_reduce_elem(acc, acc, in, i + j, dtype, redop);
        }
    }
    for (; i < count; i++) {
        llmdev_reduce_elem(acc, acc, in, i, dtype, redop);
    }
}

typedef struct LlmdevReduceFns {
    void (*out)(uint8_t *restrict dst, const uint8_t *restrict own,
                const uint8_t *restrict in, uint64_t count);
    void (*in)(uint8_t *restrict acc, const uint8_t *restrict in,
               uint64_t count);
} LlmdevReduceFns;

/*
 * One instance per data type and operation, out of place and in place,
 * with @attr (a target). The restrict pointers must be parameters of these
 * (not inlined) functions: GCC does not keep restrict through inlining.
 */
#define LLMDEV_REDUCE_FNS(name, attr, dtype, redop)                         \
    static attr void name##_out(uint8_t *restrict dst,                      \
                                const uint8_t *restrict own,                \
                                const uint8_t *restrict in, uint64_t count) \
    {                                                                       \
        llmdev_reduce_out(dst, own, in, count, dtype, redop);               \
    }                                                                       \
    static attr void name##_in(uint8_t *restrict acc,                       \
                               const uint8_t *restrict in, uint64_t count)  \
    {                                                                       \
        llmdev_reduce_in(acc, in, count, dtype, redop);                     \
    }

/* every data type and operation, by data type, then by operation */
#define LLMDEV_REDUCE_ALL(table, sfx, attr)                                 \
    LLMDEV_REDUCE_FNS(llmdev_i32_sum##sfx, attr, LLMDEV_COLL_DTYPE_I32,     \
                      LLMDEV_COLL_REDOP_SUM)                                \
    LLMDEV_REDUCE_FNS(llmdev_i32_min##sfx, attr, LLMDEV_COLL_DTYPE_I32,     \
                      LLMDEV_COLL_REDOP_MIN)                                \
    LLMDEV_REDUCE_FNS(llmdev_i32_max##sfx, attr, LLMDEV_COLL_DTYPE_I32,     \
                      LLMDEV_COLL_REDOP_MAX)                                \
    LLMDEV_REDUCE_FNS(llmdev_f32_sum##sfx, attr, LLMDEV_COLL_DTYPE_F32,     \
                      LLMDEV_COLL_REDOP_SUM)                                \
    LLMDEV_REDUCE_FNS(llmdev_f32_min##sfx, attr, LLMDEV_COLL_DTYPE_F32,     \
                      LLMDEV_COLL_REDOP_MIN)                                \
    LLMDEV_REDUCE_FNS(llmdev_f32_max##sfx, attr, LLMDEV_COLL_DTYPE_F32,     \
                      LLMDEV_COLL_REDOP_MAX)                                \
    LLMDEV_REDUCE_FNS(llmdev_f16_sum##sfx, attr, LLMDEV_COLL_DTYPE_F16,     \
                      LLMDEV_COLL_REDOP_SUM)                                \
    LLMDEV_REDUCE_FNS(llmdev_f16_min##sfx, attr, LLMDEV_COLL_DTYPE_F16,     \
                      LLMDEV_COLL_REDOP_MIN)                                \
    LLMDEV_REDUCE_FNS(llmdev_f16_max##sfx, attr, LLMDEV_COLL_DTYPE_F16,     \
                      LLMDEV_COLL_REDOP_MAX)                                \
    LLMDEV_REDUCE_FNS(llmdev_bf16_sum##sfx, attr, LLMDEV_COLL_DTYPE_BF16,   \
                      LLMDEV_COLL_REDOP_SUM)                                \
    LLMDEV_REDUCE_FNS(llmdev_bf16_min##sfx, attr, LLMDEV_COLL_DTYPE_BF16,   \
                      LLMDEV_COLL_REDOP_MIN)                                \
    LLMDEV_REDUCE_FNS(llmdev_bf16_max##sfx, attr, LLMDEV_COLL_DTYPE_BF16,   \
                      LLMDEV_COLL_REDOP_MAX)                                \
    static const LlmdevReduceFns table[4][3] = {                            \
        [LLMDEV_COLL_DTYPE_F32] = {                                         \
            { llmdev_f32_sum##sfx##_out, llmdev_f32_sum##sfx##_in },        \
            { llmdev_f32_min##sfx##_out, llmdev_f32_min##sfx##_in },        \
            { llmdev_f32_max##sfx##_out, llmdev_f32_max##sfx##_in },        \
        },                                                                  \
        [LLMDEV_COLL_DTYPE_F16] = {                                         \
            { llmdev_f16_sum##sfx##_out, llmdev_f16_sum##sfx##_in },        \
            { llmdev_f16_min##sfx##_out, llmdev_f16_min##sfx##_in },        \
            { llmdev_f16_max##sfx##_out, llmdev_f16_max##sfx##_in },        \
        },                                                                  \
        [LLMDEV_COLL_DTYPE_BF16] = {                                        \
            { llmdev_bf16_sum##sfx##_out, llmdev_bf16_sum##sfx##_in },      \
            { llmdev_bf16_min##sfx##_out, llmdev_bf16_min##sfx##_in },      \
            { llmdev_bf16_max##sfx##_out, llmdev_bf16_max##sfx##_in },      \
        },                                                                  \
        [LLMDEV_COLL_DTYPE_I32] = {                                         \
            { llmdev_i32_sum##sfx##_out, llmdev_i32_sum##sfx##_in },        \
            { llmdev_i32_min##sfx##_out, llmdev_i32_min##sfx##_in },        \
            { llmdev_i32_max##sfx##_out, llmdev_i32_max##sfx##_in },        \
        },                                                                  \
    };

/* the compiler's baseline for the host */
#define LLMDEV_BASELINE

LLMDEV_REDUCE_ALL(llmdev_reduce_fns, _base, LLMDEV_BASELINE)
#ifdef HOST_X86_64
LLMDEV_REDUCE_ALL(llmdev_reduce_fns_avx2, _avx2, LLMDEV_AVX2)
#endif

/*
 * dst[i] = own[i] op in[i] for count elements. dst may be own, but may not
 * overlap it otherwise, nor overlap in.
 */
void llmdev_reduce(uint8_t *dst, const uint8_t *own, const uint8_t *in,
                   uint64_t count, uint32_t dtype, uint32_t redop)
{
    const LlmdevReduceFns *fns;

    assert(dtype <= LLMDEV_COLL_DTYPE_I32 && redop <= LLMDEV_COLL_REDOP_MAX);
    fns = &llmdev_reduce_fns[dtype][redop];
#ifdef HOST_X86_64
    if (llmdev_avx2) {
        fns = &llmdev_reduce_fns_avx2[dtype][redop];
    }
#endif
    if (dst == own) {
        fns->in(dst, in, count);
    } else {
        fns->out(dst, own, in, count);
    }
}
