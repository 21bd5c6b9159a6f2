/* LM decoding on a CPU in few calls: a whole decode step of the decoder layers, and top-k
 * sampling of the next tokens.
 *
 * A decode step of a small LM is mostly op dispatch: the tiny model's 4 layers are ~100
 * torch ops and kernel calls per step, each microseconds of Python around microseconds of
 * arithmetic. decode_step_f16 runs every layer of a step (norms, fp16-weight products from
 * f16.h, the KV-cache write, self- and cross-attention for the one new query, GELU,
 * residuals) in one call. Top-k sampling of 4-8 rows of 1024 logits is likewise ~0.4 ms of
 * topk, softmax, exponential and argmax ops, and a few microseconds here.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "vmath.h"

static inline float dot(const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0.0f;
#if HAVE_AVX2
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    s = hsum(acc);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

#if HAVE_AVX2
/* The lane sums of eight vectors, as one vector: out[j] = sum of a[j]'s lanes. */
static inline __m256 hsum8(const __m256 a[8]) {
    __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}
#endif

/* o[0..D) = softmax(q . k_l * scale + mask[l]) v_l over keys l < L, for one head: k_l at
 * k + l * kl, v_l at v + l * vl (D contiguous floats each); mask additive or NULL. p holds
 * L floats of scratch. When every key is masked (all scores -inf) o is zeros. */
static void attend_head(const float *q, const float *k, int64_t kl, const float *v, int64_t vl,
                        const float *mask, int64_t L, int64_t D, float scale, float *p,
                        float *o) {
    int64_t l = 0;
#if HAVE_AVX2
    if (D % 8 == 0) { /* eight keys at a time: eight independent FMA chains */
        for (; l + 8 <= L; l += 8) {
            __m256 acc[8];
            for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
            for (int64_t d = 0; d < D; d += 8) {
                __m256 qv = _mm256_loadu_ps(q + d);
                for (int j = 0; j < 8; j++)
                    acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + (l + j) * kl + d), acc[j]);
            }
            __m256 s = _mm256_mul_ps(hsum8(acc), _mm256_set1_ps(scale));
            if (mask) s = _mm256_add_ps(s, _mm256_loadu_ps(mask + l));
            _mm256_storeu_ps(p + l, s);
        }
    }
#endif
    for (; l < L; l++) p[l] = dot(q, k + l * kl, D) * scale + (mask ? mask[l] : 0.0f);
    float m = -INFINITY;
    for (l = 0; l < L; l++)
        if (p[l] > m) m = p[l];
    for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
    if (m == -INFINITY) return;
    l = 0;
#if HAVE_AVX2
    __m256 mv = _mm256_set1_ps(m), ninf = _mm256_set1_ps(-INFINITY);
    for (; l + 8 <= L; l += 8) { /* e^(s - m), exactly 0 for masked keys */
        __m256 s = _mm256_loadu_ps(p + l);
        __m256 e = exp8(_mm256_sub_ps(s, mv));
        _mm256_storeu_ps(p + l, _mm256_andnot_ps(_mm256_cmp_ps(s, ninf, _CMP_EQ_OQ), e));
    }
#endif
    for (; l < L; l++) p[l] = p[l] == -INFINITY ? 0.0f : expf(p[l] - m);
    float total = 0.0f;
    for (l = 0; l < L; l++) total += p[l];
    float inv = 1.0f / total;
    int64_t d0 = 0;
#if HAVE_AVX2
    for (; d0 + 64 <= D; d0 += 64) { /* 64 output floats in 8 registers over all keys */
        __m256 acc[8];
        for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
        for (l = 0; l < L; l++) {
            if (p[l] == 0.0f) continue;
            __m256 w = _mm256_set1_ps(p[l]);
            const float *vr = v + l * vl + d0;
            for (int j = 0; j < 8; j++)
                acc[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(vr + 8 * j), acc[j]);
        }
        for (int j = 0; j < 8; j++)
            _mm256_storeu_ps(o + d0 + 8 * j, _mm256_mul_ps(acc[j], _mm256_set1_ps(inv)));
    }
#endif
    if (d0 < D) {
        for (l = 0; l < L; l++)
            if (p[l] != 0.0f)
                for (int64_t d = d0; d < D; d++) o[d] += p[l] * v[l * vl + d];
        for (int64_t d = d0; d < D; d++) o[d] *= inv;
    }
}

static inline void swapf(float *a, float *b) {
    float t = *a;
    *a = *b;
    *b = t;
}

