/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-fs against a fake guest driver: FUSE requests placed in guest
   memory, served by the device over a real host directory (a fresh one
   under $TMPDIR per test), replies read back from guest memory.  Beside
   the share sits an "outside" directory with a secret file: whatever the
   guest sends, it must never read, write or list it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/util.h"
#include "fake_driver.h"
#include "fake_vm.h"
#include "vmm/fuse_server.h"
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

#include <jansson.h>

#define HIPRIO 0
#define REQUESTS 1
#define REQ_GPA 0x10000ull
#define REPLY_GPA 0x50000ull
#define REPLY_MAX 0x30000u
#define SECRET "host secret\n"

struct fixture
{
  struct vm *vm;
  struct drv d;
  char top[256];   /* mkdtemp: share/ and outside/ */
  char share[512]; /* the shared directory */
  char outside[512];
  uint64_t unique;
};

/* A request body under construction. */
struct body
{
  uint8_t b[0x30000];
  size_t len;
};

static void
put (struct body *b, const void *p, size_t n)
{
  assert_true (b->len + n <= sizeof b->b);
  memcpy (b->b + b->len, p, n);
  b->len += n;
}

static void
put_str (struct body *b, const char *s)
{
  put (b, s, strlen (s) + 1);
}

/* Raw exchange: `req` (already with its header) as one readable buffer,
   `cap` writable bytes for the reply.  Returns the used length. */
static uint32_t
exchange_at (struct fixture *f, unsigned q, uint64_t gpa, const void *req, size_t len, uint32_t cap)
{
  uint64_t addr[2] = { gpa, REPLY_GPA };
  uint32_t lens[2] = { (uint32_t)len, cap };
  uint16_t flags[2] = { 0, VIRTQ_DESC_F_WRITE };
  uint16_t before = used_idx (&f->d, q);

  memcpy (f->vm->ram + gpa, req, len);
  memset (f->vm->ram + REPLY_GPA, 0xa5, REPLY_MAX);
  submit (&f->d, q, cap ? 2 : 1, addr, lens, flags);
  assert_int_equal (used_idx (&f->d, q), (uint16_t)(before + 1));
  return used_len (&f->d, q);
}

static uint32_t
exchange (struct fixture *f, unsigned q, const void *req, size_t len, uint32_t cap)
{
  return exchange_at (f, q, REQ_GPA, req, len, cap);
}

/* One FUSE call: returns the reply's error (0 or -errno) and copies its
   payload to `out` (its length to *out_len). */
static int32_t
call (struct fixture *f, uint32_t opcode, uint64_t nodeid, const struct body *args, void *out,
      size_t out_cap, size_t *out_len)
{
  static struct body req;
  struct fuse_in_header h
      = { .opcode = opcode, .unique = ++f->unique, .nodeid = nodeid, .uid = 0, .gid = 0, .pid = 1 };
  struct fuse_out_header o;
  uint32_t used;

  req.len = 0;
  h.len = sizeof h + (args ? args->len : 0);
  put (&req, &h, sizeof h);
  if (args)
    put (&req, args->b, args->len);
  used = exchange (f, REQUESTS, req.b, req.len, REPLY_MAX);
  assert_true (used >= sizeof o);
  memcpy (&o, f->vm->ram + REPLY_GPA, sizeof o);
  assert_int_equal (o.len, used);
  assert_int_equal (o.unique, h.unique);
  if (o.error == 0)
    {
      assert_true (o.len - sizeof o <= out_cap || out == NULL);
      if (out)
        memcpy (out, f->vm->ram + REPLY_GPA + sizeof o, o.len - sizeof o);
    }
  else
    assert_int_equal (o.len, sizeof o);
  if (out_len)
    *out_len = o.len - sizeof o;
  return o.error;
}

static void
fuse_init (struct fixture *f)
{
  struct body b = { .len = 0 };
  struct fuse_init_in in
      = { .major = 7,
          .minor = 38,
          .max_readahead = 65536,
          .flags = FUSE_DO_READDIRPLUS | FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_MAX_PAGES };
  struct fuse_init_out o;
  size_t len;

  put (&b, &in, sizeof in);
  assert_int_equal (call (f, FUSE_INIT, 0, &b, &o, sizeof o, &len), 0);
  assert_int_equal (len, sizeof o);
  assert_int_equal (o.major, 7);
  assert_int_equal (o.minor, 38);
  assert_int_equal (o.max_write, FUSE_SERVER_MAX_IO);
  /* 32 KiB of read-ahead at most (exec's read-around; docs/templates.md) */
  assert_int_equal (o.max_readahead, 32768);
  /* Only what we offer and the guest asked for. */
  assert_true (o.flags & FUSE_DO_READDIRPLUS);
  assert_false (o.flags & FUSE_POSIX_LOCKS);
  /* requests of up to max_write, not the guest's default 32 pages */
  assert_true (o.flags & FUSE_MAX_PAGES);
  assert_int_equal (o.max_pages * 4096, FUSE_SERVER_MAX_IO);
}

static void
write_host (const char *dir, const char *name, const char *text)
{
  char path[1024];
  int fd;
  snprintf (path, sizeof path, "%s/%s", dir, name);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true (fd >= 0);
  assert_int_equal (write (fd, text, strlen (text)), (ssize_t)strlen (text));
  close (fd);
}

static void
host_path (struct fixture *f, const char *name, char *out)
{
  snprintf (out, PATH_MAX, "%s/%s", f->share, name);
}

static void
assert_secret_intact (struct fixture *f)
{
  char path[PATH_MAX], buf[64] = { 0 };
  int fd;
  snprintf (path, sizeof path, "%s/secret", f->outside);
  fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  assert_true (read (fd, buf, sizeof buf - 1) >= 0);
  close (fd);
  assert_string_equal (buf, SECRET);
}

static int
setup_mode (void **state, bool read_only)
{
  struct fixture *f = calloc (1, sizeof *f);
  const char *tmp = getenv ("TMPDIR");
  cl_error_t err = NULL;

  snprintf (f->top, sizeof f->top, "%s/virtiofs-test-XXXXXX", tmp ? tmp : "/tmp");
  assert_non_null (mkdtemp (f->top));
  snprintf (f->share, sizeof f->share, "%s/share", f->top);
  snprintf (f->outside, sizeof f->outside, "%s/outside", f->top);
  assert_int_equal (mkdir (f->share, 0755), 0);
  assert_int_equal (mkdir (f->outside, 0755), 0);
  write_host (f->outside, "secret", SECRET);
  write_host (f->share, "hello", "hello from the host\n");

  f->vm = fake_vm_new ();
  assert_int_equal (cl_vmm_virtio_fs_create (f->vm, "share", f->share, read_only, &err), 0);
  drv_init (&f->d, f->vm, 0, 2, 0);
  fuse_init (f);
  *state = f;
  return 0;
}

static int
setup (void **state)
{
  return setup_mode (state, false);
}

static int
setup_ro (void **state)
{
  return setup_mode (state, true);
}

static int
teardown (void **state)
{
  struct fixture *f = *state;
  cl_error_t err = NULL;
  assert_secret_intact (f);
  fake_vm_free (f->vm);
  assert_int_equal (cl_rm_rf (f->top, &err), 0);
  free (f);
  return 0;
}

/* ------------------------------------------------------------- helpers */

static int32_t
lookup (struct fixture *f, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
  struct body b = { .len = 0 };
  struct fuse_entry_out tmp;
  put_str (&b, name);
  return call (f, FUSE_LOOKUP, parent, &b, e ? e : &tmp, sizeof *e, NULL);
}

