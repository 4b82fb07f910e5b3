/* SPDX-License-Identifier: Apache-2.0 */
/* This thread's cancellation flag (common/cancel.h). */
#include "common/cancel.h"

#include <stddef.h>

static __thread const int *cancel_flag;
static const volatile sig_atomic_t *process_flag;

void
cl_cancel_scope (const int *flag)
{
  cancel_flag = flag;
}

void
cl_cancel_process (const volatile sig_atomic_t *flag)
{
  process_flag = flag;
}

bool
cl_cancelled (void)
{
  return (cancel_flag != NULL && __atomic_load_n (cancel_flag, __ATOMIC_RELAXED) != 0)
         || (process_flag != NULL && *process_flag != 0);
}

int
cl_cancel_error (cl_error_t *err)
{
  return cl_error_make (err, 0, "cancelled");
}
