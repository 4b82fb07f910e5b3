/* SPDX-License-Identifier: Apache-2.0 */
/* cl_vmm_run: builds the machine from a config (or a snapshot), runs it
   until the guest stops, tears it down. */
#include "vmm/vmm.h"

#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/acpi.h"
#include "vmm/boot.h"
#include "vmm/devices.h"
#include "vmm/machine.h"
#include "vmm/mptable.h"
#include "vmm/vmm_internal.h"

#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

void
cl_vmm_config_init (struct cl_vmm_config *cfg)
{
  memset (cfg, 0, sizeof (*cfg));
  cfg->cpus = 1;
  cfg->memory = CL_VMM_DEFAULT_MEMORY;
  cfg->console = CL_VMM_CONSOLE_SERIAL;
  cfg->console_in_fd = 0;
  cfg->console_out_fd = 1;
  cfg->ready_fd = -1;
  cfg->vsock_fd = -1;
}

void
cl_vmm_disk_clear (struct cl_vmm_disk *disk)
{
  free ((char *)disk->path);
  free ((char *)disk->serial);
  memset (disk, 0, sizeof (*disk));
}

void
cl_vmm_net_clear (struct cl_vmm_net *net)
{
  free ((char *)net->tap);
  memset (net, 0, sizeof (*net));
}

void
cl_vmm_fs_clear (struct cl_vmm_fs *fs)
{
  free ((char *)fs->tag);
  free ((char *)fs->path);
  memset (fs, 0, sizeof (*fs));
}

int
cl_vmm_parse_fs (const char *spec, struct cl_vmm_fs *out, cl_error_t *err)
{
  const char *eq = strchr (spec, '='), *path;
  size_t len;

  memset (out, 0, sizeof (*out));
  if (eq == NULL || eq == spec || (size_t)(eq - spec) > 36 || eq[1] == 0)
    return cl_error_make (err, 0, "--fs `%s`: expected TAG=DIR[,ro] (TAG of 1 to 36 bytes)", spec);
  path = eq + 1;
  len = strlen (path);
  if (len > 3 && strcmp (path + len - 3, ",ro") == 0)
    {
      out->readonly = true;
      len -= 3;
    }
  if (memchr (path, ',', len))
    return cl_error_make (err, 0, "--fs `%s`: unknown option after DIR (only `,ro`)", spec);
  out->tag = strndup (spec, eq - spec);
  out->path = strndup (path, len);
  return 0;
}

static int
parse_disk (const char *spec, struct cl_vmm_disk *out, cl_error_t *err)
{
  cleanup_free char *copy = cl_xstrdup (spec);
  char *save = NULL;
  char *tok = strtok_r (copy, ",", &save);
  if (tok == NULL || *tok == 0)
    return cl_error_make (err, 0, "--disk `%s`: expected PATH[,ro][,serial=ID]", spec);
  out->path = cl_xstrdup (tok);
  while ((tok = strtok_r (NULL, ",", &save)))
    {
      if (strcmp (tok, "ro") == 0)
        out->readonly = true;
      else if (strncmp (tok, "serial=", 7) == 0 && strlen (tok + 7) <= 20)
        {
          free ((char *)out->serial); /* the last serial= wins */
          out->serial = cl_xstrdup (tok + 7);
        }
      else
        return cl_error_make (
            err, 0, "--disk `%s`: unknown option `%s` (ro, serial=ID of at most 20 bytes)", spec,
            tok);
    }
  return 0;
}

int
cl_vmm_parse_disk (const char *spec, struct cl_vmm_disk *out, cl_error_t *err)
{
  memset (out, 0, sizeof (*out));
  if (parse_disk (spec, out, err) < 0)
    {
      cl_vmm_disk_clear (out);
      return -1;
    }
  return 0;
}

