/* lstmae's C kernels: the LSTM of lstmae's autoencoder on float32 CPU tensors.
 * - the whole autoencoder's training pass (lstmae_ae_forward / lstmae_ae_backward):
 *   src/lstmae/fused.py, every layer and every weight gradient in one call each;
 * - the forward loop over the steps with its own matrix product (lstmae_forward):
 *   src/lstmae/recurrence.py, inference (scoring, encoding, validation loss);
 * - the nearest-row search of the score's latent and nearest-window parts
 *   (lstmae_nearest): src/lstmae/latent.py and src/lstmae/neighbours.py.
 * Everything else (float64, GPUs, a gradient wrt the input, CPUs without AVX2 + FMA)
 * runs torch's nn.LSTM; bench/RESULTS.md has the measurements that kept these two.
 *
 * Why: torch runs each element-wise operation as its own pass with a few
 * microseconds of dispatch, and its CPU sigmoid and tanh are slow; one LSTM step
 * needs about ten such operations, and oneDNN's fused LSTM is slow for the small
 * hidden sizes of time-series autoencoders. Here one pass does a step's work.
 *
 * Layout (row-major, float32, contiguous): gates (B, 4H) in the order
 * input, forget, cell, output, as torch's nn.LSTM; every other array (B, H).
 *
 * Compiled when the package is built (setup.py, an optional extension loaded with
 * ctypes by src/lstmae/kernels.py), with no machine-specific flags: the AVX2 + FMA
 * loops are chosen at load time when the running CPU has them; without them the
 * entry points return -1 and lstmae runs nn.LSTM. NaN inputs give NaN outputs, as in torch.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LSTMAE_X86 1
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#define LSTMAE_KERNELS_ABI 5

/* exp(x) = 2^k e^r with k = round(x / ln 2) and |r| <= ln2 / 2; e^r by its Taylor
 * polynomial to r^7, whose remainder (< 0.35^8 / 8! = 5e-9) is below float32's
 * rounding. ln 2 is split in two so that k ln2_hi is exact. x is clamped to
 * [-87, 88], where 2^k is a normal float and e^x does not overflow. */
#define EXP_LO -87.0f
#define EXP_HI 88.0f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.42860676533018e-06f

static inline float exp_s(float x) {
    x = x < EXP_LO ? EXP_LO : x; /* comparisons, not fmaxf: a NaN stays NaN */
    x = x > EXP_HI ? EXP_HI : x;
    float k = rintf(x * LOG2E);
    float r = fmaf(k, -LN2_HI, x);
    r = fmaf(k, -LN2_LO, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    int32_t bits = ((int32_t)(x == x ? k : 0.0f) + 127) << 23; /* 2^k as float bits */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
static inline float sigmoid_s(float x) { return 1.0f / (1.0f + exp_s(-x)); }
/* tanh(x) = 1 - 2 / (e^2x + 1), which cancels near 0: there (|x| < 1/16) its Taylor
 * polynomial x (1 - x^2/3 + 2x^4/15 - 17x^6/315), whose remainder is < 1e-8 relative. */
#define TANH_SMALL 0.0625f
static inline float tanh_s(float x) {
    if (x > -TANH_SMALL && x < TANH_SMALL) {
        float x2 = x * x;
        float p = fmaf(x2, -17.0f / 315.0f, 2.0f / 15.0f);
        p = fmaf(p, x2, -1.0f / 3.0f);
        return fmaf(p * x2, x, x);
    }
    return 1.0f - 2.0f / (exp_s(2.0f * x) + 1.0f);
}

#ifdef LSTMAE_X86
#define AVX2 __attribute__((target("avx2,fma")))
/* The same arithmetic as exp_s, eight lanes at a time. */
AVX2 static inline __m256 exp_v(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(EXP_LO), x); /* max(c, NaN) is NaN: NaN stays NaN */
    x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), x);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(k, _mm256_set1_ps(-LN2_HI), x);
    r = _mm256_fmadd_ps(k, _mm256_set1_ps(-LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits)); /* a NaN p keeps the product NaN */
}
AVX2 static inline __m256 sigmoid_v(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp_v(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
AVX2 static inline __m256 tanh_v(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp_v(_mm256_add_ps(x, x));
    __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-17.0f / 315.0f), _mm256_set1_ps(2.0f / 15.0f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.0f / 3.0f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, x2), x, x);
    __m256 abs_x = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 near_zero = _mm256_cmp_ps(abs_x, _mm256_set1_ps(TANH_SMALL), _CMP_LT_OQ); /* false for NaN: NaN from `large` */
    return _mm256_blendv_ps(large, small, near_zero);
}
#endif

/* ---------------------------------------------------------------- forward step
 * gates (B, 4H): in, the pre-activations gx_t + W_hh h_{t-1}; out, the activated
 * gates i, f, g, o. c = f c_prev + i g, tanh_c = tanh(c), h = o tanh(c).
 * c may be c_prev (updated in place); no other arrays may overlap. */
#define FORWARD_ONE(j)                                                                        \
    do {                                                                                      \
        float ii = sigmoid_s(i[j]), ff = sigmoid_s(f[j]), gg = tanh_s(g[j]), oo = sigmoid_s(o[j]); \
        float cc = fmaf(ff, cp[j], ii * gg);                                                  \
        float tc = tanh_s(cc);                                                                \
        i[j] = ii; f[j] = ff; g[j] = gg; o[j] = oo;                                           \
        cb[j] = cc; tb[j] = tc; hb[j] = oo * tc;                                              \
    } while (0)

#define FORWARD_ROW_POINTERS                                                                  \
    float *i = gates + b * 4 * hidden, *f = i + hidden, *g = f + hidden, *o = g + hidden;     \
    const float *cp = c_prev + b * hidden;                                                    \
    float *cb = c + b * hidden, *tb = tanh_c + b * hidden, *hb = h + b * hidden

#ifdef LSTMAE_X86
AVX2 static void forward_avx2(int64_t batch, int64_t hidden, float *gates, const float *c_prev, float *c,
                              float *tanh_c, float *h) {
    for (int64_t b = 0; b < batch; b++) {
        FORWARD_ROW_POINTERS;
        int64_t j = 0;
        for (; j + 8 <= hidden; j += 8) {
            __m256 ii = sigmoid_v(_mm256_loadu_ps(i + j)), ff = sigmoid_v(_mm256_loadu_ps(f + j));
            __m256 gg = tanh_v(_mm256_loadu_ps(g + j)), oo = sigmoid_v(_mm256_loadu_ps(o + j));
            __m256 cc = _mm256_fmadd_ps(ff, _mm256_loadu_ps(cp + j), _mm256_mul_ps(ii, gg));
            __m256 tc = tanh_v(cc);
            _mm256_storeu_ps(i + j, ii);
            _mm256_storeu_ps(f + j, ff);
            _mm256_storeu_ps(g + j, gg);
            _mm256_storeu_ps(o + j, oo);
            _mm256_storeu_ps(cb + j, cc);
            _mm256_storeu_ps(tb + j, tc);
            _mm256_storeu_ps(hb + j, _mm256_mul_ps(oo, tc));
        }
        for (; j < hidden; j++) FORWARD_ONE(j); /* the last hidden % 8 units */
    }
}
#endif

