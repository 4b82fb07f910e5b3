/* SPDX-License-Identifier: Apache-2.0 */
/* tsline: copies stdin to stdout, each line prefixed with the lab's
 * CLOCK_MONOTONIC in seconds ("12.345678 LINE"), so that lines from two
 * processes (a migration's source and destination consoles) can be put on
 * one time line.  Carriage returns are dropped.  A last line the input
 * ends without its newline (a migration's source stopped in the middle of
 * a line, whose destination then writes the rest) is stamped when the
 * input ends, and marked " (partial)": it is no whole line of that time. */
#include <stdio.h>
#include <string.h>
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
        size_t n = strlen(line);
        printf("%ld.%06ld %s%s", (long)ts.tv_sec, ts.tv_nsec / 1000, line,
               n && line[n - 1] == '\n' ? "" : " (partial)\n");
        fflush(stdout);
    }
    return 0;
}
