/* SPDX-License-Identifier: Apache-2.0 */
/* Where the built-in data lives (the busybox rootfs, the VM's kernel and
   initramfs).  A file of its own: cloison-vmctr, which starts for every
   VM-isolated container, needs the kernel's and initramfs's paths only,
   and linking them from img_vm.c brought the image store, libarchive and
   libcrypto (and their thirty shared libraries) into its start-up. */
#include "image/img_internal.h"
#include "common/cleanup.h"
#include "common/paths.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

char *
cl_img_data_path (const char *file)
{
  cleanup_free char *dir = cl_piece_path (CL_PIECE_IMAGE_DATA);
  return cl_strdup_printf ("%s/%s", dir, file);
}

static int
vm_piece (const char *file, const char **path, cl_error_t *err)
{
  char *p = cl_img_data_path (file);
  if (access (p, R_OK) < 0)
    {
      cl_error_errno (err,
                      "VM %s `%s` (build it with `ninja -C build vm-image`, which fetches the "
                      "Debian kernel once)",
                      file, p);
      free (p);
      return -1;
    }
  *path = p; /* kept for the life of the process, like a static */
  return 0;
}

int
cl_img_vm_kernel (const char **path, cl_error_t *err)
{
  static const char *cached;
  if (cached == NULL && vm_piece ("vmlinuz", &cached, err) < 0)
    return -1;
  *path = cached;
  return 0;
}

int
cl_img_vm_initramfs (const char **path, cl_error_t *err)
{
  static const char *cached;
  if (cached == NULL && vm_piece ("initramfs.cpio.gz", &cached, err) < 0)
    return -1;
  *path = cached;
  return 0;
}
