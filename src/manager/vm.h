/* microVM instances: the disk made from the image (reflink or sparse
   copy), and the VMM run by the instance's monitor in a child process
   (the library, src/vmm/vmm.h; never an exec of cloison-vmm). */
#ifndef CLOISON_MANAGER_VM_H
#define CLOISON_MANAGER_VM_H

#include "common/error.h"
#include "manager/manager.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cl_manager;
struct instance;
struct mgr_image;

/* In instances/NAME/: the serial console's input, a FIFO (see vm.c). */
#define VM_CONSOLE_INPUT "console.in"

struct vm_launch
{
  char *kernel;
  char *initrd;
  char *cmdline;
  char *disk;
  char *console_log;
  char *api_socket;
  char *restore_dir; /* stateful snapshot to resume, or NULL */
  char *tap;         /* network, or NULL */
  uint8_t mac[6];
  bool has_mac;
  unsigned cpus;
  uint64_t memory;
  uint32_t vsock_cid; /* 0: no vsock device (the host has no vhost-vsock) */
  int vsock_fd;       /* its host-wide reservation, handed to the VMM */
  int readyfd;        /* the VMM child reports a failure here */
  bool attached;      /* serial console on our stdio (run) instead of the log */
};

/* Creates INSTANCE/disk.img from the image (at launch). */
int vm_disk_create (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                    cl_error_t *err);
int vm_launch_prepare (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                       struct vm_launch *out, cl_error_t *err);
/* In the monitor: forks the VMM child.  Returns its pid or -1. */
pid_t vm_monitor_start (struct vm_launch *l, cl_error_t *err);
/* In the launching command: waits until the VMM runs ("R" in buf), has
   failed ("E<message>") or has already stopped (EOF, 0).  Returns the
   bytes read. */
int vm_wait_ready (int readyfd, char *buf, size_t size);

/* Requests to a running VMM through its API socket: "pause", "resume",
   "snapshot DIR" (memory + devices + vCPUs).  */
int vm_api_pause (const char *socket, bool pause, cl_error_t *err);
int vm_api_snapshot (const char *socket, const char *dir, cl_error_t *err);
/* Presses the VM's ACPI power button: the guest shuts down if it will
   (cloison-init stops the instance's command, a distribution's init
   powers off). */
int vm_api_power_button (const char *socket, cl_error_t *err);

/* Copy-on-write copy of the disk for `cl_instance_copy`. */
int vm_disk_copy (struct cl_manager *m, struct instance *from, const char *dst, cl_error_t *err);
/* exec (vm_agent.c: through the guest agent over vsock, see
   src/agent/protocol.h) and console of a running VM. */
int vm_exec (struct cl_manager *m, struct instance *inst, char **argv, const char **env,
             size_t n_env, enum cl_exec_tty tty, int *exit_code, cl_error_t *err);
bool vm_host_has_vsock (void);
/* The instance's guest CID (>= 3, unique in the state root).  Returns 1
   with *cid, 0 if it has none. */
int vm_vsock_cid (struct cl_manager *m, const char *name, uint32_t *cid, cl_error_t *err);
/* Allocates the instance's CID if it has none, and reserves it host-wide
   (*fd, for the VMM: cl_vmm_vsock_reserve).  A CID that another VM on
   this host holds is replaced by the next free one, unless `keep` (a
   stateful snapshot resumes: its guest knows its CID). */
int vm_vsock_take (struct cl_manager *m, const char *name, bool keep, uint32_t *cid, int *fd,
                   cl_error_t *err);
/* The guest's replies (untrusted): reads one frame into buf (room for
   CL_AGENT_MAX_FRAME bytes), checking type and length.  1 read, 0 clean
   EOF, -1 bad or truncated frame. */
int agent_frame_read (int fd, char *type, void *buf, uint32_t *len, cl_error_t *err);
/* The running command's session on the agent's connection `conn` (after
   'R'): streams `in` as 'I' frames then 'C' at its end (in < 0: nothing),
   relays stdout/stderr frames to out/errfd until the exit frame, never
   blocked by a command that leaves its stdin unread.  tty: `in`, when a
   terminal, is raw for the session and restored however it ends;
   SIGWINCH sends our terminal's size ('W'), and SIGINT/TERM/HUP/QUIT end
   the session with *exit_code = 128 + the signal (closing conn then
   kills the command). */
int agent_session (int conn, int in, int out, int errfd, bool tty, int *exit_code, cl_error_t *err);
int vm_console (struct cl_manager *m, struct instance *inst, int *exit_code, cl_error_t *err);

/* Starts a stopped VM from a stateful snapshot's state directory. */
int vm_start_restored (struct cl_manager *m, const char *name, const char *state_dir,
                       cl_error_t *err);

#endif
