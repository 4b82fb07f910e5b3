/* SPDX-License-Identifier: Apache-2.0 */
/* The per-instance monitor (see monitor.c for the design).  Every
   monitor is a program of its own, exec'd by the command that starts the
   instance with its arguments as JSON: cloison-monitor for containers
   (small, static where it can be, so that each costs little memory: a
   fork of the full CLI would carry the relocated data of every library
   it links), cloison-vmmon for VMs (the same main, linked with the VMM).
   Neither runs in a fork of the command: in cloisond, a fork carries
   SQLite's per-process state from the other threads and the child's own
   database open fails. */
#ifndef CLOISON_MANAGER_MONITOR_H
#define CLOISON_MANAGER_MONITOR_H

#include "manager/mgr_engine.h"
#include "manager/mgr_vm.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct monitor_args
{
  char *root;
  char *name;
  char *id;
  char *dir;
  bool attached;
  bool vm;
  struct engine_spec spec;
  char *overlay_opts;
  /* containers: restore this CRIU checkpoint instead of starting (NULL:
     start) */
  char *checkpoint_dir;
  struct vm_launch vm_launch;
  /* containers with networks: the monitor reports "P<pid>" between create
     and start and waits for one byte on gofd ('g': go on) while the
     launching command attaches the networks */
  bool net_pause;
  int readyfd;
  int gofd;
};

/* Starts the workload in the monitor: returns its pid, or -1. */
typedef pid_t (*monitor_start_fn) (struct monitor_args *a, int *stdin_keep, cl_error_t *err);
pid_t cl_mgr_monitor_start_container (struct monitor_args *a, int *stdin_keep, cl_error_t *err);
pid_t cl_mgr_monitor_start_vm (struct monitor_args *a, int *stdin_keep, cl_error_t *err);

/* Runs the monitor until the workload exits; reports "R<pid>" or
   "E<message>" on readyfd (VMs: the VMM child reports failures). */
void cl_mgr_monitor_main (struct monitor_args *a, int readyfd, monitor_start_fn start)
    __attribute__ ((noreturn));

/* A JSON array of strings as a NULL-terminated vector (caller frees). */
char **cl_mgr_json_to_strv (json_t *arr);

/* The monitor's arguments, handed to cloison-monitor or cloison-vmmon
   as JSON (a VM's vsock_fd is the descriptor's number in the monitor). */
json_t *cl_mgr_monitor_args_to_json (const struct monitor_args *a);
int cl_mgr_monitor_args_from_json (json_t *j, struct monitor_args *a, cl_error_t *err);
/* Frees the strings of a, as cl_mgr_monitor_args_from_json or a kind's
   prepare filled them (the monitor itself keeps its arguments until it
   exits; the command that spawned it drops its copy at once). */
void cl_mgr_monitor_args_clear (struct monitor_args *a);

#endif
