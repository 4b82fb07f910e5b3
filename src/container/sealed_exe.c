/* CVE-2019-5736: a container process that can open /proc/PID/exe of a
   runtime process inside its namespaces could write to the runtime binary
   on the host.  Running from a sealed memfd copy makes that file a
   read-only, anonymous one: there is nothing on the host to reach. */
#include "common/cleanup.h"
#include "container/container.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
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

int
cl_container_ensure_sealed_exe (int argc, char **argv, cl_error_t *err)
{
  cleanup_close int self = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  cleanup_close int memfd = -1;
  struct stat st;
  int seals;
  off_t off = 0, size;

  (void) argc;
  if (self < 0)
    return cl_error_errno (err, "open /proc/self/exe");
  seals = fcntl (self, F_GET_SEALS);
  if (seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS)
    return 0;
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
