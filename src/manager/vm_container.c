/* SPDX-License-Identifier: Apache-2.0 */
/* VM-isolated containers: the host side, run as cloison-vmctr (a helper
   program of cloison-runtime, see vm_container.h and
   docs/vm-isolation.md).

   `create`: the shim is the container's process on the host (its pid is
   the container's pid: podman/conmon wait on it).  It makes the spec's
   bind mounts in a mount namespace of its own under the bundle's rootfs,
   joins the spec's network namespace (a tap joined to the container's
   interface there, vm_container_net.c), forks the VMM (the library,
   src/vmm) with the rootfs shared over virtio-fs, the VM booting our
   kernel + initramfs with the guest agent as PID 1, and connects to the
   agent.  Ready, it waits on exec.fifo as a container's init does; at
   `start` it sends the process ('J', src/agent/protocol.h) and relays
   stdio, signals and the exit status; when the process ends the VM is
   stopped and the shim exits with the process's status.

   `exec`: a second process in the same VM, through the agent, the same
   relay. */
#include "manager/vm_container.h"
#include "agent/protocol.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "container/console.h"
#include "container/rootfs.h"
#include "container/vm_isolation.h"
#include "image/image.h"
#include "manager/mgr_vm.h"
#include "manager/template_cache.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#define VMCTR_TAG "rootfs"
#define VMCTR_MIN_MEMORY (128ull << 20)
/* Boot under emulation (the VM lab) takes tens of seconds. */
#define VMCTR_BOOT_TIMEOUT_NS (180ull * 1000000000ull)
#define VMCTR_EXEC_CONNECT_TIMEOUT_NS (10ull * 1000000000ull)
#define VMCTR_CLONE_TIMEOUT_NS (30ull * 1000000000ull)
/* The first vsock connect's own timeout (agent_connect). */
#define VMCTR_CONNECT_TRY_MS 250u
/* A VM-isolated container starts from a clone of the warm template of
   its machine (docs/templates.md); annotations[VMCTR_BOOT] = "cold" boots
   it instead. */
#define VMCTR_BOOT "org.cloison.vm.boot"
#define VMCTR_CID_FIRST 1000u
/* A template build that failed is not tried again for this long. */

/* The VM's size from the spec's limits: memory.limit (at least
   VMCTR_MIN_MEMORY), and CPU quota / period rounded up (default 1). */
void
cl_mgr_vmctr_size (json_t *config, uint64_t *memory, unsigned *cpus)
{
  json_t *res = json_object_get (json_object_get (config, "linux"), "resources");
  json_t *mem = json_object_get (res, "memory"), *cpu = json_object_get (res, "cpu");
  json_int_t limit = json_integer_value (json_object_get (mem, "limit"));
  json_int_t quota = json_integer_value (json_object_get (cpu, "quota"));
  json_int_t period = json_integer_value (json_object_get (cpu, "period"));
  long online = sysconf (_SC_NPROCESSORS_ONLN);

  *memory = CL_VMM_DEFAULT_MEMORY;
  if (limit > 0)
    *memory = (uint64_t)limit < VMCTR_MIN_MEMORY ? VMCTR_MIN_MEMORY : (uint64_t)limit;
  *memory &= ~((1ull << 20) - 1); /* whole MiB */
  *cpus = 1;
  if (quota > 0)
    *cpus
        = (unsigned)((quota + (period > 0 ? period : 100000) - 1) / (period > 0 ? period : 100000));
  if (*cpus < 1)
    *cpus = 1;
  if (online > 0 && *cpus > (unsigned)online)
    *cpus = (unsigned)online;
  if (*cpus > CL_VMM_MAX_CPUS)
    *cpus = CL_VMM_MAX_CPUS;
}

/* 1: warm (the default), 0: cold, -1: a bad value */
static int
warm_wanted (json_t *config, cl_error_t *err)
{
  json_t *a = json_object_get (json_object_get (config, "annotations"), VMCTR_BOOT);
  const char *b = json_string_value (a);

  if (a == NULL || (b && strcmp (b, "warm") == 0))
    return 1;
  if (b && strcmp (b, "cold") == 0)
    return 0;
  return cl_error_make (err, 0, "annotation " VMCTR_BOOT ": `%s`: expected warm or cold",
                        b ? b : "(not a string)");
}

/* CLOISON_VMCTR_TRACE=1 in the environment: the shim's steps on stderr
   with the host's monotonic time (docs/templates.md "Where the time
   goes"); the VMM's and the agent's land in the console log, which is
   copied to stderr when the container ends. */