static int32_t
open_node (struct fixture *f, uint32_t opcode, uint64_t node, uint32_t flags, uint64_t *fh)
{
  struct body b = { .len = 0 };
  struct fuse_open_in in = { .flags = flags };
  struct fuse_open_out o = { 0 };
  int32_t r;
  put (&b, &in, sizeof in);
  r = call (f, opcode, node, &b, &o, sizeof o, NULL);
  *fh = o.fh;
  return r;
}

static int32_t
create (struct fixture *f, uint64_t parent, const char *name, uint32_t flags,
        struct fuse_entry_out *e, uint64_t *fh)
{
  struct body b = { .len = 0 };
  struct fuse_create_in in = { .flags = flags, .mode = S_IFREG | 0644 };
  struct
  {
    struct fuse_entry_out e;
    struct fuse_open_out o;
  } out = { 0 };
  int32_t r;
  put (&b, &in, sizeof in);
  put_str (&b, name);
  r = call (f, FUSE_CREATE, parent, &b, &out, sizeof out, NULL);
  if (e)
    *e = out.e;
  *fh = out.o.fh;
  return r;
}

static int32_t
fs_write (struct fixture *f, uint64_t fh, uint64_t off, const void *data, uint32_t size)
{
  struct body b = { .len = 0 };
  struct fuse_write_in in = { .fh = fh, .offset = off, .size = size };
  struct fuse_write_out o = { 0 };
  int32_t r;
  put (&b, &in, sizeof in);
  put (&b, data, size);
  r = call (f, FUSE_WRITE, 1, &b, &o, sizeof o, NULL);
  if (r == 0)
    assert_int_equal (o.size, size);
  return r;
}

static int32_t
fs_read (struct fixture *f, uint64_t fh, uint64_t off, uint32_t size, void *out, size_t *len)
{
  struct body b = { .len = 0 };
  struct fuse_read_in in = { .fh = fh, .offset = off, .size = size };
  put (&b, &in, sizeof in);
  return call (f, FUSE_READ, 1, &b, out, size, len);
}

static int32_t
release (struct fixture *f, uint32_t opcode, uint64_t fh)
{
  struct body b = { .len = 0 };
  struct fuse_release_in in = { .fh = fh };
  put (&b, &in, sizeof in);
  return call (f, opcode, 1, &b, NULL, 0, NULL);
}

static int32_t
getattr (struct fixture *f, uint64_t node, struct fuse_attr_out *a)
{
  struct body b = { .len = 0 };
  struct fuse_getattr_in in = { 0 };
  struct fuse_attr_out tmp;
  put (&b, &in, sizeof in);
  return call (f, FUSE_GETATTR, node, &b, a ? a : &tmp, sizeof tmp, NULL);
}

static int32_t
mkdir_node (struct fixture *f, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
  struct body b = { .len = 0 };
  struct fuse_mkdir_in in = { .mode = 0755 };
  struct fuse_entry_out tmp;
  put (&b, &in, sizeof in);
  put_str (&b, name);
  return call (f, FUSE_MKDIR, parent, &b, e ? e : &tmp, sizeof tmp, NULL);
}

static int32_t
symlink_node (struct fixture *f, uint64_t parent, const char *name, const char *target,
              struct fuse_entry_out *e)
{
  struct body b = { .len = 0 };
  struct fuse_entry_out tmp;
  put_str (&b, name);
  put_str (&b, target);
  return call (f, FUSE_SYMLINK, parent, &b, e ? e : &tmp, sizeof tmp, NULL);
}

static int32_t
name_op (struct fixture *f, uint32_t opcode, uint64_t parent, const char *name)
{
  struct body b = { .len = 0 };
  put_str (&b, name);
  return call (f, opcode, parent, &b, NULL, 0, NULL);
}

/* Names in a READDIR(PLUS) reply, joined by ' ', sorted by the caller's
   expectations being order-free: returns whether `name` is listed. */
static bool
listed (const uint8_t *buf, size_t len, bool plus, const char *name, uint64_t *nodeid)
{
  size_t off = 0;
  while (off < len)
    {
      const struct fuse_dirent *d;
      size_t size;
      if (plus)
        {
          const struct fuse_direntplus *dp = (const void *)(buf + off);
          d = &dp->dirent;
          size = FUSE_DIRENTPLUS_SIZE (dp);
          if (nodeid && strlen (name) == d->namelen && memcmp (d->name, name, d->namelen) == 0)
            *nodeid = dp->entry_out.nodeid;
        }
      else
        {
          d = (const void *)(buf + off);
          size = FUSE_DIRENT_SIZE (d);
        }
      if (strlen (name) == d->namelen && memcmp (d->name, name, d->namelen) == 0)
        return true;
      off += size;
    }
  return false;
}

static int32_t
readdir_at (struct fixture *f, uint32_t opcode, uint64_t node, uint64_t fh, uint64_t off,
            uint8_t *out, size_t *len)
{
  struct body b = { .len = 0 };
  struct fuse_read_in in = { .fh = fh, .offset = off, .size = 4096 };
  put (&b, &in, sizeof in);
  return call (f, opcode, node, &b, out, 4096, len);
}

static int32_t
readdir (struct fixture *f, uint32_t opcode, uint64_t node, uint64_t fh, uint8_t *out, size_t *len)
{
  return readdir_at (f, opcode, node, fh, 0, out, len);
}

/* --------------------------------------------------------------- tests */

static void
test_config_space (void **state)
{
  struct fixture *f = *state;
  char tag[37] = { 0 };
  for (int i = 0; i < 36; i++)
    tag[i] = rd (&f->d, f->d.device + i, 1);
  assert_string_equal (tag, "share");
  assert_int_equal (rd (&f->d, f->d.device + 36, 4), 1); /* num_request_queues */
  assert_int_equal (rd (&f->d, f->d.common + 0x12, 2), 2);
}

static void
test_nothing_before_init (void **state)
{
  struct fixture *f = *state;
  struct body b = { .len = 0 };
  /* DESTROY ends the session: requests other than INIT get EIO. */
  assert_int_equal (call (f, FUSE_DESTROY, 0, NULL, NULL, 0, NULL), 0);
  assert_int_equal (lookup (f, 1, "hello", NULL), -EIO);
  /* An unknown major version: the reply only names ours. */
  struct fuse_init_in in = { .major = 8, .minor = 0 };
  struct fuse_init_out o = { 0 };
  put (&b, &in, sizeof in);
  assert_int_equal (call (f, FUSE_INIT, 0, &b, &o, sizeof o, NULL), 0);
  assert_int_equal (o.major, 7);
  /* Too old a minor is refused. */
  in = (struct fuse_init_in){ .major = 7, .minor = 5 };
  b.len = 0;
  put (&b, &in, sizeof in);
  assert_int_equal (call (f, FUSE_INIT, 0, &b, &o, sizeof o, NULL), -EPROTO);
  fuse_init (f);
  assert_int_equal (lookup (f, 1, "hello", NULL), 0);
}

static void
test_lookup_getattr (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e, e2;
  struct fuse_attr_out a;
  struct stat st;
  char path[PATH_MAX];

  host_path (f, "hello", path);
  assert_int_equal (stat (path, &st), 0);
  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  assert_true (e.nodeid > 1);
  assert_int_equal (e.attr.ino, st.st_ino);
  assert_int_equal (e.attr.size, 20);
  assert_true (S_ISREG (e.attr.mode));
  /* The same inode gets the same node id. */
  assert_int_equal (lookup (f, 1, "hello", &e2), 0);
  assert_int_equal (e2.nodeid, e.nodeid);
  assert_int_equal (getattr (f, e.nodeid, &a), 0);
  assert_int_equal (a.attr.size, 20);
  assert_int_equal (a.attr.ino, st.st_ino);
  assert_int_equal (getattr (f, 1, &a), 0);
  assert_true (S_ISDIR (a.attr.mode));
  assert_int_equal (lookup (f, 1, "missing", NULL), -ENOENT);
}

