/* SPDX-License-Identifier: Apache-2.0 */
/* Requests to a cloisond with libcurl: HTTPS with a client certificate
   and a pinned server certificate, or a local Unix socket. */
#include "api/remote.h"
#include "api/tls.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define REMOTE_TIMEOUT_DEFAULT 60

static size_t
buf_write (char *p, size_t size, size_t n, void *data)
{
  cl_buffer_append (data, p, size * n);
  return size * n;
}

/* The headers we keep: Location, ETag, Content-Type. */
struct headers
{
  char *location, *etag;
  bool json;
};

static size_t
header_write (char *p, size_t size, size_t n, void *data)
{
  struct headers *h = data;
  char *v;
  if ((v = cl_http_header_value (p, size * n, "Location")))
    free (h->location), h->location = v;
  else if ((v = cl_http_header_value (p, size * n, "ETag")))
    free (h->etag), h->etag = v;
  else if ((v = cl_http_header_value (p, size * n, "Content-Type")))
    {
      h->json = strncmp (v, "application/json", 16) == 0;
      free (v);
    }
  return size * n;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void
global_init (void)
{
  curl_global_init (CURL_GLOBAL_DEFAULT);
}

/* A handle for one request to `remote`'s `path_query`. */
static CURL *
remote_handle (const struct cl_api_remote *remote, const char *path_query, char **pin,
               cl_error_t *err)
{
  cleanup_free char *url = NULL;
  CURL *h;

  pthread_once (&global_once, global_init);
  h = curl_easy_init ();
  if (h == NULL)
    {
      cl_error_make (err, 0, "libcurl: no handle");
      return NULL;
    }
  if (remote->unix_socket)
    {
      url = cl_strdup_printf ("http://cloison%s", path_query);
      curl_easy_setopt (h, CURLOPT_UNIX_SOCKET_PATH, remote->unix_socket);
    }
  else
    {
      size_t n = strlen (remote->url);
      while (n > 0 && remote->url[n - 1] == '/')
        n--;
      url = cl_strdup_printf ("%.*s%s", (int)n, remote->url, path_query);
      curl_easy_setopt (h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
      if (remote->client_cert)
        {
          curl_easy_setopt (h, CURLOPT_SSLCERT, remote->client_cert);
          curl_easy_setopt (h, CURLOPT_SSLKEY, remote->client_key);
        }
      /* the pinned certificate only: no system CA, and its key pinned;
         the name it carries is the server's own choice, not checked */
      curl_easy_setopt (h, CURLOPT_CAPATH, NULL);
      curl_easy_setopt (h, CURLOPT_SSL_VERIFYHOST, 0L);
      if (remote->server_cert)
        {
          struct curl_blob ca
              = { (void *)remote->server_cert, strlen (remote->server_cert), CURL_BLOB_COPY };
          if (cl_api_tls_pubkey_pin (remote->server_cert, pin, err) < 0)
            {
              curl_easy_cleanup (h);
              return NULL;
            }
          curl_easy_setopt (h, CURLOPT_CAINFO, NULL);
          curl_easy_setopt (h, CURLOPT_CAINFO_BLOB, &ca);
          curl_easy_setopt (h, CURLOPT_PINNEDPUBLICKEY, *pin);
          curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, 1L);
        }
      else
        curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, 0L);
    }
  curl_easy_setopt (h, CURLOPT_URL, url);
  if (remote->share)
    curl_easy_setopt (h, CURLOPT_SHARE, remote->share);
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_USERAGENT, "cloison/" CLOISON_VERSION);
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT, 10L);
  return h;
}

