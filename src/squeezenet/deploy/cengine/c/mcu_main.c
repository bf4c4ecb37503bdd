/* The Cortex-M4 harness of the SqueezeNet C engine: runs the images compiled in (images.c) and prints, through
 * semihosting, each one's label and top-5, then the most stack the network used (the stack is painted first).
 * It writes through the semihosting call itself, not printf: newlib's stdio would take 10 KB of the flash. */
#include <stdint.h>

#include "model.h"

#define PAINT 0x5A5A5A5Au

/* SYS_WRITE0: a NUL-terminated string to the host's console. */
static void write0(const char *text)
{
    register uint32_t op __asm__("r0") = 0x04;
    register const char *arg __asm__("r1") = text;
    __asm__ volatile("bkpt 0xAB" : "+r"(op) : "r"(arg) : "memory");
}

/* " <n>" (or "<n>" first on a line) in decimal. */
static void put_number(long n, int space)
{
    char buf[24], *p = buf + sizeof buf;
    unsigned long u = n < 0 ? 0ul - (unsigned long)n : (unsigned long)n;
    *--p = 0;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (n < 0)
        *--p = '-';
    if (space)
        *--p = ' ';
    write0(p);
}
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
    int n, k, best[5];
    paint();
    for (n = 0; n < sqz_image_count; n++) {
        sqz_predict(sqz_images[n], scores);
        top5(best);
        write0("image");
        put_number(n, 1);
        write0(" label");
        put_number(sqz_labels[n], 1);
        write0(" top5");
        for (k = 0; k < 5; k++)
            put_number(best[k], 1);
        write0("\n");
    }
    write0("stack");
    put_number((long)stack_used(), 1);
    write0("\n");
    return 0;
}
