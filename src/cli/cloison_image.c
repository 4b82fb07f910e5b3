/* SPDX-License-Identifier: Apache-2.0 */
/* cloison image import|pull|list|rm|inspect: requests to the API
   (cli/client.h); vm-disk, which writes a local file, over
   src/image/image.h. */
#include "cli/client.h"
#include "cli/cloison.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "image/image.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- progress: a bar on a terminal, one line per finished item else ---- */

struct progress
{
  int tty;
  int drawn;
};

static void
human_size (uint64_t n, char *buf, size_t len)
{
  if (n >= (1ULL << 30))
    snprintf (buf, len, "%.1f GiB", n / (double)(1ULL << 30));
  else if (n >= (1ULL << 20))
    snprintf (buf, len, "%.1f MiB", n / (double)(1ULL << 20));
  else if (n >= 1024)
    snprintf (buf, len, "%.1f KiB", n / 1024.0);
  else
    snprintf (buf, len, "%llu B", (unsigned long long)n);
}

static void
progress_cb (void *opaque, const char *what, uint64_t done, uint64_t total, int finished)
{
  struct progress *p = opaque;
  char d[32], t[32];
  human_size (done, d, sizeof d);
  human_size (total, t, sizeof t);
  if (!p->tty)
    {
      if (finished)
        printf ("%s: done (%s)\n", what, d);
      fflush (stdout);
      return;
    }
  if (total > 0 && done <= total)
    {
      int width = 30, fill = (int)(done * width / total);
      printf ("\r%-28.28s [%.*s%*s] %3d%% %s/%s\033[K", what, fill,
              "##############################", width - fill, "", (int)(done * 100 / total), d, t);
    }
  else
    printf ("\r%-28.28s %s\033[K", what, d);
  if (finished)
    printf ("\n");
  fflush (stdout);
}

static struct progress *
progress_new (void)
{
  struct progress *p = calloc (1, sizeof *p);
  p->tty = isatty (STDOUT_FILENO);
  return p;
}

static int
open_store (struct cloison_globals *g, struct cl_image_store **s, cl_error_t *err)
{
  return cl_img_store_open (g->root, s, err);
}

/* An operation event's progress, drawn by progress_cb. */
static void
on_event (void *opaque, json_t *ev)
{
  json_t *p = json_object_get (json_object_get (json_object_get (ev, "metadata"), "metadata"),
                               "progress");
  const char *what = json_string_value (json_object_get (p, "what"));

  if (what == NULL)
    return;
  progress_cb (opaque, what, (uint64_t)json_integer_value (json_object_get (p, "done")),
               (uint64_t)json_integer_value (json_object_get (p, "total")),
               json_is_true (json_object_get (p, "finished")));
}

/* POST /1.0/images with body (stolen), its progress shown; the image's
   id in *id. */
static int
fetch (struct cloison_globals *g, json_t *body, char **id, cl_error_t *err)
{
  cleanup_free struct progress *p = progress_new ();
  struct cli_client *c = cli_client_of (g, err);
  cleanup_json json_t *result = NULL;
  int r = -1;

  if (c)
    {
      cli_client_watch (c, on_event, p);
      r = cli_call (c, "POST", "/1.0/images", NULL, body, &result, err);
      cli_client_watch (c, NULL, NULL);
    }
  json_decref (body);
  if (r == 0)
    *id = cl_xstrdup (json_string_value (json_object_get (result, "id")));
  return r;
}

/* Ends a command: prints its one-line result when it succeeded. */
static int
finish (int r, const char *line)
{
  if (r < 0)
    return -1;
  printf ("%s\n", line);
  return 0;
}

static void
usage_image (FILE *out)
{
  fprintf (out, "usage: cloison image COMMAND\n\n"
                "  import PATH [NAME[:TAG]]    OCI layout (dir or archive), docker-archive, "
                "rootfs tarball\n"
                "  pull REF [--name NAME[:TAG]] [--creds USER:PASS] [--insecure] "
                "[--platform OS/ARCH] [--ca-file PEM]\n"
                "  list [--format table|json]\n"
                "  rm REF...\n"
                "  inspect REF\n"
                "  vm-disk REF OUT.img [--size SIZE]   ext4 root disk for a VM\n");
}

