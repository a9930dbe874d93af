/*
 * Internal to the kernels (not public API): the multiply-accumulate of every MAC loop, and
 * the inlining its register-tiled helpers need.
 *
 * FTTE_MAC(acc, a, b) sets acc = acc + a * b.
 *
 * The kernels build with floating-point contraction off (-std=c99, and the host library
 * adds -ffp-contract=off), so a plain acc + a * b is a multiply then an add: two roundings.
 * Fused multiply-add is used ONLY where it is native to the embedded FPU, i.e. when the
 * compiler defines __ARM_FEATURE_FMA (Cortex-M4F/M7: VFMA, one instruction, one rounding).
 * It is never used on the host, even where the host compiler defines __FP_FAST_FMAF: the
 * host library is built with -march=native, and on an x86 with FMA keying on __FP_FAST_FMAF
 * would switch the host's results to fused arithmetic, breaking bit-identity between the
 * host library and the native (non-ARM) firmware build. Soft-float targets and x86 therefore
 * all take the plain multiply-then-add.
 * Either way the sums are float32 accumulations in the order the loops write them.
 */
#ifndef FTTE_MAC_H
#define FTTE_MAC_H

#if defined(__ARM_FEATURE_FMA)
#define FTTE_MAC(acc, a, b) ((acc) = __builtin_fmaf((a), (b), (acc)))
#else
#define FTTE_MAC(acc, a, b) ((acc) += (a) * (b))
#endif

/* For the small helpers of a MAC loop that take or return a register block (a struct of
 * floats) by value: inlined, the block's members live in FPU registers; called, the block
 * goes through the stack. GCC does not always inline a helper used in several places. */
#if defined(__GNUC__)
#define FTTE_INLINE static inline __attribute__((always_inline))
#else
#define FTTE_INLINE static inline
#endif

/* For the entry of a register-tiled loop nest that a loop over tiles calls: compiled on its
 * own it has all the registers to itself, where inlined into the caller's loops GCC spills
 * their state inside it. */
#if defined(__GNUC__)
#define FTTE_NOINLINE __attribute__((noinline))
#else
#define FTTE_NOINLINE
#endif

/* Cortex-M4F/M7 (Thumb-2, single-precision FMA): the batch-1 dense loops are inline asm
 * that loads 4 to 8 floats per instruction (VLDM, VSTM), which GCC never emits for them.
 * Each element is still summed in the C loops' order, with the same VFMA. */
#if defined(__GNUC__) && defined(__ARM_ARCH_7EM__) && defined(__thumb2__) && \
    defined(__ARM_FP) && defined(__ARM_FEATURE_FMA)
#define FTTE_ARM_VLDM 1
#else
#define FTTE_ARM_VLDM 0
#endif

/* Which register tiles the MAC loops use. The board tiles (rows_matmul.c, conv_core.c) fill
 * the 32 scalar FPU registers of a Cortex-M4F, and on a vector host they spill. 64-bit hosts
 * (x86-64, AArch64: the Python extension, the native firmware; GCC or Clang, for their vector
 * types) take tiles vectorised across a contiguous output dimension instead
 * (rows_matmul_host.c, and the conv forward in conv_core.c). Both orders of summation are
 * fixed by the C source, so results do not depend on the vector width; scratch sizes are the
 * same for both, as the host plans the boards' memory.
 * -DFTTE_HOST_TILES=0 builds the board tiles on a host (the C tests run both). */
#ifndef FTTE_HOST_TILES
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
#define FTTE_HOST_TILES 1
#else
#define FTTE_HOST_TILES 0
#endif
#endif

#if FTTE_HOST_TILES
#include <string.h>

/* 8 floats in a vector register (two on a 128-bit unit): lane-wise IEEE products and sums,
 * the same results as the scalar loop they stand for. */
typedef float vec8 __attribute__((vector_size(32)));
/* Its lane masks: a compare of two vec8 gives -1 (all bits) or 0 per lane. */
typedef int32_t vec8i __attribute__((vector_size(32)));

/* Unaligned vector loads and stores; through pointers, as a vector passed by value changes the
 * ABI where the unit is narrower than 32 bytes. */
FTTE_INLINE void load8(vec8 *v, const float *p) { memcpy(v, p, sizeof *v); }

FTTE_INLINE void store8(float *p, const vec8 *v) { memcpy(p, v, sizeof *v); }

/* The first `lanes` floats at p (the rest 0), and back: a tile's last vector may be partial. */
/* A partial vector goes through a float array: lanes set by a variable index would keep the
 * vector in memory on every path, the whole ones too. */
FTTE_INLINE void load_lanes(vec8 *v, const float *p, int32_t lanes) {
    if (lanes == 8) {
        load8(v, p);
        return;
    }
    float part[8];
    for (int32_t j = 0; j < 8; j++) part[j] = j < lanes ? p[j] : 0.0f;
    load8(v, part);
}

FTTE_INLINE void store_lanes(float *p, const vec8 *v, int32_t lanes) {
    if (lanes == 8) {
        store8(p, v);
        return;
    }
    float part[8];
    store8(part, v);
    for (int32_t j = 0; j < lanes; j++) p[j] = part[j];
}

#endif /* FTTE_HOST_TILES */

#endif /* FTTE_MAC_H */