/* --------------------------------------------------------------- backward step
 * From the step's saved activations (acts (B, 4H), c_prev, tanh_c) and the
 * gradients dh (wrt h_t, everything downstream included) and dc (wrt c_t, from
 * step t + 1): dgates (B, 4H), the gradient wrt the gate pre-activations, and
 * dc becomes the gradient wrt c_{t-1}. */
#define BACKWARD_ONE(j)                                                                       \
    do {                                                                                      \
        float t = tc[j], ii = i[j], ff = f[j], gg = g[j], oo = o[j], dhj = dhb[j];            \
        float d = fmaf(dhj * oo, 1.0f - t * t, dcb[j]);                                       \
        di[j] = d * gg * (ii - ii * ii);                                                      \
        df[j] = d * cp[j] * (ff - ff * ff);                                                   \
        dg[j] = d * ii * (1.0f - gg * gg);                                                    \
        dout[j] = dhj * t * (oo - oo * oo);                                                   \
        dcb[j] = d * ff;                                                                      \
    } while (0)

#define BACKWARD_ROW_POINTERS                                                                 \
    const float *i = acts + b * 4 * hidden, *f = i + hidden, *g = f + hidden, *o = g + hidden; \
    const float *cp = c_prev + b * hidden, *tc = tanh_c + b * hidden, *dhb = dh + b * hidden; \
    float *dcb = dc + b * hidden;                                                             \
    float *di = dgates + b * 4 * hidden, *df = di + hidden, *dg = df + hidden, *dout = dg + hidden

#ifdef LSTMAE_X86
AVX2 static void backward_avx2(int64_t batch, int64_t hidden, const float *acts, const float *c_prev,
                               const float *tanh_c, const float *dh, float *dc, float *dgates) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t b = 0; b < batch; b++) {
        BACKWARD_ROW_POINTERS;
        int64_t j = 0;
        for (; j + 8 <= hidden; j += 8) {
            __m256 t = _mm256_loadu_ps(tc + j), ii = _mm256_loadu_ps(i + j), ff = _mm256_loadu_ps(f + j);
            __m256 gg = _mm256_loadu_ps(g + j), oo = _mm256_loadu_ps(o + j), dhj = _mm256_loadu_ps(dhb + j);
            __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(dhj, oo), _mm256_sub_ps(one, _mm256_mul_ps(t, t)),
                                       _mm256_loadu_ps(dcb + j));
            _mm256_storeu_ps(di + j, _mm256_mul_ps(_mm256_mul_ps(d, gg), _mm256_sub_ps(ii, _mm256_mul_ps(ii, ii))));
            _mm256_storeu_ps(df + j, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(cp + j)),
                                                   _mm256_sub_ps(ff, _mm256_mul_ps(ff, ff))));
            _mm256_storeu_ps(dg + j, _mm256_mul_ps(_mm256_mul_ps(d, ii), _mm256_sub_ps(one, _mm256_mul_ps(gg, gg))));
            _mm256_storeu_ps(dout + j, _mm256_mul_ps(_mm256_mul_ps(dhj, t), _mm256_sub_ps(oo, _mm256_mul_ps(oo, oo))));
            _mm256_storeu_ps(dcb + j, _mm256_mul_ps(d, ff));
        }
        for (; j < hidden; j++) BACKWARD_ONE(j);
    }
}
#endif

/* ------------------------------------------------------- whole loops (AVX2 only)
 * The recurrence's per-step products are small ((rows x H) @ (H x 4H)); a call
 * into torch for each costs as much as the arithmetic. Here the whole loop over
 * the steps runs in C with its own product: C = D + A @ B, B packed in panels of
 * 16 columns (P, K, 16), zero-padded past N. Each output row depends only on its
 * own input row, accumulated in the same order whatever the other rows are, so
 * rows can be split between threads without changing a bit. */
#ifdef LSTMAE_X86
#define PANEL 16
#define TILE_ROWS 6

#define DEFINE_TILE(MR)                                                                                    \
    AVX2 static void tile_##MR(int64_t K, const float *A, int64_t lda, const float *bp, const float *D,    \
                               int64_t ldd, float *C, int64_t ldc, int64_t cols) {                         \
        __m256 acc[MR][2];                                                                                 \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps(); \
        for (int64_t k = 0; k < K; k++) {                                                                  \
            __m256 b0 = _mm256_loadu_ps(bp + PANEL * k), b1 = _mm256_loadu_ps(bp + PANEL * k + 8);         \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                         \
                __m256 a = _mm256_broadcast_ss(A + r * lda + k);                                           \
                acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);                                             \
                acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);                                             \
            }                                                                                              \
        }                                                                                                  \
        if (cols == PANEL) {                                                                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                         \
                _mm256_storeu_ps(C + r * ldc, _mm256_add_ps(acc[r][0], _mm256_loadu_ps(D + r * ldd)));     \
                _mm256_storeu_ps(C + r * ldc + 8, _mm256_add_ps(acc[r][1], _mm256_loadu_ps(D + r * ldd + 8))); \
            }                                                                                              \
        } else {                                                                                           \
            __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                      \
            __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols), lane);                           \
            __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols - 8), lane);                       \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                         \
                _mm256_maskstore_ps(C + r * ldc, m0, _mm256_add_ps(acc[r][0], _mm256_maskload_ps(D + r * ldd, m0))); \
                _mm256_maskstore_ps(C + r * ldc + 8, m1,                                                   \
                                    _mm256_add_ps(acc[r][1], _mm256_maskload_ps(D + r * ldd + 8, m1)));    \
            }                                                                                              \
        }                                                                                                  \
    }
DEFINE_TILE(1)
DEFINE_TILE(2)
DEFINE_TILE(3)
DEFINE_TILE(4)
DEFINE_TILE(5)
DEFINE_TILE(6)

/* C (M x N, row stride ldc) = D (row stride ldd) + A (M x K, row stride lda) @ B (packed). */
AVX2 static void gemm_add(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *packed,
                          const float *D, int64_t ldd, float *C, int64_t ldc) {
    for (int64_t p = 0; p * PANEL < N; p++) {
        int64_t col = p * PANEL, cols = N - col < PANEL ? N - col : PANEL;
        const float *bp = packed + p * K * PANEL;
        for (int64_t m = 0; m < M; m += TILE_ROWS) {
            const float *a = A + m * lda, *d = D + m * ldd + col;
            float *c = C + m * ldc + col;
            switch (M - m < TILE_ROWS ? M - m : TILE_ROWS) {
                case 6: tile_6(K, a, lda, bp, d, ldd, c, ldc, cols); break;
                case 5: tile_5(K, a, lda, bp, d, ldd, c, ldc, cols); break;
                case 4: tile_4(K, a, lda, bp, d, ldd, c, ldc, cols); break;
                case 3: tile_3(K, a, lda, bp, d, ldd, c, ldc, cols); break;
                case 2: tile_2(K, a, lda, bp, d, ldd, c, ldc, cols); break;
                default: tile_1(K, a, lda, bp, d, ldd, c, ldc, cols); break;
            }
        }
    }
}
#endif

/* ---------------------------------------------------------------- entry points */
static int use_avx2(void) {
#ifdef LSTMAE_X86
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return known;
#else
    return 0;
#endif
}

