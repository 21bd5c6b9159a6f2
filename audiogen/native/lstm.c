/* The recurrence of a one-layer LSTM for inference, all time steps in one call.
 *
 * The input projection (x @ W_ih.T + b_ih + b_hh for every step) is one large matrix
 * product that torch does well, so the caller passes it in; this loop does what remains:
 * per step, the recurrent product W_hh @ h (4H x H, read from memory every step: it is
 * the cost) and the gates, c = f * c + i * g, h = o * tanh(c), in torch's gate order
 * (i, f, g, o). Threads split the hidden units; each computes all four gates of its units
 * (rows j, H + j, 2H + j, 3H + j), so the cell update needs no exchange, and one barrier
 * per step publishes h. fp32 throughout; only the summation order differs from torch's.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "vmath.h"

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

#if HAVE_AVX2
static inline __m256 sigmoid8(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* tanh(x) = sign(x) (1 - e^(-2|x|)) / (1 + e^(-2|x|)), exact in sign and saturation;
 * absolute error below 3e-7 (for tiny |x| the relative error grows: 1 - e cancels). */
static inline __m256 tanh8(__m256 x) {
    __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 e = exp8(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0f)));
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
    return _mm256_or_ps(t, sign);
}
#endif

/* g[i][j] = sum_k w_i[k] * h_j[k] for the four gate rows w0..w3 of one unit and nh (1 or
 * 2) hidden-state rows h0, h1: 8 independent FMA chains either way (two per row when nh is
 * 1, to hide the FMA latency). */
static inline void dot4(const float *w0, const float *w1, const float *w2, const float *w3,
                        const float *h0, const float *h1, int nh, int64_t H, float g[4][2]) {
    int64_t k = 0;
    for (int i = 0; i < 4; i++) g[i][0] = g[i][1] = 0.0f;
#if HAVE_AVX2
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    if (nh == 2) {
        for (; k + 8 <= H; k += 8) {
            __m256 u = _mm256_loadu_ps(h0 + k), v = _mm256_loadu_ps(h1 + k);
            __m256 x0 = _mm256_loadu_ps(w0 + k), x1 = _mm256_loadu_ps(w1 + k);
            __m256 x2 = _mm256_loadu_ps(w2 + k), x3 = _mm256_loadu_ps(w3 + k);
            a0 = _mm256_fmadd_ps(x0, u, a0), b0 = _mm256_fmadd_ps(x0, v, b0);
            a1 = _mm256_fmadd_ps(x1, u, a1), b1 = _mm256_fmadd_ps(x1, v, b1);
            a2 = _mm256_fmadd_ps(x2, u, a2), b2 = _mm256_fmadd_ps(x2, v, b2);
            a3 = _mm256_fmadd_ps(x3, u, a3), b3 = _mm256_fmadd_ps(x3, v, b3);
        }
        g[0][0] = hsum(a0), g[1][0] = hsum(a1), g[2][0] = hsum(a2), g[3][0] = hsum(a3);
        g[0][1] = hsum(b0), g[1][1] = hsum(b1), g[2][1] = hsum(b2), g[3][1] = hsum(b3);
    } else {
        for (; k + 16 <= H; k += 16) {
            __m256 u = _mm256_loadu_ps(h0 + k), v = _mm256_loadu_ps(h0 + k + 8);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), u, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), u, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), u, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), u, a3);
            b0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k + 8), v, b0);
            b1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k + 8), v, b1);
            b2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k + 8), v, b2);
            b3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k + 8), v, b3);
        }
        g[0][0] = hsum(_mm256_add_ps(a0, b0)), g[1][0] = hsum(_mm256_add_ps(a1, b1));
        g[2][0] = hsum(_mm256_add_ps(a2, b2)), g[3][0] = hsum(_mm256_add_ps(a3, b3));
    }
#endif
    for (; k < H; k++) /* the tail, or everything without AVX2 */
        for (int j = 0; j < nh; j++) {
            float hk = (j ? h1 : h0)[k];
            g[0][j] += w0[k] * hk, g[1][j] += w1[k] * hk;
            g[2][j] += w2[k] * hk, g[3][j] += w3[k] * hk;
        }
}

