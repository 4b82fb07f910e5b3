/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target on the virtio-fs FUSE server (request parser and
   dispatcher): the input is a program of FUSE requests, each a 16-bit
   length, a reply capacity byte and the request's bytes (header
   included), played after a FUSE_INIT against a small real tree: files,
   a directory, and symlinks pointing out of the share (/etc/passwd, ../..,
   the "outside" directory).  Whatever the guest sends, the server must not
   crash, write past the reply buffer, or touch anything outside the share:
   after each run the outside directory must hold exactly its one secret
   file, unchanged, and a snapshot of the server's state (when it can be
   taken) must restore.  The tree lives on a 32 MiB tmpfs in a private mount
   namespace (root), so WRITE or FALLOCATE at huge offsets cannot fill the
   host's disk. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vmm/fuse_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "host secret\n"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char top[256], share[300], outside[300];
static struct fuse_server *srv;
static uint8_t *req, *reply;
static unsigned runs;

static void
put_file (const char *dir, const char *name, const char *text)
{
  char path[700];
  FILE *f;
  snprintf (path, sizeof path, "%s/%s", dir, name);
  f = fopen (path, "w");
  if (f == NULL)
    abort ();
  fputs (text, f);
  fclose (f);
}

static void
wipe (const char *dir)
{
  char cmd[400];
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd) != 0)
    abort ();
}

static void
make_tree (void)
{
  char path[700];
  wipe (share);
  if (mkdir (share, 0755) < 0)
    abort ();
  put_file (share, "file", "0123456789");
  snprintf (path, sizeof path, "%s/dir", share);
  mkdir (path, 0755);
  put_file (path, "inner", "inner");
  snprintf (path, sizeof path, "%s/passwd", share);
  symlink ("/etc/passwd", path);
  snprintf (path, sizeof path, "%s/up", share);
  symlink ("../..", path);
  snprintf (path, sizeof path, "%s/out", share);
  symlink (outside, path);
  snprintf (path, sizeof path, "%s/secretlink", share);
  char target[400];
  snprintf (target, sizeof target, "%s/secret", outside);
  symlink (target, path);
}

static void
check_outside (void)
{
  char path[700], buf[64] = { 0 };
  int fd, entries = 0;
  DIR *d = opendir (outside);
  struct dirent *e;

  if (d == NULL)
    abort ();
  while ((e = readdir (d)))
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
      entries++;
  closedir (d);
  snprintf (path, sizeof path, "%s/secret", outside);
  fd = open (path, O_RDONLY);
  if (fd < 0 || read (fd, buf, sizeof buf - 1) < 0)
    abort ();
  close (fd);
  if (entries != 1 || strcmp (buf, SECRET) != 0)
    {
      fprintf (stderr, "escape: the outside directory changed\n");
      abort ();
    }
}

static void
setup (void)
{
  cl_error_t err = NULL;
  const char *tmp = getenv ("TMPDIR");

  snprintf (top, sizeof top, "%s/fuzz-virtiofs-XXXXXX", tmp ? tmp : "/tmp");
  if (mkdtemp (top) == NULL)
    abort ();
  if (unshare (CLONE_NEWNS) == 0 && mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
    mount ("fuzz-virtiofs", top, "tmpfs", 0, "size=32m");
  else
    {
      struct rlimit rl = { 32 << 20, 32 << 20 };
      signal (SIGXFSZ, SIG_IGN);
      setrlimit (RLIMIT_FSIZE, &rl);
    }
  snprintf (share, sizeof share, "%s/share", top);
  snprintf (outside, sizeof outside, "%s/outside", top);
  mkdir (outside, 0755);
  put_file (outside, "secret", SECRET);
  make_tree ();
  srv = cl_vmm_fuse_server_new (share, false, &err);
  if (srv == NULL)
    abort ();
  req = malloc (FUSE_SERVER_BUF_SIZE);
  reply = malloc (FUSE_SERVER_BUF_SIZE);
}

static void
init_session (void)
{
  struct
  {
    struct fuse_in_header h;
    struct fuse_init_in in;
  } init = { { .len = sizeof init, .opcode = FUSE_INIT, .unique = 1 },
             { .major = 7, .minor = 38, .flags = FUSE_DO_READDIRPLUS } };
  /* Every other run with set-id clearing left to the server (and the
     writeback cache asked for, which the server does not grant). */
  if (runs % 2)
    init.in.flags |= FUSE_WRITEBACK_CACHE | FUSE_HANDLE_KILLPRIV_V2;
  if (cl_vmm_fuse_server_handle (srv, (const uint8_t *)&init, sizeof init, reply,
                                 FUSE_SERVER_BUF_SIZE)
      == 0)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (srv == NULL)
    setup ();
  /* A fresh tree now and then: runs that create files must not make the
     next ones slow. */
  if (++runs % 256 == 0)
    {
      cl_vmm_fuse_server_free (srv);
      make_tree ();
      cl_error_t err = NULL;
      srv = cl_vmm_fuse_server_new (share, runs % 512 == 0, &err);
      if (srv == NULL)
        abort ();
    }
  cl_vmm_fuse_server_reset (srv);
  init_session ();

  while (size >= 3)
    {
      size_t len = data[0] | (size_t)data[1] << 8, cap;
      uint8_t capsel = data[2];
      data += 3;
      size -= 3;
      if (len > size)
        len = size;
      memcpy (req, data, len);
      /* The guest chooses the writable room too: tiny to full. */
      cap = capsel == 0xff ? FUSE_SERVER_BUF_SIZE : (size_t)capsel * 40;
      size_t guard = cap + 64 < FUSE_SERVER_BUF_SIZE ? 64 : FUSE_SERVER_BUF_SIZE - cap;
      memset (reply + cap, 0xa5, guard);
      size_t out = cl_vmm_fuse_server_handle (srv, req, len, reply, cap);
      if (out > cap)
        abort ();
      for (size_t i = cap; i < cap + guard; i++)
        if (reply[i] != 0xa5)
          abort (); /* wrote past the room it was given */
      data += len;
      size -= len;
    }
  /* Whatever state the program left, a snapshot of it either is refused
     or restores. */
  cl_error_t err = NULL;
  json_t *saved = cl_vmm_fuse_server_save (srv, &err);
  if (saved == NULL)
    cl_error_release (&err);
  else if (cl_vmm_fuse_server_restore (srv, saved, &err) < 0)
    {
      fprintf (stderr, "restore of a fresh save failed: %s\n", err->msg);
      abort ();
    }
  json_decref (saved);
  check_outside ();
  return 0;
}
