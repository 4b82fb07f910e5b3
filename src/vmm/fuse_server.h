/* SPDX-License-Identifier: Apache-2.0 */
/* A FUSE server (the protocol of linux/fuse.h, 7.12 to 7.38) over one host
   directory, for virtio-fs: it takes one request as bytes and gives back
   one reply as bytes, so the device (virtio_fs.c) only moves buffers and
   the fuzz target can drive it without a virtqueue.

   Every byte of a request is untrusted: lengths, names, node ids and file
   handles are checked here, once, and a bad one gets an error reply.  Host
   files are reached only beneath the shared root: each inode is an O_PATH
   descriptor, and each name is one path component resolved relative to
   its parent's descriptor with openat2(RESOLVE_BENEATH |
   RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS); symlinks are never
   followed on the host (the guest resolves them itself). */
#ifndef CLOISON_VMM_FUSE_SERVER_H
#define CLOISON_VMM_FUSE_SERVER_H

#include "common/error.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The largest WRITE payload and READ reply the server negotiates (with
   FUSE_MAX_PAGES: 256 pages, as virtiofsd; without it the guest keeps
   its default of 32 pages). */
#define FUSE_SERVER_MAX_IO (1024u * 1024)
/* Buffers big enough for any request or reply the server accepts. */
#define FUSE_SERVER_BUF_SIZE (FUSE_SERVER_MAX_IO + 4096)

struct fuse_server;

/* Opens `dir` (the shared root).  Fails naming the directory. */
struct fuse_server *cl_vmm_fuse_server_new (const char *dir, bool read_only, cl_error_t *err);
void cl_vmm_fuse_server_free (struct fuse_server *s);

/* Serves one request (`len` bytes: the device-readable part of a chain)
   and writes the reply into `reply` (`cap` bytes: the device-writable
   part, at most FUSE_SERVER_BUF_SIZE).  Returns the reply's length: 0 for
   requests that have none (FORGET, BATCH_FORGET, INTERRUPT) or when the
   request is too short to name one, or `cap` too small for a header. */
size_t cl_vmm_fuse_server_handle (struct fuse_server *s, const uint8_t *req, size_t len,
                                  uint8_t *reply, size_t cap);
/* The same, given also the device-writable buffers themselves (`iov`,
   `niov`: `cap` bytes or more, the reply's header first): a READ's data is
   read from the host file straight into them, after the header, and
   *direct is set; only the header (the first sizeof (struct
   fuse_out_header) bytes of `reply`) is then left to copy, and the return
   value counts the data too. */
size_t cl_vmm_fuse_server_handle_iov (struct fuse_server *s, const uint8_t *req, size_t len,
                                      uint8_t *reply, size_t cap, const struct iovec *iov,
                                      unsigned niov, bool *direct);

/* The guest's session ended (device reset): every inode but the root and
   every open handle is dropped, and INIT is expected again. */
void cl_vmm_fuse_server_reset (struct fuse_server *s);

/* Between INIT and DESTROY (or a reset): the guest has the filesystem
   mounted and holds node ids and handles that are host descriptors. */
bool cl_vmm_fuse_server_mounted (const struct fuse_server *s);

/* Snapshot state.  Node ids and handles are host descriptors, so they are
   saved by where they are now (their path beneath the root, as the kernel
   names it) and reopened there on restore, keeping their ids: the guest
   goes on with the ids it holds.  Saving fails (NULL, err set) when a held
   file was deleted or moved out of the share meanwhile.  Restoring resets
   the server first and fails when a saved path is gone. */
json_t *cl_vmm_fuse_server_save (struct fuse_server *s, cl_error_t *err);
int cl_vmm_fuse_server_restore (struct fuse_server *s, json_t *state, cl_error_t *err);

#endif
