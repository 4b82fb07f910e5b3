/* SPDX-License-Identifier: Apache-2.0 */
/* cloisond: serves the REST API (src/api/api.h) over HTTP on a Unix
   socket, with libmicrohttpd.  A thin front end: the socket, HTTP framing
   and signals live here, every verb in the router.

   One thread per connection: a request that waits (an operation's
   /wait, the event stream, plain or as a websocket) holds only its own
   thread, and a client that stalls is dropped after the connection
   timeout without slowing the others. */
#include "api/api.h"
#include "api/ui.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/cloison/cloison.sock"
/* ROOT/cloisond.sock: a link to the socket of the daemon serving ROOT, by
   which `cloison` finds it (src/cli/client.h) */
#define ROOT_LINK "cloisond.sock"
#define EVENT_HEARTBEAT_S 10

static int signal_pipe[2] = { -1, -1 };
/* the web console's sessions (src/api/ui.h) */
static struct cl_api_ui *console;
/* event streams open (plain and websockets): at shutdown they end first,
   so that each is closed by its last chunk or close frame, not cut */
static int open_streams;
static pid_t daemon_pid;

static void
on_signal (int sig)
{
  int saved = errno;
  /* a VM monitor is a fork of us that never execs: it must not stop the
     daemon when it is signalled itself */
  if (getpid () != daemon_pid)
    {
      signal (sig, SIG_DFL);
      raise (sig);
      return;
    }
  if (write (signal_pipe[1], "x", 1) < 0)
    {
      /* the pipe is full: a stop is pending anyway */
    }
  errno = saved;
}

/* ---- one request ---- */

struct request
{
  char *uri; /* as received: path and query, percent-encoded */
  char *body;
  size_t len;
  bool started;
  bool too_big;
};

static size_t body_limit = CL_API_BODY_LIMIT_DEFAULT;

/* MHD gives the raw URI here (the access handler only sees the decoded
   path); it becomes the request's state. */
static void *
uri_logger (void *cls, const char *uri, struct MHD_Connection *con)
{
  struct request *r = cl_xmalloc0 (sizeof *r);
  (void)cls;
  (void)con;
  r->uri = cl_xstrdup (uri);
  return r;
}

static void
request_completed (void *cls, struct MHD_Connection *con, void **state,
                   enum MHD_RequestTerminationCode toe)
{
  struct request *r = *state;
  (void)cls;
  (void)con;
  (void)toe;
  if (r == NULL)
    return;
  free (r->uri);
  free (r->body);
  free (r);
  *state = NULL;
}

struct stream
{
  struct cl_api_events *ev;
  char *pending;
  size_t off, len;
  int idle_s;
};