int lstmae_kernels_abi(void) { return LSTMAE_KERNELS_ABI; }

/* 1 when the AVX2 + FMA loops run on this CPU (the entry points work), 0 otherwise. */
int lstmae_kernels_vectorised(void) { return use_avx2(); }

typedef struct {
    int64_t steps, batch, hidden;
    const float *gx;
    int64_t gx_step, gx_row;
    const float *w_packed;
    float *acts;
    int64_t acts_step;
    float *cells;
    int64_t cells_step;
    float *tanh_c;
    int64_t tanh_step;
    float *outputs;
} forward_args;

typedef struct {
    int64_t steps, batch, hidden;
    const float *acts, *cells, *tanh_c, *grad_outputs, *w_packed;
    float *dh, *dc, *dgates;
} backward_args;

/* The forward loop for rows r0 .. r1 - 1 (see lstmae_forward). */
#ifdef LSTMAE_X86
AVX2
#endif
static void forward_part(const void *arguments, int64_t r0, int64_t r1) {
#ifdef LSTMAE_X86
    const forward_args *a = arguments;
    int64_t hidden = a->hidden, four_h = 4 * hidden, out_step = a->batch * hidden, rows = r1 - r0;
    const float *gx = a->gx + r0 * a->gx_row;
    float *acts = a->acts + r0 * four_h, *cells = a->cells + r0 * hidden, *tanh_c = a->tanh_c + r0 * hidden;
    float *outputs = a->outputs + r0 * hidden;
    for (int64_t t = 0; t < a->steps; t++) {
        float *gates = acts + t * a->acts_step;
        gemm_add(rows, four_h, hidden, outputs + t * out_step, hidden, a->w_packed, gx + t * a->gx_step, a->gx_row, gates, four_h);
        forward_avx2(rows, hidden, gates, cells + t * a->cells_step, cells + (t + 1) * a->cells_step,
                     tanh_c + t * a->tanh_step, outputs + (t + 1) * out_step);
    }
#else
    (void)arguments; (void)r0; (void)r1;
#endif
}

/* The backward loop for rows r0 .. r1 - 1 (the autoencoder's backward pass, ae_backward_rows). */
#ifdef LSTMAE_X86
AVX2
#endif
static void backward_part(const void *arguments, int64_t r0, int64_t r1) {
#ifdef LSTMAE_X86
    const backward_args *a = arguments;
    int64_t hidden = a->hidden, four_h = 4 * hidden, gate_step = a->batch * four_h, unit_step = a->batch * hidden;
    int64_t rows = r1 - r0, last = a->steps - 1;
    const float *acts = a->acts + r0 * four_h, *cells = a->cells + r0 * hidden, *tanh_c = a->tanh_c + r0 * hidden;
    const float *grad_outputs = a->grad_outputs + r0 * hidden;
    float *dh = a->dh + r0 * hidden, *dc = a->dc + r0 * hidden, *dgates = a->dgates + r0 * four_h;
    for (int64_t r = 0; r < rows; r++) memcpy(dh + r * hidden, grad_outputs + last * unit_step + r * hidden, hidden * sizeof(float));
    for (int64_t t = last; t >= 0; t--) {
        float *dg = dgates + t * gate_step;
        backward_avx2(rows, hidden, acts + t * gate_step, cells + t * unit_step, tanh_c + t * unit_step, dh, dc, dg);
        if (t > 0) gemm_add(rows, hidden, four_h, dg, four_h, a->w_packed, grad_outputs + (t - 1) * unit_step, hidden, dh, hidden);
    }
#else
    (void)arguments; (void)r0; (void)r1;
#endif
}

/* part(arguments, r0, r1) for contiguous row ranges covering 0 .. batch - 1, one per
 * OpenMP thread: the team torch itself uses (the library links the libgomp torch
 * has loaded). Each thread gets >= MIN_ROWS rows. */
#define MIN_ROWS 8

static void split_rows(int64_t batch, int64_t threads, void (*part)(const void *, int64_t, int64_t), const void *arguments) {
#ifdef _OPENMP
    int64_t most = batch / MIN_ROWS, n = threads < most ? threads : most;
    if (n > 1) {
#pragma omp parallel num_threads((int)n)
        {
            int64_t g = omp_get_thread_num(), size = omp_get_num_threads();
            part(arguments, g * batch / size, (g + 1) * batch / size);
        }
        return;
    }
#endif
    (void)threads;
    part(arguments, 0, batch);
}

/* The forward loop over a batch of `batch` rows, every step in C, rows split between
 * `threads` threads. gx: the input projections, steps `gx_step` and rows `gx_row`
 * elements apart (gx_step = 0: the same projection at every step). w_packed: W_hh^T
 * (H x 4H) packed (ceil(4H / 16), H, 16). acts, tanh_c: (T, batch, 4H) and
 * (T, batch, H); cells, outputs: (T + 1, batch, H) with step 0 zero (c_{-1}, h_{-1}).
 * Step strides of 0 for acts, tanh_c and cells reuse one (batch, ...) block
 * (inference). Returns 0, or -1 without AVX2 + FMA (the caller runs nn.LSTM instead). */
int lstmae_forward(int64_t steps, int64_t batch, int64_t hidden, int64_t threads, const float *gx, int64_t gx_step,
                   int64_t gx_row, const float *w_packed, float *acts, int64_t acts_step, float *cells, int64_t cells_step,
                   float *tanh_c, int64_t tanh_step, float *outputs) {
    if (!use_avx2()) return -1;
    forward_args a = {steps, batch, hidden, gx, gx_step, gx_row, w_packed, acts, acts_step,
                      cells, cells_step, tanh_c, tanh_step, outputs};
    split_rows(batch, threads, forward_part, &a);
    return 0;
}

/* ------------------------------------------- the whole autoencoder (AVX2 only)
 * One training step's forward and backward pass of lstmae's LSTMAutoencoder
 * (src/lstmae/nn.py; the Python side is src/lstmae/fused.py) as one call each:
 * every LSTM layer, the repeat decoder's input projected once, the per-step
 * output Linear. Without this each layer is a handful of torch operations and
 * autograd nodes around the C loops, which cost as much as the loops at batch 32.
 *
 * Threads: the batch's rows are split between threads as in the loops above; each
 * thread runs all layers for its rows (rows never meet). The weight gradients,
 * sums over every step and row, come after a barrier, split by output rows: each
 * gradient element is summed by one thread, over the steps and rows in one fixed
 * order. So results are bit-identical for any number of threads.
 *
 * Layout: S = steps, B = batch, G = 4H; time-major buffers (S, B, ...) as the
 * loops above; x and y batch-major (B, S, features), as torch holds them. */
