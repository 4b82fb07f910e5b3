/* SPDX-License-Identifier: Apache-2.0 */
/* vsock: the smallest AF_VSOCK client and server, for VM lab tests (static
 * for nested guests, whose busybox has no vsock support).
 *   vsock listen PORT          accept one connection, print what it sends,
 *                              answer "pong:" + that text
 *   vsock connect CID PORT MSG send MSG, print the answer
 * Exits 0 on success, 1 on any error (printed). */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what)
{
    printf("vsock: %s: %s\n", what, strerror(errno));
    return 1;
}

static ssize_t read_some(int fd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;
    while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0) {
        len += n;
        if (memchr(buf, '\n', len))
            break;
    }
    buf[len] = 0;
    return len;
}

int main(int argc, char **argv)
{
    char buf[4096], reply[4200];
    struct sockaddr_vm sa = {.svm_family = AF_VSOCK};
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0)
        return fail("socket");
    if (argc == 3 && strcmp(argv[1], "listen") == 0) {
        sa.svm_cid = VMADDR_CID_ANY;
        sa.svm_port = atoi(argv[2]);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            return fail("bind");
        if (listen(fd, 1) < 0)
            return fail("listen");
        printf("vsock: listening on port %u\n", sa.svm_port);
        fflush(stdout);
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            return fail("accept");
        read_some(c, buf, sizeof(buf));
        printf("vsock: received %s", buf);
        snprintf(reply, sizeof(reply), "pong:%s", buf);
        if (write(c, reply, strlen(reply)) < 0)
            return fail("write");
        close(c);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "connect") == 0) {
        sa.svm_cid = atoi(argv[2]);
        sa.svm_port = atoi(argv[3]);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            return fail("connect");
        snprintf(buf, sizeof(buf), "%s\n", argv[4]);
        if (write(fd, buf, strlen(buf)) < 0)
            return fail("write");
        read_some(fd, reply, sizeof(reply));
        printf("vsock: answer %s", reply);
        return 0;
    }
    fprintf(stderr, "usage: vsock listen PORT | vsock connect CID PORT MSG\n");
    return 2;
}
