/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-fs (virtio 1.2, 5.11): a host directory shared with the guest,
   FUSE requests over two queues, hiprio (FORGET) and one request queue,
   served in the I/O thread by the in-process FUSE server (fuse_server.c).
   Guest memory is only touched through the queue helpers, so it stays
   MAP_PRIVATE and snapshots keep working.

   Snapshot state: the server's node ids and file handles are host
   descriptors the guest keeps using after a restore.  They are saved by
   their path beneath the shared root and reopened there, under the same
   ids (cl_vmm_fuse_server_save); when one cannot be (a file the guest holds was
   deleted or moved out of the share), the snapshot is refused before
   anything is written. */
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

#include "common/util.h"
#include "vmm/fuse_server.h"
#include "vmm/vmm_vm.h"

#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define FS_TAG_MAX 36
#define QUEUE_SIZE 256

struct fs_config
{
  char tag[FS_TAG_MAX]; /* not NUL-terminated when 36 bytes long */
  uint32_t num_request_queues;
} __attribute__ ((packed));

struct virtio_fs
{
  struct virtio_device vdev;
  struct fs_config config;
  struct fuse_server *srv;
  struct virtq_chain chain;
  uint8_t *req, *reply; /* FUSE_SERVER_BUF_SIZE each */
  json_t *saved;        /* taken by fs_save_check, handed out by fs_save */
};

/* Metric names of the opcodes counted one by one (`--debug`, GET
   /metrics): what a guest workload costs in round trips. */
static const char *const op_metric[] = {
  [FUSE_LOOKUP] = "op.lookup",
  [FUSE_FORGET] = "op.forget",
  [FUSE_GETATTR] = "op.getattr",
  [FUSE_SETATTR] = "op.setattr",
  [FUSE_READLINK] = "op.readlink",
  [FUSE_SYMLINK] = "op.symlink",
  [FUSE_MKNOD] = "op.mknod",
  [FUSE_MKDIR] = "op.mkdir",
  [FUSE_UNLINK] = "op.unlink",
  [FUSE_RMDIR] = "op.rmdir",
  [FUSE_RENAME] = "op.rename",
  [FUSE_LINK] = "op.link",
  [FUSE_OPEN] = "op.open",
  [FUSE_READ] = "op.read",
  [FUSE_WRITE] = "op.write",
  [FUSE_STATFS] = "op.statfs",
  [FUSE_RELEASE] = "op.release",
  [FUSE_FSYNC] = "op.fsync",
  [FUSE_SETXATTR] = "op.setxattr",
  [FUSE_GETXATTR] = "op.getxattr",
  [FUSE_LISTXATTR] = "op.listxattr",
  [FUSE_REMOVEXATTR] = "op.removexattr",
  [FUSE_FLUSH] = "op.flush",
  [FUSE_INIT] = "op.init",
  [FUSE_OPENDIR] = "op.opendir",
  [FUSE_READDIR] = "op.readdir",
  [FUSE_RELEASEDIR] = "op.releasedir",
  [FUSE_FSYNCDIR] = "op.fsyncdir",
  [FUSE_ACCESS] = "op.access",
  [FUSE_CREATE] = "op.create",
  [FUSE_INTERRUPT] = "op.interrupt",
  [FUSE_DESTROY] = "op.destroy",
  [FUSE_BATCH_FORGET] = "op.batch_forget",
  [FUSE_FALLOCATE] = "op.fallocate",
  [FUSE_READDIRPLUS] = "op.readdirplus",
  [FUSE_RENAME2] = "op.rename2",
  [FUSE_SYNCFS] = "op.syncfs",
};

static void
count_opcode (struct virtio_device *dev, const uint8_t *req, uint64_t len)
{
  struct fuse_in_header h;

  if (len < sizeof h)
    return;
  memcpy (&h, req, sizeof h);
  cl_vmm_vm_metric_add (dev->vm, dev->name,
                        h.opcode < sizeof op_metric / sizeof op_metric[0] && op_metric[h.opcode]
                            ? op_metric[h.opcode]
                            : "op.other",
                        1);
}

