/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk (virtio 1.2, 5.2) on a raw image file or block device:
   read, write, flush, discard, write-zeroes, get-id, read-only.  Requests
   are served synchronously in the I/O thread with preadv/pwritev straight
   into guest buffers. */
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/vmm_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR 512ull
#define QUEUE_SIZE 256
/* Data segments per request; with header and status it stays <= queue. */
#define SEG_MAX (QUEUE_SIZE - 2)
#define SERIAL_LEN 20
#define DISCARD_SEG_MAX 32

#define BLK_F_SEG_MAX 2
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define BLK_F_DISCARD 13
#define BLK_F_WRITE_ZEROES 14

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_T_DISCARD 11
#define BLK_T_WRITE_ZEROES 13

#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2

struct blk_config
{
  uint64_t capacity;
  uint32_t size_max, seg_max;
  uint16_t cylinders;
  uint8_t heads, sectors;
  uint32_t blk_size;
  uint8_t physical_block_exp, alignment_offset;
  uint16_t min_io_size;
  uint32_t opt_io_size;
  uint8_t writeback, unused0;
  uint16_t num_queues;
  uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
  uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
  uint8_t write_zeroes_may_unmap, unused1[3];
} __attribute__ ((packed));

struct blk_req_header
{
  uint32_t type, reserved;
  uint64_t sector;
};

struct blk_discard_seg
{
  uint64_t sector;
  uint32_t num_sectors, flags;
};

struct virtio_blk
{
  struct virtio_device vdev;
  struct blk_config config;
  struct virtio_device_ops ops;
  int fd;
  struct vm_disk *track; /* block migration: what the guest changed */
  bool read_only;
  char serial[SERIAL_LEN];
  uint64_t sectors;
  struct virtq_chain chain;
  struct iovec data[VIRTQ_MAX_SEGS];
};

static bool
range_ok (const struct virtio_blk *blk, uint64_t sector, uint64_t nsectors)
{
  return sector <= blk->sectors && nsectors <= blk->sectors - sector;
}

/* The data buffers of a request: the readable ones after the header (out)
   or the writable ones before the status byte (in), as an iovec. */
static unsigned
data_iov (struct virtio_blk *blk, const struct virtq_chain *c, bool in, uint64_t *len)
{
  const struct iovec *src = in ? c->iov + c->nout : c->iov;
  unsigned n = in ? c->nin : c->nout;
  uint64_t skip = in ? 0 : sizeof (struct blk_req_header);
  uint64_t keep = in ? c->in_len - 1 : c->out_len - skip;
  size_t got;

  *len = keep;
  return cl_iov_slice (src, n, skip, keep, blk->data, VIRTQ_MAX_SEGS, &got);
}

static uint8_t
do_rw (struct virtio_blk *blk, const struct virtq_chain *c, uint64_t sector, bool write,
       uint32_t *written)
{
  uint64_t len;
  unsigned n = data_iov (blk, c, !write, &len);
  uint64_t off = sector * SECTOR;
  ssize_t r;

  if (len % SECTOR != 0 || !range_ok (blk, sector, len / SECTOR))
    return BLK_S_IOERR;
  if (write && blk->read_only)
    return BLK_S_IOERR;
  while (len > 0)
    {
      r = write ? pwritev (blk->fd, blk->data, n, off) : preadv (blk->fd, blk->data, n, off);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        {
          if (write) /* (what went before is in the file) */
            cl_vmm_vm_disk_written (blk->track, sector * SECTOR, off - sector * SECTOR);
          return BLK_S_IOERR;
        }
      /* Short transfer: advance the iovec and go on. */
      len -= r;
      off += r;
      if (!write)
        *written += r;
      while (r > 0 && n > 0)
        {
          if ((size_t) r >= blk->data[0].iov_len)
            {
              r -= blk->data[0].iov_len;
              memmove (blk->data, blk->data + 1, --n * sizeof *blk->data);
            }
          else
            {
              blk->data[0].iov_base = (uint8_t *) blk->data[0].iov_base + r;
              blk->data[0].iov_len -= r;
              r = 0;
            }
        }
    }
  if (write)
    cl_vmm_vm_disk_written (blk->track, sector * SECTOR, off - sector * SECTOR);
  cl_vmm_vm_metric_add (blk->vdev.vm, blk->vdev.name, write ? "write_bytes" : "read_bytes",
                        (uint64_t)(off - sector * SECTOR));
  return BLK_S_OK;
}

