/* SPDX-License-Identifier: Apache-2.0 */
/* The VM core's own view of a machine: what vmm_vm.h hides from devices.  Used
   by the core files (kvm.c, vcpu.c, boot.c, vmm_snapshot.c, vmm_api.c, vmm.c) and
   the legacy devices. */
#ifndef CLOISON_VMM_MACHINE_H
#define CLOISON_VMM_MACHINE_H

#include "vmm/vmm_vm.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* Guest physical layout. */
#define VM_LOW_MEM_LIMIT 0xC0000000ULL   /* RAM below 3 GiB in one region */
#define VM_HIGH_MEM_START 0x100000000ULL /* the rest above 4 GiB */
#define VM_PCI_MMIO_START 0xC0000000ULL  /* BAR window ... */
#define VM_PCI_MMIO_END 0xFEC00000ULL    /* ... up to the IOAPIC */
#define VM_PCI_PIO_START 0xC000
#define VM_PCI_PIO_END 0x10000
#define VM_TSS_ADDR 0xFFFBD000ULL
#define VM_IDENTITY_MAP_ADDR 0xFFFBC000ULL
#define VM_IOAPIC_PINS 24
#define VM_MAX_GSI 1024
#define VM_MAX_DISKS 32

enum vm_stop_reason
{
  VM_RUNNING = 0,
  VM_STOP_RESET,    /* guest reboot (i8042 0xFE, reset) */
  VM_STOP_POWEROFF, /* guest poweroff */
  VM_STOP_SIGNAL,   /* SIGTERM/SIGINT */
  VM_STOP_API,      /* asked through the API */
  VM_STOP_SHUTDOWN, /* triple fault: error */
  VM_STOP_PANIC,    /* guest kernel panic: error */
  VM_STOP_ERROR,    /* VMM or emulation failure: error */
};

struct vm_io_range
{
  uint64_t base, len;
  vm_io_fn fn;
  void *opaque;
};

struct vm_io_space
{
  struct vm_io_range *ranges; /* sorted by base */
  size_t n, cap;
};

struct vm_persist_entry
{
  char *id;
  const struct vm_persist_ops *ops;
  void *opaque;
};

struct vm_metric
{
  char *device, *name;
  _Atomic uint64_t value;
};

struct vcpu
{
  struct vm *vm;
  int id;
  int fd;
  struct kvm_run *run;
  pthread_t thread;
  bool started;
};

struct pci_bus;

struct vm
{
  int kvm_fd, vm_fd;
  int run_size;
  struct guest_mem mem;
  uint64_t mem_size; /* RAM bytes */

  unsigned ncpus;
  struct vcpu *vcpus;
  struct kvm_cpuid2 *cpuid; /* supported, before per-vCPU topology */

  pthread_rwlock_t io_lock;
  struct vm_io_space pio, mmio;

  pthread_mutex_t gsi_lock;
  struct kvm_irq_routing_entry routes[VM_MAX_GSI];
  bool route_used[VM_MAX_GSI];
  int next_gsi;

  int epoll_fd;
  int wake_fd; /* eventfd: wakes the I/O thread on stop */
  pthread_t io_thread;
  bool io_started;
  pthread_mutex_t event_lock;
  struct vm_event *events;

  /* stop and pause */
  _Atomic int stop_reason;
  char *stop_msg;
  /* the byte the guest last wrote to CL_VMM_STATUS_PORT, -1: none */
  _Atomic int guest_status;
  pthread_mutex_t state_lock;
  pthread_cond_t state_cond;
  _Atomic bool pause_requested;
  unsigned paused_vcpus;
  unsigned exited_vcpus;
  bool paused;

  struct vm_persist_entry *persist;
  size_t npersist;

  /* the disks' images, for block migration (disk_track.h) */
  struct vm_disk *disks[VM_MAX_DISKS];
  unsigned ndisks;

  pthread_mutex_t metric_lock;
  struct vm_metric *metrics;
  size_t nmetrics;

  struct pci_bus *pci;
  /* run first in each vCPU thread (its own seccomp filter) */
  int (*vcpu_thread_init) (cl_error_t *err);
  struct vm_destructor *destructors;
  uint64_t start_ns;
  /* migration: the share (0-99 %) of each 10 ms the vCPUs sleep */
  _Atomic unsigned throttle_pct;
  /* the MSRs a snapshot saves, probed once (vmm_snapshot.c) */
  struct kvm_msr_list *msrs_readable;
};

/* kvm.c */
/* mem_file NULL: anonymous memory; else mapped privately (restore). */
int cl_vmm_vm_create (struct vm **out, unsigned ncpus, uint64_t mem_size, const char *mem_file,
                      cl_error_t *err);
/* Runs the destructors (vmm_vm.h) first. */
void cl_vmm_vm_destroy (struct vm *vm);
/* The e820 RAM ranges follow from mem_size. */
int cl_vmm_vm_mem_save (struct vm *vm, const char *path, cl_error_t *err);
uint64_t cl_vmm_vm_metric_get (struct vm *vm, const char *device, const char *name);
json_t *cl_vmm_vm_metrics_json (struct vm *vm);
int cl_vmm_vm_routes_push (struct vm *vm, cl_error_t *err);

/* stop.c: the first reason wins; wakes the I/O thread, kicks the vCPUs. */
void cl_vmm_vm_request_stop (struct vm *vm, enum vm_stop_reason reason, const char *msg);
bool cl_vmm_vm_stopping (struct vm *vm);

/* io.c: exits from vCPU threads; false when nothing claims the address. */
bool cl_vmm_vm_io_dispatch (struct vm *vm, bool is_pio, uint64_t addr, void *data, unsigned len,
                            bool write);

/* event.c */
int cl_vmm_vm_io_thread_start (struct vm *vm, cl_error_t *err);
void cl_vmm_vm_io_thread_stop (struct vm *vm);

/* vcpu.c */
/* KVM's supported CPUID (allocated), before any per-vCPU topology. */
struct kvm_cpuid2 *cl_vmm_vm_cpuid_supported (struct vm *vm, cl_error_t *err);
/* With vm->cpuid NULL, takes KVM's supported set. */
int cl_vmm_vm_vcpus_create (struct vm *vm, cl_error_t *err);
int cl_vmm_vm_vcpus_start (struct vm *vm, cl_error_t *err);
/* The threads started but held before their first KVM_RUN (as paused;
   cl_vmm_vm_resume lets them run): an incoming migration starts them
   (and loads their filters) while the stream still flows. */
int cl_vmm_vm_vcpus_start_paused (struct vm *vm, cl_error_t *err);
/* Blocks until a stop is requested, joins the vCPU threads. */
void cl_vmm_vm_vcpus_join (struct vm *vm);
/* Every vCPU out of KVM_RUN and waiting; false if the VM is stopping. */
bool cl_vmm_vm_pause (struct vm *vm);
/* The first half of cl_vmm_vm_pause: the vCPUs are told to stop, without
   waiting (what else must stop is stopped meanwhile); then
   cl_vmm_vm_pause, or cl_vmm_vm_resume to call it off. */
void cl_vmm_vm_pause_begin (struct vm *vm);
void cl_vmm_vm_resume (struct vm *vm);

#endif