void *
cl_api_remote_share_new (void)
{
  CURLSH *sh;

  pthread_once (&global_once, global_init);
  sh = curl_share_init ();
  if (sh == NULL)
    return NULL;
  curl_share_setopt (sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt (sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  return sh;
}

void
cl_api_remote_share_free (void *share)
{
  if (share)
    curl_share_cleanup (share);
}

static int
curl_fail (const struct cl_api_remote *remote, CURLcode c, const char *detail, cl_error_t *err)
{
  const char *where = remote->unix_socket ? remote->unix_socket : remote->url;
  if (c == CURLE_SSL_PINNEDPUBKEYNOTMATCH || c == CURLE_PEER_FAILED_VERIFICATION)
    return cl_error_make (err, 0,
                          "`%s`: the server's certificate is not the one pinned for it"
                          " (%s)",
                          where, *detail ? detail : curl_easy_strerror (c));
  return cl_error_make (err, 0, "`%s`: %s", where, *detail ? detail : curl_easy_strerror (c));
}

int
cl_api_curl_body (void *curl, const struct cl_api_request *req, struct curl_slist **headers,
                  FILE **file, cl_error_t *err)
{
  CURL *h = curl;
  struct stat st;

  *file = NULL;
  if (req->body_file)
    {
      cleanup_free char *digest = NULL;
      *file = fopen (req->body_file, "rbe");
      if (*file == NULL || fstat (fileno (*file), &st) < 0)
        {
          int e = errno;
          if (*file)
            fclose (*file);
          *file = NULL;
          return cl_error_make (err, e, "open `%s`", req->body_file);
        }
      /* read as it goes (curl's default read callback: fread) */
      curl_easy_setopt (h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, req->method);
      curl_easy_setopt (h, CURLOPT_READDATA, *file);
      curl_easy_setopt (h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
      /* a transfer stalled for a minute ends */
      curl_easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt (h, CURLOPT_LOW_SPEED_TIME, 60L);
      *headers = curl_slist_append (*headers, "Content-Type: application/octet-stream");
      if (req->digest)
        {
          digest = cl_strdup_printf ("X-Cloison-Digest: %s", req->digest);
          *headers = curl_slist_append (*headers, digest);
        }
    }
  else if (req->body)
    {
      curl_easy_setopt (h, CURLOPT_POSTFIELDS, req->body);
      curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
      *headers = curl_slist_append (*headers, "Content-Type: application/json");
    }
  if (req->if_match)
    {
      cleanup_free char *im = cl_strdup_printf ("If-Match: %s", req->if_match);
      *headers = curl_slist_append (*headers, im);
    }
  return 0;
}

int
cl_api_remote_request (const struct cl_api_remote *remote, const struct cl_api_request *req,
                       struct cl_api_response *resp, cl_error_t *err)
{
  cleanup_free char *pin = NULL, *pq = NULL;
  FILE *file = NULL;
  struct cl_buffer body = { NULL, 0 };
  struct headers hd = { NULL, NULL, false };
  struct curl_slist *hl = NULL;
  char detail[CURL_ERROR_SIZE] = "";
  long status = 0;
  CURLcode c;
  CURL *h;

  memset (resp, 0, sizeof *resp);
  pq = cl_strdup_printf ("%s%s%s", req->path, req->query && *req->query ? "?" : "",
                         req->query && *req->query ? req->query : "");
  h = remote_handle (remote, pq, &pin, err);
  if (h == NULL)
    return -1;
  curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, req->method);
  if (cl_api_curl_body (h, req, &hl, &file, err) < 0)
    {
      curl_easy_cleanup (h);
      return -1;
    }
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, hl);
  /* an upload takes as long as it takes (curl_body: a stalled one ends) */
  curl_easy_setopt (h, CURLOPT_TIMEOUT,
                    file                ? 0L
                    : remote->timeout_s ? remote->timeout_s
                                        : (long)REMOTE_TIMEOUT_DEFAULT);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, buf_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt (h, CURLOPT_HEADERFUNCTION, header_write);
  curl_easy_setopt (h, CURLOPT_HEADERDATA, &hd);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, detail);
  c = curl_easy_perform (h);
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup (h);
  curl_slist_free_all (hl);
  if (file)
    fclose (file);
  if (c != CURLE_OK)
    {
      free (body.data);
      free (hd.location);
      free (hd.etag);
      return curl_fail (remote, c, detail, err);
    }
  resp->status = (int)status;
  resp->location = hd.location;
  resp->etag = hd.etag;
  if (hd.json && body.data)
    resp->json = json_loadb (body.data, body.len, 0, NULL);
  if (resp->json)
    {
      resp->content_type = "application/json";
      free (body.data);
    }
  else
    {
      resp->content_type = "text/plain";
      resp->raw = body.data ? body.data : cl_xstrdup ("");
      resp->raw_len = body.len;
    }
  return 0;
}

