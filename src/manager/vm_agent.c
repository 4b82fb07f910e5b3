/* SPDX-License-Identifier: Apache-2.0 */
/* `cloison exec` on VM instances: the host side of the guest agent's
   protocol (src/agent/protocol.h) over AF_VSOCK, and the guest CIDs of
   VM instances (table instance_vsock).  Replies come from the guest and
   are untrusted: each frame is checked here, once, by cl_mgr_agent_frame_read. */
#include "agent/protocol.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_internal.h"
#include "manager/mgr_vm.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

/* How long exec waits for the agent of a VM that is still booting; less
   for a VM booted from a kernel/initrd of the user's, which may have none. */
#define AGENT_CONNECT_TIMEOUT_NS (60ull * 1000000000ull)
#define AGENT_CONNECT_TIMEOUT_OWN_BOOT_NS (5ull * 1000000000ull)

bool
cl_mgr_vm_host_has_vsock (void)
{
  return access ("/dev/vhost-vsock", F_OK) == 0;
}

int
cl_mgr_vm_vsock_cid (struct cl_manager *m, const char *name, uint32_t *cid, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  int r;

  if (cl_db_prepare (m->db, "SELECT cid FROM instance_vsock WHERE instance = ?1", &s, err) < 0)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_TRANSIENT);
  r = sqlite3_step (s);
  if (r == SQLITE_ROW)
    {
      *cid = (uint32_t)sqlite3_column_int64 (s, 0);
      return 1;
    }
  if (r != SQLITE_DONE)
    return cl_error_make (err, 0, "vsock CID of `%s`: %s", name, sqlite3_errmsg (m->db));
  *cid = 0;
  return 0;
}

/* Runs one statement on (name, number). */
static int
vsock_row (struct cl_manager *m, const char *sql, const char *name, uint32_t n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;

  if (cl_db_prepare (m->db, sql, &s, err) < 0)
    return -1;
  sqlite3_bind_text (s, 1, name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64 (s, 2, n);
  if (sqlite3_step (s) != SQLITE_DONE)
    return cl_error_make (err, 0, "vsock CID of `%s`: %s", name, sqlite3_errmsg (m->db));
  return 0;
}

int
cl_mgr_vm_vsock_take (struct cl_manager *m, const char *name, bool keep, uint32_t *cid, int *fd,
                      cl_error_t *err)
{
  /* the smallest CID from ?2 that no instance of this state root has, in
     one statement so that two launches never take the same; an instance
     that has one keeps it */
  static const char alloc[]
      = "INSERT OR IGNORE INTO instance_vsock (instance, cid)"
        " SELECT ?1, MIN(c) FROM (SELECT ?2 AS c UNION SELECT cid + 1 FROM instance_vsock"
        " WHERE cid >= ?2) WHERE c NOT IN (SELECT cid FROM instance_vsock)";
  uint32_t from = 3;

  for (int tries = 0; tries < 256; tries++)
    {
      cl_error_t rerr = NULL;

      if (vsock_row (m, alloc, name, from, err) < 0)
        return -1;
      if (cl_mgr_vm_vsock_cid (m, name, cid, err) <= 0)
        return cl_error_make (err, 0, "allocate a vsock CID for `%s`", name);
      /* Other VMs on this host (other state roots, other monitors) hold
         CIDs this database does not know: reserve it host-wide now and
         hand the reservation to the VMM, so that no one takes it between. */
      *fd = cl_vmm_vsock_reserve (*cid, &rerr);
      if (*fd >= 0)
        return 0;
      if (rerr->status != EADDRINUSE || keep)
        {
          /* a stateful snapshot's guest knows its CID: it cannot move */
          *err = rerr;
          return -1;
        }
      cl_error_release (&rerr);
      if (vsock_row (m, "DELETE FROM instance_vsock WHERE instance = ?1 AND cid = ?2", name, *cid,
                     err)
          < 0)
        return -1;
      from = *cid + 1;
    }
  return cl_error_make (
      err, 0, "allocate a vsock CID for `%s`: 256 in a row are in use on this host", name);
}

static int
agent_connect (struct instance *inst, uint32_t cid, int *out, cl_error_t *err)
{
  struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = CL_AGENT_PORT, .svm_cid = cid };
  bool own_boot
      = json_object_get (inst->config, "kernel") || json_object_get (inst->config, "initrd");
  uint64_t deadline
      = cl_now_ns () + (own_boot ? AGENT_CONNECT_TIMEOUT_OWN_BOOT_NS : AGENT_CONNECT_TIMEOUT_NS);

  /* the agent listens once the guest's initramfs mounted the root: retry
     while the VM boots */
  for (;;)
    {
      int fd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0)
        return cl_error_errno (err, "instance `%s`: vsock socket", inst->name);
      if (connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        {
          *out = fd;
          return 0;
        }
      int e = errno;
      close (fd);
      if (cl_now_ns () > deadline || !cl_mgr_proc_alive (inst->monitor_pid, inst->monitor_start))
        return cl_error_make (err, e, "instance `%s`: no guest agent on vsock CID %u port %u%s",
                              inst->name, cid, CL_AGENT_PORT,
                              own_boot ? " (the VM boots its own --kernel/--initrd, without "
                                         "cloison's initramfs and its agent)"
                                       : "");
      usleep (200000);
    }
}

