/* SPDX-License-Identifier: Apache-2.0 */
/* A live move's migration stream through the daemons' TLS API
   (docs/move.md "The stream"): the two VMMs speak their own protocol, but
   each to its daemon on the loopback, and the daemons carry the bytes as
   binary websocket frames of GET /1.0/instances/NAME/migration?token=T,
   over the mover's TLS connection to the destination.  So the stream is
   encrypted and authenticated as every API call is, and the destination
   opens no port of its own.

   A zero-length binary frame is the end of one direction (the peer's
   shutdown of its writing side); a close frame, or the connection's end,
   ends both.

   Destination: the receive offers its VMM's loopback address under the
   one-time token (cl_api_tunnel_offer); the route's channel connects to
   it once and relays.  Source: cl_api_tunnel_open opens the websocket and
   listens on the loopback for this host's VMM, relaying in a thread. */
#include "api/api_internal.h"
#include "api/remote.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* a frame's payload at most: one read of the VMM's side */
#define TUNNEL_CHUNK (256u << 10)

int
cl_api_tcp_connect (const char *uri)
{
  const char *hp = uri + 4, *colon = strrchr (hp, ':');
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
  cleanup_free char *host = NULL;
  int fd;

  if (strncmp (uri, "tcp:", 4) != 0 || colon == NULL)
    return -1;
  host = cl_strdup_printf ("%.*s", (int)(colon - hp), hp);
  if (host[0] == '[' && host[strlen (host) - 1] == ']')
    {
      memmove (host, host + 1, strlen (host));
      host[strlen (host) - 1] = '\0';
    }
  if (getaddrinfo (host, colon + 1, &hints, &res) != 0)
    return -1;
  fd = socket (res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect (fd, res->ai_addr, res->ai_addrlen) < 0)
    {
      close (fd);
      fd = -1;
    }
  freeaddrinfo (res);
  return fd;
}

/* ---- the destination's side ---- */

struct offer
{
  struct offer *next;
  char *name, *token, *uri;
  bool claimed;
};

static pthread_mutex_t offers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct offer *offers;

void
cl_api_tunnel_offer (const char *name, const char *token, const char *uri)
{
  struct offer *o = cl_xmalloc0 (sizeof *o);
  o->name = cl_xstrdup (name);
  o->token = cl_xstrdup (token);
  o->uri = cl_xstrdup (uri);
  pthread_mutex_lock (&offers_lock);
  o->next = offers;
  offers = o;
  pthread_mutex_unlock (&offers_lock);
}

void
cl_api_tunnel_withdraw (const char *token)
{
  pthread_mutex_lock (&offers_lock);
  for (struct offer **p = &offers; *p; p = &(*p)->next)
    if (strcmp ((*p)->token, token) == 0)
      {
        struct offer *o = *p;
        *p = o->next;
        free (o->name);
        free (o->token);
        free (o->uri);
        free (o);
        break;
      }
  pthread_mutex_unlock (&offers_lock);
}

struct cl_api_channel_tunnel
{
  struct api_channel_base base; /* first */
  char *uri;
};

static void
tunnel_free (struct cl_api_channel *ch)
{
  struct cl_api_channel_tunnel *t = (struct cl_api_channel_tunnel *)ch;
  free (t->uri);
  free (t);
}

/* Relays between the upgraded socket `ws` (the source's frames, masked)
   and this host's VMM until both directions ended or either side is
   gone. */
