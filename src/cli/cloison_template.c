/* SPDX-License-Identifier: Apache-2.0 */
/* cloison template: the warm templates of VM instances on this host
   (src/manager/mgr_vm_template.c, docs/templates.md).  A cache of files
   under the state root: read and changed here, not through the API. */
#include "cli/cloison.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/mgr_vm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage[] = "usage: cloison template ls [--format table|json]\n"
                            "       cloison template rm NAME...|--all\n"
                            "       cloison template cap [SIZE]";

static int
template_ls (struct cloison_globals *g, const char *format, cl_error_t *err)
{
  cleanup_json json_t *list = NULL;
  uint64_t cap;
  size_t i;
  json_t *t;

  if (cli_check_format (format, err) < 0 || cl_mgr_vm_templates_list (g->root, &list, err) < 0
      || cl_mgr_vm_templates_cap (g->root, &cap, err) < 0)
    return -1;
  if (strcmp (format, "json") == 0)
    {
      cleanup_free char *s = json_dumps (list, JSON_INDENT (2));
      puts (s);
      return 0;
    }
  printf ("%-16s %12s %s\n", "NAME", "SIZE", "LAST USED");
  json_array_foreach (list, i, t)
  {
    time_t used = (time_t)json_integer_value (json_object_get (t, "used"));
    char when[32];
    struct tm tm;
    strftime (when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r (&used, &tm));
    printf ("%-16s %12lld %s\n", json_string_value (json_object_get (t, "name")),
            (long long)json_integer_value (json_object_get (t, "size")), when);
  }
  printf ("cap: %llu bytes\n", (unsigned long long)cap);
  return 0;
}

static int
template_rm_all (struct cloison_globals *g, cl_error_t *err)
{
  cleanup_json json_t *list = NULL;
  size_t i;
  json_t *t;

  if (cl_mgr_vm_templates_list (g->root, &list, err) < 0)
    return -1;
  json_array_foreach (list, i, t)
  {
    if (cl_mgr_vm_template_remove (g->root, json_string_value (json_object_get (t, "name")), err)
        < 0)
      return -1;
  }
  return 0;
}

static int
cmd_template (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  const char *verb = argc > 1 ? argv[1] : "";

  if (strcmp (verb, "ls") == 0 && argc == 2)
    return template_ls (g, "table", err);
  if (strcmp (verb, "ls") == 0 && argc == 4 && strcmp (argv[2], "--format") == 0)
    return template_ls (g, argv[3], err);
  if (strcmp (verb, "rm") == 0 && argc == 3 && strcmp (argv[2], "--all") == 0)
    return template_rm_all (g, err);
  if (strcmp (verb, "rm") == 0 && argc > 2)
    {
      for (int i = 2; i < argc; i++)
        if (cl_mgr_vm_template_remove (g->root, argv[i], err) < 0)
          return -1;
      return 0;
    }
  if (strcmp (verb, "cap") == 0 && argc == 2)
    {
      uint64_t cap;
      if (cl_mgr_vm_templates_cap (g->root, &cap, err) < 0)
        return -1;
      printf ("%llu\n", (unsigned long long)cap);
      return 0;
    }
  if (strcmp (verb, "cap") == 0 && argc == 3)
    {
      uint64_t cap;
      if (cl_parse_size (argv[2], "template cap", &cap, err) < 0)
        return -1;
      return cl_mgr_vm_templates_set_cap (g->root, cap, err);
    }
  return cl_error_raise (err, CL_ERR_INVALID, "%s", usage);
}

const struct cloison_cmd cloison_template_cmds[] = {
  { "template", cmd_template, "list, remove, cap the warm templates of VM instances" },
  { NULL, NULL, NULL },
};
