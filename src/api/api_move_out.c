/* SPDX-License-Identifier: Apache-2.0 */
/* The source's side of `cloison move` (docs/move.md): POST
   /1.0/instances/NAME/move, an operation of this daemon that talks to the
   destination's cloisond over its TLS API, with the mover's client
   identity for that one move (handed over the local socket only, held in
   memory for the operation).  Stateless: stop, send the archive of its
   files in pieces (PUT .../upload), have the destination make it (POST
   .../receive), start it there, and only then delete it here.
   Stateful (a running container): checkpoint instead of stop (CRIU's
   images go in the archive), and the start there (or here, undoing)
   restores the processes.  A running VM: live migration.  Any failure
   before the destination has it running gives the instance back here as
   it was (started again if it ran), and removes what the destination
   got; the intent "move-out" (manager.h) does the same when this process
   dies midway. */
#include "api/api_internal.h"
#include "api/remote.h"
#include "common/cancel.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* under the daemon's default body limit (1 MiB) */
#define MOVE_PIECE (768u << 10)

struct move
{
  const char *name, *remote, *newname;
  bool stateless;
  bool plain_stream; /* a live move's stream on the remote's own port, in the clear */
  bool stream_tls;   /* it went through the remote's TLS API */
  struct cl_manager *m;
  const char *root;
  struct cl_api_remote target;
  struct cl_api_caller dst;
  char cert_path[40], key_path[40];
  json_t *info;   /* the instance here */
  json_t *config; /* what the destination gets */
  int64_t intent; /* move-out */
  bool was_running;
  bool stopped;      /* by us: start it again on failure */
  bool received;     /* the destination has it: delete it there on failure */
  bool checkpointed; /* stateful: its processes in INSTANCE/checkpoint */
  bool live;         /* a running VM: live migration, no disk in the archive */
  json_t *image;     /* the image's inspect here, when the destination lacks it */
  json_t *volumes;   /* "VOLUME:/PATH[:ro]" of the destination's volumes to attach */
  json_t *figures;   /* a live move's: the source VMM's last status */
};

/* The HTTP status of GET path on the destination (-1 when no answer came). */
static int
status_of (struct move *mv, const char *path, json_t **metadata, cl_error_t *err)
{
  struct cl_api_request req = { .method = "GET", .path = path };
  struct cl_api_response resp;
  int status;

  if (cl_api_remote_request (&mv->target, &req, &resp, err) < 0)
    return -1;
  status = resp.status;
  if (metadata)
    *metadata = json_incref (json_object_get (resp.json, "metadata"));
  cl_api_response_clear (&resp);
  return status;
}

static int
dst_call (struct move *mv, const char *method, const char *path, const char *query, json_t *body,
          json_t **out, cl_error_t *err)
{
  return cl_api_call_json (&mv->dst, method, path, query, body, NULL, out, err);
}

static int
interrupted (struct move *mv, cl_error_t *err)
{
  return cl_error_make (err, 0, "move of `%s` interrupted: undone", mv->name);
}

/* Why a stateful move cannot be made here, as one line (0: it can: a
   container, with criu working). */
static int
stateful_refusal (struct move *mv, cl_error_t *err)
{
  const char *kind = json_string_value (json_object_get (mv->info, "kind"));

  if (strcmp (kind, "vm") == 0)
    {
      if (access ("/dev/kvm", R_OK | W_OK) < 0)
        return cl_error_make (err, 0,
                              "stateful move of VM `%s`: no /dev/kvm on this host (live migration"
                              " needs KVM); stop it first or use --stateless",
                              mv->name);
      mv->live = true;
      return 0;
    }
  if (cl_mgr_checkpoint_check (mv->m, err) < 0)
    return cl_error_wrap (err, "stateful move of container `%s` (use --stateless)", mv->name);
  return 0;
}

/* Whether the cloisond whose `GET /1.0` is server has API extension name. */
static bool
has_extension (json_t *server, const char *name)
{
  size_t i;
  json_t *e;

  json_array_foreach (json_object_get (server, "api_extensions"), i, e)
  {
    if (strcmp (json_string_value (e) ?: "", name) == 0)
      return true;
  }
  return false;
}

