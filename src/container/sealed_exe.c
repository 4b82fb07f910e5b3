/* CVE-2019-5736: a container process that can open /proc/PID/exe of a
   runtime process inside its namespaces could write to the runtime binary
   on the host.  The runtime therefore re-executes itself from a file that
   cannot be written:

   1. a read-only bind mount of itself, made in a private mount namespace
      that the runtime leaves again right after the exec (the mount lives
      on, detached, as long as the process runs from it; nobody can
      remount it rw: it belongs to no namespace).  Cheap: no copy.
   2. else a sealed memfd copy (F_SEAL_WRITE...), as runc and crun do. */
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

#define HOST_MNTNS_ENV "_CLOISON_HOST_MNTNS_FD"

/* After the re-exec: back to the caller's mount namespace. */
static void
return_to_host_mntns (void)
{
  const char *v = getenv (HOST_MNTNS_ENV);
  int fd;

  if (v == NULL)
    return;
  char cwd[4096];
  bool have_cwd;

  fd = atoi (v);
  unsetenv (HOST_MNTNS_ENV);
  if (fd <= 2)
    return;
  /* setns moves the cwd to the namespace's root: keep it by path (the
     same in both namespaces). */
  have_cwd = getcwd (cwd, sizeof cwd) != NULL;
  setns (fd, CLONE_NEWNS);
  close (fd);
  if (have_cwd && chdir (cwd) < 0)
    chdir ("/");
}

static void
reexec_from_ro_bind (char **argv)
{
  char path[4096], val[16];
  ssize_t n = readlink ("/proc/self/exe", path, sizeof path - 1);
  int host = -1;

  if (n <= 0 || n >= (ssize_t) sizeof path - 1)
    return;
  path[n] = '\0';
  if (strstr (path, " (deleted)"))
    return;
  host = open ("/proc/self/ns/mnt", O_RDONLY); /* kept across exec */
  if (host < 0)
    return;
  /* Nothing of this namespace may propagate to the host: slave first. */
  if (unshare (CLONE_NEWNS) < 0)
    goto fail;
  if (mount (NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0
      || mount (path, path, NULL, MS_BIND, NULL) < 0
      || mount (NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
    {
      setns (host, CLONE_NEWNS);
      goto fail;
    }
  snprintf (val, sizeof val, "%d", host);
  setenv (HOST_MNTNS_ENV, val, 1);
  execve (path, argv, environ);
  unsetenv (HOST_MNTNS_ENV);
  setns (host, CLONE_NEWNS);
fail:
  close (host);
}

int
cl_container_ensure_sealed_exe (int argc, char **argv, cl_error_t *err)
{
  cleanup_close int self = -1;
  cleanup_close int memfd = -1;
  struct statvfs vfs;
  struct stat st;
  int seals;
  off_t off = 0, size;

  (void) argc;
  return_to_host_mntns ();
  self = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0)
    return cl_error_errno (err, "open /proc/self/exe");
  seals = fcntl (self, F_GET_SEALS);
  if (seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS)
    return 0;
  /* Already on a read-only mount (our own bind, or installed so). */
  if (fstatvfs (self, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
    return 0;
  if (getenv ("CLOISON_SEALED_EXE_MEMFD") == NULL)
    reexec_from_ro_bind (argv);
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
