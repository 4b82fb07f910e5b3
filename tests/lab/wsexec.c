/* SPDX-License-Identifier: Apache-2.0 */
/* wsexec: an exec (or the console) through cloisond's API over its Unix
 * socket, for the VM lab (busybox has no websocket client).
 *   wsexec SOCKET INSTANCE [-i] [-s WxH] [-r WxH] [-k SIGNAL] [-d SECS] -- CMD...
 *   wsexec SOCKET INSTANCE -c [-d SECS]          (the console websocket)
 * Sends our stdin to the command (then ends its stdin, unless -i: a
 * pty), copies its stdout and stderr (or the pty) to ours, and exits with
 * the operation's metadata.return, printing "return=N" on stderr.  -r
 * sends a window-resize, -k a signal, both -d seconds (default 1) after
 * the start.  -c: stdin to the console, its output for -d seconds.
 * Exits 125 on a protocol or API error. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path;

static void die(const char *what)
{
    fprintf(stderr, "wsexec: %s\n", what);
    exit(125);
}

static int dial(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect");
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write");
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

static void read_all(int fd, void *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("connection closed");
        p = (char *)p + r;
        n -= (size_t)r;
    }
}

/* A whole HTTP response (Connection: close): its body, malloc'd. */
static char *request(const char *method, const char *path, const char *body)
{
    int fd = dial();
    char head[1024];
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    snprintf(head, sizeof(head),
             "%s %s HTTP/1.1\r\nHost: cloison\r\nConnection: close\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             method, path, strlen(body));
    write_all(fd, head, strlen(head));
    write_all(fd, body, strlen(body));
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fd);
    char *b = strstr(buf, "\r\n\r\n");
    if (b == NULL)
        die("no HTTP response");
    return b + 4;
}

/* The string value after "key":" in json (a copy), or NULL. */
static char *json_str(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (p == NULL)
        return NULL;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    return e ? strndup(p, (size_t)(e - p)) : NULL;
}

static int ws_open(const char *path)
{
    int fd = dial();
    char head[1024], c;
    size_t n = 0;
    char resp[4096];
    snprintf(head, sizeof(head),
             "GET %s HTTP/1.1\r\nHost: cloison\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
             path);
    write_all(fd, head, strlen(head));
    while (n < sizeof(resp) - 1 && (n < 4 || memcmp(resp + n - 4, "\r\n\r\n", 4) != 0)) {
        read_all(fd, &c, 1);
        resp[n++] = c;
    }
    resp[n] = '\0';
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "wsexec: %s: %s\n", path, resp);
        exit(125);
    }
    return fd;
}

