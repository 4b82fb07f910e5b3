/* SPDX-License-Identifier: Apache-2.0 */
/* Warm templates of VM instances (`cloison launch --vm`, docs/templates.md):
   a VM booted from our kernel and initramfs up to the point where its init
   waits for a "go" (cloison.template), before it probed its disk or NIC,
   snapshotted once per machine (kernel, initramfs, memory, vCPUs, NIC or
   not) under ROOT/manager/vm-templates/KEY.  An instance's VM restores it
   with its own disk, tap, MAC and vsock CID (cl_vmm_config.restore_clone),
   then the monitor sends the go: the instance's kernel parameters and init
   arguments, fresh entropy and the time; the guest probes its devices and
   boots the instance's disk as a cold boot would.  The cache is capped
   (ROOT/manager/vm-templates/cap, default TEMPLATE_CACHE_CAP;
   template_cache.c): the least recently used templates go first. */
#include "agent/protocol.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "image/image.h"
#include "manager/mgr_vm.h"
#include "manager/template_cache.h"
#include "manager/vm_container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

/* The go's wait for the clone's init to listen. */
#define VM_TEMPLATE_GO_TIMEOUT_NS (60ull * 1000000000ull)
#define VM_TEMPLATE_PLACEHOLDER (1ull << 20)

static char *
templates_dir (const char *root)
{
  return cl_strdup_printf ("%s/manager/vm-templates", root);
}

/* KEY: what makes two VMs the same machine up to the go. */
static char *
template_path (const char *root, const struct vm_launch *l, cl_error_t *err)
{
  cleanup_free char *dir = templates_dir (root), *key = NULL;
  cleanup_free char *files = cl_mgr_template_key_files (l->kernel, l->initrd, err);

  if (files == NULL)
    return NULL;
  key = cl_strdup_printf ("%s|%llu|%u|%d", files, (unsigned long long)l->memory, l->cpus,
                          l->tap != NULL);
  return cl_strdup_printf ("%s/%016llx", dir, (unsigned long long)cl_fnv1a64 (key));
}

/* The template's VMM (forked by `start`, mgr_vm.c's), booting with a
   placeholder disk and the instance's tap, neither of which the guest
   opens before the go. */