static int
parse_net (const char *spec, struct cl_vmm_net *out, cl_error_t *err)
{
  cleanup_free char *copy = cl_xstrdup (spec);
  char *save = NULL;
  for (char *tok = strtok_r (copy, ",", &save); tok; tok = strtok_r (NULL, ",", &save))
    {
      if (strncmp (tok, "tap=", 4) == 0 && tok[4] && strlen (tok + 4) < 16)
        {
          free ((char *)out->tap); /* the last tap= wins */
          out->tap = cl_xstrdup (tok + 4);
        }
      else if (strncmp (tok, "mac=", 4) == 0)
        {
          unsigned m[6];
          char extra;
          if (sscanf (tok + 4, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
                      &extra)
              != 6)
            return cl_error_make (err, 0, "--net `%s`: bad MAC `%s`", spec, tok + 4);
          for (int i = 0; i < 6; i++)
            {
              if (m[i] > 0xFF)
                return cl_error_make (err, 0, "--net `%s`: bad MAC `%s`", spec, tok + 4);
              out->mac[i] = m[i];
            }
          out->has_mac = true;
        }
      else
        return cl_error_make (err, 0, "--net `%s`: expected tap=NAME[,mac=MAC]", spec);
    }
  if (out->tap == NULL)
    return cl_error_make (err, 0, "--net `%s`: tap=NAME is required", spec);
  return 0;
}

int
cl_vmm_parse_net (const char *spec, struct cl_vmm_net *out, cl_error_t *err)
{
  memset (out, 0, sizeof (*out));
  if (parse_net (spec, out, err) < 0)
    {
      cl_vmm_net_clear (out);
      return -1;
    }
  return 0;
}

static uint64_t
host_memory (void)
{
  long pages = sysconf (_SC_PHYS_PAGES), size = sysconf (_SC_PAGESIZE);
  return pages > 0 && size > 0 ? (uint64_t)pages * size : UINT64_MAX;
}

/* booted: whether the kernel is read (not by an incoming migration) */
static int
config_check (const struct cl_vmm_config *cfg, bool booted, cl_error_t *err)
{
  struct stat st;
  if (booted && cfg->kernel == NULL)
    return cl_error_make (err, 0, "--kernel: required");
  if (booted && stat (cfg->kernel, &st) < 0)
    return cl_error_errno (err, "kernel `%s`", cfg->kernel);
  if (booted && cfg->initrd && stat (cfg->initrd, &st) < 0)
    return cl_error_errno (err, "initrd `%s`", cfg->initrd);
  if (cfg->cpus < 1 || cfg->cpus > CL_VMM_MAX_CPUS)
    return cl_error_make (err, 0, "--cpus %u: expected 1 to %d", cfg->cpus, CL_VMM_MAX_CPUS);
  if (cfg->memory < CL_VMM_MIN_MEMORY)
    return cl_error_make (err, 0, "--memory %llu MiB: below the minimum of %llu MiB",
                          (unsigned long long)(cfg->memory >> 20),
                          (unsigned long long)(CL_VMM_MIN_MEMORY >> 20));
  if (cfg->memory > host_memory ())
    return cl_error_make (err, 0, "--memory %llu MiB: more than the host has (%llu MiB)",
                          (unsigned long long)(cfg->memory >> 20),
                          (unsigned long long)(host_memory () >> 20));
  if (cfg->memory & 0xFFF)
    return cl_error_make (err, 0, "--memory: not a multiple of 4 KiB");
  for (size_t i = 0; i < cfg->ndisks; i++)
    if (stat (cfg->disks[i].path, &st) < 0)
      return cl_error_errno (err, "disk `%s`", cfg->disks[i].path);
  for (size_t i = 0; i < cfg->nfs; i++)
    {
      if (stat (cfg->fs[i].path, &st) < 0)
        return cl_error_errno (err, "--fs %s=%s", cfg->fs[i].tag, cfg->fs[i].path);
      if (!S_ISDIR (st.st_mode))
        return cl_error_make (err, 0, "--fs %s=%s: not a directory", cfg->fs[i].tag,
                              cfg->fs[i].path);
    }
  /* the network namespace we are in (not /sys/class/net, which shows
     the one its sysfs was mounted from: a VM-isolated container's VMM
     runs in the container's) */
  for (size_t i = 0; i < cfg->nnets; i++)
    if (if_nametoindex (cfg->nets[i].tap) == 0)
      return cl_error_errno (err, "tap `%s`", cfg->nets[i].tap);
  if (cfg->console == CL_VMM_CONSOLE_FILE && cfg->console_path == NULL)
    return cl_error_make (err, 0, "--console file=PATH: PATH missing");
  return 0;
}