static void
test_forget_drops_the_node (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e;
  struct
  {
    struct fuse_in_header h;
    struct fuse_forget_in in;
  } req = { { .len = sizeof req, .opcode = FUSE_FORGET, .unique = 99 }, { .nlookup = 1 } };

  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  req.h.nodeid = e.nodeid;
  /* FORGET comes on the hiprio queue, readable buffer only, no reply. */
  assert_int_equal (exchange (f, HIPRIO, &req, sizeof req, 0), 0);
  assert_int_equal (getattr (f, e.nodeid, NULL), 0);
  assert_int_equal (exchange (f, HIPRIO, &req, sizeof req, 0), 0);
  assert_int_equal (getattr (f, e.nodeid, NULL), -ENOENT);

  /* BATCH_FORGET whose count claims more entries than were sent. */
  struct
  {
    struct fuse_in_header h;
    struct fuse_batch_forget_in in;
    struct fuse_forget_one one;
  } batch
      = { { .len = sizeof batch, .opcode = FUSE_BATCH_FORGET }, { .count = 1000000 }, { 1, 5 } };
  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  batch.one.nodeid = e.nodeid;
  assert_int_equal (exchange (f, HIPRIO, &batch, sizeof batch, 0), 0);
  assert_int_equal (getattr (f, e.nodeid, NULL), -ENOENT);
  /* The root is never forgotten. */
  batch.one.nodeid = 1;
  assert_int_equal (exchange (f, HIPRIO, &batch, sizeof batch, 0), 0);
  assert_int_equal (getattr (f, 1, NULL), 0);
}

static void
test_create_write_read (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e;
  uint64_t fh, fh2;
  char buf[128] = { 0 }, path[PATH_MAX];
  static char big[128 * 1024];
  size_t len;
  int fd;

  assert_int_equal (create (f, 1, "new", O_RDWR | O_CREAT, &e, &fh), 0);
  assert_true (S_ISREG (e.attr.mode));
  assert_int_equal (fs_write (f, fh, 0, "guest data", 10), 0);
  assert_int_equal (fs_read (f, fh, 6, 64, buf, &len), 0);
  assert_int_equal (len, 4);
  assert_memory_equal (buf, "data", 4);
  assert_int_equal (release (f, FUSE_RELEASE, fh), 0);

  /* The host sees it. */
  host_path (f, "new", path);
  fd = open (path, O_RDONLY);
  assert_true (fd >= 0);
  assert_int_equal (read (fd, buf, sizeof buf), 10);
  close (fd);
  assert_memory_equal (buf, "guest data", 10);

  /* A full-size write and read back. */
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)(i * 7);
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDWR, &fh2), 0);
  assert_int_equal (fs_write (f, fh2, 0, big, sizeof big), 0);
  static char back[128 * 1024];
  assert_int_equal (fs_read (f, fh2, 0, sizeof back, back, &len), 0);
  assert_int_equal (len, sizeof big);
  assert_memory_equal (back, big, sizeof big);
  /* More than max_write is refused whole. */
  {
    static struct body b;
    struct fuse_write_in in = { .fh = fh2, .size = FUSE_SERVER_MAX_IO + 1 };
    b.len = 0;
    put (&b, &in, sizeof in);
    put (&b, big, sizeof big);
    put (&b, "x", 1);
    assert_int_equal (call (f, FUSE_WRITE, 1, &b, NULL, 0, NULL), -EINVAL);
  }

  /* SETATTR truncates and chmods. */
  {
    struct body b = { .len = 0 };
    struct fuse_setattr_in in = { .valid = FATTR_SIZE | FATTR_MODE, .size = 3, .mode = 0600 };
    struct fuse_attr_out a;
    put (&b, &in, sizeof in);
    assert_int_equal (call (f, FUSE_SETATTR, e.nodeid, &b, &a, sizeof a, NULL), 0);
    assert_int_equal (a.attr.size, 3);
    assert_int_equal (a.attr.mode & 07777, 0600);
  }
  /* FSYNC and FLUSH on the handle. */
  {
    struct body b = { .len = 0 };
    struct fuse_fsync_in in = { .fh = fh2 };
    put (&b, &in, sizeof in);
    assert_int_equal (call (f, FUSE_FSYNC, e.nodeid, &b, NULL, 0, NULL), 0);
    struct fuse_flush_in fl = { .fh = fh2 };
    b.len = 0;
    put (&b, &fl, sizeof fl);
    /* nothing to do on the host: ENOSYS, and the guest sends no more */
    assert_int_equal (call (f, FUSE_FLUSH, e.nodeid, &b, NULL, 0, NULL), -ENOSYS);
  }
  assert_int_equal (release (f, FUSE_RELEASE, fh2), 0);
  /* CREATE of an existing name with O_EXCL fails. */
  assert_int_equal (create (f, 1, "new", O_RDWR | O_CREAT | O_EXCL, NULL, &fh), -EEXIST);
}

static void
test_mkdir_readdir (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out d, e;
  static uint8_t buf[4096];
  uint64_t fh, fh2, node = 0;
  size_t len;

  assert_int_equal (mkdir_node (f, 1, "dir", &d), 0);
  assert_true (S_ISDIR (d.attr.mode));
  assert_int_equal (create (f, d.nodeid, "a", O_WRONLY, NULL, &fh), 0);
  assert_int_equal (release (f, FUSE_RELEASE, fh), 0);
  assert_int_equal (mkdir_node (f, d.nodeid, "sub", NULL), 0);
  assert_int_equal (mkdir_node (f, 1, "dir", NULL), -EEXIST);

  assert_int_equal (open_node (f, FUSE_OPENDIR, d.nodeid, O_RDONLY, &fh), 0);
  assert_int_equal (readdir (f, FUSE_READDIR, d.nodeid, fh, buf, &len), 0);
  assert_true (listed (buf, len, false, "a", NULL));
  assert_true (listed (buf, len, false, "sub", NULL));
  assert_true (listed (buf, len, false, "..", NULL));
  assert_int_equal (readdir (f, FUSE_READDIRPLUS, d.nodeid, fh, buf, &len), 0);
  assert_true (listed (buf, len, true, "a", &node));
  assert_int_equal (lookup (f, d.nodeid, "a", &e), 0);
  assert_int_equal (node, e.nodeid);
  {
    struct body b = { .len = 0 };
    struct fuse_fsync_in in = { .fh = fh };
    put (&b, &in, sizeof in);
    assert_int_equal (call (f, FUSE_FSYNCDIR, d.nodeid, &b, NULL, 0, NULL), 0);
  }
  assert_int_equal (release (f, FUSE_RELEASEDIR, fh), 0);
  /* OPEN of a directory, OPENDIR of a file. */
  assert_int_equal (open_node (f, FUSE_OPEN, d.nodeid, O_RDONLY, &fh2), -EISDIR);
  assert_int_equal (open_node (f, FUSE_OPENDIR, e.nodeid, O_RDONLY, &fh2), -ENOTDIR);
}

/* rm -rf: READDIRPLUS replies (each smaller than what one host getdents
   reads) at the offsets they return, each entry unlinked as it comes;
   every entry is seen once and the directory is then empty. */