typedef struct {
    int64_t input, hidden;
    const float *w_ih, *w_hh, *b_ih, *b_hh;  /* nn.LSTM's parameters, row-major: (G, in), (G, H), (G), (G) */
    float *w_ih_t_packed, *w_hh_t_packed;    /* forward: W_ih^T (in x G), W_hh^T (H x G) in panels */
    float *w_ih_packed, *w_hh_packed;        /* backward: W_ih (G x in), W_hh (G x H) in panels */
    float *bias;                             /* (G): b_ih + b_hh */
    float *acts;                             /* (S, B, G): activated gates; the backward overwrites them with dgates */
    float *cells, *tanh_c, *outputs;         /* (S + 1, B, H) with c_{-1} = 0, (S, B, H), (S + 1, B, H) with h_{-1} = 0 */
    float *grad_outputs, *dh, *dc;           /* backward: (S, B, H), (B, H), (B, H) */
    float *grad_w_ih, *grad_w_hh, *grad_b_ih, *grad_b_hh;
} ae_layer;

typedef struct {
    int64_t steps, batch, n_layers, n_encoder, repeat, features;
    const float *x;                          /* (B, S, in_0) */
    float *y;                                /* (B, S, features): the reconstruction */
    const float *w_out, *b_out;              /* (features, H_last), (features) */
    float *w_out_t_packed, *w_out_packed;    /* W_out^T (H_last x features), W_out (features x H_last) in panels */
    float *repeat_gx;                        /* (B, G_E): the repeat decoder's input projection; backward: its dgates summed over steps */
    const float *zeros;                      /* >= max(G, H, features) + 16 zeros: the bias of a product without one */
    const float *grad_y;                     /* (B, S, features) */
    float *grad_w_out, *grad_b_out;
    float *scratch;                          /* backward: per thread, scratch_per_thread floats (lstmae_ae_scratch) */
    int64_t scratch_per_thread;
    ae_layer *layers;                        /* n_layers: the encoder's n_encoder, then the decoder's */
} ae_model;

#ifdef _OPENMP
#define BARRIER _Pragma("omp barrier")
#else
#define BARRIER
#endif

#ifdef LSTMAE_X86
/* [*lo, *hi): part g of n of count items. */
static void share(int64_t count, int64_t g, int64_t n, int64_t *lo, int64_t *hi) {
    *lo = g * count / n;
    *hi = (g + 1) * count / n;
}

/* dst (ceil(N / 16), K, 16) = the K x N matrix src[k * s_k + n * s_n] in panels, zero past N; panels [p0, p1). */
static void pack_panels(int64_t K, int64_t N, const float *src, int64_t s_k, int64_t s_n, float *dst, int64_t p0,
                        int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
        float *d = dst + p * K * PANEL;
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < PANEL; c++) {
                int64_t n = p * PANEL + c;
                d[k * PANEL + c] = n < N ? src[k * s_k + n * s_n] : 0.0f;
            }
    }
}

static int64_t panels(int64_t n) { return (n + PANEL - 1) / PANEL; }

/* Thread g of n packs its share of every matrix the forward pass multiplies by. */
static void ae_pack_forward(const ae_model *m, int64_t g, int64_t n) {
    int64_t lo, hi;
    for (int64_t l = 0; l < m->n_layers; l++) {
        const ae_layer *L = &m->layers[l];
        int64_t in = L->input, H = L->hidden, G = 4 * H;
        share(panels(G), g, n, &lo, &hi);
        pack_panels(in, G, L->w_ih, 1, in, L->w_ih_t_packed, lo, hi);
        pack_panels(H, G, L->w_hh, 1, H, L->w_hh_t_packed, lo, hi);
        share(G, g, n, &lo, &hi);
        for (int64_t j = lo; j < hi; j++) L->bias[j] = L->b_ih[j] + L->b_hh[j];
    }
    int64_t last = m->layers[m->n_layers - 1].hidden;
    share(panels(m->features), g, n, &lo, &hi);
    pack_panels(last, m->features, m->w_out, 1, last, m->w_out_t_packed, lo, hi);
}

static void ae_pack_backward(const ae_model *m, int64_t g, int64_t n) {
    int64_t lo, hi;
    for (int64_t l = 0; l < m->n_layers; l++) {
        const ae_layer *L = &m->layers[l];
        int64_t in = L->input, H = L->hidden, G = 4 * H;
        share(panels(H), g, n, &lo, &hi);
        pack_panels(G, H, L->w_hh, H, 1, L->w_hh_packed, lo, hi);
        if (l > 0) {
            share(panels(in), g, n, &lo, &hi);
            pack_panels(G, in, L->w_ih, in, 1, L->w_ih_packed, lo, hi);
        }
    }
    int64_t last = m->layers[m->n_layers - 1].hidden;
    share(panels(last), g, n, &lo, &hi);
    pack_panels(m->features, last, m->w_out, last, 1, m->w_out_packed, lo, hi);
}

/* The forward pass for rows r0 .. r1 - 1. */
AVX2 static void ae_forward_rows(const ae_model *m, int64_t r0, int64_t r1) {
    int64_t S = m->steps, B = m->batch, rows = r1 - r0;
    for (int64_t l = 0; l < m->n_layers; l++) {
        const ae_layer *L = &m->layers[l];
        int64_t in = L->input, H = L->hidden, G = 4 * H;
        const float *gx = L->acts; /* the input projections go into acts, which the loop then updates in place */
        int64_t gx_step = B * G;
        memset(L->cells + r0 * H, 0, rows * H * sizeof(float)); /* c_{-1} = 0 */
        memset(L->outputs + r0 * H, 0, rows * H * sizeof(float)); /* h_{-1} = 0 */
        if (l == 0) {
            for (int64_t t = 0; t < S; t++)
                gemm_add(rows, G, in, m->x + r0 * S * in + t * in, S * in, L->w_ih_t_packed, L->bias, 0,
                         L->acts + t * B * G + r0 * G, G);
        } else if (m->repeat && l == m->n_encoder) { /* RepeatVector: the encoder's last h, projected once */
            const float *z = m->layers[l - 1].outputs + S * B * in;
            gemm_add(rows, G, in, z + r0 * in, in, L->w_ih_t_packed, L->bias, 0, m->repeat_gx + r0 * G, G);
            gx = m->repeat_gx;
            gx_step = 0;
        } else {
            const float *below = m->layers[l - 1].outputs + B * in; /* h_0 of the layer below */
            for (int64_t t = 0; t < S; t++)
                gemm_add(rows, G, in, below + t * B * in + r0 * in, in, L->w_ih_t_packed, L->bias, 0,
                         L->acts + t * B * G + r0 * G, G);
        }
        forward_args a = {S, B, H, gx, gx_step, G, L->w_hh_t_packed, L->acts, B * G,
                          L->cells, B * H, L->tanh_c, B * H, L->outputs};
        forward_part(&a, r0, r1);
    }
    const ae_layer *top = &m->layers[m->n_layers - 1];
    int64_t H = top->hidden, F = m->features;
    for (int64_t t = 0; t < S; t++) /* TimeDistributed(Dense) */
        gemm_add(rows, F, H, top->outputs + (t + 1) * B * H + r0 * H, H, m->w_out_t_packed, m->b_out, 0,
                 m->y + r0 * S * F + t * F, S * F);
}

/* The backward pass for rows r0 .. r1 - 1, up to the weight gradients: every layer's
 * acts become its dgates (repeat decoder: also summed over steps into repeat_gx). */
