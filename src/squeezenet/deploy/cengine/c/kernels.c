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

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define SQZ_AVX512 /* x86 with AVX-512 and VNNI: the same bits, wider */
#include <immintrin.h>
#elif defined(__AVX2__)
#define SQZ_AVX2 /* x86 with AVX2 (pmaddubsw): weights above 64 in magnitude split in two, so no pair saturates */
#include <immintrin.h>
#elif defined(__ARM_FEATURE_DSP)
#define SQZ_DSP /* Cortex-M4/M7: four sums in registers, 16 x 16 multiply-accumulates on halfword lanes */
#include <arm_acle.h>
#endif

#ifdef SQZ_DSP
#define SQZ_BLOCK 4 /* outputs a block computes: what fits the core's registers */
#else
#define SQZ_BLOCK 32 /* the VNNI path's four 8-lane sums */
#endif

typedef struct { /* the packed entries: bit position, the last one's position in the layer (from -1) */
    const uint8_t *data;
    uint32_t bit, pos;
} decoder;

/* The 32 bits from bit `bit` on (an entry has at most 16, at any bit offset): one unaligned load where the
 * byte order allows it; the stream ends with three spare bytes. */
static uint32_t peek(const uint8_t *data, uint32_t bit)
{
    const uint8_t *p = data + (bit >> 3);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, 4);
#else
    const uint32_t v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
#endif
    return v >> (bit & 7u);
}

/* The entries of the output channel whose weights sit at positions [base, end), as input offsets (`position`:
 * offset by position within the channel) and weights, zeros left out; on x86 the list is padded to a multiple of
 * 4 with zero weights at offset 0 (in bounds), so that it can be taken four entries at a time. The decoder's
 * state is kept in locals: stores to the lists could alias it. */
/* Appends a nonzero weight at an input offset (on AVX2 a weight above 64 in magnitude as two halves, w / 2 and
 * w - w / 2, so that no pmaddubsw pair saturates); returns the new count. */
static int add_entry(int32_t *offset, int8_t *weight, int n, int32_t at, int8_t w)
{
    if (w == 0)
        return n;
#ifdef SQZ_AVX2
    if (w > 64 || w < -64) {
        offset[n] = at;
        weight[n++] = (int8_t)(w / 2);
        w = (int8_t)(w - w / 2);
    }
#endif
    offset[n] = at;
    weight[n] = w;
    return n + 1;
}