static void
test_readdir_while_unlinking (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out d;
  static uint8_t buf[4096];
  char path[PATH_MAX], name[16];
  uint64_t fh, off = 0;
  size_t len;
  int seen = 0;

  host_path (f, "many", path);
  assert_int_equal (mkdir (path, 0755), 0);
  for (int i = 0; i < 200; i++)
    {
      snprintf (name, sizeof name, "many/f%03d", i);
      write_host (f->share, name, "x");
    }
  assert_int_equal (lookup (f, 1, "many", &d), 0);
  assert_int_equal (open_node (f, FUSE_OPENDIR, d.nodeid, O_RDONLY, &fh), 0);
  for (;;)
    {
      assert_int_equal (readdir_at (f, FUSE_READDIRPLUS, d.nodeid, fh, off, buf, &len), 0);
      if (len == 0)
        break;
      for (size_t at = 0; at < len;)
        {
          const struct fuse_direntplus *dp = (const void *)(buf + at);
          snprintf (name, sizeof name, "%.*s", (int)dp->dirent.namelen, dp->dirent.name);
          if (strcmp (name, ".") != 0 && strcmp (name, "..") != 0)
            {
              assert_int_equal (name_op (f, FUSE_UNLINK, d.nodeid, name), 0);
              seen++;
            }
          off = dp->dirent.off;
          at += FUSE_DIRENTPLUS_SIZE (dp);
        }
    }
  assert_int_equal (seen, 200);
  assert_int_equal (release (f, FUSE_RELEASEDIR, fh), 0);
  assert_int_equal (name_op (f, FUSE_RMDIR, 1, "many"), 0);
}

static void
test_rename_unlink_rmdir_link (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out d, e;
  struct body b = { .len = 0 };
  struct fuse_rename_in rn;
  struct fuse_rename2_in rn2;
  struct fuse_link_in ln;
  char path[PATH_MAX];
  struct stat st;

  assert_int_equal (mkdir_node (f, 1, "d", &d), 0);
  rn = (struct fuse_rename_in){ .newdir = d.nodeid };
  put (&b, &rn, sizeof rn);
  put_str (&b, "hello");
  put_str (&b, "moved");
  assert_int_equal (call (f, FUSE_RENAME, 1, &b, NULL, 0, NULL), 0);
  host_path (f, "d/moved", path);
  assert_int_equal (stat (path, &st), 0);
  assert_int_equal (lookup (f, 1, "hello", NULL), -ENOENT);

  /* RENAME2 with NOREPLACE over an existing name fails. */
  write_host (f->share, "other", "x");
  b.len = 0;
  rn2 = (struct fuse_rename2_in){ .newdir = 1, .flags = RENAME_NOREPLACE };
  put (&b, &rn2, sizeof rn2);
  put_str (&b, "moved");
  put_str (&b, "other");
  assert_int_equal (call (f, FUSE_RENAME2, d.nodeid, &b, NULL, 0, NULL), -EEXIST);
  /* Rename into a forged directory. */
  b.len = 0;
  rn = (struct fuse_rename_in){ .newdir = 777777 };
  put (&b, &rn, sizeof rn);
  put_str (&b, "moved");
  put_str (&b, "x");
  assert_int_equal (call (f, FUSE_RENAME, d.nodeid, &b, NULL, 0, NULL), -ENOENT);

  /* LINK makes a second name. */
  assert_int_equal (lookup (f, d.nodeid, "moved", &e), 0);
  b.len = 0;
  ln = (struct fuse_link_in){ .oldnodeid = e.nodeid };
  put (&b, &ln, sizeof ln);
  put_str (&b, "hard");
  {
    struct fuse_entry_out le;
    assert_int_equal (call (f, FUSE_LINK, 1, &b, &le, sizeof le, NULL), 0);
    assert_int_equal (le.nodeid, e.nodeid);
    assert_int_equal (le.attr.nlink, 2);
  }

  assert_int_equal (name_op (f, FUSE_RMDIR, 1, "d"), -ENOTEMPTY);
  assert_int_equal (name_op (f, FUSE_UNLINK, d.nodeid, "moved"), 0);
  assert_int_equal (name_op (f, FUSE_RMDIR, 1, "d"), 0);
  host_path (f, "d", path);
  assert_int_equal (stat (path, &st), -1);
  assert_int_equal (name_op (f, FUSE_UNLINK, 1, "hard"), 0);
  assert_int_equal (name_op (f, FUSE_UNLINK, 1, "hard"), -ENOENT);
}

static void
test_symlink_readlink (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e;
  char buf[256] = { 0 }, path[PATH_MAX];
  size_t len;

  assert_int_equal (symlink_node (f, 1, "link", "hello", &e), 0);
  assert_true (S_ISLNK (e.attr.mode));
  assert_int_equal (call (f, FUSE_READLINK, e.nodeid, NULL, buf, sizeof buf, &len), 0);
  assert_int_equal (len, 5);
  assert_memory_equal (buf, "hello", 5);
  host_path (f, "link", path);
  assert_int_equal (readlink (path, buf, sizeof buf), 5);
  /* READLINK of a file is EINVAL, as readlink(2). */
  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  assert_int_equal (call (f, FUSE_READLINK, e.nodeid, NULL, buf, sizeof buf, &len), -EINVAL);
}

static void
test_xattrs (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e;
  struct body b = { .len = 0 };
  uint32_t sx[2] = { 5, 0 }; /* fuse_setxattr_in without SETXATTR_EXT */
  struct fuse_getxattr_in gx = { .size = 0 };
  struct fuse_getxattr_out go;
  char buf[256];
  size_t len;

  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  put (&b, sx, sizeof sx);
  put_str (&b, "user.color");
  put (&b, "green", 5);
  assert_int_equal (call (f, FUSE_SETXATTR, e.nodeid, &b, NULL, 0, NULL), 0);

  b.len = 0;
  put (&b, &gx, sizeof gx);
  put_str (&b, "user.color");
  assert_int_equal (call (f, FUSE_GETXATTR, e.nodeid, &b, &go, sizeof go, NULL), 0);
  assert_int_equal (go.size, 5);
  b.len = 0;
  gx.size = 64;
  put (&b, &gx, sizeof gx);
  put_str (&b, "user.color");
  assert_int_equal (call (f, FUSE_GETXATTR, e.nodeid, &b, buf, sizeof buf, &len), 0);
  assert_int_equal (len, 5);
  assert_memory_equal (buf, "green", 5);
  /* Too small a buffer: ERANGE, as getxattr(2). */
  b.len = 0;
  gx.size = 2;
  put (&b, &gx, sizeof gx);
  put_str (&b, "user.color");
  assert_int_equal (call (f, FUSE_GETXATTR, e.nodeid, &b, buf, sizeof buf, &len), -ERANGE);

  b.len = 0;
  gx.size = 256;
  put (&b, &gx, sizeof gx);
  assert_int_equal (call (f, FUSE_LISTXATTR, e.nodeid, &b, buf, sizeof buf, &len), 0);
  assert_true (memmem (buf, len, "user.color", 11) != NULL);

  /* security.* would grant host privileges (file capabilities). */
  b.len = 0;
  put (&b, sx, sizeof sx);
  put_str (&b, "security.capability");
  put (&b, "xxxxx", 5);
  assert_int_equal (call (f, FUSE_SETXATTR, e.nodeid, &b, NULL, 0, NULL), -EPERM);
  /* A value shorter than its declared size. */
  b.len = 0;
  sx[0] = 100;
  put (&b, sx, sizeof sx);
  put_str (&b, "user.x");
  put (&b, "ab", 2);
  assert_int_equal (call (f, FUSE_SETXATTR, e.nodeid, &b, NULL, 0, NULL), -EINVAL);

  b.len = 0;
  put_str (&b, "user.color");
  assert_int_equal (call (f, FUSE_REMOVEXATTR, e.nodeid, &b, NULL, 0, NULL), 0);
  b.len = 0;
  gx.size = 0;
  put (&b, &gx, sizeof gx);
  put_str (&b, "user.color");
  assert_int_equal (call (f, FUSE_GETXATTR, e.nodeid, &b, &go, sizeof go, NULL), -ENODATA);
}

