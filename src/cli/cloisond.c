/* SPDX-License-Identifier: Apache-2.0 */
/* cloisond: serves the REST API (src/api/api.h) over HTTP on a Unix
   socket, and over TCP with TLS 1.3 and client certificates when asked
   (--listen, or core.https_address), with libmicrohttpd.  A thin front
   end: the sockets, HTTP framing and signals live here, every verb in the
   router; who may do what over TLS is the trust store's word
   (src/api/trust.h), asked for each request with the client
   certificate's fingerprint.

   One thread per connection: a request that waits (an operation's
   /wait, the event stream, plain or as a websocket) holds only its own
   thread, and a client that stalls is dropped after the connection
   timeout without slowing the others. */
#include "api/api.h"
#include "api/ui.h"
#include "api/tls.h"
#include "api/trust.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/json.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/util.h"
#include "container/container.h"
#include "manager/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* A daemon's own data: the Unix socket's, or the TLS listener's. */
struct server
{
  struct cl_api_ctx *ctx;
  bool tls;
};

/* ---- TLS clients: each connection's certificate, and revocation ---- */

/* TLS 1.3 only; the client certificate is asked for (MHD asks when given
   a trust list) but never checked against a CA: trust is its fingerprint
   in the store. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3"

struct tls_conn
{
  struct tls_conn *next, *prev;
  MHD_socket fd;
  bool looked;                     /* its certificate read */
  bool trusted;                    /* it was served as trusted: revoking it closes it */
  char fp[CL_API_FINGERPRINT_LEN]; /* "" when it sent none */
  char *pem;
};

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_conn *conns;
/* bumped when a certificate may have been revoked: open event streams
   then ask the store again */
static unsigned trust_gen;

static void
notify_connection (void *cls, struct MHD_Connection *con, void **socket_context,
                   enum MHD_ConnectionNotificationCode code)
{
  struct tls_conn *c = *socket_context;
  (void)cls;

  if (code == MHD_CONNECTION_NOTIFY_STARTED)
    {
      const union MHD_ConnectionInfo *ci
          = MHD_get_connection_info (con, MHD_CONNECTION_INFO_CONNECTION_FD);
      c = cl_xmalloc0 (sizeof *c);
      c->fd = ci ? ci->connect_fd : -1;
      pthread_mutex_lock (&conns_lock);
      c->next = conns;
      if (conns)
        conns->prev = c;
      conns = c;
      pthread_mutex_unlock (&conns_lock);
      *socket_context = c;
      return;
    }
  if (c == NULL)
    return;
  pthread_mutex_lock (&conns_lock);
  if (c->prev)
    c->prev->next = c->next;
  else
    conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  pthread_mutex_unlock (&conns_lock);
  free (c->pem);
  free (c);
  *socket_context = NULL;
}

/* The numeric address of our end of connection fd, in buf (NULL: none). */
static const char *
local_address (int fd, char *buf, size_t size)
{
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;

  if (fd < 0 || getsockname (fd, (struct sockaddr *)&sa, &len) < 0
      || getnameinfo ((struct sockaddr *)&sa, len, buf, size, NULL, 0, NI_NUMERICHOST) != 0)
    return NULL;
  return buf;
}

/* The connection's client certificate, read once (after the handshake). */
static struct tls_conn *
tls_peer (struct MHD_Connection *con)
{
  const union MHD_ConnectionInfo *ci
      = MHD_get_connection_info (con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  struct tls_conn *c = ci ? ci->socket_context : NULL;

  if (c && !c->looked)
    {
      const union MHD_ConnectionInfo *si
          = MHD_get_connection_info (con, MHD_CONNECTION_INFO_GNUTLS_SESSION);
      const gnutls_datum_t *certs = NULL;
      unsigned n = 0;

      if (si && si->tls_session)
        certs = gnutls_certificate_get_peers ((gnutls_session_t)si->tls_session, &n);
      pthread_mutex_lock (&conns_lock);
      if (certs && n > 0)
        {
          cl_api_tls_fingerprint_der (certs[0].data, certs[0].size, c->fp);
          c->pem = cl_api_tls_der_to_pem (certs[0].data, certs[0].size);
        }
      c->looked = true;
      pthread_mutex_unlock (&conns_lock);
    }
  return c;
}

/* Closes the connections of revoked clients: those with `fp` (NULL: each
   trusted one the store no longer knows). */
static void
close_revoked (struct cl_api_ctx *ctx, const char *fp)
{
  pthread_mutex_lock (&conns_lock);
  for (struct tls_conn *c = conns; c; c = c->next)
    if (c->trusted && *c->fp && c->fd >= 0
        && (fp ? strcmp (c->fp, fp) == 0 : cl_api_cert_access (ctx, c->fp) == CL_API_ACCESS_NONE))
      {
        cl_info ("cloisond: certificate %.16s... revoked: closing its connection", c->fp);
        shutdown (c->fd, SHUT_RDWR);
        c->trusted = false;
      }
  pthread_mutex_unlock (&conns_lock);
  __atomic_add_fetch (&trust_gen, 1, __ATOMIC_SEQ_CST);
}

static void
on_revoke (void *data, const char *fp)
{
  close_revoked (data, fp);
}

/* Revocations by another process (`cloison config trust remove` with no
   daemon between): the state database changed, the clients are checked. */
static bool sweeper_stop;

static void *
trust_sweeper (void *data)
{
  struct cl_api_ctx *ctx = data;
  while (!__atomic_load_n (&sweeper_stop, __ATOMIC_SEQ_CST))
    {
      usleep (250000);
      if (cl_api_trust_changed (ctx))
        close_revoked (ctx, NULL);
    }
  return NULL;
}

/* An event stream's client over TLS: still trusted?  Asked again only
   when trust_gen moved. */
struct stream_peer
{
  struct cl_api_ctx *ctx;
  char fp[CL_API_FINGERPRINT_LEN]; /* "" : the Unix socket */
  unsigned gen;
  bool session; /* a web console session's: no certificate to revoke */
};

static bool
stream_peer_revoked (struct stream_peer *p)
{
  unsigned gen = __atomic_load_n (&trust_gen, __ATOMIC_SEQ_CST);
  if (*p->fp == '\0' || p->session || gen == p->gen)
    return false;
  p->gen = gen;
  return cl_api_cert_access (p->ctx, p->fp) == CL_API_ACCESS_NONE;
}

static void
stream_peer_init (struct stream_peer *p, struct cl_api_ctx *ctx, const char *fp)
{
  p->ctx = ctx;
  snprintf (p->fp, sizeof p->fp, "%s", fp ? fp : "");
  p->gen = __atomic_load_n (&trust_gen, __ATOMIC_SEQ_CST);
}

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
  size_t len; /* bytes of the body received */
  bool started;
  bool too_big;
  /* an image upload: the body streamed to a file (api.h, cl_api_upload_*),
     never held; upload_error: writing it failed (the rest is dropped) */
  bool streaming;
  struct cl_api_upload *upload;
  char *upload_error;
};

