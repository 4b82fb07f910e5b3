/* SPDX-License-Identifier: Apache-2.0 */
/* cloison up, down, status, provision: a project's machines as its
   Cloisonfile says (src/manager/project.h); and exec and logs taking a
   machine's name within the project, handed on to the instance
   commands. */
#include "api/api.h"
#include "cli/client.h"
#include "cli/cloison.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/project.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct up_args
{
  const char *file, *format;
  bool recreate, provision, destroy, volumes;
  const char **machines;
  size_t n;
};

/* -f FILE and the flags `allowed` lists, then machine names. */
static int
parse_args (int argc, char **argv, const char *usage, const char *allowed, struct up_args *a,
            cl_error_t *err)
{
  static const struct option opts[] = {
    { "file", required_argument, NULL, 'f' },
    { "recreate", no_argument, NULL, 'R' },
    { "provision", no_argument, NULL, 'P' },
    { "destroy", no_argument, NULL, 'D' },
    { "volumes", no_argument, NULL, 'V' },
    { "format", required_argument, NULL, 'F' },
    { NULL, 0, NULL, 0 },
  };
  int c;

  memset (a, 0, sizeof *a);
  a->format = "table";
  opterr = 0;
  while ((c = getopt_long (argc, argv, "f:", opts, NULL)) != -1)
    {
      if (c != 'f' && (c == '?' || strchr (allowed, c) == NULL))
        return cl_error_make (err, 0, "usage: cloison %s", usage);
      switch (c)
        {
        case 'f':
          a->file = optarg;
          break;
        case 'R':
          a->recreate = true;
          break;
        case 'P':
          a->provision = true;
          break;
        case 'D':
          a->destroy = true;
          break;
        case 'V':
          a->volumes = true;
          break;
        case 'F':
          a->format = optarg;
          break;
        }
    }
  a->machines = (const char **)argv + optind;
  a->n = (size_t)(argc - optind);
  if (cli_check_format (a->format, err) < 0)
    return -1;
  return 0;
}

/* The file parsed and checked here (its errors name FILE:LINE:COL), and
   the client of the state root: cloisond's when one serves it, else
   in-process.  Machines' shared folders and scripts are paths of this
   host: a transport to another host is refused. */
static int
open_both (struct cloison_globals *g, const struct up_args *a, struct cl_project **p,
           struct cli_client **c, cl_error_t *err)
{
  const char *t;

  if (cl_mgr_project_load (a->file, p, err) < 0 || (*c = cli_client_of (g, err)) == NULL)
    return -1;
  t = cli_client_transport (*c);
  if (strcmp (t, "unix") != 0 && strcmp (t, "in-process") != 0)
    return cl_error_make (err, 0,
                          "a Cloisonfile's projects are served by the local state root only"
                          " (its folders and scripts must be on the server)");
  return 0;
}

/* The request's body: the parsed project, the machines named, flags. */
static json_t *
project_body (struct cl_project *p, const struct up_args *a)
{
  json_t *names = json_array ();

  for (size_t i = 0; i < a->n; i++)
    json_array_append_new (names, json_string (a->machines[i]));
  return json_pack ("{s:o, s:o}", "project", cl_mgr_project_to_json (p), "machines", names);
}

/* The lines of an operation on the project printed so far: they are
   printed as the operation's events bring them (a thread of the client's
   when through the daemon), the rest at its end. */
struct shown
{
  const char *url; /* /1.0/projects/ID */
  size_t out, errs;
  pthread_mutex_t lock;
};

static void
print_new (struct shown *sh, json_t *meta)
{
  json_t *out = json_object_get (meta, "output"), *errs = json_object_get (meta, "errors");

  pthread_mutex_lock (&sh->lock);
  for (; sh->out < json_array_size (out); sh->out++)
    puts (json_string_value (json_array_get (out, sh->out)));
  fflush (stdout);
  for (; sh->errs < json_array_size (errs); sh->errs++)
    fprintf (stderr, "%s\n", json_string_value (json_array_get (errs, sh->errs)));
  pthread_mutex_unlock (&sh->lock);
}

