/* SPDX-License-Identifier: Apache-2.0 */
/* The destination's side of `cloison move` (docs/move.md): the archive of
   the instance's files arrives in pieces (PUT .../upload?offset=N, raw
   bytes, each under the body limit), into ROOT/incoming/NAME.tar; then
   POST .../receive makes the instance from it (an operation).  Nothing is
   an instance before receive: a transfer cut midway leaves only the
   archive, which receive (either way) and the next daemon start remove. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* an archive no piece was added to for this long is a mover's that died */
#define MOVE_STALE_S 3600

static char *
incoming_dir (const char *root)
{
  return cl_strdup_printf ("%s/incoming", root);
}

static char *
archive_path (const char *root, const char *name)
{
  return cl_strdup_printf ("%s/incoming/%s.tar", root, name);
}

/* Drops archives of movers that died while this daemon lived. */
static void
sweep_stale (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *e;
  time_t now = time (NULL);

  if (d == NULL)
    return;
  while ((e = readdir (d)))
    {
      struct stat st;
      if (e->d_name[0] != '.' && fstatat (dirfd (d), e->d_name, &st, 0) == 0
          && st.st_mtime + MOVE_STALE_S < now)
        unlinkat (dirfd (d), e->d_name, 0);
    }
  closedir (d);
}

