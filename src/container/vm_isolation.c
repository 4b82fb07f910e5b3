/* SPDX-License-Identifier: Apache-2.0 */
/* VM-isolated containers, the runtime's side (vm_isolation.h): the state
   directory and cgroup as for any container, and the shim cloison-vmctr
   as the container's process. */
#include "container/vm_isolation.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/paths.h"
#include "common/util.h"
#include "container/cgroup.h"
#include "container/ctr_init.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A pod's sandbox ("pause") container as containerd's and CRI-O's CRI
   mark it: under the -vm name it stays an ordinary container, since it
   only holds the pod's namespaces (the node's pause image, not the
   pod's code) and a VM of its own would take the pod's interface from
   the pod's first container (docs/vm-isolation.md). */
static bool
cri_sandbox (json_t *config)
{
  static const char *const keys[]
      = { "io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType" };
  json_t *a = json_object_get (config, "annotations");

  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    {
      const char *t = json_string_value (json_object_get (a, keys[i]));
      if (t && strcmp (t, "sandbox") == 0)
        return true;
    }
  return false;
}

int
cl_ctr_vm_wanted (json_t *config, bool forced, cl_error_t *err)
{
  json_t *v = json_object_get (json_object_get (config, "annotations"), CL_CTR_VM_ANNOTATION);
  const char *s = json_string_value (v);

  if (v == NULL)
    return forced && !cri_sandbox (config);
  if (s && strcmp (s, "vm") == 0)
    return 1;
  if (s && strcmp (s, "container") == 0)
    return forced;
  return cl_error_make (err, 0, "annotations[\"" CL_CTR_VM_ANNOTATION "\"]: `%s` is neither vm nor "
                                "container",
                        s ? s : "(not a string)");
}

/* linux for the shim's cgroup: the memory limits raised by the VMM's
   overhead (the guest gets the spec's limit), and every device allowed (rules
   are the guest's business; the VMM needs /dev/kvm, /dev/vhost-vsock and
   /dev/net/tun). */
static json_t *
cgroup_linux (json_t *linux_obj)
{
  static const char *const keys[] = { "limit", "swap", "reservation" };
  json_t *copy = linux_obj ? json_deep_copy (linux_obj) : json_object ();
  json_t *res = json_object_get (copy, "resources"), *mem;

  if (res == NULL)
    json_object_set_new (copy, "resources", res = json_object ());
  json_object_set_new (res, "devices", json_pack ("[{s:b, s:s}]", "allow", 1, "access", "rwm"));
  json_object_del (copy, "devices");
  mem = json_object_get (res, "memory");
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    {
      json_int_t v = json_integer_value (json_object_get (mem, keys[i]));
      if (v > 0)
        json_object_set_new (mem, keys[i], json_integer (v + CL_CTR_VM_MEMORY_OVERHEAD));
    }
  return copy;
}

/* Forks the shim (argv[1..] after the program) in the cgroup `saved`
   (may be NULL), with stdio (or ours) and fd 3 = the write end of the
   readiness pipe; *ready gets its read end. */
