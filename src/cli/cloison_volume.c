/* SPDX-License-Identifier: Apache-2.0 */
/* cloison volume: storage volumes that outlive instances, over
   src/manager/volume.h. */
#include "api/api.h"
#include "cli/client.h"
#include "cli/cloison.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

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
  return cl_error_raise (err, CL_ERR_INVALID,
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

/* PATH = PREFIX + the volume's name (escaped) + SUFFIX. */
static char *
volume_path (const char *name, const char *suffix)
{
  cleanup_free char *base = cl_api_url ("/1.0/volumes/", name);
  return cl_strdup_printf ("%s%s", base, suffix ? suffix : "");
}

static int
snapshot_cmd (struct cli_client *c, const struct vol_opts *o, cl_error_t *err)
{
  const char *verb = o->pos[0];
  cleanup_free char *snaps = NULL, *one = NULL;
  cleanup_free char *snap = NULL;
  cleanup_json json_t *body = NULL;

  if (want (o, 3, err) < 0)
    return -1;
  snaps = volume_path (o->pos[1], "/snapshots");
  snap = cl_api_url ("/", o->pos[2]);
  one = cl_strdup_printf ("%s%s", snaps, snap);
  if (strcmp (verb, "create") == 0)
    {
      body = json_pack ("{s:s}", "name", o->pos[2]);
      return cli_call (c, "POST", snaps, NULL, body, NULL, err);
    }
  if (strcmp (verb, "restore") == 0)
    return cli_call (c, "POST", one, NULL, NULL, NULL, err);
  if (strcmp (verb, "delete") == 0)
    return cli_call (c, "DELETE", one, NULL, NULL, NULL, err);
  return usage_error (err);
}

static int
say_pending_of (json_t *out, const char *instance)
{
  say_pending (json_is_true (json_object_get (out, "pending")), instance);
  json_decref (out);
  return 0;
}

/* Through the API (cloisond when it serves the root, else in-process). */
static int
volume_call (struct cli_client *c, const char *verb, const struct vol_opts *o, uint64_t size,
             json_t **out, cl_error_t *err)
{
  cleanup_json json_t *body = NULL;
  cleanup_free char *path = NULL;

  if (strcmp (verb, "create") == 0 || strcmp (verb, "copy") == 0)
    {
      bool copy = strcmp (verb, "copy") == 0;
      if (want (o, copy ? 2 : 1, err) < 0)
        return -1;
      body = copy ? json_pack ("{s:s, s:s}", "name", o->pos[1], "source", o->pos[0])
                  : json_pack ("{s:s, s:I}", "name", o->pos[0], "size", (json_int_t)size);
      return cli_call (c, "POST", "/1.0/volumes", NULL, body, NULL, err);
    }
  if (strcmp (verb, "list") == 0)
    return want (o, 0, err) < 0
               ? -1
               : cli_call (c, "GET", "/1.0/volumes", "recursion=1", NULL, out, err);
  if (strcmp (verb, "snapshot") == 0)
    return snapshot_cmd (c, o, err);
  if (want (o, strcmp (verb, "attach") == 0 ? 3 : strcmp (verb, "detach") == 0 ? 2 : 1, err) < 0)
    return -1;
  if (strcmp (verb, "info") == 0 || strcmp (verb, "delete") == 0)
    {
      path = volume_path (o->pos[0], NULL);
      return cli_call (c, verb[0] == 'i' ? "GET" : "DELETE", path, NULL, NULL, out, err);
    }
  if (strcmp (verb, "attach") == 0)
    {
      json_t *r = NULL;
      path = volume_path (o->pos[0], "/attachments");
      body = json_pack ("{s:s, s:s, s:b}", "instance", o->pos[1], "path", o->pos[2], "readonly",
                        o->readonly);
      if (cli_call (c, "POST", path, NULL, body, &r, err) < 0)
        return -1;
      return say_pending_of (r, o->pos[1]);
    }
  if (strcmp (verb, "detach") == 0)
    {
      json_t *r = NULL;
      cleanup_free char *inst = cl_api_url ("/attachments/", o->pos[1]);
      path = volume_path (o->pos[0], inst);
      if (cli_call (c, "DELETE", path, NULL, NULL, &r, err) < 0)
        return -1;
      return say_pending_of (r, o->pos[1]);
    }
  return cl_error_raise (err, CL_ERR_INVALID,
                         "unknown volume command `%s` (see cloison volume --help)", verb);
}

static int
cmd_volume (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  struct cli_client *c;
  cleanup_json json_t *out = NULL;
  struct vol_opts o;
  const char *verb;
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
  if (cli_check_format (o.format, err) < 0)
    return -1;
  if ((c = cli_client_of (g, err)) == NULL || volume_call (c, verb, &o, size, &out, err) < 0)
    return -1;
  if (!json_is_object (out) && !json_is_array (out))
    return 0; /* a change: nothing to print */
  if (strcmp (verb, "list") == 0 && strcmp (o.format, "table") == 0)
    print_table (out);
  else
    {
      char *s = json_dumps (out, JSON_INDENT (2));
      puts (s);
      free (s);
    }
  return 0;
}

const struct cloison_cmd cloison_volume_cmds[] = {
  { "volume", cmd_volume, "storage volumes: create, list, attach, snapshot, copy..." },
  { NULL, NULL, NULL },
};