AVX2 static void ae_backward_rows(const ae_model *m, int64_t r0, int64_t r1) {
    int64_t S = m->steps, B = m->batch, rows = r1 - r0, F = m->features;
    const ae_layer *top = &m->layers[m->n_layers - 1];
    for (int64_t t = 0; t < S; t++) /* dL/dh of the top layer = dL/dy W_out */
        gemm_add(rows, top->hidden, F, m->grad_y + r0 * S * F + t * F, S * F, m->w_out_packed, m->zeros, 0,
                 top->grad_outputs + t * B * top->hidden + r0 * top->hidden, top->hidden);
    for (int64_t l = m->n_layers - 1; l >= 0; l--) {
        const ae_layer *L = &m->layers[l];
        int64_t H = L->hidden, G = 4 * H;
        memset(L->dc + r0 * H, 0, rows * H * sizeof(float));
        backward_args a = {S, B, H, L->acts, L->cells, L->tanh_c, L->grad_outputs, L->w_hh_packed, L->dh, L->dc, L->acts};
        backward_part(&a, r0, r1);
        if (l == 0) break;
        const ae_layer *below = &m->layers[l - 1];
        int64_t in = L->input;
        if (m->repeat && l == m->n_encoder) { /* only the encoder's last step feeds the decoder */
            for (int64_t r = r0; r < r1; r++) {
                float *sum = m->repeat_gx + r * G;
                memcpy(sum, L->acts + r * G, G * sizeof(float));
                for (int64_t t = 1; t < S; t++) {
                    const float *d = L->acts + t * B * G + r * G;
                    int64_t j = 0;
                    for (; j + 8 <= G; j += 8) _mm256_storeu_ps(sum + j, _mm256_add_ps(_mm256_loadu_ps(sum + j), _mm256_loadu_ps(d + j)));
                    for (; j < G; j++) sum[j] += d[j];
                }
            }
            for (int64_t t = 0; t < S - 1; t++) memset(below->grad_outputs + t * B * in + r0 * in, 0, rows * in * sizeof(float));
            gemm_add(rows, in, G, m->repeat_gx + r0 * G, G, L->w_ih_packed, m->zeros, 0,
                     below->grad_outputs + (S - 1) * B * in + r0 * in, in);
        } else {
            for (int64_t t = 0; t < S; t++)
                gemm_add(rows, in, G, L->acts + t * B * G + r0 * G, G, L->w_ih_packed, m->zeros, 0,
                         below->grad_outputs + t * B * in + r0 * in, in);
        }
    }
}

/* Weight gradients: C (rows [i0, i1) x N, row stride ldc) = the sum over the K = nt * nr
 * pairs (t, r), in that order, of A(t, r)^T B(t, r), where A(t, r) = A + t * at + r * ar is a
 * row (its elements [i0, i1) used) and B(t, r) likewise a row of N. Summed in blocks of
 * TN_BLOCK pairs: the block's A columns packed in 6-row tiles (kb, 6) and its B rows in
 * 16-column panels (kb, 16), so the tile reads both in order from cache (read in place,
 * their strided rows made the product bound by cache bandwidth). Each element's sum
 * runs over the pairs in order whatever the rows [i0, i1), so any split between
 * threads gives the same bits. scratch: lstmae_ae_scratch(M, N) floats. */
#define TN_BLOCK 256

AVX2 static void tn_tile(int64_t kb, const float *ap, const float *bp, float *C, int64_t ldc, int64_t rows,
                         int64_t cols, int accumulate) {
    __m256 acc[TILE_ROWS][2];
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols), lane);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols - 8), lane);
    _Pragma("GCC unroll 8") for (int q = 0; q < TILE_ROWS; q++) {
        int load = accumulate && q < rows;
        acc[q][0] = load ? _mm256_maskload_ps(C + q * ldc, m0) : _mm256_setzero_ps();
        acc[q][1] = load ? _mm256_maskload_ps(C + q * ldc + 8, m1) : _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < kb; k++) {
        __m256 b0 = _mm256_loadu_ps(bp + PANEL * k), b1 = _mm256_loadu_ps(bp + PANEL * k + 8);
        _Pragma("GCC unroll 8") for (int q = 0; q < TILE_ROWS; q++) {
            __m256 av = _mm256_broadcast_ss(ap + TILE_ROWS * k + q);
            acc[q][0] = _mm256_fmadd_ps(av, b0, acc[q][0]);
            acc[q][1] = _mm256_fmadd_ps(av, b1, acc[q][1]);
        }
    }
    /* a constant trip count, unrolled: acc stays in registers (a loop to `rows` would keep it in memory) */
    _Pragma("GCC unroll 8") for (int q = 0; q < TILE_ROWS; q++) {
        if (q < rows && cols == PANEL) {
            _mm256_storeu_ps(C + q * ldc, acc[q][0]);
            _mm256_storeu_ps(C + q * ldc + 8, acc[q][1]);
        } else if (q < rows) {
            _mm256_maskstore_ps(C + q * ldc, m0, acc[q][0]);
            _mm256_maskstore_ps(C + q * ldc + 8, m1, acc[q][1]);
        }
    }
}

/* A mask of the first n lanes (none for n <= 0, all for n >= 8). */
AVX2 static inline __m256i lanes(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : n > 8 ? 8 : n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static int64_t tn_tiles(int64_t m) { return (m + TILE_ROWS - 1) / TILE_ROWS; }

AVX2 static void gemm_tn(int64_t N, int64_t nt, int64_t nr, const float *A, int64_t at, int64_t ar, const float *Bm,
                         int64_t bt, int64_t br, float *C, int64_t ldc, int64_t i0, int64_t i1, float *scratch) {
    int64_t K = nt * nr, tiles = tn_tiles(i1 - i0), n_panels = panels(N);
    float *ap = scratch, *bp = scratch + TN_BLOCK * TILE_ROWS * tiles; /* (tiles, kb, 6), (panels, kb, 16) */
    if (K == 0) { /* an empty sum */
        for (int64_t i = i0; i < i1; i++) memset(C + i * ldc, 0, N * sizeof(float));
        return;
    }
    for (int64_t k0 = 0; k0 < K; k0 += TN_BLOCK) {
        int64_t kb = K - k0 < TN_BLOCK ? K - k0 : TN_BLOCK;
        const float *a_rows[TN_BLOCK], *b_rows[TN_BLOCK];
        for (int64_t k = 0; k < kb; k++) {
            int64_t t = (k0 + k) / nr, r = (k0 + k) % nr;
            a_rows[k] = A + t * at + r * ar + i0;
            b_rows[k] = Bm + t * bt + r * br;
        }
        /* Packed in ascending addresses with whole 8-lane stores: the 2 lanes past a 6-wide slot
         * are overwritten by the next slot (or by the B panels, packed after). Masked loads
         * give the zeros past i1 and N; AMD's masked stores are slow, so none are used. */
        for (int64_t q = 0; q < tiles; q++) {
            int64_t left = i1 - i0 - q * TILE_ROWS;
            float *dst = ap + q * kb * TILE_ROWS;
            if (left >= 8) {
                for (int64_t k = 0; k < kb; k++) _mm256_storeu_ps(dst + k * TILE_ROWS, _mm256_loadu_ps(a_rows[k] + q * TILE_ROWS));
            } else {
                __m256i mask = lanes(left < TILE_ROWS ? left : TILE_ROWS);
                for (int64_t k = 0; k < kb; k++) _mm256_storeu_ps(dst + k * TILE_ROWS, _mm256_maskload_ps(a_rows[k] + q * TILE_ROWS, mask));
            }
        }
        for (int64_t p = 0; p < n_panels; p++) {
            int64_t left = N - p * PANEL;
            __m256i m0 = lanes(left), m1 = lanes(left - 8);
            float *dst = bp + p * kb * PANEL;
            for (int64_t k = 0; k < kb; k++) {
                _mm256_storeu_ps(dst + k * PANEL, _mm256_maskload_ps(b_rows[k] + p * PANEL, m0));
                _mm256_storeu_ps(dst + k * PANEL + 8, _mm256_maskload_ps(b_rows[k] + p * PANEL + 8, m1));
            }
        }
        for (int64_t p = 0; p < n_panels; p++) {
            int64_t cols = N - p * PANEL < PANEL ? N - p * PANEL : PANEL;
            for (int64_t q = 0; q < tiles; q++) {
                int64_t i = i0 + q * TILE_ROWS, rows = i1 - i < TILE_ROWS ? i1 - i : TILE_ROWS;
                tn_tile(kb, ap + q * kb * TILE_ROWS, bp + p * kb * PANEL, C + i * ldc + p * PANEL, ldc, rows, cols, k0 > 0);
            }
        }
    }
}

/* out[i] (and out2[i] when given) = sum over t < nt, r < nr of A(t, r)[i], for i in [i0, i1): a bias gradient. */
AVX2 static void column_sums(int64_t nt, int64_t nr, const float *A, int64_t at, int64_t ar, float *out, float *out2,
                             int64_t i0, int64_t i1) {
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t i = i0; i < i1; i += 8) {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(i1 - i)), lane);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t t = 0; t < nt; t++)
            for (int64_t r = 0; r < nr; r++) acc = _mm256_add_ps(acc, _mm256_maskload_ps(A + t * at + r * ar + i, mask));
        _mm256_maskstore_ps(out + i, mask, acc);
        if (out2) _mm256_maskstore_ps(out2 + i, mask, acc);
    }
}

