/* SPDX-License-Identifier: Apache-2.0 */
/* vCPUs: creation with CPUID (KVM's supported set plus a topology of N
   single-thread cores, APIC id = index) and MSRs, one thread each running
   KVM_RUN, and the pause/stop handshake used by snapshots and exits. */
#include "vmm/machine.h"

#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define CPUID_MAX_ENTRIES 256

struct kvm_cpuid2 *
cl_vmm_vm_cpuid_supported (struct vm *vm, cl_error_t *err)
{
  struct kvm_cpuid2 *c
      = cl_xmalloc0 (sizeof (*c) + CPUID_MAX_ENTRIES * sizeof (struct kvm_cpuid_entry2));
  c->nent = CPUID_MAX_ENTRIES;
  if (ioctl (vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0)
    {
      free (c);
      cl_error_errno (err, "KVM_GET_SUPPORTED_CPUID");
      return NULL;
    }
  /* KVM emulates the LAPIC's TSC-deadline mode but leaves the CPUID bit
     to userspace (KVM_CAP_TSC_DEADLINE_TIMER).  Without it Linux
     calibrates the LAPIC timer against the PM timer at boot: 100 ms of
     guest time plus a few hundred port exits. */
  if (ioctl (vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
    for (unsigned i = 0; i < c->nent; i++)
      if (c->entries[i].function == 1)
        c->entries[i].ecx |= 1u << 24;
  return c;
}

static unsigned
bits_for (unsigned n)
{
  unsigned b = 0;
  while ((1u << b) < n)
    b++;
  return b;
}

/* One package of `ncpus` cores, one thread each. */
static void
cpuid_set_topology (struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus)
{
  unsigned core_bits = bits_for (ncpus);
  for (unsigned i = 0; i < c->nent; i++)
    {
      struct kvm_cpuid_entry2 *e = &c->entries[i];
      switch (e->function)
        {
        case 1:
          e->ebx = (e->ebx & 0x0000FFFF) | (apic_id << 24) | ((ncpus > 1 ? ncpus : 1) << 16);
          if (ncpus > 1)
            e->edx |= 1u << 28; /* HTT: the logical count above is valid */
          e->ecx |= 1u << 31;   /* running under a hypervisor */
          break;
        case 4:
          e->eax = (e->eax & 0x3FFF) | ((ncpus - 1) << 26);
          break;
        case 6:
          e->ecx &= ~1u; /* no APERF/MPERF */
          break;
        case 0xA: /* no PMU */
          e->eax = e->ebx = e->ecx = e->edx = 0;
          break;
        case 0xB:
        case 0x1F:
          e->edx = apic_id;
          if (e->index == 0)
            {
              e->eax = 0;
              e->ebx = 1;
              e->ecx = (1 << 8) | 0; /* SMT level */
            }
          else if (e->index == 1)
            {
              e->eax = core_bits;
              e->ebx = ncpus;
              e->ecx = (2 << 8) | 1; /* core level */
            }
          else
            {
              e->eax = e->ebx = 0;
              e->ecx = e->index;
            }
          break;
        case 0x80000001:
          if (ncpus > 1)
            e->ecx |= 1u << 1; /* CmpLegacy */
          break;
        case 0x80000008:
          e->ecx = (e->ecx & ~0xF0FFu) | (core_bits << 12) | (ncpus - 1);
          break;
        case 0x8000001E:
          e->eax = apic_id;
          e->ebx = apic_id & 0xFF;
          e->ecx = 0;
          break;
        }
    }
}

/* KVM reports leaves 0xB/0x1F with only the subleaves the host has; make
   sure subleaves 0, 1 and 2 exist so that the topology above is whole. */
static struct kvm_cpuid2 *
cpuid_for_vcpu (struct vm *vm, unsigned apic_id)
{
  struct kvm_cpuid2 *c
      = cl_xmalloc0 (sizeof (*c) + (CPUID_MAX_ENTRIES + 6) * sizeof (c->entries[0]));
  memcpy (c, vm->cpuid,
          sizeof (*c)
              + (vm->cpuid->nent < CPUID_MAX_ENTRIES ? vm->cpuid->nent : CPUID_MAX_ENTRIES)
                    * sizeof (c->entries[0]));
  if (c->nent > CPUID_MAX_ENTRIES)
    c->nent = CPUID_MAX_ENTRIES;
  uint32_t max_leaf = 0;
  for (unsigned i = 0; i < c->nent; i++)
    if (c->entries[i].function == 0)
      max_leaf = c->entries[i].eax;
  if (max_leaf >= 0xB)
    for (unsigned sub = 0; sub < 3; sub++)
      {
        bool have = false;
        for (unsigned i = 0; i < c->nent; i++)
          have |= c->entries[i].function == 0xB && c->entries[i].index == sub;
        if (!have)
          c->entries[c->nent++] = (struct kvm_cpuid_entry2){
            .function = 0xB, .index = sub, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX
          };
      }
  cpuid_set_topology (c, apic_id, vm->ncpus);
  return c;
}

static int
vcpu_set_boot_msrs (struct vcpu *vcpu, cl_error_t *err)
{
  static const struct
  {
    uint32_t index;
    uint64_t value;
  } init[] = {
    { 0x174, 0 },
    { 0x175, 0 },
    { 0x176, 0 }, /* SYSENTER_CS/ESP/EIP */
    { 0xC0000081, 0 },
    { 0xC0000082, 0 },
    { 0xC0000083, 0 },
    { 0xC0000084, 0 },        /* STAR.. */
    { 0xC0000102, 0 },        /* KERNEL_GS_BASE */
    { 0x10, 0 },              /* TSC */
    { 0x1A0, 1 },             /* MISC_ENABLE: fast strings */
    { 0x2FF, (1 << 11) | 6 }, /* MTRR default type: enabled, write-back */
  };
  size_t n = sizeof init / sizeof init[0];
  struct kvm_msrs *msrs = cl_xmalloc0 (sizeof (*msrs) + n * sizeof (struct kvm_msr_entry));
  msrs->nmsrs = n;
  for (size_t i = 0; i < n; i++)
    msrs->entries[i] = (struct kvm_msr_entry){ .index = init[i].index, .data = init[i].value };
  int ret = ioctl (vcpu->fd, KVM_SET_MSRS, msrs);
  free (msrs);
  if (ret < 0)
    return cl_error_errno (err, "KVM_SET_MSRS");
  if ((size_t)ret != n)
    return cl_error_make (err, 0, "KVM_SET_MSRS: only %d of %zu set", ret, n);
  return 0;
}

int
cl_vmm_vm_vcpus_create (struct vm *vm, cl_error_t *err)
{
  /* an incoming migration set the source's already */
  if (vm->cpuid == NULL && (vm->cpuid = cl_vmm_vm_cpuid_supported (vm, err)) == NULL)
    return -1;
  vm->vcpus = cl_xmalloc0 (vm->ncpus * sizeof (*vm->vcpus));
  for (unsigned i = 0; i < vm->ncpus; i++)
    vm->vcpus[i].fd = -1;
  for (unsigned i = 0; i < vm->ncpus; i++)
    {
      struct vcpu *v = &vm->vcpus[i];
      v->vm = vm;
      v->id = i;
      v->fd = ioctl (vm->vm_fd, KVM_CREATE_VCPU, i);
      if (v->fd < 0)
        return cl_error_errno (err, "KVM_CREATE_VCPU %u", i);
      v->run = mmap (NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
      if (v->run == MAP_FAILED)
        {
          v->run = NULL;
          return cl_error_errno (err, "mmap vCPU %u run area", i);
        }
      struct kvm_cpuid2 *c = cpuid_for_vcpu (vm, i);
      int ret = ioctl (v->fd, KVM_SET_CPUID2, c);
      free (c);
      if (ret < 0)
        return cl_error_errno (err, "KVM_SET_CPUID2 (vCPU %u)", i);
      if (vcpu_set_boot_msrs (v, err) < 0)
        return cl_error_wrap (err, "vCPU %u", i);
    }
  return 0;
}

static void
vcpu_exit_io (struct vcpu *v)
{
  struct kvm_run *run = v->run;
  uint8_t *data = (uint8_t *)run + run->io.data_offset;
  bool write = run->io.direction == KVM_EXIT_IO_OUT;

  for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
    if (!cl_vmm_vm_io_dispatch (v->vm, true, run->io.port, data, run->io.size, write) && !write)
      memset (data, 0xFF, run->io.size);
  cl_vmm_vm_metric_add (v->vm, "vcpu", "pio_exits", 1);
}

static void
vcpu_exit_mmio (struct vcpu *v)
{
  struct kvm_run *run = v->run;
  if (!cl_vmm_vm_io_dispatch (v->vm, false, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
                              run->mmio.is_write)
      && !run->mmio.is_write)
    memset (run->mmio.data, 0xFF, run->mmio.len);
  cl_vmm_vm_metric_add (v->vm, "vcpu", "mmio_exits", 1);
}

static void
vcpu_stop_with (struct vcpu *v, enum vm_stop_reason reason, const char *fmt, ...)
{
  char msg[256];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  cl_vmm_vm_request_stop (v->vm, reason, msg);
}

static void vcpu_stop_with (struct vcpu *v, enum vm_stop_reason reason, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* Parks the thread while a pause is requested. */
static void
vcpu_maybe_pause (struct vcpu *v)
{
  struct vm *vm = v->vm;
  if (!atomic_load (&vm->pause_requested))
    return;
  pthread_mutex_lock (&vm->state_lock);
  vm->paused_vcpus++;
  pthread_cond_broadcast (&vm->state_cond);
  while (atomic_load (&vm->pause_requested) && !cl_vmm_vm_stopping (vm))
    pthread_cond_wait (&vm->state_cond, &vm->state_lock);
  vm->paused_vcpus--;
  pthread_mutex_unlock (&vm->state_lock);
}

static void *
vcpu_thread_main (void *arg)
{
  struct vcpu *v = arg;
  struct vm *vm = v->vm;
  char name[16];

  snprintf (name, sizeof name, "vcpu%d", v->id);
  pthread_setname_np (pthread_self (), name);
  if (vm->vcpu_thread_init)
    {
      cl_error_t err = NULL;
      if (vm->vcpu_thread_init (&err) < 0)
        {
          vcpu_stop_with (v, VM_STOP_ERROR, "vCPU %d: %s", v->id, err->msg);
          cl_error_release (&err);
        }
    }
  while (!cl_vmm_vm_stopping (vm))
    {
      vcpu_maybe_pause (v);
      if (cl_vmm_vm_stopping (vm))
        break;
      int ret = ioctl (v->fd, KVM_RUN, 0);
      if (ret < 0)
        {
          if (errno == EINTR || errno == EAGAIN)
            {
              v->run->immediate_exit = 0;
              /* auto-converge: a migration that cannot keep up kicks
                 every 10 ms and takes this share of each period */
              unsigned pct = atomic_load (&vm->throttle_pct);
              if (pct && !atomic_load (&vm->pause_requested))
                usleep (pct * 100);
              continue;
            }
          vcpu_stop_with (v, VM_STOP_ERROR, "vCPU %d: KVM_RUN: %s", v->id, strerror (errno));
          break;
        }
      switch (v->run->exit_reason)
        {
        case KVM_EXIT_IO:
          vcpu_exit_io (v);
          break;
        case KVM_EXIT_MMIO:
          vcpu_exit_mmio (v);
          break;
        case KVM_EXIT_HLT:
          vcpu_stop_with (v, VM_STOP_POWEROFF, "vCPU %d halted", v->id);
          break;
        case KVM_EXIT_SHUTDOWN:
          vcpu_stop_with (v, VM_STOP_SHUTDOWN, "guest triple fault on vCPU %d (KVM_EXIT_SHUTDOWN)",
                          v->id);
          break;
        case KVM_EXIT_SYSTEM_EVENT:
          if (v->run->system_event.type == KVM_SYSTEM_EVENT_RESET)
            vcpu_stop_with (v, VM_STOP_RESET, "guest reset");
          else if (v->run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
            vcpu_stop_with (v, VM_STOP_PANIC, "guest crashed");
          else
            vcpu_stop_with (v, VM_STOP_POWEROFF, "guest powered off");
          break;
        case KVM_EXIT_INTERNAL_ERROR:
          vcpu_stop_with (v, VM_STOP_ERROR,
                          "vCPU %d: KVM internal error (suberror %u, emulation failure)", v->id,
                          v->run->internal.suberror);
          break;
        case KVM_EXIT_FAIL_ENTRY:
          vcpu_stop_with (v, VM_STOP_ERROR, "vCPU %d: VM entry failed (reason 0x%llx)", v->id,
                          (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
          break;
        case KVM_EXIT_INTR:
          break;
        default:
          vcpu_stop_with (v, VM_STOP_ERROR, "vCPU %d: unexpected KVM exit %u", v->id,
                          v->run->exit_reason);
          break;
        }
    }
  pthread_mutex_lock (&vm->state_lock);
  vm->exited_vcpus++;
  pthread_cond_broadcast (&vm->state_cond);
  pthread_mutex_unlock (&vm->state_lock);
  return NULL;
}

static void
kick_handler (int sig)
{
  (void)sig;
}

int
cl_vmm_vm_vcpus_start (struct vm *vm, cl_error_t *err)
{
  struct sigaction sa = { .sa_handler = kick_handler };
  sigemptyset (&sa.sa_mask);
  if (sigaction (SIGUSR1, &sa, NULL) < 0)
    return cl_error_errno (err, "sigaction SIGUSR1");
  for (unsigned i = 0; i < vm->ncpus; i++)
    {
      int ret = pthread_create (&vm->vcpus[i].thread, NULL, vcpu_thread_main, &vm->vcpus[i]);
      if (ret != 0)
        {
          cl_vmm_vm_request_stop (vm, VM_STOP_ERROR, "thread creation failed");
          return cl_error_make (err, ret, "start vCPU %u", i);
        }
      vm->vcpus[i].started = true;
    }
  return 0;
}

int
cl_vmm_vm_vcpus_start_paused (struct vm *vm, cl_error_t *err)
{
  pthread_mutex_lock (&vm->state_lock);
  atomic_store (&vm->pause_requested, true);
  vm->paused = true;
  pthread_mutex_unlock (&vm->state_lock);
  return cl_vmm_vm_vcpus_start (vm, err);
}

void
cl_vmm_vm_vcpus_join (struct vm *vm)
{
  if (vm->vcpus == NULL)
    return;
  pthread_mutex_lock (&vm->state_lock);
  while (!cl_vmm_vm_stopping (vm))
    pthread_cond_wait (&vm->state_cond, &vm->state_lock);
  pthread_mutex_unlock (&vm->state_lock);
  for (unsigned i = 0; i < vm->ncpus; i++)
    if (vm->vcpus[i].started)
      {
        /* a thread may have entered KVM_RUN after the first kick */
        while (pthread_tryjoin_np (vm->vcpus[i].thread, NULL) == EBUSY)
          {
            vm->vcpus[i].run->immediate_exit = 1;
            pthread_kill (vm->vcpus[i].thread, SIGUSR1);
            usleep (1000);
          }
        vm->vcpus[i].started = false;
      }
}

static void
pause_kick_locked (struct vm *vm)
{
  atomic_store (&vm->pause_requested, true);
  for (unsigned i = 0; i < vm->ncpus; i++)
    if (vm->vcpus[i].started)
      {
        vm->vcpus[i].run->immediate_exit = 1;
        pthread_kill (vm->vcpus[i].thread, SIGUSR1);
      }
}

void
cl_vmm_vm_pause_begin (struct vm *vm)
{
  pthread_mutex_lock (&vm->state_lock);
  pause_kick_locked (vm);
  pthread_mutex_unlock (&vm->state_lock);
}

bool
cl_vmm_vm_pause (struct vm *vm)
{
  pthread_mutex_lock (&vm->state_lock);
  pause_kick_locked (vm);
  while (vm->paused_vcpus + vm->exited_vcpus < vm->ncpus && !cl_vmm_vm_stopping (vm))
    pthread_cond_wait (&vm->state_cond, &vm->state_lock);
  vm->paused = !cl_vmm_vm_stopping (vm);
  pthread_mutex_unlock (&vm->state_lock);
  return vm->paused;
}

void
cl_vmm_vm_resume (struct vm *vm)
{
  pthread_mutex_lock (&vm->state_lock);
  atomic_store (&vm->pause_requested, false);
  vm->paused = false;
  pthread_cond_broadcast (&vm->state_cond);
  pthread_mutex_unlock (&vm->state_lock);
}