static int
cmd_import (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  cleanup_free char *id = NULL, *path = NULL, *cwd = NULL;
  struct cli_client *c;
  struct stat st;
  json_t *body;

  if (argc < 2 || argc > 3)
    {
      fprintf (stderr, "usage: cloison image import PATH [NAME[:TAG]]\n");
      return 2;
    }
  /* the server reads the path: an absolute one */
  if (argv[1][0] != '/' && (cwd = getcwd (NULL, 0)) == NULL)
    return cl_error_errno (err, "getcwd");
  path = cwd ? cl_strdup_printf ("%s/%s", cwd, argv[1]) : cl_xstrdup (argv[1]);
  c = cli_client_of (g, err);
  if (c == NULL)
    return -1;
  /* to a server (a daemon, a remote): an archive is uploaded; in-process
     (and a layout directory, which is no one file) the path is read */
  if (strcmp (cli_client_transport (c), "in-process") != 0 && stat (path, &st) == 0
      && S_ISREG (st.st_mode))
    {
      cleanup_free struct progress *p = progress_new ();
      cleanup_free char *base = cl_xstrdup (path), *query = NULL;
      cleanup_json json_t *result = NULL;
      char *fname = strrchr (base, '/') + 1, *qname = NULL, *qfile = NULL;
      int r;
      qfile = curl_easy_escape (NULL, fname, 0);
      qname = argc == 3 ? curl_easy_escape (NULL, argv[2], 0) : NULL;
      query
          = cl_strdup_printf ("filename=%s%s%s", qfile, qname ? "&name=" : "", qname ? qname : "");
      curl_free (qfile);
      curl_free (qname);
      cli_client_watch (c, on_event, p);
      r = cli_call_file (c, "POST", "/1.0/images", query, path, &result, err);
      cli_client_watch (c, NULL, NULL);
      if (r < 0)
        return -1;
      return finish (0, json_string_value (json_object_get (result, "id")));
    }
  body = json_pack ("{s:{s:s, s:s}}", "source", "type", "path", "path", path);
  if (argc == 3)
    json_object_set_new (body, "name", json_string (argv[2]));
  if (fetch (g, body, &id, err) < 0)
    return -1;
  return finish (0, id);
}

static int
cmd_pull (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option long_opts[] = {
    { "name", required_argument, NULL, 'n' },    { "creds", required_argument, NULL, 'c' },
    { "insecure", no_argument, NULL, 'i' },      { "platform", required_argument, NULL, 'p' },
    { "ca-file", required_argument, NULL, 'a' }, { NULL, 0, NULL, 0 },
  };
  struct cl_image_pull_opts opts = { 0 };
  cleanup_free char *id = NULL, *user = NULL, *ca = NULL;
  json_t *body, *src;
  int c;

  while ((c = getopt_long (argc, argv, "", long_opts, NULL)) != -1)
    switch (c)
      {
      case 'n':
        opts.name = optarg;
        break;
      case 'c':
        {
          char *colon;
          free (user);
          user = cl_xstrdup (optarg);
          colon = strchr (user, ':');
          if (colon == NULL)
            return cl_error_make (err, 0, "--creds: expected USER:PASSWORD");
          *colon = '\0';
          opts.username = user;
          opts.password = colon + 1;
          break;
        }
      case 'i':
        opts.insecure = 1;
        break;
      case 'p':
        opts.platform = optarg;
        break;
      case 'a':
        opts.ca_file = optarg;
        break;
      default:
        usage_image (stderr);
        return 2;
      }
  if (optind != argc - 1)
    {
      fprintf (stderr, "usage: cloison image pull REF [--name NAME[:TAG]] [--creds USER:PASS] "
                       "[--insecure] [--platform OS/ARCH] [--ca-file PEM]\n");
      return 2;
    }
  if (opts.ca_file && (ca = realpath (opts.ca_file, NULL)) == NULL)
    return cl_error_errno (err, "--ca-file `%s`", opts.ca_file);
  src = json_pack ("{s:s, s:s, s:b}", "type", "registry", "ref", argv[optind], "insecure",
                   opts.insecure);
  if (opts.username)
    json_object_set_new (src, "username", json_string (opts.username));
  if (opts.password)
    json_object_set_new (src, "password", json_string (opts.password));
  if (opts.platform)
    json_object_set_new (src, "platform", json_string (opts.platform));
  if (ca)
    json_object_set_new (src, "ca_file", json_string (ca));
  body = json_pack ("{s:o}", "source", src);
  if (opts.name)
    json_object_set_new (body, "name", json_string (opts.name));
  if (fetch (g, body, &id, err) < 0)
    return -1;
  return finish (0, id);
}