/* The image's inspect in this root's store. */
static int
image_inspect (struct move *mv, const char *id, json_t **out, cl_error_t *err)
{
  struct cl_image_store *s;
  cleanup_free char *text = NULL;
  int r;

  if (cl_img_store_open (mv->root, &s, err) < 0)
    return -1;
  r = cl_img_inspect_json (s, id, &text, err);
  cl_img_store_close (s);
  if (r < 0)
    return -1;
  return cl_json_load_buffer ("image", text, strlen (text), out, err);
}

/* The volumes it is attached to: the remote's own of the same names and
   types take their places (a volume does not move with an instance, as
   a network does not); mv->volumes gets the receive's specs. */
static int
check_volumes (struct move *mv, json_t *server, cl_error_t *err)
{
  json_t *v;
  size_t i;

  mv->volumes = json_array ();
  json_array_foreach (json_object_get (mv->info, "volumes"), i, v)
  {
    const char *name = json_string_value (json_object_get (v, "name"));
    const char *type = json_string_value (json_object_get (v, "type"));
    const char *path = json_string_value (json_object_get (v, "path"));
    cleanup_free char *vp = cl_api_url ("/1.0/volumes/", name);
    cleanup_json json_t *there = NULL;
    const char *ttype;
    json_t *users;
    int s;

    if (mv->live)
      return cl_error_make (err, 0,
                            "live move of `%s`: volume `%s` is attached (a VM moves live with"
                            " its own disk only); stop it first, or detach the volume",
                            mv->name, name);
    if (!has_extension (server, "instance_move_volumes"))
      return cl_error_make (err, 0,
                            "remote `%s` does not attach volumes to moved instances (its"
                            " cloisond is older): detach volume `%s` first",
                            mv->remote, name);
    if ((s = status_of (mv, vp, &there, err)) < 0)
      return cl_error_wrap (err, "remote `%s`", mv->remote);
    if (s == 404)
      return cl_error_make (err, 0,
                            "volume `%s` (attached to `%s` at %s) does not exist on remote `%s`"
                            " (create it there first, with its data: a volume does not move with"
                            " an instance)",
                            name, mv->name, path, mv->remote);
    ttype = json_string_value (json_object_get (there, "type")) ?: "?";
    if (strcmp (ttype, type) != 0)
      return cl_error_make (err, 0, "volume `%s` on remote `%s` is of type %s, `%s`'s is %s",
                            name, mv->remote, ttype, mv->name, type);
    users = json_object_get (there, "attachments");
    if (strcmp (type, "image") == 0 && json_array_size (users) > 0)
      return cl_error_make (err, 0,
                            "volume `%s` on remote `%s` is attached to `%s` (a volume with a size"
                            " is attached to one instance at a time)",
                            name, mv->remote,
                            json_string_value (
                                json_object_get (json_array_get (users, 0), "instance")));
    json_array_append_new (mv->volumes,
                           json_sprintf ("%s:%s%s", name, path,
                                         json_is_true (json_object_get (v, "readonly")) ? ":ro"
                                                                                        : ""));
  }
  return 0;
}

/* What must hold on the destination before anything changes: no
   instance of that name, the instance's networks, its image, its
   addresses free there.  mv->config gets the addresses kept. */
