/* SPDX-License-Identifier: Apache-2.0 */
/* Live migration, pre-copy (docs/migration.md).  The source sends guest
   memory while the guest runs, tracking what it dirties again (KVM's dirty
   log for the vCPUs' writes, guest_mem's bitmap for the VMM's own), until
   what is left fits the downtime budget; then it pauses, sends the rest
   and the machine state (the snapshot code's blobs), and stops once the
   destination says it took over.  Every failure before that leaves the
   source running as it was.

   Stream: "CLMIGRAT", u32 version, u32 length + header JSON (config,
   CPUID, memory size; with block migration the disks' sizes); the
   destination answers u32 status, u32 length + message.  Then records
   (struct rec), the last REC_END; the destination answers again once the
   state is restored.  Version 1 has no disk records; a source sends 1
   unless it streams disks, so that an older destination still takes a
   shared-storage move. */
#include "vmm/vmm_internal.h"

#include "vmm/disk_track.h"

#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/falloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define MIG_MAGIC "CLMIGRAT"
#define MIG_VERSION 2       /* the newest this side reads */
#define MIG_VERSION_BLOCK 2 /* the first with disk records */
#define PAGE 4096ull
#define BATCH 64              /* pages per record */
#define MAX_RECORD_PAGES 1024 /* what a destination accepts */
#define MAX_BLOB (64u << 20)  /* largest state blob accepted */
#define IO_TIMEOUT_S 10       /* a link silent this long is cut */
#define ACK_TIMEOUT_S 60      /* the destination's restore, under emulation */
#define DEFAULT_DOWNTIME_MS 50
#define DEFAULT_TIMEOUT_S 300
#define THROTTLE_PERIOD_NS 10000000ull

enum
{
  REC_PAGES = 1, /* n gpas, then n pages (enc 0) or their zstd frame (enc 1) */
  REC_ZERO = 2,  /* n gpas of pages now zero */
  REC_BLOB = 3,  /* n bytes of name, len bytes of state */
  REC_END = 4,
  REC_SYNC = 6, /* the destination answers once it has read up to here (if it
                   said "ok sync" to the header) */
  REC_DISK = 5, /* version 2: n = disk index, u64 offset, u64 length, then len bytes:
                   the data (enc 0), its zstd frame (enc 1), nothing: zeros (enc 2) */
};

struct rec
{
  uint32_t type, n, enc, len;
};

enum mig_state
{
  MIG_NONE,
  MIG_ACTIVE,
  MIG_COMPLETED,
  MIG_FAILED,
  MIG_CANCELLED,
};

static const char *const state_names[] = { "none", "active", "completed", "failed", "cancelled" };

struct vmm_migration
{
  struct vmm *m;
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t lock; /* the status below, parking */
  pthread_cond_t cond;

  /* request */
  char *uri;
  char *token; /* sent in the header: the destination may want it */
  uint64_t budget_ns, timeout_ns;
  uint64_t max_bandwidth; /* bytes/s, 0: as fast as the link goes */
  bool compress, auto_converge, block;
  bool sync; /* the destination answers REC_SYNC */

  _Atomic bool cancel;
  _Atomic int fd;

  /* status (lock) */
  enum mig_state state;
  unsigned pass;
  uint64_t bytes_sent, pages_sent, zero_pages_skipped, dirty_pages, dirty_rate, bandwidth;
  uint64_t expected_downtime_ns, downtime_ns, total_ns, start_ns;
  unsigned throttle_max;
  /* stop-and-copy: pages sent paused, and where the time went */
  uint64_t last_pages, t_pause_ns, t_pages_ns, t_state_ns, t_ack_ns;
  uint64_t t_resumed_ns; /* the pause to the destination's vCPUs running */
  /* block migration */
  uint64_t disk_bytes_sent, disk_chunks_sent, disk_dirty_chunks, last_chunks;
  char *error;

  /* the I/O thread parked for the stop-and-copy */
  int park_fd;
  bool parked, release;

  /* per memory slot: KVM's bitmap as fetched, the pages still to send */
  uint64_t *kvm_bm[GUEST_MEM_MAX_REGIONS];
  uint64_t *send_bm[GUEST_MEM_MAX_REGIONS];
  /* per disk (block migration): the chunks still to send */
  uint64_t *disk_bm[VM_MAX_DISKS];
  uint8_t *chunk_buf;
  bool manual_protect;
  ZSTD_CCtx *cctx;
  void *zbuf;
  _Atomic bool kicker_stop;
};

static uint64_t
region_pages (const struct guest_mem_region *r)
{
  return r->size / PAGE;
}

static size_t
bitmap_words (const struct guest_mem_region *r)
{
  return (region_pages (r) + 63) / 64;
}

/* --- stream I/O --- */

static int
fd_timeouts (int fd, int seconds)
{
  struct timeval tv = { .tv_sec = seconds };
  int one = 1;
  /* not a socket (fd:N may be a pipe): no timeouts, no error */
  if (setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 && errno == ENOTSOCK)
    return 0;
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return 0;
}

static int
writev_all (int fd, struct iovec *iov, int n)
{
  while (n > 0)
    {
      ssize_t w = writev (fd, iov, n > IOV_MAX ? IOV_MAX : n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -1;
      if (w == 0)
        {
          errno = EPIPE;
          return -1;
        }
      while (n > 0 && (size_t)w >= iov->iov_len)
        {
          w -= iov->iov_len;
          iov++;
          n--;
        }
      if (n > 0)
        {
          iov->iov_base = (uint8_t *)iov->iov_base + w;
          iov->iov_len -= w;
        }
    }
  return 0;
}

/* Disk images: whole transfers (EIO at the end of the file). */
static int
disk_io_all (int fd, void *buf, size_t len, uint64_t off, bool write)
{
  while (len > 0)
    {
      ssize_t r = write ? pwrite (fd, buf, len, off) : pread (fd, buf, len, off);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        {
          if (r == 0)
            errno = EIO;
          return -1;
        }
      buf = (uint8_t *)buf + r;
      len -= r;
      off += r;
    }
  return 0;
}

static int
stream_error (cl_error_t *err, const char *what)
{
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return cl_error_make (err, 0, "migration stream: %s: no progress for %d s (link cut?)", what,
                          IO_TIMEOUT_S);
  if (errno == EIO)
    return cl_error_make (err, 0, "migration stream: %s: the peer closed the connection", what);
  return cl_error_errno (err, "migration stream: %s", what);
}

/* u32 length + bytes */
static int
send_msg (int fd, uint32_t status, const char *text, cl_error_t *err)
{
  uint32_t h[2] = { status, text ? strlen (text) : 0 };
  struct iovec iov[2] = { { h, sizeof h }, { (void *)text, h[1] } };
  if (writev_all (fd, iov, 2) < 0)
    return stream_error (err, "send");
  return 0;
}

/* The peer's answer: 0 and its status/message, or -1 on stream failure. */
static int
recv_msg (int fd, uint32_t *status, char **text, cl_error_t *err)
{
  uint32_t h[2];
  if (cl_read_all (fd, h, sizeof h) < 0)
    return stream_error (err, "receive");
  if (h[1] > 65536)
    return cl_error_make (err, 0, "migration stream: message of %u bytes", h[1]);
  *text = cl_xmalloc0 (h[1] + 1);
  if (cl_read_all (fd, *text, h[1]) < 0)
    {
      free (*text);
      *text = NULL;
      return stream_error (err, "receive");
    }
  *status = h[0];
  return 0;
}

/* "tcp:HOST:PORT" -> host, port; HOST may be empty (any / localhost). */
static int
parse_tcp (const char *uri, char **host, char **port, cl_error_t *err)
{
  const char *hp = uri + 4, *colon = strrchr (hp, ':');
  if (colon == NULL || colon[1] == 0)
    return cl_error_make (err, 0, "uri `%s`: expected tcp:HOST:PORT or fd:N", uri);
  size_t hl = colon - hp;
  if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']')
    {
      hp++;
      hl -= 2;
    }
  *host = strndup (hp, hl);
  *port = cl_xstrdup (colon + 1);
  return 0;
}

static int
parse_fd_uri (const char *uri, cl_error_t *err)
{
  char *end;
  long n = strtol (uri + 3, &end, 10);
  if (uri[3] == 0 || *end || n < 0 || n > 65535 || fcntl (n, F_GETFD) < 0)
    return cl_error_make (err, 0, "uri `%s`: fd:N needs an open file descriptor", uri);
  return dup (n);
}

static int
check_uri (const char *uri, cl_error_t *err)
{
  if (strncmp (uri, "tcp:", 4) != 0 && strncmp (uri, "fd:", 3) != 0)
    return cl_error_make (err, 0, "uri `%s`: expected tcp:HOST:PORT or fd:N", uri);
  return 0;
}

/* fd:N: *fd gets a copy of N (*res NULL); tcp:HOST:PORT: *res gets its
   addresses (passive: to listen on). */