static void
test_statfs_access (void **state)
{
  struct fixture *f = *state;
  struct fuse_statfs_out o;
  struct body b = { .len = 0 };
  struct fuse_access_in in = { .mask = R_OK | W_OK };

  assert_int_equal (call (f, FUSE_STATFS, 1, NULL, &o, sizeof o, NULL), 0);
  assert_true (o.st.blocks > 0);
  assert_true (o.st.bsize > 0);
  assert_int_equal (o.st.namelen, 255);
  put (&b, &in, sizeof in);
  assert_int_equal (call (f, FUSE_ACCESS, 1, &b, NULL, 0, NULL), 0);
  b.len = 0;
  put (&b, &(uint64_t){ 0 }, 8); /* fuse_syncfs_in */
  assert_int_equal (call (f, FUSE_SYNCFS, 1, &b, NULL, 0, NULL), 0);
}

static void
test_read_only_refuses_changes (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e;
  uint64_t fh;
  char buf[64];
  size_t len;
  struct body b = { .len = 0 };

  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  assert_int_equal (create (f, 1, "new", O_RDWR, NULL, &fh), -EROFS);
  assert_int_equal (mkdir_node (f, 1, "dir", NULL), -EROFS);
  assert_int_equal (symlink_node (f, 1, "l", "hello", NULL), -EROFS);
  assert_int_equal (name_op (f, FUSE_UNLINK, 1, "hello"), -EROFS);
  assert_int_equal (name_op (f, FUSE_RMDIR, 1, "hello"), -EROFS);
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDWR, &fh), -EROFS);
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDONLY | O_TRUNC, &fh), -EROFS);
  {
    struct fuse_setattr_in in = { .valid = FATTR_SIZE, .size = 0 };
    put (&b, &in, sizeof in);
    assert_int_equal (call (f, FUSE_SETATTR, e.nodeid, &b, NULL, 0, NULL), -EROFS);
  }
  {
    uint32_t sx[2] = { 1, 0 };
    b.len = 0;
    put (&b, sx, sizeof sx);
    put_str (&b, "user.x");
    put (&b, "1", 1);
    assert_int_equal (call (f, FUSE_SETXATTR, e.nodeid, &b, NULL, 0, NULL), -EROFS);
  }
  {
    struct fuse_access_in in = { .mask = W_OK };
    b.len = 0;
    put (&b, &in, sizeof in);
    assert_int_equal (call (f, FUSE_ACCESS, e.nodeid, &b, NULL, 0, NULL), -EROFS);
  }
  /* Reading works, and a read-only handle cannot write. */
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDONLY, &fh), 0);
  assert_int_equal (fs_read (f, fh, 0, 5, buf, &len), 0);
  assert_memory_equal (buf, "hello", 5);
  assert_int_equal (fs_write (f, fh, 0, "HACK", 4), -EROFS);
  assert_int_equal (release (f, FUSE_RELEASE, fh), 0);
  char path[PATH_MAX];
  struct stat st;
  host_path (f, "hello", path);
  assert_int_equal (stat (path, &st), 0);
  assert_int_equal (st.st_size, 20);
}

/* The guest tries every way out of the share it has. */
static void
test_escapes_fail (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e, up, out;
  uint64_t fh;
  char target[PATH_MAX];
  size_t len;
  char buf[64];

  /* ".." and multi-component names are not names. */
  assert_int_equal (lookup (f, 1, "..", NULL), -EINVAL);
  assert_int_equal (lookup (f, 1, ".", NULL), -EINVAL);
  assert_int_equal (lookup (f, 1, "../outside", NULL), -EINVAL);
  assert_int_equal (lookup (f, 1, "/etc", NULL), -EINVAL);
  assert_int_equal (mkdir_node (f, 1, "../outside/x", NULL), -EINVAL);
  assert_int_equal (create (f, 1, "..", O_RDWR, NULL, &fh), -EINVAL);
  {
    /* A name of 255 bytes is fine, 256 is not. */
    char longname[300];
    memset (longname, 'n', 256);
    longname[256] = 0;
    assert_int_equal (lookup (f, 1, longname, NULL), -ENAMETOOLONG);
    longname[255] = 0;
    assert_int_equal (lookup (f, 1, longname, NULL), -ENOENT);
  }

  /* Symlinks planted in the share: to /etc/passwd, to ../.., and to the
     outside directory (absolute).  The host never follows them. */
  snprintf (target, sizeof target, "%s", f->outside);
  assert_int_equal (symlink_node (f, 1, "passwd", "/etc/passwd", &e), 0);
  assert_int_equal (symlink_node (f, 1, "up", "../..", &up), 0);
  assert_int_equal (symlink_node (f, 1, "out", target, &out), 0);
  snprintf (target, sizeof target, "%s/secret", f->outside);
  assert_int_equal (symlink_node (f, 1, "secretlink", target, NULL), 0);

  assert_true (S_ISLNK (e.attr.mode));
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDONLY, &fh), -EBADF);
  assert_int_equal (open_node (f, FUSE_OPENDIR, up.nodeid, O_RDONLY, &fh), -ENOTDIR);
  /* Looking up through a symlink used as a directory. */
  assert_int_equal (lookup (f, up.nodeid, "outside", NULL), -ENOTDIR);
  assert_int_equal (lookup (f, out.nodeid, "secret", NULL), -ENOTDIR);
  assert_int_equal (mkdir_node (f, out.nodeid, "x", NULL), -ENOTDIR);
  assert_int_equal (create (f, out.nodeid, "x", O_RDWR, NULL, &fh), -ENOTDIR);
  /* CREATE without O_EXCL over a symlink to a host file: refused. */
  assert_int_equal (create (f, 1, "secretlink", O_WRONLY | O_TRUNC, NULL, &fh), -ELOOP);
  assert_int_equal (create (f, 1, "passwd", O_RDONLY, NULL, &fh), -ELOOP);
  /* Attributes and xattrs of the link are the link's own. */
  {
    struct fuse_attr_out a;
    assert_int_equal (getattr (f, e.nodeid, &a), 0);
    assert_true (S_ISLNK (a.attr.mode));
    assert_int_equal (a.attr.size, strlen ("/etc/passwd"));
    struct body b = { .len = 0 };
    struct fuse_getxattr_in gx = { .size = 64 };
    put (&b, &gx, sizeof gx);
    assert_int_equal (call (f, FUSE_LISTXATTR, e.nodeid, &b, buf, sizeof buf, &len), -EOPNOTSUPP);
    struct fuse_setattr_in in = { .valid = FATTR_SIZE, .size = 0 };
    b.len = 0;
    put (&b, &in, sizeof in);
    assert_int_equal (call (f, FUSE_SETATTR, e.nodeid, &b, NULL, 0, NULL), -EINVAL);
  }
  /* LINK of the symlink links the symlink, not its target. */
  {
    struct body b = { .len = 0 };
    struct fuse_link_in ln = { .oldnodeid = e.nodeid };
    struct fuse_entry_out le;
    put (&b, &ln, sizeof ln);
    put_str (&b, "passwd2");
    assert_int_equal (call (f, FUSE_LINK, 1, &b, &le, sizeof le, NULL), 0);
    assert_true (S_ISLNK (le.attr.mode));
  }
  /* Device nodes are refused. */
  {
    struct body b = { .len = 0 };
    struct fuse_mknod_in in = { .mode = S_IFCHR | 0666, .rdev = makedev (1, 3) };
    put (&b, &in, sizeof in);
    put_str (&b, "null");
    assert_int_equal (call (f, FUSE_MKNOD, 1, &b, NULL, 0, NULL), -EPERM);
    in = (struct fuse_mknod_in){ .mode = S_IFIFO | 0644 };
    b.len = 0;
    put (&b, &in, sizeof in);
    put_str (&b, "fifo");
    struct fuse_entry_out fe;
    assert_int_equal (call (f, FUSE_MKNOD, 1, &b, &fe, sizeof fe, NULL), 0);
    /* ... and a FIFO is never opened (it would block the I/O thread). */
    assert_int_equal (open_node (f, FUSE_OPEN, fe.nodeid, O_RDONLY, &fh), -EBADF);
  }
  /* The directory the guest sees holds only what it made. */
  {
    static uint8_t list[4096];
    assert_int_equal (open_node (f, FUSE_OPENDIR, 1, O_RDONLY, &fh), 0);
    assert_int_equal (readdir (f, FUSE_READDIR, 1, fh, list, &len), 0);
    assert_false (listed (list, len, false, "secret", NULL));
    assert_false (listed (list, len, false, "outside", NULL));
    assert_int_equal (release (f, FUSE_RELEASEDIR, fh), 0);
  }
}

