/* SPDX-License-Identifier: Apache-2.0 */
/* Instance locks: every command that changes an instance holds its lock
   from the first change to the last, so two commands on one instance
   never interleave (the second waits), and a crash recovery can tell a
   live operation from a dead one.

   A lock is an open-file-description lock (F_OFD_SETLK) on one byte of
   ROOT/instances.lock, at an offset hashed from the instance's name: no
   file per instance to create or remove, different instances never wait
   for each other (a 62-bit hash), and the kernel drops the lock when its
   holder dies, whatever kills it.  OFD locks (unlike POSIX record locks)
   belong to the open file, so two threads of one process exclude each
   other too, and a forked child that keeps a copy of the descriptor
   would keep the lock: forks close theirs (cl_mgr_locks_close). */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCK_WAIT_MS 120000

static off_t
lock_offset (const char *name)
{
  return (off_t)(cl_fnv1a64 (name) >> 2);
}

static int
lock_try (int fd, off_t at)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };
  if (fcntl (fd, F_OFD_SETLK, &fl) == 0)
    return 1;
  return errno == EAGAIN || errno == EACCES ? 0 : -1;
}

static void
held_add (struct cl_manager *m, int fd, const char *name)
{
  for (size_t i = 0; i < MANAGER_MAX_LOCKS; i++)
    if (m->locks[i] < 0)
      {
        m->locks[i] = fd;
        m->lock_names[i] = cl_xstrdup (name);
        return;
      }
  abort (); /* no operation holds more than two */
}

static void
held_drop (struct cl_manager *m, size_t i)
{
  close (m->locks[i]);
  m->locks[i] = -1;
  free (m->lock_names[i]);
  m->lock_names[i] = NULL;
}

bool
cl_mgr_instance_lock_held (struct cl_manager *m, const char *name)
{
  for (size_t i = 0; i < MANAGER_MAX_LOCKS; i++)
    if (m->locks[i] >= 0 && strcmp (m->lock_names[i], name) == 0)
      return true;
  return false;
}

static int
lock_open (struct cl_manager *m, const char *name, bool wait, struct instance_lock *l,
           cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/instances.lock", m->root);
  off_t at = lock_offset (name);
  uint64_t deadline = cl_now_ns () + (uint64_t)LOCK_WAIT_MS * 1000000ull;
  useconds_t pause = 1000;
  int fd, r;

  l->m = m;
  l->fd = -1;
  fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return cl_error_errno (err, "open `%s`", path);
  while ((r = lock_try (fd, at)) == 0 && wait && cl_now_ns () < deadline)
    {
      usleep (pause);
      if (pause < 50000)
        pause *= 2;
    }
  if (r < 0)
    {
      cl_error_errno (err, "lock `%s`", path);
      close (fd);
      return -1;
    }
  if (r == 0)
    {
      close (fd);
      if (!wait)
        return 0;
      cl_error_make (err, EBUSY,
                     "instance `%s` is busy: another command has been changing it for %d s", name,
                     LOCK_WAIT_MS / 1000);
      return cl_error_set_kind (err, CL_ERR_BUSY);
    }
  held_add (m, fd, name);
  l->fd = fd;
  return 1;
}

int
cl_mgr_instance_lock (struct cl_manager *m, const char *name, struct instance_lock *l,
                      cl_error_t *err)
{
  return lock_open (m, name, true, l, err) < 0 ? -1 : 0;
}

int
cl_mgr_instance_trylock (struct cl_manager *m, const char *name, struct instance_lock *l,
                         cl_error_t *err)
{
  return lock_open (m, name, false, l, err);
}

void
cl_mgr_instance_unlock (struct instance_lock *l)
{
  if (l->fd < 0)
    return;
  for (size_t i = 0; i < MANAGER_MAX_LOCKS; i++)
    if (l->m->locks[i] == l->fd)
      held_drop (l->m, i);
  l->fd = -1;
}

void
cl_mgr_locks_close (struct cl_manager *m)
{
  for (size_t i = 0; i < MANAGER_MAX_LOCKS; i++)
    if (m->locks[i] >= 0)
      held_drop (m, i);
}
