/* The hand-written kernels of the SqueezeNet C engine; model.c calls them, weights.c holds their layers.
 *
 * Tensors are 8-bit, one plane per channel, each with a scale and a zero point fixed at export time. A tensor
 * that a padded convolution reads is stored with a border of its zero point (the padding), written by its
 * producer; the stem's input is stored split into stride x stride phases. So every convolution reads, for each
 * weight, one contiguous run of its input per block of outputs. A convolution's weights stay as exported: per
 * layer an int8 codebook and fixed-width entries of a code and a relative index (the zeros skipped before it), decoded
 * while the convolution runs, one output channel at a time; a zero weight is skipped, never multiplied.
 * A streamed chain of layers (sqz_stream) runs row by row instead: each stage keeps the rows of its input its kernel
 * still needs in a ring, makes each output row once and hands it down before making the next.
 * Nothing is allocated and nothing is checked at run time: every size, offset and bound was checked at export. */
#ifndef SQZ_KERNELS_H
#define SQZ_KERNELS_H

#include <stdint.h>

enum { SQZ_STORE = 0, SQZ_MAXPOOL = 1, SQZ_SUM = 2 }; /* what a convolution does with each output plane */

typedef struct {
    uint8_t lut[3][256];      /* network channel, pixel value -> its normalised, quantized value */
    uint8_t source[3];        /* the RGB channel each network channel reads */
    uint8_t phases, border;   /* the stem's stride and padding */
    uint8_t zero[3];          /* each channel's zero point: the padding's value */
    uint16_t height, width;   /* the image */
    uint16_t rows, cols;      /* one stored phase plane */
} sqz_input_layer;

typedef struct {
    uint16_t in_c, in_rows, in_cols; /* the input as stored: in_c x phases^2 planes of in_rows x in_cols */
    uint16_t out_c, out_h, out_w;    /* the convolution's own output */
    uint16_t pool_h, pool_w;         /* SQZ_MAXPOOL: the pooled plane written */
    uint16_t channel;                /* the first channel of the destination written (a Fire's concat in place) */
    uint8_t kernel, phases, origin;  /* phases: the stride; origin: the input's border minus the padding */
    uint8_t out_border;              /* the destination's border (SQZ_STORE) */
    uint8_t epilogue, bits, gap_bits, shift; /* an entry: code | gap << bits (gap_bits 0: every weight has one;
                                              * bits 0: `codes` holds the dense int8 weights, a comparison build) */
    uint8_t mult_per_channel;        /* 0: one multiplier for the layer (no BatchNorm folded in) */
    int32_t lo, hi;                  /* output clamp (ReLU: lo is the output zero point) */
    int32_t out_zero;                /* the border's value; SQZ_SUM: subtracted before summing */
    uint32_t entries;                /* entries in `codes` */
    int64_t rounding;                /* (zero point + 1/2) << shift */
    const uint8_t *codes;            /* the entries, packed LSB first, three spare bytes at the end */
    const int8_t *codebook;          /* 2^bits values, codebook[0] == 0 */
    const int32_t *bias, *mult;      /* per output channel, in accumulator units; the multiplier's Q(shift) */
} sqz_conv_layer;

typedef struct {
    uint16_t channels;
    uint32_t pixels;
    uint8_t zero_a, zero_b, shift;
    const int32_t *mult_a, *mult_b; /* per channel */
    const int64_t *offset;          /* per channel: bias + (zero point + 1/2), << shift */
} sqz_add_layer;

typedef struct {
    uint32_t offset;         /* arena offset of the first kept row */
    uint32_t row_stride;     /* bytes from one kept row to the next */
    uint32_t channel_stride; /* bytes from a channel's row to the next channel's */
    uint16_t slots;          /* rows kept: row r is in slot (r + border) % slots (a whole map keeps them all) */
    uint16_t channels, cols; /* a row: channels x phases x cols stored bytes */
    uint8_t border, phases;  /* columns of padding each side; a strided reader's column phases */
    uint8_t zero;            /* the padding's value */
} sqz_rows;

typedef struct {
    const sqz_conv_layer *conv[2]; /* conv[1]: NULL, or a Fire's second expand (same input, the next channels) */
    sqz_rows in;                   /* its input rows */
    uint16_t in_h, out_h;          /* input rows; the convolutions' output rows (before a fused pool) */
    uint8_t stride;
    int8_t reach;                  /* output row y needs input rows up to stride * y + reach */
    uint32_t pool;                 /* SQZ_MAXPOOL: arena offset of the pooled row under construction */
} sqz_stage;

typedef struct {
    const sqz_input_layer *input;
    const sqz_stage *stages;
    uint16_t count;
    sqz_rows out;          /* where the last stage writes: a whole map (slots 0: it sums into the scores) */
    uint32_t rgb, scratch; /* arena offsets: one image row for the reader, the convolutions' scratch (one block) */
} sqz_stream_plan;

#define SQZ_MAX_STAGES 64

/* The image, pulled row by row from `read` (model.h's sqz_row_reader), through the layers of `plan`; returns -1 if
 * the reader returned NULL, else 0. */
int sqz_stream(const sqz_stream_plan *plan, const uint8_t *(*read)(void *context, int y, uint8_t *buffer),
               void *context, uint8_t *arena, int32_t *scores);

/* The image converted into the whole (phase-split, bordered) input tensor `out`, row by row; -1 as sqz_stream. */
int sqz_input(const sqz_input_layer *layer, const uint8_t *(*read)(void *context, int y, uint8_t *buffer),
              void *context, uint8_t *buffer, uint8_t *out);

/* out: the destination tensor (SQZ_STORE, SQZ_MAXPOOL); scores: out_c sums (SQZ_SUM); scratch (int32 words):
 * the accumulators ((out_h - 1) * in_cols + out_w), each weight position's input offset (in_c * kernel^2), the
 * offsets (int32) and the weights (int8) of one output channel's entries (2 * in_c * kernel^2, as the AVX2 path
 * splits large weights, rounded up to a multiple of 4 each), then for SQZ_MAXPOOL the out_h * out_w bytes of the plane it pools. */
void sqz_conv(const sqz_conv_layer *layer, const uint8_t *in, uint8_t *out, int32_t *scratch, int32_t *scores);

/* 3x3/2 max pool, Caffe's ceil rounding; out may be in (in place); the input is overwritten either way. */
void sqz_maxpool(uint8_t *in, uint8_t *out, int channels, int h, int w, int out_h, int out_w);

/* io = requantized io + other, per channel (a bypass, with its BatchNorm folded in). */
void sqz_add(const sqz_add_layer *layer, uint8_t *io, const uint8_t *other);

int sqz_argmax(const int32_t *values, int n);

#endif