/* The k-th largest (1-based) of a[0..n), n >= k >= 1; a is reordered. Three-way
 * partitions (larger | equal | smaller) keep runs of equal values linear. NaN compares as
 * neither larger nor smaller than any pivot, so it never moves a partition boundary wrongly;
 * callers reject NaN logits before. */
static float kth_largest(float *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n; /* the answer is within [lo, hi), at rank k - 1 overall */
    int64_t want = k - 1;
    for (;;) {
        if (hi - lo <= 1) return a[lo];
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t gt = lo, i = lo, lt = hi; /* [lo,gt) > pivot, [gt,i) == pivot, [lt,hi) < */
        while (i < lt) {
            if (a[i] > pivot)
                swapf(&a[i++], &a[gt++]);
            else if (a[i] < pivot)
                swapf(&a[i], &a[--lt]);
            else
                i++;
        }
        if (want < gt)
            hi = gt;
        else if (want >= lt)
            lo = lt;
        else
            return pivot;
    }
}

/* For each of N rows of C logits (row stride ld): sample an id from the softmax of the k
 * largest logits divided by temperature, using u[n] in [0, 1) as the row's uniform draw.
 * Ties at the k-th value keep the lowest ids. The draw walks the kept ids in id order.
 * Returns 0, -1 without scratch memory, -2 when a row holds NaN or no finite maximum (the
 * caller then samples another way). */
int topk_sample_f32(const float *logits, int64_t ld, int64_t N, int64_t C, int64_t k,
                    float temperature, const float *u, int64_t *ids) {
    if (k > C) k = C;
    if (k < 1) k = 1;
    float *buf = malloc((size_t)C * sizeof(float));
    if (buf == NULL) return -1;
    int status = 0;
    for (int64_t n = 0; n < N && status == 0; n++) {
        const float *x = logits + n * ld;
        float top = -INFINITY;
        for (int64_t c = 0; c < C; c++) {
            if (isnan(x[c])) status = -2;
            buf[c] = x[c];
            if (x[c] > top) top = x[c];
        }
        if (status || !isfinite(top)) {
            status = -2;
            break;
        }
        float t = kth_largest(buf, C, k);
        int64_t above = 0;
        for (int64_t c = 0; c < C; c++) above += x[c] > t;
        int64_t ties = k - above; /* how many ids equal to t are kept, lowest first */
        float inv_t = 1.0f / temperature, total = 0.0f;
        int64_t last = -1;
        for (int64_t c = 0; c < C; c++) { /* weights into buf, 0 for ids not kept */
            int keep = x[c] > t || (x[c] == t && ties-- > 0);
            buf[c] = keep ? expf((x[c] - top) * inv_t) : 0.0f;
            total += buf[c];
            if (keep) last = c;
        }
        float target = u[n] * total, acc = 0.0f;
        int64_t pick = last;
        for (int64_t c = 0; c < C; c++) {
            if (buf[c] == 0.0f) continue;
            acc += buf[c];
            if (acc > target) {
                pick = c;
                break;
            }
        }
        ids[n] = pick;
    }
    free(buf);
    return status;
}

/* ---- a whole decode step of MusicGen's decoder layers, fp16 weights ------------------- */

/* One decoder layer's tensors. Norms are fp32 [dim]; products are fp16 in f16.h's packed
 * layout ([out, in] weights, no bias); w_cross_q NULL skips cross-attention. The KV cache
 * is [rows, heads, max_len, dim / heads] fp32; cross K/V: element (r, h, l, d) at
 * cross_k[r * ck_b + h * ck_h + l * ck_l + d] (likewise cross_v). */
typedef struct {
    const float *ln_self_w, *ln_self_b, *ln_cross_w, *ln_cross_b, *ln_ffn_w, *ln_ffn_b;
    const uint16_t *w_qkv, *w_out, *w_cross_q, *w_cross_out, *w_fc1, *w_fc2;
    float *k_cache, *v_cache;
    const float *cross_k, *cross_v;
    int64_t ck_b, ck_h, ck_l, cv_b, cv_h, cv_l;
} DecodeLayer;

/* The shapes of a step. cross_mask: additive [rows (row stride mask_b), cross_len] or NULL.
 * scratch: at least decode_scratch_floats() floats. */
typedef struct {
    int64_t rows, dim, heads, ffn, layers, max_len, cross_len, mask_b;
    const float *cross_mask;
    float *scratch;
    double eps;
} DecodePlan;

int64_t decode_scratch_floats(int64_t rows, int64_t dim, int64_t heads, int64_t ffn,
                              int64_t max_len, int64_t cross_len) {
    int64_t keys = max_len > cross_len ? max_len : cross_len;
    return rows * (6 * dim + ffn + heads * keys);
}