static void
test_forged_nodeid_and_fh (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e;
  uint64_t fh;
  char buf[16];
  size_t len;

  assert_int_equal (getattr (f, 0, NULL), -ENOENT);
  assert_int_equal (getattr (f, 12345, NULL), -ENOENT);
  assert_int_equal (getattr (f, UINT64_MAX, NULL), -ENOENT);
  assert_int_equal (lookup (f, 1ull << 40, "hello", NULL), -ENOENT);
  assert_int_equal (fs_read (f, 0, 0, 8, buf, &len), -EBADF);
  assert_int_equal (fs_read (f, 0x1234567890ull, 0, 8, buf, &len), -EBADF);
  assert_int_equal (release (f, FUSE_RELEASE, UINT64_MAX), -EBADF);

  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDONLY, &fh), 0);
  assert_int_equal (fs_read (f, fh, 0, 5, buf, &len), 0);
  /* Same slot, another generation. */
  assert_int_equal (fs_read (f, fh + (1ull << 32), 0, 5, buf, &len), -EBADF);
  assert_int_equal (release (f, FUSE_RELEASE, fh), 0);
  /* A released handle is dead, even once its slot is reused. */
  assert_int_equal (fs_read (f, fh, 0, 5, buf, &len), -EBADF);
  assert_int_equal (release (f, FUSE_RELEASE, fh), -EBADF);
  uint64_t fh2;
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDONLY, &fh2), 0);
  assert_true (fh2 != fh);
  assert_int_equal (fs_read (f, fh, 0, 5, buf, &len), -EBADF);
  assert_int_equal (release (f, FUSE_RELEASE, fh2), 0);
}

/* Past the tables' first size: they grow, and ids stay valid. */
static void
test_many_nodes_and_handles (void **state)
{
  struct fixture *f = *state;
  uint64_t nodes[200], fhs[200];
  char name[32], buf[32];
  size_t len;

  for (int i = 0; i < 200; i++)
    {
      struct fuse_entry_out e;
      snprintf (name, sizeof name, "f%d", i);
      assert_int_equal (create (f, 1, name, O_RDWR, &e, &fhs[i]), 0);
      nodes[i] = e.nodeid;
      assert_int_equal (fs_write (f, fhs[i], 0, name, strlen (name)), 0);
    }
  for (int i = 0; i < 200; i++)
    {
      struct fuse_attr_out a;
      snprintf (name, sizeof name, "f%d", i);
      assert_int_equal (getattr (f, nodes[i], &a), 0);
      assert_int_equal (a.attr.size, strlen (name));
      assert_int_equal (fs_read (f, fhs[i], 0, sizeof buf, buf, &len), 0);
      assert_memory_equal (buf, name, len);
      assert_int_equal (release (f, FUSE_RELEASE, fhs[i]), 0);
    }
}

static void
test_malformed_requests (void **state)
{
  struct fixture *f = *state;
  struct fuse_in_header h = { .opcode = FUSE_GETATTR, .unique = 7, .nodeid = 1 };
  uint8_t req[256] = { 0 };
  struct fuse_out_header o;

  /* The header claims more bytes than the chain carries. */
  h.len = 200;
  memcpy (req, &h, sizeof h);
  assert_int_equal (exchange (f, REQUESTS, req, 100, 4096), sizeof o);
  memcpy (&o, f->vm->ram + REPLY_GPA, sizeof o);
  assert_int_equal (o.error, -EINVAL);
  assert_int_equal (o.unique, 7);
  /* ... or fewer than a header. */
  h.len = 8;
  memcpy (req, &h, sizeof h);
  assert_int_equal (exchange (f, REQUESTS, req, 100, 4096), sizeof o);
  memcpy (&o, f->vm->ram + REPLY_GPA, sizeof o);
  assert_int_equal (o.error, -EINVAL);
  /* A chain shorter than a header: nothing to answer. */
  assert_int_equal (exchange (f, REQUESTS, req, 20, 4096), 0);
  /* No room for a reply header: nothing written. */
  h.len = sizeof h + sizeof (struct fuse_getattr_in);
  memcpy (req, &h, sizeof h);
  assert_int_equal (exchange (f, REQUESTS, req, h.len, 8), 0);
  assert_int_equal (f->vm->ram[REPLY_GPA], 0xa5);
  /* Too small for the reply's payload: EINVAL, not an overflow. */
  assert_int_equal (exchange (f, REQUESTS, req, h.len, 20), sizeof o);
  memcpy (&o, f->vm->ram + REPLY_GPA, sizeof o);
  assert_int_equal (o.error, -EINVAL);
  assert_int_equal (f->vm->ram[REPLY_GPA + 16], 0xa5);
  /* Arguments cut short (GETATTR without fuse_getattr_in). */
  h.len = sizeof h + 4;
  memcpy (req, &h, sizeof h);
  assert_int_equal (exchange (f, REQUESTS, req, h.len, 4096), sizeof o);
  memcpy (&o, f->vm->ram + REPLY_GPA, sizeof o);
  assert_int_equal (o.error, -EINVAL);
  /* A name without its terminating NUL. */
  h = (struct fuse_in_header){
    .len = sizeof h + 5, .opcode = FUSE_LOOKUP, .unique = 8, .nodeid = 1
  };
  memcpy (req, &h, sizeof h);
  memcpy (req + sizeof h, "hello", 5);
  assert_int_equal (exchange (f, REQUESTS, req, h.len, 4096), sizeof o);
  memcpy (&o, f->vm->ram + REPLY_GPA, sizeof o);
  assert_int_equal (o.error, -EINVAL);
  /* A request larger than any the device accepts. */
  {
    static uint8_t huge[FUSE_SERVER_BUF_SIZE + 0x1000];
    h = (struct fuse_in_header){ .len = sizeof huge, .opcode = FUSE_WRITE, .unique = 9 };
    memcpy (huge, &h, sizeof h);
    assert_int_equal (exchange_at (f, REQUESTS, 0x100000, huge, sizeof huge, 4096), sizeof o);
    memcpy (&o, f->vm->ram + REPLY_GPA, sizeof o);
    assert_int_equal (o.error, -EINVAL);
  }
  /* The device still works. */
  assert_int_equal (getattr (f, 1, NULL), 0);
}

static void
test_unknown_opcode (void **state)
{
  struct fixture *f = *state;
  assert_int_equal (call (f, 9999, 1, NULL, NULL, 0, NULL), -ENOSYS);
  assert_int_equal (call (f, FUSE_GETLK, 1, NULL, NULL, 0, NULL), -ENOSYS);
  assert_int_equal (call (f, FUSE_IOCTL, 1, NULL, NULL, 0, NULL), -ENOSYS);
  assert_int_equal (call (f, UINT32_MAX, 1, NULL, NULL, 0, NULL), -ENOSYS);
  assert_int_equal (getattr (f, 1, NULL), 0);
}