static pid_t
spawn_shim (const char *const *args, json_t *saved, const int *stdio, int *ready,
            cl_error_t *err)
{
  cleanup_free char *shim = cl_piece_path (CL_PIECE_VMCTR);
  cleanup_free char *v2_procs = NULL;
  int p[2], v2_fd = -1;
  char **join;
  pid_t pid;

  if (access (shim, X_OK) < 0)
    return cl_error_errno (err, "VM isolation needs `%s`", shim);
  if (pipe2 (p, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  join = cl_ctr_cgroup_join_files (saved, &v2_fd, &v2_procs);
  if (v2_fd >= 0)
    close (v2_fd);
  pid = fork ();
  if (pid < 0)
    {
      close (p[0]), close (p[1]);
      cl_strv_free (join);
      return cl_error_errno (err, "fork");
    }
  if (pid == 0)
    {
      cl_error_t e = NULL;
      const char *argv[8] = { "cloison-vmctr" };
      size_t n = 1;

      for (size_t i = 0; args[i] && n < 7; i++)
        argv[n++] = args[i];
      argv[n] = NULL;
      char *v2[] = { v2_procs, NULL };
      if (cl_ctr_cgroup_join_self (join, &e) < 0 || cl_ctr_cgroup_join_self (v2, &e) < 0)
        {
          dprintf (p[1], "E%s", e->msg);
          _exit (127);
        }
      if (stdio)
        for (int i = 0; i < 3; i++)
          if (stdio[i] >= 0 && stdio[i] != i)
            dup2 (stdio[i], i);
      if (dup2 (p[1], 3) < 0)
        _exit (127);
      cl_close_fds_from (4);
      signal (SIGPIPE, SIG_DFL);
      execv (shim, (char **)argv);
      dprintf (3, "Eexec `%s`: %s", shim, strerror (errno));
      _exit (127);
    }
  close (p[1]);
  cl_strv_free (join);
  *ready = p[0];
  return pid;
}

/* Reads the shim's report: "R[cid]" (returned in *cid) or "E<message>";
   EOF before it: the shim died. */
static int
wait_ready (int fd, pid_t pid, uint32_t *cid, cl_error_t *err)
{
  char buf[2048];
  size_t got = 0;
  ssize_t n;

  /* "R...\n" ends the report (the shim lives on); "E..." ends with EOF */
  while (got < sizeof buf - 1 && !(got > 0 && buf[0] == 'R' && buf[got - 1] == '\n')
         && (n = read (fd, buf + got, sizeof buf - 1 - got)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return cl_error_errno (err, "read the VM shim's report");
      got += (size_t)n;
    }
  buf[got] = '\0';
  if (got > 0 && buf[0] == 'R')
    {
      if (cid)
        *cid = (uint32_t)strtoul (buf + 1, NULL, 10);
      return 0;
    }
  if (got > 0 && buf[0] == 'E')
    return cl_error_make (err, 0, "%s", buf + 1);
  {
    int st = 0;
    waitpid (pid, &st, 0);
    return cl_error_make (err, 0, "the VM shim exited (status %d) before it was ready",
                          WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
  }
}

static int
write_json (const char *path, json_t *j, cl_error_t *err)
{
  cleanup_free char *s = json_dumps (j, JSON_COMPACT);
  if (s == NULL)
    return cl_error_make (err, 0, "encode `%s`", path);
  return cl_write_file (path, s, strlen (s), 1, err);
}

static int
write_pid_file (const char *path, pid_t pid, cl_error_t *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%d", pid);
  return path ? cl_write_file (path, buf, (size_t)n, 1, err) : 0;
}

int
cl_ctr_vm_create (const char *root, const char *id, const struct cl_container_create_opts *opts,
                  json_t *config, const char *bundle, const char *rootfs,
                  struct container_state *st, struct cl_cgroup **cg, cl_error_t *err)
{
  cleanup_free char *fifo = NULL, *spec = NULL, *created = NULL;
  cleanup_json json_t *vs = NULL, *lx = NULL, *saved = NULL;
  cleanup_close int ready = -1;
  json_t *linux_obj = json_object_get (config, "linux");
  uint32_t cid = 0;
  const char *args[3];

  *cg = NULL;
  st->id = cl_xstrdup (id);
  if (cl_ctr_state_dir_create (root, id, &st->dir, err) < 0)
    return -1;
  fifo = cl_strdup_printf ("%s/exec.fifo", st->dir);
  spec = cl_strdup_printf ("%s/" CL_CTR_VM_SPEC_FILE, st->dir);
  vs = json_pack ("{s:s, s:s, s:s, s:O, s:s*}", "id", id, "bundle", bundle, "rootfs", rootfs,
                  "config", config, "console_socket", opts->console_socket);
  if (mkfifo (fifo, 0600) < 0)
    {
      cl_error_errno (err, "mkfifo `%s`", fifo);
      goto fail;
    }
  if (write_json (spec, vs, err) < 0)
    goto fail;
  lx = cgroup_linux (linux_obj);
  if (cl_ctr_cgroup_enter (id, lx, 0, cg, err) < 0)
    goto fail;
  saved = cl_ctr_cgroup_save (*cg);
  args[0] = "create", args[1] = st->dir, args[2] = NULL;
  st->pid = spawn_shim (args, saved, opts->stdio, &ready, err);
  if (st->pid < 0)
    goto fail;
  if (wait_ready (ready, st->pid, &cid, err) < 0)
    goto fail;
  created = cl_ctr_state_now_rfc3339 ();
  st->doc = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:O, s:O*, s:O*, s:O*, s:b, s:O, s:{s:i}}", "id",
                       id, "bundle", bundle, "rootfs", rootfs, "created", created, "owner",
                       geteuid () == 0 ? "root" : "", "process",
                       json_object_get (config, "process"), "seccomp",
                       json_object_get (linux_obj, "seccomp"), "hooks",
                       json_object_get (config, "hooks"), "annotations",
                       json_object_get (config, "annotations"), "ownPidns", 0, "cgroup", saved,
                       "vm", "cid", (json_int_t)cid);
  st->pid_start = cl_proc_start_time (st->pid);
  if (cl_ctr_state_save (st, err) < 0 || write_pid_file (opts->pid_file, st->pid, err) < 0)
    goto fail;
  return 0;
fail:
  if (st->pid > 0)
    {
      kill (st->pid, SIGKILL);
      waitpid (st->pid, NULL, 0);
    }
  if (*cg)
    {
      cl_error_t e = NULL;
      if (cl_ctr_cgroup_destroy (*cg, &e) < 0)
        cl_error_release (&e);
      cl_ctr_cgroup_free (*cg);
      *cg = NULL;
    }
  if (st->dir)
    {
      cl_error_t e = NULL;
      if (cl_rm_rf (st->dir, &e) < 0)
        cl_error_release (&e);
    }
  cl_ctr_state_release (st);
  memset (st, 0, sizeof *st);
  return -1;
}

int
cl_ctr_vm_exec (struct container_state *st, json_t *process,
                const struct cl_container_exec_opts *opts, pid_t *pid, cl_error_t *err)
{
  json_t *vm = json_object_get (st->doc, "vm");
  cleanup_free char *file = cl_strdup_printf ("%s/exec-XXXXXX", st->dir);
  cleanup_free char *cid = NULL;
  cleanup_json json_t *req = NULL;
  cleanup_close int ready = -1;
  const char *args[5];
  int fd;

  *pid = -1;
  cid = cl_strdup_printf ("%lld", (long long)json_integer_value (json_object_get (vm, "cid")));
  req = json_pack ("{s:O, s:O*}", "process", process, "seccomp",
                   json_object_get (st->doc, "seccomp"));
  fd = mkstemp (file);
  if (fd < 0)
    return cl_error_errno (err, "exec: a file in `%s`", st->dir);
  close (fd);
  if (write_json (file, req, err) < 0)
    {
      unlink (file);
      return -1;
    }
  args[0] = "exec", args[1] = cid, args[2] = file, args[3] = opts->console_socket, args[4] = NULL;
  *pid = spawn_shim (args, json_object_get (st->doc, "cgroup"), opts->stdio, &ready, err);
  if (*pid < 0 || wait_ready (ready, *pid, NULL, err) < 0
      || write_pid_file (opts->pid_file, *pid, err) < 0)
    {
      unlink (file);
      if (*pid > 0)
        {
          kill (*pid, SIGKILL);
          waitpid (*pid, NULL, 0);
        }
      *pid = -1;
      return -1;
    }
  return 0;
}

int
cl_ctr_vm_set_paused (struct container_state *st, bool paused, cl_error_t *err)
{
  cleanup_free char *sock = cl_strdup_printf ("%s/" CL_CTR_VM_API_SOCKET, st->dir);
  const char *body = paused ? "{\"state\":\"paused\"}" : "{\"state\":\"running\"}";

  if (cl_unix_http_request (sock, "PUT", "/vm/state", body, err) < 0)
    return cl_error_wrap (err, "container `%s`: %s its VM", st->id, paused ? "pause" : "resume");
  return 0;
}
