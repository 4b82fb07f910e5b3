/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP API on a Unix socket (Firecracker-like), served by
   libmicrohttpd from the VM's I/O thread through MHD's own epoll fd:
     GET /vm                   state and config
     PUT /vm/state             {"state": "paused" | "running" | "stopped" | "shutdown"}
                               ("stopped" ends the VMM at once; "shutdown"
                               presses the ACPI power button and returns:
                               the guest shuts down, the VMM exits 0)
     PUT /snapshot/create      {"dir": PATH}
     GET /metrics              exits by kind, per-device counters
     PUT /migration/send       {"uri": "tcp:HOST:PORT" | "fd:N", "downtime_ms": N, "block": B, ...}
     GET /migration            state, pass, bytes sent, dirty rate, expected downtime
     PUT /migration/cancel     (the source goes on running) */
#include "vmm/vmm_internal.h"

#include "vmm/acpi.h"

#include "common/util.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define API_MAX_BODY 65536
#define STATE_EXPECTED "state: expected \"paused\", \"running\", \"stopped\" or \"shutdown\""

struct api_request
{
  char *body;
  size_t len;
  bool too_big;
};

static enum MHD_Result
reply_json (struct MHD_Connection *conn, unsigned status, json_t *json)
{
  char *text = json ? json_dumps (json, JSON_COMPACT) : cl_xstrdup ("");
  json_decref (json);
  struct MHD_Response *resp
      = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
  if (json)
    MHD_add_response_header (resp, "Content-Type", "application/json");
  enum MHD_Result r = MHD_queue_response (conn, status, resp);
  MHD_destroy_response (resp);
  return r;
}

static enum MHD_Result
reply_error (struct MHD_Connection *conn, unsigned status, const char *msg)
{
  return reply_json (conn, status, json_pack ("{s:s}", "error", msg));
}

static const char *
vm_state_name (struct vm *vm)
{
  if (cl_vmm_vm_stopping (vm))
    return "stopped";
  return vm->paused ? "paused" : "running";
}

static enum MHD_Result
api_get_vm (struct vmm *m, struct MHD_Connection *conn)
{
  json_t *j = json_pack ("{s:s,s:o,s:I}", "state", vm_state_name (m->vm), "config",
                         cl_vmm_config_to_json (m->cfg), "uptime_ms",
                         (json_int_t)((cl_now_ns () - m->vm->start_ns) / 1000000));
  if (m->cfg->restore_dir)
    json_object_set_new (j, "restored_from", json_string (m->cfg->restore_dir));
  return reply_json (conn, MHD_HTTP_OK, j);
}

static enum MHD_Result
api_put_state (struct vmm *m, struct MHD_Connection *conn, json_t *body)
{
  const char *state;
  if (json_unpack (body, "{s:s}", "state", &state) < 0)
    return reply_error (conn, MHD_HTTP_BAD_REQUEST,
                        STATE_EXPECTED);
  if (strcmp (state, "paused") == 0)
    {
      if (!m->vm->paused && !cl_vmm_vm_pause (m->vm))
        return reply_error (conn, MHD_HTTP_CONFLICT, "the VM is stopping");
    }
  else if (strcmp (state, "running") == 0)
    {
      if (m->vm->paused)
        cl_vmm_vm_resume (m->vm);
    }
  else if (strcmp (state, "stopped") == 0)
    cl_vmm_vm_request_stop (m->vm, VM_STOP_API, "stopped through the API");
  else if (strcmp (state, "shutdown") == 0)
    {
      if (cl_vmm_vm_stopping (m->vm))
        return reply_error (conn, MHD_HTTP_CONFLICT, "the VM is stopping");
      cl_vmm_acpi_pm_power_button (m->pm);
    }
  else
    return reply_error (conn, MHD_HTTP_BAD_REQUEST,
                        STATE_EXPECTED);
  return reply_json (conn, MHD_HTTP_NO_CONTENT, NULL);
}

