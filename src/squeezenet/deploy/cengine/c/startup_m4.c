/* Reset for the Cortex-M4 harness: the vector table (initial stack pointer, reset, SysTick), .data copied from
 * flash, .bss zeroed, then main. */
#include <stdint.h>
#include <string.h>

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
int main(void);
void systick_handler(void);

void reset_handler(void)
{
    memcpy(&__data_start, &__data_load, (size_t)((char *)&__data_end - (char *)&__data_start));
    memset(&__bss_start, 0, (size_t)((char *)&__bss_end - (char *)&__bss_start));
    main();
    for (;;)
        ;
}

static void halt(void)
{
    for (;;)
        ;
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &__stack_top, (const void *)reset_handler, (const void *)halt, (const void *)halt, (const void *)halt,
    (const void *)halt, (const void *)halt, 0, 0, 0, 0, (const void *)halt, (const void *)halt, 0,
    (const void *)halt, (const void *)systick_handler};