/* Raw terminal while the guest owns the console. */
struct term_state
{
  int fd;
  struct termios saved;
};

static void
term_raw (struct term_state *t, int fd)
{
  t->fd = -1;
  if (fd < 0 || !isatty (fd) || tcgetattr (fd, &t->saved) < 0)
    return;
  struct termios raw = t->saved;
  cfmakeraw (&raw);
  raw.c_oflag |= OPOST | ONLCR;
  raw.c_lflag |= ISIG; /* ^C still stops the VM */
  if (tcsetattr (fd, TCSANOW, &raw) == 0)
    t->fd = fd;
}

static void
term_restore (struct term_state *t)
{
  if (t->fd >= 0)
    tcsetattr (t->fd, TCSANOW, &t->saved);
}

static void
on_signal (void *opaque, uint32_t events)
{
  struct vmm *m = opaque;
  struct signalfd_siginfo si;
  (void)events;
  if (read (m->signal_fd, &si, sizeof si) == sizeof si)
    {
      char msg[64];
      snprintf (msg, sizeof msg, "stopped by signal %s", strsignal (si.ssi_signo));
      cl_vmm_vm_request_stop (m->vm, VM_STOP_SIGNAL, msg);
    }
}

static int
vmm_build_devices (struct vmm *m, cl_error_t *err)
{
  const struct cl_vmm_config *cfg = m->cfg;
  int in_fd = cfg->console_in_fd, out_fd = cfg->console_out_fd;

  if (cfg->console == CL_VMM_CONSOLE_FILE)
    {
      m->console_file_fd
          = open (cfg->console_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (m->console_file_fd < 0)
        return cl_error_errno (err, "console file `%s`", cfg->console_path);
      out_fd = m->console_file_fd;
    }
  else if (cfg->console == CL_VMM_CONSOLE_VIRTIO)
    in_fd = out_fd = -1;

  if (cl_vmm_pci_bus_create (m->vm, err) < 0 || cl_vmm_legacy_ports_create (m->vm, err) < 0
      || cl_vmm_i8042_create (m->vm, err) < 0 || cl_vmm_rtc_create (m->vm, err) < 0
      || cl_vmm_acpi_pm_create (m->vm, &m->pm, err) < 0
      || cl_vmm_uart_create (m->vm, in_fd, out_fd, &m->uart, err) < 0)
    return -1;
  return cl_vmm_build_virtio (m, err);
}

static int
vmm_boot (struct vmm *m, cl_error_t *err)
{
  const struct cl_vmm_config *cfg = m->cfg;
  uint64_t entry;
  const char *cmdline = cfg->cmdline ? cfg->cmdline : CL_VMM_DEFAULT_CMDLINE;
  if (cl_vmm_boot_load (&m->vm->mem, m->vm->mem_size, cfg->kernel, cfg->initrd, cmdline, &entry,
                        err)
      < 0)
    return -1;
  /* Both ways of describing the CPUs: kernels without MP-table parsing
     (Debian's cloud kernel) read ACPI, tiny guests read the MP table. */
  if (cl_vmm_mptable_write (&m->vm->mem, BOOT_MPTABLE_ADDR, m->vm->ncpus, err) < 0
      || cl_vmm_acpi_write (&m->vm->mem, m->vm->ncpus, err) < 0)
    return -1;
  return cl_vmm_boot_setup_vcpu (m->vm->vcpus[0].fd, entry, err);
}

static int
vmm_result (struct vmm *m, cl_error_t *err)
{
  struct vm *vm = m->vm;
  const char *msg = vm->stop_msg ? vm->stop_msg : "stopped";
  switch ((enum vm_stop_reason)atomic_load (&vm->stop_reason))
    {
    case VM_STOP_SHUTDOWN:
    case VM_STOP_PANIC:
    case VM_STOP_ERROR:
      return cl_error_make (err, 0, "%s", msg);
    default:
      if (m->cfg->debug)
        {
          json_t *metrics = cl_vmm_vm_metrics_json (vm);
          char *text = json_dumps (metrics, JSON_COMPACT);
          fprintf (stderr, "cloison-vmm: %s; metrics %s\n", msg, text);
          free (text);
          json_decref (metrics);
        }
      if (m->cfg->guest_status)
        *m->cfg->guest_status = atomic_load (&vm->stop_reason) == VM_STOP_POWEROFF
                                    ? atomic_load (&vm->guest_status)
                                    : -1;
      return 0;
    }
}

int
cl_vmm_run (const struct cl_vmm_config *user_cfg, cl_error_t *err)
{
  struct vmm m = { .console_file_fd = -1, .signal_fd = -1, .api_fd = -1 };
  struct cl_vmm_config restored = { 0 };
  struct vmm_incoming *incoming = NULL;
  struct term_state term = { .fd = -1 };
  sigset_t stop_signals, old_mask;
  bool masked = false;
  cleanup_free char *mem_file = NULL;
  int ret = -1;

  uint64_t t_entry = cl_now_ns ();
  m.cfg = user_cfg;
  if (user_cfg->restore_dir)
    {
      if (cl_vmm_snapshot_load_config (user_cfg->restore_dir, user_cfg, &restored, &m.saved, err)
          < 0)
        return -1;
      m.cfg = &restored;
    }
  else if (user_cfg->incoming)
    {
      if (cl_vmm_incoming_open (user_cfg, &incoming, &restored, err) < 0)
        goto out_config;
      m.cfg = &restored;
    }
  if (config_check (m.cfg, incoming == NULL, err) < 0)
    goto out_config;

  sigemptyset (&stop_signals);
  sigaddset (&stop_signals, SIGTERM);
  sigaddset (&stop_signals, SIGINT);
  sigaddset (&stop_signals, SIGHUP);
  pthread_sigmask (SIG_BLOCK, &stop_signals, &old_mask);
  masked = true;
  /* a console reader that went away must not kill the VM */
  signal (SIGPIPE, SIG_IGN);
  m.signal_fd = signalfd (-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (m.signal_fd < 0)
    {
      cl_error_errno (err, "signalfd");
      goto out;
    }

  mem_file = user_cfg->restore_dir ? cl_strdup_printf ("%s/memory", user_cfg->restore_dir) : NULL;
  if (cl_vmm_vm_create (&m.vm, m.cfg->cpus, m.cfg->memory, mem_file, err) < 0)
    goto out;
  if (incoming && cl_vmm_incoming_cpuid (incoming, m.vm, err) < 0)
    goto out;
  if (cl_vmm_vm_vcpus_create (m.vm, err) < 0 || vmm_build_devices (&m, err) < 0)
    goto out;
  if (user_cfg->restore_dir)
    {
      if (cl_vmm_snapshot_restore (&m, user_cfg->restore_dir, err) < 0)
        goto out;
    }
  else if (incoming)
    {
      /* The API socket, the sandbox, the signal handler and the vCPU
         threads (held before their first KVM_RUN, their own filters
         loaded) before the stream: they cost tens of ms that would
         otherwise add to the guest's pause (the API answers once the I/O
         thread runs). */
      if ((user_cfg->api_socket && cl_vmm_api_start (&m, user_cfg->api_socket, err) < 0)
          || cl_vmm_sandbox_apply (m.cfg->seccomp, err) < 0
          || cl_vmm_vm_event_add (m.vm, m.signal_fd, EPOLLIN, on_signal, &m, err) < 0)
        goto out;
      if (m.cfg->seccomp != CL_VMM_SECCOMP_OFF)
        m.vm->vcpu_thread_init = cl_vmm_sandbox_apply_vcpu_thread;
      if (cl_vmm_vm_vcpus_start_paused (m.vm, err) < 0
          || cl_vmm_incoming_receive (incoming, &m, err) < 0)
        goto out;
    }
  else if (vmm_boot (&m, err) < 0)
    goto out;

  if (!incoming && cl_vmm_vm_event_add (m.vm, m.signal_fd, EPOLLIN, on_signal, &m, err) < 0)
    goto out;
  if (!incoming && user_cfg->api_socket && cl_vmm_api_start (&m, user_cfg->api_socket, err) < 0)
    goto out;
  if (cl_vmm_vm_io_thread_start (m.vm, err) < 0)
    goto out;
  if (!incoming && cl_vmm_sandbox_apply (m.cfg->seccomp, err) < 0)
    goto out;
  if (m.cfg->seccomp != CL_VMM_SECCOMP_OFF)
    m.vm->vcpu_thread_init = cl_vmm_sandbox_apply_vcpu_thread;
  if (m.cfg->console == CL_VMM_CONSOLE_SERIAL)
    term_raw (&term, m.cfg->console_in_fd);
  if (incoming)
    {
      cl_vmm_vm_resume (m.vm); /* started before the stream */
      cl_vmm_incoming_resumed (incoming);
    }
  else if (cl_vmm_vm_vcpus_start (m.vm, err) < 0)
    goto out;
  if (user_cfg->restore_dir)
    m.restore_ns = cl_now_ns () - t_entry; /* read by GET /metrics */
  else if (incoming)
    m.restore_ns = cl_now_ns () - m.restore_ns; /* from the stream's end */
  if (m.cfg->debug)
    fprintf (stderr, "cloison-vmm: vCPUs started %.1f ms after entry\n",
             (cl_now_ns () - t_entry) / 1e6);
  if (m.cfg->debug && incoming)
    fprintf (stderr, "cloison-vmm: running %.1f ms after the migration stream's end\n",
             m.restore_ns / 1e6);
  if (user_cfg->ready_fd >= 0 && cl_write_all (user_cfg->ready_fd, "R", 1) < 0)
    {
      /* the caller stopped listening: not the guest's problem */
    }
  cl_vmm_vm_vcpus_join (m.vm);
  ret = vmm_result (&m, err);

out:
  term_restore (&term);
  if (m.vm)
    {
      cl_vmm_vm_request_stop (m.vm, VM_STOP_API, NULL);
      cl_vmm_vm_vcpus_join (m.vm);
      cl_vmm_vm_io_thread_stop (m.vm);
    }
  cl_vmm_migration_free (&m);
  cl_vmm_api_stop (&m);
  cl_vmm_free_virtio (&m);
  if (m.vm)
    cl_vmm_pci_bus_free (m.vm);
  cl_vmm_vm_destroy (m.vm);
  cl_vmm_uart_free (m.uart);
  if (m.signal_fd >= 0)
    close (m.signal_fd);
  if (m.console_file_fd >= 0)
    close (m.console_file_fd);
  if (masked)
    pthread_sigmask (SIG_SETMASK, &old_mask, NULL);
out_config:
  cl_vmm_incoming_close (incoming, ret < 0 && err ? *err : NULL);
  json_decref (m.saved);
  cl_vmm_config_free_arrays (&restored);
  return ret;
}