/* The whole device state, as a snapshot would write it. */
static json_t *
snapshot_state (struct fixture *f, cl_error_t *err)
{
  const struct vm_persist_ops *ops = f->vm->persist_ops[0];
  void *opaque = f->vm->persist_opaque[0];

  assert_string_equal (f->vm->persist_id[0], "virtio-fs0");
  if (ops->save_check (opaque, err) < 0)
    return NULL;
  return ops->save (opaque);
}

/* A second VMM process restoring `state`: a fresh VM with the same guest
   memory, the device built again on the same directory. */
static int
restore_into (struct fixture *f, struct fixture *g, json_t *state, cl_error_t *err)
{
  *g = *f;
  g->vm = fake_vm_new ();
  memcpy (g->vm->ram, f->vm->ram, FAKE_MEM_SIZE);
  assert_int_equal (cl_vmm_virtio_fs_create (g->vm, "share", f->share, false, err), 0);
  g->d.vm = g->vm;
  g->d.pci = g->vm->pci[0];
  return g->vm->persist_ops[0]->restore (g->vm->persist_opaque[0], state, err);
}

static void
test_snapshot_keeps_nodes_and_handles (void **state)
{
  struct fixture *f = *state, g;
  struct fuse_entry_out hello, dir, news;
  struct fuse_attr_out a;
  uint64_t rfh, wfh, dfh;
  cl_error_t err = NULL;
  char buf[64];
  size_t len;
  json_t *saved;

  assert_int_equal (lookup (f, 1, "hello", &hello), 0);
  assert_int_equal (mkdir_node (f, 1, "dir", &dir), 0);
  assert_int_equal (create (f, dir.nodeid, "new", O_RDWR, &news, &wfh), 0);
  assert_int_equal (open_node (f, FUSE_OPEN, hello.nodeid, O_RDONLY, &rfh), 0);
  assert_int_equal (open_node (f, FUSE_OPENDIR, dir.nodeid, O_RDONLY, &dfh), 0);
  /* The guest renames the directory: the saved path follows it. */
  {
    struct body b = { .len = 0 };
    struct fuse_rename_in rn = { .newdir = 1 };
    put (&b, &rn, sizeof rn);
    put_str (&b, "dir");
    put_str (&b, "renamed");
    assert_int_equal (call (f, FUSE_RENAME, 1, &b, NULL, 0, NULL), 0);
  }
  saved = snapshot_state (f, &err);
  assert_non_null (saved);
  assert_int_equal (restore_into (f, &g, saved, &err), 0);
  json_decref (saved);

  /* The restored device answers for the ids the guest holds. */
  assert_int_equal (getattr (&g, hello.nodeid, &a), 0);
  assert_int_equal (a.attr.ino, hello.attr.ino);
  assert_int_equal (getattr (&g, news.nodeid, &a), 0);
  assert_int_equal (a.attr.ino, news.attr.ino);
  assert_int_equal (fs_read (&g, rfh, 0, 5, buf, &len), 0);
  assert_memory_equal (buf, "hello", 5);
  assert_int_equal (fs_write (&g, wfh, 0, "after restore", 13), 0);
  {
    static uint8_t list[4096];
    assert_int_equal (readdir (&g, FUSE_READDIR, dir.nodeid, dfh, list, &len), 0);
    assert_true (listed (list, len, false, "new", NULL));
  }
  assert_int_equal (lookup (&g, dir.nodeid, "new", NULL), 0);
  /* ... and still nothing else. */
  assert_int_equal (fs_read (&g, rfh + (1ull << 32), 0, 5, buf, &len), -EBADF);
  assert_int_equal (getattr (&g, news.nodeid + 1000, NULL), -ENOENT);
  /* New ids do not collide with restored ones. */
  {
    struct fuse_entry_out e;
    uint64_t fh;
    assert_int_equal (create (&g, 1, "later", O_RDWR, &e, &fh), 0);
    assert_true (e.nodeid != hello.nodeid && e.nodeid != dir.nodeid && e.nodeid != news.nodeid);
    assert_true (fh != rfh && fh != wfh && fh != dfh);
  }
  {
    char path[PATH_MAX], text[32] = { 0 };
    int fd;
    host_path (f, "renamed/new", path);
    fd = open (path, O_RDONLY);
    assert_true (fd >= 0);
    assert_int_equal (read (fd, text, sizeof text - 1), 13);
    close (fd);
    assert_string_equal (text, "after restore");
  }
  fake_vm_free (g.vm);
}

/* INIT again, the guest asking for FUSE_WRITEBACK_CACHE and
   FUSE_HANDLE_KILLPRIV_V2: the flags granted. */
static uint32_t
fuse_init_killpriv (struct fixture *f)
{
  struct body b = { .len = 0 };
  struct fuse_init_in in = { .major = 7,
                             .minor = 38,
                             .max_readahead = 65536,
                             .flags = FUSE_WRITEBACK_CACHE | FUSE_HANDLE_KILLPRIV_V2 };
  struct fuse_init_out o;

  put (&b, &in, sizeof in);
  assert_int_equal (call (f, FUSE_INIT, 0, &b, &o, sizeof o, NULL), 0);
  return o.flags;
}

static mode_t
host_mode (struct fixture *f, const char *name)
{
  char path[PATH_MAX];
  struct stat st;
  host_path (f, name, path);
  assert_int_equal (stat (path, &st), 0);
  return st.st_mode & 07777;
}

/* One second of caching; no writeback cache (it cost the guest more
   round trips than it saved); the server clears set-id bits when the
   guest says so; FLUSH is answered ENOSYS (the guest then stops sending
   it). */
static void
test_timeouts_and_killpriv (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e;
  char buf[32] = { 0 }, path[PATH_MAX];
  json_t *saved;
  cl_error_t err = NULL;
  uint64_t fh;
  size_t len;

  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  assert_int_equal (e.entry_valid, 1);
  assert_int_equal (e.attr_valid, 1);
  assert_int_equal (fuse_init_killpriv (f), FUSE_HANDLE_KILLPRIV_V2);

  write_host (f->share, "wb", "0123456789");
  assert_int_equal (lookup (f, 1, "wb", &e), 0);
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDWR, &fh), 0);
  assert_int_equal (fs_write (f, fh, 2, "ab", 2), 0);
  assert_int_equal (fs_read (f, fh, 0, 10, buf, &len), 0);
  assert_int_equal (len, 10);
  assert_memory_equal (buf, "01ab456789", 10);
  {
    struct body b = { .len = 0 };
    struct fuse_flush_in fl = { .fh = fh };
    put (&b, &fl, sizeof fl);
    assert_int_equal (call (f, FUSE_FLUSH, e.nodeid, &b, NULL, 0, NULL), -ENOSYS);
  }
  /* Still saved and restored as before. */
  saved = snapshot_state (f, &err);
  assert_non_null (saved);
  json_decref (saved);

  /* A WRITE with FUSE_WRITE_KILL_SUIDGID clears set-user-id. */
  host_path (f, "wb", path);
  assert_int_equal (chmod (path, 04755), 0);
  {
    struct body b = { .len = 0 };
    struct fuse_write_in in
        = { .fh = fh, .offset = 0, .size = 1, .write_flags = FUSE_WRITE_KILL_SUIDGID };
    put (&b, &in, sizeof in);
    put (&b, "Z", 1);
    assert_int_equal (call (f, FUSE_WRITE, 1, &b, buf, sizeof buf, NULL), 0);
  }
  assert_int_equal (host_mode (f, "wb"), 0755);
  /* A plain WRITE leaves the bits (the guest caller may keep them). */
  assert_int_equal (chmod (path, 04755), 0);
  assert_int_equal (fs_write (f, fh, 0, "Y", 1), 0);
  assert_int_equal (host_mode (f, "wb"), 04755);
  assert_int_equal (release (f, FUSE_RELEASE, fh), 0);
  /* A truncate with FATTR_KILL_SUIDGID: set-group-id goes too when
     group-executable, and not when not. */
  assert_int_equal (chmod (path, 06755), 0);
  {
    struct body b = { .len = 0 };
    struct fuse_setattr_in in = { .valid = FATTR_SIZE | FATTR_KILL_SUIDGID, .size = 4 };
    struct fuse_attr_out a;
    put (&b, &in, sizeof in);
    assert_int_equal (call (f, FUSE_SETATTR, e.nodeid, &b, &a, sizeof a, NULL), 0);
    assert_int_equal (a.attr.size, 4);
    assert_int_equal (a.attr.mode & 07777, 0755);
  }
  assert_int_equal (chmod (path, 06744), 0);
  {
    struct body b = { .len = 0 };
    struct fuse_open_in in = { .flags = O_WRONLY | O_TRUNC, .open_flags = FUSE_OPEN_KILL_SUIDGID };
    struct fuse_open_out o;
    put (&b, &in, sizeof in);
    assert_int_equal (call (f, FUSE_OPEN, e.nodeid, &b, &o, sizeof o, NULL), 0);
    assert_int_equal (release (f, FUSE_RELEASE, o.fh), 0);
  }
  assert_int_equal (host_mode (f, "wb"), 02744);
}