static int
check_destination (struct move *mv, cl_error_t *err)
{
  cleanup_free char *ipath = cl_api_url ("/1.0/instances/", mv->newname);
  cleanup_free char *img = NULL;
  json_t *cfg = json_object_get (mv->info, "config"), *e, *nets;
  const char *image_id = json_string_value (json_object_get (cfg, "image_id"));
  cleanup_json json_t *server = NULL;
  size_t i;
  int s;

  /* an older cloisond has no upload/receive */
  if (dst_call (mv, "GET", "/1.0", NULL, NULL, &server, err) < 0)
    return cl_error_wrap (err, "remote `%s`", mv->remote);
  if (!has_extension (server, "instance_move"))
    return cl_error_make (
        err, 0, "remote `%s` does not take moved instances (its cloisond is older)", mv->remote);
  if (!has_extension (server, "instance_move_stateful") && !mv->stateless && mv->was_running
      && !mv->live)
    return cl_error_make (err, 0,
                          "remote `%s` does not restore checkpointed instances (its cloisond is"
                          " older); use --stateless",
                          mv->remote);
  if (!has_extension (server, "instance_move_live") && mv->live)
    return cl_error_make (err, 0,
                          "remote `%s` does not take running VMs live (its cloisond is older);"
                          " use --stateless",
                          mv->remote);
  mv->config = json_deep_copy (cfg);
  nets = json_object_get (mv->config, "networks");
  if ((s = status_of (mv, ipath, NULL, err)) < 0)
    return cl_error_wrap (err, "remote `%s`", mv->remote);
  if (s != 404)
    return cl_error_make (err, 0, "instance `%s` already exists on remote `%s`", mv->newname,
                          mv->remote);
  if (check_volumes (mv, server, err) < 0)
    return -1;
  if (!json_is_true (json_object_get (cfg, "no_network")))
    json_array_foreach (nets, i, e)
    {
      /* NAME or NAME@ADDRESS */
      const char *v = json_string_value (e);
      cleanup_free char *name = strndup (v, strcspn (v, "@"));
      cleanup_free char *np = cl_api_url ("/1.0/networks/", name);
      if ((s = status_of (mv, np, NULL, err)) < 0)
        return cl_error_wrap (err, "remote `%s`", mv->remote);
      if (s == 404)
        return cl_error_make (err, 0,
                              "network `%s` does not exist on remote `%s` (create it there"
                              " first: the instance keeps its network and address)",
                              name, mv->remote);
    }
  /* the addresses it has now (running) go in its networks as
     NAME@ADDRESS, which the remote's network layer then gives it */
  json_array_foreach (json_object_get (mv->info, "network"), i, e)
  {
    cleanup_json json_t *net = NULL;
    cleanup_free char *np = NULL, *pinned = NULL;
    const char *nname = json_string_value (json_object_get (e, "network"));
    const char *addr = json_string_value (json_object_get (e, "address"));
    size_t j;
    json_t *a, *slot = NULL;
    if (nname == NULL || addr == NULL)
      continue;
    np = cl_api_url ("/1.0/networks/", nname);
    if (status_of (mv, np, &net, err) != 200)
      {
        cl_error_release (err);
        continue; /* the default network, made there on first use */
      }
    json_array_foreach (json_object_get (net, "attachments"), j, a)
    {
      if (strcmp (json_string_value (json_object_get (a, "address")), addr) == 0)
        return cl_error_make (err, 0,
                              "address %s of `%s` is taken on network `%s` of remote `%s` (by"
                              " `%s`)",
                              addr, mv->name, nname, mv->remote,
                              json_string_value (json_object_get (a, "instance")));
    }
    pinned = cl_strdup_printf ("%s@%s", nname, addr);
    json_array_foreach (nets, j, a)
    {
      const char *v = json_string_value (a);
      if (strncmp (v, nname, strlen (nname)) == 0
          && (v[strlen (nname)] == '\0' || v[strlen (nname)] == '@'))
        slot = a;
    }
    if (slot)
      json_string_set (slot, pinned);
    else if (json_array_size (nets) == 0 && strcmp (nname, "default") == 0)
      json_array_append_new (nets, json_string (pinned));
  }
  if (image_id == NULL)
    return cl_error_make (err, 0, "instance `%s` has no image id (made by an older cloison)",
                          mv->name);
  img = cl_api_url ("/1.0/images/", image_id);
  if ((s = status_of (mv, img, NULL, err)) < 0)
    return cl_error_wrap (err, "remote `%s`", mv->remote);
  /* the remote lacks the image: it goes with the instance */
  if (s == 404 && image_inspect (mv, image_id, &mv->image, err) < 0)
    return -1;
  return 0;
}

/* tar of the instance's files on a pipe: the writable layer of a
   container, the disk of a VM (sparse), zstd-compressed; and the image
   (config blob, unpacked layers) under image/ when the remote lacks it. */