static size_t body_limit = CL_API_BODY_LIMIT_DEFAULT;
static uint64_t upload_limit = CL_API_UPLOAD_LIMIT_DEFAULT;

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
  /* an upload no operation took (refused, or the client left mid-body)
     is removed here */
  if (r->upload)
    cl_api_upload_unref (r->upload);
  free (r->upload_error);
  free (r);
  *state = NULL;
}

struct stream
{
  struct cl_api_events *ev;
  struct stream_peer peer;
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

  if (stream_peer_revoked (&s->peer))
    return MHD_CONTENT_READER_END_WITH_ERROR;
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

struct ws
{
  struct cl_api_events *ev;
  struct stream_peer peer;
  MHD_socket sock;
  struct MHD_UpgradeResponseHandle *urh;
};

/* Runs the stream: events as text frames, a ping answered, a close ends
   it, as do the server's shutdown and the revocation of the client's
   certificate (close 1008). */
static void *
ws_loop (void *data)
{
  struct ws *w = data;
  int sock = w->sock;

  fcntl (sock, F_SETFL, fcntl (sock, F_GETFL) & ~O_NONBLOCK);
  for (;;)
    {
      struct pollfd p = { .fd = sock, .events = POLLIN };
      char *line = NULL;
      size_t len;
      int r;

      if (stream_peer_revoked (&w->peer))
        {
          cl_api_ws_send (sock, 8, "\x03\xf0revoked", 9); /* 1008: policy violation */
          break;
        }
      if (poll (&p, 1, 0) > 0)
        {
          /* the client only sends control frames to an event stream */
          cleanup_free char *payload = NULL;
          int op = cl_api_ws_recv (sock, &payload, &len, 125);
          if (op == 9 && cl_api_ws_send (sock, 10, payload, len) == 0)
            continue; /* ping: pong */
          if (op == 8)
            cl_api_ws_send (sock, 8, payload, len < 2 ? len : 2);
          if (op < 0 || op == 8 || op < 8)
            break; /* gone, closed, or data we do not take */
          continue;
        }
      r = cl_api_events_next (w->ev, 500, &line);
      if (r < 0)
        {
          cl_api_ws_send (sock, 8, "\x03\xe9", 2); /* 1001: going away */
          break;
        }
      if (r == 1)
        {
          r = cl_api_ws_send (sock, 1, line, strlen (line) - 1); /* without its '\n' */
          free (line);
          if (r < 0)
            break;
        }
    }
  cl_api_events_free (w->ev);
  MHD_upgrade_action (w->urh, MHD_UPGRADE_ACTION_CLOSE);
  free (w);
  __atomic_sub_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

#define TLS_FORWARD_BUF (64u << 10)

/* Sends all of data on the TLS session (its socket non-blocking). */
static int
tls_send_all (gnutls_session_t s, int net, const char *p, size_t len)
{
  while (len > 0)
    {
      ssize_t n = gnutls_record_send (s, p, len);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        {
          struct pollfd w = { .fd = net, .events = POLLOUT };
          /* (the same arguments again: gnutls keeps what it encrypted) */
          int r = poll (&w, 1, 30000);
          if (r == 0 || (r < 0 && errno != EINTR))
            return -1; /* 30 s without room: the client is gone */
          continue;
        }
      if (n <= 0)
        return -1;
      p += n;
      len -= (size_t)n;
    }
  return 0;
}

/* Forwards between an upgraded connection's TLS session (on its socket
   `net`) and `app`, until either side ends.  Writes to app never block:
   the loop behind it may be writing to us at the same time. */
static void
tls_forward (gnutls_session_t s, int net, int app)
{
  cleanup_free char *in = cl_xmalloc0 (TLS_FORWARD_BUF), *out = cl_xmalloc0 (TLS_FORWARD_BUF);
  size_t in_len = 0, in_off = 0; /* from the network, not yet given to app */
  bool net_ready = false;

  fcntl (app, F_SETFL, fcntl (app, F_GETFL) | O_NONBLOCK);
  for (;;)
    {
      if (in_off < in_len)
        {
          ssize_t n = write (app, in + in_off, in_len - in_off);
          if (n < 0 && errno != EAGAIN && errno != EINTR)
            break;
          if (n > 0 && (in_off += (size_t)n) == in_len)
            in_off = in_len = 0;
        }
      /* what the TLS layer holds first: poll sees only the socket */
      if (in_len == 0 && (net_ready || gnutls_record_check_pending (s) > 0))
        {
          ssize_t n = gnutls_record_recv (s, in, TLS_FORWARD_BUF);
          net_ready = false;
          if (n > 0)
            {
              in_len = (size_t)n;
              continue;
            }
          if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED)
            break; /* the client's end, or a TLS error */
        }
      struct pollfd p[2] = { { .fd = net, .events = in_len ? 0 : POLLIN },
                             { .fd = app, .events = POLLIN | (in_len ? POLLOUT : 0) } };
      if (poll (p, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      net_ready = p[0].revents != 0;
      if (p[1].revents & POLLIN)
        {
          ssize_t n = read (app, out, TLS_FORWARD_BUF);
          if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            break;
          if (n > 0 && tls_send_all (s, net, out, (size_t)n) < 0)
            break;
        }
      else if (p[1].revents & (POLLHUP | POLLERR))
        break;
    }
  shutdown (app, SHUT_RDWR);
}

struct upgraded
{
  void *(*loop) (void *);
  void *data;
  int fd; /* the loop's end of the socket pair */
};

static void *
upgraded_main (void *p)
{
  struct upgraded u = *(struct upgraded *)p;

  free (p);
  u.loop (u.data);
  close (u.fd);
  return NULL;
}

/* Runs an upgraded connection's loop on *sock: on the Unix socket here
   (the connection's own thread: thread per connection).  Over TLS MHD
   would forward between the TLS session and *sock in this thread once we
   return, but its libmicrohttpd (0.9.75) does so through 4 bytes a
   direction (the connection's memory pool is spent by then): 0.5 MB/s,
   which no console, exec or migration stream can live with.  So the
   loop gets a thread of its own and one end of a socket pair in *sock,
   and this thread forwards between the session and the other end
   (64 KiB at a time), then returns: MHD finds the upgrade closed by
   then, or once the loop ends.  false when that thread could not
   start. */
static bool
run_upgraded (void *(*loop) (void *), void *data, struct MHD_Connection *con, const char *extra,
              size_t extra_len, MHD_socket *sock)
{
  const union MHD_ConnectionInfo *tls
      = MHD_get_connection_info (con, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  const union MHD_ConnectionInfo *net
      = MHD_get_connection_info (con, MHD_CONNECTION_INFO_CONNECTION_FD);
  struct upgraded *u;
  pthread_t t;
  pthread_attr_t attr;
  int sp[2], r;

  if (tls == NULL || tls->tls_session == NULL || net == NULL)
    {
      loop (data);
      return true;
    }
  /* what the loop writes goes out at once: MHD leaves the socket as it
     sent its response (Nagle on, maybe corked), and a stream's small
     messages (a migration's `running`, a keystroke's echo) would wait
     for the peer's delayed ACK, up to 40 ms each */
  if (setsockopt (net->connect_fd, IPPROTO_TCP, TCP_CORK, &(int){ 0 }, sizeof (int)) < 0
      || setsockopt (net->connect_fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof (int)) < 0)
    {
      /* a socket of another kind: nothing to change */
    }
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
    return false;
  u = cl_xmalloc0 (sizeof *u);
  *u = (struct upgraded){ .loop = loop, .data = data, .fd = sp[0] };
  *sock = sp[0];
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize (&attr, 512u << 10);
  r = pthread_create (&t, &attr, upgraded_main, u);
  pthread_attr_destroy (&attr);
  if (r != 0)
    {
      free (u);
      close (sp[0]);
      close (sp[1]);
      return false;
    }
  /* what the client sent past its request's head */
  if (extra_len == 0 || cl_write_all (sp[1], extra, extra_len) == 0)
    tls_forward (tls->tls_session, net->connect_fd, sp[1]);
  close (sp[1]);
  return true;
}

/* The event stream's websocket (run_upgraded: where it runs). */
static void
ws_run (void *cls, struct MHD_Connection *con, void *state, const char *extra, size_t extra_len,
        MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
  struct ws *w = cls;
  (void)state;

  w->sock = sock;
  w->urh = urh;
  if (!run_upgraded (ws_loop, w, con, extra, extra_len, &w->sock))
    {
      cl_warn ("cloisond: no thread for an event websocket");
      cl_api_events_free (w->ev);
      MHD_upgrade_action (urh, MHD_UPGRADE_ACTION_CLOSE);
      free (w);
      __atomic_sub_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
    }
}

/* An exec's or a console's websocket, or a migration stream's
   (run_upgraded: where it runs). */
struct chan
{
  struct cl_api_channel *ch;
  MHD_socket sock;
  struct MHD_UpgradeResponseHandle *urh;
};

static void *
chan_loop (void *data)
{
  struct chan *c = data;

  fcntl (c->sock, F_SETFL, fcntl (c->sock, F_GETFL) & ~O_NONBLOCK);
  cl_api_channel_run (c->ch, c->sock);
  MHD_upgrade_action (c->urh, MHD_UPGRADE_ACTION_CLOSE);
  free (c);
  __atomic_sub_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void
channel_run (void *cls, struct MHD_Connection *con, void *state, const char *extra,
             size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
  struct chan *c = cls;
  (void)state;

  c->sock = sock;
  c->urh = urh;
  if (!run_upgraded (chan_loop, c, con, extra, extra_len, &c->sock))
    {
      cl_warn ("cloisond: no thread for a websocket");
      cl_api_channel_free (c->ch);
      MHD_upgrade_action (urh, MHD_UPGRADE_ACTION_CLOSE);
      free (c);
      __atomic_sub_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
    }
}

/* Is this request a websocket handshake? */
static bool
ws_requested (struct MHD_Connection *con)
{
  const char *up = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
  return up && strcasecmp (up, "websocket") == 0
         && MHD_lookup_connection_value (con, MHD_HEADER_KIND, "Sec-WebSocket-Key");
}

/* A websocket handshake on the event stream or a channel: the 101
   response, else NULL (an event stream is then served as plain HTTP). */
static struct MHD_Response *
ws_response (struct MHD_Connection *con, struct cl_api_response *resp,
             const struct stream_peer *peer)
{
  const char *key = MHD_lookup_connection_value (con, MHD_HEADER_KIND, "Sec-WebSocket-Key");
  cleanup_free char *accept = NULL;
  struct MHD_Response *r;
  struct ws *w;

  if (!ws_requested (con) || cl_api_ws_accept (key, &accept) < 0)
    return NULL;
  /* the stream is the handler's from here; if the client leaves before
     the switch, the handler never runs and the small struct is lost */
  if (resp->channel)
    {
      struct chan *c = cl_xmalloc0 (sizeof *c);
      c->ch = resp->channel;
      r = MHD_create_response_for_upgrade (channel_run, c);
      if (r == NULL)
        free (c);
    }
  else
    {
      w = cl_xmalloc0 (sizeof *w);
      w->ev = resp->events;
      w->peer = *peer;
      r = MHD_create_response_for_upgrade (ws_run, w);
      if (r == NULL)
        free (w);
    }
  if (r == NULL)
    return NULL;
  __atomic_add_fetch (&open_streams, 1, __ATOMIC_SEQ_CST);
  resp->events = NULL;
  resp->channel = NULL;
  resp->status = MHD_HTTP_SWITCHING_PROTOCOLS;
  resp->content_type = NULL;
  MHD_add_response_header (r, MHD_HTTP_HEADER_UPGRADE, "websocket");
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
  MHD_add_response_header (r, "Sec-WebSocket-Accept", accept);
  return r;
}

static enum MHD_Result
send_response (struct MHD_Connection *con, struct cl_api_response *resp,
               const struct stream_peer *peer)
{
  struct MHD_Response *r = NULL;
  enum MHD_Result ret;

  if ((resp->events || resp->channel) && (r = ws_response (con, resp, peer)) != NULL)
    ;
  else if (resp->channel)
    return MHD_NO; /* the router checked the handshake: out of memory */
  else if (resp->events)
    {
      struct stream *s = cl_xmalloc0 (sizeof *s);
      s->ev = resp->events;
      s->peer = *peer;
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

/* An error envelope of the server's own (before the router). */
static enum MHD_Result
send_error (struct MHD_Connection *con, int status, json_t *message)
{
  struct cl_api_response resp = { .status = status, .content_type = "application/json" };
  enum MHD_Result ret;

  resp.json
      = json_pack ("{s:s, s:i, s:o}", "type", "error", "error_code", status, "error", message);
  ret = send_response (con, &resp, &(struct stream_peer){ 0 });
  cl_api_response_clear (&resp);
  return ret;
}

static enum MHD_Result
send_too_big (struct MHD_Connection *con, struct request *r, uint64_t len)
{
  if (r->streaming)
    return send_error (con, 413,
                       json_sprintf ("image upload of %llu bytes or more: the limit is %llu"
                                     " (cloisond --upload-limit)",
                                     (unsigned long long)len, (unsigned long long)upload_limit));
  return send_error (con, 413,
                     json_sprintf ("request body of %llu bytes or more: the limit is %zu",
                                   (unsigned long long)len, body_limit));
}

/* May this request's body stream to a file?  An image upload from a
   client that may write (not an untrusted or read-only TLS client: those
   get their 403 from the router, their body held under --body-limit). */
static bool
upload_allowed (struct server *srv, struct MHD_Connection *con, const char *method, const char *uri)
{
  const char *ct = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  cleanup_free char *path = cl_xstrdup (uri);
  struct tls_conn *tc;

  path[strcspn (path, "?")] = '\0';
  if (!cl_api_upload_wanted (method, path, ct))
    return false;
  if (!srv->tls)
    return true;
  tc = tls_peer (con);
  return tc && *tc->fp && cl_api_cert_access (srv->ctx, tc->fp) == CL_API_ACCESS_FULL;
}

/* One piece of an upload: to its file, or dropped once over the cap (the
   file removed at once) or after a write failed. */
static void
upload_piece (struct request *r, const char *data, size_t n)
{
  cl_error_t err = NULL;

  if (r->upload && r->len + n > upload_limit)
    {
      r->too_big = true;
      cl_api_upload_unref (r->upload);
      r->upload = NULL;
    }
  if (r->upload && cl_api_upload_write (r->upload, data, n, &err) < 0)
    {
      r->upload_error = cl_xstrdup (err->msg);
      cl_error_release (&err);
      cl_api_upload_unref (r->upload);
      r->upload = NULL;
    }
}

/* What the console's gate needs to know of a request. */
static void
http_of (struct MHD_Connection *con, struct cl_api_ctx *ctx, const struct cl_api_request *req,
         struct cl_api_http *h)
{
  memset (h, 0, sizeof *h);
  h->remote = h->tls = req->remote;
  h->has_cert = req->peer_fingerprint != NULL;
  h->cert_trusted
      = h->has_cert && cl_api_cert_access (ctx, req->peer_fingerprint) != CL_API_ACCESS_NONE;
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
  struct server *srv = cls;
  struct cl_api_ctx *ctx = srv->ctx;
  struct request *r = *state;
  struct cl_api_response resp;
  struct cl_api_request req = { .method = method };
  struct stream_peer peer = { 0 };
  struct cl_api_http http;
  struct tls_conn *tc = NULL;
  char local[NI_MAXHOST];
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
      if (upload_allowed (srv, con, method, r->uri))
        {
          cl_error_t err = NULL;
          char *query = strchr (r->uri, '?');
          r->streaming = true;
          if (cl && strtoull (cl, NULL, 10) > upload_limit)
            return send_too_big (con, r, strtoull (cl, NULL, 10));
          if (cl_api_upload_begin (ctx, query ? query + 1 : NULL, &r->upload, &err) < 0)
            {
              r->upload_error = cl_xstrdup (err->msg);
              cl_error_release (&err);
            }
          return MHD_YES;
        }
      /* refused before it is read */
      if (cl && strtoull (cl, NULL, 10) > body_limit)
        return send_too_big (con, r, strtoull (cl, NULL, 10));
      return MHD_YES;
    }
  if (*upload_size && r->streaming)
    {
      upload_piece (r, upload, *upload_size);
      r->len += *upload_size;
      *upload_size = 0;
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
    return send_too_big (con, r, r->len);
  if (r->streaming)
    {
      cl_error_t err = NULL;
      if (r->upload && cl_api_upload_end (r->upload, &err) < 0)
        {
          r->upload_error = cl_xstrdup (err->msg);
          cl_error_release (&err);
        }
      if (r->upload_error)
        return send_error (con, 500, json_string (r->upload_error));
      req.upload = r->upload;
      req.digest = MHD_lookup_connection_value (con, MHD_HEADER_KIND, "X-Cloison-Digest");
    }
  path = cl_xstrdup (r->uri);
  q = strchr (path, '?');
  if (q)
    *q++ = '\0';
  req.path = path;
  req.query = q;
  req.body = r->body;
  req.body_len = r->streaming ? 0 : r->len; /* an upload's is in its file */
  req.if_match = MHD_lookup_connection_value (con, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH);
  req.websocket = ws_requested (con);
  if (srv->tls)
    {
      tc = tls_peer (con);
      req.remote = true;
      req.peer_fingerprint = tc && *tc->fp ? tc->fp : NULL;
      req.peer_certificate = tc ? tc->pem : NULL;
      req.local_address = tc ? local_address (tc->fd, local, sizeof local) : NULL;
      stream_peer_init (&peer, ctx, "-"); /* a TLS client, even with no certificate */
      if (req.peer_fingerprint)
        stream_peer_init (&peer, ctx, req.peer_fingerprint);
    }
  http_of (con, ctx, &req, &http);
  /* the console's files and sessions, and who may pass over TLS */
  if (!cl_api_ui_gate (console, &req, &http, &resp))
    {
      /* a console session's streams are not a certificate's: no
         revocation of one ends them */
      peer.session = req.console_session;
      cl_api_handle (ctx, &req, &resp);
    }
  /* an upload the handler did not keep (refused: a bad digest, say) is
     removed before the client hears why */
  if (r->upload)
    {
      cl_api_upload_unref (r->upload);
      r->upload = NULL;
    }
  cl_debug ("%s %s%s%.16s: %d", method, r->uri, tc ? " from " : "",
            req.peer_fingerprint ? req.peer_fingerprint
            : tc                 ? "(no certificate)"
                                 : "",
            resp.status);
  /* served as trusted: its connections close when it is revoked */
  if (tc && req.peer_fingerprint && resp.status != 403
      && cl_api_cert_access (ctx, req.peer_fingerprint) != CL_API_ACCESS_NONE)
    {
      pthread_mutex_lock (&conns_lock);
      tc->trusted = true;
      pthread_mutex_unlock (&conns_lock);
    }
  ret = send_response (con, &resp, &peer);
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

/* The daemon's claim on its socket: a POSIX record lock on SOCKET.lock,
   held for the daemon's life.  The kernel drops it when the daemon dies
   (kill -9 included), and a forked child does not inherit it, so a socket
   file whose lock is free is stale whatever a child of the dead daemon
   still holds, and a daemon that is merely slow to answer is not taken
   for dead. */
static int
claim_socket (const char *path, cl_error_t *err)
{
  cleanup_free char *lock = cl_strdup_printf ("%s.lock", path);
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  int fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  if (fd < 0)
    return cl_error_errno (err, "open `%s`", lock);
  if (fcntl (fd, F_SETLK, &fl) < 0)
    {
      int e = errno;
      close (fd);
      if (e == EAGAIN || e == EACCES)
        return cl_error_make (err, 0, "another cloisond serves `%s` (it holds `%s`)", path, lock);
      return cl_error_make (err, e, "lock `%s`", lock);
    }
  return fd; /* kept open until the daemon exits */
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
  if (claim_socket (path, err) < 0)
    return -1;
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cl_error_errno (err, "socket");
  /* a socket file whose lock was free: left by a daemon that was killed */
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

/* ---- the exec helper ---- */

/* `cloisond --exec-helper JOB`: runs an exec, a console or an attached
   run (cl_mgr_instance_run) for the API
   (src/api/api_exec.c spawns it with the command's stdio), in a process of its
   own: the manager's exec waits, forwards signals and may take the
   terminal, which the daemon's threads must not.  The result goes to fd 3:
   "X<exit code>", or "E<message>". */
static int
exec_helper (int argc, char **argv)
{
  cleanup_json json_t *job = NULL;
  struct cl_manager *m = NULL;
  cl_error_t err = NULL;
  json_error_t je;
  json_t *cmd, *env, *v;
  char **cargv = NULL;
  const char **cenv = NULL;
  size_t i;
  int code = 0, r;

  if (argc != 3 || (job = json_loads (argv[2], 0, &je)) == NULL)
    {
      fprintf (stderr, "cloisond --exec-helper: expected one JSON job\n");
      return 2;
    }
  /* CVE-2019-5736: from here on this process enters containers */
  r = cl_ctr_ensure_sealed_exe (argc, argv, &err);
  cmd = json_object_get (job, "command");
  env = json_object_get (job, "env");
  cargv = cl_xmalloc0 ((json_array_size (cmd) + 1) * sizeof *cargv);
  json_array_foreach (cmd, i, v) cargv[i] = (char *)json_string_value (v);
  cenv = cl_xmalloc0 ((json_array_size (env) + 1) * sizeof *cenv);
  json_array_foreach (env, i, v) cenv[i] = json_string_value (v);
  if (r == 0)
    r = cl_mgr_open (json_string_value (json_object_get (job, "root")), &m, &err);
  if (r == 0 && json_object_get (job, "run"))
    {
      /* an attached run (POST /1.0/instances "attach"): the workload's
         stdio are ours */
      struct cl_launch_opts o;
      r = cl_api_launch_opts (json_object_get (job, "run"), &o, &err);
      if (r == 0)
        r = cl_mgr_instance_run (m, &o, &code, &err);
      cl_api_launch_opts_clear (&o);
    }
  else if (r == 0 && json_is_true (json_object_get (job, "console")))
    r = cl_mgr_instance_console (m, json_string_value (json_object_get (job, "name")), &code, &err);
  else if (r == 0)
    {
      struct cl_exec_spec spec = {
        .argv = cargv,
        .env = cenv,
        .n_env = json_array_size (env),
        .tty = json_is_true (json_object_get (job, "tty")) ? CL_EXEC_TTY_ON : CL_EXEC_TTY_OFF,
        .cwd = json_string_value (json_object_get (job, "cwd")),
        .user = json_string_value (json_object_get (job, "user")),
      };
      r = cl_mgr_instance_exec_spec (m, json_string_value (json_object_get (job, "name")), &spec,
                                     &code, &err);
    }
  if (m)
    cl_mgr_close (m);
  free (cargv);
  free (cenv);
  if (r < 0)
    {
      dprintf (3, "E%s", err->msg);
      cl_error_release (&err);
      return 1;
    }
  dprintf (3, "X%d", code);
  return code;
}

/* As many descriptors as the hard limit allows: each connection holds
   one, and a thousand idle clients must not starve the others. */
static void
raise_nofile (void)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &rl) < 0)
        cl_warn ("cloisond: raise the open files limit to %llu: %s",
                 (unsigned long long)rl.rlim_max, strerror (errno));
    }
}

/* The TCP socket of --listen / core.https_address. */
static int
listen_tcp (const char *address, cl_error_t *err)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
  cleanup_free char *host = NULL;
  char port_s[16];
  int port, r, fd = -1, saved = 0;

  if (cl_api_parse_address (address, "listen address", &host, &port, err) < 0)
    return -1;
  snprintf (port_s, sizeof port_s, "%d", port);
  /* every address: the IPv6 wildcard, which takes IPv4 too */
  hints.ai_family = host ? AF_UNSPEC : AF_INET6;
  r = getaddrinfo (host, port_s, &hints, &res);
  if (r != 0 && host == NULL)
    {
      hints.ai_family = AF_INET;
      r = getaddrinfo (NULL, port_s, &hints, &res);
    }
  if (r != 0)
    return cl_error_make (err, 0, "listen address `%s`: %s", address, gai_strerror (r));
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next)
    {
      int one = 1, zero = 0;
      fd = socket (a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0)
        {
          saved = errno;
          continue;
        }
      setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (a->ai_family == AF_INET6)
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      if (bind (fd, a->ai_addr, a->ai_addrlen) < 0 || listen (fd, 1024) < 0)
        {
          saved = errno;
          close (fd);
          fd = -1;
        }
    }
  freeaddrinfo (res);
  if (fd < 0)
    return cl_error_make (err, saved, "listen on `%s`", address);
  return fd;
}

/* The TLS listener: the server's certificate (made on first start in
   ROOT/tls), TLS 1.3, client certificates asked for. */
static struct MHD_Daemon *
start_tls (struct server *srv, const char *root, const char *address, unsigned timeout, int debug,
           cl_error_t *err)
{
  static char *crt, *key; /* MHD keeps pointers to them */
  struct MHD_Daemon *d;
  int fd;

  if (cl_api_tls_server_keypair (root, &crt, &key, err) < 0)
    return NULL;
  fd = listen_tcp (address, err);
  if (fd < 0)
    return NULL;
  d = MHD_start_daemon (
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL
          | MHD_ALLOW_UPGRADE | MHD_USE_TLS | (debug ? MHD_USE_ERROR_LOG : 0),
      0, NULL, NULL, on_request, srv, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_HTTPS_MEM_CERT, crt,
      MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_TRUST, crt, MHD_OPTION_HTTPS_PRIORITIES,
      TLS_PRIORITIES, MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
      MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL,
      MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 4096u,
      MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512u << 10), MHD_OPTION_END);
  if (d == NULL)
    {
      close (fd);
      cl_error_make (err, 0, "could not start the TLS server on `%s`", address);
    }
  return d;
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

/* Before the context goes: the listener, then the sweeper that uses it. */
static void
stop_tls (struct MHD_Daemon *d, pthread_t *sweeper)
{
  if (d)
    MHD_stop_daemon (d);
  if (sweeper)
    {
      __atomic_store_n (&sweeper_stop, true, __ATOMIC_SEQ_CST);
      pthread_join (*sweeper, NULL);
    }
}

/* The console's address for login links: https://LISTEN, with this
   host's name for an address that is every address (":8443"). */
static void
console_url (const char *listen_address)
{
  char host[256] = "localhost";
  cleanup_free char *url = NULL;

  if (listen_address[0] == ':')
    gethostname (host, sizeof host - 1);
  url = listen_address[0] == ':' ? cl_strdup_printf ("https://%s%s", host, listen_address)
                                 : cl_strdup_printf ("https://%s", listen_address);
  cl_api_ui_set_base_url (console, url);
  fprintf (stderr, "cloisond: the web console is at %s/ui/ (cloison ui-link)\n", url);
}

static void
usage (FILE *out)
{
  fprintf (out, "usage: cloisond [--root DIR] [--socket PATH] [--listen ADDR:PORT]"
                " [--timeout SECONDS] [--body-limit BYTES] [--debug]\n"
                "                [--upload-limit BYTES (image uploads; default 10G)]\n"
                "                [--ui-session-timeout SECONDS]\n"
                "       cloisond --routes   print the API's routes\n"
                "Serves the cloison REST API on a Unix socket (default " DEFAULT_SOCKET "),\n"
                "and with TLS on ADDR:PORT (default: the setting core.https_address),\n"
                "where the web console is served at /ui/ (cloison ui-link).\n");
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "root", required_argument, NULL, 'r' },
    { "socket", required_argument, NULL, 's' },
    { "listen", required_argument, NULL, 'l' },
    { "timeout", required_argument, NULL, 't' },
    { "body-limit", required_argument, NULL, 'b' },
    { "upload-limit", required_argument, NULL, 'L' },
    { "routes", no_argument, NULL, 'R' },
    { "debug", no_argument, NULL, 'd' },
    { "ui-session-timeout", required_argument, NULL, 'U' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'v' },
    { NULL, 0, NULL, 0 },
  };
  const char *root_flag = NULL, *socket_path = DEFAULT_SOCKET;
  cleanup_free char *listen_address = NULL;
  struct cl_api_ui_options ui_opts = { 0 };
  cleanup_free char *ui_dir = cl_piece_path (CL_PIECE_UI);
  char root[PATH_MAX], *link = NULL;
  struct cl_api_options api_opts = { 0 };
  struct cl_api_ctx *ctx = NULL;
  struct MHD_Daemon *d, *tls_d = NULL;
  struct server unix_srv = { 0 }, tls_srv = { .tls = true };
  pthread_t sweeper;
  bool sweeper_started = false;
  struct sigaction sa = { .sa_handler = on_signal };
  cl_error_t err = NULL;
  unsigned timeout = 30;
  int c, fd, debug = 0;
  bool own_socket = false;
  char self[4096];
  ssize_t self_len;

  if (argc > 1 && strcmp (argv[1], "--exec-helper") == 0)
    return exec_helper (argc, argv);
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (c)
      {
      case 'r':
        root_flag = optarg;
        break;
      case 's':
        socket_path = optarg;
        break;
      case 'l':
        {
          cleanup_free char *host = NULL;
          int port;
          if (cl_api_parse_address (optarg, "--listen", &host, &port, &err) < 0)
            return cl_error_report (&err, "cloisond");
          free (listen_address);
          listen_address = cl_xstrdup (optarg);
          break;
        }
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
      case 'L':
        if (cl_parse_size (optarg, "--upload-limit", &upload_limit, &err) < 0)
          return cl_error_report (&err, "cloisond");
        break;
      case 'R':
        for (size_t i = 0; cl_api_route (i); i++)
          printf ("%-6s %s\n", cl_api_route (i)->method, cl_api_route (i)->path);
        return 0;
      case 'd':
        debug = 1;
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
  raise_nofile ();
  /* exec and console run in `cloisond --exec-helper` processes */
  self_len = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (self_len > 0)
    {
      self[self_len] = '\0';
      api_opts.exec_helper = self;
    }
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
  unix_srv.ctx = tls_srv.ctx = ctx;
  if (listen_address == NULL
      && cl_api_config_get (ctx, "core.https_address", &listen_address, &err) < 0)
    {
      cl_api_ctx_free (ctx, 0);
      return cl_error_report (&err, "cloisond");
    }
  /* events for what the API does not do itself (a workload that exits,
     the CLI) */
  if (cl_api_watch_start (ctx, 1000, &err) < 0)
    {
      cl_warn ("cloisond: no events for changes made outside the API: %s", err->msg);
      cl_error_release (&err);
    }
  ui_opts.assets_dir = ui_dir;
  cl_api_ui_new (&ui_opts, &console, &err);
  cl_api_ctx_set_ui (ctx, console);
  /* TLS first: once the socket answers, everything is served */
  if (listen_address)
    {
      tls_d = start_tls (&tls_srv, root, listen_address, timeout, debug, &err);
      if (tls_d == NULL)
        {
          cl_api_ctx_free (ctx, 0);
          return cl_error_report (&err, "cloisond");
        }
      console_url (listen_address);
      cl_api_set_revoke_hook (ctx, on_revoke, ctx);
      cl_api_trust_changed (ctx);
      sweeper_started = pthread_create (&sweeper, NULL, trust_sweeper, ctx) == 0;
    }
  fd = activated_socket ();
  if (fd < 0)
    {
      fd = listen_unix (socket_path, &err);
      if (fd < 0)
        {
          stop_tls (tls_d, sweeper_started ? &sweeper : NULL);
          cl_api_ctx_free (ctx, 0);
          return cl_error_report (&err, "cloisond");
        }
      own_socket = true;
    }
  d = MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                            | MHD_USE_POLL | MHD_ALLOW_UPGRADE | (debug ? MHD_USE_ERROR_LOG : 0),
                        0, NULL, NULL, on_request, &unix_srv, MHD_OPTION_LISTEN_SOCKET, fd,
                        MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_URI_LOG_CALLBACK,
                        uri_logger, NULL, MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
                        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_THREAD_STACK_SIZE,
                        (size_t)(512u << 10), MHD_OPTION_END);
  if (d == NULL)
    {
      fprintf (stderr, "cloisond: could not start the HTTP server on `%s`\n", socket_path);
      stop_tls (tls_d, sweeper_started ? &sweeper : NULL);
      cl_api_ctx_free (ctx, 0);
      return 1;
    }
  link = link_root (root, fd);
  fprintf (stderr, "cloisond: serving %s on %s%s%s\n", root,
           own_socket ? socket_path : "the socket systemd passed (fd 3)",
           listen_address ? " and with TLS on " : "", listen_address ? listen_address : "");

  /* from now on, what the daemon logs is a `logging` event too */
  if (cl_api_logging_events_start (ctx, &err) < 0)
    {
      cl_warn ("cloisond: no logging events: %s", err->msg);
      cl_error_release (&err);
    }
  for (;;)
    {
      struct pollfd p = { .fd = signal_pipe[0], .events = POLLIN };
      char b;
      if (poll (&p, 1, -1) > 0 && read (signal_pipe[0], &b, 1) == 1)
        break;
    }
  cl_info ("cloisond: stopping");
  cl_api_logging_events_stop ();
  cl_api_ctx_shutdown (ctx);
  for (int i = 0; i < 60 && __atomic_load_n (&open_streams, __ATOMIC_SEQ_CST) > 0; i++)
    usleep (50000);
  stop_tls (tls_d, sweeper_started ? &sweeper : NULL);
  unlink_root (link, fd);
  MHD_stop_daemon (d);
  if (own_socket)
    {
      cleanup_free char *lock = cl_strdup_printf ("%s.lock", socket_path);
      unlink (socket_path);
      unlink (lock); /* still held: a daemon starting now takes a new one */
    }
  /* operations still running are left to end with the process: the next
     start marks them failed */
  if (!cl_api_ctx_free (ctx, 10000))
    cl_warn ("cloisond: operations still running at exit");
  else
    cl_api_ui_free (console);
  return 0;
}