/* Gates to states for units [j, j + n) of one batch row: q holds the four recurrent
 * sums (i, f, g, o) of each unit, n apart; p the step's input projection; c and hn that
 * row's cell and new hidden state. Eight units at a time with AVX2. */
static void cell_update(const float *q, const float *p, float *c, float *hn, int64_t j,
                        int n, int64_t H) {
    int u = 0;
#if HAVE_AVX2
    for (; u + 8 <= n; u += 8) {
        int64_t x = j + u;
        __m256 ig = sigmoid8(_mm256_add_ps(_mm256_loadu_ps(q + u), _mm256_loadu_ps(p + x)));
        __m256 fg = sigmoid8(
            _mm256_add_ps(_mm256_loadu_ps(q + n + u), _mm256_loadu_ps(p + H + x)));
        __m256 gg = tanh8(
            _mm256_add_ps(_mm256_loadu_ps(q + 2 * n + u), _mm256_loadu_ps(p + 2 * H + x)));
        __m256 og = sigmoid8(
            _mm256_add_ps(_mm256_loadu_ps(q + 3 * n + u), _mm256_loadu_ps(p + 3 * H + x)));
        __m256 cn = _mm256_fmadd_ps(fg, _mm256_loadu_ps(c + x), _mm256_mul_ps(ig, gg));
        _mm256_storeu_ps(c + x, cn);
        _mm256_storeu_ps(hn + x, _mm256_mul_ps(og, tanh8(cn)));
    }
#endif
    for (; u < n; u++) {
        int64_t x = j + u;
        float ig = sigmoid(q[u] + p[x]), fg = sigmoid(q[n + u] + p[H + x]);
        float gg = tanhf(q[2 * n + u] + p[2 * H + x]), og = sigmoid(q[3 * n + u] + p[3 * H + x]);
        float cn = fg * c[x] + ig * gg;
        c[x] = cn;
        hn[x] = og * tanhf(cn);
    }
}

#define UNITS 8 /* hidden units per work item: one vector of gate activations */

/* pre [T, B, 4H] (input projection plus both biases), w_hh [4H, H], h0 and c0 [B, H] (c0
 * is updated in place to the final cell state), out [T, B, H] (the hidden states; the last
 * one is the final h). Returns 0, or -1 when B is over 64. */
int lstm_f32(const float *pre, const float *w_hh, const float *h0, float *c, float *out,
             int64_t T, int64_t B, int64_t H) {
    if (B > 64) return -1;
    int64_t blocks = (H + UNITS - 1) / UNITS;
#pragma omp parallel
    {
        float q[64][4 * UNITS]; /* recurrent sums: [row][gate * n + unit] */
        for (int64_t t = 0; t < T; t++) {
            const float *hprev = t == 0 ? h0 : out + (t - 1) * B * H;
            float *hnext = out + t * B * H;
#pragma omp for schedule(static)
            for (int64_t blk = 0; blk < blocks; blk++) {
                int64_t j0 = blk * UNITS;
                int n = H - j0 < UNITS ? (int)(H - j0) : UNITS;
                for (int u = 0; u < n; u++) {
                    int64_t j = j0 + u;
                    const float *w0 = w_hh + j * H, *w1 = w_hh + (H + j) * H;
                    const float *w2 = w_hh + (2 * H + j) * H, *w3 = w_hh + (3 * H + j) * H;
                    for (int64_t b = 0; b < B; b += 2) {
                        int nh = B - b < 2 ? 1 : 2;
                        float g[4][2];
                        dot4(w0, w1, w2, w3, hprev + b * H, hprev + (b + nh - 1) * H, nh, H, g);
                        for (int r = 0; r < nh; r++)
                            for (int i = 0; i < 4; i++) q[b + r][i * n + u] = g[i][r];
                    }
                }
                for (int64_t b = 0; b < B; b++)
                    cell_update(q[b], pre + (t * B + b) * 4 * H, c + b * H, hnext + b * H, j0,
                                n, H);
            }
        }
    }
    return 0;
}