/* One weight gradient's output rows for thread g of n: tiles of 6 rows, split between threads. */
AVX2 static void weight_grad(int64_t M, int64_t N, int64_t nt, int64_t nr, const float *A, int64_t at, int64_t ar,
                             const float *Bm, int64_t bt, int64_t br, float *C, int64_t g, int64_t n, float *scratch) {
    int64_t lo, hi;
    share(tn_tiles(M), g, n, &lo, &hi);
    int64_t i1 = hi * TILE_ROWS < M ? hi * TILE_ROWS : M;
    if (lo * TILE_ROWS < i1) gemm_tn(N, nt, nr, A, at, ar, Bm, bt, br, C, N, lo * TILE_ROWS, i1, scratch);
}

AVX2 static void bias_grad(int64_t M, int64_t nt, int64_t nr, const float *A, int64_t at, int64_t ar, float *out,
                           float *out2, int64_t g, int64_t n) {
    int64_t lo, hi, chunks = (M + 7) / 8;
    share(chunks, g, n, &lo, &hi);
    int64_t i1 = hi * 8 < M ? hi * 8 : M;
    if (lo * 8 < i1) column_sums(nt, nr, A, at, ar, out, out2, lo * 8, i1);
}

/* A narrow input's weight gradient and the bias gradients, in one pass over the pairs:
 * for rows i in [i0, i1), in blocks of 16, out[i] (and out2[i] when given) = the sum over
 * k = (t, r) of A(k)[i], and W[i][j] (row stride N, N <= NARROW) = the sum of A(k)[i] B(k)[j],
 * A(k) = A + t * at + r * ar and B(k) likewise. Each element's sum runs over k in order from
 * zero, as column_sums and gemm_tn run theirs: the same bits as those two (and for any split
 * between threads). For a layer fed by a few features gemm_tn would pack every dgates row
 * for a product N columns wide, and column_sums read them all again. */
#define NARROW 4

AVX2 static void narrow_grads(int64_t N, int64_t nt, int64_t nr, const float *A, int64_t at, int64_t ar,
                              const float *Bm, int64_t bt, int64_t br, float *W, float *out, float *out2,
                              int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i += 16) {
        __m256i m0 = lanes(i1 - i), m1 = lanes(i1 - i - 8);
        __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps(), acc0[NARROW], acc1[NARROW];
        _Pragma("GCC unroll 4") for (int j = 0; j < NARROW; j++) acc0[j] = acc1[j] = _mm256_setzero_ps();
        for (int64_t t = 0; t < nt; t++)
            for (int64_t r = 0; r < nr; r++) {
                const float *a = A + t * at + r * ar + i, *b = Bm + t * bt + r * br;
                __m256 a0 = _mm256_maskload_ps(a, m0), a1 = _mm256_maskload_ps(a + 8, m1);
                sum0 = _mm256_add_ps(sum0, a0);
                sum1 = _mm256_add_ps(sum1, a1);
                /* a constant trip count, unrolled: the accumulators stay in registers */
                _Pragma("GCC unroll 4") for (int j = 0; j < NARROW; j++) if (j < N) {
                    __m256 bj = _mm256_broadcast_ss(b + j);
                    acc0[j] = _mm256_fmadd_ps(a0, bj, acc0[j]);
                    acc1[j] = _mm256_fmadd_ps(a1, bj, acc1[j]);
                }
            }
        _mm256_maskstore_ps(out + i, m0, sum0);
        _mm256_maskstore_ps(out + i + 8, m1, sum1);
        if (out2) {
            _mm256_maskstore_ps(out2 + i, m0, sum0);
            _mm256_maskstore_ps(out2 + i + 8, m1, sum1);
        }
        float w[NARROW][16];
        _Pragma("GCC unroll 4") for (int j = 0; j < NARROW; j++) {
            _mm256_storeu_ps(w[j], acc0[j]);
            _mm256_storeu_ps(w[j] + 8, acc1[j]);
        }
        for (int64_t q = 0; q < 16 && i + q < i1; q++)
            for (int64_t j = 0; j < N; j++) W[(i + q) * N + j] = w[j][q];
    }
}

/* Thread g of n's share of a narrow input's weight and bias gradients: blocks of 16 rows. */
AVX2 static void narrow_grad(int64_t M, int64_t N, int64_t nt, int64_t nr, const float *A, int64_t at, int64_t ar,
                             const float *Bm, int64_t bt, int64_t br, float *W, float *out, float *out2, int64_t g,
                             int64_t n) {
    int64_t lo, hi, blocks = (M + 15) / 16;
    share(blocks, g, n, &lo, &hi);
    int64_t i1 = hi * 16 < M ? hi * 16 : M;
    if (lo * 16 < i1) narrow_grads(N, nt, nr, A, at, ar, Bm, bt, br, W, out, out2, lo * 16, i1);
}

/* A weight gradient with few rows (M <= NARROW; the output layer of a few features):
 * C[i][j] (row stride N) = the sum over k = (t, r) of A(k)[i] B(k)[j], for columns j in
 * [j0, j1), in blocks of 16. Each element's sum runs over k in order from zero, as gemm_tn's
 * does (the same bits, for any split of the columns between threads); gemm_tn would pack
 * every B row, fill a 6-row tile with M rows, and leave the other threads idle. */