static int
zero_range (struct virtio_blk *blk, uint64_t off, uint64_t len, bool unmap)
{
  static const uint8_t zeros[65536];
  int mode = unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                   : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

  if (fallocate (blk->fd, mode, off, len) == 0)
    return 0;
  while (len > 0)
    {
      size_t chunk = len < sizeof zeros ? len : sizeof zeros;
      ssize_t r = pwrite (blk->fd, zeros, chunk, off);
      if (r <= 0)
        return -1;
      off += r;
      len -= r;
    }
  return 0;
}

static uint8_t
do_discard (struct virtio_blk *blk, const struct virtq_chain *c, bool zeroes)
{
  uint64_t payload = c->out_len - sizeof (struct blk_req_header);

  if (blk->read_only)
    return BLK_S_IOERR;
  if (payload == 0 || payload % sizeof (struct blk_discard_seg) != 0
      || payload / sizeof (struct blk_discard_seg) > DISCARD_SEG_MAX)
    return BLK_S_UNSUPP;
  for (uint64_t off = sizeof (struct blk_req_header); off < c->out_len;
       off += sizeof (struct blk_discard_seg))
    {
      struct blk_discard_seg seg;
      cl_vmm_virtq_chain_read (c, off, &seg, sizeof seg);
      if (!range_ok (blk, seg.sector, seg.num_sectors) || (!zeroes && seg.flags != 0)
          || (seg.flags & ~1u))
        return BLK_S_UNSUPP;
      if (seg.num_sectors == 0)
        continue;
      int rc = zeroes ? zero_range (blk, seg.sector * SECTOR, seg.num_sectors * SECTOR,
                                    seg.flags & 1)
                      : fallocate (blk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                   seg.sector * SECTOR, seg.num_sectors * SECTOR);
      /* (a failed one may have changed part of the range) */
      cl_vmm_vm_disk_written (blk->track, seg.sector * SECTOR, seg.num_sectors * SECTOR);
      if (rc < 0)
        return BLK_S_IOERR;
    }
  return BLK_S_OK;
}

static int64_t
blk_request (struct virtio_device *dev, unsigned q, const struct virtq_chain *c)
{
  struct virtio_blk *blk = (struct virtio_blk *) dev;
  struct blk_req_header h;
  uint32_t written = 0;
  uint8_t status;

  if (c->out_len < sizeof h || c->in_len < 1)
    {
      cl_vmm_virtio_device_fail (dev, q, "request without header or status byte");
      return 0;
    }
  cl_vmm_virtq_chain_read (c, 0, &h, sizeof h);
  cl_vmm_vm_metric_add (dev->vm, dev->name, "requests", 1);
  switch (h.type)
    {
    case BLK_T_IN:
      status = do_rw (blk, c, h.sector, false, &written);
      break;
    case BLK_T_OUT:
      status = do_rw (blk, c, h.sector, true, &written);
      break;
    case BLK_T_FLUSH:
      status = fdatasync (blk->fd) == 0 || blk->read_only ? BLK_S_OK : BLK_S_IOERR;
      break;
    case BLK_T_GET_ID:
      written = cl_vmm_virtq_chain_write (c, 0, blk->serial,
                                          c->in_len - 1 < SERIAL_LEN ? c->in_len - 1 : SERIAL_LEN);
      status = BLK_S_OK;
      break;
    case BLK_T_DISCARD:
    case BLK_T_WRITE_ZEROES:
      status = do_discard (blk, c, h.type == BLK_T_WRITE_ZEROES);
      break;
    default:
      status = BLK_S_UNSUPP;
      break;
    }
  if (status != BLK_S_OK)
    cl_vmm_vm_metric_add (dev->vm, dev->name, "errors", 1);
  cl_vmm_virtq_chain_write (c, c->in_len - 1, &status, 1);
  return written + 1;
}

