/* SPDX-License-Identifier: Apache-2.0 */
/* Cancellation points: a long action (an image pull, an import, a tree
   copy) asks cl_cancelled () where it can stop and leave nothing behind;
   the thread running it names the flag that says so (an API operation's
   worker: DELETE /1.0/operations/ID sets it).  The flag is the thread's:
   the library's functions take no extra argument for it. */
#ifndef CLOISON_COMMON_CANCEL_H
#define CLOISON_COMMON_CANCEL_H

#include "common/error.h"

#include <signal.h>
#include <stdbool.h>

/* This thread's flag from now on (read atomically, non-zero: cancel);
   NULL: none, nothing is cancelled. */
void cl_cancel_scope (const int *flag);
/* A flag of the whole process (a signal handler's) read by every
   cancellation point, whatever the thread's: an in-process client's
   Ctrl-C cancels the operation it runs inline.  NULL: none. */
void cl_cancel_process (const volatile sig_atomic_t *flag);
/* Has this thread's action been cancelled? */
bool cl_cancelled (void);
/* Raises the error of a cancelled action ("cancelled"); returns -1. */
int cl_cancel_error (cl_error_t *err);

#endif