static bool
env_has_key (const char **env, size_t n, const char *kv)
{
  size_t klen = strcspn (kv, "=");

  for (size_t i = 0; i < n; i++)
    if (strncmp (env[i], kv, klen) == 0 && env[i][klen] == '=')
      return true;
  return false;
}

/* A pty for the command: asked for (on), refused (off), or when our
   stdin and stdout are terminals (auto). */
static bool
exec_wants_tty (enum cl_exec_tty tty)
{
  if (tty == CL_EXEC_TTY_AUTO)
    return isatty (0) && isatty (1);
  return tty == CL_EXEC_TTY_ON;
}

int
cl_mgr_vm_exec (struct cl_manager *m, struct instance *inst, char **argv, const char **env,
                size_t n_env, enum cl_exec_tty tty, int *exit_code, cl_error_t *err)
{
  json_t *cfg_env = json_object_get (inst->config, "env"), *e;
  cleanup_close int fd = -1;
  bool want_tty = exec_wants_tty (tty), has_term = env_has_key (env, n_env, "TERM=");
  const char *term = getenv ("TERM");
  uint32_t cid;
  size_t i;
  int r;

  if (!cl_mgr_vm_host_has_vsock ())
    return cl_error_make (err, 0,
                          "instance `%s`: exec in a VM goes through the guest agent over vsock, "
                          "and this host has no /dev/vhost-vsock",
                          inst->name);
  r = cl_mgr_vm_vsock_cid (m, inst->name, &cid, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return cl_error_make (err, 0,
                          "instance `%s` runs without a vsock device (started before this host "
                          "had /dev/vhost-vsock): restart it",
                          inst->name);
  if (argv == NULL || argv[0] == NULL)
    return cl_error_raise (err, CL_ERR_INVALID, "exec: no command given");
  if (agent_connect (inst, cid, &fd, err) < 0)
    return -1;
  for (i = 0; argv[i]; i++)
    if (cl_mgr_agent_send_string (fd, CL_AGENT_ARG, argv[i], err) < 0)
      return -1;
  for (i = 0; i < n_env; i++)
    if (cl_mgr_agent_send_string (fd, CL_AGENT_ENV, env[i], err) < 0)
      return -1;
  /* the instance's --env, unless exec --env gave the same variable */
  json_array_foreach (cfg_env, i, e)
  {
    const char *kv = json_string_value (e);
    if (kv && !env_has_key (env, n_env, kv)
        && cl_mgr_agent_send_string (fd, CL_AGENT_ENV, kv, err) < 0)
      return -1;
    if (kv && strncmp (kv, "TERM=", 5) == 0)
      has_term = true;
  }
  if (want_tty)
    {
      unsigned char ws[CL_AGENT_WINSIZE_LEN];
      cleanup_free char *kv = term && !has_term ? cl_strdup_printf ("TERM=%s", term) : NULL;

      cl_mgr_agent_terminal_size (ws);
      if ((kv && cl_mgr_agent_send_string (fd, CL_AGENT_ENV, kv, err) < 0)
          || cl_mgr_agent_send_frame (fd, CL_AGENT_PTY, ws, sizeof ws, err) < 0)
        return -1;
    }
  if (cl_mgr_agent_send_frame (fd, CL_AGENT_RUN, NULL, 0, err) < 0)
    return -1;
  if (cl_mgr_agent_session (fd, 0, 1, 2, want_tty, exit_code, err) < 0)
    return cl_error_wrap (err, "instance `%s`", inst->name);
  return 0;
}
