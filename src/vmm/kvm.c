/* SPDX-License-Identifier: Apache-2.0 */
/* The VM itself: /dev/kvm, guest memory, in-kernel irqchip and PIT, GSI
   routing, irqfd, ioeventfd, snapshot state registry and metrics.  The
   stop request every thread watches is in stop.c. */
#include "vmm/machine.h"

#include "vmm/disk_track.h"

#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const struct guest_mem *
cl_vmm_vm_guest_mem (struct vm *vm)
{
  return &vm->mem;
}

/* Anonymous memory starting on a 2 MiB boundary, so that huge pages can
   back it from its first byte. */
static void *
mmap_anon_2m_aligned (uint64_t size)
{
  const uint64_t align = 2ULL << 20;
  uint8_t *p = mmap (NULL, size + align, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return p;
  uint8_t *start = (uint8_t *)(((uintptr_t)p + align - 1) & ~(align - 1));
  if (start > p)
    munmap (p, start - p);
  if (start + size < p + size + align)
    munmap (start + size, p + size + align - (start + size));
  return start;
}

static int
vm_map_memory (struct vm *vm, const char *mem_file, cl_error_t *err)
{
  uint64_t low = vm->mem_size < VM_LOW_MEM_LIMIT ? vm->mem_size : VM_LOW_MEM_LIMIT;
  uint64_t high = vm->mem_size - low;
  cleanup_close int fd = -1;

  if (mem_file)
    {
      struct stat st;
      fd = open (mem_file, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return cl_error_errno (err, "open `%s`", mem_file);
      if (fstat (fd, &st) < 0)
        return cl_error_errno (err, "stat `%s`", mem_file);
      if ((uint64_t)st.st_size != vm->mem_size)
        return cl_error_make (err, 0, "`%s`: %llu bytes, the snapshot says %llu", mem_file,
                              (unsigned long long)st.st_size, (unsigned long long)vm->mem_size);
    }

  uint64_t gpas[2] = { 0, VM_HIGH_MEM_START };
  uint64_t sizes[2] = { low, high };
  uint64_t file_off = 0;
  for (int i = 0; i < 2; i++)
    {
      if (sizes[i] == 0)
        continue;
      void *p;
      if (fd >= 0)
        p = mmap (NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd,
                  file_off);
      else
        p = mmap_anon_2m_aligned (sizes[i]);
      if (p == MAP_FAILED)
        return cl_error_errno (err, "mmap guest memory (%llu MiB)",
                               (unsigned long long)(sizes[i] >> 20));
      /* Transparent huge pages for guest RAM: with nested paging each TLB
         miss walks two page tables, and under this lab's emulation a guest
         on 4 KiB pages runs about twice slower (QEMU does the same). */
      if (fd < 0)
        madvise (p, sizes[i], MADV_HUGEPAGE);
      struct guest_mem_region *r = &vm->mem.regions[vm->mem.nregions];
      r->gpa = gpas[i];
      r->size = sizes[i];
      r->host = p;
      struct kvm_userspace_memory_region kr = {
        .slot = vm->mem.nregions,
        .guest_phys_addr = gpas[i],
        .memory_size = sizes[i],
        .userspace_addr = (uint64_t)(uintptr_t)p,
      };
      vm->mem.nregions++;
      if (ioctl (vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0)
        return cl_error_errno (err, "KVM_SET_USER_MEMORY_REGION");
      file_off += sizes[i];
    }
  return 0;
}

/* Default routes: GSI 0-15 to both PICs and the IOAPIC, 16-23 to the IOAPIC
   (what KVM sets up by itself, which KVM_SET_GSI_ROUTING replaces). */
static void
vm_routes_default (struct vm *vm)
{
  for (int gsi = 0; gsi < VM_IOAPIC_PINS; gsi++)
    vm->route_used[gsi] = true;
  vm->next_gsi = VM_IOAPIC_PINS;
}

int
cl_vmm_vm_routes_push (struct vm *vm, cl_error_t *err)
{
  size_t n = 0;
  cleanup_free struct kvm_irq_routing *table
      = cl_xmalloc0 (sizeof (*table) + (VM_MAX_GSI + 16) * sizeof (table->entries[0]));

  for (int gsi = 0; gsi < VM_IOAPIC_PINS; gsi++)
    {
      if (gsi < 16 && gsi != 2)
        table->entries[n++] = (struct kvm_irq_routing_entry){
          .gsi = gsi,
          .type = KVM_IRQ_ROUTING_IRQCHIP,
          .u.irqchip
          = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, .pin = gsi % 8 },
        };
      table->entries[n++] = (struct kvm_irq_routing_entry){
        .gsi = gsi,
        .type = KVM_IRQ_ROUTING_IRQCHIP,
        .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
      };
    }
  for (int gsi = VM_IOAPIC_PINS; gsi < VM_MAX_GSI; gsi++)
    if (vm->route_used[gsi] && vm->routes[gsi].type == KVM_IRQ_ROUTING_MSI)
      table->entries[n++] = vm->routes[gsi];
  table->nr = n;
  if (ioctl (vm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0)
    return cl_error_errno (err, "KVM_SET_GSI_ROUTING");
  return 0;
}

int
cl_vmm_vm_gsi_alloc (struct vm *vm, cl_error_t *err)
{
  int gsi = -1;
  pthread_mutex_lock (&vm->gsi_lock);
  for (int g = VM_IOAPIC_PINS; g < VM_MAX_GSI; g++)
    if (!vm->route_used[g])
      {
        vm->route_used[g] = true;
        memset (&vm->routes[g], 0, sizeof (vm->routes[g]));
        gsi = g;
        break;
      }
  pthread_mutex_unlock (&vm->gsi_lock);
  if (gsi < 0)
    return cl_error_make (err, 0, "no GSI left for an MSI route");
  return gsi;
}

int
cl_vmm_vm_msi_route_set (struct vm *vm, int gsi, uint64_t addr, uint32_t data, cl_error_t *err)
{
  int ret;
  if (gsi < VM_IOAPIC_PINS || gsi >= VM_MAX_GSI)
    return cl_error_make (err, 0, "GSI %d is not an MSI route", gsi);
  pthread_mutex_lock (&vm->gsi_lock);
  vm->routes[gsi] = (struct kvm_irq_routing_entry){
    .gsi = gsi,
    .type = KVM_IRQ_ROUTING_MSI,
    .u.msi = { .address_lo = (uint32_t)addr, .address_hi = addr >> 32, .data = data },
  };
  vm->route_used[gsi] = true;
  ret = cl_vmm_vm_routes_push (vm, err);
  pthread_mutex_unlock (&vm->gsi_lock);
  return ret;
}

int
cl_vmm_vm_irqfd (struct vm *vm, int eventfd, int gsi, bool assign, cl_error_t *err)
{
  struct kvm_irqfd req = {
    .fd = eventfd,
    .gsi = gsi,
    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
  };
  if (ioctl (vm->vm_fd, KVM_IRQFD, &req) < 0)
    return cl_error_errno (err, "KVM_IRQFD (gsi %d)", gsi);
  return 0;
}

int
cl_vmm_vm_irq_line (struct vm *vm, int irq, int level)
{
  struct kvm_irq_level l = { .irq = irq, .level = level };
  return ioctl (vm->vm_fd, KVM_IRQ_LINE, &l);
}

int
cl_vmm_vm_ioeventfd (struct vm *vm, uint64_t addr, unsigned len, bool is_pio, int64_t datamatch,
                     int eventfd, bool assign, cl_error_t *err)
{
  struct kvm_ioeventfd req = {
    .addr = addr,
    .len = len,
    .fd = eventfd,
  };
  if (datamatch >= 0)
    {
      req.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
      req.datamatch = datamatch;
    }
  if (is_pio)
    req.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (!assign)
    req.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (ioctl (vm->vm_fd, KVM_IOEVENTFD, &req) < 0)
    return cl_error_errno (err, "KVM_IOEVENTFD (%s 0x%llx)", is_pio ? "port" : "mmio",
                           (unsigned long long)addr);
  return 0;
}

int
cl_vmm_vm_persist_register (struct vm *vm, const char *id, const struct vm_persist_ops *ops,
                            void *opaque, cl_error_t *err)
{
  for (size_t i = 0; i < vm->npersist; i++)
    if (strcmp (vm->persist[i].id, id) == 0)
      return cl_error_make (err, 0, "device state `%s` registered twice", id);
  vm->persist = realloc (vm->persist, (vm->npersist + 1) * sizeof (*vm->persist));
  if (vm->persist == NULL)
    abort ();
  vm->persist[vm->npersist++] = (struct vm_persist_entry){ cl_xstrdup (id), ops, opaque };
  return 0;
}

struct vm_disk *
cl_vmm_vm_disk_add (struct vm *vm, int fd, uint64_t size)
{
  if (vm->ndisks == VM_MAX_DISKS)
    return NULL; /* not tracked: block migration refuses such a VM */
  return vm->disks[vm->ndisks++] = cl_vmm_disk_track_new (fd, size);
}

static struct vm_metric *
vm_metric_find (struct vm *vm, const char *device, const char *name, bool create)
{
  for (size_t i = 0; i < vm->nmetrics; i++)
    if (strcmp (vm->metrics[i].device, device) == 0 && strcmp (vm->metrics[i].name, name) == 0)
      return &vm->metrics[i];
  if (!create)
    return NULL;
  /* Fixed capacity so that pointers stay valid without the lock. */
  if (vm->nmetrics == 256)
    return NULL;
  struct vm_metric *m = &vm->metrics[vm->nmetrics];
  m->device = cl_xstrdup (device);
  m->name = cl_xstrdup (name);
  atomic_store (&m->value, 0);
  vm->nmetrics++;
  return m;
}

void
cl_vmm_vm_metric_add (struct vm *vm, const char *device, const char *name, uint64_t delta)
{
  pthread_mutex_lock (&vm->metric_lock);
  struct vm_metric *m = vm_metric_find (vm, device, name, true);
  if (m)
    m->value += delta;
  pthread_mutex_unlock (&vm->metric_lock);
}

uint64_t
cl_vmm_vm_metric_get (struct vm *vm, const char *device, const char *name)
{
  uint64_t v = 0;
  pthread_mutex_lock (&vm->metric_lock);
  struct vm_metric *m = vm_metric_find (vm, device, name, false);
  if (m)
    v = m->value;
  pthread_mutex_unlock (&vm->metric_lock);
  return v;
}

json_t *
cl_vmm_vm_metrics_json (struct vm *vm)
{
  json_t *root = json_object ();
  pthread_mutex_lock (&vm->metric_lock);
  for (size_t i = 0; i < vm->nmetrics; i++)
    {
      json_t *dev = json_object_get (root, vm->metrics[i].device);
      if (dev == NULL)
        {
          dev = json_object ();
          json_object_set_new (root, vm->metrics[i].device, dev);
        }
      json_object_set_new (dev, vm->metrics[i].name, json_integer (vm->metrics[i].value));
    }
  pthread_mutex_unlock (&vm->metric_lock);
  return root;
}

int
cl_vmm_vm_create (struct vm **out, unsigned ncpus, uint64_t mem_size, const char *mem_file,
                  cl_error_t *err)
{
  struct vm *vm = cl_xmalloc0 (sizeof (*vm));
  atomic_init (&vm->guest_status, -1);
  int ret;

  vm->kvm_fd = vm->vm_fd = vm->epoll_fd = vm->wake_fd = -1;
  vm->ncpus = ncpus;
  vm->mem_size = mem_size;
  vm->start_ns = cl_now_ns ();
  vm->metrics = cl_xmalloc0 (256 * sizeof (*vm->metrics));
  pthread_rwlock_init (&vm->io_lock, NULL);
  pthread_mutex_init (&vm->gsi_lock, NULL);
  pthread_mutex_init (&vm->event_lock, NULL);
  pthread_mutex_init (&vm->state_lock, NULL);
  pthread_mutex_init (&vm->metric_lock, NULL);
  pthread_cond_init (&vm->state_cond, NULL);
  *out = vm;

  vm->kvm_fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (vm->kvm_fd < 0)
    return cl_error_errno (err, "open `/dev/kvm`");
  ret = ioctl (vm->kvm_fd, KVM_GET_API_VERSION, 0);
  if (ret != KVM_API_VERSION)
    return cl_error_make (err, 0, "/dev/kvm: API version %d, expected %d", ret, KVM_API_VERSION);
  vm->run_size = ioctl (vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (vm->run_size <= 0)
    return cl_error_errno (err, "KVM_GET_VCPU_MMAP_SIZE");
  vm->vm_fd = ioctl (vm->kvm_fd, KVM_CREATE_VM, 0);
  if (vm->vm_fd < 0)
    return cl_error_errno (err, "KVM_CREATE_VM");
  if (ioctl (vm->vm_fd, KVM_SET_TSS_ADDR, VM_TSS_ADDR) < 0)
    return cl_error_errno (err, "KVM_SET_TSS_ADDR");
  uint64_t idmap = VM_IDENTITY_MAP_ADDR;
  if (ioctl (vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
    return cl_error_errno (err, "KVM_SET_IDENTITY_MAP_ADDR");
  /* Guest memory before the irqchip: the first memslot then goes in
     without waiting for an SRCU grace period; created after the irqchip
     (whose I/O devices start one), KVM_SET_USER_MEMORY_REGION took 5-10 ms
     on this nested host, against 0.05 ms now. */
  if (vm_map_memory (vm, mem_file, err) < 0)
    return -1;
  if (ioctl (vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
    return cl_error_errno (err, "KVM_CREATE_IRQCHIP");
  struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
  if (ioctl (vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
    return cl_error_errno (err, "KVM_CREATE_PIT2");
  vm_routes_default (vm);
  if (cl_vmm_vm_routes_push (vm, err) < 0)
    return -1;

  vm->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  if (vm->epoll_fd < 0)
    return cl_error_errno (err, "epoll_create1");
  vm->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (vm->wake_fd < 0)
    return cl_error_errno (err, "eventfd");
  return 0;
}

static void
vm_io_space_free (struct vm_io_space *s)
{
  free (s->ranges);
}

struct vm_destructor
{
  void (*fn) (void *);
  void *opaque;
  struct vm_destructor *next;
};

void
cl_vmm_vm_add_destructor (struct vm *vm, void (*fn) (void *), void *opaque)
{
  struct vm_destructor *d = cl_xmalloc0 (sizeof (*d));
  *d = (struct vm_destructor){ fn, opaque, vm->destructors };
  vm->destructors = d;
}

void
cl_vmm_vm_destroy (struct vm *vm)
{
  if (vm == NULL)
    return;
  cl_vmm_vm_io_thread_stop (vm);
  while (vm->destructors)
    {
      struct vm_destructor *d = vm->destructors;
      vm->destructors = d->next;
      d->fn (d->opaque);
      free (d);
    }
  for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
    {
      if (vm->vcpus[i].run)
        munmap (vm->vcpus[i].run, vm->run_size);
      if (vm->vcpus[i].fd >= 0)
        close (vm->vcpus[i].fd);
    }
  free (vm->vcpus);
  for (int i = 0; i < vm->mem.nregions; i++)
    munmap (vm->mem.regions[i].host, vm->mem.regions[i].size);
  for (size_t i = 0; i < vm->npersist; i++)
    free (vm->persist[i].id);
  free (vm->persist);
  for (unsigned i = 0; i < vm->ndisks; i++)
    cl_vmm_disk_track_free (vm->disks[i]);
  for (size_t i = 0; i < vm->nmetrics; i++)
    {
      free (vm->metrics[i].device);
      free (vm->metrics[i].name);
    }
  free (vm->metrics);
  vm_io_space_free (&vm->pio);
  vm_io_space_free (&vm->mmio);
  free (vm->cpuid);
  free (vm->msrs_readable);
  free (vm->stop_msg);
  for (int *fd = (int[]){ vm->wake_fd, vm->epoll_fd, vm->vm_fd, vm->kvm_fd, -2 }; *fd != -2; fd++)
    if (*fd >= 0)
      close (*fd);
  free (vm);
}

static int
pwrite_all (int fd, const void *buf, size_t len, off_t off)
{
  const uint8_t *p = buf;
  while (len > 0)
    {
      ssize_t n = pwrite (fd, p, len, off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      p += n;
      len -= n;
      off += n;
    }
  return 0;
}

/* Memory to a file: zero pages become holes, so that a mostly idle 256 MiB
   guest makes a small (sparse) file that maps back lazily. */
int
cl_vmm_vm_mem_save (struct vm *vm, const char *path, cl_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  static const uint8_t zero[4096];
  uint64_t off = 0;

  if (fd < 0)
    return cl_error_errno (err, "create `%s`", path);
  for (int i = 0; i < vm->mem.nregions; i++)
    {
      const struct guest_mem_region *r = &vm->mem.regions[i];
      for (uint64_t p = 0; p < r->size;)
        {
          /* gather a run of non-zero pages into one write */
          uint64_t q = p;
          while (q < r->size && memcmp (r->host + q, zero, sizeof zero) != 0)
            q += sizeof zero;
          if (q > p && pwrite_all (fd, r->host + p, q - p, off + p) < 0)
            return cl_error_errno (err, "write `%s`", path);
          p = q;
          while (p < r->size && memcmp (r->host + p, zero, sizeof zero) == 0)
            p += sizeof zero;
        }
      off += r->size;
    }
  if (ftruncate (fd, off) < 0)
    return cl_error_errno (err, "truncate `%s`", path);
  return 0;
}
