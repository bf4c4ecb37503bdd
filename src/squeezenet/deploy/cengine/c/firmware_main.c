/* The Cortex-M4 harness of the SqueezeNet C engine, for a board or QEMU with semihosting. It reads images.txt (one
 * line per image: its raw file, then its name), pulls each image through sqz_predict_rows one row at a time from its
 * file (SQZ_IMAGE_SIZE x SQZ_IMAGE_SIZE RGB bytes, already resized and cropped: model.h), as a camera would deliver
 * rows, and prints "NAME TOP1 [more of the top 5] ticks T": T is SysTick's count during the prediction. First,
 * "calibrate I T": T ticks for a loop of I instructions (under `qemu-system-arm -icount shift=0` the clock advances
 * a nanosecond per instruction, so ticks convert to instructions). Last, "stack N": the most stack the network used
 * (the stack is painted first). Semihosting calls are made directly: newlib's stdio
 * would take 10 KB of flash and a heap. */
#include <stdint.h>

#include "model.h"

#define PAINT 0x5A5A5A5Au
#define TOP (SQZ_NUM_CLASSES < 5 ? SQZ_NUM_CLASSES : 5)

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_WRITE0 = 0x04, SYS_READ = 0x06, SYS_EXIT = 0x18 };

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void write0(const char *text)
{
    semihost(SYS_WRITE0, text);
}

/* " <n>" in decimal (no space first on a line). */
static void put_number(unsigned long u, int space)
{
    char buf[24], *p = buf + sizeof buf;
    *--p = 0;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (space)
        *--p = ' ';
    write0(p);
}

static int open_file(const char *name)
{
    uint32_t n = 0, args[3];
    while (name[n])
        n++;
    args[0] = (uint32_t)(uintptr_t)name;
    args[1] = 0; /* "r" */
    args[2] = n;
    return (int)semihost(SYS_OPEN, args);
}

/* 0 when all `n` bytes were read. */
static uint32_t read_file(int handle, void *buffer, uint32_t n)
{
    uint32_t args[3];
    args[0] = (uint32_t)handle;
    args[1] = (uint32_t)(uintptr_t)buffer;
    args[2] = n;
    return semihost(SYS_READ, args);
}

static void close_file(int handle)
{
    uint32_t arg = (uint32_t)handle;
    semihost(SYS_CLOSE, &arg);
}

static void stop(int failed)
{
    /* ADP_Stopped_RunTimeErrorUnknown (QEMU exits 1) or ADP_Stopped_ApplicationExit (0) */
    semihost(SYS_EXIT, (const void *)(uintptr_t)(failed ? 0x20023u : 0x20026u));
    for (;;)
        ;
}

/* SysTick counts down from 2^24 - 1 at the core clock; its interrupt counts the wraps. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
static volatile uint32_t wraps;

void systick_handler(void)
{
    wraps++;
}

#define CALIBRATION (1u << 20) /* iterations of two instructions */

static uint64_t ticks(void)
{
    uint32_t w, v;
    do {
        w = wraps;
        v = SYST_CVR;
    } while (w != wraps);
    return ((uint64_t)w << 24) + (0xFFFFFFu - v);
}

extern uint32_t __stack_bottom, __stack_top; /* the linker script's */

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

static const uint8_t *file_row(void *context, int y, uint8_t *buffer)
{
    (void)y; /* rows come in order */
    return read_file(*(int *)context, buffer, SQZ_IMAGE_SIZE * 3) ? 0 : buffer;
}

/* The next line of images.txt into `line` (at most n - 1 characters); 0 at the end. */
static int read_line(int list, char *line, int n)
{
    int k = 0;
    char ch;
    while (read_file(list, &ch, 1) == 0) {
        if (ch == '\n')
            break;
        if (ch != '\r' && k < n - 1)
            line[k++] = ch;
    }
    line[k] = 0;
    return k > 0;
}

static int32_t scores[SQZ_NUM_CLASSES];

static void print_top(void)
{
    int best[TOP], i, j, k;
    for (k = 0; k < TOP; k++) {
        best[k] = -1;
        for (i = 0; i < SQZ_NUM_CLASSES; i++) {
            for (j = 0; j < k && best[j] != i; j++)
                ;
            if (j == k && (best[k] < 0 || scores[i] > scores[best[k]]))
                best[k] = i;
        }
        put_number((unsigned long)best[k], 1);
    }
}

int main(void)
{
    char line[160], *name;
    int list = open_file("images.txt"), image;
    uint64_t t;
    if (list < 0) {
        write0("cannot open images.txt\n");
        stop(1);
    }
    paint();
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7; /* the core clock, its interrupt, enabled */
    while (SYST_CVR == 0) /* the first reload */
        ;
    {
        register uint32_t n __asm__("r0") = CALIBRATION;
        t = ticks();
        __asm__ volatile("1: subs %0, #1\n bne 1b" : "+r"(n));
        t = ticks() - t;
        write0("calibrate");
        put_number(2ul * CALIBRATION, 1);
        put_number((unsigned long)t, 1);
        write0("\n");
    }
    while (read_line(list, line, sizeof line)) {
        for (name = line; *name && *name != ' '; name++)
            ;
        if (*name)
            *name++ = 0;
        image = open_file(line);
        if (image < 0) {
            write0(line);
            write0(": cannot open\n");
            stop(1);
        }
        t = ticks();
        if (sqz_predict_rows(file_row, &image, scores) < 0) {
            write0(line);
            write0(": shorter than an image\n");
            stop(1);
        }
        t = ticks() - t;
        close_file(image);
        write0(name);
        print_top();
        write0(" ticks");
        put_number((unsigned long)t, 1);
        write0("\n");
    }
    close_file(list);
    write0("stack");
    put_number(stack_used(), 1);
    write0("\n");
    stop(0);
    return 0;
}