AVX2 static void few_rows_grads(int64_t M, int64_t N, int64_t nt, int64_t nr, const float *A, int64_t at, int64_t ar,
                                const float *Bm, int64_t bt, int64_t br, float *C, int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; j += 16) {
        __m256i m0 = lanes(j1 - j), m1 = lanes(j1 - j - 8);
        __m256 acc0[NARROW], acc1[NARROW];
        _Pragma("GCC unroll 4") for (int i = 0; i < NARROW; i++) acc0[i] = acc1[i] = _mm256_setzero_ps();
        for (int64_t t = 0; t < nt; t++)
            for (int64_t r = 0; r < nr; r++) {
                const float *a = A + t * at + r * ar, *b = Bm + t * bt + r * br + j;
                __m256 b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
                _Pragma("GCC unroll 4") for (int i = 0; i < NARROW; i++) if (i < M) {
                    __m256 ai = _mm256_broadcast_ss(a + i);
                    acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
                    acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
                }
            }
        _Pragma("GCC unroll 4") for (int i = 0; i < NARROW; i++) if (i < M) {
            _mm256_maskstore_ps(C + i * N + j, m0, acc0[i]);
            _mm256_maskstore_ps(C + i * N + j + 8, m1, acc1[i]);
        }
    }
}

/* Thread g of n's share of a few-row weight gradient: blocks of 16 columns. */
AVX2 static void few_rows_grad(int64_t M, int64_t N, int64_t nt, int64_t nr, const float *A, int64_t at, int64_t ar,
                               const float *Bm, int64_t bt, int64_t br, float *C, int64_t g, int64_t n) {
    int64_t lo, hi, blocks = (N + 15) / 16;
    share(blocks, g, n, &lo, &hi);
    int64_t j1 = hi * 16 < N ? hi * 16 : N;
    if (lo * 16 < j1) few_rows_grads(M, N, nt, nr, A, at, ar, Bm, bt, br, C, lo * 16, j1);
}

/* Thread g of n's share of every weight and bias gradient (after every row's backward). */
AVX2 static void ae_weight_grads(const ae_model *m, int64_t g, int64_t n) {
    int64_t S = m->steps, B = m->batch, F = m->features;
    float *scratch = m->scratch + g * m->scratch_per_thread;
    for (int64_t l = 0; l < m->n_layers; l++) {
        const ae_layer *L = &m->layers[l];
        int64_t in = L->input, H = L->hidden, G = 4 * H;
        /* dW_hh = sum over t >= 1 of dgates_t^T h_{t-1} (h_{-1} = 0 adds nothing); outputs[t] is h_{t-1} */
        weight_grad(G, H, S - 1, B, L->acts + B * G, B * G, G, L->outputs + B * H, B * H, H, L->grad_w_hh, g, n, scratch);
        if (l == 0 && in <= NARROW) { /* a few input features: x, batch-major */
            narrow_grad(G, in, S, B, L->acts, B * G, G, m->x, in, S * in, L->grad_w_ih, L->grad_b_ih, L->grad_b_hh, g, n);
        } else if (l == 0) {
            weight_grad(G, in, S, B, L->acts, B * G, G, m->x, in, S * in, L->grad_w_ih, g, n, scratch);
            bias_grad(G, S, B, L->acts, B * G, G, L->grad_b_ih, L->grad_b_hh, g, n);
        } else if (m->repeat && l == m->n_encoder) { /* the same z at every step: its dgates summed over steps */
            weight_grad(G, in, 1, B, m->repeat_gx, 0, G, m->layers[l - 1].outputs + S * B * in, 0, in, L->grad_w_ih, g, n, scratch);
            bias_grad(G, 1, B, m->repeat_gx, 0, G, L->grad_b_ih, L->grad_b_hh, g, n);
        } else {
            weight_grad(G, in, S, B, L->acts, B * G, G, m->layers[l - 1].outputs + B * in, B * in, in, L->grad_w_ih, g, n, scratch);
            bias_grad(G, S, B, L->acts, B * G, G, L->grad_b_ih, L->grad_b_hh, g, n);
        }
    }
    const ae_layer *top = &m->layers[m->n_layers - 1];
    if (F <= NARROW)
        few_rows_grad(F, top->hidden, S, B, m->grad_y, F, S * F, top->outputs + B * top->hidden, B * top->hidden,
                      top->hidden, m->grad_w_out, g, n);
    else
        weight_grad(F, top->hidden, S, B, m->grad_y, F, S * F, top->outputs + B * top->hidden, B * top->hidden,
                    top->hidden, m->grad_w_out, g, n, scratch);
    bias_grad(F, S, B, m->grad_y, F, S * F, m->grad_b_out, NULL, g, n);
}

/* Threads for the row-split part: >= MIN_ROWS rows each. */
static int64_t row_threads(int64_t batch, int64_t n) {
    int64_t most = batch / MIN_ROWS;
    most = most < 1 ? 1 : most;
    return n < most ? n : most;
}
#endif

#ifdef _OPENMP
#define TEAM(threads) _Pragma("omp parallel num_threads((int)(threads))")
#define THREAD_ID() ((int64_t)omp_get_thread_num())
#define TEAM_SIZE() ((int64_t)omp_get_num_threads())
#else
#define TEAM(threads)
#define THREAD_ID() ((int64_t)0)
#define TEAM_SIZE() ((int64_t)1)
#endif

/* Floats of scratch each thread of lstmae_ae_backward needs when its weight gradients
 * have at most m rows and n columns. */
int64_t lstmae_ae_scratch(int64_t m, int64_t n) {
#ifdef LSTMAE_X86
    return TN_BLOCK * (TILE_ROWS * tn_tiles(m) + PANEL * panels(n)) + 8;
#else
    (void)m;
    (void)n;
    return 0;
#endif
}

/* Both passes: the team packs the weights, splits the batch's rows and, backward,
 * then splits the weight gradients. Returns 0, or -1 without AVX2. */
static int ae_pass(const ae_model *m, int64_t threads, int backward) {
    (void)m;
    (void)threads;
    (void)backward;
    if (!use_avx2()) return -1;
#ifdef LSTMAE_X86
    TEAM(threads < 1 ? 1 : threads) {
        int64_t g = THREAD_ID(), n = TEAM_SIZE(), r0, r1, active = row_threads(m->batch, n);
        if (backward)
            ae_pack_backward(m, g, n);
        else
            ae_pack_forward(m, g, n);
        BARRIER
        if (g < active) {
            share(m->batch, g, active, &r0, &r1);
            if (backward)
                ae_backward_rows(m, r0, r1);
            else
                ae_forward_rows(m, r0, r1);
        }
        if (backward) { /* every thread takes this branch: the barrier is met by all */
            BARRIER
            ae_weight_grads(m, g, n);
        }
    }
#endif
    return 0;
}

/* The forward pass: m->y from m->x; keeps what the backward needs. */
int lstmae_ae_forward(const ae_model *m, int64_t threads) { return ae_pass(m, threads, 0); }

/* The backward pass from m->grad_y: every weight and bias gradient. */
int lstmae_ae_backward(const ae_model *m, int64_t threads) { return ae_pass(m, threads, 1); }

