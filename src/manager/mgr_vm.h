/* SPDX-License-Identifier: Apache-2.0 */
/* microVM instances: the disk made from the image (reflink or sparse
   copy), and the VMM run by the instance's monitor in a child process
   (the library, src/vmm/vmm.h; never an exec of cloison-vmm).  The rest
   of the manager reaches them through vm_ops (mgr_internal.h). */
#ifndef CLOISON_MANAGER_VM_H
#define CLOISON_MANAGER_VM_H

#include "common/error.h"
#include "manager/manager.h"
#include "vmm/vmm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cl_manager;
struct instance;

/* A live migration's listening socket in the monitor (and its VMM
   child): after the arguments, ready, go and vsock descriptors (3-6). */
#define MONITOR_INCOMING_FD 7

/* In instances/NAME/: the serial console's input, a FIFO (see mgr_vm.c). */
#define VM_CONSOLE_INPUT "console.in"

/* A VM booted on the image's disk: the command line before its own
   parameters (a cold boot's, and a template's). */
#define VM_DEFAULT_DISK_CMDLINE CL_VMM_DEFAULT_CMDLINE " root=/dev/vda rw"

struct vm_launch
{
  char *kernel;
  char *initrd;
  char *cmdline;
  char *disk;
  char *console_log;
  char *api_socket;
  char *restore_dir; /* stateful snapshot to resume, or NULL */
  /* a live migration in (a stateful move): "fd:N", N the listening
     socket the source connects to (incoming_fd: the manager's copy, moved
     to N in the monitor), or NULL */
  char *incoming;
  int incoming_fd;
  char *incoming_token; /* the source's stream must carry it, or NULL */
  /* warm: the monitor clones the template of this machine (building it
     the first time) from the state root warm_root, the go taking the
     command warm_command (JSON); NULL: a boot as the rest says */
  char *warm_root;
  char *warm_command;
  bool restore_clone; /* restore_dir is a warm template (mgr_vm_template.c) */
  char *go;           /* then: the go request's JSON (its init's arguments) */
  char *tap;          /* network, or NULL */
  /* image volumes: disks after the root (vdb, vdc...), and virtio-fs
     shares (shared folders, directory volumes); the guest's init mounts
     them as the command line's cloison.vol= and cloison.fs= say */
  struct cl_vmm_disk *volumes;
  size_t nvolumes;
  struct cl_vmm_fs *fs;
  size_t nfs;
  uint8_t mac[6];
  bool has_mac;
  unsigned cpus;
  uint64_t memory;
  uint32_t vsock_cid; /* 0: no vsock device (the host has no vhost-vsock) */
  int vsock_fd;       /* its host-wide reservation, handed to the VMM */
  int readyfd;        /* the VMM child reports a failure here */
  bool attached;      /* serial console on our stdio (run) instead of the log */
};

/* One frame to the agent (agent_relay.c); a string frame (ARG, ENV);
   the terminal's size (stdin's, else stdout's) as a winsize payload. */
int cl_mgr_agent_send_frame (int fd, char type, const void *data, size_t len, cl_error_t *err);
int cl_mgr_agent_send_string (int fd, char type, const char *s, cl_error_t *err);
void cl_mgr_agent_terminal_size (unsigned char *payload);

/* exec of a running VM (vm_agent.c: through the guest agent over vsock,
   see src/agent/protocol.h). */
int cl_mgr_vm_exec (struct cl_manager *m, struct instance *inst, char **argv, const char **env,
                    size_t n_env, enum cl_exec_tty tty, int *exit_code, cl_error_t *err);
bool cl_mgr_vm_host_has_vsock (void);
/* The instance's guest CID (>= 3, unique in the state root).  Returns 1
   with *cid, 0 if it has none. */
int cl_mgr_vm_vsock_cid (struct cl_manager *m, const char *name, uint32_t *cid, cl_error_t *err);
/* Allocates the instance's CID if it has none, and reserves it host-wide
   (*fd, for the VMM: cl_vmm_vsock_reserve).  A CID that another VM on
   this host holds is replaced by the next free one, unless `keep` (a
   stateful snapshot resumes: its guest knows its CID). */
int cl_mgr_vm_vsock_take (struct cl_manager *m, const char *name, bool keep, uint32_t *cid, int *fd,
                          cl_error_t *err);
/* The guest's replies (untrusted): reads one frame into buf (room for
   CL_AGENT_MAX_FRAME bytes), checking type and length.  1 read, 0 clean
   EOF, -1 bad or truncated frame. */
int cl_mgr_agent_frame_read (int fd, char *type, void *buf, uint32_t *len, cl_error_t *err);
/* The running command's session on the agent's connection `conn` (after
   'R'): streams `in` as 'I' frames then 'C' at its end (in < 0: nothing),
   relays stdout/stderr frames to out/errfd until the exit frame, never
   blocked by a command that leaves its stdin unread.  tty: `in`, when a
   terminal, is raw for the session and restored however it ends;
   SIGWINCH sends our terminal's size ('W'), and SIGINT/TERM/HUP/QUIT end
   the session with *exit_code = 128 + the signal (closing conn then
   kills the command). */
int cl_mgr_agent_session (int conn, int in, int out, int errfd, bool tty, int *exit_code,
                          cl_error_t *err);
/* The same; with `forward` (a VM-isolated container's shim), the signals
   that would end it (and SIGUSR1/2, SIGALRM, SIGPWR) go to the command as
   'K' frames instead, and the session ends only with its exit status. */
int cl_mgr_agent_session_full (int conn, int in, int out, int errfd, bool tty, bool forward,
                               int *exit_code, cl_error_t *err);

/* Warm templates of VM instances (mgr_vm_template.c, docs/templates.md).
   use: l (a boot of the built-in kernel and initramfs, no shares or
   volumes, with its cmdline, tap and size set) restores the template of
   its machine, built now if missing, instead of booting: sets
   restore_dir, restore_clone and go.  go: in the monitor, once the VMM
   `vmm` is forked, a child that sends the go (the VM is killed if it
   cannot).  list: [{name, size (bytes), used (epoch s)}]; the cap
   (bytes) is in ROOT/manager/vm-templates/cap (template_cache.h: the
   cache's own code, which the runtime's cache of VM-isolated containers'
   templates shares). */
typedef pid_t (*cl_mgr_vm_start_fn) (struct vm_launch *l, cl_error_t *err);
int cl_mgr_vm_template_use (const char *root, struct vm_launch *l, json_t *command,
                            cl_mgr_vm_start_fn start, cl_error_t *err);
void cl_mgr_vm_template_go (const struct vm_launch *l, pid_t vmm);
int cl_mgr_vm_templates_list (const char *root, json_t **out, cl_error_t *err);
int cl_mgr_vm_template_remove (const char *root, const char *name, cl_error_t *err);
int cl_mgr_vm_templates_cap (const char *root, uint64_t *cap, cl_error_t *err);
int cl_mgr_vm_templates_set_cap (const char *root, uint64_t cap, cl_error_t *err);

#endif
