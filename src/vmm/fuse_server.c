/* SPDX-License-Identifier: Apache-2.0 */
/* FUSE passthrough server beneath one host directory (see fuse_server.h).
   Node ids index a table of O_PATH descriptors (deduplicated by device and
   inode number, counted by LOOKUP and FORGET); file handles index a table
   of open descriptors and carry a generation, so a stale or forged handle
   is refused.  Open files and directories are reopened from their O_PATH
   descriptor through /proc/self/fd, the one place a magic link is used,
   and only for regular files and directories the table already holds. */
#include "vmm/fuse_server.h"

#include "common/util.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Oldest protocol accepted: every request struct has its current size. */
#define MIN_MINOR 12
#define MAX_INODES (1u << 20)
#define MAX_HANDLES (1u << 16)
#define HASH_BUCKETS 4096
/* Seconds the guest may cache entries and attributes (virtiofsd's
   cache=auto): changes made on the host show within a second.  Longer
   (a day, cache=always) made untar 2 to 4 times slower in the lab with
   the same requests (docs/virtiofs.md). */
#define CACHE_SECS 1
/* The most the guest reads ahead (op_init). */
#define FUSE_SERVER_READAHEAD (32u * 1024)
#define INIT_FLAGS                                                                                 \
  (FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_AUTO_INVAL_DATA                  \
   | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_CACHE_SYMLINKS)
/* Open flags passed to the host; the rest (O_CREAT, O_EXCL, O_NOCTTY,
   O_PATH, ...) are the guest kernel's business or dangerous here. */
#define OPEN_FLAGS_KEPT                                                                            \
  (O_ACCMODE | O_APPEND | O_TRUNC | O_DIRECT | O_SYNC | O_DSYNC | O_NOATIME | O_LARGEFILE)

struct fs_inode
{
  int fd; /* O_PATH; -1: free slot */
  uint32_t gen;
  mode_t type; /* S_IFMT bits */
  dev_t dev;
  ino_t ino;
  uint64_t nlookup;
  uint32_t hash_next; /* slot of the next inode in the bucket, 0: none */
};

struct fs_handle
{
  int fd; /* -1: free slot */
  uint32_t gen;
  int flags;       /* as opened: to reopen it after a restore */
  int64_t dir_pos; /* a directory's: the offset its fd stands at, -1 unknown */
};

struct fuse_server
{
  bool read_only;
  bool as_root; /* give created files the guest caller's uid/gid */
  bool mounted;
  uint32_t minor;
  int proc_fd;             /* /proc/self/fd */
  struct fs_inode *inodes; /* [0] unused, [1] the root */
  uint32_t ninodes;
  uint32_t hash[HASH_BUCKETS];
  struct fs_handle *handles; /* [0] unused */
  uint32_t nhandles;
  uint32_t next_gen;
  uint32_t inode_hint, handle_hint; /* no free slot below these */
  uint8_t dirbuf[128 * 1024] __attribute__ ((aligned (8)));
};

/* The request's arguments after the header: a cursor that only moves
   forward and never past the bytes the guest sent. */
struct args
{
  const uint8_t *p;
  size_t left;
  int fd; /* OP_FH: the descriptor of the request's (checked) file handle */
};

struct reply
{
  uint8_t *buf; /* header, then payload */
  size_t cap;
  size_t len;              /* payload bytes */
  const struct iovec *iov; /* the chain's writable buffers (READ), or NULL */
  unsigned niov;
  bool direct; /* the payload went into iov, not buf */
};

/* At most this many buffers for a READ read in place (256 pages of data,
   the header, and room for unaligned ones). */
#define READ_IOV_MAX 300

static int
neg_errno (void)
{
  return errno > 0 ? -errno : -EIO;
}

static const void *
take (struct args *a, size_t n)
{
  const void *p = a->p;
  if (a->left < n)
    return NULL;
  a->p += n;
  a->left -= n;
  return p;
}

/* A NUL-terminated string of 1..max bytes within the arguments. */
static int
take_string (struct args *a, size_t max, const char **out)
{
  size_t n = strnlen ((const char *)a->p, a->left);
  if (n == a->left)
    return -EINVAL; /* no terminator */
  if (n == 0)
    return -EINVAL;
  if (n > max)
    return -ENAMETOOLONG;
  *out = (const char *)a->p;
  a->p += n + 1;
  a->left -= n + 1;
  return 0;
}

/* One path component: never empty, ".", ".." or containing '/', so that
   resolving it relative to a directory inside the share stays inside. */
static int
take_name (struct args *a, const char **out)
{
  int r = take_string (a, NAME_MAX, out);
  if (r < 0)
    return r;
  if (strchr (*out, '/') || strcmp (*out, ".") == 0 || strcmp (*out, "..") == 0)
    return -EINVAL;
  return 0;
}

#define TAKE(a, var)                                                                               \
  do                                                                                               \
    {                                                                                              \
      if ((var = take ((a), sizeof *var)) == NULL)                                                 \
        return -EINVAL;                                                                            \
    }                                                                                              \
  while (0)

static void *
reply_room (struct reply *r, size_t n)
{
  void *p;
  if (sizeof (struct fuse_out_header) + r->len + n > r->cap)
    return NULL;
  p = r->buf + sizeof (struct fuse_out_header) + r->len;
  memset (p, 0, n);
  r->len += n;
  return p;
}

/* ------------------------------------------------------------- tables */

/* The inode and handle tables hold entries whose first member is a
   descriptor, -1 in a free slot.  Slot 0 is never used. */
static void *
table_new (size_t elem, uint32_t n)
{
  uint8_t *t = cl_xmalloc0 (n * elem);
  for (uint32_t i = 0; i < n; i++)
    memset (t + (size_t)i * elem, 0xff, sizeof (int));
  return t;
}

/* Doubles the table until it has slot `need` (at most `max` entries):
   0, or -1 when it cannot. */
static int
table_grow (void **table, uint32_t *size, size_t elem, uint32_t need, uint32_t max)
{
  uint32_t n = *size;
  uint8_t *grown;

  while (n <= need)
    n *= 2;
  if (n == *size)
    return 0;
  if (n > max)
    return -1;
  grown = table_new (elem, n);
  memcpy (grown, *table, (size_t)*size * elem);
  free (*table);
  *table = grown;
  *size = n;
  return 0;
}

/* A free slot at or after *hint, the table grown when it has none: the
   slot, or 0 when the table is full. */
static uint32_t
table_take_slot (void **table, uint32_t *size, size_t elem, uint32_t *hint, uint32_t max)
{
  uint32_t slot;
  int fd = 0;

  for (slot = *hint; slot < *size; slot++)
    {
      memcpy (&fd, (uint8_t *)*table + (size_t)slot * elem, sizeof fd);
      if (fd < 0)
        break;
    }
  if (slot >= *size && table_grow (table, size, elem, slot, max) < 0)
    return 0;
  *hint = slot + 1;
  return slot;
}

/* ------------------------------------------------------------- inodes */

static uint32_t
hash_of (dev_t dev, ino_t ino)
{
  uint64_t h = ((uint64_t)dev * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)ino * 0xC2B2AE3D27D4EB4Full);
  return (uint32_t)(h >> 40) % HASH_BUCKETS;
}

static struct fs_inode *
node_get (struct fuse_server *s, uint64_t nodeid)
{
  if (nodeid == 0 || nodeid >= s->ninodes || s->inodes[nodeid].fd < 0)
    return NULL;
  return &s->inodes[nodeid];
}

