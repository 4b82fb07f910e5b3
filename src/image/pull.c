/* SPDX-License-Identifier: Apache-2.0 */
/* cloison image pull: the OCI distribution API over libcurl.
   GET /v2/REPO/manifests/REF (an index or manifest list picks the
   platform), then the config and layer blobs, each checked against its
   digest.  Authentication follows the registry's WWW-Authenticate answer:
   Bearer (token from realm?service=&scope=, with basic credentials when
   given) or Basic. */
#include "image/img_internal.h"
#include "common/cancel.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DOCUMENT (8 << 20)

static const char accept_manifests[] = "Accept: application/vnd.oci.image.index.v1+json, "
                                       "application/vnd.oci.image.manifest.v1+json, "
                                       "application/vnd.docker.distribution.manifest.list.v2+json, "
                                       "application/vnd.docker.distribution.manifest.v2+json";

struct registry
{
  CURL *curl;
  char *base; /* "https://host:port" */
  char *host; /* as in the reference, for messages */
  char *repo;
  char *auth; /* "Authorization: ..." header, once known */
  const char *username, *password;
  const char *ca_file;
  cl_image_progress_fn progress;
  void *progress_opaque;
};

/* Where a response body goes: memory (documents) or a file (blobs). */
struct sink
{
  char *buf;
  size_t len, alloc;
  int fd;
  struct cl_sha256 *hash;
  int write_error;
  char *www_auth; /* the WWW-Authenticate header of a 401 */
  char *content_type;
  const char *what; /* progress item */
  struct registry *reg;
};

static size_t
sink_write (char *data, size_t size, size_t nmemb, void *opaque)
{
  struct sink *s = opaque;
  size_t n = size * nmemb;
  if (s->fd >= 0)
    {
      if (cl_write_all (s->fd, data, n) < 0)
        {
          s->write_error = errno;
          return 0;
        }
      if (s->hash)
        cl_img_sha256_update (s->hash, data, n);
      return n;
    }
  if (s->len + n > MAX_DOCUMENT)
    return 0;
  if (s->len + n + 1 > s->alloc)
    {
      s->alloc = (s->len + n + 1) * 2;
      s->buf = realloc (s->buf, s->alloc);
      if (s->buf == NULL)
        abort ();
    }
  memcpy (s->buf + s->len, data, n);
  s->len += n;
  s->buf[s->len] = '\0';
  return n;
}

static size_t
sink_header (char *data, size_t size, size_t nmemb, void *opaque)
{
  struct sink *s = opaque;
  size_t n = size * nmemb;
  char *v;
  if ((v = cl_http_header_value (data, n, "WWW-Authenticate")))
    {
      free (s->www_auth);
      s->www_auth = v;
    }
  else if ((v = cl_http_header_value (data, n, "Content-Type")))
    {
      free (s->content_type);
      s->content_type = v;
    }
  return n;
}

static int
sink_progress (void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow)
{
  struct sink *s = opaque;
  (void)ultotal;
  (void)ulnow;
  /* a cancellation point (common/cancel.h): curl stops the transfer */
  if (cl_cancelled ())
    return 1;
  if (s->what && s->reg->progress && dlnow > 0)
    s->reg->progress (s->reg->progress_opaque, s->what, dlnow, dltotal, 0);
  return 0;
}

static void
sink_reset (struct sink *s)
{
  free (s->buf);
  free (s->www_auth);
  free (s->content_type);
  s->buf = s->www_auth = s->content_type = NULL;
  s->len = s->alloc = 0;
}

/* The registry's own words from an error body {"errors":[{"message"}]}. */
static char *
registry_message (const struct sink *s)
{
  cleanup_json json_t *j = NULL;
  json_t *e;
  const char *code, *msg;
  if (s->buf == NULL || cl_json_load_buffer ("response", s->buf, s->len, &j, NULL) < 0)
    return NULL;
  e = json_array_get (json_object_get (j, "errors"), 0);
  code = json_string_value (json_object_get (e, "code"));
  msg = json_string_value (json_object_get (e, "message"));
  if (msg == NULL)
    return NULL;
  return code ? cl_strdup_printf ("%s: %s", code, msg) : cl_xstrdup (msg);
}