static void
test_snapshot_refused_when_a_held_file_left (void **state)
{
  struct fixture *f = *state;
  struct fuse_entry_out e;
  cl_error_t err = NULL;
  char from[PATH_MAX], to[PATH_MAX];
  json_t *saved;
  uint64_t fh;

  /* Not mounted (after DESTROY): nothing to save but the fact. */
  assert_int_equal (call (f, FUSE_DESTROY, 0, NULL, NULL, 0, NULL), 0);
  saved = snapshot_state (f, &err);
  assert_non_null (saved);
  json_decref (saved);
  fuse_init (f);

  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDONLY, &fh), 0);
  /* Moved out of the share by the host: it could not be found again. */
  host_path (f, "hello", from);
  snprintf (to, sizeof to, "%s/hello", f->outside);
  assert_int_equal (rename (from, to), 0);
  assert_null (snapshot_state (f, &err));
  assert_non_null (strstr (err->msg, "no longer in the share"));
  cl_error_release (&err);
  /* Deleted while the guest holds it. */
  assert_int_equal (rename (to, from), 0);
  assert_int_equal (unlink (from), 0);
  assert_null (snapshot_state (f, &err));
  assert_non_null (strstr (err->msg, "cannot be saved"));
  assert_non_null (strstr (err->msg, "was deleted"));
  cl_error_release (&err);
  /* Once the guest lets go, the snapshot goes ahead. */
  assert_int_equal (release (f, FUSE_RELEASE, fh), 0);
  struct
  {
    struct fuse_in_header h;
    struct fuse_forget_in in;
  } req = { { .len = sizeof req, .opcode = FUSE_FORGET, .nodeid = e.nodeid }, { .nlookup = 1 } };
  assert_int_equal (exchange (f, HIPRIO, &req, sizeof req, 0), 0);
  saved = snapshot_state (f, &err);
  assert_non_null (saved);
  json_decref (saved);
}

/* A snapshot's paths are resolved beneath the share like guest names. */
static void
test_restore_refuses_paths_out_of_the_share (void **state)
{
  struct fixture *f = *state, g;
  static const char *const bad[] = { "../outside/secret", "esc/secret", "/etc/passwd", "fifo" };
  struct fuse_entry_out e;
  cl_error_t err = NULL;
  char path[PATH_MAX];
  uint64_t fh;

  host_path (f, "esc", path);
  assert_int_equal (symlink (f->outside, path), 0);
  host_path (f, "fifo", path);
  assert_int_equal (mkfifo (path, 0644), 0);
  assert_int_equal (lookup (f, 1, "hello", &e), 0);
  assert_int_equal (open_node (f, FUSE_OPEN, e.nodeid, O_RDONLY, &fh), 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    for (int h = strcmp (bad[i], "fifo") == 0; h < 2; h++) /* a FIFO node is fine, a handle not */
      {
        json_t *saved = snapshot_state (f, &err);
        json_t *dev = json_object_get (saved, "device");
        json_t *list = json_object_get (dev, h ? "handles" : "inodes");
        assert_int_equal (json_array_size (list), 1);
        json_object_set_new (json_array_get (list, 0), "path", json_string (bad[i]));
        assert_int_equal (restore_into (f, &g, saved, &err), -1);
        assert_non_null (strstr (err->msg, bad[i]));
        cl_error_release (&err);
        json_decref (saved);
        /* Nothing half-restored answers. */
        assert_int_equal (getattr (&g, e.nodeid, NULL), -EIO);
        fake_vm_free (g.vm);
      }
  assert_secret_intact (f);
}

static void
test_bad_config (void **state)
{
  struct vm *vm = fake_vm_new ();
  cl_error_t err = NULL;
  (void)state;
  assert_int_equal (cl_vmm_virtio_fs_create (vm, "t", "/nonexistent/dir", false, &err), -1);
  assert_non_null (strstr (err->msg, "/nonexistent/dir"));
  cl_error_release (&err);
  assert_int_equal (
      cl_vmm_virtio_fs_create (vm, "a-tag-longer-than-thirty-six-bytes-xxx", "/tmp", false, &err),
      -1);
  cl_error_release (&err);
  assert_int_equal (cl_vmm_virtio_fs_create (vm, "", "/tmp", false, &err), -1);
  cl_error_release (&err);
  fake_vm_free (vm);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_config_space, setup, teardown),
    cmocka_unit_test_setup_teardown (test_nothing_before_init, setup, teardown),
    cmocka_unit_test_setup_teardown (test_lookup_getattr, setup, teardown),
    cmocka_unit_test_setup_teardown (test_forget_drops_the_node, setup, teardown),
    cmocka_unit_test_setup_teardown (test_create_write_read, setup, teardown),
    cmocka_unit_test_setup_teardown (test_mkdir_readdir, setup, teardown),
    cmocka_unit_test_setup_teardown (test_readdir_while_unlinking, setup, teardown),
    cmocka_unit_test_setup_teardown (test_rename_unlink_rmdir_link, setup, teardown),
    cmocka_unit_test_setup_teardown (test_symlink_readlink, setup, teardown),
    cmocka_unit_test_setup_teardown (test_xattrs, setup, teardown),
    cmocka_unit_test_setup_teardown (test_statfs_access, setup, teardown),
    cmocka_unit_test_setup_teardown (test_read_only_refuses_changes, setup_ro, teardown),
    cmocka_unit_test_setup_teardown (test_escapes_fail, setup, teardown),
    cmocka_unit_test_setup_teardown (test_forged_nodeid_and_fh, setup, teardown),
    cmocka_unit_test_setup_teardown (test_many_nodes_and_handles, setup, teardown),
    cmocka_unit_test_setup_teardown (test_malformed_requests, setup, teardown),
    cmocka_unit_test_setup_teardown (test_unknown_opcode, setup, teardown),
    cmocka_unit_test_setup_teardown (test_snapshot_keeps_nodes_and_handles, setup, teardown),
    cmocka_unit_test_setup_teardown (test_snapshot_refused_when_a_held_file_left, setup, teardown),
    cmocka_unit_test_setup_teardown (test_timeouts_and_killpriv, setup, teardown),
    cmocka_unit_test_setup_teardown (test_restore_refuses_paths_out_of_the_share, setup, teardown),
    cmocka_unit_test (test_bad_config),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