static enum MHD_Result
api_snapshot_create (struct vmm *m, struct MHD_Connection *conn, json_t *body)
{
  const char *dir;
  cl_error_t err = NULL;
  if (json_unpack (body, "{s:s}", "dir", &dir) < 0)
    return reply_error (conn, MHD_HTTP_BAD_REQUEST, "dir: expected a string");
  bool was_paused = m->vm->paused;
  if (!was_paused && !cl_vmm_vm_pause (m->vm))
    return reply_error (conn, MHD_HTTP_CONFLICT, "the VM is stopping");
  uint64_t t0 = cl_now_ns ();
  int ret = cl_vmm_snapshot_create (m, dir, &err);
  uint64_t took = cl_now_ns () - t0;
  if (!was_paused)
    cl_vmm_vm_resume (m->vm);
  if (ret < 0)
    {
      enum MHD_Result r = reply_error (conn, MHD_HTTP_BAD_REQUEST, err->msg);
      cl_error_release (&err);
      return r;
    }
  cl_vmm_vm_metric_add (m->vm, "snapshot", "created", 1);
  return reply_json (conn, MHD_HTTP_OK,
                     json_pack ("{s:s,s:I}", "dir", dir, "took_us", (json_int_t)(took / 1000)));
}

static enum MHD_Result
api_migration (struct vmm *m, struct MHD_Connection *conn, const char *url, json_t *body)
{
  cl_error_t err = NULL;
  int ret;
  if (strcmp (url, "/migration/send") == 0)
    ret = cl_vmm_migration_send (m, body, &err);
  else
    ret = cl_vmm_migration_cancel (m, &err);
  if (ret < 0)
    {
      unsigned status = err->status == EBUSY || err->status == ENOENT ? MHD_HTTP_CONFLICT
                                                                      : MHD_HTTP_BAD_REQUEST;
      enum MHD_Result r = reply_error (conn, status, err->msg);
      cl_error_release (&err);
      return r;
    }
  return reply_json (conn, MHD_HTTP_ACCEPTED, cl_vmm_migration_status (m));
}

static enum MHD_Result
api_get_metrics (struct vmm *m, struct MHD_Connection *conn)
{
  json_t *j = cl_vmm_vm_metrics_json (m->vm);
  if (m->restore_ns)
    json_object_set_new (j, "restore",
                         json_pack ("{s:I}", "to_running_us", (json_int_t)(m->restore_ns / 1000)));
  return reply_json (conn, MHD_HTTP_OK, j);
}