static int entries_of(const sqz_conv_layer *L, decoder *d, uint32_t base, uint32_t end, const int32_t *position,
                      int32_t *offset, int8_t *weight)
{
    const uint8_t *const data = d->data;
    const int8_t *const book = L->codebook;
    const uint32_t bits = L->bits, width = bits + L->gap_bits, stop = L->entries * width, taps = end - base;
    const uint32_t gap_mask = (1u << L->gap_bits) - 1u;
    uint32_t bit = d->bit, at = d->pos - base; /* the last entry's position within this channel (from -1) */
    int n = 0;
    if (bits == 0) /* dense int8 weights (a build to compare with): nothing to decode */
        for (at = 0; at < taps; at++)
            n = add_entry(offset, weight, n, position[at], (int8_t)data[base + at]);
    for (; bit < stop; bit += width) {
        const uint32_t v = peek(data, bit), next = at + ((v >> bits) & gap_mask) + 1u;
        if (next >= taps) /* the next output channel's */
            break;
        at = next;
        n = add_entry(offset, weight, n, position[at], book[v & ((1u << bits) - 1u)]);
    }
    d->bit = bit;
    d->pos = at + base;
#if defined(SQZ_AVX512) || defined(SQZ_AVX2)
    for (; n % 4; n++) {
        offset[n] = 0;
        weight[n] = 0;
    }
#endif
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

#ifdef SQZ_DSP
/* acc[0..4) = sum over the entries of weight * in[offset + i]: the four pixels of one word load, split into their
 * even and odd bytes as halfwords (uxtb16), each multiplied by the weight into its own register (smlabb, smlatb). */
static void block(const uint8_t *in, const int32_t *offset, const int8_t *weight, int n, int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int j;
    for (j = 0; j < n; j++) {
        uint32_t x;
        int32_t w = weight[j];
        memcpy(&x, in + offset[j], 4); /* an unaligned word load */
        {
            const int16x2_t even = (int16x2_t)__uxtb16(x), odd = (int16x2_t)__uxtb16(x >> 8 | x << 24);
            a0 = __smlabb(even, w, a0);
            a2 = __smlatb(even, w, a2);
            a1 = __smlabb(odd, w, a1);
            a3 = __smlatb(odd, w, a3);
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

#if !defined(SQZ_AVX512) && !defined(SQZ_AVX2) && !defined(SQZ_DSP)
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
    d.bit = 0;
    d.pos = (uint32_t)-1;
    for (o = 0; o < L->out_c; o++) {
        const uint32_t base = (uint32_t)o * (uint32_t)taps;
        const int n = entries_of(L, &d, base, base + (uint32_t)taps, position, offset, weight);
        accumulate(in, offset, weight, n, acc, count);
        finish(L, o, acc, out, pooled, scores);
    }
}

/* One image row into its stored places: channel c, column phase px at dst + c * cstride + px * pstride. */
static void input_row(const sqz_input_layer *L, const uint8_t *rgb, uint8_t *dst, uint32_t cstride,
                      uint32_t pstride)
{
    const int s = L->phases, b = L->border;
    int c, px, j;
    for (c = 0; c < 3; c++)
        for (px = 0; px < s; px++) {
            uint8_t *o = dst + c * cstride + px * pstride;
            for (j = 0; j < L->cols; j++) {
                const int x = j * s + px - b;
                o[j] = x >= 0 && x < L->width ? L->lut[c][rgb[x * 3 + L->source[c]]] : L->zero[c];
            }
        }
}

int sqz_input(const sqz_input_layer *L, const uint8_t *(*read)(void *context, int y, uint8_t *buffer),
              void *context, uint8_t *buffer, uint8_t *out)
{
    const int s = L->phases, b = L->border;
    const uint32_t plane = (uint32_t)L->rows * L->cols;
    int c, py, px, i, y;
    for (c = 0; c < 3; c++) /* the border rows: the zero point */
        for (py = 0; py < s; py++)
            for (i = 0; i < L->rows; i++)
                if (i * s + py < b || i * s + py - b >= L->height)
                    for (px = 0; px < s; px++)
                        memset(out + ((uint32_t)(c * s + py) * s + px) * plane + i * L->cols, L->zero[c], L->cols);
    for (y = 0; y < L->height; y++) {
        const uint8_t *rgb = read(context, y, buffer);
        if (rgb == NULL)
            return -1;
        input_row(L, rgb, out + (uint32_t)((y + b) % s * s) * plane + (uint32_t)((y + b) / s) * L->cols,
                  (uint32_t)(s * s) * plane, plane);
    }
    return 0;
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

/* ---- Streaming: a chain of stages run row by row (see kernels.h). ---- */

typedef struct {
    const sqz_stream_plan *plan;
    uint8_t *a;
    int32_t *scores;
    uint16_t done[SQZ_MAX_STAGES]; /* output rows made, per stage */
    int16_t held[SQZ_MAX_STAGES];  /* the last input row in its ring */
} stream_state;

static uint8_t *row_of(const sqz_rows *R, uint8_t *a, int r)
{
    return a + R->offset + (uint32_t)((r + R->border) % R->slots) * R->row_stride;
}

/* A kept row set to the padding's value (per channel: `zero`, else R->zero). */
static void zero_row(const sqz_rows *R, uint8_t *row, const uint8_t *zero)
{
    int c;
    for (c = 0; c < R->channels; c++)
        memset(row + (uint32_t)c * R->channel_stride, zero ? zero[c] : R->zero, (size_t)R->phases * R->cols);
}

static void zero_rows(const sqz_rows *R, uint8_t *a, const uint8_t *zero)
{
    int r;
    for (r = 0; r < R->slots; r++)
        zero_row(R, a + R->offset + (uint32_t)r * R->row_stride, zero);
}

/* The row handed down after output row y: y, or with a fused 3x3/2 pool the pooled row y completes (-1: none). */
static int handed(const sqz_stage *T, int y)
{
    if (T->conv[0]->epilogue != SQZ_MAXPOOL)
        return y;
    if (y >= 2 && y % 2 == 0)
        return y / 2 - 1;
    return y % 2 == 1 && y == T->out_h - 1 ? (y - 1) / 2 : -1;
}

/* A requantized row of a fused pool merged into the pooled row under construction: its 3-wide maxima start it (y
 * even), join it (y odd), or complete it into `dst` (y even from 2, or the last row), and y even starts the next. */
static void pool_into(const uint8_t *row, int w, uint8_t *built, int pool_w, int y, const sqz_stage *T,
                      uint8_t *dst)
{
    const int starts = y % 2 == 0 && y / 2 < T->conv[0]->pool_h, ends = handed(T, y) >= 0;
    int x, i;
    for (x = 0; x < pool_w; x++) {
        const int x1 = 2 * x + 3 < w ? 2 * x + 3 : w;
        uint8_t m = row[2 * x];
        for (i = 2 * x + 1; i < x1; i++)
            m = row[i] > m ? row[i] : m;
        if (ends)
            dst[x] = built[x] > m ? built[x] : m;
        if (starts)
            built[x] = m;
        else if (!ends)
            built[x] = built[x] > m ? built[x] : m;
    }
}

/* Output row y of one of a stage's convolutions, every channel: the taps' offsets from the rows its ring holds,
 * each channel's entries decoded and summed over the row, then requantized into `dst` (the next rows), pooled, or
 * summed into the scores. */
static void conv_row(stream_state *S, const sqz_stage *T, const sqz_conv_layer *L, int y, uint8_t *dst,
                     const sqz_rows *next)
{
    const int k = L->kernel, ph = T->in.phases, count = L->out_w, pad = T->in.border - L->origin;
    const int taps = L->in_c * k * k, room = (2 * taps + 3) / 4 * 4;
    int32_t *acc = (int32_t *)(void *)(S->a + S->plan->scratch), *position = acc + count, *offset = position + taps;
    int8_t *weight = (int8_t *)(void *)(offset + room);
    uint8_t *row = (uint8_t *)(void *)(offset + room + room / 4);
    decoder d;
    int c, ky, kx, o, x;
    for (ky = 0; ky < k; ky++) {
        const int32_t base = (int32_t)(row_of(&T->in, S->a, T->stride * y - pad + ky) - S->a);
        for (c = 0; c < L->in_c; c++)
            for (kx = 0; kx < k; kx++)
                position[(c * k + ky) * k + kx] = base + (int32_t)(c * T->in.channel_stride)
                                                  + kx % ph * T->in.cols + L->origin + kx / ph;
    }
    d.data = L->codes;
    d.bit = 0;
    d.pos = (uint32_t)-1;
    for (o = 0; o < L->out_c; o++) {
        const uint32_t base = (uint32_t)o * (uint32_t)taps, ch = (uint32_t)(L->channel + o);
        const int n = entries_of(L, &d, base, base + (uint32_t)taps, position, offset, weight);
        const int32_t bias = L->bias[o], mult = L->mult[L->mult_per_channel ? o : 0];
        accumulate(S->a, offset, weight, n, acc, count);
        if (L->epilogue == SQZ_SUM) {
            int32_t sum = 0;
            for (x = 0; x < count; x++)
                sum += requantize(L, acc[x], bias, mult) - L->out_zero;
            S->scores[o] += sum;
        } else if (L->epilogue == SQZ_STORE) {
            requantize_row(L, acc, count, bias, mult, dst + ch * next->channel_stride + next->border);
        } else {
            requantize_row(L, acc, count, bias, mult, row);
            pool_into(row, count, S->a + T->pool + ch * L->pool_w, L->pool_w, y, T,
                      dst + ch * next->channel_stride + next->border);
        }
    }
}

static void push(stream_state *S, int i, int r);

static void make_row(stream_state *S, int i, int y)
{
    const sqz_stage *T = &S->plan->stages[i];
    const sqz_rows *next = i + 1 < S->plan->count ? &T[1].in : &S->plan->out;
    const int out = handed(T, y);
    uint8_t *dst = next->slots && out >= 0 ? row_of(next, S->a, out) : S->a;
    conv_row(S, T, T->conv[0], y, dst, next);
    if (T->conv[1])
        conv_row(S, T, T->conv[1], y, dst, next);
    if (out >= 0 && i + 1 < S->plan->count) {
        S->held[i + 1] = (int16_t)out;
        push(S, i + 1, out);
    }
}

/* Stage i has its input rows up to r (-1: only the top padding): it makes every output row it now can; after its
 * last input row, the bottom padding rows are set as they are needed. */
static void push(stream_state *S, int i, int r)
{
    const sqz_stage *T = &S->plan->stages[i];
    const int last = r == T->in_h - 1;
    while (S->done[i] < T->out_h) {
        const int y = S->done[i], top = T->stride * y + T->reach;
        if (top > r && !last)
            return;
        while (S->held[i] < top)
            zero_row(&T->in, row_of(&T->in, S->a, ++S->held[i]), NULL);
        S->done[i]++;
        make_row(S, i, y);
    }
}

int sqz_stream(const sqz_stream_plan *P, const uint8_t *(*read)(void *context, int y, uint8_t *buffer),
               void *context, uint8_t *a, int32_t *scores)
{
    const sqz_stage *first = &P->stages[0];
    const sqz_conv_layer *last = P->stages[P->count - 1].conv[0];
    stream_state S;
    int i, y;
    S.plan = P;
    S.a = a;
    S.scores = scores;
    for (i = 0; i < P->count; i++) {
        S.done[i] = 0;
        S.held[i] = -1;
        zero_rows(&P->stages[i].in, a, i ? NULL : P->input->zero);
    }
    if (P->out.slots)
        zero_rows(&P->out, a, NULL);
    else
        memset(scores, 0, sizeof *scores * last->out_c);
    for (i = P->count - 1; i >= 0; i--) /* rows that need only the top padding */
        push(&S, i, -1);
    for (y = 0; y < P->input->height; y++) {
        const uint8_t *rgb = read(context, y, a + P->rgb);
        if (rgb == NULL)
            return -1;
        input_row(P->input, rgb, row_of(&first->in, a, y), first->in.channel_stride, first->in.cols);
        S.held[0] = (int16_t)y;
        push(&S, 0, y);
    }
    return 0;
}
