/* SPDX-License-Identifier: Apache-2.0 */
/* qmp: QEMU's QMP over a Unix socket, for the lab (busybox has no Unix
 * socket client).
 *   qmp SOCKET JSON...
 * Reads the greeting, negotiates capabilities, sends each JSON command and
 * prints its reply (one line each; events are skipped).  Exits 1 when a
 * reply is an error, 2 on a connection failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static FILE *in;

/* The next line that is not an event, or NULL. */
static char *reply(char *buf, size_t len)
{
    while (fgets(buf, len, in))
        if (strncmp(buf, "{\"event\"", 8) != 0)
            return buf;
    return NULL;
}

int main(int argc, char **argv)
{
    char buf[65536];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (argc < 2 || strlen(argv[1]) >= sizeof sa.sun_path)
        return 2;
    strcpy(sa.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("qmp: connect");
        return 2;
    }
    in = fdopen(fd, "r");
    const char *caps = "{\"execute\":\"qmp_capabilities\"}\n";
    if (!reply(buf, sizeof buf) || write(fd, caps, strlen(caps)) < 0 || !reply(buf, sizeof buf))
        return 2;
    int status = 0;
    for (int i = 2; i < argc; i++) {
        if (write(fd, argv[i], strlen(argv[i])) < 0 || write(fd, "\n", 1) < 0 || !reply(buf, sizeof buf))
            return 2;
        fputs(buf, stdout);
        if (strstr(buf, "\"error\""))
            status = 1;
    }
    return status;
}
