/* SPDX-License-Identifier: Apache-2.0 */
/* CVE-2019-5736: a container process that can open /proc/PID/exe of a
   runtime process inside its namespaces could write to the runtime binary
   on the host.  The runtime therefore re-executes itself from a file that
   cannot be written:

   1. a read-only bind mount of itself, detached from the start
      (open_tree OPEN_TREE_CLONE + mount_setattr): it lives on as long as
      the process runs from it, in no mount namespace, so nobody can
      remount it rw.  Cheap: no copy, no namespace to enter or leave.
   2. else a sealed memfd copy (F_SEAL_WRITE...), as runc and crun do:
      kernels before 5.12 (no mount_setattr), or a process that may not
      clone mounts (rootless).  The choice is the kernel's, not the
      user's; a fault-injection build can force the fallback with
      $CLOISON_SEALED_EXE_MEMFD so that tests cover it on any kernel. */
#include "common/cleanup.h"
#include "container/container.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

/* Bytes the kernel needs to exec the file: up to the end of the last
   segment.  Debug sections and section headers after it are not copied
   (a third of a -g build). */
static off_t
exec_size (int fd, off_t file_size)
{
  Elf64_Ehdr eh;
  off_t end = 0;

  if (pread (fd, &eh, sizeof eh, 0) != sizeof eh || memcmp (eh.e_ident, ELFMAG, SELFMAG) != 0
      || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof (Elf64_Phdr))
    return file_size;
  for (int i = 0; i < eh.e_phnum; i++)
    {
      Elf64_Phdr ph;
      if (pread (fd, &ph, sizeof ph, (off_t) (eh.e_phoff + (Elf64_Off) i * sizeof ph)) != sizeof ph)
        return file_size;
      if ((off_t) (ph.p_offset + ph.p_filesz) > end)
        end = (off_t) (ph.p_offset + ph.p_filesz);
    }
  return end > 0 && end <= file_size ? end : file_size;
}

/* A read-only bind mount of our own binary that belongs to no mount
   namespace: open_tree(OPEN_TREE_CLONE) makes it detached (in an
   anonymous namespace that dies with the fd, at exec: CLOEXEC), so it
   appears in nobody's mount table and nobody can remount it rw later
   (mount_setattr and MS_REMOUNT both refuse a mount in no namespace).
   No unshare, no setns back, no copy: only the exec itself. */
static void
reexec_from_detached_ro_bind (char **argv)
{
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
  int fd = (int) syscall (SYS_open_tree, AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

  if (fd < 0)
    return;
  if (syscall (SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) == 0)
    syscall (SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
  close (fd);
}

int
cl_ctr_ensure_sealed_exe (int argc, char **argv, cl_error_t *err)
{
  cleanup_close int self = -1;
  cleanup_close int memfd = -1;
  struct statvfs vfs;
  struct stat st;
  int seals;
  off_t off = 0, size;

  (void) argc;
  self = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0)
    return cl_error_errno (err, "open /proc/self/exe");
  seals = fcntl (self, F_GET_SEALS);
  if (seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS)
    return 0;
  /* Already on a read-only mount (our own bind, or installed so). */
  if (fstatvfs (self, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
    return 0;
#ifdef CLOISON_FAULT_INJECTION
  if (getenv ("CLOISON_SEALED_EXE_MEMFD") == NULL)
#endif
    reexec_from_detached_ro_bind (argv);
  if (fstat (self, &st) < 0)
    return cl_error_errno (err, "stat /proc/self/exe");
  memfd = memfd_create ("cloison-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (memfd < 0 && errno == EINVAL)
    memfd = memfd_create ("cloison-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0)
    return cl_error_errno (err, "memfd_create");
  size = exec_size (self, st.st_size);
  while (off < size)
    {
      ssize_t n = sendfile (memfd, self, &off, (size_t) (size - off));
      if (n <= 0)
        return cl_error_errno (err, "copy the runtime into a memfd");
    }
  if (fcntl (memfd, F_ADD_SEALS, REQUIRED_SEALS) < 0)
    return cl_error_errno (err, "seal the memfd");
  syscall (SYS_execveat, memfd, "", argv, environ, AT_EMPTY_PATH);
  return cl_error_errno (err, "re-exec from the sealed memfd");
}