static void
node_drop (struct fuse_server *s, uint32_t slot)
{
  struct fs_inode *n = &s->inodes[slot];
  uint32_t *link = &s->hash[hash_of (n->dev, n->ino)];

  while (*link && *link != slot)
    link = &s->inodes[*link].hash_next;
  if (*link == slot)
    *link = n->hash_next;
  close (n->fd);
  n->fd = -1;
  n->nlookup = 0;
  n->hash_next = 0;
  if (slot < s->inode_hint)
    s->inode_hint = slot;
}

static void
node_forget (struct fuse_server *s, uint64_t nodeid, uint64_t count)
{
  struct fs_inode *n = node_get (s, nodeid);
  if (n == NULL || nodeid == FUSE_ROOT_ID)
    return;
  n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
  if (n->nlookup == 0)
    node_drop (s, nodeid);
}

/* Fills free slot `slot` with `fd`, an O_PATH descriptor whose stat is
   `st`, and hashes it by device and inode number. */
static void
node_set (struct fuse_server *s, uint32_t slot, int fd, const struct stat *st, uint32_t gen,
          uint64_t nlookup)
{
  uint32_t b = hash_of (st->st_dev, st->st_ino);

  s->inodes[slot] = (struct fs_inode){ .fd = fd,
                                       .gen = gen,
                                       .type = st->st_mode & S_IFMT,
                                       .dev = st->st_dev,
                                       .ino = st->st_ino,
                                       .nlookup = nlookup,
                                       .hash_next = s->hash[b] };
  s->hash[b] = slot;
}

/* Takes `fd` (an O_PATH descriptor whose stat is `st`) into the table, or
   counts one more lookup of the inode already there.  The node id, or a
   negative errno (fd closed). */
static int64_t
node_insert (struct fuse_server *s, int fd, const struct stat *st)
{
  uint32_t b = hash_of (st->st_dev, st->st_ino), slot;

  for (slot = s->hash[b]; slot; slot = s->inodes[slot].hash_next)
    if (s->inodes[slot].dev == st->st_dev && s->inodes[slot].ino == st->st_ino)
      {
        close (fd);
        s->inodes[slot].nlookup++;
        return slot;
      }
  slot = table_take_slot ((void **)&s->inodes, &s->ninodes, sizeof *s->inodes, &s->inode_hint,
                          MAX_INODES);
  if (slot == 0)
    {
      close (fd);
      return -ENFILE;
    }
  node_set (s, slot, fd, st, ++s->next_gen, 1);
  return slot;
}

