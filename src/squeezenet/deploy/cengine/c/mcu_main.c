/* The Cortex-M4 harness of the SqueezeNet C engine: runs the images compiled in (images.c) and prints, through
 * semihosting, each one's label and top-5, then the most stack the network used (the stack is painted first). */
#include <stdio.h>

#include "model.h"

#define PAINT 0x5A5A5A5Au

extern void initialise_monitor_handles(void);
extern const uint8_t sqz_images[][SQZ_IMAGE_SIZE * SQZ_IMAGE_SIZE * 3];
extern const int sqz_labels[];
extern const int sqz_image_count;
extern uint32_t __stack_bottom, __stack_top; /* the linker script's */

static int32_t scores[SQZ_NUM_CLASSES];

static void paint(void)
{
    volatile uint32_t here = 0, *p;
    for (p = &__stack_bottom; (uintptr_t)p + 64 < (uintptr_t)&here; p++) /* up to just below this frame */
        *p = PAINT;
}

static unsigned long stack_used(void)
{
    const uint32_t *p = &__stack_bottom;
    while (p < &__stack_top && *p == PAINT)
        p++;
    return (unsigned long)((const char *)&__stack_top - (const char *)p);
}

static void top5(int *best)
{
    int i, j, k;
    for (k = 0; k < 5; k++) {
        best[k] = -1;
        for (i = 0; i < SQZ_NUM_CLASSES; i++) {
            for (j = 0; j < k && best[j] != i; j++)
                ;
            if (j == k && (best[k] < 0 || scores[i] > scores[best[k]]))
                best[k] = i;
        }
    }
}

int main(void)
{
    int n, best[5];
    initialise_monitor_handles();
    paint();
    for (n = 0; n < sqz_image_count; n++) {
        sqz_predict(sqz_images[n], scores);
        top5(best);
        printf("image %d label %d top5 %d %d %d %d %d\n", n, sqz_labels[n], best[0], best[1], best[2], best[3],
               best[4]);
    }
    printf("stack %lu\n", stack_used());
    return 0;
}