static int
uri_open (const char *uri, bool passive, struct addrinfo **res, int *fd, cl_error_t *err)
{
  *res = NULL;
  if (check_uri (uri, err) < 0)
    return -1;
  if (strncmp (uri, "fd:", 3) == 0)
    return (*fd = parse_fd_uri (uri, err)) < 0 ? -1 : 0;
  cleanup_free char *host = NULL, *port = NULL;
  if (parse_tcp (uri, &host, &port, err) < 0)
    return -1;
  struct addrinfo hints
      = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0) };
  int rc = getaddrinfo (*host ? host : NULL, port, &hints, res);
  if (rc != 0)
    return cl_error_make (err, 0, "uri `%s`: %s", uri, gai_strerror (rc));
  return 0;
}

/* Source side: a connected stream. */
static int
uri_connect (const char *uri, cl_error_t *err)
{
  struct addrinfo *res;
  int fd = -1, saved = 0;
  if (uri_open (uri, false, &res, &fd, err) < 0)
    return -1;
  if (res == NULL)
    return fd;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next)
    {
      fd = socket (a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0)
        {
          saved = errno;
          continue;
        }
      fd_timeouts (fd, IO_TIMEOUT_S);
      if (connect (fd, a->ai_addr, a->ai_addrlen) < 0)
        {
          saved = errno;
          close (fd);
          fd = -1;
        }
    }
  freeaddrinfo (res);
  if (fd < 0)
    return cl_error_make (err, saved, "connect `%s`", uri);
  return fd;
}

/* fd:N naming a listening socket (a manager's, bound on an ephemeral
   port it told the source): one connection is accepted from it, within
   INCOMING_ACCEPT_S; any other descriptor is the stream itself. */
#define INCOMING_ACCEPT_S 60
static int
fd_accept_listening (const char *uri, int fd, cl_error_t *err)
{
  int listening = 0;
  socklen_t len = sizeof listening;
  struct pollfd p = { .fd = fd, .events = POLLIN };
  int r, c;

  if (getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening)
    return fd;
  fprintf (stderr, "cloison-vmm: waiting for a migration on %s\n", uri);
  while ((r = poll (&p, 1, INCOMING_ACCEPT_S * 1000)) < 0 && errno == EINTR)
    ;
  if (r == 0)
    {
      close (fd);
      return cl_error_make (err, 0, "--incoming `%s`: no migration came within %d s", uri,
                            INCOMING_ACCEPT_S);
    }
  c = r < 0 ? -1 : accept4 (fd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0)
    cl_error_errno (err, "--incoming `%s`: accept", uri);
  close (fd);
  return c;
}

