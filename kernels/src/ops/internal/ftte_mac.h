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

#endif /* FTTE_MAC_H */
