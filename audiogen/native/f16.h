/* The product of a few fp32 activation rows with fp16 weights in a streaming layout,
 * shared by linear.c (one product per call) and decode.c (a whole decode step per call). */
#ifndef AUDIOGEN_F16_H
#define AUDIOGEN_F16_H

#include <stdint.h>

#include "vmath.h"

#if HAVE_AVX2 && defined(__F16C__)
#define HAVE_F16 1
/* y = x @ w.T for fp32 x [M, K] (row stride ldx) and fp16 weights packed for streaming:
 * wp[N / 4][K / 8][4][8] holds w[4 n + r][8 c + j] at [n][c][r][j], so a tile's four
 * rows are read as one sequential stream, 64 bytes (a cache line) per 8 columns. Weights
 * are widened exactly to fp32 (F16C); products and sums are fp32. y: [M, N] contiguous.
 * Needs N % 4 == 0 and K % 8 == 0. Output blocks are shared out over OpenMP threads. */
static void f16_product(const float *x, int64_t ldx, const uint16_t *wp, float *y, int64_t M,
                        int64_t N, int64_t K) {
    int64_t blocks = N / 4, chunks = K / 8;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const uint16_t *wb = wp + b * K * 4;
        for (int64_t m = 0; m < M; m += 2) {
            const float *x0 = x + m * ldx, *x1 = m + 1 < M ? x0 + ldx : x0;
            __m256 a00 = _mm256_setzero_ps(), a10 = a00, a20 = a00, a30 = a00;
            __m256 a01 = a00, a11 = a00, a21 = a00, a31 = a00;
            for (int64_t c = 0; c < chunks; c++) {
                const __m128i *q = (const __m128i *)(wb + c * 32);
                __m256 u = _mm256_loadu_ps(x0 + c * 8), v = _mm256_loadu_ps(x1 + c * 8);
                __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(q));
                __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(q + 1));
                __m256 w2 = _mm256_cvtph_ps(_mm_loadu_si128(q + 2));
                __m256 w3 = _mm256_cvtph_ps(_mm_loadu_si128(q + 3));
                a00 = _mm256_fmadd_ps(w0, u, a00), a01 = _mm256_fmadd_ps(w0, v, a01);
                a10 = _mm256_fmadd_ps(w1, u, a10), a11 = _mm256_fmadd_ps(w1, v, a11);
                a20 = _mm256_fmadd_ps(w2, u, a20), a21 = _mm256_fmadd_ps(w2, v, a21);
                a30 = _mm256_fmadd_ps(w3, u, a30), a31 = _mm256_fmadd_ps(w3, v, a31);
            }
            float *y0 = y + m * N + b * 4;
            y0[0] = hsum(a00), y0[1] = hsum(a10), y0[2] = hsum(a20), y0[3] = hsum(a30);
            if (m + 1 < M) {
                float *y1 = y0 + N;
                y1[0] = hsum(a01), y1[1] = hsum(a11), y1[2] = hsum(a21), y1[3] = hsum(a31);
            }
        }
    }
}
#else
#define HAVE_F16 0
#endif

#endif
