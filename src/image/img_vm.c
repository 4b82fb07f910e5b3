/* SPDX-License-Identifier: Apache-2.0 */
/* The VM side of images: the built-in kernel and initramfs
   (scripts/images/vm-image.sh) and ext4 root disks made from an image's
   merged rootfs with `mkfs.ext4 -d`. */
#include "image/img_internal.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1ULL << 20)

/* The child: in a mount namespace of its own (so that nothing stays
   mounted if anyone dies), mounts the merged rootfs and execs mkfs. */
static void __attribute__ ((noreturn)) mkfs_child (const struct cl_image *image, const char *mnt,
                                                   const char *empty, const char *disk, int errfd)
{
  const char *src = image->n_layers == 1 ? image->layers[0] : mnt;
  dup2 (errfd, STDERR_FILENO);
  dup2 (errfd, STDOUT_FILENO);
  if (image->n_layers > 1 || image->n_layers == 0)
    {
      cleanup_free char *low = NULL, *opts = NULL;
      if (unshare (CLONE_NEWNS) < 0 || mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        {
          dprintf (errfd, "mount namespace: %s\n", strerror (errno));
          _exit (126);
        }
      low = image->n_layers ? cl_img_lowerdir (image) : cl_xstrdup (empty);
      /* Overlayfs needs two lower dirs without an upper one. */
      opts = cl_strdup_printf ("lowerdir=%s:%s", low, empty);
      if (mount ("overlay", mnt, "overlay", MS_RDONLY, opts) < 0)
        {
          dprintf (errfd, "mount overlay: %s\n", strerror (errno));
          _exit (126);
        }
    }
  execlp ("mkfs.ext4", "mkfs.ext4", "-q", "-F", "-t", "ext4", "-L", "cloison-root", "-i", "8192",
          "-E", "root_owner=0:0", "-d", src, disk, (char *)NULL);
  dprintf (errfd, "exec mkfs.ext4: %s\n", strerror (errno));
  _exit (127);
}

static int
run_mkfs (const struct cl_image *image, const char *stage, const char *disk, const char *name,
          cl_error_t *err)
{
  cleanup_free char *mnt = cl_strdup_printf ("%s/merged", stage);
  cleanup_free char *empty = cl_strdup_printf ("%s/empty", stage);
  cleanup_free char *log_path = cl_strdup_printf ("%s/mkfs.log", stage);
  cleanup_close int logfd = -1;
  pid_t pid;
  int status;

  if (mkdir (mnt, 0755) < 0 || mkdir (empty, 0755) < 0)
    return cl_error_errno (err, "mkdir `%s`", mnt);
  logfd = open (log_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (logfd < 0)
    return cl_error_errno (err, "open `%s`", log_path);
  pid = fork ();
  if (pid < 0)
    return cl_error_errno (err, "fork");
  if (pid == 0)
    mkfs_child (image, mnt, empty, disk, logfd);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cl_error_errno (err, "waitpid");
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      cleanup_free char *log = NULL;
      char *line, *last = NULL;
      cl_read_file (log_path, &log, NULL, NULL);
      for (line = log ? strtok (log, "\n") : NULL; line; line = strtok (NULL, "\n"))
        last = line;
      return cl_error_make (err, 0, "VM disk `%s`: %s", name,
                            last ? last : "failed without a message");
    }
  return 0;
}

int
cl_img_build_vm_disk (struct cl_image_store *s, const struct cl_image *image, const char *out_path,
                      uint64_t size_bytes, cl_error_t *err)
{
  cleanup_free char *stage = NULL, *disk = NULL;
  cleanup_close int fd = -1;
  int ret = -1;

  if (access (out_path, F_OK) == 0)
    return cl_error_make (err, EEXIST, "VM disk `%s`", out_path);
  if (size_bytes == 0)
    {
      /* The files, plus room for metadata and for the guest to write. */
      size_bytes = image->size + image->size / 2 + 64 * MIB;
      if (size_bytes < 64 * MIB)
        size_bytes = 64 * MIB;
    }
  size_bytes = (size_bytes + MIB - 1) / MIB * MIB;
  if (cl_img_store_mkstage (s, "vmdisk", &stage, err) < 0)
    return -1;
  /* The disk is made beside its destination, so that the rename is atomic
     and the sparse file is never copied. */
  disk = cl_strdup_printf ("%s.tmp-%d", out_path, getpid ());
  fd = open (disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      cl_error_errno (err, "create `%s`", disk);
      goto out;
    }
  if (ftruncate (fd, (off_t)size_bytes) < 0)
    {
      cl_error_errno (err, "size `%s`", disk);
      goto out;
    }
  if (run_mkfs (image, stage, disk, out_path, err) < 0)
    goto out;
  if (fsync (fd) < 0 || renameat2 (AT_FDCWD, disk, AT_FDCWD, out_path, RENAME_NOREPLACE) < 0)
    {
      cl_error_errno (err, "VM disk `%s`", out_path);
      goto out;
    }
  ret = 0;
out:
  if (ret < 0 && disk)
    unlink (disk);
  cl_rm_rf (stage, NULL);
  return ret;
}