static void
on_event (void *opaque, json_t *ev)
{
  struct shown *sh = opaque;
  json_t *op = json_object_get (ev, "metadata"), *e;
  size_t i;

  json_array_foreach (json_object_get (json_object_get (op, "resources"), "projects"), i, e)
  {
    if (strcmp (json_string_value (e), sh->url) == 0)
      print_new (sh, json_object_get (op, "metadata"));
  }
}

/* POST /1.0/projects/ID/VERB run to its end, printing the lines the
   operation reports; returns its exit code. */
static int
project_call (struct cli_client *c, struct cl_project *p, const char *verb, json_t *body,
              cl_error_t *err)
{
  cleanup_free char *base = cl_api_url ("/1.0/projects/", cl_mgr_project_id (p));
  cleanup_free char *path = cl_strdup_printf ("%s/%s", base, verb);
  cleanup_json json_t *meta = NULL;
  struct shown sh = { .url = base, .lock = PTHREAD_MUTEX_INITIALIZER };
  int r;

  cli_client_watch (c, on_event, &sh);
  r = cli_call (c, "POST", path, NULL, body, &meta, err);
  cli_client_watch (c, NULL, NULL);
  if (r < 0)
    return -1;
  print_new (&sh, meta);
  return (int)json_integer_value (json_object_get (meta, "exit_code"));
}

static int
cmd_up (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_project struct cl_project *p = NULL;
  cleanup_json json_t *body = NULL;
  struct cli_client *c;
  struct up_args a;

  if (parse_args (argc, argv, "up [-f FILE] [--recreate] [--provision] [MACHINE...]", "RP", &a, err)
          < 0
      || open_both (g, &a, &p, &c, err) < 0)
    return -1;
  body = project_body (p, &a);
  json_object_set_new (body, "recreate", json_boolean (a.recreate));
  json_object_set_new (body, "provision", json_boolean (a.provision));
  return project_call (c, p, "up", body, err);
}

static int
cmd_down (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_project struct cl_project *p = NULL;
  cleanup_json json_t *body = NULL;
  struct cli_client *c;
  struct up_args a;

  if (parse_args (argc, argv, "down [-f FILE] [--destroy [--volumes]] [MACHINE...]", "DV", &a, err)
      < 0)
    return -1;
  if (a.volumes && !a.destroy)
    return cl_error_make (err, 0, "--volumes goes with --destroy");
  if (open_both (g, &a, &p, &c, err) < 0)
    return -1;
  body = project_body (p, &a);
  json_object_set_new (body, "destroy", json_boolean (a.destroy));
  json_object_set_new (body, "volumes", json_boolean (a.volumes));
  return project_call (c, p, "down", body, err);
}

static const char *
str (json_t *o, const char *k)
{
  const char *s = json_string_value (json_object_get (o, k));
  return s && *s ? s : "-";
}

static void
join (json_t *arr, char *buf, size_t len)
{
  json_t *e;
  size_t i;

  buf[0] = '\0';
  json_array_foreach (arr, i, e)
  {
    size_t used = strlen (buf);
    snprintf (buf + used, len - used, "%s%s", i ? "," : "", json_string_value (e));
  }
  if (buf[0] == '\0')
    snprintf (buf, len, "-");
}