static bool
trace_on (void)
{
  static int on = -1;

  if (on < 0)
    on = getenv ("CLOISON_VMCTR_TRACE") != NULL;
  return on;
}

static void
trace (const char *what)
{
  if (trace_on ())
    fprintf (stderr, "vmctr-trace %.3f %s\n", cl_now_ns () / 1e9, what);
}

/* With tracing, the VMM's and the agent's lines of the console log. */
static void
trace_console (const char *log)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  cl_error_t e = NULL;

  if (!trace_on () || cl_read_file (log, &text, &len, &e) < 0)
    {
      cl_error_release (&e);
      return;
    }
  for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n"))
    if (strstr (line, "trace") || strstr (line, "cloison-vmm:"))
      fprintf (stderr, "console: %s\n", line);
}

/* Before `ready`, failures go to the runtime on ready_fd ("E" + message);
   it prints them as create's error. */
static int
report_failure (int ready_fd, cl_error_t *err)
{
  char msg[1024];
  int n = snprintf (msg, sizeof msg, "E%s", *err ? (*err)->msg : "the VM container failed");

  if (ready_fd < 0
      || cl_write_all (ready_fd, msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0) < 0)
    fprintf (stderr, "cloison-vmctr: %s\n", msg + 1);
  cl_error_release (err);
  return 1;
}

/* A host pty for the process's terminal: the master goes to the caller's
   console socket, the slave becomes our stdio and controlling terminal
   (raw: the guest's pty does the line discipline), sized as the spec
   says. */
static int
terminal_setup (const char *console_socket, json_t *console_size, cl_error_t *err)
{
  cleanup_close int master = -1, slave = -1;
  struct termios t;

  master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt (master) < 0 || unlockpt (master) < 0)
    return cl_error_errno (err, "open a pty");
  slave = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0)
    return cl_error_errno (err, "open the pty's slave");
  if (console_size)
    {
      struct winsize ws = {
        .ws_row = (unsigned short)json_integer_value (json_object_get (console_size, "height")),
        .ws_col = (unsigned short)json_integer_value (json_object_get (console_size, "width"))
      };
      ioctl (slave, TIOCSWINSZ, &ws);
    }
  if (tcgetattr (slave, &t) == 0)
    {
      cfmakeraw (&t);
      tcsetattr (slave, TCSANOW, &t);
    }
  if (cl_ctr_console_send_to_socket (console_socket, master, err) < 0)
    return -1;
  setsid ();
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    return cl_error_errno (err, "make the pty our terminal");
  for (int i = 0; i < 3; i++)
    dup2 (slave, i);
  return 0;
}

/* The last lines of the console log (the VMM's own errors land there),
   for an error message. */
static char *
log_tail (const char *log)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  cl_error_t e = NULL;
  const char *start;
  int lines = 0;

  if (log == NULL || cl_read_file (log, &text, &len, &e) < 0)
    {
      cl_error_release (&e);
      return cl_xstrdup ("");
    }
  while (len > 0 && text[len - 1] == '\n')
    text[--len] = '\0';
  start = text + len;
  while (start > text && lines < 4)
    if (*--start == '\n')
      lines++;
  return cl_strdup_printf ("; the console's last lines:\n%s", start + (*start == '\n'));
}

/* Connects to the guest agent, retrying while the VM boots.  vmm: the
   VMM child (its death ends the wait), or -1; log: its console.

   Each attempt waits at most VMCTR_CONNECT_TRY_MS, doubled at each retry
   up to the kernel's default of 2 s: a request that reaches a restored
   guest before it took the vsock transport reset is never answered, and
   with the default the shim sat out 2 s for it (seen in the lab when the
   restore was slow). */
static int
agent_connect (uint32_t cid, pid_t vmm, const char *log, uint64_t timeout_ns, int *out,
               cl_error_t *err)
{
  struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = CL_AGENT_PORT, .svm_cid = cid };
  uint64_t deadline = cl_now_ns () + timeout_ns;
  unsigned try_ms = VMCTR_CONNECT_TRY_MS;

  for (;;)
    {
      int fd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), e;
      struct timeval tv = { .tv_sec = try_ms / 1000, .tv_usec = (try_ms % 1000) * 1000 };
      if (fd < 0)
        return cl_error_errno (err, "vsock socket");
      setsockopt (fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof tv);
      if (try_ms < 2000)
        try_ms *= 2;
      if (connect (fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        {
          *out = fd;
          return 0;
        }
      e = errno;
      close (fd);
      if (trace_on ())
        {
          char msg[96];
          snprintf (msg, sizeof msg, "connect: %s", strerror (e));
          trace (msg);
        }
      if (vmm > 0 && waitpid (vmm, NULL, WNOHANG) == vmm)
        {
          cleanup_free char *tail = log_tail (log);
          return cl_error_make (err, 0, "the VM stopped before its agent answered%s", tail);
        }
      if (cl_now_ns () > deadline)
        return cl_error_make (err, e, "no guest agent on vsock CID %u port %u", cid, CL_AGENT_PORT);
      usleep (20000);
    }
}