static ssize_t
stream_read (void *cls, uint64_t pos, char *buf, size_t max)
{
  struct stream *s = cls;
  size_t n;
  (void)pos;

  if (s->pending == NULL)
    {
      int r = cl_api_events_next (s->ev, 1000, &s->pending);
      if (r < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
      if (r == 0)
        {
          /* an empty line now and then: a reader that went away is found
             by the write failing */
          if (++s->idle_s < EVENT_HEARTBEAT_S)
            return 0;
          s->idle_s = 0;
          buf[0] = '\n';
          return 1;
        }
      s->idle_s = 0;
      s->off = 0;
      s->len = strlen (s->pending);
    }
  n = s->len - s->off < max ? s->len - s->off : max;
  memcpy (buf, s->pending + s->off, n);
  s->off += n;
  if (s->off == s->len)
    {
      free (s->pending);
      s->pending = NULL;
    }
  return (ssize_t)n;
}

static void
stream_free (void *cls)
{
  struct stream *s = cls;
  cl_api_events_free (s->ev);
  free (s->pending);
  free (s);
  __atomic_sub_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
}

/* ---- the event stream as a websocket (RFC 6455) ---- */

/* One frame from us (never masked); -1 when the client is gone. */
static int
ws_send (int fd, int opcode, const char *data, size_t len)
{
  unsigned char h[10];
  size_t n = 0;

  h[n++] = (unsigned char)(0x80 | opcode);
  if (len < 126)
    h[n++] = (unsigned char)len;
  else if (len < 65536)
    {
      h[n++] = 126;
      h[n++] = (unsigned char)(len >> 8);
      h[n++] = (unsigned char)len;
    }
  else
    {
      h[n++] = 127;
      for (int i = 7; i >= 0; i--)
        h[n++] = (unsigned char)(len >> (8 * i));
    }
  return cl_write_all (fd, h, n) < 0 || cl_write_all (fd, data, len) < 0 ? -1 : 0;
}

/* One frame from the client (masked, at most 125 bytes of payload: it
   only sends control frames to an event stream).  Returns its opcode, or
   -1 when the client is gone or breaks the protocol. */
static int
ws_recv (int fd, char *payload, size_t *len)
{
  unsigned char h[2], mask[4];

  if (cl_read_all (fd, h, 2) < 0 || !(h[1] & 0x80) || (h[1] & 0x7f) > 125
      || cl_read_all (fd, mask, 4) < 0)
    return -1;
  *len = h[1] & 0x7f;
  if (*len && cl_read_all (fd, payload, *len) < 0)
    return -1;
  for (size_t i = 0; i < *len; i++)
    payload[i] ^= (char)mask[i % 4];
  return h[0] & 0x0f;
}

/* Runs the stream in the connection's own thread (thread per
   connection): events as text frames, a ping answered, a close ends it,
   as does the server's shutdown. */
static void
ws_run (void *cls, struct MHD_Connection *con, void *state, const char *extra, size_t extra_len,
        MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
  struct cl_api_events *ev = cls;
  (void)con;
  (void)state;
  (void)extra;
  (void)extra_len;

  fcntl (sock, F_SETFL, fcntl (sock, F_GETFL) & ~O_NONBLOCK);
  for (;;)
    {
      struct pollfd p = { .fd = sock, .events = POLLIN };
      char *line = NULL, payload[126];
      size_t len;
      int r;

      if (poll (&p, 1, 0) > 0)
        {
          int op = ws_recv (sock, payload, &len);
          if (op == 9 && ws_send (sock, 10, payload, len) == 0)
            continue; /* ping: pong */
          if (op == 8)
            ws_send (sock, 8, payload, len < 2 ? len : 2);
          if (op < 0 || op == 8 || op < 8)
            break; /* gone, closed, or data we do not take */
          continue;
        }
      r = cl_api_events_next (ev, 500, &line);
      if (r < 0)
        {
          ws_send (sock, 8, "\x03\xe9", 2); /* 1001: going away */
          break;
        }
      if (r == 1)
        {
          r = ws_send (sock, 1, line, strlen (line) - 1); /* without its '\n' */
          free (line);
          if (r < 0)
            break;
        }
    }
  cl_api_events_free (ev);
  MHD_upgrade_action (urh, MHD_UPGRADE_ACTION_CLOSE);
  __atomic_sub_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
}

/* A websocket handshake on the event stream: the 101 response, else NULL
   (a plain HTTP stream is served). */
static struct MHD_Response *
ws_response (struct MHD_Connection *con, struct cl_api_response *resp)
{
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  const char *up = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
  const char *key = MHD_lookup_connection_value (con, MHD_HEADER_KIND, "Sec-WebSocket-Key");
  unsigned char digest[SHA_DIGEST_LENGTH];
  char accept[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  struct MHD_Response *r;
  cleanup_free char *k = NULL;

  if (up == NULL || strcasecmp (up, "websocket") != 0 || key == NULL)
    return NULL;
  k = cl_strdup_printf ("%s%s", key, guid);
  SHA1 ((const unsigned char *)k, strlen (k), digest);
  EVP_EncodeBlock ((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
  /* the stream is the handler's from here; if the client leaves before
     the switch, the handler never runs and the small struct is lost */
  r = MHD_create_response_for_upgrade (ws_run, resp->events);
  if (r == NULL)
    return NULL;
  __atomic_add_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
  resp->events = NULL;
  resp->status = MHD_HTTP_SWITCHING_PROTOCOLS;
  resp->content_type = NULL;
  MHD_add_response_header (r, MHD_HTTP_HEADER_UPGRADE, "websocket");
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
  MHD_add_response_header (r, "Sec-WebSocket-Accept", accept);
  return r;
}

static enum MHD_Result
send_response (struct MHD_Connection *con, struct cl_api_response *resp)
{
  struct MHD_Response *r = NULL;
  enum MHD_Result ret;

  if (resp->events && (r = ws_response (con, resp)) != NULL)
    ;
  else if (resp->events)
    {
      struct stream *s = cl_xmalloc0 (sizeof *s);
      s->ev = resp->events;
      resp->events = NULL;
      __atomic_add_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
      r = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
      if (r == NULL)
        stream_free (s);
    }
  else if (resp->json)
    {
      /* sized first, then written in place with its newline: no buffer
         regrown and copied for a large list */
      size_t n = json_dumpb (resp->json, NULL, 0, JSON_COMPACT);
      char *s = cl_xmalloc0 (n + 1);
      json_dumpb (resp->json, s, n, JSON_COMPACT);
      s[n++] = '\n';
      r = MHD_create_response_from_buffer (n, s, MHD_RESPMEM_MUST_FREE);
    }
  else
    {
      r = MHD_create_response_from_buffer (resp->raw_len, resp->raw, MHD_RESPMEM_MUST_FREE);
      resp->raw = NULL;
    }
  if (r == NULL)
    return MHD_NO;
  if (resp->content_type)
    MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
  if (resp->location)
    MHD_add_response_header (r, MHD_HTTP_HEADER_LOCATION, resp->location);
  if (resp->etag)
    MHD_add_response_header (r, MHD_HTTP_HEADER_ETAG, resp->etag);
  if (resp->allow)
    MHD_add_response_header (r, MHD_HTTP_HEADER_ALLOW, resp->allow);
  for (char *line = resp->headers, *end; line && (end = strchr (line, '\n')); line = end + 1)
    {
      char *colon = strchr (line, ':');
      *end = '\0';
      if (colon && colon < end)
        {
          *colon = '\0';
          MHD_add_response_header (r, line, colon + 2);
        }
    }
  ret = MHD_queue_response (con, (unsigned)resp->status, r);
  MHD_destroy_response (r);
  return ret;
}

static enum MHD_Result
send_too_big (struct MHD_Connection *con, size_t len)
{
  struct cl_api_response resp = { .status = 413, .content_type = "application/json" };
  enum MHD_Result ret;

  resp.json = json_pack (
      "{s:s, s:i, s:o}", "type", "error", "error_code", 413, "error",
      json_sprintf ("request body of %zu bytes or more: the limit is %zu", len, body_limit));
  ret = send_response (con, &resp);
  cl_api_response_clear (&resp);
  return ret;
}

/* What the console's gate needs to know of a request. */
static void
http_of (struct MHD_Connection *con, struct cl_api_http *h)
{
  const union MHD_ConnectionInfo *ci
      = MHD_get_connection_info (con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  int family = ci && ci->client_addr ? ci->client_addr->sa_family : AF_UNIX;

  memset (h, 0, sizeof *h);
  h->remote = family == AF_INET || family == AF_INET6;
  h->host = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  h->origin = MHD_lookup_connection_value (con, MHD_HEADER_KIND, "Origin");
  h->cookie = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
  h->csrf = MHD_lookup_connection_value (con, MHD_HEADER_KIND, "X-CSRF-Token");
  h->accept_encoding
      = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
}

static enum MHD_Result
on_request (void *cls, struct MHD_Connection *con, const char *url, const char *method,
            const char *version, const char *upload, size_t *upload_size, void **state)
{
  struct cl_api_ctx *ctx = cls;
  struct request *r = *state;
  struct cl_api_response resp;
  struct cl_api_request req = { .method = method };
  struct cl_api_http http;
  cleanup_free char *path = NULL;
  enum MHD_Result ret;
  char *q;
  (void)url;
  (void)version;

  if (!r->started)
    {
      const char *cl
          = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      r->started = true;
      /* refused before it is read */
      if (cl && strtoull (cl, NULL, 10) > body_limit)
        return send_too_big (con, (size_t)strtoull (cl, NULL, 10));
      return MHD_YES;
    }
  if (*upload_size)
    {
      if (!r->too_big && r->len + *upload_size > body_limit)
        {
          r->too_big = true;
          free (r->body);
          r->body = NULL;
        }
      if (!r->too_big)
        {
          r->body = realloc (r->body, r->len + *upload_size + 1);
          if (r->body == NULL)
            abort ();
          memcpy (r->body + r->len, upload, *upload_size);
        }
      r->len += *upload_size;
      *upload_size = 0;
      return MHD_YES;
    }
  if (r->too_big)
    return send_too_big (con, r->len);
  path = cl_xstrdup (r->uri);
  q = strchr (path, '?');
  if (q)
    *q++ = '\0';
  req.path = path;
  req.query = q;
  req.body = r->body;
  req.body_len = r->len;
  req.if_match = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH);
  http_of (con, &http);
  if (!cl_api_ui_gate (console, &req, &http, &resp))
    cl_api_handle (ctx, &req, &resp);
  cl_debug ("%s %s: %d", method, r->uri, resp.status);
  ret = send_response (con, &resp);
  cl_api_response_clear (&resp);
  return ret;
}

/* ---- the socket ---- */

/* systemd socket activation: fd 3 when LISTEN_PID is us. */
static int
activated_socket (void)
{
  const char *pid = getenv ("LISTEN_PID"), *fds = getenv ("LISTEN_FDS");
  if (pid == NULL || fds == NULL || atoi (pid) != getpid () || atoi (fds) < 1)
    return -1;
  fcntl (3, F_SETFD, FD_CLOEXEC);
  return 3;
}

static int
listen_unix (const char *path, cl_error_t *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  cleanup_free char *dir = cl_xstrdup (path);
  cleanup_close int fd = -1;
  char *slash = strrchr (dir, '/');
  struct group *g;

  if (strlen (path) >= sizeof addr.sun_path)
    return cl_error_make (err, 0, "--socket `%s`: longer than %zu bytes", path,
                          sizeof addr.sun_path - 1);
  strcpy (addr.sun_path, path);
  if (slash && slash != dir)
    {
      *slash = '\0';
      if (cl_mkdir_p (dir, 0755, err) < 0)
        return -1;
    }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cl_error_errno (err, "socket");
  if (connect (fd, (struct sockaddr *)&addr, sizeof addr) == 0)
    return cl_error_make (err, 0, "another cloisond serves `%s`", path);
  /* a socket file nobody answers on: left by a daemon that was killed */
  if (unlink (path) < 0 && errno != ENOENT)
    return cl_error_errno (err, "remove the stale socket `%s`", path);
  if (bind (fd, (struct sockaddr *)&addr, sizeof addr) < 0)
    return cl_error_errno (err, "bind `%s`", path);
  if (chmod (path, 0660) < 0)
    return cl_error_errno (err, "chmod `%s`", path);
  g = getgrnam ("cloison");
  if (g && chown (path, (uid_t)-1, g->gr_gid) < 0)
    return cl_error_errno (err, "chown `%s` to group cloison", path);
  if (listen (fd, 1024) < 0)
    return cl_error_errno (err, "listen on `%s`", path);
  return steal_fd (&fd);
}

/* --listen ADDR:PORT ([ADDR]:PORT for IPv6; PORT 0: any free one):
   plain HTTP for now, the console's and the API's TCP side.  *url: the
   address it is reached at. */
static int
listen_tcp (const char *spec, char **url, cl_error_t *err)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
  struct addrinfo *ai = NULL;
  struct sockaddr_storage sa;
  socklen_t salen = sizeof sa;
  cleanup_free char *host = cl_xstrdup (spec);
  cleanup_close int fd = -1;
  char *colon = strrchr (host, ':'), port[16];
  char name[INET6_ADDRSTRLEN + 2];
  int one = 1, r;

  if (colon == NULL || colon == host || colon[1] == '\0')
    return cl_error_make (err, 0, "--listen `%s`: expected ADDR:PORT", spec);
  *colon++ = '\0';
  if (host[0] == '[' && host[strlen (host) - 1] == ']')
    {
      memmove (host, host + 1, strlen (host));
      host[strlen (host) - 1] = '\0';
    }
  r = getaddrinfo (host, colon, &hints, &ai);
  if (r != 0)
    return cl_error_make (err, 0, "--listen `%s`: %s", spec, gai_strerror (r));
  fd = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
      || bind (fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen (fd, 1024) < 0
      || getsockname (fd, (struct sockaddr *)&sa, &salen) < 0)
    {
      freeaddrinfo (ai);
      return cl_error_errno (err, "--listen `%s`", spec);
    }
  freeaddrinfo (ai);
  getnameinfo ((struct sockaddr *)&sa, salen, name, sizeof name, port, sizeof port,
               NI_NUMERICHOST | NI_NUMERICSERV);
  *url
      = cl_strdup_printf (sa.ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", name, port);
  return steal_fd (&fd);
}

static struct MHD_Daemon *
serve (int fd, struct cl_api_ctx *ctx, unsigned timeout, int debug)
{
  return MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                               | MHD_USE_POLL | MHD_ALLOW_UPGRADE | (debug ? MHD_USE_ERROR_LOG : 0),
                           0, NULL, NULL, on_request, ctx, MHD_OPTION_LISTEN_SOCKET, fd,
                           MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_URI_LOG_CALLBACK,
                           uri_logger, NULL, MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
                           MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_THREAD_STACK_SIZE,
                           (size_t)(512u << 10), MHD_OPTION_END);
}

/* The path of the socket we listen on (fd), absolute; NULL when it has
   none (an abstract or unnamed socket). */
static char *
socket_path_of (int fd)
{
  struct sockaddr_un addr;
  socklen_t len = sizeof addr;
  char real[PATH_MAX];

  if (getsockname (fd, (struct sockaddr *)&addr, &len) < 0 || addr.sun_family != AF_UNIX
      || len <= offsetof (struct sockaddr_un, sun_path) || addr.sun_path[0] == '\0')
    return NULL;
  addr.sun_path[sizeof addr.sun_path - 1] = '\0';
  return realpath (addr.sun_path, real) ? cl_xstrdup (real) : NULL;
}

/* ROOT/cloisond.sock -> the socket: replaces whatever link a dead daemon
   left.  A failure only costs the CLI its way here (it works in-process). */
static char *
link_root (const char *root, int fd)
{
  cleanup_free char *target = socket_path_of (fd);
  char *link = cl_strdup_printf ("%s/" ROOT_LINK, root);

  if (target == NULL || (unlink (link) < 0 && errno != ENOENT) || symlink (target, link) < 0)
    {
      cl_warn ("cloisond: `%s`: %s: cloison commands will not come through us", link,
               target ? strerror (errno) : "no socket path");
      free (link);
      return NULL;
    }
  return link;
}

/* Removes the link when it still points to our socket. */
static void
unlink_root (char *link, int fd)
{
  cleanup_free char *target = socket_path_of (fd);
  char now[PATH_MAX];
  ssize_t n;

  if (link == NULL)
    return;
  n = readlink (link, now, sizeof now - 1);
  if (n > 0 && target)
    {
      now[n] = '\0';
      if (strcmp (now, target) == 0)
        unlink (link);
    }
  free (link);
}

static void
usage (FILE *out)
{
  fprintf (out, "usage: cloisond [--root DIR] [--socket PATH] [--timeout SECONDS]"
                " [--body-limit BYTES] [--debug]\n"
                "                [--listen ADDR:PORT] [--ui-session-timeout SECONDS]\n"
                "       cloisond --routes   print the API's routes\n"
                "Serves the cloison REST API on a Unix socket (default " DEFAULT_SOCKET ").\n");
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "root", required_argument, NULL, 'r' },
    { "socket", required_argument, NULL, 's' },
    { "timeout", required_argument, NULL, 't' },
    { "body-limit", required_argument, NULL, 'b' },
    { "routes", no_argument, NULL, 'R' },
    { "debug", no_argument, NULL, 'd' },
    { "listen", required_argument, NULL, 'l' },
    { "ui-session-timeout", required_argument, NULL, 'U' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'v' },
    { NULL, 0, NULL, 0 },
  };
  const char *root_flag = NULL, *socket_path = DEFAULT_SOCKET, *listen_spec = NULL;
  char root[PATH_MAX], *link = NULL;
  struct cl_api_ui_options ui_opts = { 0 };
  struct MHD_Daemon *tcp = NULL;
  cleanup_free char *ui_dir = cl_piece_path (CL_PIECE_UI);
  cleanup_free char *tcp_url = NULL;
  struct cl_api_options api_opts = { 0 };
  struct cl_api_ctx *ctx = NULL;
  struct MHD_Daemon *d;
  struct sigaction sa = { .sa_handler = on_signal };
  cl_error_t err = NULL;
  unsigned timeout = 30;
  int c, fd, debug = 0;
  bool own_socket = false;

  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (c)
      {
      case 'r':
        root_flag = optarg;
        break;
      case 's':
        socket_path = optarg;
        break;
      case 't':
        {
          char *end;
          unsigned long v = strtoul (optarg, &end, 10);
          if (*optarg == '\0' || *end || v == 0 || v > 3600)
            {
              fprintf (stderr, "cloisond: invalid --timeout `%s`: seconds, 1-3600\n", optarg);
              return 2;
            }
          timeout = (unsigned)v;
          break;
        }
      case 'b':
        {
          uint64_t v;
          if (cl_parse_size (optarg, "--body-limit", &v, &err) < 0)
            return cl_error_report (&err, "cloisond");
          body_limit = api_opts.body_limit = (size_t)v;
          break;
        }
      case 'R':
        for (size_t i = 0; cl_api_route (i); i++)
          printf ("%-6s %s\n", cl_api_route (i)->method, cl_api_route (i)->path);
        return 0;
      case 'd':
        debug = 1;
        break;
      case 'l':
        listen_spec = optarg;
        break;
      case 'U':
        {
          char *end;
          unsigned long v = strtoul (optarg, &end, 10);
          if (*optarg == '\0' || *end || v == 0 || v > 7 * 86400)
            {
              fprintf (stderr, "cloisond: invalid --ui-session-timeout `%s`: seconds\n", optarg);
              return 2;
            }
          ui_opts.session_idle_s = (int)v;
          break;
        }
      case 'h':
        usage (stdout);
        return 0;
      case 'v':
        printf ("cloisond version %s\n", CLOISON_VERSION);
        return 0;
      default:
        usage (stderr);
        return 2;
      }
  if (optind != argc)
    {
      usage (stderr);
      return 2;
    }
  cl_log_init (NULL, 0, debug);
  daemon_pid = getpid ();
  /* a request's memory (a list of 1000 instances is a few MiB of JSON
     nodes and text) stays with the process for the next one: without
     this, glibc gives it back after each request and the next one pays
     the page faults again */
  mallopt (M_MMAP_THRESHOLD, 16 << 20);
  mallopt (M_TRIM_THRESHOLD, 64 << 20);
  signal (SIGPIPE, SIG_IGN);
  if (pipe2 (signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    {
      perror ("cloisond: pipe");
      return 1;
    }
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);

  /* the root by its real path: the CLI compares it with its own */
  if (cl_mkdir_p (cl_state_root (root_flag), 0755, &err) < 0)
    return cl_error_report (&err, "cloisond");
  if (realpath (cl_state_root (root_flag), root) == NULL)
    {
      cl_error_errno (&err, "state root `%s`", cl_state_root (root_flag));
      return cl_error_report (&err, "cloisond");
    }
  if (cl_api_ctx_new (root, &api_opts, &ctx, &err) < 0)
    return cl_error_report (&err, "cloisond");
  /* events for what the API does not do itself (a workload that exits,
     the CLI) */
  if (cl_api_watch_start (ctx, 1000, &err) < 0)
    {
      cl_warn ("cloisond: no events for changes made outside the API: %s", err->msg);
      cl_error_release (&err);
    }
  fd = activated_socket ();
  if (fd < 0)
    {
      fd = listen_unix (socket_path, &err);
      if (fd < 0)
        {
          cl_api_ctx_free (ctx, 0);
          return cl_error_report (&err, "cloisond");
        }
      own_socket = true;
    }
  ui_opts.assets_dir = ui_dir;
  cl_api_ui_new (&ui_opts, &console, &err);
  cl_api_ctx_set_ui (ctx, console);
  d = serve (fd, ctx, timeout, debug);
  if (d && listen_spec)
    {
      int tfd = listen_tcp (listen_spec, &tcp_url, &err);
      if (tfd < 0 || (tcp = serve (tfd, ctx, timeout, debug)) == NULL)
        {
          if (tfd >= 0)
            close (tfd);
          else
            cl_error_report (&err, "cloisond");
          MHD_stop_daemon (d);
          if (own_socket)
            unlink (socket_path);
          cl_api_ctx_free (ctx, 0);
          return 1;
        }
      cl_api_ui_set_base_url (console, tcp_url);
      fprintf (stderr, "cloisond: the web console is at %s/ui/\n", tcp_url);
    }
  if (d == NULL)
    {
      fprintf (stderr, "cloisond: could not start the HTTP server on `%s`\n", socket_path);
      cl_api_ctx_free (ctx, 0);
      return 1;
    }
  link = link_root (root, fd);
  fprintf (stderr, "cloisond: serving %s on %s\n", root,
           own_socket ? socket_path : "the socket systemd passed (fd 3)");

  for (;;)
    {
      struct pollfd p = { .fd = signal_pipe[0], .events = POLLIN };
      char b;
      if (poll (&p, 1, -1) > 0 && read (signal_pipe[0], &b, 1) == 1)
        break;
    }
  cl_info ("cloisond: stopping");
  cl_api_ctx_shutdown (ctx);
  for (int i = 0; i < 60 && __atomic_load_n (&open_streams, __ATOMIC_SEQ_CST) > 0; i++)
    usleep (50000);
  unlink_root (link, fd);
  if (tcp)
    MHD_stop_daemon (tcp);
  MHD_stop_daemon (d);
  if (own_socket)
    unlink (socket_path);
  /* operations still running are left to end with the process: the next
     start marks them failed */
  if (!cl_api_ctx_free (ctx, 10000))
    cl_warn ("cloisond: operations still running at exit");
  else
    cl_api_ui_free (console);
  return 0;
}
