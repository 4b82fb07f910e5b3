/* SPDX-License-Identifier: Apache-2.0 */
/* stamp: runs a command, prints each line of its output prefixed with the
 * seconds elapsed since the command started ("[   1.234] line"), then
 * "stamp: exit N after S" (or "stamp: signal N after S").  Used inside the
 * VM lab, whose busybox has no sub-second clock, to time monitors.
 *   stamp [-t TIMEOUT_SECONDS] -- CMD [ARGS...]
 * On timeout the command's process group gets SIGKILL; SIGTERM and SIGINT
 * sent to stamp are passed on to it. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child_group;

static void forward(int sig)
{
    if (child_group > 0)
        kill(-child_group, sig);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double timeout = 0;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
        timeout = atof(argv[i + 1]);
        i += 2;
    }
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (i >= argc) {
        fprintf(stderr, "usage: stamp [-t SECONDS] -- CMD [ARGS...]\n");
        return 2;
    }
    int fds[2];
    if (pipe(fds) < 0)
        return perror("pipe"), 2;
    double start = now();
    pid_t pid = fork();
    if (pid < 0)
        return perror("fork"), 2;
    if (pid == 0) {
        setpgid(0, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[i], argv + i);
        fprintf(stderr, "stamp: exec %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    child_group = pid;
    struct sigaction sa = {.sa_handler = forward};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    close(fds[1]);
    char line[8192];
    size_t len = 0;
    int killed = 0;
    for (;;) {
        int wait_ms = -1;
        if (timeout > 0) {
            double left = start + timeout - now();
            if (left <= 0) {
                if (!killed)
                    kill(-pid, SIGKILL);
                killed = 1;
                wait_ms = 100;
            } else {
                wait_ms = (int)(left * 1000) + 1;
            }
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, wait_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            continue;
        char c[4096];
        ssize_t n = read(fds[0], c, sizeof(c));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t k = 0; k < n; k++) {
            if (c[k] == '\r')
                continue;
            if (c[k] == '\n' || len == sizeof(line) - 1) {
                line[len] = 0;
                printf("[%8.3f] %s\n", now() - start, line);
                fflush(stdout);
                len = 0;
                if (c[k] == '\n')
                    continue;
            }
            line[len++] = c[k];
        }
    }
    if (len) {
        line[len] = 0;
        printf("[%8.3f] %s\n", now() - start, line);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    double t = now() - start;
    if (killed)
        printf("stamp: timeout after %.3f\n", t);
    else if (WIFEXITED(status))
        printf("stamp: exit %d after %.3f\n", WEXITSTATUS(status), t);
    else
        printf("stamp: signal %d after %.3f\n", WTERMSIG(status), t);
    return killed ? 124 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