static void
relay_server (int ws, int vmm)
{
  cleanup_free char *buf = cl_xmalloc0 (TUNNEL_CHUNK);
  bool in_done = false, out_done = false;

  while (!(in_done && out_done))
    {
      struct pollfd p[2] = { { .fd = in_done ? -1 : ws, .events = POLLIN },
                             { .fd = out_done ? -1 : vmm, .events = POLLIN } };
      if (poll (p, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return;
        }
      if (p[0].revents)
        {
          cleanup_free char *payload = NULL;
          size_t len = 0;
          int op = cl_api_ws_recv (ws, &payload, &len, TUNNEL_CHUNK);
          if (op < 0 || op == 8)
            return;
          if (op == 9 && cl_api_ws_send (ws, 10, payload, len) < 0)
            return;
          if (op == 2 && len == 0)
            {
              shutdown (vmm, SHUT_WR);
              in_done = true;
            }
          else if (op == 2 && cl_write_all (vmm, payload, len) < 0)
            return;
        }
      if (p[1].revents)
        {
          ssize_t n = read (vmm, buf, TUNNEL_CHUNK);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            return;
          if (cl_api_ws_send (ws, 2, buf, (size_t)n) < 0)
            return;
          out_done = n == 0;
        }
    }
}

static void
tunnel_run (struct cl_api_channel *ch, int ws)
{
  struct cl_api_channel_tunnel *t = (struct cl_api_channel_tunnel *)ch;
  int vmm = cl_api_tcp_connect (t->uri);

  if (vmm < 0)
    {
      const char *why = "\x03\xf3the destination's VMM is gone"; /* 1011 */
      cl_api_ws_send (ws, 8, why, strlen (why + 2) + 2);
    }
  else
    {
      relay_server (ws, vmm);
      close (vmm);
      cl_api_ws_send (ws, 8, "\x03\xe8", 2); /* 1000: normal */
    }
  tunnel_free (ch);
}

void
cl_api_instance_migration (struct api_call *c)
{
  const char *token = json_string_value (json_object_get (c->query, "token"));
  struct cl_api_channel_tunnel *t;
  struct offer *o;
  bool claimed = false;
  char *uri = NULL;

  pthread_mutex_lock (&offers_lock);
  for (o = offers; token && o; o = o->next)
    if (cl_api_secret_equal (o->token, token) && strcmp (o->name, c->params[0]) == 0)
      {
        claimed = o->claimed;
        if (c->websocket)
          o->claimed = true;
        uri = cl_xstrdup (o->uri);
        break;
      }
  pthread_mutex_unlock (&offers_lock);
  if (uri == NULL)
    cl_api_reply_error (c, 404, "token: no live move of `%s` waits for this token", c->params[0]);
  else if (!c->websocket)
    cl_api_reply_error (c, 400, "a websocket upgrade is needed (Upgrade: websocket)");
  else if (claimed)
    cl_api_reply_error (c, 409, "the migration stream of `%s` is already connected",
                        c->params[0]);
  else
    {
      t = cl_xmalloc0 (sizeof *t);
      t->base.run = tunnel_run;
      t->base.free = tunnel_free;
      t->uri = uri;
      cl_api_response_clear (c->resp);
      c->resp->status = 101;
      c->resp->channel = (struct cl_api_channel *)t;
      return;
    }
  free (uri);
}

/* ---- the source's side ---- */

struct cl_api_tunnel
{
  struct cl_api_wsc *w;
  int listen_fd, conn;
  char *uri;
  pthread_t thread;
  atomic_bool stop;
};

/* Relays between this host's VMM (conn) and the websocket until both
   directions ended, either side is gone, or stop. */
static void
relay_client (struct cl_api_tunnel *t)
{
  cleanup_free char *buf = cl_xmalloc0 (TUNNEL_CHUNK);
  bool in_done = false, out_done = false;

  while (!(in_done && out_done) && !atomic_load (&t->stop))
    {
      /* every whole frame the TLS layer holds first: poll sees only the
         socket */
      for (;;)
        {
          cleanup_free char *payload = NULL;
          size_t len = 0;
          int op = cl_api_wsc_recv (t->w, &payload, &len);
          if (op == -2)
            break;
          if (op < 0 || op == 8)
            return;
          if (op == 9 && cl_api_wsc_send (t->w, 10, payload, len) < 0)
            return;
          if (op == 2 && len == 0)
            {
              shutdown (t->conn, SHUT_WR);
              in_done = true;
            }
          else if (op == 2 && cl_write_all (t->conn, payload, len) < 0)
            return;
        }
      struct pollfd p[2] = { { .fd = in_done ? -1 : cl_api_wsc_fd (t->w), .events = POLLIN },
                             { .fd = out_done ? -1 : t->conn, .events = POLLIN } };
      if (poll (p, 2, 200) < 0 && errno != EINTR)
        return;
      if (p[1].revents)
        {
          ssize_t n = read (t->conn, buf, TUNNEL_CHUNK);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0 || cl_api_wsc_send (t->w, 2, buf, (size_t)(n > 0 ? n : 0)) < 0)
            return;
          out_done = n == 0;
        }
    }
}

static void *
tunnel_thread (void *data)
{
  struct cl_api_tunnel *t = data;
  sigset_t pipe;

  /* a write to a VMM gone fails with EPIPE, not the process (the CLI
     runs a move in-process without a daemon; cloisond ignores SIGPIPE) */
  sigemptyset (&pipe);
  sigaddset (&pipe, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe, NULL);

  /* the VMM connects once it is told to send */
  while (!atomic_load (&t->stop))
    {
      struct pollfd p = { .fd = t->listen_fd, .events = POLLIN };
      if (poll (&p, 1, 200) > 0)
        {
          t->conn = accept4 (t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
          if (t->conn >= 0)
            {
              relay_client (t);
              break;
            }
        }
    }
  if (t->conn >= 0)
    shutdown (t->conn, SHUT_RDWR);
  cl_api_wsc_send (t->w, 8, "\x03\xe8", 2);
  return NULL;
}

int
cl_api_tunnel_open (const struct cl_api_remote *remote, const char *path_query,
                    struct cl_api_tunnel **out, cl_error_t *err)
{
  struct cl_api_tunnel *t = cl_xmalloc0 (sizeof *t);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  int r;

  *out = NULL;
  t->conn = -1;
  t->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (t->listen_fd < 0 || bind (t->listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0
      || listen (t->listen_fd, 1) < 0 || getsockname (t->listen_fd, (struct sockaddr *)&sa, &len) < 0)
    {
      cl_error_errno (err, "migration stream: listen on the loopback");
      goto fail;
    }
  if (cl_api_remote_ws_open (remote, path_query, TUNNEL_CHUNK, &t->w, err) < 0)
    {
      cl_error_wrap (err, "migration stream");
      goto fail;
    }
  t->uri = cl_strdup_printf ("tcp:127.0.0.1:%u", ntohs (sa.sin_port));
  r = pthread_create (&t->thread, NULL, tunnel_thread, t);
  if (r != 0)
    {
      cl_error_make (err, r, "migration stream: start its thread");
      goto fail;
    }
  *out = t;
  return 0;
fail:
  cl_api_wsc_close (t->w);
  if (t->listen_fd >= 0)
    close (t->listen_fd);
  free (t->uri);
  free (t);
  return -1;
}

const char *
cl_api_tunnel_uri (const struct cl_api_tunnel *t)
{
  return t->uri;
}

void
cl_api_tunnel_close (struct cl_api_tunnel *t)
{
  if (t == NULL)
    return;
  atomic_store (&t->stop, true);
  pthread_join (t->thread, NULL);
  if (t->conn >= 0)
    close (t->conn);
  close (t->listen_fd);
  cl_api_wsc_close (t->w);
  free (t->uri);
  free (t);
}