static pid_t
template_vmm (const struct vm_launch *l, const char *tmp, uint32_t cid, int vsock_fd,
              cl_mgr_vm_start_fn start, cl_error_t *err)
{
  cleanup_free char *disk = cl_strdup_printf ("%s/placeholder.img", tmp);
  cleanup_free char *log = cl_strdup_printf ("%s/console.log", tmp);
  cleanup_free char *sock = cl_strdup_printf ("%s/api.sock", tmp);
  cleanup_free char *cmdline
      = cl_strdup_printf ("%s quiet cloison.template", VM_DEFAULT_DISK_CMDLINE);
  struct vm_launch t = { .kernel = l->kernel,
                         .initrd = l->initrd,
                         .cmdline = cmdline,
                         .disk = disk,
                         .console_log = log,
                         .api_socket = sock,
                         .tap = l->tap,
                         .cpus = l->cpus,
                         .memory = l->memory,
                         .vsock_cid = cid,
                         .vsock_fd = vsock_fd,
                         .readyfd = -1 };
  int fd = open (disk, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  if (fd < 0 || ftruncate (fd, VM_TEMPLATE_PLACEHOLDER) < 0)
    {
      if (fd >= 0)
        close (fd);
      close (vsock_fd);
      return cl_error_errno (err, "placeholder disk `%s`", disk);
    }
  close (fd);
  return start (&t, err); /* takes vsock_fd */
}

/* Boots the template VM and snapshots it into tdir (under its lock). */
static int
template_build (const char *tdir, const struct vm_launch *l, cl_mgr_vm_start_fn start,
                cl_error_t *err)
{
  cleanup_free char *tmp = cl_strdup_printf ("%s.tmp", tdir);
  uint32_t cid;
  int vsock_fd;
  pid_t vmm;

  if (cl_rm_rf (tmp, err) < 0 || cl_mkdir_p (tmp, 0700, err) < 0
      || cl_mgr_vm_cid_reserve (tmp, &cid, &vsock_fd, err) < 0)
    return -1;
  /* the init waits for the go: booted, idle, no device of the instance
     read, nothing on vsock yet */
  vmm = template_vmm (l, tmp, cid, vsock_fd, start, err);
  return vmm < 0 ? -1 : cl_mgr_vm_template_take (tdir, vmm, err);
}

int
cl_mgr_vm_templates_list (const char *root, json_t **out, cl_error_t *err)
{
  cleanup_free char *dir = templates_dir (root);
  (void)err;
  *out = cl_mgr_template_cache_list (dir);
  return 0;
}

int
cl_mgr_vm_template_remove (const char *root, const char *name, cl_error_t *err)
{
  cleanup_free char *dir = templates_dir (root);
  return cl_mgr_template_cache_remove (dir, name, err);
}

int
cl_mgr_vm_templates_cap (const char *root, uint64_t *cap, cl_error_t *err)
{
  cleanup_free char *dir = templates_dir (root);
  return cl_mgr_template_cache_cap (dir, cap, err);
}

int
cl_mgr_vm_templates_set_cap (const char *root, uint64_t cap, cl_error_t *err)
{
  cleanup_free char *dir = templates_dir (root);
  cleanup_free char *path = cl_strdup_printf ("%s/cap", dir);
  cleanup_free char *text = cl_strdup_printf ("%llu\n", (unsigned long long)cap);

  if (cl_mkdir_p (dir, 0700, err) < 0 || cl_write_file (path, text, strlen (text), 1, err) < 0)
    return -1;
  return cl_mgr_template_cache_prune (dir, NULL, err);
}

/* The template's directory, built under its lock if it is not there
   (then the cache pruned to its cap: cl_mgr_vm_template_built). */
static int
template_ensure (const char *tdir, const struct vm_launch *l, cl_mgr_vm_start_fn start,
                 cl_error_t *err)
{
  cleanup_close int lfd = -1;
  int r = cl_mgr_vm_template_claim (tdir, &lfd, err);

  if (r != 0)
    return r < 0 ? -1 : 0;
  r = template_build (tdir, l, start, err);
  cl_mgr_vm_template_built (tdir, r);
  return r;
}

/* Splits "PARAMS -- ARGS" (init_cmdline's) into the go's two parts. */
static json_t *
go_request (const char *cmdline, json_t *command)
{
  const char *dd = strstr (cmdline, " --");
  json_t *args = json_array (), *e;
  size_t i;

  while (dd && dd[3] != '\0' && dd[3] != ' ')
    dd = strstr (dd + 3, " --");
  json_array_foreach (command, i, e) if (i > 0) json_array_append (args, e);
  return json_pack ("{s:s%, s:o}", "cmdline", cmdline,
                    dd ? (size_t)(dd - cmdline) : strlen (cmdline), "args", args);
}

int
cl_mgr_vm_template_use (const char *root, struct vm_launch *l, json_t *command,
                        cl_mgr_vm_start_fn start, cl_error_t *err)
{
  cleanup_free char *tdir = template_path (root, l, err);
  cleanup_json json_t *go = NULL;

  if (tdir == NULL || template_ensure (tdir, l, start, err) < 0)
    return cl_error_wrap (err, "template `%s`", tdir ? tdir : "?");
  go = go_request (l->cmdline, command);
  l->go = json_dumps (go, JSON_COMPACT);
  l->restore_dir = steal_pointer (&tdir);
  l->restore_clone = true;
  return 0;
}

/* In a child of the monitor: the go, sent to the clone's init once it
   listens (it was snapshotted listening: at once, unless the restore
   failed).  vmm: the VMM, a sibling (kill 0 tells whether it lives). */
static int
send_go (uint32_t cid, const char *go_text, pid_t vmm, cl_error_t *err)
{
  struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = CL_AGENT_GO_PORT, .svm_cid = cid };
  uint64_t deadline = cl_now_ns () + VM_TEMPLATE_GO_TIMEOUT_NS;
  cleanup_json json_t *go = json_loads (go_text, 0, NULL);
  cleanup_close int fd = -1;
  static char buf[CL_AGENT_MAX_FRAME];
  char entropy[129], type;
  uint32_t len;
  struct timespec now;

  if (go == NULL)
    return cl_error_make (err, 0, "the go request is not JSON");
  for (;;)
    {
      fd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0)
        return cl_error_errno (err, "vsock socket");
      if (connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        break;
      close (fd);
      fd = -1;
      if (kill (vmm, 0) < 0)
        return cl_error_make (err, 0, "the VM stopped before its init took the go");
      if (cl_now_ns () > deadline)
        return cl_error_make (err, 0, "no answer on vsock CID %u port %u", cid, CL_AGENT_GO_PORT);
      usleep (20000);
    }
  /* each clone its own random bytes and the time of now, not the
     template's */
  cl_mgr_vm_hex_random (entropy, 64);
  clock_gettime (CLOCK_REALTIME, &now);
  json_object_set_new (go, "entropy", json_string (entropy));
  json_object_set_new (go, "time", json_real ((double)now.tv_sec + (double)now.tv_nsec / 1e9));
  if (cl_mgr_vm_send_request (fd, go, false, err) < 0)
    return -1;
  for (;;)
    {
      int r = cl_mgr_agent_frame_read (fd, &type, buf, &len, err);
      if (r < 0)
        return -1;
      if (r == 0)
        return cl_error_make (err, 0, "the guest closed the connection before answering");
      if (type == CL_AGENT_EXIT && len == 4)
        return cl_agent_be32 ((unsigned char *)buf) == 0
                   ? 0
                   : cl_error_make (err, 0, "the guest refused the go");
    }
}

void
cl_mgr_vm_template_go (const struct vm_launch *l, pid_t vmm)
{
  cl_error_t err = NULL;
  pid_t pid = fork ();

  if (pid != 0)
    return; /* the monitor reaps it */
  prctl (PR_SET_NAME, "cloison-vmgo");
  if (l->readyfd >= 0)
    close (l->readyfd); /* the launcher reads it to its end */
  if (send_go (l->vsock_cid, l->go, vmm, &err) < 0)
    {
      /* a clone without its go never boots its disk: stopped, and said */
      int fd = open (l->console_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
      if (fd >= 0)
        dprintf (fd, "cloison: the clone of `%s` did not start: %s\n", l->restore_dir,
                 err ? err->msg : "?");
      kill (vmm, SIGKILL);
      _exit (1);
    }
  _exit (0);
}
