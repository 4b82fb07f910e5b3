/* SPDX-License-Identifier: Apache-2.0 */
/* The VM's I/O thread: one epoll loop running device callbacks (stdin for
   the UART, virtqueue kicks, the API socket) one at a time. */
#include "vmm/machine.h"

#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct vm_event
{
  int fd;
  vm_event_fn fn;
  void *opaque;
  bool deleted;
  struct vm_event *next;
};

int
cl_vmm_vm_event_add (struct vm *vm, int fd, uint32_t events, vm_event_fn fn, void *opaque,
                     cl_error_t *err)
{
  struct vm_event *ev = calloc (1, sizeof (*ev));
  if (ev == NULL)
    abort ();
  *ev = (struct vm_event){ .fd = fd, .fn = fn, .opaque = opaque };
  struct epoll_event e = { .events = events, .data.ptr = ev };
  if (epoll_ctl (vm->epoll_fd, EPOLL_CTL_ADD, fd, &e) < 0)
    {
      free (ev);
      return cl_error_errno (err, "epoll_ctl add fd %d", fd);
    }
  pthread_mutex_lock (&vm->event_lock);
  ev->next = vm->events;
  vm->events = ev;
  pthread_mutex_unlock (&vm->event_lock);
  return 0;
}

/* The entry is only marked: a callback may delete its own fd while later
   events of the same batch still point at it. */
void
cl_vmm_vm_event_del (struct vm *vm, int fd)
{
  epoll_ctl (vm->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
  pthread_mutex_lock (&vm->event_lock);
  for (struct vm_event *ev = vm->events; ev; ev = ev->next)
    if (ev->fd == fd && !ev->deleted)
      {
        ev->deleted = true;
        break;
      }
  pthread_mutex_unlock (&vm->event_lock);
}

static void
vm_events_reap (struct vm *vm)
{
  pthread_mutex_lock (&vm->event_lock);
  for (struct vm_event **pp = &vm->events; *pp;)
    {
      struct vm_event *ev = *pp;
      if (ev->deleted)
        {
          *pp = ev->next;
          free (ev);
        }
      else
        pp = &ev->next;
    }
  pthread_mutex_unlock (&vm->event_lock);
}

static void *
io_thread_main (void *arg)
{
  struct vm *vm = arg;
  struct epoll_event events[32];

  while (!cl_vmm_vm_stopping (vm))
    {
      int n = epoll_wait (vm->epoll_fd, events, 32, -1);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          cl_vmm_vm_request_stop (vm, VM_STOP_ERROR, "epoll_wait failed");
          break;
        }
      for (int i = 0; i < n; i++)
        {
          struct vm_event *ev = events[i].data.ptr;
          if (ev == NULL) /* the wake fd */
            continue;
          if (!ev->deleted)
            ev->fn (ev->opaque, events[i].events);
        }
      vm_events_reap (vm);
    }
  return NULL;
}

int
cl_vmm_vm_io_thread_start (struct vm *vm, cl_error_t *err)
{
  struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
  if (epoll_ctl (vm->epoll_fd, EPOLL_CTL_ADD, vm->wake_fd, &e) < 0)
    return cl_error_errno (err, "epoll_ctl add wake fd");
  int ret = pthread_create (&vm->io_thread, NULL, io_thread_main, vm);
  if (ret != 0)
    return cl_error_make (err, ret, "start the I/O thread");
  vm->io_started = true;
  return 0;
}

void
cl_vmm_vm_io_thread_stop (struct vm *vm)
{
  if (vm->io_started)
    {
      if (!cl_vmm_vm_stopping (vm))
        cl_vmm_vm_request_stop (vm, VM_STOP_API, NULL);
      pthread_join (vm->io_thread, NULL);
      vm->io_started = false;
    }
  for (struct vm_event *ev = vm->events; ev; ev = ev->next)
    ev->deleted = true;
  vm_events_reap (vm);
}