static int
archive_start (struct move *mv, pid_t *pid, int *fd, cl_error_t *err)
{
  const char *dir = json_string_value (json_object_get (mv->info, "path"));
  bool vm = strcmp (json_string_value (json_object_get (mv->info, "kind")), "vm") == 0;
  /* live: the disk goes in the migration (an archive of the image only,
     or empty) */
  const char *fixed[] = { "tar",
                          "--create",
                          "--zstd",
                          "--sparse",
                          "--numeric-owner",
                          "--xattrs",
                          "--xattrs-include=*",
                          "--directory",
                          dir,
                          mv->live ? "--files-from=/dev/null"
                          : vm     ? "disk.img"
                                   : "upper" };
  json_t *layers = json_object_get (mv->image, "Layers"), *l;
  size_t nfixed = sizeof fixed / sizeof fixed[0], n = nfixed, i;
  char **argv = cl_xmalloc0 ((nfixed + 9 + json_array_size (layers)) * sizeof *argv);
  cleanup_free char *images = NULL, *cfg = NULL, *tr_cfg = NULL;
  posix_spawn_file_actions_t fa;
  int p[2], r;

  if (dir == NULL)
    {
      free (argv);
      return cl_error_make (err, 0, "instance `%s`: no path in its info", mv->name);
    }
  memcpy (argv, fixed, sizeof fixed);
  /* CRIU's images: the destination's start restores them */
  if (mv->checkpointed)
    argv[n++] = "checkpoint";
  if (mv->image && json_array_size (layers) > 0)
    {
      /* ROOT/images/layers/HEX: the store is two levels up */
      const char *first = json_string_value (json_array_get (layers, 0));
      const char *id = json_string_value (json_object_get (mv->image, "Id"));
      images = cl_xstrdup (first);
      for (int up = 0; up < 2 && strrchr (images, '/'); up++)
        *strrchr (images, '/') = '\0';
      cfg = cl_strdup_printf ("blobs/sha256/%s", id);
      tr_cfg = cl_strdup_printf ("s,^blobs/sha256/%s$,image/config,S", id);
      argv[n++] = "--transform";
      argv[n++] = tr_cfg;
      argv[n++] = "--transform";
      argv[n++] = "s,^layers/,image/layers/,S";
      argv[n++] = "--directory";
      argv[n++] = images;
      argv[n++] = cfg;
      json_array_foreach (layers, i, l)
      {
        const char *path = json_string_value (l);
        argv[n++] = (char *)path + strlen (images) + 1;
      }
    }
  if (pipe2 (p, O_CLOEXEC) < 0)
    {
      free (argv);
      return cl_error_errno (err, "pipe");
    }
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, p[1], 1);
  r = posix_spawnp (pid, "tar", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  free (argv);
  close (p[1]);
  if (r != 0)
    {
      close (p[0]);
      return cl_error_make (err, r, "run tar");
    }
  *fd = p[0];
  return 0;
}