int
cl_api_remote_server_cert (const struct cl_api_remote *remote, char **pem, cl_error_t *err)
{
  struct cl_api_remote first = *remote;
  struct curl_certinfo *ci = NULL;
  struct cl_buffer body = { NULL, 0 };
  char detail[CURL_ERROR_SIZE] = "";
  CURLcode c;
  CURL *h;

  *pem = NULL;
  first.server_cert = NULL;
  h = remote_handle (&first, "/1.0", NULL, err);
  if (h == NULL)
    return -1;
  curl_easy_setopt (h, CURLOPT_CERTINFO, 1L);
  curl_easy_setopt (h, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, buf_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, detail);
  c = curl_easy_perform (h);
  if (c == CURLE_OK && curl_easy_getinfo (h, CURLINFO_CERTINFO, &ci) == CURLE_OK && ci
      && ci->num_of_certs > 0)
    for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next)
      if (strncmp (s->data, "Cert:", 5) == 0)
        *pem = cl_xstrdup (s->data + 5);
  curl_easy_cleanup (h);
  free (body.data);
  if (c != CURLE_OK)
    return curl_fail (remote, c, detail, err);
  if (*pem == NULL)
    return cl_error_make (err, 0, "`%s`: the server presented no certificate", remote->url);
  return 0;
}

struct lines
{
  struct cl_buffer b;
  int (*fn) (const char *line, void *data);
  void *data;
  bool stopped;
};

static size_t
lines_write (char *p, size_t size, size_t n, void *data)
{
  struct lines *l = data;
  char *nl;
  cl_buffer_append (&l->b, p, size * n);
  while ((nl = memchr (l->b.data, '\n', l->b.len)) != NULL)
    {
      size_t k = (size_t)(nl - l->b.data);
      *nl = '\0';
      /* empty lines are the server's keep-alives */
      if (k > 0 && l->fn (l->b.data, l->data) != 0)
        {
          l->stopped = true;
          return 0;
        }
      memmove (l->b.data, nl + 1, l->b.len - k - 1);
      l->b.len -= k + 1;
      l->b.data[l->b.len] = '\0';
    }
  return size * n;
}

int
cl_api_remote_events (const struct cl_api_remote *remote, const char *query,
                      int (*fn) (const char *line, void *data), void *data, cl_error_t *err)
{
  cleanup_free char *pin = NULL, *pq = NULL;
  struct lines l = { { NULL, 0 }, fn, data, false };
  char detail[CURL_ERROR_SIZE] = "";
  long status = 0;
  CURLcode c;
  CURL *h;

  pq = cl_strdup_printf ("/1.0/events%s%s", query && *query ? "?" : "", query ? query : "");
  h = remote_handle (remote, pq, &pin, err);
  if (h == NULL)
    return -1;
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, lines_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &l);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt (h, CURLOPT_FAILONERROR, 1L);
  /* the server sends an empty line every 10 s: silence means it is gone */
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_TIME, 30L);
  c = curl_easy_perform (h);
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup (h);
  free (l.b.data);
  if (l.stopped || c == CURLE_OK)
    return 0;
  if (c == CURLE_HTTP_RETURNED_ERROR)
    return cl_error_make (err, 0, "`%s`: events: HTTP %ld%s",
                          remote->unix_socket ? remote->unix_socket : remote->url, status,
                          status == 403 ? " (this client is not trusted there)" : "");
  return curl_fail (remote, c, detail, err);
}
