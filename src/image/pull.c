#include "image/internal.h"
int
cl_image_pull (struct cl_image_store *s, const char *ref, const struct cl_image_pull_opts *opts,
               char **id, cl_error_t *err)
{
  (void) s; (void) opts; (void) id;
  return cl_error_make (err, 0, "pull `%s`: not implemented yet", ref);
}