/* y = (x - mean) / sqrt(var + eps) * w + b over rows of n floats (torch's LayerNorm). */
static void layer_norm(const float *x, const float *w, const float *b, float *y, int64_t rows,
                       int64_t n, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float mean = 0.0f, var = 0.0f;
        for (int64_t i = 0; i < n; i++) mean += xr[i];
        mean /= (float)n;
        for (int64_t i = 0; i < n; i++) var += (xr[i] - mean) * (xr[i] - mean);
        float inv = 1.0f / sqrtf(var / (float)n + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
    }
}

static void add_into(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

/* Attention of `rows` queries (row r's heads side by side at q + r * q_ld) to keys and
 * values of `len` positions; out [rows, heads * hd]. */
static void attend_rows(const float *q, int64_t q_ld, const float *k, int64_t kb, int64_t kh,
                        int64_t kl, const float *v, int64_t vb, int64_t vh, int64_t vl,
                        const float *mask, int64_t mb, int64_t rows, int64_t heads, int64_t hd,
                        int64_t len, float *scores, float *out) {
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static) if (rows * heads * len * hd > 65536)
    for (int64_t rh = 0; rh < rows * heads; rh++) {
        int64_t r = rh / heads, h = rh % heads;
        attend_head(q + r * q_ld + h * hd, k + r * kb + h * kh, kl, v + r * vb + h * vh, vl,
                    mask ? mask + r * mb : NULL, len, hd, scale, scores + rh * len,
                    out + r * heads * hd + h * hd);
    }
}

/* x [rows, dim]: the inputs of position `pos` (embeddings plus position), replaced by the
 * last layer's output (before the final norm). Each layer writes its keys and values at
 * `pos` in its cache and attends to positions 0..pos. Returns 0, or -1 on a CPU without
 * AVX2/F16C (the caller keeps its torch path). */
int decode_step_f16(const DecodePlan *plan, const DecodeLayer *layers, float *x, int64_t pos) {
#if HAVE_F16
    int64_t R = plan->rows, D = plan->dim, H = plan->heads, F = plan->ffn;
    int64_t hd = D / H, ml = plan->max_len;
    float eps = (float)plan->eps;
    float *h = plan->scratch, *qkv = h + R * D, *att = qkv + 3 * R * D, *tmp = att + R * D;
    float *ff = tmp + R * D, *scores = ff + R * F;
    for (int64_t i = 0; i < plan->layers; i++) {
        const DecodeLayer *L = layers + i;
        layer_norm(x, L->ln_self_w, L->ln_self_b, h, R, D, eps);
        f16_product(h, D, L->w_qkv, qkv, R, 3 * D, D);
        for (int64_t r = 0; r < R; r++)
            for (int64_t hh = 0; hh < H; hh++) {
                int64_t at = ((r * H + hh) * ml + pos) * hd;
                memcpy(L->k_cache + at, qkv + r * 3 * D + D + hh * hd, hd * sizeof(float));
                memcpy(L->v_cache + at, qkv + r * 3 * D + 2 * D + hh * hd, hd * sizeof(float));
            }
        attend_rows(qkv, 3 * D, L->k_cache, H * ml * hd, ml * hd, hd, L->v_cache, H * ml * hd,
                    ml * hd, hd, NULL, 0, R, H, hd, pos + 1, scores, att);
        f16_product(att, D, L->w_out, tmp, R, D, D);
        add_into(x, tmp, R * D);
        if (L->w_cross_q) {
            layer_norm(x, L->ln_cross_w, L->ln_cross_b, h, R, D, eps);
            f16_product(h, D, L->w_cross_q, qkv, R, D, D);
            attend_rows(qkv, D, L->cross_k, L->ck_b, L->ck_h, L->ck_l, L->cross_v, L->cv_b,
                        L->cv_h, L->cv_l, plan->cross_mask, plan->mask_b, R, H, hd,
                        plan->cross_len, scores, att);
            f16_product(att, D, L->w_cross_out, tmp, R, D, D);
            add_into(x, tmp, R * D);
        }
        layer_norm(x, L->ln_ffn_w, L->ln_ffn_b, h, R, D, eps);
        f16_product(h, D, L->w_fc1, ff, R, F, D);
        for (int64_t j = 0; j < R * F; j++) /* exact GELU, as torch's default */
            ff[j] = 0.5f * ff[j] * (1.0f + erff(ff[j] * 0.70710678118654752f));
        f16_product(ff, F, L->w_fc2, tmp, R, D, F);
        add_into(x, tmp, R * D);
    }
    return 0;
#else
    (void)plan, (void)layers, (void)x, (void)pos;
    return -1;
#endif
}
