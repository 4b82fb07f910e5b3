#include "image/internal.h"
int
cl_image_vm_kernel (const char **path, cl_error_t *err)
{
  (void) path;
  return cl_error_make (err, 0, "VM kernel: not built yet");
}
int
cl_image_vm_initramfs (const char **path, cl_error_t *err)
{
  (void) path;
  return cl_error_make (err, 0, "VM initramfs: not built yet");
}
int
cl_image_build_vm_disk (struct cl_image_store *s, const struct cl_image *image,
                        const char *out_path, uint64_t size_bytes, cl_error_t *err)
{
  (void) s; (void) image; (void) size_bytes;
  return cl_error_make (err, 0, "`%s`: VM disks not implemented yet", out_path);
}
