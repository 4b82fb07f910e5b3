/* SPDX-License-Identifier: Apache-2.0 */
/* What several of cloison's verbs share: the --format check, integer options. */
#include "cli/cloison.h"

#include <stdlib.h>
#include <string.h>

int
cli_check_format (const char *format, cl_error_t *err)
{
  if (strcmp (format, "table") != 0 && strcmp (format, "json") != 0)
    return cl_error_raise (err, CL_ERR_INVALID, "invalid --format `%s`: table or json", format);
  return 0;
}

int
cli_parse_long (const char *s, const char *what, long min, long max, long *out, cl_error_t *err)
{
  char *end;
  long v = strtol (s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < min || v > max)
    return cl_error_make (err, 0, "%s: expected an integer %ld-%ld, got `%s`", what, min, max, s);
  *out = v;
  return 0;
}
