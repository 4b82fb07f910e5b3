/* SPDX-License-Identifier: Apache-2.0 */
/* Scope-bound release helpers, after crun's cleanup_* attributes: early
   returns stay safe and error paths stay short. */
#ifndef CLOISON_CLEANUP_H
#define CLOISON_CLEANUP_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void cl_cleanup_freep (void *p);
void cl_cleanup_closep (int *fd);
void cl_cleanup_fclosep (FILE **f);
void cl_cleanup_closedirp (DIR **d);

#define cleanup_free __attribute__ ((cleanup (cl_cleanup_freep)))
#define cleanup_close __attribute__ ((cleanup (cl_cleanup_closep)))
#define cleanup_file __attribute__ ((cleanup (cl_cleanup_fclosep)))
#define cleanup_dir __attribute__ ((cleanup (cl_cleanup_closedirp)))

/* Hand ownership out of a cleanup variable. */
#define steal_pointer(pp)                                                                          \
  ({                                                                                               \
    __typeof__ (*(pp)) _stolen = *(pp);                                                            \
    *(pp) = NULL;                                                                                  \
    _stolen;                                                                                       \
  })
#define steal_fd(fdp)                                                                              \
  ({                                                                                               \
    int _stolen = *(fdp);                                                                          \
    *(fdp) = -1;                                                                                   \
    _stolen;                                                                                       \
  })

#endif
