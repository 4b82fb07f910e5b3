/* SPDX-License-Identifier: Apache-2.0 */
/* A cache of compiled seccomp filters, as crun keeps one: libseccomp 2.5
   takes about 17 ms to generate podman's default profile for three
   architectures, reading it back takes microseconds.  An entry holds the
   whole canonical profile and is used only when it matches byte for byte
   (the file name is a hash, never trusted alone), and only from a
   directory and file owned by us that nobody else can write. */
#include "common/cleanup.h"
#include "common/util.h"
#include "container/seccomp_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A hit also stands for the profile's validation (cl_ctr_seccomp_compile
   checks what it compiles): bump the magic whenever the checks or the
   generated program change. */
#define CACHE_MAGIC "CLSC1\n"

/* The profile in a canonical form plus what else shapes the program. */
static char *
cache_key (json_t *seccomp)
{
  cleanup_free char *profile = json_dumps (seccomp, JSON_COMPACT | JSON_SORT_KEYS);
  const struct scmp_version *v = seccomp_version ();
  if (profile == NULL)
    return NULL;
  return cl_strdup_printf ("%s\nlibseccomp %u.%u.%u native %u", profile, v->major, v->minor,
                           v->micro, seccomp_arch_native ());
}

static char *
cache_name (const char *key)
{
  return cl_strdup_printf ("%016llx.bpf", (unsigned long long) cl_fnv1a64 (key));
}

static bool
owned_and_private (int fd, bool dir)
{
  struct stat st;
  return fstat (fd, &st) == 0 && st.st_uid == geteuid () && (st.st_mode & 022) == 0
         && (dir ? S_ISDIR (st.st_mode) : S_ISREG (st.st_mode));
}

static int
open_dir (const char *dir)
{
  int fd = open (dir, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 && !owned_and_private (fd, true))
    {
      close (fd);
      return -1;
    }
  return fd;
}

int
cl_ctr_seccomp_cache_get (const char *dir, json_t *seccomp, struct sock_filter **insns, size_t *len,
                          unsigned int *flags)
{
  cleanup_free char *key = cache_key (seccomp), *name = NULL, *data = NULL;
  cleanup_close int dirfd = -1, fd = -1;
  size_t size = 0, keylen, off;
  uint32_t stored_keylen, stored_flags, n;
  cl_error_t e = NULL;

  if (key == NULL || (dirfd = open_dir (dir)) < 0)
    return 0;
  name = cache_name (key);
  fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || !owned_and_private (fd, false))
    return 0;
  if (cl_read_file_at (dirfd, name, &data, &size, &e) < 0)
    {
      cl_error_release (&e);
      return 0;
    }
  keylen = strlen (key);
  off = sizeof CACHE_MAGIC - 1;
  if (size < off + 4 || memcmp (data, CACHE_MAGIC, off) != 0)
    return 0;
  memcpy (&stored_keylen, data + off, 4);
  off += 4;
  if (stored_keylen != keylen || size < off + keylen + 8 || memcmp (data + off, key, keylen) != 0)
    return 0;
  off += keylen;
  memcpy (&stored_flags, data + off, 4);
  memcpy (&n, data + off + 4, 4);
  off += 8;
  if (n == 0 || n > BPF_MAXINSNS || size != off + n * sizeof (struct sock_filter))
    return 0;
  *insns = cl_xmalloc0 (n * sizeof (struct sock_filter));
  memcpy (*insns, data + off, n * sizeof (struct sock_filter));
  *len = n;
  *flags = stored_flags;
  return 1;
}

void
cl_ctr_seccomp_cache_put (const char *dir, json_t *seccomp, const struct sock_filter *insns,
                          size_t len, unsigned int flags)
{
  cleanup_free char *key = cache_key (seccomp), *name = NULL, *tmp = NULL;
  cleanup_close int dirfd = -1, fd = -1;
  uint32_t keylen, f = flags, n = (uint32_t) len;
  bool ok;

  if (key == NULL)
    return;
  if (mkdir (dir, 0700) < 0 && errno != EEXIST)
    return;
  if ((dirfd = open_dir (dir)) < 0)
    return;
  name = cache_name (key);
  tmp = cl_strdup_printf ("%s.%d.tmp", name, (int) getpid ());
  fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  keylen = (uint32_t) strlen (key);
  ok = cl_write_all (fd, CACHE_MAGIC, sizeof CACHE_MAGIC - 1) == 0
       && cl_write_all (fd, &keylen, 4) == 0 && cl_write_all (fd, key, keylen) == 0
       && cl_write_all (fd, &f, 4) == 0 && cl_write_all (fd, &n, 4) == 0
       && cl_write_all (fd, insns, len * sizeof *insns) == 0;
  if (!ok || renameat (dirfd, tmp, dirfd, name) < 0)
    unlinkat (dirfd, tmp, 0);
}
