/* SPDX-License-Identifier: Apache-2.0 */
/* uhttp: one HTTP/1.1 request over a Unix socket, for API tests in the VM
 * lab (busybox has no client for that).
 *   uhttp SOCKET METHOD PATH [JSON_BODY]
 * Prints the status line and the body; exits 0 on a 2xx status, 1 on any
 * other status, 2 on a connection or protocol error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: uhttp SOCKET METHOD PATH [JSON_BODY]\n");
        return 2;
    }
    const char *body = argc == 5 ? argv[4] : "";
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "uhttp: socket path too long\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "uhttp: connect %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     argv[2], argv[3], strlen(body), body);
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, n) != n) {
        fprintf(stderr, "uhttp: write request failed\n");
        return 2;
    }
    static char resp[1 << 20];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof(resp) - 1 && (r = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
        len += r;
    resp[len] = 0;
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "uhttp: no HTTP status in reply: %.200s\n", resp);
        return 2;
    }
    char *eol = strstr(resp, "\r\n");
    char *hdr_end = strstr(resp, "\r\n\r\n");
    printf("%.*s\n%s\n", eol ? (int)(eol - resp) : 0, resp, hdr_end ? hdr_end + 4 : "");
    return status >= 200 && status < 300 ? 0 : 1;
}
