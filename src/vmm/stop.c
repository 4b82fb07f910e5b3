/* SPDX-License-Identifier: Apache-2.0 */
/* The VM's stop request, which every thread watches: the first reason
   wins, the I/O thread is woken and each vCPU is kicked out of KVM_RUN.
   Below both the VM (kvm.c) and its I/O thread (event.c). */
#include "vmm/machine.h"
#include "common/util.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

void
cl_vmm_vm_request_stop (struct vm *vm, enum vm_stop_reason reason, const char *msg)
{
  int expected = VM_RUNNING;
  pthread_mutex_lock (&vm->state_lock);
  if (atomic_compare_exchange_strong (&vm->stop_reason, &expected, reason) && msg)
    vm->stop_msg = cl_xstrdup (msg);
  pthread_cond_broadcast (&vm->state_cond);
  pthread_mutex_unlock (&vm->state_lock);
  uint64_t one = 1;
  if (write (vm->wake_fd, &one, sizeof one) < 0)
    {
      /* the counter is saturated: the I/O thread is awake anyway */
    }
  for (unsigned i = 0; i < vm->ncpus; i++)
    if (vm->vcpus && vm->vcpus[i].started)
      {
        vm->vcpus[i].run->immediate_exit = 1;
        pthread_kill (vm->vcpus[i].thread, SIGUSR1);
      }
}

bool
cl_vmm_vm_stopping (struct vm *vm)
{
  return atomic_load (&vm->stop_reason) != VM_RUNNING;
}
