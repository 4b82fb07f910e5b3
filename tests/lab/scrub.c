/* SPDX-License-Identifier: Apache-2.0 */
/* scrub: touches (nearly) all of the lab's free memory once, then exits.
 *   scrub [MARGIN_MIB]   (default 96: left untouched for the kernel)
 *
 * Why: the lab is QEMU TCG.  When a nested guest stops, the lab pages
 * that held its code still carry QEMU's translated blocks; the next
 * nested guest that gets those pages pays for invalidating them (measured:
 * ~75k blocks, +1 s on a 2 s boot).  Benchmarks run scrub before each
 * timed run so that every monitor starts from the same clean lab: the
 * kernel zeroes each page scrub faults in, which invalidates its blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static long free_mib(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemFree: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib / 1024;
}

int main(int argc, char **argv)
{
    long margin = argc > 1 ? atol(argv[1]) : 96;
    long mib = free_mib() - margin;
    if (mib <= 0)
        return 0;
    size_t len = (size_t)mib << 20;
    volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("scrub: mmap");
        return 1;
    }
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
    return 0;
}
