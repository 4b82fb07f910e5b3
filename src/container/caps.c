/* Placeholder so the runtime links; the real implementation follows. */
#include "container/caps.h"

#include <errno.h>

int
cl_caps_validate (json_t *capabilities, cl_error_t *err)
{
  (void) capabilities, (void) err;
  return 0;
}

int
cl_caps_drop_bounding (json_t *capabilities, cl_error_t *err)
{
  (void) capabilities, (void) err;
  return 0;
}

int
cl_caps_apply (json_t *capabilities, cl_error_t *err)
{
  (void) capabilities, (void) err;
  return 0;
}
