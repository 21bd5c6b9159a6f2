/* AdamW on bf16 parameters, gradients and moments in one pass, with stochastic rounding.
 *
 * Each element is read once (p, g, m, v: 8 bytes), updated in fp32 with torch's fused AdamW
 * formula, and written back (p, m, v: 6 bytes) rounded to bf16 either stochastically or to
 * nearest-even. Stochastic rounding adds 16 uniform random bits to the fp32 bit pattern
 * and truncates: the carry rounds the magnitude up with probability (dropped bits) / 2^16,
 * so the result is one of the two bf16 neighbours and equals the fp32 value in
 * expectation. The random bits of element i are a hash of (seed, i): a bijective 32-bit
 * mix of a Weyl sequence, so each element's bits are uniform for a uniform seed, and the
 * result does not depend on the number of threads.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "vmath.h"

static inline uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* A bijection of 32-bit words with good avalanche (C. Wellons' "lowbias32"). */
static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static inline uint16_t round_sr(float f, uint32_t noise16) {
    return (uint16_t)((bits_of(f) + noise16) >> 16);
}

static inline uint16_t round_rne(float f) {
    uint32_t u = bits_of(f);
    uint32_t r = (u + 0x7fffU + ((u >> 16) & 1U)) >> 16;
    return (f != f) ? (uint16_t)((u >> 16) | 0x40U) : (uint16_t)r; /* NaN stays NaN */
}

typedef struct {
    float lr, beta1, beta2, eps, weight_decay, step_size, bc2_sqrt;
} Hyper;

/* The AdamW step of one element, in fp32 (torch's fused formula); updates p, m, v. */
static inline void adam(float *p, float g, float *m, float *v, Hyper h) {
    float mf = *m + (1.0f - h.beta1) * (g - *m);
    float vf = *v * h.beta2 + (1.0f - h.beta2) * g * g;
    float denom = sqrtf(vf) / h.bc2_sqrt + h.eps;
    *p = *p * (1.0f - h.lr * h.weight_decay) - h.step_size * mf / denom;
    *m = mf;
    *v = vf;
}

static void update_sr(uint16_t *restrict p, const uint16_t *restrict g, uint16_t *restrict m,
                      uint16_t *restrict v, int64_t n, uint32_t base, Hyper h) {
    for (int64_t i = 0; i < n; i++) {
        float pf = from_bf16(p[i]), mf = from_bf16(m[i]), vf = from_bf16(v[i]);
        adam(&pf, from_bf16(g[i]), &mf, &vf, h);
        uint32_t r1 = mix32(base + (uint32_t)i * 0x9e3779b9U);
        uint32_t r2 = mix32(r1 ^ 0x5bd1e995U);
        p[i] = round_sr(pf, r1 & 0xffffU);
        m[i] = round_sr(mf, r1 >> 16);
        v[i] = round_sr(vf, r2 & 0xffffU);
    }
}

static void update_rne(uint16_t *restrict p, const uint16_t *restrict g, uint16_t *restrict m,
                       uint16_t *restrict v, int64_t n, Hyper h) {
    for (int64_t i = 0; i < n; i++) {
        float pf = from_bf16(p[i]), mf = from_bf16(m[i]), vf = from_bf16(v[i]);
        adam(&pf, from_bf16(g[i]), &mf, &vf, h);
        p[i] = round_rne(pf);
        m[i] = round_rne(mf);
        v[i] = round_rne(vf);
    }
}

#define BLOCK 8192

/* One AdamW step over n_tensors bf16 tensors given as tables of data pointers (int64). The
 * elements are numbered across the tensors in order; element i gets the noise of
 * (seed, i). Blocks of BLOCK elements are shared out over OpenMP threads. */
void adamw_bf16(int64_t n_tensors, const int64_t *numel, const int64_t *ptr_p,
                const int64_t *ptr_g, const int64_t *ptr_m, const int64_t *ptr_v, float lr,
                float beta1, float beta2, float eps, float weight_decay, float step_size,
                float bc2_sqrt, uint32_t seed, int stochastic) {
    Hyper h = {lr, beta1, beta2, eps, weight_decay, step_size, bc2_sqrt};
    int64_t total = 0;
    for (int64_t t = 0; t < n_tensors; t++) total += numel[t];
    int64_t n_blocks = (total + BLOCK - 1) / BLOCK;
    uint32_t key = mix32(seed ^ 0x2545f491U);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t lo = b * BLOCK, hi = lo + BLOCK < total ? lo + BLOCK : total;
        int64_t t = 0, start = 0; /* first tensor overlapping [lo, hi) */
        while (start + numel[t] <= lo) start += numel[t++];
        while (lo < hi) {
            int64_t off = lo - start, take = numel[t] - off;
            if (take > hi - lo) take = hi - lo;
            uint16_t *p = (uint16_t *)ptr_p[t] + off, *m = (uint16_t *)ptr_m[t] + off;
            uint16_t *v = (uint16_t *)ptr_v[t] + off;
            const uint16_t *g = (const uint16_t *)ptr_g[t] + off;
            if (stochastic)
                update_sr(p, g, m, v, take, key + (uint32_t)lo * 0x9e3779b9U, h);
            else
                update_rne(p, g, m, v, take, h);
            lo += take;
            start += numel[t++];
        }
    }
}

/* Stochastic rounding of n fp32 values to bf16 (out: raw bf16 bits), noise as above. */
void round_bf16_sr(const float *x, uint16_t *out, int64_t n, uint32_t seed) {
    uint32_t key = mix32(seed ^ 0x2545f491U);
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < (n + BLOCK - 1) / BLOCK; b++) {
        int64_t lo = b * BLOCK, hi = lo + BLOCK < n ? lo + BLOCK : n;
        for (int64_t i = lo; i < hi; i++)
            out[i] = round_sr(x[i], mix32(key + (uint32_t)i * 0x9e3779b9U) & 0xffffU);
    }
}
