/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-rng (virtio 1.2, 5.4): one queue of device-writable buffers that
   the device fills from getrandom(2). */
#include "vmm/virtio.h"
#include "vmm/virtio_pci.h"

#include "common/util.h"
#include "vmm/vmm_vm.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

/* Bytes served per request: enough for the guest's hwrng reads (at most a
   page), small enough that one request never stalls the I/O thread. */
#define RNG_MAX_REQUEST 4096

struct virtio_rng
{
  struct virtio_device vdev;
  struct virtq_chain chain;
};

static int64_t
fill_random (struct virtio_device *dev, unsigned q, const struct virtq_chain *chain)
{
  uint32_t done = 0;

  (void) q;
  for (unsigned i = chain->nout; i < chain->nout + chain->nin && done < RNG_MAX_REQUEST; i++)
    {
      size_t want = chain->iov[i].iov_len;
      ssize_t got;
      if (want > RNG_MAX_REQUEST - done)
        want = RNG_MAX_REQUEST - done;
      got = getrandom (chain->iov[i].iov_base, want, GRND_NONBLOCK);
      if (got <= 0)
        break;
      done += got;
      if ((size_t) got < want)
        break;
    }
  cl_vmm_vm_metric_add (dev->vm, dev->name, "bytes", done);
  return done;
}

static void
rng_notify (struct virtio_device *dev, unsigned q)
{
  struct virtio_rng *rng = (struct virtio_rng *) dev;

  cl_vmm_virtio_queue_serve (dev, q, &rng->chain, fill_random);
}

static void
rng_release (struct virtio_device *dev)
{
  free (dev); /* the first member of struct virtio_rng */
}

static const struct virtio_device_ops rng_ops = {
  .kind = "rng",
  .device_id = VIRTIO_ID_RNG,
  .class_code = 0x00ff00,
  .num_queues = 1,
  .queue_max_size = 256,
  .queue_notify = rng_notify,
  .release = rng_release,
};

int
cl_vmm_virtio_rng_create (struct vm *vm, cl_error_t *err)
{
  struct virtio_rng *rng = cl_xmalloc0 (sizeof *rng);

  rng->vdev.ops = &rng_ops;
  return cl_vmm_virtio_device_init (&rng->vdev, vm, err);
}
