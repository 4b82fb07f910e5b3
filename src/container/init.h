/* The container's init, between clone and the user's program: joins and
   creates namespaces, builds the root (mounts, devices, console, masked
   and read-only paths, sysctl), pivots into it, sets the process up and
   waits for `start`. */
#ifndef CLOISON_CONTAINER_INIT_H
#define CLOISON_CONTAINER_INIT_H

#include <jansson.h>
#include <stdbool.h>

struct init_args
{
  json_t *config;
  const char *rootfs; /* absolute, resolved */
  const char *bundle;
  const char *id;
  int sync_fd;
  int fifo_fd; /* O_PATH fd of exec.fifo; -1: wait for SYNC_START instead */
  int preserve_fds;
  bool no_pivot, no_new_keyring;
  int ns_new;   /* CLONE_NEW* flags created by clone */
  const int *stdio;
};

__attribute__ ((noreturn)) void init_run (struct init_args *a);

/* Opens `path` inside the directory `rootfd` as if it were `/`
   (openat2 RESOLVE_IN_ROOT): symlinks cannot lead out. */
int open_in_root (int rootfd, const char *path, int flags, mode_t mode);

#endif
