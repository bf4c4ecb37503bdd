/* The kernels of the SqueezeNet C engine: C99, no allocation, nothing beyond <stdint.h> and <string.h>.
 *
 * A convolution runs one output channel at a time. Its entries are decoded from the packed streams into a list of
 * (input offset, weight) pairs, zeros dropped; the outputs are then computed in blocks of SQZ_BLOCK neighbours
 * along the stored rows: for every entry, the block adds weight * a contiguous run of input bytes (a loop of
 * 16-bit products and 32-bit sums that compilers vectorize; on x86, four entries at a time with AVX2 or AVX-512 VNNI).
 * Outputs in the stored rows' border columns are computed and dropped. The block sums are requantized and
 * stored, max-pooled, or summed into the scores. Integer arithmetic only: every path gives the same bits, and the
 * exporter's Python reference computes them too. */
#include <string.h>

#include "kernels.h"

#define SQZ_BLOCK 32 /* outputs a block computes: the VNNI path's four 8-lane sums */

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define SQZ_AVX512 /* x86 with AVX-512 and VNNI: the same bits, wider */
#include <immintrin.h>
#elif defined(__AVX2__)
#define SQZ_AVX2 /* x86 with AVX2 (pmaddubsw): weights above 64 in magnitude split in two, so no pair saturates */
#include <immintrin.h>
#endif

typedef struct { /* the packed entries: bit position, entries taken, the last one's position (from -1) */
    const uint8_t *data;
    uint32_t bit, e, pos;
} decoder;

/* The next entry's field: three bytes hold its (at most 16) bits at any bit offset; the stream ends with two
 * spare bytes. */
static uint32_t peek(const decoder *d)
{
    const uint8_t *p = d->data + (d->bit >> 3);
    return ((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)) >> (d->bit & 7u);
}

/* The entries of the output channel whose weights sit at positions [base, end), as input offsets (`position`:
 * offset by position within the channel) and weights, zeros left out; the list is padded to a multiple of 4
 * with zero weights at offset 0 (in bounds), so that it can be taken four entries at a time. */
static int entries_of(const sqz_conv_layer *L, decoder *d, uint32_t base, uint32_t end, const int32_t *position,
                      int32_t *offset, int8_t *weight)
{
    const uint32_t width = L->bits + L->gap_bits, code_mask = (1u << L->bits) - 1u;
    const uint32_t gap_mask = (1u << L->gap_bits) - 1u;
    int n = 0;
    while (d->e < L->entries) {
        const uint32_t v = peek(d), at = d->pos + ((v >> L->bits) & gap_mask) + 1u, code = v & code_mask;
        if (at >= end) /* the next output channel's */
            break;
        d->pos = at;
        d->bit += width;
        d->e++;
        offset[n] = position[at - base];
        weight[n] = L->codebook[code];
#ifdef SQZ_AVX2
        if (weight[n] > 64 || weight[n] < -64) { /* w = w/2 + (w - w/2), both halves at most 64 */
            offset[n + 1] = offset[n];
            weight[n + 1] = (int8_t)(weight[n] - weight[n] / 2);
            weight[n] = (int8_t)(weight[n] / 2);
            n++;
        }
#endif
        n += code != 0;
    }
    for (; n % 4; n++) {
        offset[n] = 0;
        weight[n] = 0;
    }
    return n;
}

#if defined(SQZ_AVX512) || defined(SQZ_AVX2)
#ifdef SQZ_AVX512 /* four exact u8 x s8 products a lane, summed into it */
#define SQZ_DOT4(sum, pixels, w) _mm256_dpbusd_epi32(sum, pixels, w)
#else /* pmaddubsw's two-product sums are exact (no entry above 64), pmaddwd widens them into the lane */
#define SQZ_DOT4(sum, pixels, w) \
    _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(pixels, w), _mm256_set1_epi16(1)))
