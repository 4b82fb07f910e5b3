/* SPDX-License-Identifier: Apache-2.0 */
/* cloison ui-link: a one-time login link for the web console, asked of
   the running cloisond over its Unix socket (the sessions live in the
   daemon, so there is no in-process fallback). */
#include "cli/cloison.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SOCKET "/run/cloison/cloison.sock"

struct body
{
  char *data;
  size_t len;
};

static size_t
on_data (char *p, size_t size, size_t n, void *cls)
{
  struct body *b = cls;
  char *more = realloc (b->data, b->len + size * n + 1);
  if (more == NULL)
    return 0;
  b->data = more;
  memcpy (b->data + b->len, p, size * n);
  b->len += size * n;
  b->data[b->len] = '\0';
  return size * n;
}

static int
cmd_ui_link (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[] = {
    { "socket", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *sock = getenv ("CLOISON_SOCKET") ? getenv ("CLOISON_SOCKET") : DEFAULT_SOCKET;
  struct body b = { 0 };
  cleanup_free char *data = NULL;
  json_t *j = NULL, *meta;
  long status = 0;
  CURLcode rc;
  CURL *curl;
  int c;
  (void)g;

  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (c)
      {
      case 's':
        sock = optarg;
        break;
      case 'h':
        printf ("usage: cloison ui-link [--socket PATH]\n"
                "Prints a one-time link that logs a browser in to the web console of the\n"
                "cloisond serving PATH (default $CLOISON_SOCKET, else " DEFAULT_SOCKET ").\n");
        return 0;
      default:
        return 2;
      }
  if (optind != argc)
    return cl_error_make (err, 0, "ui-link: unexpected argument `%s`", argv[optind]);
  curl = curl_easy_init ();
  if (curl == NULL)
    return cl_error_make (err, 0, "ui-link: curl_easy_init failed");
  curl_easy_setopt (curl, CURLOPT_UNIX_SOCKET_PATH, sock);
  curl_easy_setopt (curl, CURLOPT_URL, "http://cloison/1.0/ui/links");
  curl_easy_setopt (curl, CURLOPT_POSTFIELDS, "{}");
  curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt (curl, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt (curl, CURLOPT_TIMEOUT, 30L);
  rc = curl_easy_perform (curl);
  curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup (curl);
  data = b.data;
  if (rc != CURLE_OK)
    return cl_error_make (err, 0, "ui-link: no cloisond answers on `%s` (--socket): %s", sock,
                          curl_easy_strerror (rc));
  j = data ? json_loads (data, 0, NULL) : NULL;
  if (status != 200 || j == NULL)
    {
      const char *msg = j ? json_string_value (json_object_get (j, "error")) : NULL;
      cl_error_make (err, 0, "ui-link: %s", msg ? msg : "unexpected answer from cloisond");
      json_decref (j);
      return -1;
    }
  meta = json_object_get (j, "metadata");
  printf ("%s\n", json_string_value (json_object_get (meta, "url")));
  fprintf (stderr, "(works once, within %lld s)\n",
           (long long)json_integer_value (json_object_get (meta, "expires_in")));
  json_decref (j);
  return 0;
}

const struct cloison_cmd cloison_ui_cmds[] = {
  { "ui-link", cmd_ui_link, "a one-time login link for cloisond's web console" },
  { NULL, NULL, NULL },
};