static void
blk_notify (struct virtio_device *dev, unsigned q)
{
  struct virtio_blk *blk = (struct virtio_blk *) dev;

  cl_vmm_virtio_queue_serve (dev, q, &blk->chain, blk_request);
}

static void
blk_release (struct virtio_device *dev)
{
  struct virtio_blk *blk = (struct virtio_blk *)dev;

  close (blk->fd);
  free (blk);
}

static const struct virtio_device_ops blk_ops_template = {
  .kind = "blk",
  .device_id = VIRTIO_ID_BLOCK,
  .class_code = 0x018000,
  .num_queues = 1,
  .queue_max_size = QUEUE_SIZE,
  .features = (1ull << BLK_F_SEG_MAX) | (1ull << BLK_F_BLK_SIZE) | (1ull << BLK_F_FLUSH),
  .queue_notify = blk_notify,
  .release = blk_release,
};

static int
disk_size (int fd, const char *path, uint64_t *size, cl_error_t *err)
{
  struct stat st;

  if (fstat (fd, &st) < 0)
    return cl_error_errno (err, "stat `%s`", path);
  if (S_ISBLK (st.st_mode))
    {
      if (ioctl (fd, BLKGETSIZE64, size) < 0)
        return cl_error_errno (err, "size of `%s`", path);
      return 0;
    }
  if (!S_ISREG (st.st_mode))
    return cl_error_make (err, 0, "disk `%s`: not a regular file or block device", path);
  *size = st.st_size;
  return 0;
}

int
cl_vmm_virtio_blk_create (struct vm *vm, const char *path, bool read_only, const char *serial,
                          cl_error_t *err)
{
  cleanup_free struct virtio_blk *blk = NULL;
  cleanup_close int fd = -1;
  uint64_t size;

  if (serial && strlen (serial) > SERIAL_LEN)
    return cl_error_make (err, 0, "disk `%s`: serial `%s` longer than %d bytes", path, serial,
                          SERIAL_LEN);
  fd = open (path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0)
    return cl_error_errno (err, "open disk `%s`", path);
  if (disk_size (fd, path, &size, err) < 0)
    return -1;
  if (size < SECTOR)
    return cl_error_make (err, 0, "disk `%s`: smaller than one 512-byte sector", path);

  blk = cl_xmalloc0 (sizeof *blk);
  blk->read_only = read_only;
  blk->sectors = size / SECTOR;
  if (serial)
    memcpy (blk->serial, serial, strlen (serial));
  blk->ops = blk_ops_template;
  if (read_only)
    blk->ops.features |= 1ull << BLK_F_RO;
  else
    blk->ops.features |= (1ull << BLK_F_DISCARD) | (1ull << BLK_F_WRITE_ZEROES);
  blk->config.capacity = blk->sectors;
  blk->config.seg_max = SEG_MAX;
  blk->config.blk_size = SECTOR;
  blk->config.num_queues = 1;
  blk->config.max_discard_sectors = UINT32_MAX / SECTOR;
  blk->config.max_discard_seg = DISCARD_SEG_MAX;
  blk->config.discard_sector_alignment = 1;
  blk->config.max_write_zeroes_sectors = UINT32_MAX / SECTOR;
  blk->config.max_write_zeroes_seg = DISCARD_SEG_MAX;
  blk->config.write_zeroes_may_unmap = 1;
  blk->vdev.ops = &blk->ops;
  blk->vdev.config = (uint8_t *) &blk->config;
  blk->vdev.config_size = sizeof blk->config;
  blk->fd = steal_fd (&fd);
  blk->track = cl_vmm_vm_disk_add (vm, blk->fd, size);
  /* From here on the device belongs to the VM, even if a step fails. */
  if (cl_vmm_virtio_device_init (&steal_pointer (&blk)->vdev, vm, err) < 0)
    return cl_error_wrap (err, "disk `%s`", path);
  return 0;
}