#endif
/* acc[0..32) = sum over the entries of weight * in[offset + i], four entries at a time: their bytes are
 * interleaved (a 4 x 32 transpose, within 128-bit lanes) and each pixel's four products summed into its lane by
 * SQZ_DOT4; the lanes' pixel order is restored once, at the end. */
static void block(const uint8_t *in, const int32_t *offset, const int8_t *weight, int n, int32_t *acc)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    int j;
    for (j = 0; j < n; j += 4) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(in + offset[j]));
        const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(in + offset[j + 1]));
        const __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(in + offset[j + 2]));
        const __m256i e = _mm256_loadu_si256((const __m256i *)(const void *)(in + offset[j + 3]));
        const __m256i ab0 = _mm256_unpacklo_epi8(a, b), ab1 = _mm256_unpackhi_epi8(a, b);
        const __m256i ce0 = _mm256_unpacklo_epi8(c, e), ce1 = _mm256_unpackhi_epi8(c, e);
        int32_t w4;
        __m256i w;
        memcpy(&w4, weight + j, 4);
        w = _mm256_set1_epi32(w4);
        s0 = SQZ_DOT4(s0, _mm256_unpacklo_epi16(ab0, ce0), w); /* pixels 0-3 | 16-19 */
        s1 = SQZ_DOT4(s1, _mm256_unpackhi_epi16(ab0, ce0), w); /* 4-7 | 20-23 */
        s2 = SQZ_DOT4(s2, _mm256_unpacklo_epi16(ab1, ce1), w); /* 8-11 | 24-27 */
        s3 = SQZ_DOT4(s3, _mm256_unpackhi_epi16(ab1, ce1), w); /* 12-15 | 28-31 */
    }
    _mm256_storeu_si256((__m256i *)(void *)acc, _mm256_permute2x128_si256(s0, s1, 0x20));
    _mm256_storeu_si256((__m256i *)(void *)(acc + 8), _mm256_permute2x128_si256(s2, s3, 0x20));
    _mm256_storeu_si256((__m256i *)(void *)(acc + 16), _mm256_permute2x128_si256(s0, s1, 0x31));
    _mm256_storeu_si256((__m256i *)(void *)(acc + 24), _mm256_permute2x128_si256(s2, s3, 0x31));
}
#endif

#ifdef SQZ_AVX512
/* The same over 64 outputs in 512-bit registers: each register holds pixels 4l..4l+3 of the four 16-pixel lanes
 * (l = 0..3 by register), put back in order by a 4 x 4 transpose of the lanes. */
static void block64(const uint8_t *in, const int32_t *offset, const int8_t *weight, int n, int32_t *acc)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0, t0, t1, t2, t3;
    int j;
    for (j = 0; j < n; j += 4) {
        const __m512i a = _mm512_loadu_si512((const void *)(in + offset[j]));
        const __m512i b = _mm512_loadu_si512((const void *)(in + offset[j + 1]));
        const __m512i c = _mm512_loadu_si512((const void *)(in + offset[j + 2]));
        const __m512i e = _mm512_loadu_si512((const void *)(in + offset[j + 3]));
        const __m512i ab0 = _mm512_unpacklo_epi8(a, b), ab1 = _mm512_unpackhi_epi8(a, b);
        const __m512i ce0 = _mm512_unpacklo_epi8(c, e), ce1 = _mm512_unpackhi_epi8(c, e);
        int32_t w4;
        __m512i w;
        memcpy(&w4, weight + j, 4);
        w = _mm512_set1_epi32(w4);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_unpacklo_epi16(ab0, ce0), w);
        s1 = _mm512_dpbusd_epi32(s1, _mm512_unpackhi_epi16(ab0, ce0), w);
        s2 = _mm512_dpbusd_epi32(s2, _mm512_unpacklo_epi16(ab1, ce1), w);
        s3 = _mm512_dpbusd_epi32(s3, _mm512_unpackhi_epi16(ab1, ce1), w);
    }
    t0 = _mm512_shuffle_i32x4(s0, s1, 0x44); /* s0.l0 s0.l1 s1.l0 s1.l1 */
    t1 = _mm512_shuffle_i32x4(s2, s3, 0x44);
    t2 = _mm512_shuffle_i32x4(s0, s1, 0xEE); /* s0.l2 s0.l3 s1.l2 s1.l3 */
    t3 = _mm512_shuffle_i32x4(s2, s3, 0xEE);
    _mm512_storeu_si512((void *)acc, _mm512_shuffle_i32x4(t0, t1, 0x88));
    _mm512_storeu_si512((void *)(acc + 16), _mm512_shuffle_i32x4(t0, t1, 0xDD));
    _mm512_storeu_si512((void *)(acc + 32), _mm512_shuffle_i32x4(t2, t3, 0x88));
    _mm512_storeu_si512((void *)(acc + 48), _mm512_shuffle_i32x4(t2, t3, 0xDD));
}
#endif

