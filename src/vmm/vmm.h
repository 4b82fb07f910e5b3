/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-vmm as a library: one KVM microVM per call, run in the calling
   process until the guest stops.  The manager runs it in a forked child
   (no exec of cloison-vmm); the cloison-vmm front end only parses flags
   into this struct.  The call takes over the process: it installs signal
   handlers (SIGTERM/SIGINT stop the VM cleanly) and, once the machine is
   built, a seccomp filter with no_new_privs. */
#ifndef CLOISON_VMM_VMM_H
#define CLOISON_VMM_VMM_H

#include "common/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* This header's cl_vmm_config has api_socket (and ready_fd). */
#define CLOISON_VMM_HAS_API 1
#define CLOISON_VMM_HAS_READY_FD 1

#define CL_VMM_DEFAULT_MEMORY (256ULL << 20)
#define CL_VMM_MIN_MEMORY (16ULL << 20)
#define CL_VMM_MAX_CPUS 32
/* Beyond the console and the reboot method: options that shorten a stock
   kernel's boot on this machine model (no PS/2 mouse or multiplexer, one
   UART, no IO-APIC timer check, no crypto self-tests at boot); see
   README.md, "Boot time". */
#define CL_VMM_DEFAULT_CMDLINE                                                                     \
  "console=ttyS0 reboot=k panic=-1 pci=conf1 i8042.noaux i8042.nomux 8250.nr_uarts=1 "             \
  "no_timer_check cryptomgr.notests"

struct cl_vmm_disk
{
  const char *path; /* raw image file */
  bool readonly;
  const char *serial; /* virtio-blk serial, NULL: none */
};

struct cl_vmm_net
{
  const char *tap; /* existing tap interface name */
  uint8_t mac[6];
  bool has_mac; /* false: a locally administered MAC is chosen */
};

struct cl_vmm_fs
{
  const char *tag;  /* the guest's `mount -t virtiofs TAG`, 1..36 bytes */
  const char *path; /* host directory shared */
  bool readonly;
};

enum cl_vmm_console
{
  CL_VMM_CONSOLE_SERIAL, /* COM1 on console_in_fd/console_out_fd */
  CL_VMM_CONSOLE_VIRTIO, /* virtio-console on the fds; COM1 still exists, silent */
  CL_VMM_CONSOLE_FILE,   /* COM1 output appended to console_path, input console_in_fd */
};

/* What the VMM's seccomp filter does with a syscall it does not allow. */
enum cl_vmm_seccomp
{
  CL_VMM_SECCOMP_KILL, /* the default: the VMM is killed */
  CL_VMM_SECCOMP_LOG,  /* allowed and logged by the kernel (to find a missing syscall) */
  CL_VMM_SECCOMP_OFF,  /* no filter at all (debugging only) */
};

struct cl_vmm_config
{
  const char *kernel;  /* bzImage, ELF vmlinux or a tiny ELF64 test guest */
  const char *initrd;  /* NULL: none */
  const char *cmdline; /* NULL: CL_VMM_DEFAULT_CMDLINE */
  unsigned cpus;       /* 1..CL_VMM_MAX_CPUS */
  uint64_t memory;     /* bytes, >= CL_VMM_MIN_MEMORY */
  const struct cl_vmm_disk *disks;
  size_t ndisks;
  const struct cl_vmm_net *nets;
  size_t nnets;
  const struct cl_vmm_fs *fs; /* virtio-fs shared directories */
  size_t nfs;
  uint32_t vsock_cid; /* 0: no vsock device */
  int *guest_status;  /* out, NULL: not wanted; after a guest power-off, the
                         byte it wrote to CL_VMM_STATUS_PORT, else -1 */
  int vsock_fd;       /* -1 (default): the VMM takes vsock_cid itself; else
                         the fd cl_vmm_vsock_reserve() gave for it (taken
                         over by cl_vmm_run) */
  bool rng;
  enum cl_vmm_console console;
  const char *console_path;   /* CL_VMM_CONSOLE_FILE */
  int console_in_fd;          /* -1: none; default 0 */
  int console_out_fd;         /* default 1 */
  const char *api_socket;     /* Unix socket path for the HTTP API, NULL: none */
  int ready_fd;               /* -1: none; else one byte 'R' is written to it
                                 once the vCPUs run (API socket listening) */
  const char *restore_dir;    /* resume a snapshot: the machine comes from
                                 DIR/state.json, the fields above except the
                                 console and api_socket are ignored */
  const char *incoming;       /* live migration in: tcp:HOST:PORT (listen) or fd:N;
                                 the machine comes from the stream, like
                                 restore_dir (docs/migration.md) */
  const char *incoming_token; /* NULL, or the "token" the stream's header
                                 must carry (the source it waits for) */
  bool restore_clone;         /* restore_dir is a template (a booted idle VM):
                                 its shared directories (same tags) take the
                                 paths of `fs`, its taps those of `nets`, and
                                 the vsock CID is vsock_cid (the guest hears
                                 of it through the transport reset) */
  enum cl_vmm_seccomp seccomp;
  bool debug; /* on stderr: the set-up time, and at exit the stop reason
                 and the metrics */
};

/* Defaults that just work: 1 vCPU, 256 MiB, serial console on stdio. */
void cl_vmm_config_init (struct cl_vmm_config *cfg);

/* Flag values as the CLI takes them ("PATH[,ro][,serial=ID]",
   "tap=NAME[,mac=MAC]").  On success the strings put in *out are
   allocated: cl_vmm_disk_clear/cl_vmm_net_clear free them (or let the
   process exit).  On failure *out holds nothing. */
int cl_vmm_parse_disk (const char *spec, struct cl_vmm_disk *out, cl_error_t *err);
int cl_vmm_parse_net (const char *spec, struct cl_vmm_net *out, cl_error_t *err);
/* "TAG=DIR[,ro]" */
int cl_vmm_parse_fs (const char *spec, struct cl_vmm_fs *out, cl_error_t *err);
void cl_vmm_disk_clear (struct cl_vmm_disk *disk);
void cl_vmm_fs_clear (struct cl_vmm_fs *fs);
void cl_vmm_net_clear (struct cl_vmm_net *net);

/* Builds the VM and runs it until the guest stops.  Returns 0 when the
   guest powered off or rebooted or the VM was asked to stop (SIGTERM,
   API); -1 with *err set on bad configuration, set-up failure, triple
   fault ("guest triple fault (KVM_EXIT_SHUTDOWN)"), guest panic or an
   internal error.  Nothing is left behind on failure. */
int cl_vmm_run (const struct cl_vmm_config *cfg, cl_error_t *err);

/* A byte the guest writes to this I/O port before it powers off is its
   exit status (cfg->guest_status; cloison-vmm exits with it). */
#define CL_VMM_STATUS_PORT 0xF4

/* Takes guest CID `cid` host-wide (a vhost-vsock fd with the CID set,
   not yet owned by any process): give it to a forked VMM as
   cl_vmm_config.vsock_fd, so that no other VM takes the CID between.
   Fails with status EADDRINUSE when another VM on the host has it. */
int cl_vmm_vsock_reserve (uint32_t cid, cl_error_t *err);

#endif
