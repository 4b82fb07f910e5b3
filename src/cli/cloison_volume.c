/* SPDX-License-Identifier: Apache-2.0 */
/* cloison volume: storage volumes that outlive instances, over
   src/manager/volume.h. */
#include "cli/cloison.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/manager.h"
#include "manager/volume.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] = "usage: cloison volume create NAME [--size SIZE]\n"
                                 "       cloison volume list [--format table|json]\n"
                                 "       cloison volume info NAME\n"
                                 "       cloison volume delete NAME\n"
                                 "       cloison volume attach [--readonly] NAME INSTANCE PATH\n"
                                 "       cloison volume detach NAME INSTANCE\n"
                                 "       cloison volume snapshot create|restore|delete NAME SNAP\n"
                                 "       cloison volume copy SRC NEW\n";

static int
usage_error (cl_error_t *err)
{
  return cl_error_make (err, 0,
                        "usage: cloison volume create|list|info|delete|attach|detach|"
                        "snapshot|copy ... (see cloison volume --help)");
}

struct vol_opts
{
  const char *size, *format;
  bool readonly;
  int npos;
  char *pos[5];
};

static int
parse_opts (int argc, char **argv, struct vol_opts *o, cl_error_t *err)
{
  static const struct option opts[] = {
    { "size", required_argument, NULL, 's' },
    { "format", required_argument, NULL, 'f' },
    { "readonly", no_argument, NULL, 'r' },
    { NULL, 0, NULL, 0 },
  };
  int c;

  memset (o, 0, sizeof *o);
  o->format = "table";
  opterr = 0;
  optind = 1;
  while ((c = getopt_long (argc, argv, "+s:f:r", opts, NULL)) != -1 || optind < argc)
    {
      if (c == -1)
        {
          if (o->npos == 5)
            return usage_error (err);
          o->pos[o->npos++] = argv[optind++];
          continue;
        }
      switch (c)
        {
        case 's':
          o->size = optarg;
          break;
        case 'f':
          o->format = optarg;
          break;
        case 'r':
          o->readonly = true;
          break;
        default:
          return usage_error (err);
        }
    }
  return 0;
}

static void
human_size (uint64_t n, char *buf, size_t len)
{
  static const char units[] = "BKMGT";
  int u = 0;

  while (n >= 1024 && n % 1024 == 0 && u < 4)
    n /= 1024, u++;
  snprintf (buf, len, "%llu%c", (unsigned long long)n, units[u]);
}

static void
print_table (json_t *list)
{
  json_t *v;
  size_t i;

  printf ("%-24s %-6s %-8s %s\n", "NAME", "TYPE", "SIZE", "ATTACHED TO");
  json_array_foreach (list, i, v)
  {
    char size[32] = "-", users[512] = "";
    json_t *a;
    size_t k;
    json_int_t bytes = json_integer_value (json_object_get (v, "size"));
    if (bytes > 0)
      human_size ((uint64_t)bytes, size, sizeof size);
    json_array_foreach (json_object_get (v, "attachments"), k, a)
    {
      size_t used = strlen (users);
      snprintf (users + used, sizeof users - used, "%s%s:%s", k ? ", " : "",
                json_string_value (json_object_get (a, "instance")),
                json_string_value (json_object_get (a, "path")));
    }
    printf ("%-24s %-6s %-8s %s\n", json_string_value (json_object_get (v, "name")),
            json_string_value (json_object_get (v, "type")), size, users[0] ? users : "-");
  }
}

static int
want (const struct vol_opts *o, int n, cl_error_t *err)
{
  if (o->npos != n)
    return usage_error (err);
  return 0;
}

static void
say_pending (bool pending, const char *instance)
{
  if (pending)
    printf ("instance `%s` runs: the change applies at its next start\n", instance);
}

static int
snapshot_cmd (struct cl_manager *m, const struct vol_opts *o, cl_error_t *err)
{
  const char *verb = o->pos[0];

  if (want (o, 3, err) < 0)
    return -1;
  if (strcmp (verb, "create") == 0)
    return cl_mgr_volume_snapshot_create (m, o->pos[1], o->pos[2], err);
  if (strcmp (verb, "restore") == 0)
    return cl_mgr_volume_snapshot_restore (m, o->pos[1], o->pos[2], err);
  if (strcmp (verb, "delete") == 0)
    return cl_mgr_volume_snapshot_delete (m, o->pos[1], o->pos[2], err);
  return usage_error (err);
}

static int
cmd_volume (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_mgr struct cl_manager *m = NULL;
  cleanup_json json_t *out = NULL;
  struct vol_opts o;
  const char *verb;
  bool pending = false;
  uint64_t size = 0;

  if (argc < 2 || strcmp (argv[1], "--help") == 0)
    {
      fputs (usage_text, argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  verb = argv[1];
  if (parse_opts (argc - 1, argv + 1, &o, err) < 0)
    return -1;
  if (o.size && cl_parse_size (o.size, "--size", &size, err) < 0)
    return -1;
  if (strcmp (o.format, "table") != 0 && strcmp (o.format, "json") != 0)
    return cl_error_make (err, 0, "invalid --format `%s`: table or json", o.format);
  if (cl_mgr_open (g->root, &m, err) < 0)
    return -1;
  if (strcmp (verb, "create") == 0)
    return want (&o, 1, err) < 0 ? -1 : cl_mgr_volume_create (m, o.pos[0], size, err);
  if (strcmp (verb, "list") == 0)
    {
      if (want (&o, 0, err) < 0 || cl_mgr_volume_list (m, &out, err) < 0)
        return -1;
      if (strcmp (o.format, "table") == 0)
        {
          print_table (out);
          return 0;
        }
    }
  else if (strcmp (verb, "info") == 0)
    {
      if (want (&o, 1, err) < 0 || cl_mgr_volume_info (m, o.pos[0], &out, err) < 0)
        return -1;
    }
  else if (strcmp (verb, "delete") == 0)
    return want (&o, 1, err) < 0 ? -1 : cl_mgr_volume_delete (m, o.pos[0], err);
  else if (strcmp (verb, "attach") == 0)
    {
      if (want (&o, 3, err) < 0
          || cl_mgr_volume_attach (m, o.pos[0], o.pos[1], o.pos[2], o.readonly, &pending, err) < 0)
        return -1;
      say_pending (pending, o.pos[1]);
      return 0;
    }
  else if (strcmp (verb, "detach") == 0)
    {
      if (want (&o, 2, err) < 0 || cl_mgr_volume_detach (m, o.pos[0], o.pos[1], &pending, err) < 0)
        return -1;
      say_pending (pending, o.pos[1]);
      return 0;
    }
  else if (strcmp (verb, "snapshot") == 0)
    {
      return snapshot_cmd (m, &o, err);
    }
  else if (strcmp (verb, "copy") == 0)
    return want (&o, 2, err) < 0 ? -1 : cl_mgr_volume_copy (m, o.pos[0], o.pos[1], err);
  else
    return cl_error_make (err, 0, "unknown volume command `%s` (see cloison volume --help)", verb);
  char *s = json_dumps (out, JSON_INDENT (2));
  puts (s);
  free (s);
  return 0;
}

const struct cloison_cmd cloison_volume_cmds[] = {
  { "volume", cmd_volume, "storage volumes: create, list, attach, snapshot, copy..." },
  { NULL, NULL, NULL },
};