/* Destination side: listens, accepts one connection. */
static int
uri_accept (const char *uri, cl_error_t *err)
{
  struct addrinfo *res;
  int fd = -1;
  if (uri_open (uri, true, &res, &fd, err) < 0)
    return cl_error_wrap (err, "--incoming");
  if (res == NULL)
    return fd_accept_listening (uri, fd, err);
  int one = 1;
  cleanup_close int lfd = socket (res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  if (lfd < 0 || setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
      || bind (lfd, res->ai_addr, res->ai_addrlen) < 0 || listen (lfd, 1) < 0)
    {
      freeaddrinfo (res);
      return cl_error_errno (err, "--incoming `%s`", uri);
    }
  freeaddrinfo (res);
  fprintf (stderr, "cloison-vmm: waiting for a migration on %s\n", uri);
  fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    return cl_error_errno (err, "--incoming `%s`: accept", uri);
  return fd;
}

/* --- the source --- */

static void
mig_set_error (struct vmm_migration *g, cl_error_t e)
{
  pthread_mutex_lock (&g->lock);
  free (g->error);
  g->error = cl_xstrdup (e ? e->msg : "unknown error");
  pthread_mutex_unlock (&g->lock);
}

/* The I/O thread parks here for the stop-and-copy: the device state is
   then still and only this thread touches guest memory. */
static void
on_park (void *opaque, uint32_t events)
{
  struct vmm_migration *g = opaque;
  uint64_t v;
  (void)events;
  if (read (g->park_fd, &v, sizeof v) != sizeof v)
    return;
  pthread_mutex_lock (&g->lock);
  g->parked = true;
  pthread_cond_broadcast (&g->cond);
  while (!g->release && !cl_vmm_vm_stopping (g->m->vm))
    {
      struct timespec ts;
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += 100000000;
      if (ts.tv_nsec >= 1000000000)
        {
          ts.tv_sec++;
          ts.tv_nsec -= 1000000000;
        }
      pthread_cond_timedwait (&g->cond, &g->lock, &ts);
    }
  g->parked = false;
  g->release = false;
  pthread_cond_broadcast (&g->cond);
  pthread_mutex_unlock (&g->lock);
}

static bool
park_io_thread (struct vmm_migration *g)
{
  uint64_t one = 1;
  if (write (g->park_fd, &one, sizeof one) != sizeof one)
    return false;
  pthread_mutex_lock (&g->lock);
  uint64_t deadline = cl_now_ns () + 5000000000ull;
  while (!g->parked && !cl_vmm_vm_stopping (g->m->vm) && cl_now_ns () < deadline)
    {
      pthread_mutex_unlock (&g->lock);
      usleep (200);
      pthread_mutex_lock (&g->lock);
    }
  bool ok = g->parked;
  pthread_mutex_unlock (&g->lock);
  return ok;
}

static void
release_io_thread (struct vmm_migration *g)
{
  pthread_mutex_lock (&g->lock);
  if (g->parked)
    {
      g->release = true;
      pthread_cond_broadcast (&g->cond);
    }
  pthread_mutex_unlock (&g->lock);
}

static int
slots_dirty_log (struct vm *vm, bool on, cl_error_t *err)
{
  for (int i = 0; i < vm->mem.nregions; i++)
    {
      struct guest_mem_region *r = &vm->mem.regions[i];
      struct kvm_userspace_memory_region kr = {
        .slot = i,
        .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = r->gpa,
        .memory_size = r->size,
        .userspace_addr = (uint64_t)(uintptr_t)r->host,
      };
      if (ioctl (vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0)
        return cl_error_errno (err, "KVM_SET_USER_MEMORY_REGION (dirty log %s)", on ? "on" : "off");
    }
  return 0;
}

static int
dirty_log_start (struct vmm_migration *g, cl_error_t *err)
{
  struct vm *vm = g->m->vm;
  int caps = ioctl (vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
  g->manual_protect = false;
  if (caps > 0 && (caps & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
    {
      struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
                                    .args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } };
      g->manual_protect = ioctl (vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
    }
  for (int i = 0; i < vm->mem.nregions; i++)
    {
      struct guest_mem_region *r = &vm->mem.regions[i];
      size_t words = bitmap_words (r);
      if (g->kvm_bm[i] == NULL)
        {
          g->kvm_bm[i] = cl_xmalloc0 (words * 8);
          g->send_bm[i] = cl_xmalloc0 (words * 8);
        }
      memset (g->send_bm[i], 0, words * 8);
      /* kept until the VM goes: a device may be marking it right now */
      if (r->dirty == NULL)
        r->dirty = cl_xmalloc0 (words * 8);
      for (size_t w = 0; w < words; w++)
        __atomic_store_n (&r->dirty[w], 0, __ATOMIC_RELAXED);
    }
  __atomic_store_n (&vm->mem.dirty_log, 1, __ATOMIC_RELEASE);
  for (unsigned i = 0; g->block && i < vm->ndisks; i++)
    {
      if (g->disk_bm[i] == NULL)
        g->disk_bm[i] = cl_xmalloc0 ((vm->disks[i]->words + 1) * 8);
      memset (g->disk_bm[i], 0, vm->disks[i]->words * 8);
      cl_vmm_disk_track_set (vm->disks[i], true);
    }
  return slots_dirty_log (vm, true, err);
}

static void
dirty_log_stop (struct vmm_migration *g)
{
  struct vm *vm = g->m->vm;
  __atomic_store_n (&vm->mem.dirty_log, 0, __ATOMIC_RELEASE);
  for (unsigned i = 0; i < vm->ndisks; i++)
    cl_vmm_disk_track_set (vm->disks[i], false);
  slots_dirty_log (vm, false, NULL);
  if (g->manual_protect)
    {
      struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
      ioctl (vm->vm_fd, KVM_ENABLE_CAP, &cap);
      g->manual_protect = false;
    }
}

/* Adds the pages written since the last call (KVM's log and the VMM's)
   to send_bm, and the disk chunks to disk_bm (*chunks: how many are to
   send); returns how many pages are to send, or -1. */
static int64_t
dirty_harvest (struct vmm_migration *g, uint64_t *chunks, cl_error_t *err)
{
  struct vm *vm = g->m->vm;
  int64_t total = 0;
  *chunks = 0;
  for (unsigned i = 0; g->block && i < vm->ndisks; i++)
    *chunks += cl_vmm_disk_track_harvest (vm->disks[i], g->disk_bm[i]);
  for (size_t i = 0; i < vm->npersist; i++)
    if (vm->persist[i].ops->mark_dirty)
      vm->persist[i].ops->mark_dirty (vm->persist[i].opaque);
  for (int i = 0; i < vm->mem.nregions; i++)
    {
      struct guest_mem_region *r = &vm->mem.regions[i];
      size_t words = bitmap_words (r);
      struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = g->kvm_bm[i] };
      memset (g->kvm_bm[i], 0, words * 8);
      if (ioctl (vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
        return cl_error_errno (err, "KVM_GET_DIRTY_LOG");
      if (g->manual_protect)
        {
          struct kvm_clear_dirty_log clr = {
            .slot = i, .num_pages = region_pages (r), .first_page = 0, .dirty_bitmap = g->kvm_bm[i]
          };
          if (ioctl (vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clr) < 0)
            return cl_error_errno (err, "KVM_CLEAR_DIRTY_LOG");
        }
      for (size_t w = 0; w < words; w++)
        {
          uint64_t v = g->kvm_bm[i][w] | __atomic_exchange_n (&r->dirty[w], 0, __ATOMIC_RELAXED);
          g->send_bm[i][w] |= v;
          total += __builtin_popcountll (g->send_bm[i][w]);
        }
    }
  return total;
}

static bool
page_is_zero (const uint8_t *p)
{
  const uint64_t *w = (const uint64_t *)p;
  for (size_t i = 0; i < PAGE / 8; i += 4)
    if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
      return false;
  return true;
}

/* A batch of pages (or of zero-page addresses) on its way out. */
struct batch
{
  uint64_t gpa[BATCH];
  const uint8_t *host[BATCH];
  unsigned n;
  bool zero;
};

/* auto-converge: a thread of its own kicks the vCPUs every 10 ms while
   the throttle is on, and each kicked vCPU sleeps its share (vcpu.c);
   kicking from the send loop would stop while a send blocks. */
static void *
kicker_main (void *opaque)
{
  struct vmm_migration *g = opaque;
  struct vm *vm = g->m->vm;
  pthread_setname_np (pthread_self (), "mig-throttle");
  while (!atomic_load (&g->kicker_stop))
    {
      struct timespec ts = { 0, THROTTLE_PERIOD_NS };
      nanosleep (&ts, NULL);
      if (atomic_load (&vm->throttle_pct) == 0)
        continue;
      for (unsigned i = 0; i < vm->ncpus; i++)
        if (vm->vcpus[i].started)
          pthread_kill (vm->vcpus[i].thread, SIGUSR1);
    }
  return NULL;
}

static void sent_account (struct vmm_migration *g, uint64_t bytes, uint64_t pages,
                          uint64_t disk_bytes);

static int
batch_flush (struct vmm_migration *g, int fd, struct batch *b, cl_error_t *err)
{
  struct iovec iov[BATCH + 2];
  struct rec h = { .type = b->zero ? REC_ZERO : REC_PAGES, .n = b->n };
  int n = 0;
  uint64_t bytes;

  if (b->n == 0)
    return 0;
  if (atomic_load (&g->cancel))
    return cl_error_make (err, 0, "migration cancelled");
  iov[n++] = (struct iovec){ &h, sizeof h };
  iov[n++] = (struct iovec){ b->gpa, b->n * sizeof (uint64_t) };
  if (!b->zero)
    {
      h.len = b->n * PAGE;
      if (g->compress)
        {
          /* one frame for the batch; pages gathered first */
          uint8_t *raw = (uint8_t *)g->zbuf + ZSTD_compressBound (BATCH * PAGE);
          for (unsigned i = 0; i < b->n; i++)
            memcpy (raw + i * PAGE, b->host[i], PAGE);
          size_t z = ZSTD_compressCCtx (g->cctx, g->zbuf, ZSTD_compressBound (BATCH * PAGE), raw,
                                        b->n * PAGE, 1);
          if (!ZSTD_isError (z) && z < b->n * PAGE)
            {
              h.enc = 1;
              h.len = z;
              iov[n++] = (struct iovec){ g->zbuf, z };
            }
        }
      if (h.enc == 0)
        for (unsigned i = 0; i < b->n; i++)
          iov[n++] = (struct iovec){ (void *)b->host[i], PAGE };
    }
  bytes = sizeof h + b->n * sizeof (uint64_t) + h.len;
  if (writev_all (fd, iov, n) < 0)
    return stream_error (err, "send");
  sent_account (g, bytes, b->zero ? 0 : b->n, 0);
  b->n = 0;
  return 0;
}

/* The figures after a send, then no faster than max_bandwidth. */
static void
sent_account (struct vmm_migration *g, uint64_t bytes, uint64_t pages, uint64_t disk_bytes)
{
  pthread_mutex_lock (&g->lock);
  g->bytes_sent += bytes;
  g->pages_sent += pages;
  g->disk_bytes_sent += disk_bytes;
  g->disk_chunks_sent += disk_bytes ? 1 : 0;
  pthread_mutex_unlock (&g->lock);
  if (g->max_bandwidth)
    {
      /* no faster than max_bandwidth on average since the start */
      uint64_t due = g->start_ns + g->bytes_sent * 1000000000ull / g->max_bandwidth;
      uint64_t now = cl_now_ns ();
      if (due > now)
        {
          struct timespec ts = { (due - now) / 1000000000ull, (due - now) % 1000000000ull };
          nanosleep (&ts, NULL);
        }
    }
}

static int
batch_add (struct vmm_migration *g, int fd, struct batch *b, uint64_t gpa, const uint8_t *host,
           cl_error_t *err)
{
  b->gpa[b->n] = gpa;
  b->host[b->n] = host;
  if (++b->n == BATCH)
    return batch_flush (g, fd, b, err);
  return 0;
}

/* Pass 1 (all = true): every page that is not zero.  Later passes: the
   pages in send_bm, zero ones as addresses only. */
static int
send_pass (struct vmm_migration *g, int fd, bool all, cl_error_t *err)
{
  struct vm *vm = g->m->vm;
  struct batch pages = { .zero = false }, zeros = { .zero = true };
  uint64_t skipped = 0;

  for (int i = 0; i < vm->mem.nregions; i++)
    {
      struct guest_mem_region *r = &vm->mem.regions[i];
      uint64_t npages = region_pages (r);
      for (uint64_t p = 0; p < npages; p++)
        {
          if (!all)
            {
              uint64_t w = g->send_bm[i][p / 64];
              if (w == 0)
                {
                  p |= 63;
                  continue;
                }
              if (!(w & (1ull << (p % 64))))
                continue;
              g->send_bm[i][p / 64] &= ~(1ull << (p % 64));
            }
          const uint8_t *host = r->host + p * PAGE;
          int ret;
          if (page_is_zero (host))
            {
              if (all)
                {
                  skipped++;
                  continue;
                }
              ret = batch_add (g, fd, &zeros, r->gpa + p * PAGE, NULL, err);
            }
          else
            ret = batch_add (g, fd, &pages, r->gpa + p * PAGE, host, err);
          if (ret < 0)
            return -1;
        }
    }
  if (batch_flush (g, fd, &pages, err) < 0 || batch_flush (g, fd, &zeros, err) < 0)
    return -1;
  pthread_mutex_lock (&g->lock);
  g->zero_pages_skipped += skipped;
  pthread_mutex_unlock (&g->lock);
  return 0;
}

/* One chunk of disk `idx` at `off`: read now, sent as data (or its zstd
   frame) or, when all zero, as a zero record (skipped in pass 1: the
   destination's image starts empty). */
static int
send_disk_chunk (struct vmm_migration *g, int fd, unsigned idx, uint64_t off, bool all,
                 cl_error_t *err)
{
  struct vm_disk *d = g->m->vm->disks[idx];
  uint64_t len = d->size - off < VM_DISK_CHUNK ? d->size - off : VM_DISK_CHUNK;
  uint64_t where[2] = { off, len };
  struct rec h = { .type = REC_DISK, .n = idx, .len = len };
  struct iovec iov[3] = { { &h, sizeof h }, { where, sizeof where }, { g->chunk_buf, len } };

  if (atomic_load (&g->cancel))
    return cl_error_make (err, 0, "migration cancelled");
  if (disk_io_all (d->fd, g->chunk_buf, len, off, false) < 0)
    return cl_error_errno (err, "block migration: read disk %u at %llu", idx,
                           (unsigned long long)off);
  bool zero = true;
  for (uint64_t p = 0; p + PAGE <= len && zero; p += PAGE)
    zero = page_is_zero (g->chunk_buf + p);
  for (uint64_t p = len & ~(PAGE - 1); p < len && zero; p++)
    zero = g->chunk_buf[p] == 0;
  if (zero && all)
    return 0;
  if (zero)
    {
      h.enc = 2;
      h.len = 0;
    }
  else if (g->compress)
    {
      size_t z = ZSTD_compressCCtx (g->cctx, g->zbuf, ZSTD_compressBound (BATCH * PAGE),
                                    g->chunk_buf, len, 1);
      if (!ZSTD_isError (z) && z < len)
        {
          h.enc = 1;
          h.len = z;
          iov[2].iov_base = g->zbuf;
        }
    }
  iov[2].iov_len = h.len;
  if (writev_all (fd, iov, 3) < 0)
    return stream_error (err, "send");
  sent_account (g, sizeof h + sizeof where + h.len, 0, len);
  return 0;
}

/* Pass 1 (all): every chunk of data of every disk (holes skipped);
   later: the chunks in disk_bm. */
static int
send_disk_pass (struct vmm_migration *g, int fd, bool all, cl_error_t *err)
{
  struct vm *vm = g->m->vm;
  for (unsigned i = 0; g->block && i < vm->ndisks; i++)
    {
      struct vm_disk *d = vm->disks[i];
      uint64_t nchunks = (d->size + VM_DISK_CHUNK - 1) / VM_DISK_CHUNK;
      for (uint64_t c = 0; c < nchunks; c++)
        {
          if (all)
            {
              /* the next data at or after this chunk (a hole: zeros) */
              off_t data = lseek (d->fd, c * VM_DISK_CHUNK, SEEK_DATA);
              if (data < 0 && errno == ENXIO)
                break;
              if (data > (off_t)(c * VM_DISK_CHUNK))
                c = data / VM_DISK_CHUNK;
            }
          else
            {
              uint64_t *w = &g->disk_bm[i][c / 64];
              if (*w == 0)
                {
                  c |= 63;
                  continue;
                }
              if (!(*w & (1ull << (c % 64))))
                continue;
              *w &= ~(1ull << (c % 64));
            }
          if (send_disk_chunk (g, fd, i, c * VM_DISK_CHUNK, all, err) < 0)
            return -1;
        }
    }
  return 0;
}

/* The machine state's blobs and the end record, in one write: the guest
   is paused while they go. */
static int
send_state (int fd, const struct vmm_blobs *blobs, cl_error_t *err)
{
  struct rec *h = cl_xmalloc0 ((blobs->n + 1) * sizeof (*h));
  struct iovec *iov = cl_xmalloc0 ((blobs->n * 3 + 1) * sizeof (*iov));
  int n = 0;
  for (size_t i = 0; i < blobs->n; i++)
    {
      const struct vmm_blob *b = &blobs->v[i];
      h[i] = (struct rec){ .type = REC_BLOB, .n = strlen (b->name), .len = b->len };
      iov[n++] = (struct iovec){ &h[i], sizeof h[i] };
      iov[n++] = (struct iovec){ b->name, h[i].n };
      iov[n++] = (struct iovec){ b->data, b->len };
    }
  h[blobs->n] = (struct rec){ .type = REC_END };
  iov[n++] = (struct iovec){ &h[blobs->n], sizeof h[0] };
  int ret = writev_all (fd, iov, n) < 0 ? stream_error (err, "send") : 0;
  free (h);
  free (iov);
  return ret;
}

static json_t *
cpuid_to_json (const struct kvm_cpuid2 *c)
{
  json_t *a = json_array ();
  for (unsigned i = 0; i < c->nent; i++)
    {
      const struct kvm_cpuid_entry2 *e = &c->entries[i];
      json_array_append_new (a, json_pack ("[I,I,I,I,I,I,I]", (json_int_t)e->function,
                                           (json_int_t)e->index, (json_int_t)e->flags,
                                           (json_int_t)e->eax, (json_int_t)e->ebx,
                                           (json_int_t)e->ecx, (json_int_t)e->edx));
    }
  return a;
}

/* The destination's answer: 0 (*msg its text, when msg is not NULL), or
   -1 with the stream's failure or "destination FAILED: its reason". */
static int
recv_answer (int fd, const char *failed, char **msg, cl_error_t *err)
{
  uint32_t status;
  char *text = NULL;
  if (recv_msg (fd, &status, &text, err) < 0)
    return cl_error_wrap (err, "destination");
  if (status != 0)
    {
      cl_error_make (err, 0, "destination %s: %s", failed, text);
      free (text);
      return -1;
    }
  if (msg)
    *msg = text;
  else
    free (text);
  return 0;
}

static int
send_header (struct vmm_migration *g, int fd, cl_error_t *err)
{
  struct vm *vm = g->m->vm;
  json_t *h = json_pack ("{s:o,s:o,s:I}", "config", cl_vmm_config_to_json (g->m->cfg), "cpuid",
                         cpuid_to_json (vm->cpuid), "memory", (json_int_t)vm->mem_size);
  if (g->block)
    {
      json_t *sizes = json_array ();
      for (unsigned i = 0; i < vm->ndisks; i++)
        json_array_append_new (sizes, json_integer ((json_int_t)vm->disks[i]->size));
      json_object_set_new (h, "block", sizes);
    }
  if (g->token)
    json_object_set_new (h, "token", json_string (g->token));
  char *text = json_dumps (h, JSON_COMPACT);
  json_decref (h);
  uint32_t head[3];
  memcpy (head, MIG_MAGIC, 8);
  head[2] = g->block ? MIG_VERSION_BLOCK : 1;
  struct iovec iov[1] = { { head, sizeof head } };
  int ret = writev_all (fd, iov, 1) < 0 ? stream_error (err, "send") : 0;
  if (ret == 0)
    ret = send_msg (fd, 0, text, err);
  free (text);
  if (ret < 0)
    return -1;
  cleanup_free char *msg = NULL;
  if (recv_answer (fd, "refused", &msg, err) < 0)
    return -1;
  /* an older destination says "ok" and knows no REC_SYNC */
  g->sync = strcmp (msg, "ok sync") == 0;
  return 0;
}

/* Waits until the destination has read everything sent so far: what the
   link and the socket buffers still hold (megabytes on a fast link) would
   otherwise be read during the pause. */
static int
stream_sync (struct vmm_migration *g, int fd, cl_error_t *err)
{
  struct rec h = { .type = REC_SYNC };
  struct iovec iov[1] = { { &h, sizeof h } };
  if (!g->sync)
    return 0;
  if (writev_all (fd, iov, 1) < 0)
    return stream_error (err, "send");
  return recv_answer (fd, "failed", NULL, err);
}

static void
status_update (struct vmm_migration *g, uint64_t dirty, uint64_t rate, uint64_t bw,
               uint64_t expected)
{
  pthread_mutex_lock (&g->lock);
  g->dirty_pages = dirty;
  g->dirty_rate = rate;
  g->bandwidth = bw;
  g->expected_downtime_ns = expected;
  g->total_ns = cl_now_ns () - g->start_ns;
  pthread_mutex_unlock (&g->lock);
}

/* Pause, the rest of memory, the state, the destination's word. */
static int
stop_and_copy (struct vmm_migration *g, int fd, cl_error_t *err)
{
  struct vmm *m = g->m;
  struct vmm_blobs blobs = { 0 };
  int ret = -1;

  atomic_store (&m->vm->throttle_pct, 0);
  uint64_t t0 = cl_now_ns ();
  /* the vCPUs leave KVM_RUN while the I/O thread parks */
  cl_vmm_vm_pause_begin (m->vm);
  if (!park_io_thread (g))
    {
      cl_vmm_vm_resume (m->vm);
      return cl_error_make (err, 0, "the VM is stopping");
    }
  if (!cl_vmm_vm_pause (m->vm))
    {
      release_io_thread (g);
      return cl_error_make (err, 0, "the VM is stopping");
    }
  uint64_t t1 = cl_now_ns (), chunks;
  int64_t last = dirty_harvest (g, &chunks, err);
  if (last < 0 || send_disk_pass (g, fd, false, err) < 0 || send_pass (g, fd, false, err) < 0)
    goto fail;
  uint64_t t2 = cl_now_ns ();
  if (cl_vmm_state_save_check (m, err) < 0 || cl_vmm_state_save (m, &blobs, err) < 0)
    goto fail;
  if (send_state (fd, &blobs, err) < 0)
    goto fail;
  uint64_t t3 = cl_now_ns ();
  {
    struct timeval tv = { .tv_sec = ACK_TIMEOUT_S };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (recv_answer (fd, "failed", NULL, err) < 0)
      goto fail;
  }
  uint64_t t4 = cl_now_ns (), t5 = 0;
  /* The destination runs the guest now: this side stops, once the
     destination's vCPUs run (a newer destination says so; at most 1 s):
     the teardown of this process (its memory, its VM) would otherwise
     take the CPU the destination's start needs. */
  if (g->sync)
    {
      struct timeval tv = { .tv_sec = 1 };
      setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      cl_error_t ignored = NULL;
      if (recv_answer (fd, "failed", NULL, &ignored) == 0)
        t5 = cl_now_ns ();
      cl_error_release (&ignored);
    }
  pthread_mutex_lock (&g->lock);
  g->last_pages = last;
  g->last_chunks = chunks;
  g->t_pause_ns = t1 - t0;
  g->t_pages_ns = t2 - t1;
  g->t_state_ns = t3 - t2;
  g->t_ack_ns = t4 - t3;
  g->downtime_ns = t4 - t0;
  g->t_resumed_ns = t5 ? t5 - t0 : 0;
  pthread_mutex_unlock (&g->lock);
  ret = 0;
  {
    cleanup_free char *why = cl_strdup_printf ("migrated to %s", g->uri);
    cl_vmm_vm_request_stop (m->vm, VM_STOP_API, why);
  }
  release_io_thread (g);
  cl_vmm_blobs_free (&blobs);
  return ret;
fail:
  cl_vmm_blobs_free (&blobs);
  dirty_log_stop (g);
  cl_vmm_vm_resume (m->vm);
  release_io_thread (g);
  return -1;
}

static int
migrate (struct vmm_migration *g, cl_error_t *err)
{
  struct vm *vm = g->m->vm;
  int fd = uri_connect (g->uri, err);
  if (fd < 0)
    return -1;
  atomic_store (&g->fd, fd);
  if (atomic_load (&g->cancel))
    return cl_error_make (err, 0, "migration cancelled");
  if (send_header (g, fd, err) < 0)
    return -1;
  /* vCPU ioctls wait for KVM_RUN to return: a brief pause */
  bool was_paused = vm->paused;
  if (was_paused || cl_vmm_vm_pause (vm))
    {
      cl_vmm_state_prepare (g->m);
      if (!was_paused)
        cl_vmm_vm_resume (vm);
    }
  if (dirty_log_start (g, err) < 0)
    goto fail;

  uint64_t t = cl_now_ns (), sent0 = g->bytes_sent, bw = 0;
  unsigned extra_passes = 0;
  pthread_mutex_lock (&g->lock);
  g->pass = 1;
  pthread_mutex_unlock (&g->lock);
  /* the disks first: memory is what the guest dirties fastest */
  if (send_disk_pass (g, fd, true, err) < 0 || send_pass (g, fd, true, err) < 0
      || stream_sync (g, fd, err) < 0)
    goto fail;
  for (;;)
    {
      uint64_t now = cl_now_ns (), took = now - t;
      uint64_t sent = g->bytes_sent - sent0;
      /* the link's speed: the last pass, if it carried enough to tell */
      if (sent >= 256 * 1024 || bw == 0)
        bw = took ? sent * 1000000000ull / took : sent;
      if (bw == 0)
        bw = 1;
      uint64_t chunks;
      int64_t dirty = dirty_harvest (g, &chunks, err);
      if (dirty < 0)
        goto fail;
      uint64_t rate = took ? (uint64_t)dirty * 1000000000ull / took : 0;
      /* what is left to send, memory and disks, in bytes */
      uint64_t left = (uint64_t)dirty * PAGE + chunks * VM_DISK_CHUNK;
      uint64_t byte_rate = took ? left * 1000000000ull / took : 0;
      uint64_t expected = left * 1000000000ull / bw;
      status_update (g, dirty, rate, bw, expected);
      pthread_mutex_lock (&g->lock);
      g->disk_dirty_chunks = chunks;
      pthread_mutex_unlock (&g->lock);
      if (expected <= g->budget_ns)
        {
          /* Within the budget.  One more pass still pays when the guest
             dirties much less than that pass carries while it runs: the
             pause then carries those few pages, not all of these (a
             guest idle through a long pass 1 leaves a hundred pages,
             ~15 ms in the lab, where a pass of them leaves one or two). */
          uint64_t next = byte_rate * (expected / 1000) / 1000000ull;
          if (extra_passes >= 3 || left < 16 * PAGE || next * 4 >= left)
            break;
          extra_passes++;
        }
      if (now - g->start_ns > g->timeout_ns)
        {
          cl_error_make (err, 0, "did not converge in %llu s (%lld pages dirty, %llu KiB/s link)",
                         (unsigned long long)(g->timeout_ns / 1000000000ull), (long long)dirty,
                         (unsigned long long)(bw / 1024));
          goto fail;
        }
      /* the guest dirties more than half of what the link carries:
         slow its vCPUs down, a step each pass */
      unsigned pct = atomic_load (&vm->throttle_pct);
      if (g->auto_converge && g->pass >= 2 && byte_rate > bw / 2 && pct < 99)
        {
          pct = pct == 0 ? 20 : (pct + 10 > 99 ? 99 : pct + 10);
          atomic_store (&vm->throttle_pct, pct);
          pthread_mutex_lock (&g->lock);
          g->throttle_max = pct;
          pthread_mutex_unlock (&g->lock);
        }
      t = cl_now_ns ();
      sent0 = g->bytes_sent;
      pthread_mutex_lock (&g->lock);
      g->pass++;
      pthread_mutex_unlock (&g->lock);
      if (send_disk_pass (g, fd, false, err) < 0 || send_pass (g, fd, false, err) < 0
          || stream_sync (g, fd, err) < 0)
        goto fail;
    }
  if (stop_and_copy (g, fd, err) < 0)
    return -1; /* it already restored the source */
  return 0;
fail:
  atomic_store (&vm->throttle_pct, 0);
  dirty_log_stop (g);
  return -1;
}

static void *
mig_thread (void *opaque)
{
  struct vmm_migration *g = opaque;
  cl_error_t err = NULL;
  pthread_setname_np (pthread_self (), "migrate");
  pthread_t kicker;
  atomic_store (&g->kicker_stop, false);
  bool kicking = pthread_create (&kicker, NULL, kicker_main, g) == 0;
  int ret = migrate (g, &err);
  atomic_store (&g->m->vm->throttle_pct, 0);
  atomic_store (&g->kicker_stop, true);
  if (kicking)
    pthread_join (kicker, NULL);
  int fd = atomic_exchange (&g->fd, -1);
  if (fd >= 0)
    close (fd);
  pthread_mutex_lock (&g->lock);
  g->total_ns = cl_now_ns () - g->start_ns;
  g->state = ret == 0 ? MIG_COMPLETED : atomic_load (&g->cancel) ? MIG_CANCELLED : MIG_FAILED;
  pthread_mutex_unlock (&g->lock);
  if (ret < 0 && atomic_load (&g->cancel))
    {
      cl_error_release (&err);
      cl_error_make (&err, 0, "cancelled (PUT /migration/cancel)");
    }
  if (ret < 0)
    {
      mig_set_error (g, err);
      cl_vmm_vm_metric_add (g->m->vm, "migration", "failed", 1);
    }
  else
    {
      /* the process ends with the VM: the figures go to stderr, once */
      json_t *st = cl_vmm_migration_status (g->m);
      char *text = json_dumps (st, JSON_COMPACT);
      fprintf (stderr, "cloison-vmm: migrated: %s\n", text);
      free (text);
      json_decref (st);
    }
  cl_error_release (&err);
  return NULL;
}

static void
mig_join (struct vmm_migration *g)
{
  if (g->thread_started)
    pthread_join (g->thread, NULL);
  g->thread_started = false;
}

int
cl_vmm_migration_send (struct vmm *m, json_t *body, cl_error_t *err)
{
  const char *uri, *token = NULL;
  json_int_t downtime = DEFAULT_DOWNTIME_MS, timeout = DEFAULT_TIMEOUT_S, max_bw = 0;
  int compress = 0, auto_converge = 1, block = 0;
  json_error_t je;

  if (json_unpack_ex (body, &je, JSON_STRICT, "{s:s,s?I,s?I,s?b,s?b,s?I,s?b,s?s}", "uri", &uri,
                      "downtime_ms", &downtime, "timeout_s", &timeout, "compress", &compress,
                      "auto_converge", &auto_converge, "max_bandwidth", &max_bw, "block", &block,
                      "token", &token)
      < 0)
    return cl_error_make (err, 0,
                          "body: %s (expected {\"uri\": \"tcp:HOST:PORT\"|\"fd:N\", "
                          "\"downtime_ms\", \"timeout_s\", \"compress\", \"auto_converge\", "
                          "\"max_bandwidth\", \"block\", \"token\"})",
                          je.text);
  if (block && m->cfg->ndisks == 0)
    return cl_error_make (err, 0, "block: the VM has no disk to stream");
  if (block && m->vm->ndisks != m->cfg->ndisks)
    return cl_error_make (err, 0, "block: more than %d disks cannot be streamed", VM_MAX_DISKS);
  if (max_bw < 0)
    return cl_error_make (err, 0, "max_bandwidth %lld: expected bytes per second, 0: no limit",
                          (long long)max_bw);
  if (downtime < 1 || downtime > 60000)
    return cl_error_make (err, 0, "downtime_ms %lld: expected 1 to 60000", (long long)downtime);
  if (timeout < 1 || timeout > 86400)
    return cl_error_make (err, 0, "timeout_s %lld: expected 1 to 86400", (long long)timeout);
  if (check_uri (uri, err) < 0)
    return -1;
  if (cl_vmm_state_save_check (m, err) < 0)
    return cl_error_wrap (err, "migration");

  struct vmm_migration *g = m->mig;
  if (g == NULL)
    {
      g = m->mig = cl_xmalloc0 (sizeof (*g));
      g->m = m;
      atomic_init (&g->fd, -1);
      pthread_mutex_init (&g->lock, NULL);
      pthread_cond_init (&g->cond, NULL);
      g->park_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      g->cctx = ZSTD_createCCtx ();
      g->zbuf = cl_xmalloc0 (ZSTD_compressBound (BATCH * PAGE) + BATCH * PAGE);
      g->chunk_buf = cl_xmalloc0 (VM_DISK_CHUNK);
      if (g->park_fd < 0 || cl_vmm_vm_event_add (m->vm, g->park_fd, EPOLLIN, on_park, g, err) < 0)
        return -1;
    }
  pthread_mutex_lock (&g->lock);
  bool busy = g->state == MIG_ACTIVE;
  pthread_mutex_unlock (&g->lock);
  if (busy)
    {
      cl_error_make (err, 0, "a migration is already running");
      (*err)->status = EBUSY; /* the API answers 409 */
      return -1;
    }
  mig_join (g);
  free (g->uri);
  free (g->token);
  free (g->error);
  g->error = NULL;
  g->uri = cl_xstrdup (uri);
  g->token = token ? cl_xstrdup (token) : NULL;
  g->budget_ns = (uint64_t)downtime * 1000000ull;
  g->timeout_ns = (uint64_t)timeout * 1000000000ull;
  g->compress = compress;
  g->auto_converge = auto_converge;
  g->block = block;
  g->max_bandwidth = max_bw;
  atomic_store (&g->cancel, false);
  g->state = MIG_ACTIVE;
  g->pass = 0;
  g->bytes_sent = g->pages_sent = g->zero_pages_skipped = g->dirty_pages = g->dirty_rate = 0;
  g->bandwidth = g->expected_downtime_ns = g->downtime_ns = g->total_ns = 0;
  g->disk_bytes_sent = g->disk_chunks_sent = g->disk_dirty_chunks = g->last_chunks = 0;
  g->throttle_max = 0;
  g->start_ns = cl_now_ns ();
  int rc = pthread_create (&g->thread, NULL, mig_thread, g);
  if (rc != 0)
    {
      g->state = MIG_FAILED;
      return cl_error_make (err, rc, "migration thread");
    }
  g->thread_started = true;
  return 0;
}

json_t *
cl_vmm_migration_status (struct vmm *m)
{
  struct vmm_migration *g = m->mig;
  if (g == NULL)
    return json_pack ("{s:s}", "state", "none");
  pthread_mutex_lock (&g->lock);
  uint64_t total = g->state == MIG_ACTIVE ? cl_now_ns () - g->start_ns : g->total_ns;
  json_t *j = json_pack (
      "{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:b}", "state", state_names[g->state],
      "uri", g->uri, "pass", (json_int_t)g->pass, "bytes_sent", (json_int_t)g->bytes_sent,
      "pages_sent", (json_int_t)g->pages_sent, "zero_pages_skipped",
      (json_int_t)g->zero_pages_skipped, "dirty_pages", (json_int_t)g->dirty_pages,
      "dirty_rate_pages_per_s", (json_int_t)g->dirty_rate, "bandwidth_bytes_per_s",
      (json_int_t)g->bandwidth, "expected_downtime_ms", g->expected_downtime_ns / 1e6,
      "downtime_budget_ms", (json_int_t)(g->budget_ns / 1000000ull), "throttle_pct",
      (json_int_t)atomic_load (&m->vm->throttle_pct), "compress", g->compress);
  json_object_set_new (j, "total_ms", json_real (total / 1e6));
  json_object_set_new (j, "throttle_max_pct", json_integer (g->throttle_max));
  json_object_set_new (j, "block", json_boolean (g->block));
  if (g->block)
    {
      json_object_set_new (j, "disk_bytes_sent", json_integer ((json_int_t)g->disk_bytes_sent));
      json_object_set_new (j, "disk_chunks_sent", json_integer ((json_int_t)g->disk_chunks_sent));
      json_object_set_new (j, "disk_dirty_chunks", json_integer ((json_int_t)g->disk_dirty_chunks));
    }
  if (g->state == MIG_COMPLETED)
    {
      json_object_set_new (j, "downtime_ms", json_real (g->downtime_ns / 1e6));
      json_object_set_new (j, "stop_and_copy",
                           json_pack ("{s:I,s:I,s:f,s:f,s:f,s:f}", "pages",
                                      (json_int_t)g->last_pages, "disk_chunks",
                                      (json_int_t)g->last_chunks, "pause_ms", g->t_pause_ns / 1e6,
                                      "pages_ms", g->t_pages_ns / 1e6, "state_ms",
                                      g->t_state_ns / 1e6, "destination_ms", g->t_ack_ns / 1e6));
      if (g->t_resumed_ns)
        json_object_set_new (j, "resumed_ms", json_real (g->t_resumed_ns / 1e6));
    }
  if (g->error)
    json_object_set_new (j, "error", json_string (g->error));
  pthread_mutex_unlock (&g->lock);
  return j;
}

int
cl_vmm_migration_cancel (struct vmm *m, cl_error_t *err)
{
  struct vmm_migration *g = m->mig;
  bool active = false;
  if (g)
    {
      pthread_mutex_lock (&g->lock);
      active = g->state == MIG_ACTIVE;
      pthread_mutex_unlock (&g->lock);
    }
  if (!active)
    {
      cl_error_make (err, 0, "no migration is running");
      (*err)->status = ENOENT; /* the API answers 409 */
      return -1;
    }
  atomic_store (&g->cancel, true);
  int fd = atomic_load (&g->fd);
  if (fd >= 0)
    shutdown (fd, SHUT_RDWR); /* unblocks a send in progress */
  return 0;
}

void
cl_vmm_migration_free (struct vmm *m)
{
  struct vmm_migration *g = m->mig;
  if (g == NULL)
    return;
  atomic_store (&g->cancel, true);
  int fd = atomic_load (&g->fd);
  if (fd >= 0)
    shutdown (fd, SHUT_RDWR);
  release_io_thread (g);
  mig_join (g);
  /* A migrated source: the rest of this thread's work, the teardown of
     the VM and its memory (tens of ms), at the lowest priority, so that
     it takes no CPU a guest needs (the destination's just resumed one,
     where both run on one host) */
  if (g->state == MIG_COMPLETED && setpriority (PRIO_PROCESS, 0, 19) < 0)
    {
      /* only a nicety */
    }
  for (int i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
    {
      free (g->kvm_bm[i]);
      free (g->send_bm[i]);
    }
  for (int i = 0; i < VM_MAX_DISKS; i++)
    free (g->disk_bm[i]);
  free (g->chunk_buf);
  ZSTD_freeCCtx (g->cctx);
  free (g->zbuf);
  free (g->uri);
  free (g->token);
  free (g->error);
  if (g->park_fd >= 0)
    close (g->park_fd);
  free (g);
  m->mig = NULL;
}

/* --- the destination --- */

/* A disk the stream fills (block migration): this side's image. */
struct incoming_disk
{
  const char *path;
  int fd;
  uint64_t size;      /* the source's */
  bool created;       /* by us: removed on failure */
  uint64_t orig_size; /* else: an empty file, put back on failure */
};

struct vmm_incoming
{
  int fd;
  json_t *header;
  bool done; /* the final answer was sent */
  struct incoming_disk *disks;
  size_t ndisks;
};

/* Block migration: the image the stream fills, this side's --disk PATH.
   A missing file is created; an existing one must hold no data (size 0,
   or only holes): the move writes the whole disk, and a failed one puts
   the file back as it was (removed, or empty again). */
static int
incoming_disk_open (struct incoming_disk *d, const char *path, uint64_t size, cl_error_t *err)
{
  struct stat st;
  d->path = path;
  d->size = size;
  d->fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (d->fd >= 0)
    d->created = true;
  else if (errno == EEXIST)
    {
      d->fd = open (path, O_RDWR | O_CLOEXEC);
      if (d->fd < 0)
        return cl_error_errno (err, "--disk `%s`", path);
      if (fstat (d->fd, &st) < 0)
        return cl_error_errno (err, "--disk `%s`", path);
      if (!S_ISREG (st.st_mode) || (st.st_size != 0 && st.st_blocks != 0))
        {
          close (d->fd);
          d->fd = -1; /* not ours to empty */
          return cl_error_make (err, 0,
                                "--disk `%s`: block migration writes the whole disk here: give a "
                                "missing or empty file (this one %s)",
                                path,
                                S_ISREG (st.st_mode) ? "holds data" : "is not a regular file");
        }
      d->orig_size = st.st_size;
    }
  else
    return cl_error_errno (err, "--disk `%s`", path);
  if (ftruncate (d->fd, 0) < 0 || ftruncate (d->fd, size) < 0)
    return cl_error_errno (err, "--disk `%s`: size %llu", path, (unsigned long long)size);
  return 0;
}

/* The header's "block": this side's --disk paths get the source's disks. */
static int
incoming_block_open (struct vmm_incoming *in, const struct cl_vmm_config *user,
                     const struct cl_vmm_config *cfg, cl_error_t *err)
{
  json_t *sizes = json_object_get (in->header, "block");
  if (sizes == NULL)
    return 0;
  if (!json_is_array (sizes) || json_array_size (sizes) != cfg->ndisks || cfg->ndisks == 0)
    return cl_error_make (err, 0, "migration header: block: expected the size of each disk");
  if (user->ndisks != cfg->ndisks)
    return cl_error_make (err, 0,
                          "--disk: block migration needs this side's path for each of the "
                          "source's %zu disks (%zu given)",
                          cfg->ndisks, user->ndisks);
  in->disks = cl_xmalloc0 (cfg->ndisks * sizeof (*in->disks));
  for (size_t i = 0; i < cfg->ndisks; i++)
    in->disks[i].fd = -1;
  for (size_t i = 0; i < cfg->ndisks; i++)
    {
      json_t *sz = json_array_get (sizes, i);
      if (!json_is_integer (sz) || json_integer_value (sz) < 512)
        return cl_error_make (err, 0, "migration header: block: size of disk %zu", i);
      in->ndisks = i + 1;
      if (incoming_disk_open (&in->disks[i], user->disks[i].path, json_integer_value (sz), err) < 0)
        return -1;
    }
  return 0;
}

/* A REC_DISK record into this side's image. */
static int
recv_disk (struct vmm_incoming *in, const struct rec *h, uint8_t *buf, uint8_t *zin,
           ZSTD_DCtx **dctx, cl_error_t *err)
{
  uint64_t where[2];
  if (cl_read_all (in->fd, where, sizeof where) < 0)
    return stream_error (err, "receive");
  if (h->n >= in->ndisks)
    return cl_error_make (err, 0, "migration stream: disk record for disk %u of %zu", h->n,
                          in->ndisks);
  struct incoming_disk *d = &in->disks[h->n];
  uint64_t off = where[0], len = where[1];
  if (len == 0 || len > VM_DISK_CHUNK || off > d->size || len > d->size - off
      || (h->enc == 0 && h->len != len) || (h->enc == 1 && h->len > ZSTD_compressBound (len))
      || (h->enc == 2 && h->len != 0) || h->enc > 2)
    return cl_error_make (err, 0, "migration stream: bad disk record (disk %u at %llu)", h->n,
                          (unsigned long long)off);
  if (h->enc == 2)
    {
      if (fallocate (d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0)
        return 0;
      memset (buf, 0, len);
    }
  else if (cl_read_all (in->fd, h->enc == 1 ? zin : buf, h->len) < 0)
    return stream_error (err, "receive");
  if (h->enc == 1)
    {
      if (*dctx == NULL)
        *dctx = ZSTD_createDCtx ();
      size_t got = ZSTD_decompressDCtx (*dctx, buf, len, zin, h->len);
      if (ZSTD_isError (got) || got != len)
        return cl_error_make (err, 0, "migration stream: bad zstd frame (disk %u)", h->n);
    }
  if (disk_io_all (d->fd, buf, len, off, true) < 0)
    return cl_error_errno (err, "block migration: write `%s`", d->path);
  return 0;
}

int
cl_vmm_incoming_open (const struct cl_vmm_config *user, struct vmm_incoming **out,
                      struct cl_vmm_config *cfg, cl_error_t *err)
{
  struct vmm_incoming *in = cl_xmalloc0 (sizeof (*in));
  uint32_t head[3];
  uint32_t status;
  char *text = NULL;
  json_error_t je;
  json_t *config;

  *out = in;
  in->fd = uri_accept (user->incoming, err);
  if (in->fd < 0)
    return -1;
  fd_timeouts (in->fd, 30);
  if (cl_read_all (in->fd, head, sizeof head) < 0)
    return stream_error (err, "receive");
  if (memcmp (head, MIG_MAGIC, 8) != 0)
    return cl_error_make (err, 0, "--incoming: not a cloison migration stream");
  /* older versions are read (1: no disk records) */
  if (head[2] == 0 || head[2] > MIG_VERSION)
    return cl_error_make (err, 0, "migration stream version %u, this cloison-vmm reads 1 to %d",
                          head[2], MIG_VERSION);
  if (recv_msg (in->fd, &status, &text, err) < 0)
    return -1;
  in->header = json_loads (text, JSON_REJECT_DUPLICATES, &je);
  free (text);
  if (in->header == NULL)
    return cl_error_make (err, 0, "migration header: %s", je.text);
  if (json_unpack_ex (in->header, &je, 0, "{s:o}", "config", &config) < 0)
    return cl_error_make (err, 0, "migration header: %s", je.text);
  /* a destination told which source to expect: any other connection is
     refused (and told why) */
  const char *token = json_string_value (json_object_get (in->header, "token"));
  if (user->incoming_token && (token == NULL || strcmp (token, user->incoming_token) != 0))
    return cl_error_make (err, 0,
                          "migration header: %s token: not the source this destination"
                          " waits for",
                          token ? "wrong" : "no");
  if (cl_vmm_config_from_json (config, user, cfg, err) < 0)
    return -1;
  /* This host's names for the same things, if given: taps on the same
     network, the same storage at other paths.  The rest (MACs, serials,
     read-only) stays the guest's. */
  if (user->nnets && user->nnets != cfg->nnets)
    return cl_error_make (err, 0, "--net: the source has %zu network devices, %zu given",
                          cfg->nnets, user->nnets);
  for (size_t i = 0; i < user->nnets; i++)
    ((struct cl_vmm_net *)cfg->nets)[i].tap = user->nets[i].tap;
  if (user->ndisks && user->ndisks != cfg->ndisks)
    return cl_error_make (err, 0, "--disk: the source has %zu disks, %zu given", cfg->ndisks,
                          user->ndisks);
  for (size_t i = 0; i < user->ndisks; i++)
    ((struct cl_vmm_disk *)cfg->disks)[i].path = user->disks[i].path;
  return incoming_block_open (in, user, cfg, err);
}

/* CPUID feature words the guest may have looked at: the source's bits must
   all be here too. */
static const struct
{
  uint32_t function, index;
  const char *name;
} feature_leaves[] = {
  { 1, 0, "1" },
  { 7, 0, "7.0" },
  { 0xD, 1, "0xD.1" },
  { 0x80000001, 0, "0x80000001" },
};

static const struct kvm_cpuid_entry2 *
cpuid_find (const struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
  for (unsigned i = 0; i < c->nent; i++)
    if (c->entries[i].function == function
        && (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
            || c->entries[i].index == index))
      return &c->entries[i];
  return NULL;
}

int
cl_vmm_incoming_cpuid (struct vmm_incoming *in, struct vm *vm, cl_error_t *err)
{
  json_t *list = json_object_get (in->header, "cpuid");
  json_t *mem = json_object_get (in->header, "memory");
  if (!json_is_array (list) || json_array_size (list) == 0 || json_array_size (list) > 256)
    return cl_error_make (err, 0, "migration header: cpuid: expected an array");
  if (!json_is_integer (mem) || (uint64_t)json_integer_value (mem) != vm->mem_size)
    return cl_error_make (err, 0, "migration header: memory size does not match the config");
  size_t n = json_array_size (list);
  struct kvm_cpuid2 *src = cl_xmalloc0 (sizeof (*src) + n * sizeof (src->entries[0]));
  src->nent = n;
  for (size_t i = 0; i < n; i++)
    {
      json_int_t f[7];
      if (json_unpack (json_array_get (list, i), "[IIIIIII]", &f[0], &f[1], &f[2], &f[3], &f[4],
                       &f[5], &f[6])
          < 0)
        {
          free (src);
          return cl_error_make (err, 0, "migration header: cpuid entry %zu", i);
        }
      src->entries[i] = (struct kvm_cpuid_entry2){ .function = f[0],
                                                   .index = f[1],
                                                   .flags = f[2],
                                                   .eax = f[3],
                                                   .ebx = f[4],
                                                   .ecx = f[5],
                                                   .edx = f[6] };
    }
  struct kvm_cpuid2 *ours = cl_vmm_vm_cpuid_supported (vm, err);
  if (ours == NULL)
    {
      free (src);
      return -1;
    }
  int ret = 0;
  for (size_t l = 0; l < sizeof feature_leaves / sizeof feature_leaves[0] && ret == 0; l++)
    {
      const struct kvm_cpuid_entry2 *s
          = cpuid_find (src, feature_leaves[l].function, feature_leaves[l].index);
      const struct kvm_cpuid_entry2 *o
          = cpuid_find (ours, feature_leaves[l].function, feature_leaves[l].index);
      if (s == NULL)
        continue;
      uint32_t sv[4] = { s->eax, s->ebx, s->ecx, s->edx };
      uint32_t ov[4] = { o ? o->eax : 0, o ? o->ebx : 0, o ? o->ecx : 0, o ? o->edx : 0 };
      static const char *const regs[4] = { "eax", "ebx", "ecx", "edx" };
      for (int r = 0; r < 4 && ret == 0; r++)
        {
          /* leaf 1 eax and ebx are the signature and APIC ids, not features */
          if (feature_leaves[l].function == 1 && r < 2)
            continue;
          if (feature_leaves[l].function == 7 && r == 0)
            continue;
          if (sv[r] & ~ov[r])
            ret = cl_error_make (err, 0, "CPU features missing here: CPUID leaf %s %s bits 0x%08x",
                                 feature_leaves[l].name, regs[r], sv[r] & ~ov[r]);
        }
    }
  free (ours);
  if (ret < 0)
    {
      free (src);
      return -1;
    }
  /* the guest keeps the CPU it booted on */
  free (vm->cpuid);
  vm->cpuid = src;
  return 0;
}

/* Reads one record's gpas; each must be a page of guest memory. */
static int
recv_gpas (struct vmm_incoming *in, struct vm *vm, uint32_t n, uint64_t *gpas, uint8_t **hosts,
           cl_error_t *err)
{
  if (n == 0 || n > MAX_RECORD_PAGES)
    return cl_error_make (err, 0, "migration stream: record of %u pages", n);
  if (cl_read_all (in->fd, gpas, n * sizeof (uint64_t)) < 0)
    return stream_error (err, "receive");
  for (uint32_t i = 0; i < n; i++)
    {
      hosts[i] = (gpas[i] & (PAGE - 1)) ? NULL : cl_vmm_guest_mem_ptr (&vm->mem, gpas[i], PAGE);
      if (hosts[i] == NULL)
        return cl_error_make (err, 0, "migration stream: page 0x%llx outside guest memory",
                              (unsigned long long)gpas[i]);
    }
  return 0;
}

static int
recv_records (struct vmm_incoming *in, struct vm *vm, struct vmm_blobs *blobs, cl_error_t *err)
{
  uint64_t *gpas = cl_xmalloc0 (MAX_RECORD_PAGES * sizeof (uint64_t));
  uint8_t **hosts = cl_xmalloc0 (MAX_RECORD_PAGES * sizeof (uint8_t *));
  uint8_t *zin = NULL, *zout = NULL;
  ZSTD_DCtx *dctx = NULL;
  int ret = -1;

  for (;;)
    {
      struct rec h;
      if (cl_read_all (in->fd, &h, sizeof h) < 0)
        {
          stream_error (err, "receive");
          goto out;
        }
      if (h.type == REC_END)
        break;
      if (h.type == REC_SYNC)
        {
          if (send_msg (in->fd, 0, "synced", err) < 0)
            goto out;
          continue;
        }
      if (h.type == REC_PAGES || h.type == REC_ZERO)
        {
          if (recv_gpas (in, vm, h.n, gpas, hosts, err) < 0)
            goto out;
          if (h.type == REC_ZERO)
            {
              for (uint32_t i = 0; i < h.n; i++)
                memset (hosts[i], 0, PAGE);
              continue;
            }
          if (h.enc == 0)
            {
              if (h.len != h.n * PAGE)
                {
                  cl_error_make (err, 0, "migration stream: page record length %u", h.len);
                  goto out;
                }
              for (uint32_t i = 0; i < h.n; i++)
                if (cl_read_all (in->fd, hosts[i], PAGE) < 0)
                  {
                    stream_error (err, "receive");
                    goto out;
                  }
              continue;
            }
          if (h.enc != 1 || h.len > ZSTD_compressBound (MAX_RECORD_PAGES * PAGE))
            {
              cl_error_make (err, 0, "migration stream: page encoding %u", h.enc);
              goto out;
            }
          if (zin == NULL)
            {
              zin = cl_xmalloc0 (ZSTD_compressBound (MAX_RECORD_PAGES * PAGE));
              zout = cl_xmalloc0 (MAX_RECORD_PAGES * PAGE);
              dctx = ZSTD_createDCtx ();
            }
          if (cl_read_all (in->fd, zin, h.len) < 0)
            {
              stream_error (err, "receive");
              goto out;
            }
          size_t got = ZSTD_decompressDCtx (dctx, zout, h.n * PAGE, zin, h.len);
          if (ZSTD_isError (got) || got != h.n * PAGE)
            {
              cl_error_make (err, 0, "migration stream: bad zstd frame");
              goto out;
            }
          for (uint32_t i = 0; i < h.n; i++)
            memcpy (hosts[i], zout + i * PAGE, PAGE);
          continue;
        }
      if (h.type == REC_DISK && in->ndisks > 0)
        {
          if (zin == NULL)
            {
              zin = cl_xmalloc0 (ZSTD_compressBound (MAX_RECORD_PAGES * PAGE));
              zout = cl_xmalloc0 (MAX_RECORD_PAGES * PAGE);
            }
          if (recv_disk (in, &h, zout, zin, &dctx, err) < 0)
            goto out;
          continue;
        }
      if (h.type == REC_BLOB && h.n > 0 && h.n < 64 && h.len <= MAX_BLOB)
        {
          char name[64] = { 0 };
          char *data = cl_xmalloc0 (h.len + 1);
          if (cl_read_all (in->fd, name, h.n) < 0 || cl_read_all (in->fd, data, h.len) < 0)
            {
              free (data);
              stream_error (err, "receive");
              goto out;
            }
          cl_vmm_blobs_add (blobs, name, data, h.len);
          continue;
        }
      cl_error_make (err, 0, "migration stream: unknown record %u", h.type);
      goto out;
    }
  ret = 0;
out:
  free (gpas);
  free (hosts);
  free (zin);
  free (zout);
  ZSTD_freeDCtx (dctx);
  return ret;
}

int
cl_vmm_incoming_receive (struct vmm_incoming *in, struct vmm *m, cl_error_t *err)
{
  struct vmm_blobs blobs = { 0 };
  int ret = -1;

  /* the machine is built: tell the source to send */
  if (send_msg (in->fd, 0, "ok sync", err) < 0)
    return -1;
  if (recv_records (in, m->vm, &blobs, err) < 0)
    goto out;
  /* the source is paused from here on: cl_vmm_run makes it the time to
     running (GET /metrics "restore") */
  m->restore_ns = cl_now_ns ();
  const struct vmm_blob *state = cl_vmm_blobs_get (&blobs, "state.json");
  json_error_t je;
  if (state == NULL)
    {
      cl_error_make (err, 0, "migration stream: no state.json");
      goto out;
    }
  m->saved = json_loadb (state->data, state->len, JSON_REJECT_DUPLICATES, &je);
  if (m->saved == NULL)
    {
      cl_error_make (err, 0, "migration stream: state.json: %s", je.text);
      goto out;
    }
  if (cl_vmm_state_restore (m, &blobs, "migration stream", true, err) < 0)
    goto out;
  if (m->cfg->debug)
    fprintf (stderr, "cloison-vmm: state restored %.1f ms after the stream's end\n",
             (cl_now_ns () - m->restore_ns) / 1e6);
  in->done = true;
  ret = send_msg (in->fd, 0, "running", err);
out:
  cl_vmm_blobs_free (&blobs);
  return ret;
}

void
cl_vmm_incoming_resumed (struct vmm_incoming *in)
{
  cl_error_t ignored = NULL;
  /* (a source that said "ok sync"'s version waits for it; one gone is
     no matter) */
  send_msg (in->fd, 0, "resumed", &ignored);
  cl_error_release (&ignored);
}

void
cl_vmm_incoming_close (struct vmm_incoming *in, cl_error_t failure)
{
  if (in == NULL)
    return;
  /* tell the source why, if it still listens: it goes on running */
  if (in->fd >= 0 && !in->done && failure)
    {
      cl_error_t ignored = NULL;
      send_msg (in->fd, 1, failure->msg, &ignored);
      cl_error_release (&ignored);
    }
  if (in->fd >= 0)
    close (in->fd);
  /* block migration: a move that did not complete leaves no disk */
  for (size_t i = 0; i < in->ndisks; i++)
    {
      struct incoming_disk *d = &in->disks[i];
      if (!in->done && d->created)
        unlink (d->path);
      else if (!in->done && d->fd >= 0
               && (ftruncate (d->fd, 0) < 0 || ftruncate (d->fd, d->orig_size) < 0))
        fprintf (stderr, "cloison-vmm: --disk `%s`: cannot empty it again: %s\n", d->path,
                 strerror (errno));
      if (d->fd >= 0)
        close (d->fd);
    }
  free (in->disks);
  json_decref (in->header);
  free (in);
}