/* One GET.  *status gets the HTTP status. */
static int
perform (struct registry *r, const char *url, const char *accept, const char *auth, struct sink *s,
         long *status, cl_error_t *err)
{
  struct curl_slist *headers = NULL;
  CURLcode c;

  curl_easy_reset (r->curl);
  if (accept)
    headers = curl_slist_append (headers, accept);
  if (auth)
    headers = curl_slist_append (headers, auth);
  curl_easy_setopt (r->curl, CURLOPT_URL, url);
  curl_easy_setopt (r->curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt (r->curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (r->curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt (r->curl, CURLOPT_USERAGENT, "cloison/" CLOISON_VERSION);
  curl_easy_setopt (r->curl, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt (r->curl, CURLOPT_WRITEDATA, s);
  curl_easy_setopt (r->curl, CURLOPT_HEADERFUNCTION, sink_header);
  curl_easy_setopt (r->curl, CURLOPT_HEADERDATA, s);
  curl_easy_setopt (r->curl, CURLOPT_XFERINFOFUNCTION, sink_progress);
  curl_easy_setopt (r->curl, CURLOPT_XFERINFODATA, s);
  curl_easy_setopt (r->curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt (r->curl, CURLOPT_CONNECTTIMEOUT, 30L);
  /* Abort a transfer stalled below 1 byte/s for a minute. */
  curl_easy_setopt (r->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (r->curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt (r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (r->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (r->ca_file)
    curl_easy_setopt (r->curl, CURLOPT_CAINFO, r->ca_file);
  c = curl_easy_perform (r->curl);
  curl_slist_free_all (headers);
  if (s->write_error)
    return cl_error_make (err, s->write_error, "write");
  if (c == CURLE_ABORTED_BY_CALLBACK && cl_cancelled ())
    return cl_cancel_error (err);
  if (c != CURLE_OK)
    return cl_error_make (err, 0, "%s: %s", url,
                          c == CURLE_WRITE_ERROR ? "response too large" : curl_easy_strerror (c));
  curl_easy_getinfo (r->curl, CURLINFO_RESPONSE_CODE, status);
  return 0;
}

/* key="value" from a WWW-Authenticate challenge (caller frees). */
static char *
challenge_param (const char *header, const char *key)
{
  size_t kl = strlen (key);
  for (const char *p = header; (p = strcasestr (p, key)); p += kl)
    {
      const char *q, *end;
      if (p != header && p[-1] != ' ' && p[-1] != ',')
        continue;
      q = p + kl;
      if (*q != '=')
        continue;
      q++;
      if (*q == '"')
        {
          end = strchr (++q, '"');
          if (end == NULL)
            return NULL;
        }
      else
        end = q + strcspn (q, ", ");
      return strndup (q, end - q);
    }
  return NULL;
}

static char *
basic_header (const char *user, const char *pass)
{
  cleanup_free char *plain = cl_strdup_printf ("%s:%s", user, pass);
  size_t len = strlen (plain), out_len = 4 * ((len + 2) / 3);
  char *b64 = cl_xmalloc0 (out_len + 1);
  EVP_EncodeBlock ((unsigned char *)b64, (unsigned char *)plain, (int)len);
  {
    char *h = cl_strdup_printf ("Authorization: Basic %s", b64);
    free (b64);
    return h;
  }
}

static char *
url_escape (CURL *curl, const char *s)
{
  char *e = curl_easy_escape (curl, s, 0);
  char *out = cl_xstrdup (e);
  curl_free (e);
  return out;
}

/* The Bearer dance: GET realm?service=S&scope=S, with basic credentials
   when given, and keep the token. */
static int
fetch_token (struct registry *r, const char *challenge, cl_error_t *err)
{
  cleanup_free char *realm = challenge_param (challenge, "realm");
  cleanup_free char *service = challenge_param (challenge, "service");
  cleanup_free char *scope = challenge_param (challenge, "scope");
  cleanup_free char *url = NULL, *basic = NULL, *default_scope = NULL;
  cleanup_json json_t *j = NULL;
  struct sink s = { .fd = -1, .reg = r };
  const char *token = NULL;
  long status = 0;
  int ret = -1;

  if (realm == NULL)
    return cl_error_make (err, 0, "registry %s: Bearer challenge without a realm", r->host);
  if (scope == NULL)
    scope = default_scope = cl_strdup_printf ("repository:%s:pull", r->repo);
  {
    cleanup_free char *es = url_escape (r->curl, scope);
    cleanup_free char *esv = service ? url_escape (r->curl, service) : NULL;
    url = cl_strdup_printf ("%s%sscope=%s%s%s", realm, strchr (realm, '?') ? "&" : "?", es,
                            esv ? "&service=" : "", esv ? esv : "");
  }
  if (scope == default_scope)
    scope = NULL;
  if (r->username)
    basic = basic_header (r->username, r->password ? r->password : "");
  if (perform (r, url, NULL, basic, &s, &status, err) < 0)
    goto out;
  if (status != 200)
    {
      cl_error_make (err, 0, "registry %s: token server %s refused: HTTP %ld%s", r->host, realm,
                     status, status == 401 ? " (wrong or missing --creds)" : "");
      goto out;
    }
  if (cl_json_load_buffer ("token response", s.buf ? s.buf : "", s.len, &j, err) < 0)
    goto out;
  token = json_string_value (json_object_get (j, "token"));
  if (token == NULL)
    token = json_string_value (json_object_get (j, "access_token"));
  if (token == NULL)
    {
      cl_error_make (err, 0, "registry %s: token response without a token", r->host);
      goto out;
    }
  free (r->auth);
  r->auth = cl_strdup_printf ("Authorization: Bearer %s", token);
  ret = 0;
out:
  sink_reset (&s);
  return ret;
}

/* GET with authentication: on a 401, answers the challenge and retries
   once.  Non-2xx statuses are errors naming what was fetched. */
static int
registry_get (struct registry *r, const char *path, const char *accept, const char *what,
              struct sink *s, cl_error_t *err)
{
  cleanup_free char *url = cl_strdup_printf ("%s/v2/%s", r->base, path);
  long status = 0;

  for (int attempt = 0;; attempt++)
    {
      off_t start = s->fd >= 0 ? lseek (s->fd, 0, SEEK_CUR) : 0;
      if (perform (r, url, accept, r->auth, s, &status, err) < 0)
        return -1;
      if (status != 401 || attempt > 0 || s->www_auth == NULL)
        break;
      /* Forget the 401's body before retrying. */
      if (s->fd >= 0 && (ftruncate (s->fd, start) < 0 || lseek (s->fd, start, SEEK_SET) < 0))
        return cl_error_errno (err, "truncate");
      s->len = 0;
      if (strncasecmp (s->www_auth, "Bearer", 6) == 0)
        {
          if (fetch_token (r, s->www_auth, err) < 0)
            return -1;
        }
      else if (strncasecmp (s->www_auth, "Basic", 5) == 0 && r->username)
        {
          free (r->auth);
          r->auth = basic_header (r->username, r->password ? r->password : "");
        }
      else
        break;
    }
  if (status == 401)
    return cl_error_make (err, 0, "registry %s: %s: authentication required%s", r->host, what,
                          r->username ? " (credentials refused)" : " (use --creds USER:PASS)");
  if (status < 200 || status > 299)
    {
      cleanup_free char *msg = s->fd < 0 ? registry_message (s) : NULL;
      return cl_error_make (err, 0, "registry %s: %s: HTTP %ld%s%s", r->host, what, status,
                            msg ? ": " : "", msg ? msg : "");
    }
  return 0;
}

/* A document (manifest, config) checked against its digest when known. */
static int
get_document (struct registry *r, const char *kind, const char *ref, const char *accept,
              const char *expected_hex, struct sink *s, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/%s/%s", r->repo, kind, ref);
  cleanup_free char *what = cl_strdup_printf ("%s %s:%s", kind, r->repo, ref);
  if (registry_get (r, path, accept, what, s, err) < 0)
    return -1;
  if (s->buf == NULL)
    {
      s->buf = cl_xstrdup ("");
      s->len = 0;
    }
  if (expected_hex)
    {
      char actual[CL_SHA256_HEX_LEN + 1];
      cl_img_sha256_buffer_hex (s->buf, s->len, actual);
      if (strcmp (actual, expected_hex) != 0)
        return cl_img_digest_mismatch (expected_hex, actual, err);
    }
  return 0;
}

/* Downloads a layer blob into the store's tmp/, verified, then unpacks it
   (unless already there). */
static int
pull_layer (struct registry *r, struct cl_image_build *b, const char *digest, size_t index,
            size_t count, cl_error_t *err)
{
  char hex[CL_SHA256_HEX_LEN + 1], actual[CL_SHA256_HEX_LEN + 1];
  cleanup_free char *ctx = cl_json_path_index ("manifest.layers", index);
  cleanup_free char *existing = NULL, *tmp = NULL, *what = NULL;
  struct cl_sha256 hash;
  struct sink s = { .fd = -1, .reg = r };
  int ret;

  if (cl_img_digest_parse (digest, ctx, hex, err) < 0)
    return -1;
  existing = cl_img_store_layer_path (b->store, hex);
  if (access (existing, F_OK) == 0)
    {
      if (r->progress)
        {
          cleanup_free char *what
              = cl_strdup_printf ("layer %zu/%zu %.12s (present)", index + 1, count, hex);
          r->progress (r->progress_opaque, what, 0, 0, 1);
        }
      return cl_img_build_add_layer (b, NULL, hex, NULL, err);
    }
  tmp = cl_img_store_tmp_name (b->store, "download");
  s.fd = mkostemp (tmp, O_CLOEXEC);
  if (s.fd < 0)
    return cl_error_errno (err, "create `%s`", tmp);
  what = cl_strdup_printf ("layer %zu/%zu %.12s", index + 1, count, hex);
  s.what = what;
  s.hash = &hash;
  cl_img_sha256_init (&hash);
  ret = get_document (r, "blobs", digest, NULL, NULL, &s, err);
  cl_img_sha256_final_hex (&hash, actual);
  close (s.fd);
  sink_reset (&s);
  if (ret == 0 && strcmp (actual, hex) != 0)
    ret = cl_img_digest_mismatch (hex, actual, err);
  if (ret == 0 && r->progress)
    {
      struct stat st;
      r->progress (r->progress_opaque, what, stat (tmp, &st) == 0 ? st.st_size : 0, 0, 1);
    }
  if (ret == 0)
    ret = cl_img_build_add_layer (b, tmp, hex, NULL, err);
  unlink (tmp);
  return ret;
}

static bool
is_local_host (const char *host)
{
  size_t n = strcspn (host, ":");
  if (host[0] == '[')
    return strncmp (host, "[::1]", 5) == 0;
  return (n == 9 && strncmp (host, "localhost", 9) == 0) || strncmp (host, "127.", 4) == 0;
}

static void
registry_free (struct registry *r)
{
  if (r->curl)
    curl_easy_cleanup (r->curl);
  free (r->base);
  free (r->host);
  free (r->repo);
  free (r->auth);
}

static int
pull (struct cl_image_store *st, struct registry *r, const struct cl_image_ref *ref,
      const struct cl_image_pull_opts *opts, const char *name, char **id_out, cl_error_t *err)
{
  struct sink ms = { .fd = -1, .reg = r }, cs = { .fd = -1, .reg = r };
  cleanup_json json_t *m = NULL;
  json_t *layers = NULL, *l, *cfg_desc = NULL;
  const char *mt = NULL, *cfg_digest = NULL;
  char hex[CL_SHA256_HEX_LEN + 1], cfg_hex[CL_SHA256_HEX_LEN + 1];
  cleanup_free char *source = NULL;
  struct cl_image_build b;
  size_t i;
  int ret = -1;

  cl_img_build_init (&b, st, opts ? opts->progress : NULL, opts ? opts->progress_opaque : NULL);
  if (ref->digest)
    cl_img_digest_parse (ref->digest, "reference", hex, NULL);
  if (get_document (r, "manifests", ref->digest ? ref->digest : ref->tag, accept_manifests,
                    ref->digest ? hex : NULL, &ms, err)
          < 0
      || cl_json_load_buffer ("manifest", ms.buf, ms.len, &m, err) < 0)
    goto out;
  cl_json_string (m, "manifest", "mediaType", &mt, NULL);
  if (mt == NULL && ms.content_type)
    mt = ms.content_type;
  if (cl_img_media_type_is_index (mt) || (mt == NULL && json_object_get (m, "manifests")))
    {
      json_t *desc = NULL;
      const char *digest = NULL;
      cleanup_free char *digest_copy = NULL;
      if (cl_img_index_pick (m, "image index", opts ? opts->platform : NULL, &desc, err) < 0
          || cl_json_string (desc, "image index manifest", "digest", &digest, err) <= 0
          || cl_img_digest_parse (digest, "image index manifest", hex, err) < 0)
        goto out;
      digest_copy = cl_xstrdup (digest);
      json_decref (m);
      m = NULL;
      sink_reset (&ms);
      if (get_document (r, "manifests", digest_copy, accept_manifests, hex, &ms, err) < 0
          || cl_json_load_buffer ("manifest", ms.buf, ms.len, &m, err) < 0)
        goto out;
    }
  if (cl_json_object (m, "manifest", "config", &cfg_desc, err) <= 0
      || cl_json_string (cfg_desc, "manifest.config", "digest", &cfg_digest, err) <= 0
      || cl_img_digest_parse (cfg_digest, "manifest.config.digest", cfg_hex, err) < 0)
    {
      if (err && *err == NULL)
        cl_error_make (err, 0, "manifest of `%s`: no config (schema 1 manifests are not supported)",
                       r->repo);
      goto out;
    }
  if (cl_json_array (m, "manifest", "layers", &layers, err) <= 0)
    {
      if (err && *err == NULL)
        cl_error_make (err, 0, "manifest of `%s`: no layers", r->repo);
      goto out;
    }
  if (get_document (r, "blobs", cfg_digest, NULL, cfg_hex, &cs, err) < 0)
    goto out;
  if (cl_img_store_image_exists (st, cfg_hex))
    layers = NULL; /* already here: only the name is new */
  json_array_foreach (layers, i, l)
  {
    const char *digest = json_string_value (json_object_get (l, "digest"));
    if (cl_cancelled ())
      {
        cl_cancel_error (err);
        goto out;
      }
    if (pull_layer (r, &b, digest ? digest : "", i, json_array_size (layers), err) < 0)
      goto out;
  }
  source = cl_strdup_printf ("registry:%s/%s", r->base, r->repo);
  if (cl_img_build_commit (&b, cs.buf, cs.len, ms.buf, ms.len, name, source, id_out, err) < 0)
    goto out;
  ret = 0;
out:
  if (ret < 0)
    cl_img_build_abort (&b);
  sink_reset (&ms);
  sink_reset (&cs);
  return ret;
}

int
cl_img_pull (struct cl_image_store *st, const char *refstr, const struct cl_image_pull_opts *opts,
             char **id_out, cl_error_t *err)
{
  struct cl_image_ref ref;
  struct registry r = { 0 };
  cleanup_free char *name = NULL;
  const char *host;
  int ret;

  if (opts && opts->name)
    {
      cleanup_free char *n = NULL, *t = NULL;
      if (cl_img_name_parse (opts->name, &n, &t, err) < 0)
        return -1;
    }
  if (cl_img_ref_parse (refstr, &ref, err) < 0)
    return -1;
  host = ref.registry ? ref.registry : "docker.io";
  r.host = cl_xstrdup (host);
  r.repo = (ref.registry == NULL && strchr (ref.repo, '/') == NULL)
               ? cl_strdup_printf ("library/%s", ref.repo)
               : cl_xstrdup (ref.repo);
  r.ca_file = opts ? opts->ca_file : NULL;
  r.base = cl_strdup_printf (
      "%s://%s",
      !r.ca_file && ((opts && opts->insecure) || is_local_host (host)) ? "http" : "https",
      strcmp (host, "docker.io") == 0 ? "registry-1.docker.io" : host);
  r.username = opts ? opts->username : NULL;
  r.password = opts ? opts->password : NULL;
  r.progress = opts ? opts->progress : NULL;
  r.progress_opaque = opts ? opts->progress_opaque : NULL;
  if (opts && opts->name)
    name = cl_xstrdup (opts->name);
  else if (ref.tag)
    name = ref.registry ? cl_strdup_printf ("%s/%s:%s", ref.registry, ref.repo, ref.tag)
                        : cl_strdup_printf ("%s:%s", ref.repo, ref.tag);
  curl_global_init (CURL_GLOBAL_DEFAULT);
  r.curl = curl_easy_init ();
  if (r.curl == NULL)
    ret = cl_error_make (err, 0, "libcurl: cannot initialise");
  else
    ret = pull (st, &r, &ref, opts, name, id_out, err);
  registry_free (&r);
  cl_img_ref_clear (&ref);
  if (ret < 0)
    return cl_error_wrap (err, "pull `%s`", refstr);
  return 0;
}
