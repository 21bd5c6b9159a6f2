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

/* y = x if x > 0 else alpha * (e^x - 1), for n floats; y may be x (in place). Absolute
 * error below 3e-7 * max(1, alpha) on the negative side, exact on the positive side. */
void elu_f32(const float *x, float *y, int64_t n, float alpha) {
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t i = b * BLOCK, end = i + BLOCK < n ? i + BLOCK : n;
#if HAVE_AVX2
        __m256 a = _mm256_set1_ps(alpha), one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
        for (; i + 8 <= end; i += 8) {
            __m256 v = _mm256_loadu_ps(x + i);
            __m256 neg = _mm256_mul_ps(a, _mm256_sub_ps(exp8(_mm256_min_ps(v, zero)), one));
            _mm256_storeu_ps(y + i, _mm256_blendv_ps(neg, v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ)));
        }
#endif
        for (; i < end; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
    }
}