/* Sends the archive in pieces; *size: its bytes. */
static int
send_archive (struct move *mv, uint64_t *size, cl_error_t *err)
{
  cleanup_free char *ipath = cl_api_url ("/1.0/instances/", mv->newname);
  cleanup_free char *path = cl_strdup_printf ("%s/upload", ipath);
  cleanup_free char *buf = cl_xmalloc0 (MOVE_PIECE);
  uint64_t off = 0;
  pid_t pid;
  int fd = -1, st, r = 0;

  if (archive_start (mv, &pid, &fd, err) < 0)
    return -1;
  for (;;)
    {
      cleanup_free char *query = NULL;
      size_t n = 0;
      ssize_t k = 1;
      while (n < MOVE_PIECE && (k = read (fd, buf + n, MOVE_PIECE - n)) != 0)
        {
          if (k < 0 && errno == EINTR)
            continue;
          if (k < 0)
            break;
          n += (size_t)k;
        }
      if (k < 0)
        {
          r = cl_error_errno (err, "read the archive");
          break;
        }
      if (n == 0 && off > 0)
        break;
      if (cl_cancelled ())
        {
          r = interrupted (mv, err);
          break;
        }
      struct cl_api_request req = { .method = "PUT", .path = path, .body = buf, .body_len = n };
      struct cl_api_response resp;
      req.query = query = cl_strdup_printf ("offset=%llu", (unsigned long long)off);
      if (cl_api_remote_request (&mv->target, &req, &resp, err) < 0)
        {
          r = cl_error_wrap (err, "send `%s` to remote `%s`", mv->name, mv->remote);
          break;
        }
      if (resp.status != 200)
        {
          r = cl_error_make (err, 0, "send `%s` to remote `%s`: %s", mv->name, mv->remote,
                             json_string_value (json_object_get (resp.json, "error")));
          cl_api_response_clear (&resp);
          break;
        }
      cl_api_response_clear (&resp);
      off += n;
      if (n < MOVE_PIECE)
        break;
    }
  if (r < 0)
    kill (pid, SIGKILL);
  close (fd);
  while (waitpid (pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (r == 0 && (!WIFEXITED (st) || WEXITSTATUS (st) != 0))
    r = cl_error_make (err, 0, "archive of `%s` failed (tar exit %d)", mv->name,
                       WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
  *size = off;
  return r;
}

/* The destination's instance's state changed (a start, 30 s at most). */
static int
dst_state (struct move *mv, const char *action, cl_error_t *err)
{
  cleanup_free char *ipath = cl_api_url ("/1.0/instances/", mv->newname);
  cleanup_free char *path = cl_strdup_printf ("%s/state", ipath);
  cleanup_json json_t *body = json_pack ("{s:s, s:i}", "action", action, "timeout", 30);
  return dst_call (mv, "PUT", path, NULL, body, NULL, err);
}

static int
stage (struct move *mv, const char *what, cl_error_t *err)
{
  return cl_mgr_move_out_stage (mv->m, mv->name, mv->intent, what, err);
}

/* Gives the instance back here as it was, removes the destination's;
   what could not be done is added to err's message. */
static void
move_undo (struct move *mv, cl_error_t *err)
{
  cl_error_t failed = NULL;
  cleanup_free char *dpath = cl_api_url ("/1.0/instances/", mv->newname);

  if (mv->received && dst_call (mv, "DELETE", dpath, "force=1", NULL, NULL, &failed) < 0)
    {
      cl_error_wrap (err, "(and `%s` could not be removed from remote `%s`: %s)", mv->newname,
                     mv->remote, failed->msg);
      cl_error_release (&failed);
    }
  if (mv->stopped && cl_mgr_instance_start (mv->m, mv->name, &failed) < 0)
    {
      cl_error_wrap (err, "(and `%s` could not be started again here: %s)", mv->name, failed->msg);
      cl_error_release (&failed);
    }
}

/* A connection to uri closed at once: a destination VMM still waiting
   for the source (which failed before it connected) stops waiting. */
static void
poke (const char *uri)
{
  int fd = uri ? cl_api_tcp_connect (uri) : -1;

  /* (nothing listens any more: nothing to stop) */
  if (fd >= 0)
    close (fd);
}

/* A running VM, live: the destination makes the instance (an empty disk
   of the same size) and starts its monitor waiting for the migration on
   an ephemeral port of the address we reached it at, and says where (the
   receive operation's metadata); this host's VMM sends there (memory and
   disk); once the destination runs it, it has stopped here.  A failure
   anywhere leaves the VM running here: the VMM runs on when a send fails,
   and the destination's receive undoes itself (its VMM killed, the
   instance destroyed). */
static int
move_live (struct move *mv, json_t *body, cl_error_t *err)
{
  cleanup_free char *dpath = cl_api_url ("/1.0/instances/", mv->newname);
  cleanup_free char *recv = cl_strdup_printf ("%s/receive", dpath);
  cleanup_free char *disk
      = cl_strdup_printf ("%s/disk.img", json_string_value (json_object_get (mv->info, "path")));
  cleanup_free char *text = NULL, *op = NULL, *uri = NULL, *token = NULL, *tunnel = NULL;
  struct cl_api_request req = { .method = "POST", .path = recv };
  struct cl_api_tunnel *t = NULL;
  struct cl_api_response resp;
  struct stat st;
  cl_error_t ignored = NULL;
  int r;

  if (stat (disk, &st) < 0)
    return cl_error_errno (err, "live move of `%s`: stat `%s`", mv->name, disk);
  json_object_set_new (body, "stateful", json_true ());
  json_object_set_new (body, "disk_size", json_integer ((json_int_t)st.st_size));
  /* the stream through the remote's TLS API (a remote without it gives
     a port of its own: the stream goes there, in the clear, as asked
     with plain_stream) */
  json_object_set_new (body, "tunnel", json_boolean (!mv->plain_stream));
  text = json_dumps (body, JSON_COMPACT);
  req.body = text;
  req.body_len = strlen (text);
  if (cl_api_remote_request (&mv->target, &req, &resp, err) < 0)
    return cl_error_wrap (err, "remote `%s`", mv->remote);
  if (resp.status != 202 || !json_is_string (json_object_get (resp.json, "operation")))
    {
      r = cl_error_make (err, 0, "remote `%s`: %s", mv->remote,
                         json_string_value (json_object_get (resp.json, "error"))
                             ? json_string_value (json_object_get (resp.json, "error"))
                             : "receive: no operation");
      cl_api_response_clear (&resp);
      return r;
    }
  op = cl_xstrdup (json_string_value (json_object_get (resp.json, "operation")));
  cl_api_response_clear (&resp);
  /* where the destination listens, once its monitor is about to accept */
  while (uri == NULL)
    {
      cleanup_json json_t *o = NULL;
      const char *status, *u;
      /* the destination's monitor gives up waiting by itself (60 s) */
      if (cl_cancelled ())
        return interrupted (mv, err);
      if (dst_call (mv, "GET", op, NULL, NULL, &o, err) < 0)
        return cl_error_wrap (err, "remote `%s`", mv->remote);
      status = json_string_value (json_object_get (o, "status"));
      json_t *where = json_object_get (json_object_get (o, "metadata"), "migration");
      u = json_string_value (json_object_get (where, "uri"));
      if (u)
        {
          uri = cl_xstrdup (u);
          if (json_is_string (json_object_get (where, "token")))
            token = cl_xstrdup (json_string_value (json_object_get (where, "token")));
          if (json_is_string (json_object_get (where, "tunnel")))
            tunnel = cl_xstrdup (json_string_value (json_object_get (where, "tunnel")));
        }
      else if (status && strcmp (status, "running") != 0 && strcmp (status, "pending") != 0)
        {
          const char *e = json_string_value (json_object_get (o, "err"));
          return cl_error_make (err, 0, "remote `%s`: %s", mv->remote, e && *e ? e : status);
        }
      else
        usleep (100 * 1000);
    }
  /* the stream's way there: this host's VMM sends to a loopback port
     relayed to the remote (its close, before the VMM connected, ends the
     remote's wait); or to the remote's port */
  if (tunnel && cl_api_tunnel_open (&mv->target, tunnel, &t, err) < 0)
    {
      r = cl_error_wrap (err, "remote `%s`", mv->remote);
      if (cl_api_wait_operation (&mv->dst, op, NULL, NULL, &ignored) < 0)
        cl_error_release (&ignored);
      return r;
    }
  mv->stream_tls = tunnel != NULL;
  if (tunnel)
    cl_info ("live move of `%s`: the migration stream goes through remote `%s`'s TLS API",
             mv->name, mv->remote);
  else
    cl_info ("live move of `%s`: the migration stream goes to %s, in the clear", mv->name, uri);
  /* from here the destination may end up running it: a recovery leaves
     it as it is here */
  if (stage (mv, CL_MGR_MOVE_HANDED, err) < 0)
    {
      cl_api_tunnel_close (t);
      poke (tunnel ? NULL : uri);
      return -1;
    }
  /* this host's VMM migrates it (its disk too); a cancel of this
     operation cancels the migration: the VM runs on here (unless the
     migration had completed) */
  r = cl_mgr_instance_migrate (mv->m, mv->name, t ? cl_api_tunnel_uri (t) : uri, token,
                               &mv->figures, err);
  cl_api_tunnel_close (t);
  if (r < 0)
    {
      poke (tunnel ? NULL : uri);
      /* the destination's receive fails too and undoes itself */
      if (cl_api_wait_operation (&mv->dst, op, NULL, NULL, &ignored) < 0)
        cl_error_release (&ignored);
      if (cl_cancelled ())
        {
          cl_error_release (err);
          return cl_error_make (err, 0, "move of `%s` interrupted: undone (it runs on here)",
                                mv->name);
        }
      return cl_error_wrap (err, "live move of `%s` to remote `%s` (it runs on here)", mv->name,
                            mv->remote);
    }
  if (cl_api_wait_operation (&mv->dst, op, NULL, NULL, err) < 0)
    return cl_error_wrap (err, "live move of `%s`: the source completed but remote `%s` says",
                          mv->name, mv->remote);
  return 0;
}

static int
move_run (struct move *mv, cl_error_t *err)
{
  cleanup_free char *dpath = cl_api_url ("/1.0/instances/", mv->newname);
  cleanup_free char *recv = NULL;
  cleanup_json json_t *body = NULL;
  const char *kind;
  uint64_t size = 0;

  if (cl_mgr_instance_info (mv->m, mv->name, &mv->info, err) < 0)
    return -1;
  kind = json_string_value (json_object_get (mv->info, "kind"));
  mv->was_running
      = strcmp (json_string_value (json_object_get (mv->info, "status")), "running") == 0;
  if (!mv->stateless && mv->was_running && stateful_refusal (mv, err) < 0)
    return -1;
  if (check_destination (mv, err) < 0)
    return -1;
  if (cl_cancelled ())
    return interrupted (mv, err);
  if (mv->was_running && !mv->live)
    {
      /* stateful: CRIU saves the processes and ends them; a start here
         (the undo) restores them */
      mv->checkpointed = !mv->stateless;
      if (stage (mv, CL_MGR_MOVE_STOPPED, err) < 0)
        return -1;
      if ((mv->checkpointed ? cl_mgr_instance_checkpoint (mv->m, mv->name, err)
                            : cl_mgr_instance_stop (mv->m, mv->name, 30, false, err))
          < 0)
        return mv->checkpointed ? cl_error_wrap (err, "stateful move of `%s`", mv->name) : -1;
      mv->stopped = true;
    }
  if (send_archive (mv, &size, err) < 0)
    return -1;
  recv = cl_strdup_printf ("%s/receive", dpath);
  body = json_pack ("{s:s, s:O, s:I}", "type",
                    strcmp (kind, "vm") == 0 ? "virtual-machine" : "container", "config",
                    mv->config, "size", (json_int_t)size);
  if (mv->image)
    {
      /* the store's digests, the last component of each layer's path */
      json_t *layers = json_array (), *l;
      size_t i;
      json_array_foreach (json_object_get (mv->image, "Layers"), i, l)
      {
        const char *slash = strrchr (json_string_value (l), '/');
        json_array_append_new (layers, json_string (slash ? slash + 1 : json_string_value (l)));
      }
      json_object_set_new (body, "image_layers", layers);
    }
  if (json_array_size (mv->volumes) > 0)
    json_object_set (body, "volumes", mv->volumes);
  if (mv->live)
    {
      if (move_live (mv, body, err) < 0)
        return -1;
      /* the copy here stopped when the migration completed */
      if (cl_mgr_instance_delete (mv->m, mv->name, true, err) < 0)
        return cl_error_wrap (err, "`%s` runs on remote `%s` now, but its copy here stays",
                              mv->newname, mv->remote);
      return 0;
    }
  if (dst_call (mv, "POST", recv, NULL, body, NULL, err) < 0)
    return cl_error_wrap (err, "remote `%s`", mv->remote);
  mv->received = true;
  if (cl_cancelled ())
    return interrupted (mv, err);
  /* a checkpointed container's start there restores its processes */
  if (mv->was_running)
    {
      if (stage (mv, CL_MGR_MOVE_HANDED, err) < 0)
        return -1;
      if (dst_state (mv, "start", err) < 0)
        return cl_error_wrap (err, "start `%s` on remote `%s`", mv->newname, mv->remote);
    }
  /* the destination has it (running if it ran): this copy goes */
  mv->stopped = mv->received = false;
  if (cl_mgr_instance_delete (mv->m, mv->name, true, err) < 0)
    return cl_error_wrap (err, "`%s` is on remote `%s` now, but its copy here stays", mv->newname,
                          mv->remote);
  return 0;
}

/* A PEM text into a memfd that the TLS library opens by path. */
static int
pem_file (const char *what, const char *pem, char *path, size_t size, cl_error_t *err)
{
  int fd = memfd_create (what, MFD_CLOEXEC);

  if (fd < 0)
    return cl_error_errno (err, "memfd for the %s", what);
  if (cl_write_all (fd, pem, strlen (pem)) < 0)
    {
      close (fd);
      return cl_error_errno (err, "write the %s", what);
    }
  snprintf (path, size, "/proc/self/fd/%d", fd);
  return fd;
}

static int
op_move (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  json_t *t = json_object_get (args, "target");
  struct move mv = {
    .name = json_string_value (json_object_get (args, "name")),
    .newname = json_string_value (json_object_get (args, "new_name")),
    .remote = json_string_value (json_object_get (t, "remote")),
    .stateless = json_is_true (json_object_get (args, "stateless")),
    .plain_stream = json_is_true (json_object_get (args, "plain_stream")),
    .m = m,
    .root = cl_api_op_ctx (op)->root,
  };
  int cert = -1, key = -1, r = -1;

  cert = pem_file ("client certificate",
                   json_string_value (json_object_get (t, "client_certificate")), mv.cert_path,
                   sizeof mv.cert_path, err);
  if (cert >= 0)
    key = pem_file ("client key", json_string_value (json_object_get (t, "client_key")),
                    mv.key_path, sizeof mv.key_path, err);
  /* the key lives in the memfd only, as long as this operation */
  json_object_del (t, "client_key");
  if (key < 0)
    goto out;
  mv.target = (struct cl_api_remote){
    .url = json_string_value (json_object_get (t, "url")),
    .server_cert = json_string_value (json_object_get (t, "certificate")),
    .client_cert = mv.cert_path,
    .client_key = mv.key_path,
    .timeout_s = (long)json_integer_value (json_object_get (t, "timeout")),
    .share = cl_api_remote_share_new (),
  };
  mv.dst = cl_api_remote_caller (&mv.target);
  if (cl_mgr_move_out_begin (m, mv.name, &mv.intent, err) < 0)
    goto out;
  r = move_run (&mv, err);
  if (r < 0)
    move_undo (&mv, err);
  else
    cl_api_op_set_metadata (op,
                            json_pack ("{s:s, s:s, s:b, s:b, s:O?}", "remote", mv.remote,
                                       "name", mv.newname, "live", mv.live, "stream_tls",
                                       mv.stream_tls, "migration", mv.figures),
                            NULL);
  cl_mgr_move_out_end (m, mv.name, mv.intent);
out:
  if (cert >= 0)
    close (cert);
  if (key >= 0)
    close (key);
  cl_api_remote_share_free (mv.target.share);
  json_decref (mv.info);
  json_decref (mv.config);
  json_decref (mv.image);
  json_decref (mv.volumes);
  json_decref (mv.figures);
  return r;
}

/* cancellable: stopped between two pieces, or the VMM's migration
   cancelled, and undone */
static const struct api_op_kind kind_move = { .description = "Moving instance",
                                              .fn = op_move,
                                              .lifecycle_action = "instance-moved",
                                              .cancellable = true };

static const struct api_field target_fields[] = {
  { "remote", API_STRING, true, NULL },
  { "url", API_STRING, true, NULL },
  { "certificate", API_STRING, true, NULL },
  { "client_certificate", API_STRING, true, NULL },
  { "client_key", API_STRING, true, NULL },
  { "timeout", API_INT, false, NULL },
  { NULL, 0, false, NULL },
};

static const struct api_field move_fields[] = {
  { "target", API_OBJECT, true, target_fields },
  { "name", API_STRING, false, NULL },
  { "stateless", API_BOOL, false, NULL },
  /* a live move's stream on a port of the remote's own, in the clear
     (faster; a trusted network): else through its TLS API */
  { "plain_stream", API_BOOL, false, NULL },
  { NULL, 0, false, NULL },
};

void
cl_api_instance_move (struct api_call *c)
{
  const char *newname;
  json_t *t, *info;
  cl_error_t err = NULL;

  /* the mover's key for the destination never crosses a network */
  if (c->req->remote)
    {
      cl_api_reply_error (c, 403,
                          "move: only over the local socket (it carries the mover's client key"
                          " for the destination)");
      return;
    }
  if (cl_api_check_body (c, move_fields, true) < 0)
    return;
  t = json_object_get (c->body, "target");
  newname = json_string_value (json_object_get (c->body, "name")) ?: c->params[0];
  if (cl_validate_name (newname, "name", &err) < 0)
    {
      cl_api_reply_bad_field (c, "name", "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  if (strncmp (json_string_value (json_object_get (t, "url")), "https://", 8) != 0)
    {
      cl_api_reply_bad_field (c, "target.url", "target.url: expected https://HOST:PORT, got `%s`",
                              json_string_value (json_object_get (t, "url")));
      return;
    }
  if (json_integer_value (json_object_get (t, "timeout")) < 0
      || json_integer_value (json_object_get (t, "timeout")) > 86400)
    {
      cl_api_reply_bad_field (c, "target.timeout", "target.timeout: expected seconds, 0-86400");
      return;
    }
  if ((info = cl_api_instance_info (c, c->params[0])) == NULL)
    return;
  json_decref (info);
  cl_api_op_start (c, &kind_move, c->params[0], NULL,
                   json_pack ("{s:s, s:s, s:b, s:b, s:o}", "name", c->params[0], "new_name",
                              newname, "stateless",
                              json_is_true (json_object_get (c->body, "stateless")),
                              "plain_stream",
                              json_is_true (json_object_get (c->body, "plain_stream")), "target",
                              json_deep_copy (t)));
}