#if !defined(SQZ_AVX512) && !defined(SQZ_AVX2)
/* acc[0..SQZ_BLOCK) = sum over the entries of weight * in[offset + i]; |weight * x| <= 128 * 255 is exact in
 * 16 bits (a loop compilers vectorize). */
static void block(const uint8_t *in, const int32_t *offset, const int8_t *weight, int n, int32_t *acc)
{
    int32_t sum[SQZ_BLOCK];
    int j, i;
    memset(sum, 0, sizeof sum);
    for (j = 0; j < n; j++) {
        const uint8_t *src = in + offset[j];
        const int16_t w = weight[j];
        for (i = 0; i < SQZ_BLOCK; i++)
            sum[i] += (int16_t)(w * src[i]);
    }
    memcpy(acc, sum, sizeof sum);
}
#endif

static void accumulate(const uint8_t *in, const int32_t *offset, const int8_t *weight, int n, int32_t *acc,
                       int count)
{
    int q = 0, j;
#ifdef SQZ_AVX512
    for (; q + 2 * SQZ_BLOCK <= count; q += 2 * SQZ_BLOCK)
        block64(in + q, offset, weight, n, acc + q);
#endif
    for (; q + SQZ_BLOCK <= count; q += SQZ_BLOCK)
        block(in + q, offset, weight, n, acc + q);
    if (q == count)
        return;
    if (count >= SQZ_BLOCK) { /* the last block overlaps the one before: same sums, written again */
        block(in + count - SQZ_BLOCK, offset, weight, n, acc + count - SQZ_BLOCK);
        return;
    }
    for (; q < count; q++) {
        int32_t sum = 0;
        for (j = 0; j < n; j++)
            sum += weight[j] * in[offset[j] + q];
        acc[q] = sum;
    }
}

/* round((acc + bias) * mult / 2^shift + zero point), clamped: floor division, defined for negative values. */
static int32_t requantize(const sqz_conv_layer *L, int32_t acc, int32_t bias, int32_t mult)
{
    const int64_t t = (int64_t)(acc + bias) * mult + L->rounding;
    const int64_t y = t >= 0 ? t >> L->shift : -((-t - 1) >> L->shift) - 1;
    return (int32_t)(y < L->lo ? L->lo : y > L->hi ? L->hi : y);
}

/* 3x3/2 max pool of one plane, in place allowed (out == in): each output row first takes the column maxima of
 * its three input rows into the first of them (no longer needed: the row above consumed it), then the maxima of
 * three neighbours; neither ever overwrites input still to be read. */
static void column_max(uint8_t *restrict top, const uint8_t *restrict row, int w)
{
    int x = 0;
#ifdef SQZ_AVX512
    for (; x + 32 <= w; x += 32)
        _mm256_storeu_si256((__m256i *)(void *)(top + x),
                            _mm256_max_epu8(_mm256_loadu_si256((const __m256i *)(const void *)(top + x)),
                                            _mm256_loadu_si256((const __m256i *)(const void *)(row + x))));
#endif
    for (; x < w; x++)
        top[x] = row[x] > top[x] ? row[x] : top[x];
}