static enum MHD_Result
api_handle (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
            const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
  struct vmm *m = cls;
  struct api_request *req = *con_cls;
  (void)version;

  if (req == NULL)
    {
      *con_cls = cl_xmalloc0 (sizeof (*req));
      return MHD_YES;
    }
  if (*upload_data_size)
    {
      if (req->len + *upload_data_size > API_MAX_BODY)
        req->too_big = true;
      else
        {
          req->body = realloc (req->body, req->len + *upload_data_size + 1);
          memcpy (req->body + req->len, upload_data, *upload_data_size);
          req->len += *upload_data_size;
          req->body[req->len] = 0;
        }
      *upload_data_size = 0;
      return MHD_YES;
    }
  cl_vmm_vm_metric_add (m->vm, "api", "requests", 1);
  bool get = strcmp (method, "GET") == 0, put = strcmp (method, "PUT") == 0;
  if (get && strcmp (url, "/vm") == 0)
    return api_get_vm (m, conn);
  if (get && strcmp (url, "/metrics") == 0)
    return api_get_metrics (m, conn);
  if (get && strcmp (url, "/migration") == 0)
    return reply_json (conn, MHD_HTTP_OK, cl_vmm_migration_status (m));
  bool mig = strcmp (url, "/migration/send") == 0 || strcmp (url, "/migration/cancel") == 0;
  if (put && mig && req->body == NULL)
    return api_migration (m, conn, url, NULL);
  if (put && (mig || strcmp (url, "/vm/state") == 0 || strcmp (url, "/snapshot/create") == 0))
    {
      if (req->too_big)
        return reply_error (conn, MHD_HTTP_CONTENT_TOO_LARGE, "body too large");
      json_error_t je;
      json_t *body = req->body ? json_loads (req->body, 0, &je) : NULL;
      if (body == NULL)
        return reply_error (conn, MHD_HTTP_BAD_REQUEST, "body: expected a JSON object");
      enum MHD_Result r = mig             ? api_migration (m, conn, url, body)
                          : url[1] == 'v' ? api_put_state (m, conn, body)
                                          : api_snapshot_create (m, conn, body);
      json_decref (body);
      return r;
    }
  if (strcmp (url, "/vm") == 0 || strcmp (url, "/metrics") == 0 || strcmp (url, "/vm/state") == 0
      || strcmp (url, "/snapshot/create") == 0 || strcmp (url, "/migration") == 0 || mig)
    return reply_error (conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
  return reply_error (conn, MHD_HTTP_NOT_FOUND, "no such resource");
}

static void
api_request_done (void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe)
{
  struct api_request *req = *con_cls;
  (void)cls;
  (void)conn;
  (void)toe;
  if (req)
    free (req->body);
  free (req);
  *con_cls = NULL;
}

static void
api_on_ready (void *opaque, uint32_t events)
{
  struct vmm *m = opaque;
  (void)events;
  MHD_run (m->api);
}

int
cl_vmm_api_start (struct vmm *m, const char *path, cl_error_t *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct stat st;

  if (strlen (path) >= sizeof addr.sun_path)
    return cl_error_make (err, 0, "--api-socket `%s`: path too long", path);
  strcpy (addr.sun_path, path);
  if (lstat (path, &st) == 0)
    {
      if (!S_ISSOCK (st.st_mode))
        return cl_error_make (err, 0, "--api-socket `%s`: exists and is not a socket", path);
      unlink (path); /* stale socket of a VMM that is gone */
    }
  m->api_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (m->api_fd < 0)
    return cl_error_errno (err, "socket");
  if (bind (m->api_fd, (struct sockaddr *)&addr, sizeof addr) < 0)
    {
      cl_error_errno (err, "--api-socket `%s`", path);
      close (m->api_fd);
      m->api_fd = -1;
      return -1;
    }
  m->api_path = cl_xstrdup (path);
  if (listen (m->api_fd, 16) < 0)
    return cl_error_errno (err, "listen `%s`", path);
  m->api = MHD_start_daemon (MHD_USE_EPOLL, 0, NULL, NULL, api_handle, m, MHD_OPTION_LISTEN_SOCKET,
                             m->api_fd, MHD_OPTION_NOTIFY_COMPLETED, api_request_done, NULL,
                             MHD_OPTION_CONNECTION_LIMIT, 16, MHD_OPTION_END);
  if (m->api == NULL)
    return cl_error_make (err, 0, "--api-socket `%s`: libmicrohttpd did not start", path);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info (m->api, MHD_DAEMON_INFO_EPOLL_FD);
  if (info == NULL)
    return cl_error_make (err, 0, "libmicrohttpd: no epoll fd");
  return cl_vmm_vm_event_add (m->vm, info->epoll_fd, EPOLLIN, api_on_ready, m, err);
}

void
cl_vmm_api_stop (struct vmm *m)
{
  if (m->api)
    {
      MHD_stop_daemon (m->api); /* closes the listening socket */
      m->api_fd = -1;
    }
  m->api = NULL;
  if (m->api_path)
    unlink (m->api_path);
  free (m->api_path);
  m->api_path = NULL;
  if (m->api_fd >= 0)
    close (m->api_fd);
  m->api_fd = -1;
}