static int
stat_fd (int fd, struct stat *st)
{
  return fstatat (fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? neg_errno () : 0;
}

/* `name` (one checked component) beneath directory `dirfd`, never through
   a symlink or a magic link, never above `dirfd`. */
static int
open_beneath (int dirfd, const char *name, uint64_t flags, uint64_t mode)
{
  struct open_how how = {
    .flags = flags | O_NOFOLLOW | O_CLOEXEC,
    .mode = mode,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  long fd = syscall (SYS_openat2, dirfd, name, &how, sizeof how);
  return fd < 0 ? neg_errno () : (int)fd;
}

/* Reopens a regular file or directory of the table with real access. */
static int
node_reopen (struct fuse_server *s, const struct fs_inode *n, int flags)
{
  char name[16];

  if (n->type != S_IFREG && n->type != S_IFDIR)
    return -EBADF; /* a FIFO would block the I/O thread; links are the guest's */
  snprintf (name, sizeof name, "%d", n->fd);
  int fd = openat (s->proc_fd, name, flags | O_CLOEXEC);
  return fd < 0 ? neg_errno () : fd;
}

static void
fill_attr (struct fuse_attr *a, const struct stat *st)
{
  a->ino = st->st_ino;
  a->size = st->st_size;
  a->blocks = st->st_blocks;
  a->atime = st->st_atim.tv_sec;
  a->mtime = st->st_mtim.tv_sec;
  a->ctime = st->st_ctim.tv_sec;
  a->atimensec = st->st_atim.tv_nsec;
  a->mtimensec = st->st_mtim.tv_nsec;
  a->ctimensec = st->st_ctim.tv_nsec;
  a->mode = st->st_mode;
  a->nlink = st->st_nlink;
  a->uid = st->st_uid;
  a->gid = st->st_gid;
  a->rdev = st->st_rdev;
  a->blksize = st->st_blksize;
}

/* LOOKUP of `name` in the directory `dirfd` (a node's fd, not the node:
   the lookup may grow the table, which moves every node): fills `e` and
   counts one lookup. */
static int
do_lookup (struct fuse_server *s, int dirfd, const char *name, struct fuse_entry_out *e)
{
  struct stat st;
  int fd = open_beneath (dirfd, name, O_PATH, 0), r;
  int64_t id;

  if (fd < 0)
    return fd;
  r = stat_fd (fd, &st);
  if (r < 0)
    {
      close (fd);
      return r;
    }
  id = node_insert (s, fd, &st);
  if (id < 0)
    return (int)id;
  memset (e, 0, sizeof *e);
  e->nodeid = id;
  e->generation = s->inodes[id].gen;
  e->entry_valid = e->attr_valid = CACHE_SECS;
  fill_attr (&e->attr, &st);
  return 0;
}

static int
reply_entry (struct fuse_server *s, const struct fs_inode *parent, const char *name,
             struct reply *r)
{
  struct fuse_entry_out *e = reply_room (r, sizeof *e);
  if (e == NULL)
    return -EINVAL;
  return do_lookup (s, parent->fd, name, e);
}

static int
reply_attr (struct reply *r, const struct stat *st)
{
  struct fuse_attr_out *o = reply_room (r, sizeof *o);
  if (o == NULL)
    return -EINVAL;
  o->attr_valid = CACHE_SECS;
  fill_attr (&o->attr, st);
  return 0;
}

/* FUSE_HANDLE_KILLPRIV_V2: a write or truncate by a guest caller without
   CAP_FSETID clears set-user-id, and set-group-id when group-executable,
   as the guest kernel would (the VMM itself may hold CAP_FSETID). */
static int
kill_suidgid (struct fuse_server *s, const struct fs_inode *n, int fd)
{
  struct stat st;
  mode_t mode;
  char name[16];
  int e;

  if ((e = stat_fd (fd >= 0 ? fd : n->fd, &st)) < 0)
    return e;
  mode = st.st_mode & 07777;
  if (!S_ISREG (st.st_mode) || !(mode & (S_ISUID | S_ISGID)))
    return 0;
  mode &= ~S_ISUID;
  if (mode & S_IXGRP)
    mode &= ~S_ISGID;
  if (fd >= 0)
    return fchmod (fd, mode) < 0 ? neg_errno () : 0;
  snprintf (name, sizeof name, "%d", n->fd);
  return fchmodat (s->proc_fd, name, mode, 0) < 0 ? neg_errno () : 0;
}

/* ------------------------------------------------------------ handles */

static struct fs_handle *
handle_get (struct fuse_server *s, uint64_t fh)
{
  uint32_t slot = (uint32_t)fh, gen = fh >> 32;
  if (slot == 0 || slot >= s->nhandles || s->handles[slot].fd < 0 || s->handles[slot].gen != gen)
    return NULL;
  return &s->handles[slot];
}

static int
handle_fd (struct fuse_server *s, uint64_t fh)
{
  struct fs_handle *h = handle_get (s, fh);
  return h ? h->fd : -EBADF;
}

/* Takes `fd` (opened with `flags`) into the handle table: the handle, or
   0 (fd closed). */
static uint64_t
handle_new (struct fuse_server *s, int fd, int flags)
{
  uint32_t slot = table_take_slot ((void **)&s->handles, &s->nhandles, sizeof *s->handles,
                                   &s->handle_hint, MAX_HANDLES);
  if (slot == 0)
    {
      close (fd);
      return 0;
    }
  s->handles[slot]
      = (struct fs_handle){ .fd = fd, .gen = ++s->next_gen, .flags = flags, .dir_pos = -1 };
  return ((uint64_t)s->handles[slot].gen << 32) | slot;
}

static int
reply_open (struct fuse_server *s, int fd, int flags, struct fuse_open_out *o)
{
  if (fd < 0)
    return fd;
  o->fh = handle_new (s, fd, flags);
  return o->fh ? 0 : -ENFILE;
}

/* ------------------------------------------------------------ requests */

/* Every request handler takes the same arguments and uses some of them. */
#define OP_PARAMS                                                                                  \
  struct fuse_server *s __attribute__ ((unused)),                                                  \
      const struct fuse_in_header *h __attribute__ ((unused)),                                     \
      struct fs_inode *n __attribute__ ((unused)), struct args *a __attribute__ ((unused)),        \
      struct reply *r __attribute__ ((unused))
typedef int (*op_fn) (OP_PARAMS);

/* After a create: the guest caller owns what it made, as on a local disk
   (only a root VMM can do this; otherwise the VMM's user owns it). */
static void
give_to_caller (struct fuse_server *s, const struct fuse_in_header *h, int dirfd, const char *name)
{
  if (s->as_root && fchownat (dirfd, name, h->uid, h->gid, AT_SYMLINK_NOFOLLOW) < 0)
    return; /* the file exists; ownership stays the VMM's */
}

static int
op_init (OP_PARAMS)
{
  const struct fuse_init_in *in;
  struct fuse_init_out *o;

  if ((in = take (a, 16)) == NULL) /* major, minor, max_readahead, flags */
    return -EINVAL;
  if (in->major < 7)
    return -EPROTO;
  if (in->major > 7)
    {
      /* Ask the kernel to fall back to 7.x: only major and minor count. */
      o = reply_room (r, sizeof *o);
      if (o == NULL)
        return -EINVAL;
      o->major = FUSE_KERNEL_VERSION;
      o->minor = FUSE_KERNEL_MINOR_VERSION;
      return 0;
    }
  if (in->minor < MIN_MINOR)
    return -EPROTO;
  if (s->mounted)
    cl_vmm_fuse_server_reset (s); /* a new session without DESTROY */
  s->minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION;
  o = reply_room (r, s->minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof *o);
  if (o == NULL)
    return -EINVAL;
  o->major = FUSE_KERNEL_VERSION;
  o->minor = s->minor;
  /* The guest's read-around for mmap faults is this window: exec of a
     binary faulted 128 KiB around each touched page (all 2 MiB of busybox
     for /bin/true), and a clone of a warm template pays for every guest
     page the data lands in (docs/templates.md "Where the time goes").
     read() of large buffers still asks up to the bdi's io_pages. */
  o->max_readahead
      = in->max_readahead < FUSE_SERVER_READAHEAD ? in->max_readahead : FUSE_SERVER_READAHEAD;
  o->flags = in->flags & INIT_FLAGS;
  /* The server clears set-id bits on write, truncate and chown (the host
     kernel clears security.capability itself), so the guest no longer
     asks for security.capability before every write(). */
  if (s->minor >= 33)
    o->flags |= in->flags & FUSE_HANDLE_KILLPRIV_V2;
  o->max_write = FUSE_SERVER_MAX_IO;
  if (s->minor >= 28 && (in->flags & FUSE_MAX_PAGES))
    {
      /* READ and WRITE requests up to max_write instead of 32 pages */
      o->flags |= FUSE_MAX_PAGES;
      o->max_pages = FUSE_SERVER_MAX_IO / 4096;
    }
  if (s->minor >= 23)
    o->time_gran = 1;
  s->mounted = true;
  return 0;
}

static int
op_destroy (OP_PARAMS)
{
  cl_vmm_fuse_server_reset (s);
  return 0;
}

static int
op_lookup (OP_PARAMS)
{
  const char *name;
  int e = take_name (a, &name);
  return e < 0 ? e : reply_entry (s, n, name, r);
}

static int
op_getattr (OP_PARAMS)
{
  const struct fuse_getattr_in *in;
  struct stat st;
  int fd = n->fd, e;

  TAKE (a, in);
  if (in->getattr_flags & FUSE_GETATTR_FH)
    if ((fd = handle_fd (s, in->fh)) < 0)
      return fd;
  if ((e = stat_fd (fd, &st)) < 0)
    return e;
  return reply_attr (r, &st);
}

static int
set_times (struct fuse_server *s, const struct fs_inode *n, const struct fuse_setattr_in *in)
{
  struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
  char name[16];

  if (in->valid & FATTR_ATIME)
    ts[0] = (struct timespec){ in->atime, in->atimensec };
  if (in->valid & FATTR_ATIME_NOW)
    ts[0].tv_nsec = UTIME_NOW;
  if (in->valid & FATTR_MTIME)
    ts[1] = (struct timespec){ in->mtime, in->mtimensec };
  if (in->valid & FATTR_MTIME_NOW)
    ts[1].tv_nsec = UTIME_NOW;
  if ((ts[0].tv_nsec != UTIME_OMIT && ts[0].tv_nsec != UTIME_NOW && ts[0].tv_nsec >= 1000000000)
      || (ts[1].tv_nsec != UTIME_OMIT && ts[1].tv_nsec != UTIME_NOW && ts[1].tv_nsec >= 1000000000))
    return -EINVAL;
  if (n->type == S_IFLNK)
    return utimensat (n->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? neg_errno () : 0;
  snprintf (name, sizeof name, "%d", n->fd);
  return utimensat (s->proc_fd, name, ts, 0) < 0 ? neg_errno () : 0;
}

static int
op_setattr (OP_PARAMS)
{
  const struct fuse_setattr_in *in;
  struct stat st;
  int hfd = -1, e;

  TAKE (a, in);
  if (in->valid & FATTR_FH)
    if ((hfd = handle_fd (s, in->fh)) < 0)
      return hfd;
  if (in->valid & FATTR_MODE)
    {
      char name[16];
      snprintf (name, sizeof name, "%d", n->fd);
      if (hfd >= 0)
        e = fchmod (hfd, in->mode & 07777);
      else if (n->type == S_IFREG || n->type == S_IFDIR)
        e = fchmodat (s->proc_fd, name, in->mode & 07777, 0);
      else
        return -EOPNOTSUPP;
      if (e < 0)
        return neg_errno ();
    }
  if (in->valid & (FATTR_UID | FATTR_GID))
    {
      uid_t uid = in->valid & FATTR_UID ? in->uid : (uid_t)-1;
      gid_t gid = in->valid & FATTR_GID ? in->gid : (gid_t)-1;
      if (fchownat (n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
        return neg_errno ();
    }
  if (in->valid & FATTR_SIZE)
    {
      if (in->size > (uint64_t)INT64_MAX)
        return -EFBIG;
      if (hfd >= 0)
        e = ftruncate (hfd, in->size);
      else
        {
          int fd = n->type == S_IFREG   ? node_reopen (s, n, O_WRONLY)
                   : n->type == S_IFDIR ? -EISDIR
                                        : -EINVAL;
          if (fd < 0)
            return fd;
          e = ftruncate (fd, in->size);
          if (e < 0)
            e = neg_errno ();
          close (fd);
          if (e < 0)
            return e;
        }
      if (e < 0)
        return neg_errno ();
    }
  if ((in->valid & FATTR_KILL_SUIDGID) && !(in->valid & FATTR_MODE))
    if ((e = kill_suidgid (s, n, hfd)) < 0)
      return e;
  if (in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW))
    if ((e = set_times (s, n, in)) < 0)
      return e;
  if ((e = stat_fd (n->fd, &st)) < 0)
    return e;
  return reply_attr (r, &st);
}

static int
op_readlink (OP_PARAMS)
{
  char *buf = (char *)r->buf + sizeof (struct fuse_out_header);
  size_t room = r->cap - sizeof (struct fuse_out_header);
  ssize_t len;

  if (n->type != S_IFLNK)
    return -EINVAL;
  len = readlinkat (n->fd, "", buf, room < PATH_MAX ? room : PATH_MAX);
  if (len < 0)
    return neg_errno ();
  if ((size_t)len == room && room < PATH_MAX)
    return -ERANGE;
  r->len = len;
  return 0;
}

static int
op_symlink (OP_PARAMS)
{
  const char *name, *target;
  int e;

  /* FUSE sends the new name, then the link's content. */
  if ((e = take_name (a, &name)) < 0 || (e = take_string (a, PATH_MAX - 1, &target)) < 0)
    return e;
  if (symlinkat (target, n->fd, name) < 0)
    return neg_errno ();
  give_to_caller (s, h, n->fd, name);
  return reply_entry (s, n, name, r);
}

/* MKNOD and MKDIR: a mode, then the new name. */
static int
op_make (OP_PARAMS)
{
  const struct fuse_mknod_in *nod;
  const struct fuse_mkdir_in *dir;
  const char *name;
  int e;

  if (h->opcode == FUSE_MKDIR)
    {
      TAKE (a, dir);
      if ((e = take_name (a, &name)) < 0)
        return e;
      e = mkdirat (n->fd, name, dir->mode & 07777);
    }
  else
    {
      TAKE (a, nod);
      if ((e = take_name (a, &name)) < 0)
        return e;
      /* Device nodes would open host devices to whoever reads the share. */
      if (!S_ISREG (nod->mode) && !S_ISFIFO (nod->mode) && !S_ISSOCK (nod->mode))
        return -EPERM;
      e = mknodat (n->fd, name, nod->mode & (S_IFMT | 07777), 0);
    }
  if (e < 0)
    return neg_errno ();
  give_to_caller (s, h, n->fd, name);
  return reply_entry (s, n, name, r);
}

static int
remove_entry (struct fs_inode *n, struct args *a, int flags)
{
  const char *name;
  int e = take_name (a, &name);
  if (e < 0)
    return e;
  return unlinkat (n->fd, name, flags) < 0 ? neg_errno () : 0;
}

static int
op_unlink (OP_PARAMS)
{
  return remove_entry (n, a, 0);
}

static int
op_rmdir (OP_PARAMS)
{
  return remove_entry (n, a, AT_REMOVEDIR);
}

static int
do_rename (struct fuse_server *s, struct fs_inode *n, uint64_t newdir, uint32_t flags,
           struct args *a)
{
  struct fs_inode *to = node_get (s, newdir);
  const char *oldname, *newname;
  int e;

  if (to == NULL)
    return -ENOENT;
  if ((e = take_name (a, &oldname)) < 0 || (e = take_name (a, &newname)) < 0)
    return e;
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
    return -EINVAL;
  return renameat2 (n->fd, oldname, to->fd, newname, flags) < 0 ? neg_errno () : 0;
}

static int
op_rename (OP_PARAMS)
{
  const struct fuse_rename_in *in;
  TAKE (a, in);
  return do_rename (s, n, in->newdir, 0, a);
}

static int
op_rename2 (OP_PARAMS)
{
  const struct fuse_rename2_in *in;
  TAKE (a, in);
  return do_rename (s, n, in->newdir, in->flags, a);
}

static int
op_link (OP_PARAMS)
{
  const struct fuse_link_in *in;
  struct fs_inode *old;
  const char *name;
  int e;

  TAKE (a, in);
  if ((e = take_name (a, &name)) < 0)
    return e;
  if ((old = node_get (s, in->oldnodeid)) == NULL)
    return -ENOENT;
  if (old->type == S_IFDIR)
    return -EPERM;
  if (linkat (old->fd, "", n->fd, name, AT_EMPTY_PATH) < 0)
    {
      /* Without CAP_DAC_READ_SEARCH: through /proc, regular files only. */
      char proc[16];
      if (old->type != S_IFREG)
        return neg_errno ();
      snprintf (proc, sizeof proc, "%d", old->fd);
      if (linkat (s->proc_fd, proc, n->fd, name, AT_SYMLINK_FOLLOW) < 0)
        return neg_errno ();
    }
  return reply_entry (s, n, name, r);
}

static int
open_flags (struct fuse_server *s, uint32_t guest_flags, int *flags)
{
  *flags = guest_flags & OPEN_FLAGS_KEPT;
  if (s->read_only && ((*flags & O_ACCMODE) != O_RDONLY || (*flags & O_TRUNC)))
    return -EROFS;
  return 0;
}

static int
op_open (OP_PARAMS)
{
  const struct fuse_open_in *in;
  struct fuse_open_out *o;
  int flags, e;

  TAKE (a, in);
  if ((o = reply_room (r, sizeof *o)) == NULL)
    return -EINVAL;
  if ((e = open_flags (s, in->flags, &flags)) < 0)
    return e;
  if (n->type == S_IFDIR)
    return -EISDIR;
  if ((e = reply_open (s, node_reopen (s, n, flags), flags, o)) < 0)
    return e;
  if ((flags & O_TRUNC) && (in->open_flags & FUSE_OPEN_KILL_SUIDGID))
    return kill_suidgid (s, n, handle_fd (s, o->fh));
  return 0;
}

static int
op_opendir (OP_PARAMS)
{
  const struct fuse_open_in *in;
  struct fuse_open_out *o;

  TAKE (a, in);
  if ((o = reply_room (r, sizeof *o)) == NULL)
    return -EINVAL;
  if (n->type != S_IFDIR)
    return -ENOTDIR;
  return reply_open (s, node_reopen (s, n, O_RDONLY | O_DIRECTORY), O_RDONLY | O_DIRECTORY, o);
}

static int
op_create (OP_PARAMS)
{
  const struct fuse_create_in *in;
  struct fuse_entry_out *e;
  struct fuse_open_out *o;
  const char *name;
  int flags, fd, rc;

  TAKE (a, in);
  if ((rc = take_name (a, &name)) < 0)
    return rc;
  e = reply_room (r, sizeof *e);
  o = reply_room (r, sizeof *o);
  if (e == NULL || o == NULL)
    return -EINVAL;
  if ((rc = open_flags (s, in->flags, &flags)) < 0)
    return rc;
  fd = open_beneath (n->fd, name, flags | O_CREAT | (in->flags & O_EXCL), in->mode & 07777);
  if (fd < 0)
    return fd;
  give_to_caller (s, h, n->fd, name);
  if ((flags & O_TRUNC) && (in->open_flags & FUSE_OPEN_KILL_SUIDGID)
      && (rc = kill_suidgid (s, NULL, fd)) < 0)
    {
      close (fd);
      return rc;
    }
  if ((rc = do_lookup (s, n->fd, name, e)) < 0)
    {
      close (fd);
      return rc;
    }
  return reply_open (s, fd, flags, o);
}

static int
op_read (OP_PARAMS)
{
  const struct fuse_read_in *in;
  size_t room = r->cap - sizeof (struct fuse_out_header), size;
  ssize_t got;
  int fd = a->fd;

  TAKE (a, in);
  if (in->offset > (uint64_t)INT64_MAX)
    return -EINVAL;
  size = in->size;
  if (size > room)
    size = room;
  if (size > FUSE_SERVER_MAX_IO)
    size = FUSE_SERVER_MAX_IO;
  if (r->iov)
    {
      /* straight into the guest's buffers, after the header's bytes */
      struct iovec v[READ_IOV_MAX];
      size_t in_place;
      unsigned k = cl_iov_slice (r->iov, r->niov, sizeof (struct fuse_out_header), size, v,
                                 READ_IOV_MAX, &in_place);
      if (in_place == size)
        {
          got = preadv (fd, v, k, in->offset);
          if (got < 0)
            return neg_errno ();
          r->len = got;
          r->direct = true;
          return 0;
        }
    }
  got = pread (fd, r->buf + sizeof (struct fuse_out_header), size, in->offset);
  if (got < 0)
    return neg_errno ();
  r->len = got;
  return 0;
}

static int
op_write (OP_PARAMS)
{
  const struct fuse_write_in *in;
  struct fuse_write_out *o;
  const void *data;
  ssize_t put;

  TAKE (a, in);
  if (in->size > FUSE_SERVER_MAX_IO || (data = take (a, in->size)) == NULL)
    return -EINVAL;
  if (in->offset > (uint64_t)INT64_MAX)
    return -EINVAL;
  if ((o = reply_room (r, sizeof *o)) == NULL)
    return -EINVAL;
  put = pwrite (a->fd, data, in->size, in->offset);
  if (put < 0)
    return neg_errno ();
  o->size = put;
  if (in->write_flags & FUSE_WRITE_KILL_SUIDGID)
    return kill_suidgid (s, NULL, a->fd);
  return 0;
}

static int
op_statfs (OP_PARAMS)
{
  struct fuse_statfs_out *o;
  struct statfs st;

  if ((o = reply_room (r, sizeof *o)) == NULL)
    return -EINVAL;
  if (fstatfs (n->fd, &st) < 0)
    return neg_errno ();
  o->st = (struct fuse_kstatfs){ .blocks = st.f_blocks,
                                 .bfree = st.f_bfree,
                                 .bavail = st.f_bavail,
                                 .files = st.f_files,
                                 .ffree = st.f_ffree,
                                 .bsize = st.f_bsize,
                                 .namelen = st.f_namelen,
                                 .frsize = st.f_frsize };
  return 0;
}

static int
op_release (OP_PARAMS)
{
  const struct fuse_release_in *in;
  struct fs_handle *hd;

  TAKE (a, in);
  if ((hd = handle_get (s, in->fh)) == NULL)
    return -EBADF;
  close (hd->fd);
  hd->fd = -1;
  if (in->fh % (1ull << 32) < s->handle_hint)
    s->handle_hint = (uint32_t)in->fh;
  return 0;
}

static int
op_fsync (OP_PARAMS)
{
  const struct fuse_fsync_in *in;
  int fd = a->fd;

  TAKE (a, in);
  if ((in->fsync_flags & 1) ? fdatasync (fd) : fsync (fd))
    return neg_errno ();
  return 0;
}

static int
op_flush (OP_PARAMS)
{
  const struct fuse_flush_in *in;

  TAKE (a, in);
  /* The handle is valid (OP_FH), but there is nothing to do: no POSIX
     locks are held on the host.  ENOSYS tells the guest so, and it sends
     no more FLUSH on close() (one round trip less per file). */
  return -ENOSYS;
}

static int
op_fallocate (OP_PARAMS)
{
  const struct fuse_fallocate_in *in;
  int fd = a->fd;

  TAKE (a, in);
  if (in->offset > (uint64_t)INT64_MAX || in->length > (uint64_t)INT64_MAX)
    return -EINVAL;
  return fallocate (fd, in->mode, in->offset, in->length) < 0 ? neg_errno () : 0;
}

/* Opens the inode for an xattr call: f*xattr do not take O_PATH. */
static int
xattr_fd (struct fuse_server *s, const struct fs_inode *n)
{
  if (n->type != S_IFREG && n->type != S_IFDIR)
    return -EOPNOTSUPP;
  return node_reopen (s, n, O_RDONLY | (n->type == S_IFDIR ? O_DIRECTORY : 0));
}

/* Reads a value or list of up to `size` bytes; size 0 asks for the length. */
static int
reply_xattr (struct reply *r, uint32_t size, ssize_t got)
{
  if (got < 0)
    return neg_errno ();
  if (size == 0)
    {
      struct fuse_getxattr_out *o = reply_room (r, sizeof *o);
      if (o == NULL)
        return -EINVAL;
      o->size = got;
      return 0;
    }
  r->len = got;
  return 0;
}

static size_t
xattr_room (const struct reply *r, uint32_t size)
{
  size_t room = r->cap - sizeof (struct fuse_out_header);
  return size == 0 ? 0 : size < room ? size : room;
}

static int
op_getxattr (OP_PARAMS)
{
  const struct fuse_getxattr_in *in;
  const char *name;
  int e, fd;
  ssize_t got;

  TAKE (a, in);
  if ((e = take_string (a, XATTR_NAME_MAX, &name)) < 0)
    return e;
  if ((fd = xattr_fd (s, n)) < 0)
    return fd;
  got = fgetxattr (fd, name, r->buf + sizeof (struct fuse_out_header), xattr_room (r, in->size));
  e = reply_xattr (r, in->size, got);
  close (fd);
  return e;
}

static int
op_listxattr (OP_PARAMS)
{
  const struct fuse_getxattr_in *in;
  int e, fd;
  ssize_t got;

  TAKE (a, in);
  if ((fd = xattr_fd (s, n)) < 0)
    return fd;
  got = flistxattr (fd, (char *)r->buf + sizeof (struct fuse_out_header), xattr_room (r, in->size));
  e = reply_xattr (r, in->size, got);
  close (fd);
  return e;
}

/* Setting security.* (file capabilities, SELinux labels) or system.*
   (ACLs) would let a guest grant host-side privileges; user.* and
   trusted.* (overlayfs in the guest) are the guest's own. */
static bool
xattr_name_settable (const char *name)
{
  return strncmp (name, "user.", 5) == 0 || strncmp (name, "trusted.", 8) == 0;
}

static int
op_setxattr (OP_PARAMS)
{
  const uint8_t *in; /* struct fuse_setxattr_in without FUSE_SETXATTR_EXT: size, flags */
  uint32_t size, flags;
  const char *name;
  const void *value;
  int e, fd;

  if ((in = take (a, FUSE_COMPAT_SETXATTR_IN_SIZE)) == NULL)
    return -EINVAL;
  memcpy (&size, in, 4);
  memcpy (&flags, in + 4, 4);
  if ((e = take_string (a, XATTR_NAME_MAX, &name)) < 0)
    return e;
  if (size > XATTR_SIZE_MAX || (value = take (a, size)) == NULL)
    return -EINVAL;
  if (!xattr_name_settable (name))
    return -EPERM;
  if ((fd = xattr_fd (s, n)) < 0)
    return fd;
  e = fsetxattr (fd, name, value, size, flags) < 0 ? neg_errno () : 0;
  close (fd);
  return e;
}

static int
op_removexattr (OP_PARAMS)
{
  const char *name;
  int e, fd;

  if ((e = take_string (a, XATTR_NAME_MAX, &name)) < 0)
    return e;
  if (!xattr_name_settable (name))
    return -EPERM;
  if ((fd = xattr_fd (s, n)) < 0)
    return fd;
  e = fremovexattr (fd, name) < 0 ? neg_errno () : 0;
  close (fd);
  return e;
}

/* The guest's sync(2): the host filesystem under the share reaches disk. */
static int
op_syncfs (OP_PARAMS)
{
  struct fs_inode *root = &s->inodes[FUSE_ROOT_ID];
  int fd = node_reopen (s, root, O_RDONLY | O_DIRECTORY), e;

  if (fd < 0)
    return fd;
  e = syncfs (fd) < 0 ? neg_errno () : 0;
  close (fd);
  return e;
}

static int
op_access (OP_PARAMS)
{
  const struct fuse_access_in *in;

  TAKE (a, in);
  /* The guest mounts virtio-fs with default_permissions: it checks modes
     itself.  What the host adds is read-only. */
  return s->read_only && (in->mask & W_OK) ? -EROFS : 0;
}

/* One directory entry into the reply: FUSE_READDIR or READDIRPLUS form.
   0, or -ENOSPC when it does not fit (the guest asks again from there). */
static int
put_dirent (struct fuse_server *s, int dirfd, const struct dirent64 *d, bool plus, struct reply *r)
{
  size_t namelen = strlen (d->d_name);
  size_t base = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
  size_t size = FUSE_DIRENT_ALIGN (base + namelen);
  uint8_t *p = reply_room (r, size);
  struct fuse_dirent *fd;

  if (p == NULL)
    return -ENOSPC;
  fd = (struct fuse_dirent *)(p + base - FUSE_NAME_OFFSET);
  fd->ino = d->d_ino;
  fd->off = d->d_off;
  fd->namelen = namelen;
  fd->type = d->d_type;
  memcpy (fd->name, d->d_name, namelen);
  if (plus && strcmp (d->d_name, ".") != 0 && strcmp (d->d_name, "..") != 0)
    {
      struct fuse_entry_out *e = (struct fuse_entry_out *)p;
      /* An entry gone meanwhile stays with node id 0: the guest then
         looks it up itself. */
      if (do_lookup (s, dirfd, d->d_name, e) < 0)
        memset (e, 0, sizeof *e);
    }
  return 0;
}

/* A directory is read from where its fd stands: it is seeked only when
   the guest asks for another offset.  On filesystems whose offsets count
   entries (tmpfs, dcache_readdir), a seek after entries were removed
   (`rm -rf` reading and unlinking) lands past entries never returned,
   and rmdir then fails with ENOTEMPTY (virtiofsd does the same). */
static int
do_readdir (struct fuse_server *s, struct fs_inode *n, struct args *a, struct reply *r, bool plus)
{
  const struct fuse_read_in *in;
  struct fs_handle *h;
  size_t want;
  ssize_t got;
  int64_t last;
  int fd = a->fd;
  /* n's fd, kept: a lookup of READDIRPLUS may grow the table, which
     moves every node, n too */
  int dirfd = n->fd;

  TAKE (a, in);
  h = handle_get (s, in->fh); /* args_fh checked it */
  want = in->size < sizeof s->dirbuf ? in->size : sizeof s->dirbuf;
  if (want > r->cap - sizeof (struct fuse_out_header))
    want = r->cap - sizeof (struct fuse_out_header);
  if (in->offset > (uint64_t)INT64_MAX)
    return -EINVAL;
  if (h->dir_pos != (int64_t)in->offset)
    {
      h->dir_pos = -1;
      if (lseek (fd, in->offset, SEEK_SET) < 0)
        return neg_errno ();
    }
  r->cap = sizeof (struct fuse_out_header) + want;
  /* A host record is never larger than its FUSE form, so what one
     getdents64 returns into `want` bytes covers a full reply. */
  got = getdents64 (fd, s->dirbuf, want);
  if (got < 0)
    return neg_errno ();
  last = in->offset;
  for (ssize_t off = 0; off < got;)
    {
      const struct dirent64 *d = (const struct dirent64 *)(s->dirbuf + off);
      if (put_dirent (s, dirfd, d, plus, r) < 0)
        {
          /* the reply is full: back to the first entry not sent, now,
             before the directory changes */
          if (lseek (fd, last, SEEK_SET) < 0)
            last = -1;
          break;
        }
      last = d->d_off;
      off += d->d_reclen;
    }
  h->dir_pos = last;
  return 0;
}

static int
op_readdir (OP_PARAMS)
{
  return do_readdir (s, n, a, r, false);
}

static int
op_readdirplus (OP_PARAMS)
{
  return do_readdir (s, n, a, r, true);
}

enum
{
  OP_NEEDS_NODE = 1, /* the header's nodeid must name a live inode */
  OP_CHANGES = 2,    /* refused with EROFS on a read-only share */
  OP_FH = 4,         /* the arguments start with a file handle that must be live */
};

struct op
{
  op_fn fn;
  unsigned flags;
};

static const struct op ops[] = {
  [FUSE_LOOKUP] = { op_lookup, OP_NEEDS_NODE },
  [FUSE_GETATTR] = { op_getattr, OP_NEEDS_NODE },
  [FUSE_SETATTR] = { op_setattr, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_READLINK] = { op_readlink, OP_NEEDS_NODE },
  [FUSE_SYMLINK] = { op_symlink, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_MKNOD] = { op_make, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_MKDIR] = { op_make, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_UNLINK] = { op_unlink, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_RMDIR] = { op_rmdir, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_RENAME] = { op_rename, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_LINK] = { op_link, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_OPEN] = { op_open, OP_NEEDS_NODE },
  [FUSE_READ] = { op_read, OP_FH },
  [FUSE_WRITE] = { op_write, OP_FH | OP_CHANGES },
  [FUSE_STATFS] = { op_statfs, OP_NEEDS_NODE },
  [FUSE_RELEASE] = { op_release, 0 },
  [FUSE_FSYNC] = { op_fsync, OP_FH },
  [FUSE_SETXATTR] = { op_setxattr, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_GETXATTR] = { op_getxattr, OP_NEEDS_NODE },
  [FUSE_LISTXATTR] = { op_listxattr, OP_NEEDS_NODE },
  [FUSE_REMOVEXATTR] = { op_removexattr, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_FLUSH] = { op_flush, OP_FH },
  [FUSE_INIT] = { op_init, 0 },
  [FUSE_OPENDIR] = { op_opendir, OP_NEEDS_NODE },
  [FUSE_READDIR] = { op_readdir, OP_NEEDS_NODE | OP_FH },
  [FUSE_RELEASEDIR] = { op_release, 0 },
  [FUSE_FSYNCDIR] = { op_fsync, OP_FH },
  [FUSE_ACCESS] = { op_access, OP_NEEDS_NODE },
  [FUSE_CREATE] = { op_create, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_DESTROY] = { op_destroy, 0 },
  [FUSE_FALLOCATE] = { op_fallocate, OP_FH | OP_CHANGES },
  [FUSE_READDIRPLUS] = { op_readdirplus, OP_NEEDS_NODE | OP_FH },
  [FUSE_RENAME2] = { op_rename2, OP_NEEDS_NODE | OP_CHANGES },
  [FUSE_SYNCFS] = { op_syncfs, 0 },
};

/* OP_FH: the handle the arguments start with, checked before the handler
   runs. */
_Static_assert(offsetof (struct fuse_read_in, fh) == 0 && offsetof (struct fuse_write_in, fh) == 0
                   && offsetof (struct fuse_fsync_in, fh) == 0
                   && offsetof (struct fuse_flush_in, fh) == 0
                   && offsetof (struct fuse_fallocate_in, fh) == 0,
               "OP_FH requests start with their file handle");
static int
args_fh (struct fuse_server *s, const struct args *a)
{
  uint64_t fh;
  if (a->left < sizeof fh)
    return -EINVAL;
  memcpy (&fh, a->p, sizeof fh);
  return handle_fd (s, fh);
}

/* Requests without a reply. */
static void
handle_forget (struct fuse_server *s, const struct fuse_in_header *h, struct args *a)
{
  if (h->opcode == FUSE_FORGET)
    {
      const struct fuse_forget_in *in = take (a, sizeof *in);
      if (in)
        node_forget (s, h->nodeid, in->nlookup);
      return;
    }
  const struct fuse_batch_forget_in *in = take (a, sizeof *in);
  if (in == NULL)
    return;
  /* `count` is the guest's: only the entries actually sent are read. */
  for (uint32_t i = 0; i < in->count; i++)
    {
      const struct fuse_forget_one *one = take (a, sizeof *one);
      if (one == NULL)
        return;
      node_forget (s, one->nodeid, one->nlookup);
    }
}

size_t
cl_vmm_fuse_server_handle (struct fuse_server *s, const uint8_t *req, size_t len, uint8_t *reply,
                           size_t cap)
{
  bool direct;
  return cl_vmm_fuse_server_handle_iov (s, req, len, reply, cap, NULL, 0, &direct);
}

size_t
cl_vmm_fuse_server_handle_iov (struct fuse_server *s, const uint8_t *req, size_t len,
                               uint8_t *reply, size_t cap, const struct iovec *iov, unsigned niov,
                               bool *direct)
{
  struct fuse_in_header h;
  struct fuse_out_header out;
  struct args a;
  struct reply r = { .buf = reply, .cap = cap, .iov = iov, .niov = niov };
  struct fs_inode *n = NULL;
  const struct op *op = NULL;
  int error;

  *direct = false;
  if (len < sizeof h)
    return 0; /* no unique id to answer */
  memcpy (&h, req, sizeof h);
  if (h.len >= sizeof h && h.len <= len)
    {
      a = (struct args){ req + sizeof h, h.len - sizeof h, -1 };
      if (h.opcode == FUSE_FORGET || h.opcode == FUSE_BATCH_FORGET)
        {
          if (s->mounted)
            handle_forget (s, &h, &a);
          return 0;
        }
      if (h.opcode == FUSE_INTERRUPT)
        return 0; /* requests are served whole, one at a time */
    }
  if (cap < sizeof out)
    return 0;
  if (h.len < sizeof h || h.len > len)
    error = -EINVAL; /* the header lies about the request's length */
  else if (h.opcode >= sizeof ops / sizeof ops[0] || ops[h.opcode].fn == NULL)
    error = -ENOSYS;
  else if (!s->mounted && h.opcode != FUSE_INIT)
    error = -EIO; /* nothing before INIT */
  else
    {
      op = &ops[h.opcode];
      if ((op->flags & OP_NEEDS_NODE) && (n = node_get (s, h.nodeid)) == NULL)
        error = -ENOENT;
      else if ((op->flags & OP_CHANGES) && s->read_only)
        error = -EROFS;
      else if ((op->flags & OP_FH) && (a.fd = args_fh (s, &a)) < 0)
        error = a.fd;
      else
        error = op->fn (s, &h, n, &a, &r);
    }
  if (error > 0 || error < -4095)
    error = -EIO;
  out = (struct fuse_out_header){ .len = sizeof out + (error == 0 ? r.len : 0),
                                  .error = error,
                                  .unique = h.unique };
  memcpy (reply, &out, sizeof out);
  *direct = error == 0 && r.direct;
  return out.len;
}

/* ------------------------------------------------------------ snapshot */

/* Where `fd` is now, relative to the shared root ("." for the root), into
   `out`; the kernel's own name for it (/proc/self/fd), checked by opening
   that path beneath the root again and finding the same inode.  -1 (err
   set) for a file deleted or moved out of the share while the guest holds
   it: nothing could bring it back after a restore. */
static int
where_is (struct fuse_server *s, int fd, const char *root, char *out, size_t size, cl_error_t *err)
{
  char name[16], path[PATH_MAX + 1];
  size_t rootlen = strlen (root);
  struct stat st, again;
  ssize_t len;
  int back;

  snprintf (name, sizeof name, "%d", fd);
  len = readlinkat (s->proc_fd, name, path, PATH_MAX);
  if (len < 0 || stat_fd (fd, &st) < 0)
    return cl_error_errno (err, "a held file");
  path[len] = 0;
  if (st.st_nlink == 0)
    return cl_error_make (err, 0, "`%s` is held by the guest but was deleted", path);
  if (strncmp (path, root, rootlen) != 0 || (path[rootlen] != '/' && path[rootlen] != 0))
    return cl_error_make (err, 0, "`%s` is held by the guest but is no longer in the share", path);
  snprintf (out, size, "%s", path[rootlen] ? path + rootlen + 1 : ".");
  back = open_beneath (s->inodes[FUSE_ROOT_ID].fd, out, O_PATH, 0);
  if (back < 0 || stat_fd (back, &again) < 0 || again.st_dev != st.st_dev
      || again.st_ino != st.st_ino)
    {
      if (back >= 0)
        close (back);
      return cl_error_make (err, 0, "`%s` cannot be found again beneath the share", path);
    }
  close (back);
  return 0;
}

json_t *
cl_vmm_fuse_server_save (struct fuse_server *s, cl_error_t *err)
{
  char root[PATH_MAX + 1], rel[PATH_MAX + 1], name[16];
  json_t *inodes, *handles;
  ssize_t len;

  if (!s->mounted)
    return json_pack ("{s:b}", "mounted", 0);
  snprintf (name, sizeof name, "%d", s->inodes[FUSE_ROOT_ID].fd);
  len = readlinkat (s->proc_fd, name, root, PATH_MAX);
  if (len < 0)
    {
      cl_error_errno (err, "the shared directory");
      return NULL;
    }
  root[len] = 0;
  if (strcmp (root, "/") == 0)
    root[0] = 0; /* paths beneath it start with the '/' */
  inodes = json_array ();
  handles = json_array ();
  for (uint32_t i = 2; i < s->ninodes; i++)
    {
      const struct fs_inode *n = &s->inodes[i];
      if (n->fd < 0)
        continue;
      if (where_is (s, n->fd, root, rel, sizeof rel, err) < 0)
        goto fail;
      json_array_append_new (inodes, json_pack ("{s:I,s:I,s:I,s:s}", "id", (json_int_t)i, "gen",
                                                (json_int_t)n->gen, "nlookup",
                                                (json_int_t)n->nlookup, "path", rel));
    }
  for (uint32_t i = 1; i < s->nhandles; i++)
    {
      const struct fs_handle *h = &s->handles[i];
      if (h->fd < 0)
        continue;
      if (where_is (s, h->fd, root, rel, sizeof rel, err) < 0)
        goto fail;
      json_array_append_new (handles,
                             json_pack ("{s:I,s:I,s:i,s:s}", "slot", (json_int_t)i, "gen",
                                        (json_int_t)h->gen, "flags", h->flags, "path", rel));
    }
  return json_pack ("{s:b,s:i,s:I,s:o,s:o}", "mounted", 1, "minor", s->minor, "next_gen",
                    (json_int_t)s->next_gen, "inodes", inodes, "handles", handles);
fail:
  json_decref (inodes);
  json_decref (handles);
  return NULL;
}

/* One saved inode or handle, reopened beneath the root.  The snapshot is
   the host's file, but its paths are still resolved as a guest's names
   are: never above the root, never through a symlink. */
static int
restore_one (struct fuse_server *s, json_t *e, bool inode, cl_error_t *err)
{
  json_int_t id, gen, count = 1;
  int flags = 0, fd;
  const char *path;
  struct stat st;

  if ((inode ? json_unpack (e, "{s:I,s:I,s:I,s:s}", "id", &id, "gen", &gen, "nlookup", &count,
                            "path", &path)
             : json_unpack (e, "{s:I,s:I,s:i,s:s}", "slot", &id, "gen", &gen, "flags", &flags,
                            "path", &path))
          < 0
      || id < (inode ? 2 : 1) || id >= (inode ? MAX_INODES : MAX_HANDLES) || gen < 0
      || gen > UINT32_MAX || count < 1)
    return cl_error_make (err, 0, "virtio-fs state: bad %s entry", inode ? "inode" : "handle");
  if (!inode)
    {
      flags &= OPEN_FLAGS_KEPT | O_DIRECTORY;
      flags &= ~O_TRUNC;
      if (s->read_only && (flags & O_ACCMODE) != O_RDONLY)
        return cl_error_make (err, 0, "virtio-fs state: `%s` open for writing in a read-only share",
                              path);
    }
  if (inode ? table_grow ((void **)&s->inodes, &s->ninodes, sizeof *s->inodes, id, MAX_INODES)
            : table_grow ((void **)&s->handles, &s->nhandles, sizeof *s->handles, id, MAX_HANDLES))
    return cl_error_make (err, 0, "virtio-fs state: too many entries");
  if ((inode ? s->inodes[id].fd : s->handles[id].fd) >= 0)
    return cl_error_make (err, 0, "virtio-fs state: entry %lld twice", (long long)id);
  fd = open_beneath (s->inodes[FUSE_ROOT_ID].fd, path, O_PATH, 0);
  if (fd < 0)
    return cl_error_make (err, -fd, "shared file `%s`", path);
  if (stat_fd (fd, &st) < 0)
    {
      close (fd);
      return cl_error_errno (err, "shared file `%s`", path);
    }
  if (!inode)
    {
      /* Reopened the way OPEN does: regular files and directories only. */
      struct fs_inode n = { .fd = fd, .type = st.st_mode & S_IFMT };
      int open_fd = node_reopen (s, &n, flags);
      close (fd);
      if (open_fd < 0)
        return cl_error_make (err, -open_fd, "shared file `%s`", path);
      s->handles[id]
          = (struct fs_handle){ .fd = open_fd, .gen = gen, .flags = flags, .dir_pos = -1 };
      return 0;
    }
  node_set (s, id, fd, &st, gen, count);
  return 0;
}

int
cl_vmm_fuse_server_restore (struct fuse_server *s, json_t *state, cl_error_t *err)
{
  json_t *inodes = NULL, *handles = NULL, *e;
  json_int_t next_gen = 0;
  int mounted = 0, minor = 0;
  size_t i;

  cl_vmm_fuse_server_reset (s);
  if (json_unpack (state, "{s:b,s?i,s?I,s?o,s?o}", "mounted", &mounted, "minor", &minor, "next_gen",
                   &next_gen, "inodes", &inodes, "handles", &handles)
      < 0)
    return cl_error_make (err, 0, "virtio-fs state: bad format");
  if (!mounted)
    return 0;
  if (minor < MIN_MINOR || minor > FUSE_KERNEL_MINOR_VERSION || next_gen < 0
      || next_gen > UINT32_MAX || !json_is_array (inodes) || !json_is_array (handles))
    return cl_error_make (err, 0, "virtio-fs state: bad session");
  json_array_foreach (inodes, i, e) if (restore_one (s, e, true, err) < 0) goto fail;
  json_array_foreach (handles, i, e) if (restore_one (s, e, false, err) < 0) goto fail;
  s->minor = minor;
  s->next_gen = next_gen;
  s->mounted = true;
  return 0;
fail:
  cl_vmm_fuse_server_reset (s);
  return -1;
}

/* ------------------------------------------------------------ lifetime */

void
cl_vmm_fuse_server_reset (struct fuse_server *s)
{
  for (uint32_t i = 2; i < s->ninodes; i++)
    if (s->inodes[i].fd >= 0)
      node_drop (s, i);
  for (uint32_t i = 1; i < s->nhandles; i++)
    if (s->handles[i].fd >= 0)
      {
        close (s->handles[i].fd);
        s->handles[i].fd = -1;
      }
  s->inode_hint = 2;
  s->handle_hint = 1;
  s->inodes[FUSE_ROOT_ID].nlookup = 1;
  s->mounted = false;
}

bool
cl_vmm_fuse_server_mounted (const struct fuse_server *s)
{
  return s->mounted;
}

struct fuse_server *
cl_vmm_fuse_server_new (const char *dir, bool read_only, cl_error_t *err)
{
  struct fuse_server *s;
  struct stat st;
  int root, proc;

  root = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    {
      cl_error_errno (err, "shared directory `%s`", dir);
      return NULL;
    }
  proc = open ("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0 || fstat (root, &st) < 0)
    {
      cl_error_errno (err, "shared directory `%s`: /proc/self/fd", dir);
      close (root);
      if (proc >= 0)
        close (proc);
      return NULL;
    }
  s = cl_xmalloc0 (sizeof *s);
  s->read_only = read_only;
  s->as_root = geteuid () == 0;
  s->proc_fd = proc;
  s->ninodes = 64;
  s->inodes = table_new (sizeof *s->inodes, s->ninodes);
  s->nhandles = 64;
  s->handles = table_new (sizeof *s->handles, s->nhandles);
  s->inode_hint = 2;
  s->handle_hint = 1;
  /* The root is never forgotten and stays out of the hash: a lookup that
     reaches it again (a bind mount of it inside itself) gets a new id. */
  s->inodes[FUSE_ROOT_ID] = (struct fs_inode){ .fd = root,
                                               .gen = ++s->next_gen,
                                               .type = S_IFDIR,
                                               .dev = st.st_dev,
                                               .ino = st.st_ino,
                                               .nlookup = 1 };
  return s;
}

void
cl_vmm_fuse_server_free (struct fuse_server *s)
{
  if (s == NULL)
    return;
  cl_vmm_fuse_server_reset (s);
  close (s->inodes[FUSE_ROOT_ID].fd);
  close (s->proc_fd);
  free (s->inodes);
  free (s->handles);
  free (s);
}