static void pool_plane(uint8_t *in, int h, int w, uint8_t *out, int out_h, int out_w)
{
    int oy, ox, x, y;
    for (oy = 0; oy < out_h; oy++) {
        uint8_t *top = in + 2 * oy * w;
        const int y1 = 2 * oy + 3 < h ? 2 * oy + 3 : h;
        for (y = 2 * oy + 1; y < y1; y++)
            column_max(top, in + y * w, w);
        for (ox = 0; ox < out_w; ox++) {
            const int x0 = 2 * ox, x1 = 2 * ox + 3 < w ? 2 * ox + 3 : w;
            uint8_t m = top[x0];
            for (x = x0 + 1; x < x1; x++)
                m = top[x] > m ? top[x] : m;
            out[oy * out_w + ox] = m;
        }
    }
}

/* round((acc + bias) * mult / 2^shift + zero point), clamped to [lo, hi] with lo >= 0: a negative t clamps to lo. */
static void requantize_row(const sqz_conv_layer *L, const int32_t *acc, int n, int32_t bias, int32_t mult,
                           uint8_t *dst)
{
    const int64_t rounding = L->rounding;
    const int shift = L->shift;
    const int32_t lo = L->lo, hi = L->hi;
    int x = 0;
#ifdef SQZ_AVX512 /* eight at a time in int64 lanes: an arithmetic shift is the floor the scalar loop takes */
    const __m256i b = _mm256_set1_epi32(bias);
    const __m512i m = _mm512_set1_epi64(mult), r = _mm512_set1_epi64(rounding), s = _mm512_set1_epi64(shift);
    const __m512i low = _mm512_set1_epi64(lo), high = _mm512_set1_epi64(hi);
    for (; x + 8 <= n; x += 8) {
        const __m256i a = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(acc + x)), b);
        const __m512i t = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_cvtepi32_epi64(a), m), r), s);
        _mm_storel_epi64((__m128i *)(void *)(dst + x), _mm512_cvtepi64_epi8(_mm512_min_epi64(_mm512_max_epi64(t, low),
                                                                                              high)));
    }
#endif
    for (; x < n; x++) {
        const int64_t t = (int64_t)(acc[x] + bias) * mult + rounding;
        const int64_t y = t < 0 ? 0 : (int64_t)((uint64_t)t >> shift);
        dst[x] = (uint8_t)(y < lo ? lo : y > hi ? hi : y);
    }
}

/* Requantize output channel o's sums (rows of in_cols, out_w of them kept) into the destination. */
static void finish(const sqz_conv_layer *L, int o, const int32_t *acc, uint8_t *out, uint8_t *plane,
                   int32_t *scores)
{
    const int32_t bias = L->bias[o], mult = L->mult[L->mult_per_channel ? o : 0];
    const int b = L->out_border, cols = L->out_w + 2 * b;
    int y, x;
    if (L->epilogue == SQZ_SUM) {
        int32_t sum = 0;
        for (y = 0; y < L->out_h; y++)
            for (x = 0; x < L->out_w; x++)
                sum += requantize(L, acc[y * L->in_cols + x], bias, mult) - L->out_zero;
        scores[o] = sum;
        return;
    }
    if (L->epilogue == SQZ_STORE) {
        uint8_t *dst = out + (uint32_t)(L->channel + o) * (uint32_t)((L->out_h + 2 * b) * cols);
        if (b)
            memset(dst, L->out_zero, (size_t)(L->out_h + 2 * b) * cols);
        for (y = 0; y < L->out_h; y++)
            requantize_row(L, acc + y * L->in_cols, L->out_w, bias, mult, dst + (y + b) * cols + b);
        return;
    }
    for (y = 0; y < L->out_h; y++)
        requantize_row(L, acc + y * L->in_cols, L->out_w, bias, mult, plane + y * L->out_w);
    pool_plane(plane, L->out_h, L->out_w, out + (uint32_t)(L->channel + o) * L->pool_h * L->pool_w, L->pool_h,
               L->pool_w);
}