static int
send_frame (int fd, char type, const void *data, size_t len, cl_error_t *err)
{
  unsigned char h[CL_AGENT_HEADER];

  cl_agent_header_encode (h, type, (uint32_t)len);
  if (cl_write_all (fd, h, sizeof h) < 0 || (len && cl_write_all (fd, data, len) < 0))
    return cl_error_errno (err, "send the process to the guest agent");
  return 0;
}

/* Sends the 'J' request (and 'T' for a terminal) and 'R'. */
int
cl_mgr_vm_send_request (int conn, json_t *spec, bool tty, cl_error_t *err)
{
  cleanup_free char *body = json_dumps (spec, JSON_COMPACT);
  size_t len = body ? strlen (body) : 0;

  if (body == NULL)
    return cl_error_make (err, 0, "encode the process");
  if (len > CL_AGENT_MAX_SPEC)
    return cl_error_make (err, 0, "the process and its seccomp profile take %zu bytes (at most %u)",
                          len, CL_AGENT_MAX_SPEC);
  if (send_frame (conn, CL_AGENT_SPEC, body, len, err) < 0)
    return -1;
  if (tty)
    {
      struct winsize ws = { 0 };
      unsigned char p[CL_AGENT_WINSIZE_LEN];
      ioctl (0, TIOCGWINSZ, &ws);
      cl_agent_winsize_encode (p, ws.ws_row, ws.ws_col);
      if (send_frame (conn, CL_AGENT_PTY, p, sizeof p, err) < 0)
        return -1;
    }
  return send_frame (conn, CL_AGENT_RUN, NULL, 0, err);
}

void
cl_mgr_vm_hex_random (char *out, size_t bytes)
{
  unsigned char buf[64];
  static const char digits[] = "0123456789abcdef";

  if (bytes > sizeof buf)
    bytes = sizeof buf;
  if (getrandom (buf, bytes, 0) != (ssize_t)bytes)
    memset (buf, 0, sizeof buf);
  for (size_t i = 0; i < bytes; i++)
    {
      out[2 * i] = digits[buf[i] >> 4];
      out[2 * i + 1] = digits[buf[i] & 15];
    }
  out[2 * bytes] = '\0';
}

/* Takes a vsock CID host-wide, from one derived from the container id. */
int
cl_mgr_vm_cid_reserve (const char *id, uint32_t *cid, int *fd, cl_error_t *err)
{
  uint32_t c = VMCTR_CID_FIRST + (uint32_t)(cl_fnv1a64 (id) % 1000000u);

  for (int tries = 0; tries < 1024; tries++, c++)
    {
      cl_error_t e = NULL;
      *fd = cl_vmm_vsock_reserve (c, &e);
      if (*fd >= 0)
        {
          *cid = c;
          return 0;
        }
      if (e->status != EADDRINUSE)
        {
          *err = e;
          return -1;
        }
      cl_error_release (&e);
    }
  return cl_error_make (err, 0, "no free vsock CID");
}

struct vm_start
{
  const char *dir, *rootfs;
  const char *log;         /* the serial console */
  const char *api_socket;  /* NULL: none */
  const char *restore_dir; /* a template to clone, NULL: boot */
  bool readonly;
  uint64_t memory;
  unsigned cpus;
  uint32_t cid;
  int vsock_fd;
  const char *tap;
  uint8_t mac[6];
  bool has_mac;
  bool template; /* building the template: out of the container's cgroup */
  int ready_fd;  /* the runtime's: closed in the VMM child */
};

/* The same for every container: a template fits any of them. */
static char *
vm_cmdline (void)
{
  return cl_strdup_printf ("%s quiet cloison.ctrfs=" VMCTR_TAG, CL_VMM_DEFAULT_CMDLINE);
}

/* Moves the calling process to the root cgroup of every hierarchy it is
   in (cgroup2, or each v1 controller's mount under /sys/fs/cgroup).  The
   template is a cache shared by every container of its machine: built in
   the first container's cgroup, its memory file (on the state root's
   tmpfs) and its guest RAM would be charged to that container, and under
   a memory limit equal to the guest's RAM the VMM is killed (OOM) while
   it writes the snapshot.  Best effort: where a write is refused the
   template is built where it is. */
