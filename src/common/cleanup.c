/* SPDX-License-Identifier: Apache-2.0 */
#include "common/cleanup.h"

void
cl_cleanup_freep (void *p)
{
  free (*(void **) p);
}

void
cl_cleanup_closep (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}

void
cl_cleanup_fclosep (FILE **f)
{
  if (*f)
    fclose (*f);
}

void
cl_cleanup_closedirp (DIR **d)
{
  if (*d)
    closedir (*d);
}
