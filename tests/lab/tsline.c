/* SPDX-License-Identifier: Apache-2.0 */
/* tsline: copies stdin to stdout, each line prefixed with the lab's
 * CLOCK_MONOTONIC in seconds ("12.345678 LINE"), so that lines from two
 * processes (a migration's source and destination consoles) can be put on
 * one time line.  Carriage returns are dropped. */
#include <stdio.h>
#include <time.h>

int main(void)
{
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        for (char *p = line; *p; p++)
            if (*p == '\r')
                *p = ' ';
        printf("%ld.%06ld %s", (long)ts.tv_sec, ts.tv_nsec / 1000, line);
        fflush(stdout);
    }
    return 0;
}