static void
leave_cgroups (void)
{
  FILE *f = fopen ("/proc/self/cgroup", "re");
  char line[512];

  if (f == NULL)
    return;
  while (fgets (line, sizeof line, f))
    {
      char *ctrls = strchr (line, ':'), *end, *procs;
      int fd;
      if (ctrls == NULL || (end = strchr (++ctrls, ':')) == NULL)
        continue;
      *end = '\0';
      if (*ctrls == '\0')
        procs = access ("/sys/fs/cgroup/cgroup.procs", F_OK) == 0
                    ? cl_xstrdup ("/sys/fs/cgroup/cgroup.procs")
                    : cl_xstrdup ("/sys/fs/cgroup/unified/cgroup.procs");
      else
        procs = cl_strdup_printf ("/sys/fs/cgroup/%s/cgroup.procs",
                                  strncmp (ctrls, "name=", 5) == 0 ? ctrls + 5 : ctrls);
      fd = open (procs, O_WRONLY | O_CLOEXEC);
      if (fd >= 0)
        {
          if (write (fd, "0", 1) < 0)
            {
              /* refused (delegation, or no such mount): stay */
            }
          close (fd);
        }
      free (procs);
    }
  fclose (f);
}

/* Forks the VMM child: the guest boots our kernel and initramfs with the
   rootfs shared as VMCTR_TAG; its serial console goes to DIR/console.log. */
static pid_t
vmm_start (const struct vm_start *v, cl_error_t *err)
{
  const char *kernel, *initrd, *log = v->log;
  cleanup_free char *cmdline = NULL;
  pid_t pid;

  if (cl_img_vm_kernel (&kernel, err) < 0 || cl_img_vm_initramfs (&initrd, err) < 0)
    return -1;
  /* the same for every container: a template fits any of them */
  cmdline = vm_cmdline ();
  pid = fork ();
  if (pid < 0)
    return cl_error_errno (err, "fork the VMM");
  if (pid == 0)
    {
      struct cl_vmm_config cfg;
      struct cl_vmm_fs fs = { .tag = VMCTR_TAG, .path = v->rootfs, .readonly = v->readonly };
      struct cl_vmm_net net = { .tap = v->tap, .has_mac = v->has_mac };
      cl_error_t verr = NULL;
      int logfd = open (log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
      int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);

      if (v->ready_fd >= 0)
        close (v->ready_fd); /* the runtime reads it to its end */
      prctl (PR_SET_NAME, "cloison-vmm");
      prctl (PR_SET_PDEATHSIG, SIGKILL); /* never outlive the shim */
      if (v->template)
        leave_cgroups ();
      /* the container's stdio stays the shim's: the VMM's own messages
         land beside the guest's console */
      if (devnull >= 0)
        dup2 (devnull, 0), dup2 (devnull, 1);
      if (logfd >= 0)
        dup2 (logfd, 2);
      setpgid (0, 0); /* no terminal signals of the container's pty */
      cl_vmm_config_init (&cfg);
      cfg.kernel = kernel;
      cfg.initrd = initrd;
      cfg.cmdline = cmdline;
      cfg.cpus = v->cpus;
      cfg.memory = v->memory;
      cfg.fs = &fs;
      cfg.nfs = 1;
      if (v->tap)
        {
          memcpy (net.mac, v->mac, 6);
          cfg.nets = &net;
          cfg.nnets = 1;
        }
      cfg.rng = true;
      cfg.vsock_cid = v->cid;
      cfg.vsock_fd = v->vsock_fd;
      cfg.console = CL_VMM_CONSOLE_FILE;
      cfg.console_path = log;
      cfg.console_in_fd = -1;
      cfg.api_socket = v->api_socket;
      cfg.restore_dir = v->restore_dir;
      cfg.restore_clone = v->restore_dir != NULL;
      cfg.debug = trace_on ();
      if (cl_vmm_run (&cfg, &verr) < 0)
        {
          dprintf (2, "cloison-vmctr: VMM: %s\n", verr ? verr->msg : "failed");
          _exit (1);
        }
      _exit (0);
    }
  return pid;
}

/* The exit status of a container whose VM stopped before its process
   did: 128 + the signal that killed the VMM, else 255. */
static int
vm_death_status (pid_t vmm)
{
  int st;

  if (waitpid (vmm, &st, 0) == vmm && WIFSIGNALED (st))
    return 128 + WTERMSIG (st);
  return 255;
}

void
cl_mgr_vm_stop (pid_t vmm)
{
  if (vmm <= 0)
    return;
  kill (vmm, SIGKILL);
  while (waitpid (vmm, NULL, 0) < 0 && errno == EINTR)
    ;
}

