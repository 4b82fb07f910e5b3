/* SPDX-License-Identifier: Apache-2.0 */
/* After set-up the VMM only runs vCPUs, the I/O thread and the API: a
   seccomp allow-list (libseccomp) with no_new_privs, for every thread
   (TSYNC), and a stricter one stacked in each vCPU thread.  The
   config's seccomp mode (cloison-vmm --seccomp-log) logs instead of
   killing, to find a missing syscall; --no-seccomp installs nothing. */
#include "vmm/vmm_internal.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static const char *const allowed[] = {
  /* I/O */
  "read",
  "write",
  "readv",
  "writev",
  "pread64",
  "pwrite64",
  "preadv",
  "pwritev",
  "preadv2",
  "pwritev2",
  "lseek",
  "close",
  "fsync",
  "fdatasync",
  "fallocate",
  "ioctl",
  "fcntl",
  /* event loop, threads, memory, time, signals */
  "epoll_wait",
  "epoll_pwait",
  "epoll_ctl",
  "eventfd2",
  "poll",
  "ppoll",
  "futex",
  "mmap",
  "munmap",
  "mprotect",
  "madvise",
  "mremap",
  "brk",
  "rt_sigreturn",
  "rt_sigprocmask",
  "rt_sigaction",
  "tgkill",
  "getpid",
  "gettid",
  "exit",
  "exit_group",
  "clock_gettime",
  "clock_nanosleep",
  "nanosleep",
  "sched_yield",
  "set_robust_list",
  "rseq",
  "getrandom",
  "restart_syscall",
  "seccomp" /* only ever adds filters */,
  "timerfd_create",
  "timerfd_settime",
  "timerfd_gettime",
  "sched_getaffinity",
  /* API socket */
  "accept",
  "accept4",
  "recvfrom",
  "sendto",
  "recvmsg",
  "sendmsg",
  "shutdown",
  "getsockopt",
  "setsockopt",
  "getsockname",
  "getpeername",
  /* live migration: the source connects to tcp:HOST:PORT (migrate.c) */
  "socket",
  "connect",
  /* snapshot files */
  "openat",
  "open",
  "mkdir",
  "mkdirat",
  "rename",
  "renameat",
  "renameat2",
  "unlink",
  "unlinkat",
  "newfstatat",
  "fstat",
  "stat",
  "lstat",
  "statx",
  "ftruncate",
  "access",
  "faccessat",
  "faccessat2",
  "getdents64",
  "umask",
  /* virtio-fs (fuse_server.c): names resolved with openat2 beneath the
     shared root; its other calls (openat, newfstatat, mkdirat, unlinkat,
     renameat2, getdents64, lseek, pread64/pwrite64, ftruncate, fallocate,
     fsync, fdatasync) are listed above */
  "openat2",
  "fstatfs",
  "readlinkat",
  "symlinkat",
  "linkat",
  "mknodat",
  "fchmod",
  "fchmodat",
  "fchownat",
  "utimensat",
  "fgetxattr",
  "fsetxattr",
  "flistxattr",
  "fremovexattr",
  "syncfs",
  /* asynchronous block I/O, if a device uses it */
  "io_uring_enter",
  "io_uring_register",
#ifdef __SANITIZE_ADDRESS__
  /* ASan gives every thread an alternate signal stack when it starts and
     takes it back when it ends (use_sigaltstack): without this the
     sanitized build dies of SIGSYS at the first vCPU thread.  The release
     build's filter stays as it is. */
  "sigaltstack",
#endif
};

/* Stacked on the filter above in each vCPU thread: a vCPU only runs guest
   code and device register handlers, so it never opens files, builds
   sockets or starts threads (the I/O thread and the API do that). */
static const char *const vcpu_denied[] = {
  "open",    "openat",   "openat2",   "creat",     "socket",         "socketpair",
  "connect", "accept",   "accept4",   "bind",      "listen",         "clone",
  "clone3",  "mkdir",    "mkdirat",   "rename",    "renameat",       "renameat2",
  "unlink",  "unlinkat", "ftruncate", "fallocate", "io_uring_enter", "io_uring_register",
  "symlinkat", "linkat", "mknodat", "fchmodat", "fchownat", "fsetxattr", "fremovexattr",
};

/* What a filter does with a denied syscall, for the process filter and
   then each vCPU thread's (one VMM per process: cl_vmm_sandbox_apply sets it
   before the vCPU threads start). */
static uint32_t deny_action = SCMP_ACT_KILL_PROCESS;

/* One rule with `action` per syscall name this libseccomp knows. */
static int
add_named_rules (scmp_filter_ctx ctx, uint32_t action, const char *const *names, size_t n)
{
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < n; i++)
    {
      int nr = seccomp_syscall_resolve_name (names[i]);
      if (nr != __NR_SCMP_ERROR)
        ret = seccomp_rule_add (ctx, action, nr, 0);
    }
  return ret;
}

int
cl_vmm_sandbox_apply_vcpu_thread (cl_error_t *err)
{
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  int ret = 0;
  if (ctx == NULL)
    return cl_error_make (err, 0, "seccomp_init failed");
  /* no_new_privs is already on, process-wide: no prctl here */
  ret = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (ret == 0)
    ret = add_named_rules (ctx, deny_action, vcpu_denied,
                           sizeof vcpu_denied / sizeof vcpu_denied[0]);
  if (ret == 0)
    ret = seccomp_load (ctx);
  seccomp_release (ctx);
  if (ret < 0)
    return cl_error_make (err, -ret, "vCPU seccomp filter");
  return 0;
}

int
cl_vmm_sandbox_apply (enum cl_vmm_seccomp mode, cl_error_t *err)
{
  if (mode == CL_VMM_SECCOMP_OFF)
    return 0;
  deny_action = mode == CL_VMM_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS;
  scmp_filter_ctx ctx = seccomp_init (deny_action);
  int ret;

  if (ctx == NULL)
    return cl_error_make (err, 0, "seccomp_init failed");
  ret = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 1);
  if (ret == 0)
    ret = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  if (ret == 0)
    ret = add_named_rules (ctx, SCMP_ACT_ALLOW, allowed, sizeof allowed / sizeof allowed[0]);
  /* threads (a device may start one), never new processes */
  if (ret == 0)
    ret = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, SCMP_SYS (clone), 1,
                            SCMP_A0 (SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (ret == 0)
    ret = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (ENOSYS), SCMP_SYS (clone3), 0);
  /* thread names (vcpuN) */
  if (ret == 0)
    ret = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, SCMP_SYS (prctl), 1,
                            SCMP_A0 (SCMP_CMP_EQ, PR_SET_NAME));
  /* a migrated source's teardown at the lowest priority (migrate.c):
     its own thread, niceness 19 only */
  if (ret == 0)
    ret = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, SCMP_SYS (setpriority), 3,
                            SCMP_A0 (SCMP_CMP_EQ, PRIO_PROCESS), SCMP_A1 (SCMP_CMP_EQ, 0),
                            SCMP_A2 (SCMP_CMP_EQ, 19));
  if (ret == 0)
    ret = seccomp_load (ctx);
  seccomp_release (ctx);
  if (ret < 0)
    return cl_error_make (err, -ret, "seccomp filter");
  return 0;
}
