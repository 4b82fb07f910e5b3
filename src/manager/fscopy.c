/* SPDX-License-Identifier: Apache-2.0 */
/* Copy-on-write copies: trees (container writable layers) and disk images
   (VM disks). */
#include "common/cancel.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
cl_mgr_spawn_wait (char **argv, bool quiet, cl_error_t *err)
{
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int st, r;

  posix_spawn_file_actions_init (&fa);
  if (quiet)
    {
      posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_adddup2 (&fa, 1, 2);
    }
  r = posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0)
    return cl_error_make (err, r, "run %s", argv[0]);
  /* a cancellation point (common/cancel.h): the child is killed; the
     wait polls, from 1 ms up to 20 ms apart */
  for (useconds_t nap = 1000;; nap = nap < 20000 ? nap * 2 : nap)
    {
      pid_t w = waitpid (pid, &st, WNOHANG);
      if (w == pid)
        break;
      if (w < 0 && errno != EINTR)
        return cl_error_errno (err, "waitpid");
      if (cl_cancelled ())
        {
          kill (pid, SIGKILL);
          while (waitpid (pid, &st, 0) < 0 && errno == EINTR)
            ;
          return cl_cancel_error (err);
        }
      if (w == 0)
        usleep (nap);
    }
  if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
    return cl_error_make (err, 0, "%s failed (exit %d)", argv[0],
                          WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st));
  return 0;
}

/* cp(1) knows every corner of a faithful tree copy (hard links, device
   nodes that overlayfs uses as whiteouts, trusted.* xattrs, sparse files,
   reflinks), so it does the copy. */
int
cl_mgr_tree_copy (const char *src, const char *dst, cl_error_t *err)
{
  char *argv[] = { "cp", "-a", "--reflink=auto", "-T", (char *)src, (char *)dst, NULL };

  if (cl_mgr_spawn_wait (argv, false, err) < 0)
    return cl_error_wrap (err, "copy `%s` to `%s`", src, dst);
  return 0;
}

/* GNU tar: compression recognised by itself (on extraction it reads the
   magic), sparse files, xattrs (overlay whiteouts and opaque dirs). */
int
cl_mgr_tree_extract (const char *archive, const char *dir, cl_error_t *err)
{
  char *argv[] = { "tar",
                   "--extract",
                   "--file",
                   (char *)archive,
                   "--directory",
                   (char *)dir,
                   "--same-owner",
                   "--numeric-owner",
                   "--xattrs",
                   "--xattrs-include=*",
                   "--preserve-permissions",
                   NULL };

  if (cl_mgr_spawn_wait (argv, false, err) < 0)
    return cl_error_wrap (err, "extract `%s` into `%s`", archive, dir);
  return 0;
}

static int
sparse_copy (int in, int out, const char *src, cl_error_t *err)
{
  off_t data = 0, hole, end = lseek (in, 0, SEEK_END);

  while (data < end)
    {
      data = lseek (in, data, SEEK_DATA);
      if (data < 0)
        {
          if (errno == ENXIO)
            break; /* only a hole is left */
          return cl_error_errno (err, "seek `%s`", src);
        }
      hole = lseek (in, data, SEEK_HOLE);
      if (hole < 0)
        return cl_error_errno (err, "seek `%s`", src);
      while (data < hole)
        {
          off_t o_in = data, o_out = data;
          ssize_t n = copy_file_range (in, &o_in, out, &o_out, hole - data, 0);
          if (n <= 0)
            return cl_error_errno (err, "copy `%s`", src);
          data += n;
        }
    }
  if (ftruncate (out, end) < 0)
    return cl_error_errno (err, "truncate the copy of `%s`", src);
  return 0;
}

int
cl_mgr_file_clone (const char *src, const char *dst, uint64_t size, cl_error_t *err)
{
  cleanup_close int in = open (src, O_RDONLY | O_CLOEXEC);
  cleanup_close int out = -1;
  struct stat st;

  if (in < 0)
    return cl_error_errno (err, "open `%s`", src);
  out = open (dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0)
    return cl_error_errno (err, "create `%s`", dst);
  if (ioctl (out, FICLONE, in) < 0 && sparse_copy (in, out, src, err) < 0)
    goto fail;
  if (fstat (out, &st) < 0)
    {
      cl_error_errno (err, "stat `%s`", dst);
      goto fail;
    }
  if (size > (uint64_t)st.st_size && ftruncate (out, (off_t)size) < 0)
    {
      cl_error_errno (err, "resize `%s`", dst);
      goto fail;
    }
  return 0;
fail:
  unlink (dst);
  return -1;
}