/* Waits for `start` as a container's init does: exec.fifo opened for
   writing (blocks until start opens it) and one byte written. */
static int
wait_start (const char *dir, cl_error_t *err)
{
  cleanup_free char *fifo = cl_strdup_printf ("%s/exec.fifo", dir);
  int fd = open (fifo, O_WRONLY | O_CLOEXEC);

  if (fd < 0)
    return cl_error_errno (err, "open `%s`", fifo);
  if (write (fd, "0", 1) != 1)
    {
      close (fd);
      return cl_error_errno (err, "write `%s`", fifo);
    }
  close (fd);
  return 0;
}

/* --- warm templates (docs/templates.md) --- */

/* STATE_ROOT/.templates/KEY, KEY from what makes two VMs the same machine:
   kernel, initramfs and VMM (cl_mgr_template_key_files), command line,
   memory, vCPUs, with or without a NIC. */
static char *
template_dir (const char *state_dir, const struct vm_start *v, cl_error_t *err)
{
  const char *kernel, *initrd;
  cleanup_free char *root = cl_xstrdup (state_dir), *cmdline = vm_cmdline (), *key = NULL;
  cleanup_free char *files = NULL;
  char *slash = strrchr (root, '/');

  if (cl_img_vm_kernel (&kernel, err) < 0 || cl_img_vm_initramfs (&initrd, err) < 0
      || (files = cl_mgr_template_key_files (kernel, initrd, err)) == NULL)
    return NULL;
  if (slash)
    *slash = '\0';
  /* the device layout: with or without a NIC (a clone's is re-pointed) */
  key = cl_strdup_printf ("%s|%s|%llu|%u%s", files, cmdline, (unsigned long long)v->memory,
                          v->cpus, v->tap ? "|net" : "");
  return cl_strdup_printf ("%s/.templates/%016llx", root, (unsigned long long)cl_fnv1a64 (key));
}

/* Waits for the agent's "ready" line in the console log. */
int
cl_mgr_vm_wait_ready_line (const char *log, pid_t vmm, cl_error_t *err)
{
  uint64_t deadline = cl_now_ns () + VMCTR_BOOT_TIMEOUT_NS;

  while (cl_now_ns () < deadline)
    {
      cleanup_free char *text = NULL;
      size_t len = 0;
      cl_error_t e = NULL;

      if (cl_read_file (log, &text, &len, &e) == 0 && strstr (text, "cloison-agent: ready"))
        return 0;
      cl_error_release (&e);
      if (waitpid (vmm, NULL, WNOHANG) == vmm)
        return cl_error_make (err, 0, "the template VM stopped before its agent was ready");
      usleep (50000);
    }
  return cl_error_make (err, 0, "the template VM's agent was not ready in time");
}

int
cl_mgr_vm_template_claim (const char *tdir, int *lock_fd, cl_error_t *err)
{
  cleanup_free char *lock = cl_strdup_printf ("%s.lock", tdir);
  cleanup_free char *state = cl_strdup_printf ("%s/state.json", tdir);
  cleanup_free char *failed = cl_strdup_printf ("%s.failed.log", tdir);
  cleanup_free char *parent = cl_xstrdup (tdir);
  cleanup_close int fd = -1;
  struct stat st;

  *strrchr (parent, '/') = '\0';
  if (cl_mkdir_p (parent, 0700, err) < 0)
    return -1;
  fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || flock (fd, LOCK_EX) < 0)
    return cl_error_errno (err, "lock `%s`", lock);
  if (access (state, F_OK) == 0)
    {
      utimensat (AT_FDCWD, tdir, NULL, 0); /* used now: the last to go */
      return 1;
    }
  if (stat (failed, &st) == 0 && time (NULL) - st.st_mtime < CL_MGR_VM_TEMPLATE_RETRY_S)
    return cl_error_make (err, 0, "it failed %lld s ago (see `%s`)",
                          (long long)(time (NULL) - st.st_mtime), failed);
  *lock_fd = steal_fd (&fd);
  return 0;
}

