/* The host harness of the SqueezeNet C engine.
 *
 * usage: sqz_host IMAGES [ROUNDS]
 * IMAGES holds images of SQZ_IMAGE_SIZE x SQZ_IMAGE_SIZE x 3 bytes back to back; the SQZ_NUM_CLASSES int32 scores
 * of each go to stdout (native byte order). With ROUNDS, each image then runs ROUNDS more times and the
 * milliseconds of every run are printed on stderr, one line per image. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

static uint8_t image[SQZ_IMAGE_SIZE * SQZ_IMAGE_SIZE * 3];
static int32_t scores[SQZ_NUM_CLASSES];

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    const int rounds = argc > 2 ? atoi(argv[2]) : 0;
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
    int r;
    if (f == NULL) {
        fprintf(stderr, "usage: %s IMAGES [ROUNDS]\n", argv[0]);
        return 2;
    }
    while (fread(image, sizeof image, 1, f) == 1) {
        sqz_predict(image, scores);
        fwrite(scores, sizeof scores, 1, stdout);
        for (r = 0; r < rounds; r++) {
            const double t = now_ms();
            sqz_predict(image, scores);
            fprintf(stderr, r ? " %.4f" : "%.4f", now_ms() - t);
        }
        if (rounds)
            fputc('\n', stderr);
    }
    fclose(f);
    return 0;
}