/* ---------------------------------------------------------------- nearest rows
 * For each query row, the smallest squared Euclidean distance to the reference
 * rows. A pair's distance is summed directly from the differences (no
 * |q|^2 - 2 q.r + |r|^2, which cancels for near-equal rows), eight lanes at a time
 * in a fixed order: the same bits whichever thread or call computes it.
 *
 * Two ways to skip work, neither of which changes the result:
 * - the reference rows come in groups of alike rows (lstmae.backends.kernels.RowGroups),
 *   each with a centre c and a radius rho >= max |r - c| over its rows; by the
 *   triangle inequality no row of a group is nearer than |q - c| - rho, so a
 *   group whose bound exceeds the best distance so far (with a margin of 1e-4
 *   of it for the rounding of |q - c|) is skipped; the group with the smallest
 *   bound is searched first, for a good best early;
 * - a pair is abandoned once its partial sum reaches the best so far (the sum
 *   only grows). */
typedef struct {
    int64_t m, length, groups;
    const int64_t *order, *offsets;
    const float *queries, *reference, *centres, *radii;
    const int64_t *query_at, *reference_at;
    int64_t exclusion;
    float *out;
} nearest_args;

#ifdef LSTMAE_X86
AVX2 static inline float hsum_v(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* sum_k (a_k - b_k)^2 over `length` values, or a value >= bound once a partial sum reaches it. */
AVX2 static inline float pair_sum(const float *a, const float *b, int64_t length, float bound) {
    __m256 acc = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= length; k += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8));
        acc = _mm256_fmadd_ps(d0, d0, acc);
        acc = _mm256_fmadd_ps(d1, d1, acc);
        if (k + 16 < length && hsum_v(acc) >= bound) return bound;
    }
    for (; k + 8 <= length; k += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k));
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    float s = hsum_v(acc);
    for (; k < length; k++) {
        float d = a[k] - b[k];
        s = fmaf(d, d, s);
    }
    return s;
}

/* The best squared distance from q to the rows of group g that `exclude` (when set) does not skip, below best. */
AVX2 static float search_group(const nearest_args *a, const float *q, int64_t at, int exclude, int64_t g, float best) {
    for (int64_t k = a->offsets[g]; k < a->offsets[g + 1]; k++) {
        int64_t j = a->order[k];
        if (exclude) {
            int64_t gap = at - a->reference_at[j];
            if ((gap < 0 ? -gap : gap) < a->exclusion) continue;
        }
        float s = pair_sum(q, a->reference + j * a->length, a->length, best);
        if (s < best) best = s;
    }
    return best;
}

/* The group's bound is below the best distance so far, with a margin for the bound's rounding. */
static inline int worth(float bound, float best) {
    return !(bound > 0.0f && (double)bound * bound > (double)best * (1.0 + 2e-4) + 1e-12);
}

/* Queries r0 .. r1 - 1 (see lstmae_nearest); bounds: scratch of one float per group. */
AVX2 static void nearest_rows(const nearest_args *a, int64_t r0, int64_t r1, float *bounds) {
    const int64_t L = a->length, groups = a->groups;
    for (int64_t i = r0; i < r1; i++) {
        const float *q = a->queries + i * L;
        int64_t at = a->query_at ? a->query_at[i] : 0, start = 0;
        for (int64_t g = 0; g < groups; g++) {
            bounds[g] = sqrtf(pair_sum(q, a->centres + g * L, L, INFINITY)) - a->radii[g];
            if (bounds[g] < bounds[start]) start = g;
        }
        float best = search_group(a, q, at, a->query_at != 0, start, INFINITY);
        for (int64_t g = 0; g < groups; g++)
            if (g != start && worth(bounds[g], best)) best = search_group(a, q, at, a->query_at != 0, g, best);
        if (best == INFINITY) /* every row excluded (or a NaN query): the plain nearest */
            for (int64_t g = 0; g < groups; g++) best = search_group(a, q, at, 0, g, best);
        for (int64_t k = 0; k < L; k++) {
            if (q[k] != q[k]) { /* NaN: no pair sum is below the bound, say NaN rather than inf */
                best = NAN;
                break;
            }
        }
        a->out[i] = best;
    }
}

static void nearest_part(const void *arguments, int64_t r0, int64_t r1) {
    const nearest_args *a = arguments;
    float *bounds = malloc(sizeof(float) * (size_t)a->groups);
    if (!bounds) { /* no memory for a few KB of bounds: NaN, as the scores of a failed pass */
        for (int64_t i = r0; i < r1; i++) a->out[i] = NAN;
        return;
    }
    nearest_rows(a, r0, r1, bounds);
    free(bounds);
}
#endif

/* out (n,): the smallest squared distance from each query (n, length) to the reference
 * rows (m, length), both row-major float32, m >= 1, in `groups` groups: group g is
 * rows order[offsets[g]] .. order[offsets[g + 1] - 1] (order (m,), a permutation;
 * offsets (groups + 1,)), with its centre
 * (centres (groups, length)) and radius (radii (groups,)) >= max |row - centre| over
 * the group's rows (an empty group: any centre and radius). With query_at (n,)
 * and reference_at (m,) (NULL: none), rows with |query_at - reference_at| < exclusion
 * are skipped, and a query with every row skipped gets its plain nearest. Queries
 * split between `threads` threads. Returns 0, or -1 without AVX2 + FMA. */
int lstmae_nearest(int64_t n, int64_t m, int64_t length, int64_t threads, const float *queries, const float *reference,
                   int64_t groups, const int64_t *order, const int64_t *offsets, const float *centres, const float *radii, const int64_t *query_at,
                   const int64_t *reference_at, int64_t exclusion, float *out) {
    if (!use_avx2()) return -1;
#ifdef LSTMAE_X86
    nearest_args a = {m, length, groups, order, offsets, queries, reference, centres, radii, query_at, reference_at, exclusion, out};
    split_rows(n, threads, nearest_part, &a);
    return 0;
#else
    (void)n; (void)m; (void)length; (void)threads; (void)queries; (void)reference; (void)groups; (void)order; (void)offsets; (void)centres;
    (void)radii; (void)query_at; (void)reference_at; (void)exclusion; (void)out;
    return -1;
#endif
}

/* 1 when the whole loops can split rows between threads (built with OpenMP). */
int lstmae_kernels_threaded(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* For tests: y = sigmoid(x) and z = tanh(x) over n values with the kernels' own
 * functions; vectorised = 0 forces the plain loop. */
#ifdef LSTMAE_X86
AVX2 static int64_t activations_avx2(int64_t n, const float *x, float *y, float *z) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        _mm256_storeu_ps(y + k, sigmoid_v(v));
        _mm256_storeu_ps(z + k, tanh_v(v));
    }
    return k;
}
#endif

void lstmae_activations(int64_t n, const float *x, float *y, float *z, int vectorised) {
    int64_t k = 0;
    (void)vectorised; /* unused in a plain build */
#ifdef LSTMAE_X86
    if (vectorised && use_avx2()) k = activations_avx2(n, x, y, z);
#endif
    for (; k < n; k++) {
        y[k] = sigmoid_s(x[k]);
        z[k] = tanh_s(x[k]);
    }
}