int
cl_mgr_vm_template_take (const char *tdir, pid_t vmm, cl_error_t *err)
{
  cleanup_free char *log = cl_strdup_printf ("%s.tmp/console.log", tdir);
  cleanup_free char *sock = cl_strdup_printf ("%s.tmp/api.sock", tdir);
  cleanup_free char *snap = cl_strdup_printf ("%s.tmp/snap", tdir);
  cleanup_free char *kept = cl_strdup_printf ("%s/console.log", snap);
  cleanup_free char *body = NULL;
  int r;

  /* the agent says it listens on the console: the guest is booted and
     idle, and its vsock has carried nothing yet */
  if (cl_mgr_vm_wait_ready_line (log, vmm, err) < 0)
    {
      cl_mgr_vm_stop (vmm);
      return -1;
    }
  sleep (1);
  body = cl_strdup_printf ("{\"dir\":\"%s\"}", snap);
  r = cl_unix_http_request (sock, "PUT", "/snapshot/create", body, err);
  cl_mgr_vm_stop (vmm);
  /* the template's boot log stays beside it, for people */
  if (r == 0 && rename (log, kept) < 0)
    r = cl_error_errno (err, "rename `%s`", log);
  if (r == 0 && rename (snap, tdir) < 0)
    r = cl_error_errno (err, "rename `%s`", snap);
  return r;
}

void
cl_mgr_vm_template_built (const char *tdir, int r)
{
  cleanup_free char *log = cl_strdup_printf ("%s.tmp/console.log", tdir);
  cleanup_free char *failed = cl_strdup_printf ("%s.failed.log", tdir);
  cleanup_free char *tmp = cl_strdup_printf ("%s.tmp", tdir);
  cl_error_t e = NULL;

  /* why the template failed (the VMM's own errors are in its console
     log): kept beside the cache, for people */
  if (r < 0 && rename (log, failed) < 0 && errno != ENOENT)
    cl_warn ("keep `%s`: %s", failed, strerror (errno));
  if (cl_rm_rf (tmp, &e) < 0)
    cl_error_release (&e);
  /* a new template: the cache it is in back under its cap */
  cleanup_free char *cache = cl_xstrdup (tdir);
  *strrchr (cache, '/') = '\0';
  if (r == 0 && cl_mgr_template_cache_prune (cache, tdir, &e) < 0)
    {
      cl_warn ("template cache `%s`: %s", cache, e->msg);
      cl_error_release (&e);
    }
}

/* Boots the idle VM (kernel + agent waiting for its first request, the
   share mounted) and snapshots it into `tdir`, once: a lock file beside
   it makes concurrent creates wait for the first. */
static int
template_ensure (const char *tdir, const struct vm_start *like, cl_error_t *err)
{
  cleanup_free char *tmp = cl_strdup_printf ("%s.tmp", tdir);
  cleanup_free char *share = NULL;
  cleanup_close int lfd = -1;
  struct vm_start v = *like;
  pid_t vmm;
  int r = cl_mgr_vm_template_claim (tdir, &lfd, err);

  if (r != 0)
    return r < 0 ? -1 : 0;
  r = -1;
  if (cl_rm_rf (tmp, err) < 0 || cl_mkdir_p (tmp, 0700, err) < 0)
    return -1;
  share = cl_strdup_printf ("%s/share", tmp);
  if (cl_mkdir_p (share, 0700, err) < 0)
    return -1;
  v.rootfs = share;
  v.readonly = false;
  v.log = cl_strdup_printf ("%s/console.log", tmp);
  v.api_socket = cl_strdup_printf ("%s/api.sock", tmp);
  v.restore_dir = NULL;
  v.template = true;
  /* a NIC's template is built on this container's tap: the guest keeps
     its interface down until a clone's agent is given its MAC and
     addresses, so the tap carries nothing meanwhile */
  if (cl_mgr_vm_cid_reserve (tmp, &v.cid, &v.vsock_fd, err) == 0)
    {
      vmm = vmm_start (&v, err);
      close (v.vsock_fd);
      if (vmm >= 0)
        r = cl_mgr_vm_template_take (tdir, vmm, err);
    }
  cl_mgr_vm_template_built (tdir, r);
  free ((char *)v.log);
  free ((char *)v.api_socket);
  return r < 0 ? cl_error_wrap (err, "template `%s`", tdir) : 0;
}

/* The session of the process until its exit status; closes conn. */
static int
relay (int conn, bool tty, pid_t vmm)
{
  cl_error_t err = NULL;
  int code = 0;

  signal (SIGPIPE, SIG_IGN);
  if (cl_mgr_agent_session_full (conn, 0, 1, 2, tty, true, &code, &err) < 0)
    {
      cl_debug ("cloison-vmctr: %s", err->msg);
      cl_error_release (&err);
      close (conn);
      if (vmm > 0)
        {
          kill (vmm, SIGKILL);
          return vm_death_status (vmm);
        }
      return 255;
    }
  close (conn);
  return code;
}