/* A 409 when the instance exists, 0 when not (-1 after replying). */
static int
instance_absent (struct api_call *c, const char *name)
{
  struct cl_manager *m;
  cl_error_t err = NULL;
  json_t *info = NULL;
  int r;

  if (cl_api_manager_get (c->ctx, &m, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  r = cl_mgr_instance_info (m, name, &info, &err);
  cl_api_manager_put (c->ctx, m);
  json_decref (info);
  if (r == 0)
    {
      cl_api_reply_error (c, 409, "instance `%s` already exists", name);
      return -1;
    }
  cl_error_release (&err);
  return 0;
}

void
cl_api_instance_upload (struct api_call *c)
{
  const char *name = c->params[0];
  const char *off = json_string_value (json_object_get (c->query, "offset"));
  cleanup_free char *dir = incoming_dir (c->ctx->root);
  cleanup_free char *path = archive_path (c->ctx->root, name);
  cleanup_close int fd = -1;
  cl_error_t err = NULL;
  struct stat st;
  char *end;
  unsigned long long offset;

  if (cl_validate_name (name, "instance name", &err) < 0)
    {
      cl_api_reply_error (c, 400, "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  errno = 0;
  offset = off ? strtoull (off, &end, 10) : 0;
  if (off == NULL || *off == '\0' || *end != '\0' || errno)
    {
      cl_api_reply_error (c, 400, "offset: expected a number of bytes");
      return;
    }
  if (offset == 0 && instance_absent (c, name) < 0)
    return;
  if (offset == 0)
    sweep_stale (dir);
  if (cl_mkdir_p (dir, 0700, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC | (offset == 0 ? O_TRUNC : 0), 0600);
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      cl_api_reply_error (c, 500, "open `%s`: %s", path, strerror (errno));
      return;
    }
  /* pieces in order only: a repeated or lost one is told, with the size
     the archive has */
  if ((unsigned long long)st.st_size != offset)
    {
      cl_api_reply_error (c, 409, "offset %llu: the archive of `%s` has %lld bytes", offset, name,
                          (long long)st.st_size);
      return;
    }
  if (lseek (fd, 0, SEEK_END) < 0 || cl_write_all (fd, c->req->body, c->req->body_len) < 0)
    {
      cl_api_reply_error (c, 500, "write `%s`: %s", path, strerror (errno));
      return;
    }
  cl_api_reply_sync (c, 200, json_pack ("{s:I}", "size", (json_int_t)(offset + c->req->body_len)));
}

/* A live move's stream: a TCP socket listening on `address` (the one the
   mover reached this daemon at), an ephemeral port; *uri: where the
   source's VMM connects. */
static int
migration_listen (const char *address, char **uri, cl_error_t *err)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
  struct addrinfo *res = NULL;
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  char host[NI_MAXHOST], port[NI_MAXSERV];
  int fd, rc;

  rc = getaddrinfo (address, "0", &hints, &res);
  if (rc != 0)
    return cl_error_make (err, 0, "live move: address `%s`: %s", address ? address : "(any)",
                          gai_strerror (rc));
  fd = socket (res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind (fd, res->ai_addr, res->ai_addrlen) < 0 || listen (fd, 1) < 0
      || getsockname (fd, (struct sockaddr *)&sa, &len) < 0
      || getnameinfo ((struct sockaddr *)&sa, len, host, sizeof host, port, sizeof port,
                      NI_NUMERICHOST | NI_NUMERICSERV)
             != 0)
    {
      cl_error_errno (err, "live move: listen on `%s`", address ? address : "(any)");
      if (fd >= 0)
        close (fd);
      freeaddrinfo (res);
      return -1;
    }
  freeaddrinfo (res);
  *uri = cl_strdup_printf (strchr (host, ':') ? "tcp:[%s]:%s" : "tcp:%s:%s", host, port);
  return fd;
}

struct live_publish
{
  struct api_op *op;
  const char *uri;
  const char *token;
  char *tunnel; /* the stream's route (tunnel.c), or NULL: uri */
};

/* The destination's monitor is about to accept: the mover, polling this
   operation, reads where the source sends. */
static void
live_listening (void *opaque)
{
  struct live_publish *p = opaque;
  cl_api_op_set_metadata (p->op,
                          json_pack ("{s:{s:s, s:s, s:s?}}", "migration", "uri", p->uri, "token",
                                     p->token, "tunnel", p->tunnel),
                          NULL);
}

/* A JSON array of strings as a NULL-terminated vector of its strings
   (borrowed; the caller frees the vector), NULL when absent. */
static char **
string_vector (json_t *arr)
{
  char **v;
  json_t *e;
  size_t i;

  if (!json_is_array (arr))
    return NULL;
  v = cl_xmalloc0 ((json_array_size (arr) + 1) * sizeof *v);
  json_array_foreach (arr, i, e) v[i] = (char *)json_string_value (e);
  return v;
}

static int
op_receive (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  const char *archive = json_string_value (json_object_get (args, "archive"));
  const char *name = json_string_value (json_object_get (args, "name"));
  cleanup_free char *uri = NULL;
  struct cl_mgr_live_in live = { .listen_fd = -1 };
  struct live_publish pub = { .op = op };
  char token[33];
  char **v = string_vector (json_object_get (args, "image_layers"));
  char **vols = string_vector (json_object_get (args, "volumes"));
  int r = 0;

  if (json_is_true (json_object_get (args, "stateful")))
    {
      bool tunnel = json_is_true (json_object_get (args, "tunnel"));
      /* through the API (tunnel.c): its VMM waits on the loopback only */
      live.listen_fd = migration_listen (
          tunnel ? "127.0.0.1" : json_string_value (json_object_get (args, "address")), &uri, err);
      live.disk_size = (uint64_t)json_integer_value (json_object_get (args, "disk_size"));
      live.listening = live_listening;
      live.opaque = &pub;
      /* one-time: the stream's header must carry it (only the source the
         mover tells connects) */
      cl_api_random_hex (token, 16);
      live.token = pub.token = token;
      pub.uri = uri;
      if (live.listen_fd < 0)
        r = -1;
      else if (tunnel)
        {
          cleanup_free char *path = cl_api_url ("/1.0/instances/", name);
          pub.tunnel = cl_strdup_printf ("%s/migration?token=%s", path, token);
          cl_api_tunnel_offer (name, token, uri);
        }
    }
  if (r == 0)
    r = cl_mgr_instance_receive (m, name,
                                 json_string_value (json_object_get (args, "kind")),
                                 json_object_get (args, "config"), archive, v, vols,
                                 live.listen_fd >= 0 ? &live : NULL, err);
  free (vols);
  if (pub.tunnel)
    cl_api_tunnel_withdraw (token);
  free (pub.tunnel);
  if (live.listen_fd >= 0)
    close (live.listen_fd);
  free (v);
  unlink (archive);
  return r;
}

static const struct api_op_kind kind_receive = { .description = "Receiving instance",
                                                 .fn = op_receive,
                                                 .lifecycle_action = "instance-created" };

static const struct api_field receive_fields[] = {
  { "type", API_STRING, true, NULL },
  { "config", API_OBJECT, true, NULL },
  { "size", API_INT, true, NULL },
  /* the image's layers (lowest first) when the archive holds the image */
  { "image_layers", API_STRING_ARRAY, false, NULL },
  /* "VOLUME:/PATH[:ro]": this host's volumes it is attached to */
  { "volumes", API_STRING_ARRAY, false, NULL },
  /* a running VM moving live: its disk's size (the archive holds no
     disk); the operation's metadata gets {"migration": {"uri"}} */
  { "stateful", API_BOOL, false, NULL },
  { "disk_size", API_INT, false, NULL },
  /* its stream through this API (GET .../migration, in the metadata's
     "tunnel"), its VMM waiting on the loopback: else on a port of its own */
  { "tunnel", API_BOOL, false, NULL },
  { NULL, 0, false, NULL },
};

void
cl_api_instance_receive (struct api_call *c)
{
  const char *name = c->params[0];
  const char *type;
  cleanup_free char *path = archive_path (c->ctx->root, name);
  struct stat st;
  bool stateful;
  json_int_t disk_size;

  if (cl_api_check_body (c, receive_fields, true) < 0)
    return;
  type = json_string_value (json_object_get (c->body, "type"));
  if (strcmp (type, "container") != 0 && strcmp (type, "virtual-machine") != 0)
    {
      cl_api_reply_bad_field (c, "type", "type: expected container or virtual-machine, got `%s`",
                              type);
      return;
    }
  stateful = json_is_true (json_object_get (c->body, "stateful"));
  disk_size = json_integer_value (json_object_get (c->body, "disk_size"));
  if (stateful && strcmp (type, "virtual-machine") != 0)
    {
      cl_api_reply_bad_field (c, "stateful",
                              "stateful: only a virtual-machine moves live (a container comes"
                              " checkpointed, without it)");
      return;
    }
  if (stateful && json_array_size (json_object_get (c->body, "volumes")) > 0)
    {
      cl_api_reply_bad_field (c, "volumes",
                              "volumes: a VM moving live takes none (its disks are its own)");
      return;
    }
  if (stateful && disk_size <= 0)
    {
      cl_api_reply_bad_field (c, "disk_size", "disk_size: expected the disk's bytes (> 0)");
      return;
    }
  if (stat (path, &st) < 0)
    {
      cl_api_reply_error (c, 404, "no archive uploaded for `%s`", name);
      return;
    }
  if (st.st_size != json_integer_value (json_object_get (c->body, "size")))
    {
      cl_api_reply_bad_field (c, "size", "size: the archive of `%s` has %lld bytes, not %lld", name,
                              (long long)st.st_size,
                              (long long)json_integer_value (json_object_get (c->body, "size")));
      return;
    }
  if (instance_absent (c, name) < 0)
    return;
  cl_api_op_start (c, &kind_receive, name, NULL,
                   json_pack ("{s:s, s:s, s:O, s:s, s:O?, s:O?, s:b, s:b, s:I, s:s?}", "name", name,
                              "kind", strcmp (type, "container") == 0 ? "container" : "vm",
                              "config", json_object_get (c->body, "config"), "archive", path,
                              "image_layers", json_object_get (c->body, "image_layers"),
                              "volumes", json_object_get (c->body, "volumes"), "stateful",
                              stateful, "tunnel",
                              json_is_true (json_object_get (c->body, "tunnel")), "disk_size",
                              disk_size, "address",
                              c->req->local_address));
}