static int
cmd_list (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option long_opts[] = {
    { "format", required_argument, NULL, 'f' },
    { NULL, 0, NULL, 0 },
  };
  const char *format = "table";
  struct cli_client *client;
  cleanup_json json_t *list = NULL;
  json_t *e;
  size_t i;
  int c;

  while ((c = getopt_long (argc, argv, "", long_opts, NULL)) != -1)
    {
      if (c != 'f')
        return 2;
      format = optarg;
    }
  if (strcmp (format, "table") != 0 && strcmp (format, "json") != 0)
    return cl_error_make (err, 0, "--format: expected table or json, got `%s`", format);
  if ((client = cli_client_of (g, err)) == NULL
      || cli_call (client, "GET", "/1.0/images", "recursion=1", NULL, &list, err) < 0)
    return -1;
  if (strcmp (format, "json") == 0)
    {
      json_t *arr = json_array ();
      char *out;
      json_array_foreach (list, i, e) json_array_append_new (
          arr,
          json_pack ("{s:O, s:O, s:O, s:O, s:O, s:O}", "Id", json_object_get (e, "id"), "Names",
                     json_object_get (e, "names"), "Created", json_object_get (e, "created"),
                     "Size", json_object_get (e, "size"), "Layers", json_object_get (e, "layers"),
                     "Uses", json_object_get (e, "uses")));
      out = json_dumps (arr, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
      printf ("%s\n", out);
      free (out);
      json_decref (arr);
    }
  else
    {
      printf ("%-40s %-12s %10s %6s %4s  %s\n", "NAME", "ID", "SIZE", "LAYERS", "USES", "CREATED");
      json_array_foreach (list, i, e)
      {
        char size[32], when[32];
        time_t t = (time_t)json_integer_value (json_object_get (e, "created"));
        const char *id = json_string_value (json_object_get (e, "id"));
        json_t *names = json_object_get (e, "names"), *nm;
        size_t layers = (size_t)json_integer_value (json_object_get (e, "layers"));
        size_t uses = (size_t)json_integer_value (json_object_get (e, "uses"));
        size_t k;
        struct tm tm;
        human_size ((uint64_t)json_integer_value (json_object_get (e, "size")), size, sizeof size);
        strftime (when, sizeof when, "%Y-%m-%d %H:%M", localtime_r (&t, &tm));
        if (json_array_size (names) == 0)
          printf ("%-40s %-12.12s %10s %6zu %4zu  %s\n", "<none>", id, size, layers, uses, when);
        json_array_foreach (names, k, nm)
            printf ("%-40s %-12.12s %10s %6zu %4zu  %s\n", json_string_value (nm), id, size, layers,
                    uses, when);
      }
    }
  return 0;
}

static int
cmd_rm (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  struct cli_client *c;
  int r = 0;
  if (argc < 2)
    {
      fprintf (stderr, "usage: cloison image rm REF...\n");
      return 2;
    }
  if ((c = cli_client_of (g, err)) == NULL)
    return -1;
  for (int i = 1; i < argc && r == 0; i++)
    {
      cleanup_free char *path = cl_api_url ("/1.0/images/", argv[i]);
      r = cli_call (c, "DELETE", path, NULL, NULL, NULL, err);
    }
  return r;
}

static int
cmd_inspect (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  struct cli_client *c;
  cleanup_free char *path = NULL, *out = NULL;
  cleanup_json json_t *info = NULL;
  if (argc != 2)
    {
      fprintf (stderr, "usage: cloison image inspect REF\n");
      return 2;
    }
  path = cl_api_url ("/1.0/images/", argv[1]);
  if ((c = cli_client_of (g, err)) == NULL || cli_call (c, "GET", path, NULL, NULL, &info, err) < 0)
    return -1;
  out = json_dumps (info, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
  return finish (0, out);
}

static int
cmd_vm_disk (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option long_opts[] = {
    { "size", required_argument, NULL, 's' },
    { NULL, 0, NULL, 0 },
  };
  struct cl_image_store *s = NULL;
  struct cl_image *img = NULL;
  uint64_t size = 0;
  int c, r;

  while ((c = getopt_long (argc, argv, "", long_opts, NULL)) != -1)
    {
      if (c != 's')
        return 2;
      if (cl_parse_size (optarg, "--size", &size, err) < 0)
        return -1;
    }
  if (optind != argc - 2)
    {
      fprintf (stderr, "usage: cloison image vm-disk REF OUT.img [--size SIZE]\n");
      return 2;
    }
  if (open_store (g, &s, err) < 0)
    return -1;
  r = cl_img_resolve (s, argv[optind], &img, err);
  if (r == 0)
    r = cl_img_build_vm_disk (s, img, argv[optind + 1], size, err);
  cl_img_free (img);
  cl_img_store_close (s);
  return finish (r, argv[optind + 1]);
}

static const struct cloison_cmd image_subcmds[] = {
  { "import", cmd_import, "import an OCI layout, docker-archive or rootfs tarball" },
  { "pull", cmd_pull, "pull from a registry" },
  { "list", cmd_list, "list images" },
  { "ls", cmd_list, NULL },
  { "rm", cmd_rm, "remove images (refused while used)" },
  { "inspect", cmd_inspect, "show an image as JSON" },
  { "vm-disk", cmd_vm_disk, "build an ext4 VM root disk from an image" },
  { NULL, NULL, NULL },
};

static int
cmd_image (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage_image (argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  for (const struct cloison_cmd *c = image_subcmds; c->name; c++)
    if (strcmp (c->name, argv[1]) == 0)
      {
        optind = 0;
        return c->fn (g, argc - 1, argv + 1, err);
      }
  fprintf (stderr, "cloison: unknown image command `%s` (see cloison image --help)\n", argv[1]);
  return 2;
}

const struct cloison_cmd cloison_image_cmds[] = {
  { "image", cmd_image, "images: import, pull, list, rm, inspect" },
  { NULL, NULL, NULL },
};
