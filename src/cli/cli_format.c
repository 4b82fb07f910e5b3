/* SPDX-License-Identifier: Apache-2.0 */
/* What several of cloison's verbs share: the --format check. */
#include "cli/cloison.h"

#include <string.h>

int
cli_check_format (const char *format, cl_error_t *err)
{
  if (strcmp (format, "table") != 0 && strcmp (format, "json") != 0)
    return cl_error_raise (err, CL_ERR_INVALID, "invalid --format `%s`: table or json", format);
  return 0;
}