static int64_t
fs_request (struct virtio_device *dev, unsigned q, const struct virtq_chain *c)
{
  struct virtio_fs *fs = (struct virtio_fs *)dev;
  /* A request longer than any the server accepts is cut here; its header
     then claims more than arrived and the server answers EINVAL. */
  uint64_t len = c->out_len < FUSE_SERVER_BUF_SIZE ? c->out_len : FUSE_SERVER_BUF_SIZE;
  uint64_t cap = c->in_len < FUSE_SERVER_BUF_SIZE ? c->in_len : FUSE_SERVER_BUF_SIZE;
  size_t out;
  bool direct;

  (void)q;
  cl_vmm_virtq_chain_read (c, 0, fs->req, len);
  /* READ data goes from the host file straight into the chain's
     writable buffers (one copy, as virtio-blk); the reply's header is
     copied below. */
  out = cl_vmm_fuse_server_handle_iov (fs->srv, fs->req, len, fs->reply, cap, c->iov + c->nout,
                                       c->nin, &direct);
  cl_vmm_vm_metric_add (dev->vm, dev->name, "requests", 1);
  count_opcode (dev, fs->req, len);
  if (out >= sizeof (struct fuse_out_header))
    {
      struct fuse_out_header h;
      memcpy (&h, fs->reply, sizeof h);
      if (h.error != 0)
        cl_vmm_vm_metric_add (dev->vm, dev->name, "errors", 1);
    }
  if (direct)
    {
      cl_vmm_virtq_chain_write (c, 0, fs->reply, sizeof (struct fuse_out_header));
      return out;
    }
  return cl_vmm_virtq_chain_write (c, 0, fs->reply, out);
}

static void
fs_notify (struct virtio_device *dev, unsigned q)
{
  struct virtio_fs *fs = (struct virtio_fs *)dev;

  cl_vmm_virtio_queue_serve (dev, q, &fs->chain, fs_request);
}

static void
fs_reset (struct virtio_device *dev)
{
  struct virtio_fs *fs = (struct virtio_fs *)dev;

  cl_vmm_fuse_server_reset (fs->srv);
}

static int
fs_save_check (struct virtio_device *dev, cl_error_t *err)
{
  struct virtio_fs *fs = (struct virtio_fs *)dev;

  json_decref (fs->saved);
  fs->saved = cl_vmm_fuse_server_save (fs->srv, err);
  if (fs->saved == NULL)
    return cl_error_wrap (err, "%s: the guest's files in `%.36s` cannot be saved", dev->name,
                          fs->config.tag);
  return 0;
}

static json_t *
fs_save (struct virtio_device *dev)
{
  struct virtio_fs *fs = (struct virtio_fs *)dev;
  cl_error_t err = NULL;
  json_t *state = fs->saved;

  fs->saved = NULL;
  if (state == NULL && (state = cl_vmm_fuse_server_save (fs->srv, &err)) == NULL)
    cl_error_release (&err); /* cl_vmm_snapshot_create checks first: not reached */
  return state;
}

static int
fs_restore (struct virtio_device *dev, json_t *state, cl_error_t *err)
{
  struct virtio_fs *fs = (struct virtio_fs *)dev;

  if (cl_vmm_fuse_server_restore (fs->srv, state, err) < 0)
    return cl_error_wrap (err, "%s", dev->name);
  return 0;
}

static void
fs_release (struct virtio_device *dev)
{
  struct virtio_fs *fs = (struct virtio_fs *)dev;

  cl_vmm_fuse_server_free (fs->srv);
  json_decref (fs->saved);
  free (fs->req);
  free (fs->reply);
  free (fs);
}

static const struct virtio_device_ops fs_ops = {
  .kind = "fs",
  .device_id = VIRTIO_ID_FS,
  .class_code = 0x018000,
  .num_queues = 2, /* hiprio, one request queue */
  .queue_max_size = QUEUE_SIZE,
  .queue_notify = fs_notify,
  .reset = fs_reset,
  .save = fs_save,
  .restore = fs_restore,
  .save_check = fs_save_check,
  .release = fs_release,
};

/* Each node id the guest holds is an open descriptor: allow as many as
   the hard limit lets (virtiofsd does the same). */
static void
raise_fd_limit (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

int
cl_vmm_virtio_fs_create (struct vm *vm, const char *tag, const char *dir, bool read_only,
                         cl_error_t *err)
{
  struct virtio_fs *fs;
  struct fuse_server *srv;
  size_t tag_len = tag ? strlen (tag) : 0;

  if (tag_len == 0 || tag_len > FS_TAG_MAX)
    return cl_error_make (err, 0, "shared directory `%s`: tag `%s` must be 1 to %d bytes", dir,
                          tag ? tag : "", FS_TAG_MAX);
  srv = cl_vmm_fuse_server_new (dir, read_only, err);
  if (srv == NULL)
    return -1;
  raise_fd_limit ();
  fs = cl_xmalloc0 (sizeof *fs);
  fs->srv = srv;
  fs->req = cl_xmalloc0 (FUSE_SERVER_BUF_SIZE);
  fs->reply = cl_xmalloc0 (FUSE_SERVER_BUF_SIZE);
  memcpy (fs->config.tag, tag, tag_len);
  fs->config.num_request_queues = 1;
  fs->vdev.ops = &fs_ops;
  fs->vdev.config = (uint8_t *)&fs->config;
  fs->vdev.config_size = sizeof fs->config;
  /* From here on the device belongs to the VM, even if a step fails. */
  if (cl_vmm_virtio_device_init (&fs->vdev, vm, err) < 0)
    return cl_error_wrap (err, "shared directory `%s`", dir);
  return 0;
}
