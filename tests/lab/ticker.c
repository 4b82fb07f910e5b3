/* SPDX-License-Identifier: Apache-2.0 */
/* ticker (static, runs in nested guests): prints "tick N" every PERIOD ms
 * on stdout, and "gap G ms at tick N" whenever the guest's own monotonic
 * clock shows more than 3 periods between two ticks (a pause the guest
 * saw).  With DIRTY_MBPS > 0 it also rewrites a buffer (BUF_MIB, default
 * 64) at that rate, a byte per 4 KiB page (a guest that dirties memory).
 * DIRTY_MBPS -1: a child process rewrites the buffer as fast as its CPU
 * goes (a guest whose dirty rate follows its CPU: throttling slows it).
 *   ticker PERIOD_MS [DIRTY_MBPS [BUF_MIB]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    double period = argc > 1 ? atof(argv[1]) : 10;
    double mbps = argc > 2 ? atof(argv[2]) : 0;
    size_t size = (size_t)(argc > 3 ? atoi(argv[3]) : 64) << 20, off = 0;
    unsigned char *buf = mbps != 0 ? malloc(size) : NULL;
    double last = now_ms(), start = last, max_gap = 0;
    unsigned long n = 0;
    if (buf)
        memset(buf, 1, size);
    if (buf && mbps < 0) {
        /* volatile: stores nobody reads would be optimized away */
        volatile unsigned char *vb = buf;
        if (fork() == 0)
            for (;;)
                for (size_t o = 0; o < size; o += 4096)
                    vb[o]++;
        free(buf);
        buf = NULL;
    }
    printf("ticker: start period=%g dirty=%g\n", period, mbps);
    fflush(stdout);
    for (;;) {
        if (buf) {
            /* what is due since the start, one page touched per 4 KiB */
            double due = (now_ms() - start) / 1e3 * mbps * (1 << 20);
            static double done;
            while (done < due) {
                buf[off] ^= 1;
                off = (off + 4096) % size;
                done += 4096;
            }
        }
        struct timespec p = {0, (long)(period * 1e6)};
        nanosleep(&p, NULL);
        double t = now_ms();
        n++;
        if (t - last > max_gap)
            max_gap = t - last;
        if (t - last > 3 * period)
            printf("gap %.1f ms at tick %lu\n", t - last, n);
        printf("tick %lu\n", n);
        fflush(stdout);
        last = t;
    }
}