static int
cmd_status (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_project struct cl_project *p = NULL;
  cleanup_json json_t *rows = NULL, *body = NULL;
  cleanup_free char *base = NULL, *path = NULL;
  struct cli_client *c;
  struct up_args a;
  json_t *r;
  size_t i;

  if (parse_args (argc, argv, "status [-f FILE] [--format table|json]", "F", &a, err) < 0
      || open_both (g, &a, &p, &c, err) < 0)
    return -1;
  body = project_body (p, &a);
  base = cl_api_url ("/1.0/projects/", cl_mgr_project_id (p));
  path = cl_strdup_printf ("%s/status", base);
  if (cli_call (c, "POST", path, NULL, body, &rows, err) < 0)
    return -1;
  if (strcmp (a.format, "json") == 0)
    {
      char *s = json_dumps (rows, JSON_INDENT (2));
      puts (s);
      free (s);
      return 0;
    }
  printf ("project %s (%s)\n", cl_mgr_project_id (p), CL_PROJECT_FILE);
  printf ("%-12s %-9s %-9s %-16s %-15s %-18s %s\n", "MACHINE", "KIND", "STATUS", "IMAGE", "ADDRESS",
          "PORTS", "CHANGED");
  json_array_foreach (rows, i, r)
  {
    char addrs[256], ports[256];
    join (json_object_get (r, "addresses"), addrs, sizeof addrs);
    join (json_object_get (r, "ports"), ports, sizeof ports);
    printf ("%-12s %-9s %-9s %-16s %-15s %-18s %s\n", str (r, "machine"), str (r, "kind"),
            str (r, "status"), str (r, "image"), addrs, ports, str (r, "changed"));
  }
  return 0;
}

static int
cmd_provision (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_project struct cl_project *p = NULL;
  cleanup_json json_t *body = NULL;
  struct cli_client *c;
  struct up_args a;

  if (parse_args (argc, argv, "provision [-f FILE] [MACHINE...]", "", &a, err) < 0
      || open_both (g, &a, &p, &c, err) < 0)
    return -1;
  body = project_body (p, &a);
  return project_call (c, p, "provision", body, err);
}

/* The instance command `name` of cloison_instance.c. */
static int
instance_cmd (const char *name, struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  for (const struct cloison_cmd *c = cloison_instance_cmds; c->name; c++)
    if (strcmp (c->name, name) == 0)
      return c->fn (g, argc, argv, err);
  return cl_error_make (err, 0, "no command `%s`", name);
}

/* exec and logs: a machine of the Cloisonfile here (or above) names its
   instance; any other name is an instance's own. */
static int
with_machine_name (const char *verb, struct cloison_globals *g, int argc, char **argv,
                   cl_error_t *err)
{
  cleanup_free char **copy = cl_xmalloc0 ((size_t)(argc + 1) * sizeof *copy);
  cleanup_free char *instance = NULL;
  int at = -1;

  for (int i = 1; i < argc && at < 0; i++)
    {
      const char *a = argv[i];
      if (strcmp (a, "--") == 0)
        break;
      if ((strcmp (a, "--env") == 0 || strcmp (a, "-e") == 0) && i + 1 < argc)
        i++;
      else if (a[0] != '-')
        at = i;
    }
  memcpy (copy, argv, (size_t)argc * sizeof *copy);
  if (at > 0)
    {
      cleanup_project struct cl_project *p = NULL;
      cl_error_t none = NULL;
      if (cl_mgr_project_load (NULL, &p, &none) == 0)
        instance = cl_mgr_project_instance (p, argv[at]);
      else
        cl_error_release (&none);
      if (instance)
        copy[at] = instance;
    }
  return instance_cmd (verb, g, argc, copy, err);
}

static int
cmd_exec (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  return with_machine_name ("exec", g, argc, argv, err);
}

static int
cmd_logs (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  return with_machine_name ("logs", g, argc, argv, err);
}

const struct cloison_cmd cloison_up_cmds[] = {
  { "up", cmd_up, "bring a Cloisonfile's machines up (create, start, apply changes)" },
  { "down", cmd_down, "stop a Cloisonfile's machines (--destroy: delete them)" },
  { "status", cmd_status, "a Cloisonfile's machines and their state" },
  { "provision", cmd_provision, "run a Cloisonfile's provisioning steps again" },
  { "exec", cmd_exec, "run a command in a running instance (or a project's machine)" },
  { "logs", cmd_logs, "print an instance's (or a project machine's) console output" },
  { NULL, NULL, NULL },
};