static void ws_send(int fd, int op, const void *data, size_t len)
{
    unsigned char h[14];
    size_t n = 0;
    h[n++] = (unsigned char)(0x80 | op);
    if (len < 126) {
        h[n++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[n++] = 0x80 | 126;
        h[n++] = (unsigned char)(len >> 8);
        h[n++] = (unsigned char)len;
    } else {
        h[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (unsigned char)((unsigned long long)len >> (8 * i));
    }
    memset(h + n, 0, 4); /* a zero mask: the payload as is */
    n += 4;
    write_all(fd, h, n);
    if (len)
        write_all(fd, data, len);
}

/* One frame: its opcode; payload to out (-1: dropped). */
static int ws_copy(int fd, int out)
{
    unsigned char h[2], ext[8];
    unsigned long long len;
    char buf[65536];
    read_all(fd, h, 2);
    len = h[1] & 0x7f;
    if (len == 126 || len == 127) {
        size_t k = len == 126 ? 2 : 8;
        read_all(fd, ext, k);
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = len << 8 | ext[i];
    }
    while (len) {
        size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        read_all(fd, buf, n);
        if (out >= 0 && (h[0] & 0x0f) != 8)
            write_all(out, buf, n);
        len -= n;
    }
    return h[0] & 0x0f;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int interactive = 0, console = 0, sig = 0, i;
    double delay = 1;
    char size[32] = "", resize[32] = "";
    if (argc < 3) {
        fprintf(stderr, "usage: wsexec SOCKET INSTANCE [-i] [-s WxH] [-r WxH] [-k SIG] [-d S] -- CMD...\n");
        return 125;
    }
    sock_path = argv[1];
    const char *name = argv[2];
    for (i = 3; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-i") == 0)
            interactive = 1;
        else if (strcmp(argv[i], "-c") == 0)
            console = 1;
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            snprintf(size, sizeof(size), "%s", argv[++i]);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
            snprintf(resize, sizeof(resize), "%s", argv[++i]);
        else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc)
            sig = atoi(argv[++i]);
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
            delay = atof(argv[++i]);
    }
    char path[512];
    int ws[4] = {-1, -1, -1, -1}; /* 0, 1, 2, control */
    char *op = NULL;
    if (console) {
        snprintf(path, sizeof(path), "/1.0/instances/%s/console", name);
        ws[0] = ws_open(path);
    } else {
        char body[8192];
        size_t n = 0;
        n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"command\":[");
        for (int k = i + 1; k < argc; k++)
            n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"%s\"", k > i + 1 ? "," : "",
                                  argv[k]);
        n += (size_t)snprintf(body + n, sizeof(body) - n, "],\"interactive\":%s",
                              interactive ? "true" : "false");
        if (*size) {
            unsigned w = 0, h = 0;
            sscanf(size, "%ux%u", &w, &h);
            n += (size_t)snprintf(body + n, sizeof(body) - n, ",\"width\":%u,\"height\":%u", w, h);
        }
        snprintf(body + n, sizeof(body) - n, "}");
        snprintf(path, sizeof(path), "/1.0/instances/%s/exec", name);
        char *reply = request("POST", path, body);
        op = json_str(reply, "operation");
        if (op == NULL) {
            fprintf(stderr, "wsexec: %s\n", reply);
            return 125;
        }
        const char *names[4] = {"0", "1", "2", "control"};
        for (int k = 0; k < 4; k++) {
            char *secret = json_str(reply, names[k]);
            if (secret == NULL)
                continue;
            snprintf(path, sizeof(path), "%s/websocket?secret=%s", op, secret);
            ws[k] = ws_open(path);
            free(secret);
        }
    }
    double start = now();
    int stdin_open = 1, open_out = 1 + (ws[2] >= 0), sent = 0;
    int data_out = ws[1] >= 0 ? ws[1] : ws[0];
    while (open_out > 0) {
        struct pollfd p[3] = {{.fd = stdin_open ? 0 : -1, .events = POLLIN},
                              {.fd = data_out, .events = POLLIN},
                              {.fd = ws[2], .events = POLLIN}};
        int r = poll(p, 3, 100);
        if (r < 0 && errno != EINTR)
            die("poll");
        if (!sent && now() - start >= delay && (*resize || sig)) {
            char msg[128];
            unsigned w = 0, h = 0;
            int ctl = ws[3] >= 0 ? ws[3] : ws[0];
            sent = 1;
            if (*resize && sscanf(resize, "%ux%u", &w, &h) == 2) {
                snprintf(msg, sizeof(msg),
                         "{\"command\":\"window-resize\",\"args\":{\"width\":\"%u\",\"height\":\"%u\"}}",
                         w, h);
                ws_send(ctl, 1, msg, strlen(msg));
            }
            if (sig) {
                snprintf(msg, sizeof(msg), "{\"command\":\"signal\",\"signal\":%d}", sig);
                ws_send(ctl, 1, msg, strlen(msg));
            }
        }
        if (console && now() - start >= delay)
            break;
        if (r <= 0)
            continue;
        if (p[0].revents) {
            char buf[65536];
            ssize_t n = read(0, buf, sizeof(buf));
            if (n > 0) {
                ws_send(ws[0], 2, buf, (size_t)n);
            } else {
                stdin_open = 0;
                if (!interactive && !console)
                    ws_send(ws[0], 2, "", 0); /* the end of stdin */
            }
        }
        if (p[1].revents && ws_copy(data_out, 1) == 8)
            open_out--, data_out = -1;
        if (p[2].revents && ws_copy(ws[2], 2) == 8)
            open_out--, ws[2] = -1;
    }
    if (console)
        return 0;
    snprintf(path, sizeof(path), "%s/wait?timeout=60", op);
    char *done = request("GET", path, "");
    const char *ret = strstr(done, "\"return\":");
    if (ret == NULL) {
        fprintf(stderr, "wsexec: %s\n", done);
        return 125;
    }
    fprintf(stderr, "return=%d\n", atoi(ret + 9));
    return atoi(ret + 9);
}