int
cl_mgr_vmctr_create (const char *dir, int ready_fd)
{
  cleanup_free char *spec_path = cl_strdup_printf ("%s/" CL_CTR_VM_SPEC_FILE, dir);
  cleanup_json json_t *vs = NULL, *req = NULL;
  cleanup_close int rootfd = -1, conn = -1;
  struct cl_mgr_vmctr_net net = { 0 };
  struct vm_start v = { .dir = dir, .vsock_fd = -1, .ready_fd = ready_fd };
  cleanup_free char *log = NULL, *tdir = NULL, *api = NULL, *seed = NULL;
  json_t *config, *process, *linux_obj;
  const char *console_socket;
  cl_error_t err = NULL;
  char entropy[129];
  struct timespec now;
  bool tty;
  pid_t vmm = -1;
  int code, warm;

  trace ("create");
  if (cl_json_load_file (spec_path, &vs, &err) < 0)
    return report_failure (ready_fd, &err);
  config = json_object_get (vs, "config");
  process = json_object_get (config, "process");
  linux_obj = json_object_get (config, "linux");
  v.rootfs = json_string_value (json_object_get (vs, "rootfs"));
  console_socket = json_string_value (json_object_get (vs, "console_socket"));
  v.readonly = json_is_true (json_object_get (json_object_get (config, "root"), "readonly"));
  tty = json_is_true (json_object_get (process, "terminal"));
  if (v.rootfs == NULL || !json_is_object (process))
    {
      cl_error_make (&err, 0, "`%s`: no rootfs or process", spec_path);
      return report_failure (ready_fd, &err);
    }
  cl_mgr_vmctr_size (config, &v.memory, &v.cpus);
  warm = warm_wanted (config, &err);
  if (warm < 0)
    return report_failure (ready_fd, &err);

  /* the spec's bind mounts, under the shared tree, seen only by us (and
     the VMM child, which serves them to the guest) */
  if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    {
      cl_error_errno (&err, "a mount namespace for the container's bind mounts");
      return report_failure (ready_fd, &err);
    }
  rootfd = open (v.rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    {
      cl_error_errno (&err, "root.path `%s`", v.rootfs);
      return report_failure (ready_fd, &err);
    }
  if (cl_ctr_rootfs_bind_mounts (rootfd, json_string_value (json_object_get (vs, "bundle")),
                                 json_object_get (config, "mounts"), &err)
      < 0)
    return report_failure (ready_fd, &err);
  if (cl_mgr_vmctr_net_setup (linux_obj, json_string_value (json_object_get (vs, "id")), &net, &err)
      < 0)
    return report_failure (ready_fd, &err);
  v.tap = net.tap;
  memcpy (v.mac, net.mac, 6);
  v.has_mac = net.tap != NULL;
  if (tty && console_socket
      && terminal_setup (console_socket, json_object_get (process, "consoleSize"), &err) < 0)
    return report_failure (ready_fd, &err);
  if (tty && console_socket == NULL)
    tty = isatty (0); /* a foreground run on our terminal */
  log = cl_strdup_printf ("%s/console.log", dir);
  api = cl_strdup_printf ("%s/" CL_CTR_VM_API_SOCKET, dir);
  v.log = log;
  v.api_socket = strlen (api) < sizeof ((struct sockaddr_un *)0)->sun_path ? api : NULL;
  /* warm: a clone of the template of this machine (made once), unless
     the config asks for a cold boot */
  trace ("set up (mounts, network, terminal)");
  if (warm)
    {
      tdir = template_dir (dir, &v, &err);
      if (tdir == NULL || template_ensure (tdir, &v, &err) < 0)
        {
          fprintf (stderr, "cloison-vmctr: no template, booting: %s\n", err->msg);
          cl_error_release (&err);
        }
      else
        v.restore_dir = tdir;
    }
  /* a clone takes the template's CID when it is free (the guest keeps
     it), else the next free one */
  seed = v.restore_dir ? cl_strdup_printf ("%s.tmp", v.restore_dir)
                       : cl_xstrdup (json_string_value (json_object_get (vs, "id")));
  if (cl_mgr_vm_cid_reserve (seed, &v.cid, &v.vsock_fd, &err) < 0)
    return report_failure (ready_fd, &err);
  trace ("template and CID");
  vmm = vmm_start (&v, &err);
  close (v.vsock_fd);
  if (vmm < 0)
    return report_failure (ready_fd, &err);
  trace ("VMM forked");
  if (agent_connect (v.cid, vmm, v.log,
                     v.restore_dir ? VMCTR_CLONE_TIMEOUT_NS : VMCTR_BOOT_TIMEOUT_NS, &conn, &err)
      < 0)
    {
      cl_mgr_vm_stop (vmm);
      if (v.restore_dir == NULL)
        return report_failure (ready_fd, &err);
      /* a template that does not restore here: boot instead */
      {
        cleanup_free char *msg = cl_strdup_printf (
            "cloison-vmctr: the clone of `%s` failed (%s): booting\n", v.restore_dir, err->msg);
        int fd = open (v.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd >= 0)
          (void)cl_write_all (fd, msg, strlen (msg)), close (fd);
      }
      cl_error_release (&err);
      v.restore_dir = NULL;
      if (cl_mgr_vm_cid_reserve (json_string_value (json_object_get (vs, "id")), &v.cid,
                                 &v.vsock_fd, &err)
          < 0)
        return report_failure (ready_fd, &err);
      vmm = vmm_start (&v, &err);
      close (v.vsock_fd);
      if (vmm < 0)
        return report_failure (ready_fd, &err);
      if (agent_connect (v.cid, vmm, v.log, VMCTR_BOOT_TIMEOUT_NS, &conn, &err) < 0)
        {
          cl_mgr_vm_stop (vmm);
          return report_failure (ready_fd, &err);
        }
    }
  {
    /* how this VM started, for people and tests: DIR/vm-boot */
    cleanup_free char *how = cl_strdup_printf ("%s/vm-boot", dir);
    cleanup_free char *what = cl_strdup_printf ("%s%s\n", v.restore_dir ? "clone " : "cold",
                                                v.restore_dir ? v.restore_dir : "");
    cl_error_t e = NULL;
    if (cl_write_file (how, what, strlen (what), 0, &e) < 0)
      cl_error_release (&e);
  }
  trace ("agent connected");
  dprintf (ready_fd, "R%u\n", v.cid);
  close (ready_fd);
  if (wait_start (dir, &err) < 0)
    {
      cl_mgr_vm_stop (vmm);
      fprintf (stderr, "cloison-vmctr: %s\n", err->msg);
      return 255;
    }
  trace ("started");
  /* what only the first process carries: the guest's mounts, name,
     network, and what makes this VM unique (entropy, clock) */
  cl_mgr_vm_hex_random (entropy, 64);
  clock_gettime (CLOCK_REALTIME, &now);
  req = json_pack ("{s:O, s:O*, s:O*, s:O*, s:s, s:f}", "process", process, "seccomp",
                   json_object_get (linux_obj, "seccomp"), "mounts",
                   json_object_get (config, "mounts"), "hostname",
                   json_object_get (config, "hostname"), "entropy", entropy, "time",
                   now.tv_sec + now.tv_nsec / 1e9);
  if (net.guest)
    json_object_set (req, "network", net.guest);
  if (net.hostname && json_object_get (config, "hostname") == NULL)
    json_object_set_new (req, "hostname", json_string (net.hostname));
  json_object_set_new (req, "rootfs_readonly", json_boolean (v.readonly));
  if (trace_on ())
    json_object_set_new (req, "trace", json_true ());
  if (cl_mgr_vm_send_request (conn, req, tty, &err) < 0)
    {
      cl_mgr_vm_stop (vmm);
      fprintf (stderr, "cloison-vmctr: %s\n", err->msg);
      return 255;
    }
  trace ("request sent");
  code = relay (steal_fd (&conn), tty, vmm);
  trace ("exit status");
  cl_mgr_vm_stop (vmm);
  trace ("VMM stopped");
  trace_console (v.log);
  cl_mgr_vmctr_net_release (&net);
  return code;
}

int
cl_mgr_vmctr_exec (uint32_t cid, const char *spec_file, const char *console_socket, int ready_fd)
{
  cleanup_json json_t *req = NULL;
  cleanup_close int conn = -1;
  json_t *process;
  cl_error_t err = NULL;
  bool tty;

  if (cl_json_load_file (spec_file, &req, &err) < 0)
    return report_failure (ready_fd, &err);
  unlink (spec_file);
  process = json_object_get (req, "process");
  tty = json_is_true (json_object_get (process, "terminal"));
  if (tty && console_socket
      && terminal_setup (console_socket, json_object_get (process, "consoleSize"), &err) < 0)
    return report_failure (ready_fd, &err);
  if (tty && console_socket == NULL)
    tty = isatty (0);
  if (agent_connect (cid, -1, NULL, VMCTR_EXEC_CONNECT_TIMEOUT_NS, &conn, &err) < 0
      || cl_mgr_vm_send_request (conn, req, tty, &err) < 0)
    return report_failure (ready_fd, &err);
  if (ready_fd >= 0)
    {
      dprintf (ready_fd, "R\n");
      close (ready_fd);
    }
  return relay (steal_fd (&conn), tty, -1);
}
