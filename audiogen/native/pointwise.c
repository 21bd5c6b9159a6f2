/* Element-wise activations over large fp32 tensors, vectorised and shared out over threads.
 *
 * torch's CPU ELU evaluates expm1 one element at a time; at audio rate (a SEANet codec
 * applies ELU to tensors of 64 channels x 320k samples) that costs more than reading and
 * writing the data. Here exp comes from vmath.h's 8-wide polynomial.
 */
#include <math.h>
#include <stdint.h>

#include "vmath.h"

#define BLOCK 16384

/* y = x if x > 0 else alpha * (e^x - 1) for `rows` rows of n floats, rows ldx (x) and ldy
 * (y) floats apart; y may be x (in place). Absolute error below 3e-7 * max(1, alpha) on
 * the negative side, exact on the positive side. */
void elu_f32(const float *x, int64_t ldx, float *y, int64_t ldy, int64_t rows, int64_t n,
             float alpha) {
    int64_t per_row = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t item = 0; item < rows * per_row; item++) {
        int64_t r = item / per_row, i = (item % per_row) * BLOCK;
        int64_t end = i + BLOCK < n ? i + BLOCK : n;
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
#if HAVE_AVX2
        __m256 a = _mm256_set1_ps(alpha), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
        for (; i + 8 <= end; i += 8) {
            __m256 v = _mm256_loadu_ps(xr + i);
            __m256 neg = _mm256_mul_ps(a, _mm256_sub_ps(exp8(_mm256_min_ps(v, zero)), one));
            _mm256_storeu_ps(yr + i, _mm256_blendv_ps(neg, v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ)));
        }
#endif
        for (; i < end; i++) yr[i] = xr[i] > 0.0f ? xr[i] : alpha * expm1f(xr[i]);
    }
}