void sqz_conv(const sqz_conv_layer *L, const uint8_t *in, uint8_t *out, int32_t *scratch, int32_t *scores)
{
    const int s = L->phases, k = L->kernel, count = (L->out_h - 1) * L->in_cols + L->out_w;
    const int32_t plane = (int32_t)L->in_rows * L->in_cols;
    const int taps = L->in_c * k * k, room = (2 * taps + 3) / 4 * 4; /* an output channel's entries (split in two at most), padded */
    int32_t *acc = scratch, *position = acc + count, *offset = position + taps;
    int8_t *weight = (int8_t *)(void *)(offset + room);
    uint8_t *pooled = (uint8_t *)(void *)(offset + room + room / 4);
    decoder d;
    int c, ky, kx, o;
    for (c = 0; c < L->in_c; c++) /* tap (ky, kx) reads phase (ky % s, kx % s), shifted by (ky / s, kx / s) */
        for (ky = 0; ky < k; ky++)
            for (kx = 0; kx < k; kx++)
                *position++ = ((c * s + ky % s) * s + kx % s) * plane + (L->origin + ky / s) * L->in_cols
                              + L->origin + kx / s;
    position -= taps;
    d.data = L->codes;
    d.bit = d.e = 0;
    d.pos = (uint32_t)-1;
    for (o = 0; o < L->out_c; o++) {
        const uint32_t base = (uint32_t)o * (uint32_t)taps;
        const int n = entries_of(L, &d, base, base + (uint32_t)taps, position, offset, weight);
        accumulate(in, offset, weight, n, acc, count);
        finish(L, o, acc, out, pooled, scores);
    }
}

void sqz_input(const sqz_input_layer *L, const uint8_t *rgb, uint8_t *out)
{
    const int s = L->phases, b = L->border;
    int c, py, px, i, j;
    for (c = 0; c < 3; c++)
        for (py = 0; py < s; py++)
            for (px = 0; px < s; px++)
                for (i = 0; i < L->rows; i++) {
                    const int y = i * s + py - b;
                    for (j = 0; j < L->cols; j++) {
                        const int x = j * s + px - b;
                        const int inside = y >= 0 && y < L->height && x >= 0 && x < L->width;
                        *out++ = inside ? L->lut[c][rgb[(y * L->width + x) * 3 + L->source[c]]] : L->zero[c];
                    }
                }
}

void sqz_maxpool(uint8_t *in, uint8_t *out, int channels, int h, int w, int out_h, int out_w)
{
    int c;
    for (c = 0; c < channels; c++) /* in place: a plane's output never passes the input still to be read */
        pool_plane(in + (uint32_t)c * h * w, h, w, out + (uint32_t)c * out_h * out_w, out_h, out_w);
}

void sqz_add(const sqz_add_layer *L, uint8_t *io, const uint8_t *other)
{
    uint32_t i;
    int c;
    for (c = 0; c < L->channels; c++) {
        const int64_t ma = L->mult_a[c], mb = L->mult_b[c], off = L->offset[c];
        uint8_t *a = io + (uint32_t)c * L->pixels;
        const uint8_t *b = other + (uint32_t)c * L->pixels;
        for (i = 0; i < L->pixels; i++) {
            const int64_t t = (a[i] - L->zero_a) * ma + (b[i] - L->zero_b) * mb + off;
            const int64_t y = t >= 0 ? t >> L->shift : -1;
            a[i] = (uint8_t)(y > 255 ? 255 : y < 0 ? 0 : y);
        }
    }
}

int sqz_argmax(const int32_t *values, int n)
{
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (values[i] > values[best])
            best = i;
    return best;
}
